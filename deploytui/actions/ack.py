"""Acknowledge (``a``) and un-acknowledge (``A``) an alert, through the action door.

* An Alertmanager alert is acknowledged with a **silence** matching its identifying labels
  (alertname, service, env, ... — :func:`deploytui.sources.alertmanager.ack_matchers`), made
  by the operator (``createdBy`` = user@host), with a comment and a duration (defaults:
  ``[alertmanager] ack_comment`` and ``ack_minutes``). Every console, and Alertmanager's own UI,
  sees it; the feed reads acknowledgements back from the silences. Un-acknowledging expires
  the silences that acknowledge the alert.
* One of our own rule alerts is acknowledged in the local :class:`RuleAckStore`.

The door refuses both in read-only mode, audits them and puts them on the timeline; the
actions add an ``ack`` timeline event of their own (the post-mortem keys on it) and queue the
``acknowledged`` notification when a notifier is given.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ClassVar

from deploytui.actions.door import ActionContext, ActionPlan, ActionResult
from deploytui.errors import ActionFailed, ActionRefused, SourceError
from deploytui.model import EventSink, Notifier, TimelineEvent
from deploytui.sources.alertmanager import AlertmanagerClient, Matcher
from deploytui.sources.alerts import Ack, Alert, RuleAckStore, rule_ack_store

__all__ = ["AckAction", "UnackAction", "ack_action", "find_alert", "make_ack", "make_unack",
           "unack_action"]


def _hhmm(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M UTC")


def _who(alert: Alert) -> str:
    return f"{alert.alertname} on {alert.service_key or 'the fleet'}"


class _AlertAction:
    def __init__(self, alert: Alert, *, alertmanager: AlertmanagerClient | None = None,
                 rule_acks: RuleAckStore | None = None, timeline: EventSink | None = None,
                 notifier: Notifier | None = None, clock: Callable[[], float] = time.time,
                 on_done: Callable[[], None] | None = None) -> None:
        self.alert = alert
        self.alertmanager = alertmanager
        self.rule_acks = rule_acks
        self.timeline = timeline
        self.notifier = notifier
        self.clock = clock
        self.on_done = on_done

    def _need_backend(self) -> None:
        if self.alert.origin == "rule":
            if self.rule_acks is None:
                raise ActionRefused("no store for acknowledgements of rule alerts is available")
        elif self.alertmanager is None:
            raise ActionRefused("Alertmanager is not configured ([alertmanager] url), so its "
                                "alerts cannot be acknowledged", reason="not_configured")

    def _event(self, summary: str, ctx: ActionContext, details: dict[str, Any]) -> None:
        if self.timeline is None:
            return
        a = self.alert
        self.timeline.add_event(TimelineEvent(
            kind="ack", summary=summary, ts=self.clock(), service=a.service_key, env=a.env,
            severity="info", actor=ctx.operator, correlation_id=ctx.correlation_id,
            details={"alertname": a.alertname, "fingerprint": a.fingerprint,
                     "origin": a.origin, **details}))

    def _done(self) -> None:
        if self.on_done is not None:
            self.on_done()


class AckAction(_AlertAction):
    """Acknowledge one feed row (an alert group)."""

    id: ClassVar[str] = "ack"

    def __init__(self, alert: Alert, *, comment: str, minutes: float, **kwargs: Any) -> None:
        super().__init__(alert, **kwargs)
        self.comment = comment.strip()
        self.minutes = float(minutes)

    def plan(self) -> ActionPlan:
        a = self.alert
        if a.ack is not None:
            raise ActionRefused(f"{_who(a)} is already acknowledged by {a.ack.by} since "
                                f"{_hhmm(a.ack.at)} (until {_hhmm(a.ack.until)})",
                                reason="nothing_to_do")
        if not self.minutes or self.minutes <= 0:
            raise ActionRefused("an acknowledgement needs a duration of at least one minute",
                                reason="invalid")
        if not self.comment:
            raise ActionRefused("an acknowledgement needs a comment", reason="invalid")
        self._need_backend()
        until = self.clock() + self.minutes * 60.0
        if a.origin == "rule":
            changes = (f"acknowledge the deploytui rule alert {_who(a)} in the local store "
                       f"for {self.minutes:g} min (until {_hhmm(until)})",
                       f"comment: {self.comment}")
            params: dict[str, Any] = {"minutes": self.minutes, "comment": self.comment}
        else:
            if not a.matchers:
                raise ActionRefused(f"{_who(a)} has no alertname label to build a silence on",
                                    reason="invalid")
            matchers = ", ".join(str(m) for m in a.matchers)
            changes = (f"create an Alertmanager silence {{{matchers}}} for {self.minutes:g} min "
                       f"(until {_hhmm(until)})",
                       f"comment: {self.comment}",
                       f"covers {a.count} alert{'s' if a.count != 1 else ''} of this group")
            params = {"minutes": self.minutes, "comment": self.comment,
                      "matchers": [m.to_json() for m in a.matchers]}
        return ActionPlan(action_id=self.id, target=a.fingerprint,
                          title=f"Acknowledge {_who(a)}", changes=changes, env=a.env,
                          service=a.service_key, before={"acknowledged": False},
                          after={"acknowledged": True}, params=params)

    def execute(self, plan: ActionPlan, ctx: ActionContext) -> ActionResult:
        a = self.alert
        self._need_backend()
        now = self.clock()
        minutes = float(plan.params.get("minutes", self.minutes))
        comment = str(plan.params.get("comment", self.comment))
        until = now + minutes * 60.0
        if a.origin == "rule":
            assert self.rule_acks is not None
            self.rule_acks.set_rule_ack(a.fingerprint, Ack(ctx.operator, now, until, comment,
                                                           (), "local"))
            after: dict[str, Any] = {"acknowledged": True, "by": ctx.operator, "until": until}
            message = f"acknowledged {_who(a)} until {_hhmm(until)} (local)"
        else:
            assert self.alertmanager is not None
            matchers = tuple(Matcher(m["name"], m["value"], m.get("isRegex", False),
                                     m.get("isEqual", True))
                             for m in plan.params.get("matchers", ())) or a.matchers
            try:
                sid = self.alertmanager.create_silence(matchers, starts_at=now, ends_at=until,
                                                       created_by=ctx.operator, comment=comment)
            except SourceError as exc:
                raise ActionFailed(f"could not create the silence: {exc}") from None
            after = {"acknowledged": True, "by": ctx.operator, "until": until,
                     "silence_id": sid}
            message = f"acknowledged {_who(a)} until {_hhmm(until)} (silence {sid})"
        self._event(f"{_who(a)} acknowledged by {ctx.operator}: {comment}", ctx,
                    {"until": until, "comment": comment, **after})
        if self.notifier is not None:
            self.notifier.notify("acknowledged", {
                "alertname": a.alertname, "service": a.service_key, "env": a.env,
                "operator": ctx.operator, "comment": comment, "until": until,
                "correlation_id": ctx.correlation_id})
        self._done()
        return ActionResult(True, message, ctx.correlation_id, after)


class UnackAction(_AlertAction):
    """Withdraw an acknowledgement: expire its silences (or the local rule-alert ack)."""

    id: ClassVar[str] = "unack"

    def plan(self) -> ActionPlan:
        a = self.alert
        if a.ack is None:
            raise ActionRefused(f"{_who(a)} is not acknowledged", reason="nothing_to_do")
        self._need_backend()
        if a.origin == "rule" or a.ack.origin == "local":
            changes: tuple[str, ...] = (
                f"remove the local acknowledgement by {a.ack.by} of {_who(a)}",)
        else:
            changes = tuple(f"expire Alertmanager silence {sid} (by {a.ack.by})"
                            for sid in a.ack.silence_ids)
        return ActionPlan(action_id=self.id, target=a.fingerprint,
                          title=f"Un-acknowledge {_who(a)}", changes=changes, env=a.env,
                          service=a.service_key,
                          before={"acknowledged": True, "by": a.ack.by},
                          after={"acknowledged": False},
                          params={"silence_ids": list(a.ack.silence_ids)})

    def execute(self, plan: ActionPlan, ctx: ActionContext) -> ActionResult:
        a = self.alert
        assert a.ack is not None
        self._need_backend()
        if a.origin == "rule" or a.ack.origin == "local":
            assert self.rule_acks is not None
            if not self.rule_acks.clear_rule_ack(a.fingerprint):
                raise ActionRefused(f"{_who(a)} is no longer acknowledged",
                                    reason="nothing_to_do")
            expired: list[str] = []
        else:
            assert self.alertmanager is not None
            expired = []
            for sid in plan.params.get("silence_ids", a.ack.silence_ids):
                try:
                    self.alertmanager.expire_silence(str(sid))
                except SourceError as exc:
                    done = f" (expired {', '.join(expired)} first)" if expired else ""
                    raise ActionFailed(f"could not expire silence {sid}: {exc}{done}") from None
                expired.append(str(sid))
        self._event(f"{_who(a)} un-acknowledged by {ctx.operator}", ctx,
                    {"expired_silences": expired, "was_by": a.ack.by})
        self._done()
        what = f"expired silence {', '.join(expired)}" if expired else "local acknowledgement removed"
        return ActionResult(True, f"un-acknowledged {_who(a)} ({what})", ctx.correlation_id,
                            {"acknowledged": False, "expired_silences": expired})


def _deps(runtime: Any) -> dict[str, Any]:
    source = runtime.sources.get("alerts")
    am = runtime.extras.get("alertmanager")
    if am is None and runtime.settings.alertmanager.url:
        am = runtime.extras.setdefault("alertmanager",
                                       AlertmanagerClient(runtime.settings.alertmanager))
    return {"alertmanager": am, "rule_acks": rule_ack_store(runtime),
            "timeline": runtime.journal, "notifier": runtime.extras.get("notifier"),
            "on_done": getattr(source, "request_refresh", None)}


def ack_action(runtime: Any, alert: Alert, *, comment: str | None = None,
               minutes: float | None = None) -> AckAction:
    """An :class:`AckAction` wired to the runtime (defaults from ``[alertmanager]``)."""
    am = runtime.settings.alertmanager
    return AckAction(alert, comment=am.ack_comment if comment is None else comment,
                     minutes=am.ack_minutes if minutes is None else minutes, **_deps(runtime))


def unack_action(runtime: Any, alert: Alert) -> UnackAction:
    return UnackAction(alert, **_deps(runtime))


def find_alert(runtime: Any, fingerprint: str) -> Alert:
    """The feed row with ``fingerprint`` in the latest alerts snapshot (what the operator sees:
    the pane keeps it in ``runtime.extras["alerts_snapshot"]``; else the source's last poll)."""
    snaps = [runtime.extras.get("alerts_snapshot"),
             getattr(runtime.sources.get("alerts"), "last", None)]
    for snap in snaps:
        finder = getattr(snap, "find", None)
        if callable(finder):
            alert = finder(fingerprint)
            if alert is not None:
                return alert  # type: ignore[no-any-return]
    raise ActionRefused(f"alert {fingerprint} is no longer in the feed (resolved?)",
                        reason="gone")


def make_ack(runtime: Any, fingerprint: str, *, comment: str | None = None,
             minutes: float | None = None) -> AckAction:
    """The console's ``a``: acknowledge the selected feed row."""
    return ack_action(runtime, find_alert(runtime, fingerprint), comment=comment, minutes=minutes)


def make_unack(runtime: Any, fingerprint: str) -> UnackAction:
    """The console's ``A``: withdraw the selected row's acknowledgement."""
    return unack_action(runtime, find_alert(runtime, fingerprint))
