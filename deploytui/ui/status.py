"""Status words, glyphs and theme colours: status is never shown by colour alone."""

from __future__ import annotations

from rich.text import Text

__all__ = ["STATUS", "status_text"]

# state -> (glyph, word, theme variable for its colour)
STATUS: dict[str, tuple[str, str, str]] = {
    "healthy": ("●", "healthy", "success"),
    "ok": ("●", "ok", "success"),
    "complete": ("●", "complete", "success"),
    "normal": ("●", "normal", "success"),
    "degraded": ("◐", "degraded", "warning"),
    "warning": ("▲", "warning", "warning"),
    "progressing": ("↻", "progressing", "primary"),
    "paused": ("‖", "paused", "warning"),
    "unhealthy": ("✖", "unhealthy", "error"),
    "critical": ("✖", "critical", "error"),
    "rollback": ("⏪", "rollback", "error"),
    "failed": ("✖", "failed", "error"),
    "stalled": ("■", "stalled", "error"),
    "conflict": ("✖", "conflict", "error"),
    "unreachable": ("⊘", "unreachable", "error"),
    "stale": ("…", "stale", "warning"),
    "unknown": ("?", "unknown", "secondary"),
    "info": ("i", "info", "primary"),
    "acked": ("✓", "acked", "secondary"),
    "listening": ("●", "listening", "success"),
    "closed": ("○", "closed", "secondary"),
}


def status_text(state: str, *, word: str | None = None, colors: dict[str, str] | None = None) -> Text:
    """``● healthy`` with the theme colour for the state (when ``colors`` maps variables)."""
    glyph, default_word, var = STATUS.get(state, ("?", state, "secondary"))
    style = (colors or {}).get(var, "")
    return Text(f"{glyph} {word or default_word}", style=style)
