"""Theme files (``themes/*.toml``) -> Textual themes.

Format: ``name``, ``dark`` and the colours ``primary secondary accent success warning error
foreground background surface panel`` as ``#rrggbb``. Looked up in ``[console] themes_dir``,
``~/.config/deploytui/themes`` and the shipped ``themes/`` folder, in that order.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from platformdirs import user_config_path
from textual.theme import Theme

from deploytui.config import Settings
from deploytui.errors import ConfigError

__all__ = ["SHIPPED_THEMES_DIR", "load_theme_file", "load_themes", "theme_dirs"]

SHIPPED_THEMES_DIR = Path(__file__).resolve().parent.parent.parent / "themes"
COLOUR_KEYS = ("primary", "secondary", "accent", "success", "warning", "error", "foreground",
               "background", "surface", "panel")
_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")


def theme_dirs(settings: Settings | None = None) -> list[Path]:
    dirs = []
    if settings is not None and settings.console.themes_dir:
        dirs.append(settings.resolve_path(settings.console.themes_dir))
    dirs.append(user_config_path("deploytui") / "themes")
    dirs.append(SHIPPED_THEMES_DIR)
    return dirs


def load_theme_file(path: Path) -> Theme:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(str(path), f"cannot read theme: {exc}") from None
    problems = []
    name = data.get("name", path.stem)
    if not isinstance(name, str) or not name:
        problems.append("name: expected a non-empty string")
    unknown = set(data) - {"name", "dark", *COLOUR_KEYS}
    problems.extend(f"{key}: unknown key" for key in sorted(unknown))
    for key in COLOUR_KEYS:
        if key in data and (not isinstance(data[key], str) or not _HEX.match(data[key])):
            problems.append(f"{key}: expected a colour like '#1a2b3c', got {data[key]!r}")
    if "primary" not in data:
        problems.append("primary: required key is missing")
    if problems:
        raise ConfigError(str(path), problems)
    colours = {k: data[k] for k in COLOUR_KEYS if k in data}
    return Theme(name=str(name), dark=bool(data.get("dark", True)), **colours)


def load_themes(settings: Settings | None = None) -> tuple[dict[str, Theme], list[str]]:
    """Every theme found (earlier folders win) and a list of problems with broken files."""
    themes: dict[str, Theme] = {}
    problems: list[str] = []
    for folder in theme_dirs(settings):
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.toml")):
            try:
                theme = load_theme_file(path)
            except ConfigError as exc:
                problems.append(str(exc))
                continue
            themes.setdefault(theme.name, theme)
    return themes, problems
