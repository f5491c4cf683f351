"""Process start to first frame of the console (target <= 0.35 s on these machines).

    python3 benchmarks/bench_startup.py [--runs 5]

Runs `deploytui` with an empty config and `deploytui --config <fleet config>` against a running
`deploytui demo --fleet-only` in a pty, and reports the time until the pane titles are drawn.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.ptyrun import run_in_pty, start_fleet


def measure(argv: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        r = run_in_pty(argv, seconds=3.0, first_frame_marker=b"Health")
        if r.first_frame_s is not None:
            times.append(r.first_frame_s)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        empty = Path(tmp) / "empty.toml"
        empty.write_text("")
        base = [sys.executable, "-m", "deploytui", "--config"]
        rows.append(("empty config", measure([*base, str(empty)], args.runs)))
        fleet, config = start_fleet("--services", "12")
        try:
            rows.append(("demo fleet (12 services, kubernetes)", measure([*base, config], args.runs)))
        finally:
            fleet.terminate()
            fleet.wait(10)
    print(f"{'case':40} {'runs':>4} {'median s':>9} {'min s':>7} {'max s':>7}")
    for name, times in rows:
        if times:
            print(f"{name:40} {len(times):>4} {statistics.median(times):>9.3f} "
                  f"{min(times):>7.3f} {max(times):>7.3f}")
        else:
            print(f"{name:40} {0:>4}   no frame seen")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus")


if __name__ == "__main__":
    main()
