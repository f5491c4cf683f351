"""Notifications: Slack, Microsoft Teams, PagerDuty Events API v2 and generic JSON webhooks,
routed per role from ``[notify]``, queued in the store, delivered with retries.

Wiring (the console and the headless commands)::

    notifier = install_notifier(runtime)     # runtime.extras["notifier"], runtime.door.notifier,
                                             # and a started DeliveryWorker in
                                             # runtime.extras["notify_worker"]
    notifier.notify("rollback_initiated", {"target": "shop/checkout", ...})
    ...
    runtime.extras["notify_worker"].stop()

:class:`StoreNotifier` implements :class:`deploytui.model.Notifier`: it never sends, it only
enqueues one row per routed channel in the store (``notifications`` table). The
:class:`DeliveryWorker` claims due rows, sends them, and on failure schedules the next attempt
after ``[notify] backoff_seconds`` (5, 10, 20, 40, 80 s): the n-th failed attempt waits the n-th
value; after ``len(backoff_seconds)`` failed attempts (5) the message is dead-lettered
(``deploytui notify dead-letters``, ``deploytui notify retry ID``). Because the queue is the
store, a new worker on the same file (after a restart) picks up where the old one stopped.

Secrets: channel URLs and routing keys are :class:`~deploytui.config.Secret`; the queue holds
only the channel *name*, and every error text passes through :func:`mask_text` before it is
logged, stored or printed.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from deploytui.config import NotifyChannel, NotifySettings, mask
from deploytui.model import Notifier, TimelineEvent

__all__ = [
    "EVENTS",
    "PAGERDUTY_URL",
    "DeliveryResult",
    "DeliveryWorker",
    "Message",
    "RolloutNotifications",
    "StoreNotifier",
    "build_request",
    "channel_secrets",
    "dedup_key_for",
    "describe_channel",
    "install_notifier",
    "mask_text",
    "render",
    "route",
    "send_now",
]

log = logging.getLogger(__name__)

EVENTS: tuple[str, ...] = (
    "rollout_started", "rollout_completed", "rollout_failed", "rollout_stalled",
    "rollback_initiated", "rollback_completed", "acknowledged", "incident_opened",
    "incident_closed", "guard_tripped",
)

PAGERDUTY_URL = "https://events.pagerduty.com/v2/enqueue"

#: event -> (severity, PagerDuty event_action)
_KIND: Mapping[str, tuple[str, str]] = {
    "rollout_started": ("info", "trigger"),
    "rollout_completed": ("info", "resolve"),
    "rollout_failed": ("critical", "trigger"),
    "rollout_stalled": ("warning", "trigger"),
    "rollback_initiated": ("warning", "trigger"),
    "rollback_completed": ("info", "resolve"),
    "acknowledged": ("info", "acknowledge"),
    "incident_opened": ("critical", "trigger"),
    "incident_closed": ("info", "resolve"),
    "guard_tripped": ("critical", "trigger"),
}

_COLORS = {"info": "2EB67D", "warning": "ECB22E", "critical": "E01E5A"}
_GLYPH = {"info": "ℹ", "warning": "⚠", "critical": "✖"}


# --- secrets -----------------------------------------------------------------------------------


def channel_secrets(settings: NotifySettings) -> tuple[str, ...]:
    """Every non-empty URL and routing key of the channels (and the URL's path on its own)."""
    found: list[str] = []
    for ch in settings.channels:
        for secret in (ch.url, ch.routing_key):
            if secret:
                value = secret.reveal()
                found.append(value)
                rest = value.split("://", 1)[-1]
                path = rest.split("/", 1)[1] if "/" in rest else ""
                if len(path) >= 4:
                    found.append(path)
    return tuple(sorted(set(found), key=len, reverse=True))


def mask_text(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every secret replaced by its masked form (and webhook URLs masked)."""
    from deploytui.store import scrub

    out = text
    for s in sorted({s for s in secrets if s}, key=len, reverse=True):
        out = out.replace(s, mask(s) if "://" in s else "***")
    return scrub(out)


# --- messages ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    event: str
    title: str
    text: str
    severity: str                           # info, warning, critical
    fields: tuple[tuple[str, str], ...] = ()


def _target(p: Mapping[str, Any]) -> str:
    return str(p.get("deployment") or p.get("target") or p.get("service") or "")


def _inc(p: Mapping[str, Any]) -> str:
    return f"#{p.get('incident_id')}" if p.get("incident_id") is not None else ""


_TITLES: Mapping[str, Callable[[Mapping[str, Any]], str]] = {
    "rollout_started": lambda p: f"Rollout started: {_target(p)}"
                                 + (f" → {p['version']}" if p.get("version") else ""),
    "rollout_completed": lambda p: f"Rollout completed: {_target(p)}",
    "rollout_failed": lambda p: f"Rollout FAILED: {_target(p)}",
    "rollout_stalled": lambda p: f"Rollout stalled: {_target(p)}",
    "rollback_initiated": lambda p: f"Rollback initiated: {_target(p)}",
    "rollback_completed": lambda p: f"Rollback completed: {_target(p)}",
    "acknowledged": lambda p: "Acknowledged: " + str(p.get("alertname") or _target(p)),
    "incident_opened": lambda p: f"Incident {_inc(p)} opened ({p.get('severity', '')}): "
                                 + str(p.get("title") or ", ".join(p.get("services") or ())),
    "incident_closed": lambda p: f"Incident {_inc(p)} closed"
                                 + (f": {p['title']}" if p.get("title") else ""),
    "guard_tripped": lambda p: f"Guard tripped: {_target(p)}"
                               + (f" revision {p['revision']}" if p.get("revision") else ""),
}

_FIELD_NAMES = (("service", "Service"), ("env", "Env"), ("operator", "Operator"),
                ("revision", "Revision"), ("from_revision", "From revision"),
                ("to_revision", "To revision"), ("severity", "Severity"), ("action", "Decision"),
                ("comment", "Comment"), ("correlation_id", "Correlation id"))


def render(event: str, payload: Mapping[str, Any]) -> Message:
    """The message for ``event`` (one of :data:`EVENTS`; others get a generic title)."""
    severity, _ = _KIND.get(event, ("info", "trigger"))
    if event == "incident_opened" and str(payload.get("severity", "")) in ("P3", "P4"):
        severity = "warning"
    title_of = _TITLES.get(event)
    title = title_of(payload) if title_of else f"{event.replace('_', ' ')}: {_target(payload)}"
    lines = []
    if payload.get("message"):
        lines.append(str(payload["message"]))
    for item in payload.get("evidence") or ():
        lines.append(f"• {item}")
    fields = tuple((label, str(payload[key])) for key, label in _FIELD_NAMES
                   if payload.get(key) not in (None, "", [], ()))
    return Message(event, title, "\n".join(lines), severity, fields)


def dedup_key_for(event: str, payload: Mapping[str, Any]) -> str:
    """One key per thing that is wrong, so trigger / acknowledge / resolve meet in PagerDuty:
    ``deploytui/incident/7``, ``deploytui/rollout/shop/checkout``, ``deploytui/alert/<fp>``."""
    if payload.get("dedup_key"):
        return str(payload["dedup_key"])
    if payload.get("incident_id") is not None:
        return f"deploytui/incident/{payload['incident_id']}"
    if event == "acknowledged" and (payload.get("fingerprint") or payload.get("alertname")):
        return f"deploytui/alert/{payload.get('fingerprint') or payload.get('alertname')}"
    return f"deploytui/rollout/{_target(payload)}"


def build_request(channel: NotifyChannel, event: str, payload: Mapping[str, Any],
                  dedup_key: str = "") -> tuple[str, dict[str, Any]]:
    """``(url, json body)`` for one channel. The URL is secret: never log it."""
    msg = render(event, payload)
    when = datetime.now(UTC).isoformat()
    if channel.kind == "slack":
        text = f"{_GLYPH[msg.severity]} *{msg.title}*" + (f"\n{msg.text}" if msg.text else "")
        blocks: list[dict[str, Any]] = [
            {"type": "section", "text": {"type": "mrkdwn", "text": text}}]
        if msg.fields:
            blocks.append({"type": "section", "fields": [
                {"type": "mrkdwn", "text": f"*{k}*\n{v}"} for k, v in msg.fields[:10]]})
        return channel.url.reveal(), {"text": f"{msg.title}" + (f"\n{msg.text}" if msg.text else ""),
                                      "blocks": blocks}
    if channel.kind == "teams":
        return channel.url.reveal(), {
            "@type": "MessageCard", "@context": "https://schema.org/extensions",
            "summary": msg.title, "themeColor": _COLORS[msg.severity], "title": msg.title,
            "text": msg.text.replace("\n", "  \n") or msg.title,
            "sections": [{"facts": [{"name": k, "value": v} for k, v in msg.fields]}]
            if msg.fields else []}
    if channel.kind == "pagerduty":
        _, action = _KIND.get(event, ("info", "trigger"))
        body: dict[str, Any] = {"routing_key": channel.routing_key.reveal(),
                                "event_action": action,
                                "dedup_key": dedup_key or dedup_key_for(event, payload)}
        if action == "trigger":
            body["payload"] = {
                "summary": msg.title[:1024], "source": _target(payload) or "deploytui",
                "severity": msg.severity, "timestamp": when, "component": _target(payload),
                "group": str(payload.get("env", "")), "class": event,
                "custom_details": {"message": msg.text, **dict(msg.fields)}}
            body["client"] = "deploytui"
        return channel.url.reveal() or PAGERDUTY_URL, body
    return channel.url.reveal(), {
        "event": event, "title": msg.title, "text": msg.text, "severity": msg.severity,
        "timestamp": when, "dedup_key": dedup_key or dedup_key_for(event, payload),
        "payload": dict(payload)}


# --- routing -----------------------------------------------------------------------------------


def route(settings: NotifySettings, event: str) -> dict[str, tuple[str, ...]]:
    """Channel name -> the roles that route ``event`` to it (each channel once)."""
    known = {c.name for c in settings.channels}
    out: dict[str, list[str]] = {}
    for r in settings.routes:
        if "*" in r.events or event in r.events:
            for name in r.channels:
                if name in known and r.role not in out.setdefault(name, []):
                    out[name].append(r.role)
    return {name: tuple(roles) for name, roles in out.items()}


class StoreNotifier(Notifier):
    """:class:`deploytui.model.Notifier` that enqueues into the store; never raises."""

    def __init__(self, store: Any, settings: NotifySettings, *,
                 clock: Callable[[], float] = time.time,
                 wake: Callable[[], None] | None = None) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.wake = wake
        self._secrets = channel_secrets(settings)

    def notify(self, event: str, payload: Mapping[str, Any]) -> None:
        self.enqueue(event, payload)

    def enqueue(self, event: str, payload: Mapping[str, Any]) -> list[int]:
        """Queue ``event`` for every routed channel; returns the row ids."""
        ids: list[int] = []
        key = dedup_key_for(event, payload)
        for channel, roles in route(self.settings, event).items():
            body = {**dict(payload), "roles": list(roles)}
            try:
                ids.append(self.store.enqueue_notification(event, channel, body, dedup_key=key,
                                                           now=self.clock()))
            except Exception as exc:   # a full disk must not stop the action that notifies
                log.error("cannot queue the %s notification for %s: %s", event, channel,
                          mask_text(str(exc), self._secrets))
        if ids and self.wake is not None:
            self.wake()
        return ids


# --- delivery ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryResult:
    id: int
    channel: str
    event: str
    ok: bool
    attempts: int
    status: str                     # delivered, pending (retry scheduled), dead
    error: str = ""                 # masked
    next_attempt: float | None = None


Post = Callable[[str, Mapping[str, Any], float], int]


class _MaskHttpLogs(logging.Filter):
    """httpx logs every request URL at INFO ("HTTP Request: POST https://hooks..."): mask the
    channel secrets in those records before any handler sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            text = record.getMessage()
            masked = mask_text(text, self.secrets)
            if masked != text:
                record.msg, record.args = masked, ()
        return True


_HTTP_LOG_MASK = _MaskHttpLogs()
for _name in ("httpx", "httpcore"):
    logging.getLogger(_name).addFilter(_HTTP_LOG_MASK)


def _hide(secrets: Iterable[str]) -> None:
    _HTTP_LOG_MASK.secrets.update(s for s in secrets if s)


def _httpx_post(url: str, body: Mapping[str, Any], timeout: float) -> int:
    import httpx

    resp = httpx.post(url, content=json.dumps(body, default=str).encode(), timeout=timeout,
                      headers={"Content-Type": "application/json",
                               "User-Agent": "deploytui-notify"})
    return resp.status_code


def send_now(channel: NotifyChannel, event: str, payload: Mapping[str, Any], *,
             dedup_key: str = "", post: Post | None = None,
             secrets: Sequence[str] = ()) -> str:
    """Send one message right away; returns "" on success or a masked error text."""
    hidden = (*secrets, *(s.reveal() for s in (channel.url, channel.routing_key) if s))
    _hide(hidden)
    if channel.kind != "pagerduty" and not channel.url:
        return f"channel {channel.name!r} has no url"
    if channel.kind == "pagerduty" and not channel.routing_key:
        return f"channel {channel.name!r} has no routing_key"
    url, body = build_request(channel, event, payload, dedup_key)
    where = f"{channel.name} ({mask(url)})"
    import httpx

    try:
        status = (post or _httpx_post)(url, body, channel.timeout)
    except httpx.TimeoutException:
        return f"{where}: no answer within {channel.timeout:g} s"
    except httpx.ConnectError:
        return f"{where}: cannot connect (connection refused or host unreachable)"
    except Exception as exc:
        return mask_text(f"{where}: {exc.__class__.__name__}: {exc}", hidden)
    if 200 <= status < 300:
        return ""
    return f"{where}: HTTP {status}"


class DeliveryWorker:
    """Sends the queued notifications of one store; safe to run in several consoles at once
    (rows are claimed). ``clock`` and ``sleep`` are injectable; ``post(url, body, timeout) ->
    HTTP status`` too (the default uses httpx)."""

    def __init__(self, store: Any, settings: NotifySettings, *,
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] | None = None,
                 post: Post | None = None, journal: Any = None,
                 poll_seconds: float = 1.0, claim_seconds: float = 60.0) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.post = post
        self.journal = journal
        self.poll_seconds = poll_seconds
        self.claim_seconds = claim_seconds
        self.backoff = tuple(settings.backoff_seconds) or (5.0, 10.0, 20.0, 40.0, 80.0)
        self.max_attempts = len(self.backoff)
        self.channels = {c.name: c for c in settings.channels}
        self.secrets = channel_secrets(settings)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._sleep = sleep
        self._thread: threading.Thread | None = None

    # one pass ---------------------------------------------------------------------------------

    def deliver_due(self, limit: int = 100) -> list[DeliveryResult]:
        """Claim and send every due message once; returns what happened to each."""
        now = self.clock()
        claimed = self.store.claim_due_notifications(now=now, limit=limit,
                                                     lease_seconds=self.claim_seconds)
        return [self._deliver(n) for n in claimed]

    def deliver_one(self, notification_id: int) -> DeliveryResult | None:
        """Send one message now, whatever its schedule (``deploytui notify retry``)."""
        n = self.store.notification(notification_id)
        if n is None:
            return None
        return self._deliver(n)

    def _deliver(self, n: Any) -> DeliveryResult:
        channel = self.channels.get(n.channel)
        if channel is None:
            error = f"channel {n.channel!r} is not configured any more ([[notify.channels]])"
        else:
            error = send_now(channel, n.event, n.payload, dedup_key=n.dedup_key, post=self.post,
                             secrets=self.secrets)
        now = self.clock()
        if not error:
            self.store.mark_delivered(n.id, now=now)
            log.info("notification #%d (%s) delivered to %s", n.id, n.event, n.channel)
            return DeliveryResult(n.id, n.channel, n.event, True, n.attempts + 1, "delivered")
        error = mask_text(error, self.secrets)
        attempt = n.attempts + 1
        if attempt >= self.max_attempts or channel is None:
            updated = self.store.mark_failed(n.id, error, None, now=now)
            log.warning("notification #%d (%s to %s) dead-lettered after %d attempts: %s",
                        n.id, n.event, n.channel, updated.attempts, error)
            self._dead_event(n, updated.attempts, error, now)
            return DeliveryResult(n.id, n.channel, n.event, False, updated.attempts, "dead", error)
        delay = self.backoff[min(attempt, len(self.backoff)) - 1]
        updated = self.store.mark_failed(n.id, error, now + delay, now=now)
        log.warning("notification #%d (%s to %s) attempt %d failed, next in %g s: %s",
                    n.id, n.event, n.channel, attempt, delay, error)
        return DeliveryResult(n.id, n.channel, n.event, False, updated.attempts, "pending", error,
                              now + delay)

    def _dead_event(self, n: Any, attempts: int, error: str, now: float) -> None:
        if self.journal is None:
            return
        try:
            self.journal.add_event(TimelineEvent(
                kind="notification", ts=now, severity="warning", actor="deploytui",
                service=_target(n.payload),
                summary=f"notification {n.event} to {n.channel} dead-lettered after {attempts} "
                        f"attempts: {error}",
                details={"id": n.id, "event": n.event, "channel": n.channel, "status": "dead"}))
        except Exception:
            log.exception("cannot record the dead letter on the timeline")

    def next_due(self) -> float | None:
        """When the earliest pending message is due (None: the queue is empty)."""
        pending = self.store.notifications(status="pending", limit=1000)
        return min((n.next_attempt for n in pending), default=None)

    # the loop ---------------------------------------------------------------------------------

    def wake(self) -> None:
        self._wake.set()

    def _wait(self, seconds: float) -> None:
        if self._sleep is not None:
            self._sleep(seconds)
            return
        self._wake.wait(seconds)
        self._wake.clear()

    def run(self) -> None:
        """Deliver until :meth:`stop` (a restart resumes the queue from the store)."""
        while not self._stop.is_set():
            try:
                self.deliver_due()
                due = self.next_due()
            except Exception as exc:   # a locked or broken store: try again later
                log.error("notification delivery: %s", mask_text(str(exc), self.secrets))
                due = None
            wait = self.poll_seconds if due is None else max(0.0, min(self.poll_seconds,
                                                                      due - self.clock()))
            if not self._stop.is_set():
                self._wait(max(wait, 0.01))

    def start(self) -> DeliveryWorker:
        if self._thread is None:
            self._thread = threading.Thread(target=self.run, name="deploytui-notify",
                                            daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None


def install_notifier(runtime: Any, *, start: bool = True, clock: Callable[[], float] = time.time,
                     post: Post | None = None) -> StoreNotifier | None:
    """Give ``runtime`` a notifier and a delivery worker (None when the journal is not a store:
    without the store there is no queue to keep messages across a restart).

    Sets ``runtime.extras["notifier"]``, ``runtime.door.notifier`` and
    ``runtime.extras["notify_worker"]`` (started unless ``start=False``)."""
    store = runtime.journal
    if not hasattr(store, "enqueue_notification"):
        log.warning("notifications are off: the store is not available")
        return None
    settings = runtime.settings.notify
    worker = DeliveryWorker(store, settings, clock=clock, post=post, journal=store)
    notifier = StoreNotifier(store, settings, clock=clock, wake=worker.wake)
    runtime.extras["notifier"] = notifier
    runtime.extras["notify_worker"] = worker
    if getattr(runtime, "door", None) is not None:
        runtime.door.notifier = notifier
    if start and settings.channels:
        worker.start()
    return notifier


def describe_channel(channel: NotifyChannel) -> str:
    """``ops-slack (slack, https://hooks.slack.com/***)`` — safe to print."""
    where = mask(channel.url.reveal()) if channel.url else (
        "routing key ***" if channel.routing_key else "not configured")
    return f"{channel.name} ({channel.kind}, {where})"



class RolloutNotifications:
    """Turn the rollouts source's snapshots into rollout_started / rollout_completed /
    rollout_failed / rollout_stalled notifications (phase changes per deployment; the first
    snapshot only sets the baseline, so a restart does not re-announce running rollouts)."""

    _EVENTS: Mapping[str, str] = {"progressing": "rollout_started", "complete": "rollout_completed",
                                  "failed": "rollout_failed", "stalled": "rollout_stalled"}

    def __init__(self, notifier: Notifier) -> None:
        self.notifier = notifier
        self._seen: dict[str, tuple[str, int]] = {}
        self._baseline = False

    def observe(self, snapshot: Any) -> list[str]:
        """Notify the changes in ``snapshot`` (a RolloutSnapshot); returns the events sent."""
        if not getattr(snapshot, "loaded", True) or getattr(snapshot, "error", None):
            return []
        sent: list[str] = []
        for r in getattr(snapshot, "rollouts", ()):
            key = f"{r.namespace}/{r.name}"
            before = self._seen.get(key)
            now = (r.phase, r.revision)
            self._seen[key] = now
            if not self._baseline or before is None or before == now:
                continue
            event = self._EVENTS.get(r.phase)
            if event is None or (before[0] == r.phase and event != "rollout_started"):
                continue
            if event == "rollout_completed" and before[0] == "complete":
                continue
            try:
                self.notifier.notify(event, {
                    "deployment": key, "target": key, "service": r.service, "env": r.env,
                    "revision": r.revision, "version": r.version, "message": r.message})
                sent.append(event)
            except Exception:
                log.exception("notifying %s failed", event)
        self._baseline = True
        return sent
