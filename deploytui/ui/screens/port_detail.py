"""What ``enter`` on a Ports row shows: the allocation, where it was declared, whether it is
listening (and which process holds it), each conflict with both parties and where each was
declared, and the suggested free port. ``p`` reassigns from here too (through the console's
confirm-and-run flow, so read-only and the confirmation apply)."""

from __future__ import annotations

from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from deploytui.actions.ports import rewrite_refusal
from deploytui.sources.ports import Listener, PortRow
from deploytui.sources.ports_conflicts import format_range

__all__ = ["PortDetailScreen", "detail_lines"]


def detail_lines(row: PortRow | Listener) -> tuple[str, list[str]]:
    """(title, lines) describing ``row`` for the operator."""
    if isinstance(row, Listener):
        return (f"Undeclared listener on port {row.port}", [
            f"{row.protocol} {row.host}:{row.port}, held by {row.owner}",
            "No registry, config, compose or Kubernetes entry declares this port.",
            "Declare it in the [ports] registry, or stop the process if it should not run.",
        ])
    a = row.allocation
    lines = [
        f"range:       {a.range_text}/{a.protocol}" + (f" on {a.host}" if a.host else ""),
        f"declared in: {a.where}  ({a.source}{', ' + a.kind if a.kind != 'port' else ''})",
    ]
    if a.description:
        lines.append(f"description: {a.description}")
    if a.target:
        lines.append(f"target port: {a.target}")
    if a.error:
        lines.append(f"malformed:   {a.error}")
    live = row.live
    lines.append(f"live:        {live.state}" + (f" — {live.detail}" if live.detail else ""))
    for owner in live.owners:
        lines.append(f"             {owner.host}:{owner.port} {owner.protocol} held by {owner.owner}")
    lines.append("")
    if not row.conflicts:
        lines.append("✓ no conflict")
    for c in row.conflicts:
        first, *rest = c.explain().splitlines()
        lines.append(f"✗ {first}")
        lines.extend(f"  {line}" for line in rest)
        lines.append("")
    if row.suggestion is not None:
        why = rewrite_refusal(a)
        target = format_range(*row.suggestion)
        if why:
            lines.append(f"suggested free port: {target} — {why}")
        else:
            lines.append(f"p: reassign {a.label} to {target} (writes {a.origin}, after a confirmation)")
    return f"{a.label} {a.range_text}", lines


class PortDetailScreen(ModalScreen[None]):
    """Explains one Ports row; esc closes, p reassigns (not in read-only mode)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,enter,q", "close", "Close", id="port_detail_close"),
        Binding("p", "port_reassign", "Reassign port", id="port_detail_reassign"),
    ]

    DEFAULT_CSS = """
    PortDetailScreen {
        align: center middle;
    }
    PortDetailScreen > VerticalScroll {
        width: 100;
        max-width: 100%;
        height: auto;
        max-height: 90%;
        border: thick $primary;
        background: $surface;
        padding: 0 1;
    }
    PortDetailScreen .title {
        text-style: bold;
        margin-bottom: 1;
    }
    PortDetailScreen .hint {
        color: $text-muted;
        margin-top: 1;
    }
    """

    def __init__(self, row: PortRow | Listener, runtime: Any) -> None:
        super().__init__()
        self.row = row
        self.runtime = runtime

    def compose(self) -> ComposeResult:
        title, lines = detail_lines(self.row)
        with VerticalScroll():
            yield Label(title, classes="title", markup=False)
            yield Static("\n".join(lines).rstrip(), id="port-detail-body", markup=False)
            keys = "esc close" if not self._can_reassign() else "p reassign · esc close"
            yield Static(keys, classes="hint")

    def _can_reassign(self) -> bool:
        """Only a registry entry, and not in read-only mode (the door refuses both anyway)."""
        return (isinstance(self.row, PortRow) and rewrite_refusal(self.row.allocation) is None
                and not bool(getattr(self.runtime, "read_only", False)))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "port_reassign":
            return self._can_reassign()
        return True

    def action_close(self) -> None:
        self.dismiss(None)

    async def action_port_reassign(self) -> None:
        from deploytui.ui.console_screen import ConsoleScreen

        self.dismiss(None)
        console = getattr(self.app, "get_screen_console", lambda: None)()
        if isinstance(console, ConsoleScreen):
            # the console's own path: read-only check again, plan, confirm, door
            await console.run_action_string("port_reassign")
