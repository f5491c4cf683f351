"""The Alerts pane (4): Alertmanager alerts merged with deploytui's own threshold-rule alerts.

One row per (alertname, service, env) group, newest first: severity as a glyph *and* a word
(colour from the theme), age, state (firing / suppressed / acknowledged by whom / inhibited), the
escalation level and response countdown of unacknowledged critical alerts, the value behind a
rule alert and the summary. The title counts alerts per severity. ``f`` cycles the filter
(all, critical, warning, info, unacknowledged, acknowledged, each env); ``enter`` opens
:class:`~deploytui.ui.screens.alert_detail.AlertDetailScreen`; ``a`` / ``A`` (console keys)
acknowledge / un-acknowledge the selected row.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType

from deploytui.model import Target
from deploytui.ui.panes.base import Pane
from deploytui.ui.widgets.vtable import Column, Row, VirtualTable

if TYPE_CHECKING:  # Source modules load after the first frame (they are built in a thread then): types only here.
    from deploytui.sources.alerts import Alert, AlertFilter, AlertsSnapshot

__all__ = ["COLUMNS", "AlertsPane"]

COLUMNS = (
    Column("glyph", "", 1, 1),
    Column("severity", "SEVERITY", 8),
    Column("alert", "ALERT", 0, 12),
    Column("service", "SERVICE", 16),
    Column("env", "ENV", 8),
    Column("age", "AGE", 7, align="right"),
    Column("state", "STATE", 0, 10),
    Column("escalation", "ESCALATION", 16),
    Column("value", "VALUE", 8, align="right"),
    Column("summary", "SUMMARY", 0, 10),
)

_SEV_COLOR = {"critical": "error", "warning": "warning", "info": "primary"}


class AlertsPane(Pane):
    """Alert feed (pane 4)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f", "cycle_filter", "Filter", id="alerts_filter"),
    ]

    pane_id = "alerts"
    pane_title = "Alerts"
    pane_number = 4
    not_configured_text = ("not configured — set [prometheus] url, a service metrics_url or "
                           "[alertmanager] url (see config.example.toml)")

    def __init__(self, runtime: Any, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(runtime, id=id, classes=classes)
        self._filter: AlertFilter | None = None
        self.shown: list[Alert] = []
        self._by_key: dict[str, Alert] = {}

    @property
    def filter(self) -> AlertFilter:
        """What the table shows (``f`` cycles presets); all alerts until changed."""
        if self._filter is None:
            from deploytui.sources.alerts import AlertFilter

            self._filter = AlertFilter()
        return self._filter

    @filter.setter
    def filter(self, value: AlertFilter) -> None:
        self._filter = value

    def compose_body(self) -> ComposeResult:
        yield VirtualTable(COLUMNS, id="alerts-table", classes="pane-body")

    @property
    def table(self) -> VirtualTable:
        return self.query_one("#alerts-table", VirtualTable)

    # --- data ---------------------------------------------------------------------------------

    def update_snapshot(self, snapshot: Any) -> None:
        super().update_snapshot(snapshot)
        extras = getattr(self.runtime, "extras", None)
        if isinstance(extras, dict):
            extras["alerts_snapshot"] = snapshot  # what `a` / `A` act on: the rows shown
        self.refresh_rows()

    def build_table_rows(self, snap: AlertsSnapshot) -> list[Row]:
        """Filter and turn the feed into table rows (benchmarks time this with set_rows)."""
        from deploytui.sources.alerts import apply_filter, build_rows

        self.shown = apply_filter(snap.alerts, self.filter)
        colors = self.colors
        rows: list[Row] = []
        by_key: dict[str, Alert] = {}
        for alert, r in zip(self.shown, build_rows(self.shown, snap.taken_at,
                                                   snap.response_minutes), strict=True):
            # Cells stay plain strings (rows are hashed for the line cache); the severity
            # colour is the row's, with the glyph and the word carrying it without colour.
            color = colors.get(_SEV_COLOR.get(r.severity, "primary"), "")
            if r.acked or r.suppressed:
                style = "dim"
            elif r.severity == "critical":
                style = f"bold {color}" if r.escalation_level >= 2 else color
            else:
                style = color if r.severity == "warning" else ""
            cells = r.cells
            rows.append(Row(r.key, tuple(cells), style))
            by_key[r.key] = alert
        self._by_key = by_key
        return rows

    def refresh_rows(self) -> None:
        snap: AlertsSnapshot | None = self.snapshot
        if snap is None:
            return
        rows = self.build_table_rows(snap)
        if not snap.alerts:
            reason = f" — {snap.error}" if snap.error else ""
            self.set_empty(f"Alerts: none firing{reason}")
        else:
            # A filter that hides every row keeps the (empty) table: it keeps the focus, so
            # `f` still reaches the pane; the title says why nothing shows.
            self.set_empty(None)
        self.table.set_rows(rows)
        c = snap.counts
        parts = [f"{c.get(s, 0)} {s}" for s in ("critical", "warning", "info") if c.get(s, 0)]
        counts = " · ".join(parts) if parts else "0 alerts"
        if c.get("acked"):
            counts += f" · {c['acked']} acked"
        if self._filter is not None and self.filter.label != "all":
            counts += f" · filter {self.filter.label}: {len(rows)} shown"
            if not rows:
                counts += " (f changes it)"
        problems = sum(1 for a in snap.alerts
                       if not a.acked and a.state == "firing" and a.severity != "info")
        self.set_counts(counts, problems=problems)
        if snap.errors:
            self.set_stale("; ".join(snap.errors.values()), snap.taken_at)
        else:
            self.set_stale(None)

    # --- filter -------------------------------------------------------------------------------

    def action_cycle_filter(self) -> None:
        from deploytui.sources.alerts import filter_presets

        snap: AlertsSnapshot | None = self.snapshot
        presets = filter_presets(snap.alerts if snap else ())
        try:
            index = presets.index(self.filter)
        except ValueError:
            index = -1
        self.filter = presets[(index + 1) % len(presets)]
        self.refresh_rows()
        self.notify(f"alerts filter: {self.filter.label}", timeout=2)

    # --- selection ----------------------------------------------------------------------------

    def selected_alert(self) -> Alert | None:
        key = self.table.cursor_key
        return self._by_key.get(key) if key is not None else None

    def selected_target(self) -> Target:
        a = self.selected_alert()
        if a is None:
            return Target()
        deployment = ""
        settings = getattr(self.runtime, "settings", None)
        if settings is not None and a.service:
            svc = settings.service(a.service_key)
            deployment = svc.deployment if svc is not None else ""
        return Target(service=a.service_key if a.service else "", env=a.env,
                      deployment=deployment, alert_fingerprint=a.fingerprint)

    def on_virtual_table_row_selected(self, event: VirtualTable.RowSelected) -> None:
        event.stop()
        alert = self._by_key.get(event.key)
        if alert is None:
            return
        from deploytui.ui.screens.alert_detail import AlertDetailScreen

        self.app.push_screen(AlertDetailScreen(alert, self.snapshot, self.runtime))
