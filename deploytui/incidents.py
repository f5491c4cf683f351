"""Incidents: opened automatically from the timeline, or by hand; closed by hand or once
everything is healthy again for ``[incidents] auto_close_minutes``.

:class:`IncidentManager` is an ``EventSink`` + ``AuditSink`` wrapping the :class:`Store`: every
source just emits :class:`TimelineEvent` s into it; it forwards each to the store (tagged with
the open incident) and reacts:

* ``alert_firing`` with severity ``critical`` opens an incident (``open_on_critical_alert``);
* ``health_changed`` of a prod service to unhealthy / unreachable opens one
  (``open_on_prod_unhealthy``);
* while one is open, each service that fails joins its affected services;
* once every affected service is healthy and no critical alert fires, the clock starts; after
  ``auto_close_minutes`` (0: at once) :meth:`IncidentManager.tick` closes it. An incident in
  which nothing failed yet (opened by hand for something the console cannot see) waits for a
  human to close it.

Every change is a timeline event of kind ``incident`` and, when a person made it, an audit record.
Several consoles sharing one store open one incident between them (the store opens it
atomically). Nothing here imports ``textual``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from deploytui.config import Settings
from deploytui.errors import ActionRefused, StoreError
from deploytui.model import AuditRecord, Notifier, TimelineEvent
from deploytui.store import Incident, Store, known_secrets

__all__ = [
    "BAD_STATES",
    "HEALTHY_STATES",
    "SEVERITIES",
    "Incident",
    "IncidentManager",
    "attach_incidents",
]

log = logging.getLogger(__name__)

SEVERITIES: tuple[str, ...] = ("P1", "P2", "P3", "P4")
#: health states that open an incident (prod) and keep it open
BAD_STATES = frozenset({"unhealthy", "unreachable", "down", "critical", "failing"})
#: health states that count as recovered (anything else, e.g. "degraded", keeps it open)
HEALTHY_STATES = frozenset({"healthy", "ok", "up", "passing"})
AUTO_ACTOR = "deploytui"


def _health_to(event: TimelineEvent) -> str:
    return str(event.details.get("to") or event.details.get("state") or "").lower()


def _alert_key(event: TimelineEvent) -> str:
    """Which alert: name and service (alert_resolved carries no fingerprint), else fingerprint."""
    d = event.details
    if d.get("alertname"):
        return f"{d['alertname']}:{event.service}"
    if d.get("fingerprint"):
        return str(d["fingerprint"])
    return f"{event.service}:{event.summary}"


class IncidentManager:
    """Opens, updates and closes incidents from the timeline. Thread-safe.

    ``clock`` gives "now" for :meth:`tick` and manual changes; events carry their own time.
    """

    def __init__(self, store: Store, settings: Settings, clock: Callable[[], float] = time.time,
                 *, notifier: Notifier | None = None, operator: str = AUTO_ACTOR) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.notifier = notifier
        self.operator = operator
        self.extras: dict[str, Any] = {}        # runtime.extras: a notifier set up later
        self._lock = threading.RLock()
        self._bad: dict[str, str] = {}          # service -> its failing state
        self._firing: dict[str, str] = {}       # critical alert key -> service
        self._clear_since: float | None = None  # all affected services healthy since
        self._trouble_seen = False              # something failed during the open incident
        self.fallback_error: str | None = None  # why incidents live in memory only
        self._ticker: threading.Thread | None = None
        self._stop = threading.Event()
        self._rebuild()

    # --- sinks ---------------------------------------------------------------------------------

    @property
    def error(self) -> str | None:
        """Why records are kept in memory only (store degraded or unavailable), or None."""
        return self.store.error or self.fallback_error

    def add_audit(self, record: AuditRecord) -> None:
        self.store.add_audit(record)

    def __getattr__(self, name: str) -> Any:
        """Everything else is the store's (queries, the notification queue, rollout durations),
        so ``runtime.journal`` offers the Store API whether or not incidents are attached."""
        if name.startswith("_") or "store" not in self.__dict__:
            raise AttributeError(name)
        return getattr(self.store, name)

    def add_event(self, event: TimelineEvent) -> None:
        """Record ``event`` and react to it. Never raises (the UI and sources call it)."""
        with self._lock:
            try:
                self._handle(event)
            except StoreError as exc:  # the store keeps events in memory; incidents wait
                log.warning("incident bookkeeping skipped: %s", exc)
                self.store.add_event(event)

    def _handle(self, event: TimelineEvent) -> None:
        reason = self._observe(event)
        current = self.store.open_incident()
        if current is None and reason and self._may_open(event):
            current, created = self.store.create_incident_unless_open(
                self.settings.incidents.default_severity, title=reason,
                services=[event.service] if event.service else [], opened_by=AUTO_ACTOR,
                now=event.ts)
            self.store.add_event(event, incident_id=current.id)
            if created:
                self._opened(current, AUTO_ACTOR, reason, event.ts)
            else:
                current = self._join(current, event, reason)
        else:
            self.store.add_event(event, incident_id=current.id if current else None)
            if current is not None and reason:
                current = self._join(current, event, reason)
        if current is not None:
            self._update_clear(current, event.ts)
            self._maybe_close(current, max(event.ts, self.clock()))

    # --- what an event means -------------------------------------------------------------------

    def _observe(self, event: TimelineEvent) -> str:
        """Update the health / alert state; return why this event makes trouble ("" if not)."""
        if event.kind == "health_changed" and event.service:
            to = _health_to(event)
            if to in BAD_STATES:
                self._bad[event.service] = to
                if self._is_prod(event):
                    return f"{event.service} {to}"
            elif to in HEALTHY_STATES:
                self._bad.pop(event.service, None)
            elif to:
                self._bad.setdefault(event.service, to)  # degraded: not trouble, not recovered
        elif event.kind == "alert_firing" and event.severity == "critical":
            self._firing[_alert_key(event)] = event.service
            name = event.details.get("alertname") or event.summary
            return f"critical alert {name}" + (f" on {event.service}" if event.service else "")
        elif event.kind == "alert_resolved":
            self._firing.pop(_alert_key(event), None)
        return ""

    def _is_prod(self, event: TimelineEvent) -> bool:
        env = event.env
        if not env:
            svc = self.settings.service(event.service)
            env = svc.env if svc is not None else event.service.partition("/")[0]
        return env == "prod"

    def _may_open(self, event: TimelineEvent) -> bool:
        cfg = self.settings.incidents
        if event.kind == "alert_firing":
            return cfg.open_on_critical_alert
        return cfg.open_on_prod_unhealthy

    def _blocking(self, incident: Incident) -> list[str]:
        bad = [s for s in self._bad if s in incident.services]
        return bad + [f"alert {k}" for k in self._firing]

    def _update_clear(self, incident: Incident, at: float) -> None:
        """Start the all-healthy clock when the last failing thing recovers; stop it otherwise.
        An incident where nothing failed yet never starts it."""
        if self._blocking(incident):
            self._trouble_seen = True
            self._clear_since = None
        elif self._clear_since is None and self._trouble_seen:
            self._clear_since = at

    # --- state after a restart -----------------------------------------------------------------

    def _rebuild(self) -> None:
        """Replay the open incident's events, so a restarted console knows what is still bad."""
        try:
            current = self.store.open_incident()
            if current is None:
                return
            events = self.store.events(since=current.opened_at - 3600.0, kinds=[
                "health_changed", "alert_firing", "alert_resolved"])
        except StoreError as exc:
            log.warning("cannot rebuild incident state: %s", exc)
            return
        for event in events:
            self._observe(event)
            if event.ts >= current.opened_at:
                self._update_clear(current, event.ts)

    # --- changes -------------------------------------------------------------------------------

    def _emit(self, incident: Incident, summary: str, at: float, actor: str, action: str,
              severity: str = "warning", **details: Any) -> None:
        self.store.add_event(TimelineEvent(
            kind="incident", summary=summary, ts=at, severity=severity,  # type: ignore[arg-type]
            actor=actor,
            details={"incident_id": incident.id, "action": action,
                     "incident_severity": incident.severity,
                     "services": list(incident.services), **details}),
            incident_id=incident.id)

    def _audit(self, action: str, incident: Incident, actor: str, at: float, message: str,
               before: dict[str, Any] | None = None, after: dict[str, Any] | None = None) -> None:
        if actor == AUTO_ACTOR:
            return
        self.store.add_audit(AuditRecord(
            action=action, target=f"incident #{incident.id}", status="ok", ts=at,
            service=", ".join(incident.services), deployer=actor, message=message,
            before=before or {}, after=after or {}))

    def _notify(self, event: str, incident: Incident, **extra: Any) -> None:
        notifier = self.notifier or self.extras.get("notifier")
        if notifier is None:
            return
        try:
            notifier.notify(event, {
                "incident_id": incident.id, "severity": incident.severity,
                "title": incident.title, "services": list(incident.services), **extra})
        except Exception:  # a notification problem must not stop incident bookkeeping
            log.exception("notifying %s failed", event)

    def _opened(self, incident: Incident, actor: str, reason: str, at: float) -> None:
        self._trouble_seen = bool(self._blocking(incident))
        self._clear_since = None
        self._emit(incident, f"Incident #{incident.id} opened ({incident.severity}): {reason}",
                   at, actor, "opened", severity="critical", reason=reason)
        self._audit("incident_open", incident, actor, at, reason,
                    after={"severity": incident.severity, "services": list(incident.services)})
        self._notify("incident_opened", incident, reason=reason, opened_by=actor)

    def _join(self, incident: Incident, event: TimelineEvent, reason: str) -> Incident:
        self._trouble_seen = True
        if not event.service or event.service in incident.services:
            return incident
        updated = self.store.update_incident(
            incident.id, services=[*incident.services, event.service])
        self._emit(updated, f"Incident #{incident.id}: {event.service} affected ({reason})",
                   event.ts, AUTO_ACTOR, "service_added", added=event.service)
        return updated

    def _maybe_close(self, incident: Incident, now: float) -> Incident | None:
        if self._clear_since is None or self._blocking(incident):
            return None
        minutes = self.settings.incidents.auto_close_minutes
        if now - self._clear_since < minutes * 60.0:
            return None
        reason = f"everything healthy for {minutes:g} min"
        return self._close(incident, AUTO_ACTOR, reason, now)

    def _close(self, incident: Incident, actor: str, reason: str, at: float) -> Incident:
        closed = self.store.update_incident(incident.id, close=True, closed_by=actor,
                                            close_reason=reason, now=at)
        minutes = closed.duration() / 60.0
        self._emit(closed, f"Incident #{closed.id} closed after {minutes:.0f} min: {reason}",
                   at, actor, "closed", severity="info", reason=reason)
        self._audit("incident_close", closed, actor, at, reason)
        self._notify("incident_closed", closed, reason=reason, closed_by=actor)
        self._clear_since = None
        self._trouble_seen = False
        return closed

    # --- public operations ---------------------------------------------------------------------

    def current(self) -> Incident | None:
        """The open incident (shared by every console on the store), or None."""
        try:
            return self.store.open_incident()
        except StoreError as exc:
            log.warning("cannot read incidents: %s", exc)
            return None

    def open(self, *, severity: str | None = None, title: str = "",
             services: Iterable[str] = (), actor: str) -> Incident:
        """Open an incident by hand. Raises ActionRefused when one is already open."""
        severity = severity or self.settings.incidents.default_severity
        _check_severity(severity)
        at = self.clock()
        with self._lock:
            services = [s for s in services if s]
            incident, created = self.store.create_incident_unless_open(
                severity, title=title or "opened by hand", services=services, opened_by=actor,
                now=at)
            if not created:
                raise ActionRefused(f"incident #{incident.id} ({incident.severity}) is already "
                                    f"open; change its severity or close it first")
            self._opened(incident, actor, title or "opened by hand", at)
            return incident

    def close(self, *, actor: str, reason: str = "closed by hand",
              incident_id: int | None = None) -> Incident:
        """Close the open incident (or ``incident_id``). Raises ActionRefused if none is open."""
        with self._lock:
            incident = self._target(incident_id)
            return self._close(incident, actor, reason, self.clock())

    def set_severity(self, severity: str, *, actor: str,
                     incident_id: int | None = None) -> Incident:
        _check_severity(severity)
        with self._lock:
            incident = self._target(incident_id)
            if incident.severity == severity:
                return incident
            at = self.clock()
            updated = self.store.update_incident(incident.id, severity=severity)
            self._emit(updated, f"Incident #{incident.id} severity {incident.severity} -> {severity}",
                       at, actor, "severity", severity="warning", previous=incident.severity)
            self._audit("incident_severity", updated, actor, at,
                        f"severity {incident.severity} -> {severity}",
                        before={"severity": incident.severity}, after={"severity": severity})
            return updated

    def add_service(self, service: str, *, actor: str, incident_id: int | None = None) -> Incident:
        with self._lock:
            incident = self._target(incident_id)
            if service in incident.services:
                return incident
            updated = self.store.update_incident(incident.id,
                                                 services=[*incident.services, service])
            self._emit(updated, f"Incident #{incident.id}: {service} affected", self.clock(),
                       actor, "service_added", added=service)
            return updated

    def note(self, text: str, *, actor: str, service: str = "") -> None:
        """A free-text note on the timeline (tagged with the open incident)."""
        text = text.strip()
        if not text:
            raise ActionRefused("a note needs some text")
        at = self.clock()
        with self._lock:
            current = self.current()
            self.store.add_event(TimelineEvent(kind="note", summary=text, ts=at, actor=actor,
                                               service=service),
                                 incident_id=current.id if current else None)
            self.store.add_audit(AuditRecord(action="note", target=service or "timeline",
                                             status="ok", ts=at, deployer=actor, message=text))

    def tick(self, now: float | None = None) -> Incident | None:
        """Close the open incident when it has been all-healthy long enough; returns it if so."""
        now = self.clock() if now is None else now
        with self._lock:
            try:
                current = self.store.open_incident()
                if current is None:
                    return None
                self._update_clear(current, now)
                return self._maybe_close(current, now)
            except StoreError as exc:
                log.warning("incident auto-close skipped: %s", exc)
                return None

    def _target(self, incident_id: int | None) -> Incident:
        incident = self.store.incident(incident_id) if incident_id is not None else self.current()
        if incident is None or not incident.is_open:
            which = f"incident #{incident_id}" if incident_id is not None else "an incident"
            raise ActionRefused(f"{which} is not open")
        return incident

    # --- background auto-close -----------------------------------------------------------------

    def start(self, interval: float = 30.0) -> None:
        """Run :meth:`tick` every ``interval`` seconds on a daemon thread (the console does)."""
        if self._ticker is not None:
            return
        self._stop.clear()

        def loop() -> None:
            while not self._stop.wait(interval):
                self.tick()

        self._ticker = threading.Thread(target=loop, name="incidents-tick", daemon=True)
        self._ticker.start()

    def stop(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=5)
            self._ticker = None


