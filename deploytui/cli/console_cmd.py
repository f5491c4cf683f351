"""The console itself (``deploytui`` with no subcommand)."""

from __future__ import annotations

import argparse
import gc
from pathlib import Path

from deploytui.cli.common import apply_console_overrides, load_settings
from deploytui.config import Settings, load_config

__all__ = ["run", "start_console"]


def run(args: argparse.Namespace) -> int:
    return start_console(args, settings=load_settings(args), mode="live")


def start_console(args: argparse.Namespace, *, config_path: Path | str | None = None,
                  settings: Settings | None = None, mode: str = "live") -> int:
    """Start the Textual console; ``mode`` is "live" or "demo" (shown in the header badge)."""
    if settings is None:
        settings = apply_console_overrides(load_config(config_path), args)
    # No garbage collection until the first frame is drawn (DeployApp turns it back on).
    gc.disable()
    from deploytui.ui.app import make_app

    try:
        app = make_app(settings, mode=mode, defer_sources=True)
        app.run()
    finally:
        gc.enable()  # whatever happened before the first frame (the app turns it on there)
    return int(app.return_code or 0)
