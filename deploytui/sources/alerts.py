"""The alert feed: Alertmanager alerts merged with our own threshold-rule alerts.

:class:`AlertsSource` polls, per cycle and concurrently, the metrics (Prometheus, or the direct
scrape when no Prometheus is configured) and Alertmanager (alerts + silences); feeds the
figures to :class:`deploytui.rules.RuleEngine`; and publishes one frozen :class:`AlertsSnapshot`
holding the merged feed **and** the latest :class:`MetricsSnapshot` (the guard and the health
detail read their figures from it).

Feed rules:

* grouped by (alertname, service, env); duplicates (same fingerprint, e.g. an HA Prometheus
  pair) are dropped; one group is one row with ``count`` members; newest first;
* severity is the highest of the members; state ``suppressed`` when every member is silenced
  or inhibited; ``acknowledged`` when every member has an active silence (Alertmanager) or a
  local acknowledgement (rule alerts, :class:`RuleAckStore`), with who, when and until when;
* priority: a ``priority`` label (P1-P4) when the alert has one; otherwise critical in
  prod/production is P1, other critical P2, warning P3, info P4;
* escalation (unacknowledged critical alerts only): with the priority's response time R from
  ``[rules] response_minutes``: L1 (on-call) from the start, L2 once R has passed, L3 at 2R, L4
  at 4R; the countdown is the time left to the next level (none at L4; none for P4).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Literal, Protocol, runtime_checkable

from deploytui.config import Settings
from deploytui.errors import SourceError
from deploytui.model import EventSink, Section, TimelineEvent, utcnow
from deploytui.rules import RuleAlert, RuleEngine
from deploytui.sources import wake_from_any_thread
from deploytui.sources.alertmanager import (
    AlertmanagerClient,
    AmAlert,
    Matcher,
    Silence,
    ack_matchers,
    acks_by_fingerprint,
)
from deploytui.sources.metrics import METRIC_LABELS, METRIC_UNITS, MetricsSnapshot, format_value

__all__ = [
    "SEVERITIES",
    "Ack",
    "Alert",
    "AlertFilter",
    "AlertRow",
    "AlertsSnapshot",
    "AlertsSource",
    "Escalation",
    "MemoryRuleAckStore",
    "RuleAckStore",
    "StoreRuleAcks",
    "apply_filter",
    "build_rows",
    "escalation",
    "filter_presets",
    "format_age",
    "format_countdown",
    "latest_metrics",
    "make_metrics",
    "make_source",
    "merge_alerts",
    "priority_of",
    "rule_ack_store",
    "snapshot_section",
]

log = logging.getLogger(__name__)

#: Severity order, worst first.
SEVERITIES: tuple[str, ...] = ("critical", "warning", "info")
_SEV_RANK = {"critical": 0, "warning": 1, "info": 2}
GLYPHS: Mapping[str, str] = MappingProxyType({"critical": "✖", "warning": "▲", "info": "●"})


# --- acknowledgements ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Ack:
    """Who acknowledged an alert, when, until when, and why."""

    by: str
    at: float
    until: float
    comment: str = ""
    silence_ids: tuple[str, ...] = ()     # Alertmanager silences; () for a local rule-alert ack
    origin: Literal["alertmanager", "local"] = "alertmanager"

    @classmethod
    def from_silences(cls, silences: Sequence[Silence]) -> Ack:
        first = min(silences, key=lambda s: s.starts_at)
        return cls(first.created_by, first.starts_at, max(s.ends_at for s in silences),
                   first.comment, tuple(s.id for s in silences), "alertmanager")


@runtime_checkable
class RuleAckStore(Protocol):
    """Where acknowledgements of our own rule alerts live (the local store, or memory)."""

    def rule_acks(self) -> Mapping[str, Ack]:
        """Every acknowledgement by rule-alert fingerprint (expired ones may be included)."""
        ...

    def set_rule_ack(self, fingerprint: str, ack: Ack) -> None: ...

    def clear_rule_ack(self, fingerprint: str) -> bool:
        """Remove an acknowledgement; False when there was none."""
        ...


class MemoryRuleAckStore:
    """In-memory :class:`RuleAckStore` (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._acks: dict[str, Ack] = {}

    def rule_acks(self) -> Mapping[str, Ack]:
        with self._lock:
            return dict(self._acks)

    def set_rule_ack(self, fingerprint: str, ack: Ack) -> None:
        with self._lock:
            self._acks[fingerprint] = ack

    def clear_rule_ack(self, fingerprint: str) -> bool:
        with self._lock:
            return self._acks.pop(fingerprint, None) is not None


class StoreRuleAcks:
    """:class:`RuleAckStore` on the embedded SQLite store (``deploytui.store.Store``'s
    ``ack_alert`` / ``unack_alert`` / ``alert_acks``), so rule-alert acks survive restarts."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def rule_acks(self) -> Mapping[str, Ack]:
        return {key: Ack(a.acked_by, a.acked_at,
                         a.expires_at if a.expires_at is not None else math.inf,
                         a.comment, (), "local")
                for key, a in self.store.alert_acks().items()}

    def set_rule_ack(self, fingerprint: str, ack: Ack) -> None:
        self.store.ack_alert(fingerprint, ack.by, until=ack.until, comment=ack.comment,
                             now=ack.at)

    def clear_rule_ack(self, fingerprint: str) -> bool:
        return bool(self.store.unack_alert(fingerprint))


def rule_ack_store(runtime: Any) -> RuleAckStore:
    """The runtime's rule-ack store: the SQLite store when the journal is one, else one shared
    in-memory store; kept in ``runtime.extras["rule_acks"]`` so the source and actions agree."""
    existing = runtime.extras.get("rule_acks")
    if existing is not None:
        return existing  # type: ignore[no-any-return]
    journal = getattr(runtime, "journal", None)
    store: RuleAckStore
    if isinstance(journal, RuleAckStore):
        store = journal
    elif all(callable(getattr(journal, m, None)) for m in ("ack_alert", "unack_alert",
                                                          "alert_acks")):
        store = StoreRuleAcks(journal)
    else:
        store = MemoryRuleAckStore()
    runtime.extras["rule_acks"] = store
    return store


# --- the feed -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Escalation:
    level: int                 # 1..4
    priority: str              # P1..P3
    response_s: float
    elapsed_s: float
    due_in_s: float | None     # time left until the next level (None at L4)

    @property
    def text(self) -> str:
        """``L2 P1 →L3 9m59s``: the level, the priority and the time left to the next level."""
        if self.due_in_s is None:
            return f"L{self.level} {self.priority}"
        return f"L{self.level} {self.priority} →L{self.level + 1} {format_countdown(self.due_in_s)}"


@dataclass(frozen=True)
class Alert:
    """One row of the feed: a group of alerts with the same alertname, service and env."""

    fingerprint: str                      # the representative member's fingerprint
    origin: Literal["alertmanager", "rule"]
    alertname: str
    service: str
    env: str
    severity: str                         # critical, warning, info
    summary: str
    starts_at: float
    state: str                            # firing, suppressed
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    ack: Ack | None = None
    count: int = 1
    fingerprints: tuple[str, ...] = ()
    promql: str = ""                      # the expression behind it (Prometheus alerts)
    metric: str = ""                      # rule alerts: the metric name
    value: float | None = None            # rule alerts: the last value
    threshold: float | None = None        # rule alerts: the level's threshold
    level: str = ""                       # rule alerts: Warning / Critical / Rollback
    priority: str = ""
    inhibited: bool = False
    matchers: tuple[Matcher, ...] = ()    # what an acknowledgement silence would match

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.alertname, self.service, self.env)

    @property
    def acked(self) -> bool:
        return self.ack is not None

    @property
    def service_key(self) -> str:
        return f"{self.env}/{self.service}" if self.env else self.service

    @property
    def value_text(self) -> str:
        if self.value is None:
            return ""
        return format_value(self.value, METRIC_UNITS.get(self.metric, ""))


def priority_of(severity: str, env: str, labels: Mapping[str, str] | None = None) -> str:
    label = (labels or {}).get("priority", "").upper()
    if re.fullmatch(r"P[1-4]", label):
        return label
    if severity == "critical":
        return "P1" if env in ("prod", "production") else "P2"
    return "P3" if severity == "warning" else "P4"


def escalation(alert: Alert, now: float, response_minutes: Mapping[str, float]
               ) -> Escalation | None:
    """The escalation level of an unacknowledged critical alert (None otherwise)."""
    if alert.severity != "critical" or alert.acked or alert.state == "suppressed":
        return None
    minutes = response_minutes.get(alert.priority)
    if not minutes:
        return None
    r = float(minutes) * 60.0
    elapsed = max(0.0, now - alert.starts_at)
    bounds = (r, 2 * r, 4 * r)
    level = 1 + sum(1 for b in bounds if elapsed >= b)
    due = None if level == 4 else bounds[level - 1] - elapsed
    return Escalation(level, alert.priority, r, elapsed, due)


def format_countdown(seconds: float) -> str:
    """A response-time countdown, to the second (``14m05s``)."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return format_age(s)


def format_age(seconds: float) -> str:
    """``45s``, then whole minutes (``12m``): an age need not redraw the row every second."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    return f"{s // 86400}d{(s % 86400) // 3600:02d}h"


def _sev(value: str) -> str:
    v = value.lower()
    if v in ("critical", "page", "error", "high", "p1", "p2"):
        return "critical"
    if v in ("warning", "warn", "medium", "p3"):
        return "warning"
    return "info"


def _rule_to_alert(r: RuleAlert, acks: Mapping[str, Ack], now: float) -> Alert:
    ack = acks.get(r.fingerprint)
    if ack is not None and ack.until <= now:
        ack = None
    labels = {"alertname": r.alertname, "service": r.service, "env": r.env,
              "severity": r.severity, "level": r.level.word, "source": "deploytui"}
    annotations = {"summary": r.summary,
                   "description": (f"{METRIC_LABELS.get(r.metric, r.metric)} of {r.service} in "
                                   f"{r.env or 'every env'} is {r.value:.4g}; the "
                                   f"{r.level.word} level is > {r.threshold:g}")}
    return Alert(
        fingerprint=r.fingerprint, origin="rule", alertname=r.alertname, service=r.service,
        env=r.env, severity=r.severity, summary=r.summary, starts_at=r.since,
        state="suppressed" if ack else "firing", labels=MappingProxyType(labels),
        annotations=MappingProxyType(annotations), ack=ack, fingerprints=(r.fingerprint,),
        metric=r.metric, value=r.value, threshold=r.threshold, level=r.level.word,
        priority=priority_of(r.severity, r.env), matchers=())


def merge_alerts(am_alerts: Iterable[AmAlert], silences: Iterable[Silence],
                 rule_alerts: Iterable[RuleAlert], rule_acks: Mapping[str, Ack],
                 now: float) -> tuple[Alert, ...]:
    """Group, deduplicate and order Alertmanager and rule alerts (newest first)."""
    seen: set[str] = set()
    unique: list[AmAlert] = []
    for a in am_alerts:
        if a.fingerprint in seen:
            continue
        seen.add(a.fingerprint)
        unique.append(a)
    silences = list(silences)
    acks = acks_by_fingerprint(unique, silences)
    groups: dict[tuple[str, str, str], list[AmAlert]] = {}
    for a in unique:
        env = a.labels.get("env") or a.labels.get("environment", "")
        groups.setdefault((a.alertname, a.labels.get("service", ""), env), []).append(a)
    out: dict[tuple[str, str, str], Alert] = {}
    for (name, service, env), members in groups.items():
        members.sort(key=lambda m: (_SEV_RANK.get(_sev(m.severity), 2), -m.starts_at))
        rep = members[0]
        severity = _sev(rep.severity)
        member_acks = [acks.get(m.fingerprint) for m in members]
        ack = None
        if all(member_acks):
            ack = Ack.from_silences([s for group in member_acks if group for s in group])
        suppressed = all(m.state == "suppressed" for m in members)
        inhibited = any(m.inhibited_by for m in members) and not ack
        common = {k: v for k, v in rep.labels.items()
                  if all(m.labels.get(k) == v for m in members)}
        try:
            matchers = ack_matchers(common)
        except ValueError:
            matchers = ()
        summary = (rep.annotations.get("summary") or rep.annotations.get("description")
                   or rep.annotations.get("message") or name)
        out[(name, service, env)] = Alert(
            fingerprint=rep.fingerprint, origin="alertmanager", alertname=name,
            service=service, env=env, severity=severity, summary=summary,
            starts_at=min(m.starts_at for m in members),
            state="suppressed" if (suppressed or ack) else "firing",
            labels=rep.labels, annotations=rep.annotations, ack=ack, count=len(members),
            fingerprints=tuple(m.fingerprint for m in members), promql=rep.promql,
            priority=priority_of(severity, env, rep.labels), inhibited=inhibited,
            matchers=matchers)
    for r in rule_alerts:
        alert = _rule_to_alert(r, rule_acks, now)
        existing = out.get(alert.key)
        if existing is None or _SEV_RANK[alert.severity] < _SEV_RANK[existing.severity]:
            if existing is not None:
                alert = replace(alert, count=alert.count + existing.count,
                                fingerprints=(*alert.fingerprints, *existing.fingerprints))
            out[alert.key] = alert
        else:
            out[alert.key] = replace(existing, count=existing.count + 1,
                                     fingerprints=(*existing.fingerprints, alert.fingerprint))
    return tuple(sorted(out.values(), key=lambda a: (-a.starts_at, a.alertname, a.service_key)))


def _counts(alerts: Iterable[Alert]) -> dict[str, int]:
    counts = dict.fromkeys(SEVERITIES, 0)
    counts["acked"] = 0
    for a in alerts:
        counts[a.severity] = counts.get(a.severity, 0) + 1
        counts["acked"] += a.acked
    return counts


@dataclass(frozen=True)
class AlertsSnapshot:
    """What the alerts pane shows, plus the metrics the guard and the health detail read.

    ``errors`` names each part that could not be read this poll (``prometheus``, ``scrape``,
    ``alertmanager``) with the operator-facing reason; ``parts`` lists the configured parts.
    """

    alerts: tuple[Alert, ...] = ()
    metrics: MetricsSnapshot | None = None
    counts: Mapping[str, int] = field(default_factory=dict)
    errors: Mapping[str, str] = field(default_factory=dict)
    parts: tuple[str, ...] = ()
    silences: tuple[Silence, ...] = ()
    history: Mapping[str, tuple[tuple[float, float], ...]] = field(default_factory=dict)
    response_minutes: Mapping[str, float] = field(default_factory=dict)
    duration_s: float = 0.0
    taken_at: float = field(default_factory=utcnow)

    @property
    def error(self) -> str | None:
        """Set when no configured part could be read at all."""
        if self.parts and all(p in self.errors for p in self.parts):
            return "; ".join(self.errors[p] for p in self.parts)
        return None

    @property
    def stale(self) -> bool:
        return bool(self.errors)

    def find(self, fingerprint: str) -> Alert | None:
        for a in self.alerts:
            if a.fingerprint == fingerprint or fingerprint in a.fingerprints:
                return a
        return None

    def escalation(self, alert: Alert, now: float | None = None) -> Escalation | None:
        return escalation(alert, self.taken_at if now is None else now, self.response_minutes)


# --- filters and rows (shared by the pane, the snapshot command and the benchmark) -----------


@dataclass(frozen=True)
class AlertFilter:
    severity: str = ""          # "" all, or critical / warning / info
    env: str = ""               # "" all, or one env
    acked: bool | None = None   # None all, False unacknowledged only, True acknowledged only

    @property
    def label(self) -> str:
        parts = []
        if self.severity:
            parts.append(self.severity)
        if self.env:
            parts.append(f"env={self.env}")
        if self.acked is not None:
            parts.append("acknowledged" if self.acked else "unacknowledged")
        return ", ".join(parts) or "all"

    def accepts(self, a: Alert) -> bool:
        if self.severity and a.severity != self.severity:
            return False
        if self.env and a.env != self.env:
            return False
        return self.acked is None or a.acked == self.acked


def filter_presets(alerts: Iterable[Alert]) -> tuple[AlertFilter, ...]:
    """What ``f`` cycles through: all, each severity, unacknowledged, acknowledged, each env."""
    envs = sorted({a.env for a in alerts if a.env})
    return (AlertFilter(), AlertFilter(severity="critical"), AlertFilter(severity="warning"),
            AlertFilter(severity="info"), AlertFilter(acked=False), AlertFilter(acked=True),
            *(AlertFilter(env=e) for e in envs))


def apply_filter(alerts: Iterable[Alert], flt: AlertFilter) -> list[Alert]:
    return [a for a in alerts if flt.accepts(a)]


@dataclass(frozen=True, slots=True)
class AlertRow:
    """One feed row as text cells; ``key`` identifies it across refreshes."""

    key: str
    severity: str
    cells: tuple[str, ...]
    escalation_level: int = 0
    acked: bool = False
    suppressed: bool = False


ROW_COLUMNS: tuple[str, ...] = ("", "severity", "alert", "service", "env", "age", "state",
                                "escalation", "value", "summary")


def build_rows(alerts: Sequence[Alert], now: float, response_minutes: Mapping[str, float]
               ) -> list[AlertRow]:
    rows = []
    for a in alerts:
        esc = escalation(a, now, response_minutes)
        if a.ack is not None:
            state = f"ack {a.ack.by}"
        elif a.inhibited:
            state = "inhibited"
        else:
            state = a.state
        name = a.alertname if a.count == 1 else f"{a.alertname} ×{a.count}"
        rows.append(AlertRow(
            key=a.fingerprint, severity=a.severity,
            cells=(GLYPHS.get(a.severity, "●"), a.severity, name, a.service or "-",
                   a.env or "-", format_age(now - a.starts_at), state,
                   esc.text if esc else "", a.value_text, a.summary),
            escalation_level=esc.level if esc else 0, acked=a.acked,
            suppressed=a.state == "suppressed"))
    return rows


# --- the source ---------------------------------------------------------------------------------


class _Metrics(Protocol):
    name: str

    async def fetch(self) -> MetricsSnapshot: ...

    async def query_range(self, expr: str, start: float, end: float, step: float,
                          match: Mapping[str, str] | None = None
                          ) -> list[tuple[float, float]]: ...


def make_metrics(settings: Settings) -> _Metrics | None:
    """Prometheus when ``[prometheus] url`` is set, else the direct scrape of the services'
    ``metrics_url`` (None when neither is configured)."""
    if settings.prometheus.url:
        from deploytui.sources.prometheus import PrometheusMetrics

        return PrometheusMetrics(settings)
    if any(s.metrics_url for s in settings.services):
        from deploytui.sources.scrape import ScrapeMetrics

        return ScrapeMetrics(settings)
    return None


class AlertsSource:
    """Metrics + rules + Alertmanager -> :class:`AlertsSnapshot`, once per refresh interval."""

    name = "alerts"

    def __init__(self, settings: Settings, *, metrics: _Metrics | None = None,
                 alertmanager: AlertmanagerClient | None = None,
                 rule_acks: RuleAckStore | None = None, journal: EventSink | None = None,
                 engine: RuleEngine | None = None, clock: Callable[[], float] = time.time,
                 interval: float | None = None) -> None:
        self.settings = settings
        self.metrics = metrics
        self.alertmanager = alertmanager
        self.rule_acks: RuleAckStore = rule_acks if rule_acks is not None else MemoryRuleAckStore()
        self.journal = journal
        self.engine = engine or RuleEngine.from_settings(settings.rules)
        self.clock = clock
        self.interval = interval if interval is not None else settings.console.refresh_interval
        self.last: AlertsSnapshot | None = None
        self._known: dict[tuple[str, str, str], str] = {}
        self._first = True
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def parts(self) -> tuple[str, ...]:
        parts = []
        if self.metrics is not None:
            parts.append(self.metrics.name)
        if self.alertmanager is not None:
            parts.append("alertmanager")
        return tuple(parts)

    async def _alertmanager(self) -> tuple[list[AmAlert], list[Silence]] | SourceError:
        am = self.alertmanager
        assert am is not None
        try:
            alerts, silences = await asyncio.gather(asyncio.to_thread(am.alerts),
                                                    asyncio.to_thread(am.silences))
        except SourceError as exc:
            return exc
        return alerts, silences

    async def poll(self) -> AlertsSnapshot:
        """One cycle: read everything, evaluate the rules, merge. Never raises for an outside
        failure (the snapshot's ``errors`` say what could not be read)."""
        started = time.perf_counter()
        tasks: list[Any] = []
        if self.metrics is not None:
            tasks.append(self.metrics.fetch())
        if self.alertmanager is not None:
            tasks.append(self._alertmanager())
        results = list(await asyncio.gather(*tasks, return_exceptions=True))
        errors: dict[str, str] = {}
        metrics: MetricsSnapshot | None = None
        am_alerts: list[AmAlert] = []
        silences: list[Silence] = []
        if self.metrics is not None:
            res = results.pop(0)
            if isinstance(res, MetricsSnapshot):
                metrics = res
                if res.error:
                    errors[self.metrics.name] = res.error
            else:
                errors[self.metrics.name] = f"{self.metrics.name}: {res}"
        if self.alertmanager is not None:
            res = results.pop(0)
            if isinstance(res, BaseException):
                errors["alertmanager"] = str(res)
            else:
                am_alerts, silences = res
        now = self.clock()
        # Rules over every service and the merge are CPU work (tens of ms at 5,000 services):
        # done in a thread so the event loop (the UI's, in the console) stays responsive.
        alerts = await asyncio.to_thread(self._evaluate, metrics, am_alerts, silences, now)
        if "alertmanager" in errors and self.last is not None:
            # Keep showing Alertmanager's last known alerts (marked stale), not an empty feed.
            kept = [a for a in self.last.alerts if a.origin == "alertmanager"]
            alerts = tuple(sorted([*alerts, *kept], key=lambda a: -a.starts_at))
        history = {a.fingerprint: self.engine.history(a.service, a.env, a.metric)
                   for a in alerts if a.origin == "rule"}
        snap = AlertsSnapshot(
            alerts=alerts, metrics=metrics, counts=_counts(alerts), errors=errors,
            parts=self.parts, silences=tuple(silences), history=history,
            response_minutes=dict(self.settings.rules.response_minutes),
            duration_s=time.perf_counter() - started, taken_at=now)
        self._record(snap)
        self.last = snap
        return snap

    def _evaluate(self, metrics: MetricsSnapshot | None, am_alerts: list[AmAlert],
                  silences: list[Silence], now: float) -> tuple[Alert, ...]:
        if metrics is not None and not metrics.error:
            rule_metrics = self._rule_metrics
            samples = ((sm.service, sm.env, {m: sm.value(m) for m in rule_metrics})
                       for sm in metrics.services.values())
            self.engine.observe(now, samples)
        return merge_alerts(am_alerts, silences, self.engine.alerts(),
                            self.rule_acks.rule_acks(), now)

    @property
    def _rule_metrics(self) -> tuple[str, ...]:
        return tuple(r.metric for r in self.engine.rules)

    def _record(self, snap: AlertsSnapshot) -> None:
        """Timeline: alert_firing when a group appears (or worsens), alert_resolved when gone.
        While Alertmanager is unreachable its last alerts are kept, so nothing "resolves"."""
        current = {a.key: a.severity for a in snap.alerts}
        if self.journal is not None:
            for a in snap.alerts:
                before = self._known.get(a.key)
                if before is None or _SEV_RANK[a.severity] < _SEV_RANK.get(before, 3):
                    self._event("alert_firing", a, f"{a.alertname} firing for "
                                f"{a.service_key or 'the fleet'}: {a.summary}", snap.taken_at)
            for (name, service, env), severity in self._known.items():
                if (name, service, env) in current:
                    continue
                try:
                    self.journal.add_event(TimelineEvent(
                        kind="alert_resolved", summary=f"{name} resolved for "
                        f"{env + '/' if env else ''}{service or 'the fleet'}", ts=snap.taken_at,
                        service=f"{env}/{service}" if env else service, env=env,
                        severity="info", actor="deploytui",
                        details={"alertname": name, "was": severity}))
                except Exception as exc:  # a broken store must not stop the feed
                    log.warning("could not record alert_resolved: %s", exc)
        self._known = current

    def _event(self, kind: str, a: Alert, summary: str, ts: float) -> None:
        assert self.journal is not None
        sev = a.severity if a.severity in ("info", "warning", "critical") else "info"
        try:
            self.journal.add_event(TimelineEvent(
                kind=kind, summary=summary, ts=ts, service=a.service_key, env=a.env,
                severity=sev, actor="deploytui",  # type: ignore[arg-type]
                details={"alertname": a.alertname, "fingerprint": a.fingerprint,
                         "origin": a.origin, "labels": dict(a.labels),
                         "value": a.value, "promql": a.promql}))
        except Exception as exc:  # a broken store must not stop the feed
            log.warning("could not record %s: %s", kind, exc)

    def request_refresh(self) -> None:
        """Poll again now (after an acknowledgement) instead of waiting for the interval.
        Safe to call from any thread (the action door runs in a worker thread)."""
        wake_from_any_thread(self._loop, self._wake)

    async def run(self, publish: Callable[[AlertsSnapshot], None]) -> None:
        self._wake = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        try:
            while True:
                try:
                    snap = await self.poll()
                except Exception as exc:  # a bug in one cycle must not end the source
                    log.exception("alerts poll failed")
                    snap = AlertsSnapshot(errors={"alerts": f"internal error: {exc}"},
                                          parts=("alerts",))
                publish(snap)
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self.interval)
        finally:
            # Cancelled when the console exits: close connections (no "unclosed session").
            with contextlib.suppress(Exception):
                await self.aclose()

    async def sparkline(self, alert: Alert, *, minutes: float = 30.0, points: int = 60
                        ) -> list[tuple[float, float]]:
        """The metric behind an alert over time: Prometheus ``query_range`` of the alert's
        PromQL (with the comparison dropped), or our rule history for rule alerts."""
        if alert.origin == "rule":
            if self.last is not None and alert.fingerprint in self.last.history:
                return list(self.last.history[alert.fingerprint])
            return list(self.engine.history(alert.service, alert.env, alert.metric))
        if not alert.promql or self.metrics is None:
            return []
        end = self.clock()
        start = end - minutes * 60.0
        expr = strip_comparison(alert.promql)
        try:
            return await self.metrics.query_range(expr, start, end, (end - start) / points,
                                                  alert.labels)
        except SourceError:
            return []

    async def aclose(self) -> None:
        closer = getattr(self.metrics, "aclose", None)
        if closer is not None:
            await closer()
        close = getattr(self.metrics, "close", None)
        if close is not None:
            close()
        if self.alertmanager is not None:
            self.alertmanager.close()


_CMP_RE = re.compile(r"\s*(>=|<=|==|!=|>|<)\s*(bool\s+)?[-+0-9.eE]+\s*$")


def strip_comparison(expr: str) -> str:
    """``rate(x[5m]) > 0.5`` -> ``rate(x[5m])``: the value behind a threshold alert."""
    return _CMP_RE.sub("", expr.strip()) or expr


def latest_metrics(runtime: Any) -> MetricsSnapshot | None:
    """The newest fleet figures the alerts source has (for the guard, the health detail ...):
    from the snapshot the pane shows, else the source's last poll; None before the first."""
    snap = runtime.extras.get("alerts_snapshot") or getattr(runtime.sources.get("alerts"),
                                                            "last", None)
    return getattr(snap, "metrics", None)


def make_source(runtime: Any) -> AlertsSource | None:
    """The alerts pane's source, or None when neither metrics nor Alertmanager is configured."""
    settings: Settings = runtime.settings
    metrics = make_metrics(settings)
    am = AlertmanagerClient(settings.alertmanager) if settings.alertmanager.url else None
    if metrics is None and am is None:
        return None
    if am is not None:
        runtime.extras.setdefault("alertmanager", am)
    return AlertsSource(settings, metrics=metrics, alertmanager=am,
                        rule_acks=rule_ack_store(runtime), journal=runtime.journal)


#: Columns of the text table; JSON rows also carry ``summary`` and ``fingerprint``.
SECTION_COLUMNS: tuple[str, ...] = ("severity", "alertname", "service", "env", "age", "state",
                                    "acked_by", "escalation", "value")


def section_from(snap: AlertsSnapshot, now: float | None = None) -> Section:
    """The feed as a ``deploytui snapshot`` section (rows, states, figures)."""
    now = snap.taken_at if now is None else now
    rows = []
    for a in snap.alerts:
        esc = snap.escalation(a, now)
        rows.append({
            "severity": a.severity, "alertname": a.alertname, "service": a.service,
            "env": a.env, "age": format_age(now - a.starts_at), "state": a.state,
            "acked_by": a.ack.by if a.ack else None,
            "escalation": esc.text if esc else None,
            "value": None if a.value is None or math.isnan(a.value) else a.value,
            "summary": a.summary, "fingerprint": a.fingerprint,
        })
    summary: dict[str, Any] = {k: v for k, v in snap.counts.items()}
    if snap.metrics is not None:
        m = snap.metrics
        summary["metrics"] = m.source
        summary["services"] = len(m.services)
        states = m.state_counts()
        summary["not_ok"] = {metric: {s: n for s, n in c.items() if s != "ok"}
                             for metric, c in states.items()
                             if any(s != "ok" for s in c)}
    for part, message in snap.errors.items():
        summary[f"{part}_error"] = message
    firing = [a for a in snap.alerts if not a.acked and a.state == "firing"
              and a.severity in ("critical", "warning")]
    return Section(name="alerts", configured=True, ok=not firing and not snap.errors,
                   error=snap.error, columns=SECTION_COLUMNS, rows=tuple(rows),
                   summary=summary, taken_at=snap.taken_at)


async def snapshot_section(settings: Settings) -> Section:
    """One poll for ``deploytui snapshot``. The direct scrape reads twice, one second apart,
    because rates need two samples; threshold rules apply without their ``for`` duration."""
    metrics = make_metrics(settings)
    am = AlertmanagerClient(settings.alertmanager) if settings.alertmanager.url else None
    if metrics is None and am is None:
        return Section(name="alerts", configured=False)
    # One poll cannot see a level hold for ``for_seconds``: the snapshot shows the levels the
    # figures are at now (hysteresis and ``for`` need a running console).
    engine = RuleEngine.from_settings(replace(settings.rules, for_seconds=0.0))
    source = AlertsSource(settings, metrics=metrics, alertmanager=am, engine=engine)
    try:
        if metrics is not None and metrics.name == "scrape":
            await metrics.fetch()
            await asyncio.sleep(1.0)
        snap = await source.poll()
    finally:
        await source.aclose()
    return section_from(snap)
