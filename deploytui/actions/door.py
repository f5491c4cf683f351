"""The one door for every mutation.

    plan = door.plan(action)          # read-only check, then the action describes what will change
    ... the UI shows plan.changes and asks for confirmation (typed name in prod) ...
    result = door.run(action, plan)   # read-only check again, lock, execute, audit, timeline, notify

Both calls are blocking (the Kubernetes client is); the UI runs them in thread workers.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from deploytui.errors import ActionFailed, ActionRefused
from deploytui.model import (
    AuditRecord,
    AuditSink,
    EventSink,
    Notifier,
    TimelineEvent,
    new_correlation_id,
)

__all__ = [
    "MUTATING_ACTIONS",
    "ROLLBACK_ACTIONS",
    "Action",
    "ActionContext",
    "ActionDoor",
    "ActionPlan",
    "ActionResult",
    "Locker",
]

log = logging.getLogger(__name__)

#: Every action id that changes something outside the console's own view. Read-only mode
#: refuses each of them at the door; tests/test_read_only.py enumerates this set.
MUTATING_ACTIONS: frozenset[str] = frozenset({
    "rollback",
    "scale",
    "restart",
    "ack",
    "unack",
    "port_reassign",
    "guard_arm",
    "guard_rollback",
    "incident_open",
    "incident_close",
    "incident_severity",
    "note",
    "postmortem",
    "notify_retry",
})
# (switching read-only itself is not a door action: the console allows it unless locked)


#: Actions whose run sends rollback_initiated / rollback_completed / rollout_failed.
ROLLBACK_ACTIONS: frozenset[str] = frozenset({"rollback", "guard_rollback"})


@dataclass(frozen=True)
class ActionPlan:
    """Exactly what an action will change, shown in the confirmation before it runs."""

    action_id: str
    target: str                          # "shop/checkout", an alert fingerprint, ...
    title: str                           # "Roll back shop/checkout"
    changes: tuple[str, ...]             # "revision 7 image app:1.4.2 -> revision 6 image app:1.4.1"
    env: str = ""
    service: str = ""
    version: str = ""
    confirm_text: str = ""               # text the operator must type (prod), "" for a plain yes
    lock_key: str = ""                   # "namespace/name" to take a Lease on, "" for none
    before: Mapping[str, Any] = field(default_factory=dict)
    after: Mapping[str, Any] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ActionResult:
    ok: bool
    message: str
    correlation_id: str = ""
    after: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ActionContext:
    operator: str
    correlation_id: str
    renew: Callable[[], None] = lambda: None   # call while a long action runs to keep the lock


class Action(Protocol):
    """An operator action. ``plan`` must not change anything; ``execute`` does the change."""

    id: ClassVar[str]

    def plan(self) -> ActionPlan: ...

    def execute(self, plan: ActionPlan, ctx: ActionContext) -> ActionResult: ...


class Locker(Protocol):
    """Mutual exclusion between operators (a coordination.k8s.io/v1 Lease per deployment)."""

    def hold(self, key: str, holder: str) -> contextlib.AbstractContextManager[Callable[[], None]]:
        """Acquire the lock or raise ActionRefused naming the holder and since when.

        The context value is a ``renew()`` callable; leaving the context releases the lock.
        """
        ...


class ActionDoor:
    def __init__(
        self,
        *,
        operator: str,
        read_only: bool | Callable[[], bool] = False,
        audit: AuditSink | None = None,
        timeline: EventSink | None = None,
        locker: Locker | None = None,
        notifier: Notifier | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.operator = operator
        self._read_only = read_only
        self.audit = audit
        self.timeline = timeline
        self.locker = locker
        self.notifier = notifier
        self.clock = clock
        self._running: set[str] = set()
        self._guard = threading.Lock()

    @property
    def read_only(self) -> bool:
        return bool(self._read_only()) if callable(self._read_only) else bool(self._read_only)

    def check_allowed(self, action_id: str) -> None:
        """Raise ActionRefused when read-only mode forbids ``action_id``."""
        if self.read_only and (action_id in MUTATING_ACTIONS or not action_id):
            raise ActionRefused(f"{action_id}: refused — this console is read-only", reason="read_only")

    def plan(self, action: Action) -> ActionPlan:
        self.check_allowed(action.id)
        return action.plan()

    def run(self, action: Action, plan: ActionPlan | None = None) -> ActionResult:
        """Run an action end to end. Never raises for a refusal or failure: the result says why,
        and the audit log and timeline record it."""
        cid = new_correlation_id(self.clock())
        started = self.clock()
        try:
            self.check_allowed(action.id)
            plan = plan or action.plan()
        except ActionRefused as exc:
            self._record(action.id, plan, "refused", str(exc), cid, started, {})
            return ActionResult(False, str(exc), cid)
        key = plan.lock_key or plan.target
        with self._guard:
            if key in self._running:
                message = f"{plan.title}: another action on {key} is already running in this console"
                self._record(action.id, plan, "refused", message, cid, started, {})
                return ActionResult(False, message, cid)
            self._running.add(key)
        try:
            with self._lock(plan) as renew:
                self._notify_start(action.id, plan, cid)   # lock held: it is really starting
                result = action.execute(plan, ActionContext(self.operator, cid, renew))
        except ActionRefused as exc:
            self._record(action.id, plan, "refused", str(exc), cid, started, {})
            return ActionResult(False, str(exc), cid)
        except ActionFailed as exc:
            self._record(action.id, plan, "failed", str(exc), cid, started, {}, action)
            return ActionResult(False, str(exc), cid)
        except Exception as exc:  # an unexpected bug must still be audited and reported
            log.exception("action %s failed", action.id)
            message = f"{plan.title} failed: {exc.__class__.__name__}: {exc}"
            self._record(action.id, plan, "failed", message, cid, started, {}, action)
            return ActionResult(False, message, cid)
        finally:
            with self._guard:
                self._running.discard(key)
        result = ActionResult(result.ok, result.message, cid, result.after)
        self._record(action.id, plan, "ok" if result.ok else "failed", result.message, cid, started,
                     result.after, action)
        return result

    @contextlib.contextmanager
    def _lock(self, plan: ActionPlan) -> Iterator[Callable[[], None]]:
        if self.locker is None or not plan.lock_key:
            yield lambda: None
            return
        with self.locker.hold(plan.lock_key, self.operator) as renew:
            yield renew

    def _record(self, action_id: str, plan: ActionPlan | None, status: str, message: str,
                cid: str, started: float, after: Mapping[str, Any],
                action: Action | None = None) -> None:
        now = self.clock()
        target = plan.target if plan else ""
        if self.audit is not None:
            self.audit.add_audit(AuditRecord(
                action=action_id, target=target, status=status, ts=now,
                service=plan.service if plan else "", version=plan.version if plan else "",
                environment=plan.env if plan else "", deployer=self.operator,
                duration=max(0.0, now - started), correlation_id=cid,
                before=dict(plan.before) if plan else {}, after=dict(after) or (dict(plan.after) if plan else {}),
                message=message,
            ))
        if self.timeline is not None:
            self.timeline.add_event(TimelineEvent(
                kind="action", ts=now, service=target, env=plan.env if plan else "",
                severity="info" if status == "ok" else "warning", actor=self.operator,
                correlation_id=cid,
                summary=f"{plan.title if plan else action_id}: {status} — {message}",
                details={"action": action_id, "status": status,
                         "changes": list(plan.changes) if plan else []},
            ))
        if action is not None:   # only an attempted execution notifies its outcome
            self._notify_end(action_id, plan, status, message, cid,
                             own=getattr(action, "notifier", None) is not None)

    # --- notifications (rollback_initiated before execute, rollback_completed / rollout_failed
    # after; acknowledged for an ack whose action did not notify itself) ------------------------

    def _payload(self, plan: ActionPlan, cid: str, **extra: Any) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "target": plan.target, "service": plan.service, "env": plan.env,
            "operator": self.operator, "correlation_id": cid, "title": plan.title}
        if plan.params.get("from_revision") is not None:
            payload["from_revision"] = plan.params.get("from_revision")
        if plan.params.get("target_revision") is not None:
            payload["to_revision"] = plan.params.get("target_revision")
        payload.update(extra)
        return payload

    def _send(self, event: str, payload: Mapping[str, Any]) -> None:
        if self.notifier is None:
            return
        try:
            self.notifier.notify(event, payload)
        except Exception:  # a notification problem never changes an action's outcome
            log.exception("notifying %s failed", event)

    def _notify_start(self, action_id: str, plan: ActionPlan, cid: str) -> None:
        if action_id in ROLLBACK_ACTIONS:
            self._send("rollback_initiated", self._payload(
                plan, cid, message=f"{plan.title}: " + "; ".join(plan.changes)))

    def _notify_end(self, action_id: str, plan: ActionPlan | None, status: str, message: str,
                    cid: str, *, own: bool = False) -> None:
        if plan is None or status not in ("ok", "failed"):
            return
        if action_id in ROLLBACK_ACTIONS:
            event = "rollback_completed" if status == "ok" else "rollout_failed"
            self._send(event, self._payload(plan, cid, message=message, status=status))
        elif action_id == "ack" and status == "ok" and not own:  # AckAction may notify itself
            self._send("acknowledged", self._payload(plan, cid, message=message))