def _check_severity(severity: str) -> None:
    if severity not in SEVERITIES:
        raise ActionRefused(f"severity must be one of {', '.join(SEVERITIES)}, got {severity!r}")


def attach_incidents(runtime: Any, *, start: bool = True,
                     clock: Callable[[], float] = time.time) -> IncidentManager:
    """Put an :class:`IncidentManager` between the runtime's sources and its store.

    Sets ``runtime.extras["incidents"]`` and makes the manager the runtime's journal and the
    door's audit / timeline sink, so every event reaches it. When the store could not be opened
    (the runtime fell back to a ``MemoryJournal``), incidents live in an in-memory store for
    this session and ``manager.error`` says why. Idempotent.
    """
    existing = runtime.extras.get("incidents")
    if isinstance(existing, IncidentManager):
        return existing
    journal = runtime.journal
    fallback: str | None = None
    if isinstance(journal, Store):
        store = journal
    else:
        store = Store(":memory:", clock=clock, secrets=known_secrets(runtime.settings))
        for event in list(getattr(journal, "events", [])):
            store.add_event(event)
        for record in list(getattr(journal, "audit", [])):
            store.add_audit(record)
        fallback = getattr(journal, "error", None) or "the store is not available"
    manager = IncidentManager(store, runtime.settings, clock, operator=runtime.operator)
    manager.extras = runtime.extras  # finds runtime.extras["notifier"] whenever it is set
    manager.fallback_error = fallback
    runtime.extras["incidents"] = manager
    runtime.extras["store"] = store
    runtime.journal = manager
    door = getattr(runtime, "door", None)
    if door is not None:
        door.audit = manager
        door.timeline = manager
    if start:
        manager.start()
    return manager
