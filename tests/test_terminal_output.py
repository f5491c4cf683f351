"""The pty byte counter of benchmarks/bench_terminal.py, in a short form (no timing asserted):
the console draws a first frame in a pseudo-terminal, honours NO_COLOR, and an idle console
with nothing configured writes next to nothing after its first frame."""

from __future__ import annotations

import sys
from pathlib import Path

from benchmarks.ptyrun import run_in_pty


def test_console_draws_in_a_pty_and_idles_quietly(tmp_path: Path) -> None:
    config = tmp_path / "empty.toml"
    config.write_text("")
    argv = [sys.executable, "-m", "deploytui", "--config", str(config)]
    run = run_in_pty(argv, seconds=4.0, cols=200, rows=50, warmup=0.0)
    assert run.first_frame_s is not None, run.output_tail[-500:]
    assert run.bytes_total > 1000  # the first frame
    # after the first frame, an empty console only redraws its clock once a minute
    idle = sum(run.per_second[2:]) if len(run.per_second) > 2 else 0
    assert idle < 2000, f"idle console wrote {run.per_second}"


def test_no_color_output_has_no_colour_codes(tmp_path: Path) -> None:
    config = tmp_path / "empty.toml"
    config.write_text("")
    argv = [sys.executable, "-m", "deploytui", "--config", str(config)]
    run = run_in_pty(argv, seconds=3.0, cols=80, rows=24, env={"NO_COLOR": "1"})
    assert run.first_frame_s is not None
    tail = run.output_tail
    assert b"\x1b[38;5;" not in tail and b"\x1b[38;2;" not in tail  # no 256-colour / truecolour fg
    assert b"Health" in tail
