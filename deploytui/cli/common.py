"""Helpers shared by the subcommands."""

from __future__ import annotations

import argparse
import dataclasses
import os
import re

from deploytui.config import Settings, find_config_path, load_config

__all__ = ["apply_console_overrides", "load_settings", "parse_duration"]


def load_settings(args: argparse.Namespace) -> Settings:
    """Find and load the config (``--config`` given before or after the subcommand)."""
    explicit = getattr(args, "sub_config", None) or getattr(args, "config", None)
    settings = load_config(find_config_path(explicit))
    return apply_console_overrides(settings, args)


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def apply_console_overrides(settings: Settings, args: argparse.Namespace) -> Settings:
    console = settings.console
    changes: dict[str, object] = {}
    if getattr(args, "read_only", None) or _env_true("DEPLOYTUI_READ_ONLY"):
        changes["read_only"] = True
    if getattr(args, "lock_read_only", None) or _env_true("DEPLOYTUI_READ_ONLY_LOCK"):
        changes["lock_read_only"] = True
        changes["read_only"] = True
    if getattr(args, "wall", None):
        changes["wall"] = True
    if getattr(args, "theme", None):
        changes["theme"] = args.theme
    if changes.get("wall") or console.wall:
        changes["read_only"] = True
    kube = settings.kubernetes
    kchanges: dict[str, object] = {}
    if getattr(args, "context", None):
        kchanges["context"] = args.context
    if getattr(args, "namespaces", None):
        kchanges["namespaces"] = tuple(args.namespaces)
    return dataclasses.replace(
        settings,
        console=dataclasses.replace(console, **changes),  # type: ignore[arg-type]
        kubernetes=dataclasses.replace(kube, **kchanges),  # type: ignore[arg-type]
    )


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d)?\s*$")


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``30m``, ``2h``, ``1d`` -> seconds. Raises ValueError with a clear message."""
    m = _DURATION.match(text)
    if not m:
        raise ValueError(f"not a duration: {text!r} (examples: 90s, 30m, 2h, 1d)")
    value = float(m.group(1))
    unit = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}[m.group(2) or "s"]
    return value * unit
