"""What the console writes to the terminal (SSH friendliness): bytes/s and CPU.

    python3 benchmarks/bench_terminal.py [--seconds 60] [--size 200x50]

Starts `deploytui demo --fleet-only` (scenario steady, then bad-rollout), runs the console
against it in a pseudo-terminal with a 1 s refresh, and reports bytes per second written to the
terminal and CPU of the console process. Targets (issue 10): steady fleet <= 2 KB/s and <= 2 %
of one core at 200x50.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.ptyrun import run_in_pty, start_fleet


def with_refresh(config: str, seconds: float) -> str:
    text = Path(config).read_text()
    text = re.sub(r"(?m)^refresh_interval = .*$", f"refresh_interval = {seconds}", text)
    out = Path(config).with_name("bench-config.toml")
    out.write_text(text)
    return str(out)


def run_case(scenario: str, seconds: float, cols: int, rows: int, warmup: float,
             extra: list[str]) -> tuple[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        fleet, config = start_fleet("--scenario", scenario, "--workdir", tmp)
        try:
            config = with_refresh(config, 1.0)
            argv = [sys.executable, "-m", "deploytui", "--config", config, *extra]
            return scenario, run_in_pty(argv, seconds=seconds, cols=cols, rows=rows, warmup=warmup)
        finally:
            fleet.terminate()
            fleet.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=10.0)
    parser.add_argument("--size", default="200x50")
    parser.add_argument("--scenarios", default="steady,bad-rollout")
    parser.add_argument("--no-color", action="store_true")
    args = parser.parse_args()
    cols, rows = (int(x) for x in args.size.split("x"))
    print(f"{'scenario':14} {'size':>8} {'seconds':>8} {'bytes/s':>9} {'cpu %':>6} {'max 1s':>8}")
    for scenario in args.scenarios.split(","):
        name, r = run_case(scenario, args.seconds, cols, rows, args.warmup, [])
        peak = max(r.per_second) if r.per_second else 0  # type: ignore[attr-defined]
        print(f"{name:14} {args.size:>8} {r.seconds:>8.1f} {r.bytes_per_s:>9.0f} "  # type: ignore[attr-defined]
              f"{r.cpu_percent:>6.2f} {peak:>8}")  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
