"""The Ports pane: every declared allocation by env, conflicts first, with live state.

Keys: ``/`` filters (service, env, port, source, live state, conflict, file), ``enter`` explains
the selected row (:class:`~deploytui.ui.screens.port_detail.PortDetailScreen`), ``p`` (a console
key) reassigns the selected allocation to its suggested free port after a confirmation. Every
state is a glyph *and* a word, never colour alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType

from deploytui.model import Target
from deploytui.ui.panes.base import Pane
from deploytui.ui.panes.filtering import TextFilter
from deploytui.ui.widgets.vtable import Column, Row, VirtualTable

if TYPE_CHECKING:  # Source modules load after the first frame (they are built in a thread then): types only here.
    from deploytui.sources.ports import Listener, LiveState, PortRow, PortsSnapshot

__all__ = ["PortsPane", "conflict_cell", "live_cell"]

COLUMNS = (
    Column("service", "SERVICE", 18),
    Column("env", "ENV", 8),
    Column("range", "RANGE", 11),
    Column("source", "SOURCE", 10),
    Column("live", "LIVE", 0, 12),
    Column("conflict", "CONFLICT", 20),
    Column("where", "DECLARED IN", 0, 10),
)

SHORT_KIND = {
    "overlap": "overlap",
    "duplicate_port": "duplicate port",
    "compose_clash": "compose clash",
    "duplicate_nodeport": "dup. nodePort",
    "outside_range": "outside range",
    "privileged": "privileged",
    "malformed": "malformed",
}

LIVE_GLYPH = {"listening": "●", "partial": "◐", "closed": "○", "timeout": "⌛", "error": "✗",
              "not probed": "·"}


def live_cell(live: LiveState) -> str:
    """``● listening pid 42 python3``, ``○ closed``, ``· not probed``."""
    glyph = LIVE_GLYPH.get(live.state, "?")
    return f"{glyph} {live.state} {live.detail}".rstrip()


def conflict_cell(row: PortRow) -> str:
    """``✗ duplicate port``, ``✗ overlap +1`` or ``✓ ok``."""
    if not row.conflicts:
        return "✓ ok"
    kinds = list(dict.fromkeys(c.kind for c in row.conflicts))
    more = f" +{len(kinds) - 1}" if len(kinds) > 1 else ""
    return f"✗ {SHORT_KIND.get(kinds[0], kinds[0])}{more}"


def _listener_key(x: Listener) -> str:
    return f"listener|{x.protocol}|{x.host}|{x.port}"


class PortsPane(TextFilter, Pane):
    """Port allocations (pane 3)."""

    filter_input_id = "ports-filter"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter", id="ports_filter"),
        Binding("escape", "clear_filter", "Clear filter", show=False, id="ports_clear_filter"),
    ]

    pane_id = "ports"
    pane_title = "Ports"
    pane_number = 3
    not_configured_text = ("not configured — set [ports] registry, compose_files or "
                           "[ports.allocations] (see config.example.toml)")

    def __init__(self, runtime: Any, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(runtime, id=id, classes=classes)
        self.filter_text = ""
        self._by_key: dict[str, PortRow | Listener] = {}
        self._stale_since: float | None = None

    def compose_body(self) -> ComposeResult:
        yield self.filter_box("filter: service, env, port, source, live, conflict, file — "
                              "esc clears")
        yield VirtualTable(COLUMNS, id="ports-table", classes="pane-body")

    @property
    def table(self) -> VirtualTable:
        return self.query_one("#ports-table", VirtualTable)

    # --- data ---------------------------------------------------------------------------------

    def update_snapshot(self, snapshot: Any) -> None:
        super().update_snapshot(snapshot)
        extras = getattr(self.runtime, "extras", None)
        if isinstance(extras, dict):
            extras["ports_snapshot"] = snapshot  # what `p` acts on: the rows the operator sees
        self.refresh_rows()

    def refresh_rows(self) -> None:
        snap: PortsSnapshot | None = self.snapshot
        if snap is None:
            return
        from deploytui.actions.ports import row_key

        if not snap.rows and not snap.listeners:
            self.set_empty("Ports: no allocations declared" +
                           (f" — {snap.errors[0]}" if snap.errors else ""))
        else:
            self.set_empty(None)
        rows: list[Row] = []
        by_key: dict[str, PortRow | Listener] = {}
        colors = self.colors
        needle = self.filter_text.lower().strip()
        for r in snap.rows:
            a = r.allocation
            cells = (a.service, a.env, a.range_text if a.protocol == "tcp" else
                     f"{a.range_text}/{a.protocol}", a.source, live_cell(r.live), conflict_cell(r),
                     a.where)
            if needle and not self._matches(needle, (*cells, a.description,
                                                     *(c.kind for c in r.conflicts))):
                continue
            key = row_key(a)
            by_key[key] = r
            style = colors.get("error", "") if r.conflicted else ""
            rows.append(Row(key, cells, style))
        for x in snap.listeners:
            cells = ("(undeclared)", "", str(x.port), "live", f"● listening {x.owner}",
                     "? undeclared", f"{x.host}:{x.port}")
            if needle and not self._matches(needle, cells):
                continue
            key = _listener_key(x)
            by_key[key] = x
            rows.append(Row(key, cells, colors.get("warning", "")))
        self._by_key = by_key
        self.table.set_rows(rows)
        n_conflicts = len(snap.conflicts)
        counts = f"{len(snap.rows)} allocations · {n_conflicts} conflict{'s' if n_conflicts != 1 else ''}"
        if snap.listeners:
            counts += f" · {len(snap.listeners)} undeclared"
        if needle:
            counts += f" · filter {self.filter_text!r}: {len(rows)} shown"
        self.set_counts(counts, problems=n_conflicts)
        if snap.stale or snap.errors:
            if self._stale_since is None:  # since the first failed poll, not the latest
                self._stale_since = snap.taken_at
            self.set_stale("; ".join(snap.errors) or "last poll failed", self._stale_since)
        else:
            self._stale_since = None
            self.set_stale(None)

    @staticmethod
    def _matches(needle: str, values: tuple[str, ...]) -> bool:
        return any(needle in str(v).lower() for v in values)

    # --- selection ----------------------------------------------------------------------------

    def selected_row(self) -> PortRow | Listener | None:
        key = self.table.cursor_key
        return self._by_key.get(key) if key is not None else None

    def selected_target(self) -> Target:
        from deploytui.actions.ports import row_key
        from deploytui.sources.ports import PortRow

        row = self.selected_row()
        if not isinstance(row, PortRow):
            return Target()
        a = row.allocation
        return Target(service=f"{a.env}/{a.service}", env=a.env, port_service=row_key(a))

    def on_virtual_table_row_selected(self, event: VirtualTable.RowSelected) -> None:
        event.stop()
        row = self._by_key.get(event.key)
        if row is None:
            return
        from deploytui.ui.screens.port_detail import PortDetailScreen

        self.app.push_screen(PortDetailScreen(row, self.runtime))
