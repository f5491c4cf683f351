"""What ``enter`` on an Alerts row shows: labels, annotations, the PromQL behind the alert, who
acknowledged it, its escalation, and a sparkline of the metric (Prometheus ``query_range`` of the
alert's expression, or deploytui's rule history for its own rule alerts). ``a`` / ``A``
acknowledge / un-acknowledge from here through the console's confirm-and-run flow."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Sparkline, Static

from deploytui.actions.door import MUTATING_ACTIONS
from deploytui.model import Target
from deploytui.rules import RULE_METRICS
from deploytui.sources.alerts import (
    GLYPHS,
    Alert,
    AlertsSnapshot,
    escalation,
    format_age,
    format_countdown,
)
from deploytui.sources.metrics import METRIC_LABELS, METRIC_UNITS, format_value

__all__ = ["AlertDetailScreen", "detail_lines", "sparkline_caption"]


def _utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def detail_lines(alert: Alert, snap: AlertsSnapshot | None, now: float) -> tuple[str, list[str]]:
    """(title, lines) describing one feed row for the operator."""
    a = alert
    where = a.service_key or "the fleet"
    title = f"{GLYPHS.get(a.severity, '●')} {a.severity} {a.alertname} — {where}"
    origin = "Alertmanager" if a.origin == "alertmanager" else "deploytui threshold rule"
    lines = [
        f"source:      {origin}" + (f" ({a.count} alerts in this group)" if a.count > 1 else ""),
        f"state:       {a.state}" + (" (inhibited)" if a.inhibited else ""),
        f"started:     {_utc(a.starts_at)} ({format_age(now - a.starts_at)} ago)",
        f"priority:    {a.priority}",
    ]
    if a.ack is not None:
        lines.append(f"acknowledged by {a.ack.by} at {_utc(a.ack.at)}, until {_utc(a.ack.until)}")
        if a.ack.comment:
            lines.append(f"             “{a.ack.comment}”")
        if a.ack.silence_ids:
            lines.append(f"             silence {', '.join(a.ack.silence_ids)}")
    else:
        lines.append("not acknowledged — a acknowledges it for every operator")
    minutes = snap.response_minutes if snap is not None else {}
    esc = escalation(a, now, minutes)
    if esc is not None:
        nxt = (f"; L{esc.level + 1} in {format_countdown(esc.due_in_s)}" if esc.due_in_s is not None
               else "; at the last level")
        lines.append(f"escalation:  L{esc.level} ({esc.priority}, respond within "
                     f"{format_age(esc.response_s)}){nxt}")
    lines.append("")
    if a.origin == "rule":
        unit = METRIC_UNITS.get(a.metric, "")
        value = "-" if a.value is None or math.isnan(a.value) else format_value(a.value, unit)
        threshold = "-" if a.threshold is None else format_value(a.threshold, unit)
        lines.append(f"metric:      {METRIC_LABELS.get(a.metric, a.metric)} = {value} "
                     f"({a.level} level > {threshold})")
        rule_key = next((k for k, v in RULE_METRICS.items() if v[0] == a.metric), "")
        if rule_key:
            lines.append(f"rule:        [rules] {rule_key}")
        query = snap.metrics.queries.get(a.metric, "") if snap and snap.metrics else ""
        lines.append(f"PromQL:      {query}" if query else
                     "PromQL:      (computed from a direct scrape of the services' /metrics)")
    else:
        lines.append(f"PromQL:      {a.promql or '(the alert carries no generator URL)'}")
    lines.append("")
    lines.append("labels:")
    lines.extend(f"  {k}={v}" for k, v in sorted(a.labels.items()))
    if a.annotations:
        lines.append("annotations:")
        for k, v in sorted(a.annotations.items()):
            lines.append(f"  {k}: {v}")
    return title, lines


def sparkline_caption(points: Sequence[tuple[float, float]], metric: str = "") -> str:
    values = [v for _, v in points if not math.isnan(v)]
    if not values:
        return "no data for a sparkline in this window"
    unit = METRIC_UNITS.get(metric, "")
    span = points[-1][0] - points[0][0] if len(points) > 1 else 0.0
    return (f"last {format_value(values[-1], unit)} · min {format_value(min(values), unit)} · "
            f"max {format_value(max(values), unit)} · over {format_age(span)}")


class AlertDetailScreen(ModalScreen[None]):
    """Explains one Alerts row; esc closes; a / A acknowledge / un-acknowledge."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,enter,q", "close", "Close", id="alert_detail_close"),
        Binding("a", "ack", "Ack", id="alert_detail_ack"),
        Binding("A", "unack", "Un-ack", id="alert_detail_unack"),
    ]

    DEFAULT_CSS = """
    AlertDetailScreen {
        align: center middle;
    }
    AlertDetailScreen > VerticalScroll {
        width: 110;
        max-width: 100%;
        height: auto;
        max-height: 90%;
        border: thick $primary;
        background: $surface;
        padding: 0 1;
    }
    AlertDetailScreen .title {
        text-style: bold;
        margin-bottom: 1;
    }
    AlertDetailScreen Sparkline {
        height: 3;
        margin-top: 1;
    }
    AlertDetailScreen .caption, AlertDetailScreen .hint {
        color: $text-muted;
    }
    """

    def __init__(self, alert: Alert, snapshot: AlertsSnapshot | None, runtime: Any) -> None:
        super().__init__()
        self.alert = alert
        self.snapshot = snapshot
        self.runtime = runtime
        self.points: list[tuple[float, float]] = []

    def compose(self) -> ComposeResult:
        now = self.snapshot.taken_at if self.snapshot is not None else time.time()
        title, lines = detail_lines(self.alert, self.snapshot, now)
        with VerticalScroll():
            yield Label(title, classes="title", id="alert-detail-title")
            yield Static("\n".join(lines), id="alert-detail-body", markup=False)
            yield Sparkline([], id="alert-detail-sparkline")
            yield Static("loading the metric…", classes="caption", id="alert-detail-caption")
            yield Static("esc close · a acknowledge · A un-acknowledge", classes="hint")

    def on_mount(self) -> None:
        self.run_worker(self._load_sparkline(), group="alert_detail", exit_on_error=False)

    async def _load_sparkline(self) -> None:
        source = getattr(self.runtime, "sources", {}).get("alerts")
        points: list[tuple[float, float]] = []
        if self.alert.origin == "rule" and self.snapshot is not None:
            points = list(self.snapshot.history.get(self.alert.fingerprint, ()))
        if not points and source is not None and hasattr(source, "sparkline"):
            try:
                points = await source.sparkline(self.alert)
            except Exception as exc:  # the detail must open even when the query fails
                self.query_one("#alert-detail-caption", Static).update(
                    f"sparkline unavailable: {exc}")
                return
        self.points = points
        values = [v for _, v in points if not math.isnan(v)]
        spark = self.query_one("#alert-detail-sparkline", Sparkline)
        spark.data = values
        spark.display = bool(values)  # a flat line would read as "zero", not "no data"
        self.query_one("#alert-detail-caption", Static).update(
            sparkline_caption(points, self.alert.metric))

    def action_close(self) -> None:
        self.dismiss(None)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in MUTATING_ACTIONS and getattr(self.runtime, "read_only", False):
            return False
        return True

    def _run(self, name: str) -> None:
        console = getattr(self.app, "get_screen_console", lambda: None)()
        if console is None:
            return
        from deploytui.ui import flows

        target = Target(service=self.alert.service_key, env=self.alert.env,
                        alert_fingerprint=self.alert.fingerprint)
        self.dismiss(None)
        getattr(flows, name)(console, target)

    def action_ack(self) -> None:
        self._run("ack")

    def action_unack(self) -> None:
        self._run("unack")
