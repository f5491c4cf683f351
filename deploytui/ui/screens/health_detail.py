"""One service's health in full: every check, the raw payload (pretty-printed, secrets masked)
and its recent state changes. Opened with ``enter`` on the health pane; ``escape`` closes it.

The screen shows the report as of when it was opened (the time is in its title)."""

from __future__ import annotations

import time
from typing import Any, ClassVar

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from deploytui.sources.health import HealthReport
from deploytui.sources.health_formats import mask_text, pretty_payload
from deploytui.ui.panes.health import format_duration, sparkline
from deploytui.ui.status import status_text

__all__ = ["HealthDetailScreen", "check_rows", "summary_lines"]

_CHECK_STATE = {"pass": "healthy", "warn": "degraded", "fail": "unhealthy", "unknown": "unknown"}


def summary_lines(r: HealthReport, now: float) -> list[tuple[str, str]]:
    """(label, value) pairs for the top of the screen."""
    version = r.version or "-"
    if r.drift:
        version += f"  (drift: {r.drift})"
    lines = [
        ("state", f"{r.state}" + (f" — {r.reason}" if r.reason else "")),
        ("env / team", f"{r.env} / {r.team or '-'}"),
        ("endpoint", mask_text(r.url)),
        ("answer", f"HTTP {r.status_code}  {r.content_type or '-'}  format {r.format or '-'}"
         if r.status_code is not None else (r.failure or "no answer")),
        ("latency", f"last {_ms(r.latency_ms)}  p95 {_ms(r.p95_ms)} ({r.latency_level})"),
        ("availability", "-" if r.availability is None else
         f"{r.availability:.3f}% over {r.samples} polls ({r.availability_level})"),
        ("version", version),
        ("uptime", format_duration(r.uptime_s)),
        ("in state for", format_duration(r.time_in_state(now))),
        ("latency trend", sparkline(r.latency_history, 60) or "-"),
    ]
    if r.note:
        lines.append(("note", r.note))
    if r.truncated:
        lines.append(("body", "cut at the size cap; only the first bytes were read"))
    return lines


def check_rows(r: HealthReport) -> list[tuple[str, str, str, str]]:
    """(state word, name, critical / non-critical, detail) for every check."""
    return [(_CHECK_STATE.get(c.status, "unknown"), c.name,
             "critical" if c.critical else "non-critical",
             (c.word + ("  " + c.detail if c.detail else "")).strip()) for c in r.checks]


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


class HealthDetailScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "dismiss", "Close", id="health_detail_close"),
    ]

    DEFAULT_CSS = """
    HealthDetailScreen {
        align: center middle;
    }
    HealthDetailScreen > VerticalScroll {
        width: 96%;
        height: 94%;
        border: round $accent;
        background: $surface;
        padding: 0 1;
    }
    HealthDetailScreen .detail-heading {
        text-style: bold;
        margin-top: 1;
    }
    """

    def __init__(self, report: HealthReport, runtime: Any = None) -> None:
        super().__init__()
        self.report = report
        self.runtime = runtime
        self.opened_at = time.time()

    def compose(self) -> ComposeResult:
        r = self.report
        colors = getattr(self.app, "_status_colors", None) or {}
        scroll = VerticalScroll(id="health-detail")
        scroll.border_title = (f"{r.name} ({r.env}) — as of "
                               f"{time.strftime('%H:%M:%S', time.localtime(self.opened_at))}")
        with scroll:
            head = Table.grid(padding=(0, 2))
            head.add_column(style="bold")
            head.add_column()
            for label, value in summary_lines(r, self.opened_at):
                cell: Text | str = status_text(r.state, colors=colors) + Text(
                    value[len(r.state):]) if label == "state" else value
                head.add_row(label, cell)
            yield Static(head, id="health-detail-summary")

            yield Static(f"Checks ({len(r.checks)})", classes="detail-heading")
            if r.checks:
                checks = Table(box=None, pad_edge=False, show_edge=False)
                for col in ("STATE", "CHECK", "WEIGHT", "DETAIL"):
                    checks.add_column(col)
                for state, name, weight, detail in check_rows(r):
                    checks.add_row(status_text(state, colors=colors), name, weight, detail)
                yield Static(checks, id="health-detail-checks")
            else:
                yield Static("(the answer listed no checks)", id="health-detail-checks")

            yield Static("Raw payload (secrets masked)", classes="detail-heading")
            if r.raw:
                payload = pretty_payload(r.raw)
            elif r.excerpt:
                payload = r.excerpt
            else:
                payload = "(no body)" if r.status_code is not None else f"(no answer: {r.reason})"
            yield Static(Text(payload), id="health-detail-payload")

            yield Static("Recent state changes", classes="detail-heading")
            if r.recent_changes:
                lines = [Text(f"{time.strftime('%H:%M:%S', time.localtime(c.ts))}  "
                              f"{c.from_state} -> {c.to_state}"
                              + (f"  {c.reason}" if c.reason else ""))
                         for c in reversed(r.recent_changes)]
                yield Static(Group(*lines), id="health-detail-changes")
            else:
                yield Static("(none yet)", id="health-detail-changes")

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)
