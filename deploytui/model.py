"""Cross-cutting domain types: timeline events, audit records, the sinks that take them, and
the per-pane snapshot sections. Domain snapshots of one source live beside that source
(``sources/health.py`` has ``HealthReport`` ...); what several modules share lives here.

Everything here is a frozen dataclass or a Protocol; nothing imports ``textual``.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Literal, Protocol, runtime_checkable

__all__ = [
    "AuditRecord",
    "AuditSink",
    "EventSink",
    "MemoryJournal",
    "Notifier",
    "Section",
    "Severity",
    "Target",
    "TimelineEvent",
    "new_correlation_id",
    "utcnow",
]

Severity = Literal["info", "warning", "critical"]

# Timeline event kinds (stable strings; the store and the post-mortem key on them).
EVENT_KINDS = (
    "health_changed",      # a service changed state (details: from, to, reason)
    "alert_firing",
    "alert_resolved",
    "ack",                 # an alert was acknowledged (silence created) or un-acked
    "action",              # an operator action ran (rollback, scale, restart, port reassign)
    "rollout_started",
    "rollout_completed",
    "rollout_stalled",
    "rollout_failed",
    "guard",               # guard evaluation that changed a decision, trips, aborts
    "incident",            # opened / closed / severity changed
    "note",                # free text by an operator
    "notification",        # a message was delivered or dead-lettered
)


def utcnow() -> float:
    """Seconds since the epoch (UTC). One name so tests can read where time comes from."""
    return time.time()


def new_correlation_id(now: float | None = None) -> str:
    """``YYYYMMDD-HHMMSS-xxxxxx``: sortable, unique enough across operators."""
    stamp = datetime.fromtimestamp(now if now is not None else time.time(), UTC)
    return f"{stamp:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def _frozen(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class TimelineEvent:
    """One thing that happened, as the incident timeline and the post-mortem show it."""

    kind: str
    summary: str
    ts: float = field(default_factory=utcnow)
    service: str = ""            # "env/name" or a deployment "ns/name"
    env: str = ""
    severity: Severity = "info"
    actor: str = ""              # user@host, or "deploytui" for automatic events
    correlation_id: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "details", _frozen(self.details))


@dataclass(frozen=True)
class AuditRecord:
    """One audited action, with the runbook deployment log's fields."""

    action: str                  # rollback, scale, restart, ack, unack, port_reassign, guard_eval...
    target: str                  # "shop/checkout", an alert fingerprint, "checkout@prod"
    status: str                  # ok, refused, failed, dry_run, evaluated
    ts: float = field(default_factory=utcnow)
    service: str = ""
    version: str = ""
    environment: str = ""
    ports: str = ""
    deployer: str = ""           # operator identity
    duration: float = 0.0        # seconds
    correlation_id: str = ""
    before: Mapping[str, Any] = field(default_factory=dict)
    after: Mapping[str, Any] = field(default_factory=dict)
    message: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "before", _frozen(self.before))
        object.__setattr__(self, "after", _frozen(self.after))


@runtime_checkable
class EventSink(Protocol):
    def add_event(self, event: TimelineEvent) -> None: ...


@runtime_checkable
class AuditSink(Protocol):
    def add_audit(self, record: AuditRecord) -> None: ...


@runtime_checkable
class Notifier(Protocol):
    def notify(self, event: str, payload: Mapping[str, Any]) -> None:
        """Queue a notification (``event`` is one of the names in config.example.toml)."""
        ...


class MemoryJournal:
    """An in-memory EventSink + AuditSink (tests, and when no store is wanted)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.events: list[TimelineEvent] = []
        self.audit: list[AuditRecord] = []

    def add_event(self, event: TimelineEvent) -> None:
        with self._lock:
            self.events.append(event)

    def add_audit(self, record: AuditRecord) -> None:
        with self._lock:
            self.audit.append(record)


@dataclass(frozen=True)
class Target:
    """What the operator's selection points at, so actions follow it across panes."""

    service: str = ""            # "env/name"
    deployment: str = ""         # "namespace/name"
    env: str = ""
    alert_fingerprint: str = ""
    port_service: str = ""       # service whose port allocation is selected

    def __bool__(self) -> bool:
        return bool(self.service or self.deployment or self.alert_fingerprint or self.port_service)


@dataclass(frozen=True)
class Section:
    """What one pane shows, for ``deploytui snapshot`` (text and JSON).

    ``ok`` is False when anything in it is not healthy; ``error`` is set when the source could
    not be read at all.
    """

    name: str
    configured: bool
    ok: bool = True
    error: str | None = None
    columns: tuple[str, ...] = ()
    rows: tuple[Mapping[str, Any], ...] = ()
    summary: Mapping[str, Any] = field(default_factory=dict)
    taken_at: float = field(default_factory=utcnow)

    def to_json(self) -> dict[str, Any]:
        return {
            "configured": self.configured,
            "ok": self.ok,
            "error": self.error,
            "taken_at": datetime.fromtimestamp(self.taken_at, UTC).isoformat(),
            "summary": dict(self.summary),
            "columns": list(self.columns),
            "rows": [dict(r) for r in self.rows],
        }
