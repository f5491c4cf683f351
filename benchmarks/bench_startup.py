"""Process start to first frame of the console (target <= 0.35 s on these machines).

    python3 benchmarks/bench_startup.py [--runs 15]

Runs, in a 200x50 pty, until the first frame with the word "Health" is written:
- a minimal Textual app (one Static): the floor any Textual program pays on this machine;
- `deploytui` with an empty config;
- `deploytui --config <fleet config>` against a running `deploytui demo --fleet-only`.

Cases are interleaved run by run (machine noise hits them alike). Python's bytecode cache is
warmed first and PYTHONDONTWRITEBYTECODE is cleared for the children, as an installed package
runs: without cached bytecode every run compiles our modules again (about +0.1 s).
"""

from __future__ import annotations

import argparse
import compileall
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.ptyrun import run_in_pty, start_fleet

MINIMAL_APP = """
from textual.app import App
from textual.widgets import Static


class Minimal(App):
    def compose(self):
        yield Static("Health")


Minimal().run()
"""


def measure(cases: list[tuple[str, list[str]]], runs: int) -> dict[str, list[float]]:
    env = {"PYTHONDONTWRITEBYTECODE": ""}
    times: dict[str, list[float]] = {name: [] for name, _ in cases}
    for _, argv in cases:  # warm-up: bytecode cache, page cache
        run_in_pty(argv, seconds=3.0, first_frame_marker=b"Health", env=env)
    for _ in range(runs):
        for name, argv in cases:
            r = run_in_pty(argv, seconds=3.0, first_frame_marker=b"Health", env=env)
            if r.first_frame_s is not None:
                times[name].append(r.first_frame_s)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    compileall.compile_dir(str(Path(__file__).resolve().parent.parent / "deploytui"), quiet=1)
    with tempfile.TemporaryDirectory() as tmp:
        empty = Path(tmp) / "empty.toml"
        empty.write_text("")
        minimal = Path(tmp) / "minimal_app.py"
        minimal.write_text(MINIMAL_APP)
        base = [sys.executable, "-m", "deploytui", "--config"]
        fleet, config = start_fleet("--services", "12")
        try:
            times = measure([
                ("minimal Textual app (floor)", [sys.executable, str(minimal)]),
                ("deploytui, empty config", [*base, str(empty)]),
                ("deploytui, demo fleet (12 svc, k8s)", [*base, config]),
            ], args.runs)
        finally:
            fleet.terminate()
            fleet.wait(10)
    rows = list(times.items())
    print(f"{'case':40} {'runs':>4} {'median s':>9} {'min s':>7} {'max s':>7}")
    for name, samples in rows:
        if samples:
            print(f"{name:40} {len(samples):>4} {statistics.median(samples):>9.3f} "
                  f"{min(samples):>7.3f} {max(samples):>7.3f}")
        else:
            print(f"{name:40} {0:>4}   no frame seen")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus")


if __name__ == "__main__":
    main()
