"""The base of the four panes: a bordered box whose title carries the pane number, name and
counts, whose subtitle says when the data is stale (and why), and which shows a clear empty
state instead of an empty table.

A pane receives the runtime at construction (tests inject their own) and gets new data through
:meth:`Pane.update_snapshot`, called on the UI thread with a frozen snapshot from its source.
Equal snapshots must not cause a redraw: subclasses hand rows to a ``VirtualTable``, which
repaints only changed lines.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from deploytui.model import Target

__all__ = ["Pane"]


class Pane(Vertical):
    """Base class of HealthPane, RolloutsPane, PortsPane and AlertsPane."""

    DEFAULT_CSS = """
    Pane {
        border: round $panel-lighten-2;
        border-title-color: $text;
        border-title-style: bold;
        border-subtitle-color: $text-muted;
        height: 1fr;
        width: 1fr;
        padding: 0 0;
    }
    Pane:focus-within {
        border: round $accent;
    }
    Pane.-stale {
        border: round $warning;
        border-subtitle-color: $warning;
    }
    Pane > .pane-empty {
        width: 1fr;
        height: 1fr;
        content-align: center middle;
        color: $text-muted;
        display: none;
    }
    Pane.-empty > .pane-empty {
        display: block;
    }
    Pane.-empty > .pane-body {
        display: none;
    }
    Pane > Input.pane-filter {
        dock: top;
        height: 1;
        border: none;
        padding: 0 1;
        display: none;
        background: $boost;
    }
    Pane.-filtering > Input.pane-filter {
        display: block;
    }
    Pane.-empty > Input.pane-filter {
        display: none;
    }
    """

    #: stable id used for keys 1-4, zoom, rotation, snapshot section names
    pane_id: ClassVar[str] = ""
    pane_title: ClassVar[str] = ""
    pane_number: ClassVar[int] = 0
    #: text shown when the source is not configured at all
    not_configured_text: ClassVar[str] = "not configured"

    def __init__(self, runtime: Any, *, id: str | None = None, classes: str | None = None) -> None:
        # Empty until the first snapshot: given now, so mounting does not restyle the pane.
        super().__init__(id=id or f"pane-{self.pane_id}", classes=f"-empty {classes or ''}".strip())
        self.runtime = runtime
        self.snapshot: Any = None
        self.last_updated: float | None = None
        self._counts = ""
        self._stale: str | None = None
        self._updated_text = ""
        self.problems: int | None = None
        self._empty_message = "waiting for the first poll…"

    # --- composition ------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(self._empty_message, classes="pane-empty")
        yield from self.compose_body()

    def compose_body(self) -> ComposeResult:
        """The widgets of the pane; give the main one the class ``pane-body``."""
        return iter(())

    def on_mount(self) -> None:
        self._render_title()
        sources = getattr(self.runtime, "sources", None)
        deferred = getattr(self.app, "defer_sources", False)
        if sources is not None and self.pane_id not in sources and not deferred:
            self.set_empty(f"{self.pane_title}: {self.not_configured_text}")
        else:
            self.set_empty(self._empty_message)

    # --- what subclasses call ---------------------------------------------------------------

    def set_counts(self, text: str, problems: int | None = None) -> None:
        """Counts for the title (``12 services · 2 unhealthy``); ``problems`` is the number of
        items that need attention (shown large on the wall monitor)."""
        if problems is not None:
            self.problems = problems
        if text != self._counts:
            self._counts = text
            self._render_title()

    def set_stale(self, reason: str | None, since: float | None = None) -> None:
        text = None
        if reason:
            when = time.strftime("%H:%M:%S", time.localtime(since)) if since else "now"
            text = f"stale since {when} — {reason}"
        if text != self._stale:
            self._stale = text
            self.set_class(bool(text), "-stale")
            self._render_title()

    def set_empty(self, message: str | None) -> None:
        """Show ``message`` instead of the body (None shows the body)."""
        self.set_class(message is not None, "-empty")
        if message is not None and message != self._empty_message:
            self._empty_message = message
            for w in self.query(".pane-empty"):
                if isinstance(w, Static):
                    w.update(message)

    @property
    def stale(self) -> bool:
        return self._stale is not None

    def mark_updated(self) -> None:
        self.last_updated = time.time()

    def show_last_updated(self) -> None:
        """Wall mode: "updated HH:MM" in the subtitle (minute resolution: few redraws)."""
        if self.last_updated is None:
            text = "no data yet"
        else:
            text = "updated " + time.strftime("%H:%M", time.localtime(self.last_updated))
        if text != self._updated_text:
            self._updated_text = text
            self._render_title()

    def _render_title(self) -> None:
        number = f"{self.pane_number} " if self.pane_number else ""
        counts = f" · {self._counts}" if self._counts else ""
        self.border_title = f"{number}{self.pane_title}{counts}"
        self.border_subtitle = self._stale or self._updated_text

    # --- what subclasses implement ----------------------------------------------------------

    def update_snapshot(self, snapshot: Any) -> None:
        """Take a new frozen snapshot from the source (UI thread). Default: remember it."""
        self.snapshot = snapshot
        self.mark_updated()

    def selected_target(self) -> Target:
        """What the cursor points at, so rollback / scale / ack follow the selection."""
        return Target()

    def refresh_rows(self) -> None:
        """Rebuild rows (after a theme change or a filter change)."""

    def focus_body(self) -> None:
        for widget in self.query(".pane-body"):
            if widget.focusable:
                widget.focus()
                return
        if self.focusable:
            self.focus()

    @property
    def colors(self) -> dict[str, str]:
        """Theme colours by variable name (success, warning, error, primary, secondary, ...)."""
        app = self.app
        cache: dict[str, str] | None = getattr(app, "_status_colors", None)
        if cache is None:
            variables = app.get_css_variables()
            cache = {k: variables.get(k, "") for k in
                     ("success", "warning", "error", "primary", "secondary", "accent", "text-muted")}
            if getattr(app, "no_color", False):
                cache = dict.fromkeys(cache, "")
            app._status_colors = cache  # type: ignore[attr-defined]
        return cache
