"""Layout snapshots of the shell (pinned size, clock and theme; empty config so no live data).

Regenerate after an intended layout change with:  pytest tests/ui/test_snapshots.py --snapshot-update
"""

from __future__ import annotations

from typing import Any

import pytest

from deploytui.config import ConsoleSettings, Settings
from deploytui.model import MemoryJournal
from deploytui.runtime import build_runtime
from deploytui.ui.app import DeployApp

PINNED = 1_790_000_000.0  # a fixed clock for the header


def _app(**console: Any) -> DeployApp:
    settings = Settings(console=ConsoleSettings(theme="dark", **console))
    runtime = build_runtime(settings, journal=MemoryJournal())
    return DeployApp(runtime, autostart_sources=False, clock=lambda: PINNED)


@pytest.mark.parametrize("size", [(80, 24), (200, 50)])
def test_shell_layout(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(_app(), terminal_size=size)


@pytest.mark.parametrize("size", [(80, 24), (200, 50)])
def test_wall_layout(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(_app(wall=True, read_only=True), terminal_size=size)


def test_zoomed_pane(snap_compare: Any) -> None:
    assert snap_compare(_app(), terminal_size=(120, 40), press=["3", "z"])
