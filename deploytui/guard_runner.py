"""The guard's I/O side: watch one deployment after a rollout starts, feed the pure
:class:`deploytui.guard.Guard`, record every evaluation, and act on a trip.

    runner = GuardRunner(runtime, "shop/checkout", armed=True,
                         on_decision=print_line, on_prompt=show_banner)
    outcome = await runner.run()          # GuardOutcome; outcome.exit_code is 0 / 1 / 2
    runner.abort()                        # esc during the countdown (thread-safe)
    runner.confirm() / runner.dismiss()   # answer a proposal (thread-safe)

Every ``interval_seconds`` for ``window_minutes`` it reads, concurrently:

* metrics for the deployment's service (Prometheus when ``[prometheus] url`` is set, else the
  direct scrape of its ``metrics_url`` — :func:`deploytui.sources.alerts.make_metrics`);
* the service's health endpoint (:class:`deploytui.sources.health.HealthSource`), as the
  number of failing critical checks;
* the rollout (Deployment, ReplicaSets, Pods of its namespace) for the revision, whether a
  previous revision exists, and the deployment's Lease (another operator acting on it).

Each evaluation — every query, value, threshold and the decision — is written to the audit
log (action ``guard_eval``, status ``evaluated``); changes of verdict, trips, proposals,
aborts and rollbacks also go to the timeline (kind ``guard``). A trip sends ``guard_tripped``.

On a trip: ``propose`` hands a :class:`Prompt` to ``on_prompt`` and waits for
:meth:`confirm` / :meth:`dismiss` (or the countdown to run out: no rollback); ``rollback`` (auto,
armed) hands a countdown :class:`Prompt` and rolls back when it ends unless :meth:`abort` was
called — through ``runtime.door.run(make_rollback(runtime, deployment))``: lock, audit, Kubernetes
Event and notifications, like an operator's ``u``. Without ``on_prompt`` (headless) a proposal is
reported as "would roll back".
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from deploytui.config import ServiceSettings, Settings
from deploytui.guard import (
    CRITERIA,
    CRITERION_METRICS,
    Decision,
    Guard,
    Observation,
    Reading,
)
from deploytui.model import AuditRecord, TimelineEvent

__all__ = [
    "GuardOutcome",
    "GuardRunner",
    "Prompt",
    "RolloutState",
    "last_auto_rollback",
    "service_for_deployment",
]

log = logging.getLogger(__name__)

GUARD_ACTOR = "deploytui guard"

OutcomeStatus = Literal["healthy", "rolled_back", "would_roll_back", "blocked", "aborted",
                        "dismissed", "rollback_failed", "inconclusive", "stopped"]

_EXIT = {"healthy": 0, "rolled_back": 1, "would_roll_back": 1, "blocked": 1, "aborted": 1,
         "dismissed": 1, "rollback_failed": 1, "inconclusive": 2, "stopped": 2}


@dataclass(frozen=True)
class GuardOutcome:
    status: OutcomeStatus
    deployment: str
    message: str
    evaluations: int = 0
    last: Decision | None = None
    correlation_id: str = ""

    @property
    def exit_code(self) -> int:
        """0 healthy, 1 rolled back / would roll back (tripped), 2 could not evaluate."""
        return _EXIT[self.status]


@dataclass(frozen=True)
class Prompt:
    """What the UI shows when the guard trips: a proposal or an automatic countdown."""

    kind: Literal["propose", "countdown"]
    deployment: str
    revision: int
    decision: Decision
    deadline: float                        # clock() time the countdown ends
    runner: GuardRunner = field(compare=False, repr=False)

    @property
    def evidence(self) -> tuple[str, ...]:
        return self.decision.evidence()

    def remaining(self, now: float) -> float:
        return max(0.0, self.deadline - now)


@dataclass(frozen=True)
class RolloutState:
    revision: int = 0
    has_previous: bool = False
    phase: str = ""
    error: str = ""


def service_for_deployment(settings: Settings, deployment: str) -> ServiceSettings | None:
    """The configured service whose ``deployment`` (or, else, name) matches ``ns/name``."""
    _, _, name = deployment.partition("/")
    for svc in settings.services:
        if svc.deployment == deployment:
            return svc
    candidates = [s for s in settings.services if not s.deployment and s.name == name]
    return candidates[0] if len(candidates) == 1 else None


def last_auto_rollback(runtime: Any, deployment: str) -> float | None:
    """When the guard last rolled ``deployment`` back (this process, or the audit log)."""
    book: dict[str, float] = runtime.extras.setdefault("guard_cooldowns", {})
    found = book.get(deployment)
    journal = runtime.journal
    records: Any = ()
    try:
        audit = getattr(journal, "audit", ())
        records = audit(action="guard_rollback") if callable(audit) else audit
    except Exception as exc:
        log.warning("guard: cannot read the audit log for the cooldown: %s", exc)
    for r in records:
        if r.action == "guard_rollback" and r.target == deployment and r.status == "ok":
            found = max(found or 0.0, r.ts)
    return found


class GuardRunner:
    """Watches one deployment; see the module docstring. ``clock`` and ``sleep`` are injectable
    (``sleep`` is awaited); overrides default to ``[guard]``."""

    def __init__(self, runtime: Any, deployment: str, *, mode: str | None = None,
                 armed: bool = False, dry_run: bool | None = None,
                 window_seconds: float | None = None, interval_seconds: float | None = None,
                 countdown_seconds: float | None = None, started_at: float | None = None,
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
                 on_decision: Callable[[Decision], None] | None = None,
                 on_prompt: Callable[[Prompt], None] | None = None,
                 on_finish: Callable[[GuardOutcome], None] | None = None,
                 metrics: Any = None, health: Any = None) -> None:
        self.runtime = runtime
        self.deployment = deployment
        settings: Settings = runtime.settings
        g = settings.guard
        changes: dict[str, Any] = {}
        if dry_run is not None:
            changes["dry_run"] = dry_run
        if window_seconds is not None:
            changes["window_minutes"] = window_seconds / 60.0
        self.guard_settings = dataclasses.replace(g, **changes)
        self.mode = mode or g.mode
        self.armed = armed
        self.interval = interval_seconds if interval_seconds is not None else g.interval_seconds
        self.countdown = countdown_seconds if countdown_seconds is not None else g.countdown_seconds
        self.clock = clock
        self.sleep = sleep
        self.on_decision = on_decision
        self.on_prompt = on_prompt
        self.on_finish = on_finish
        self.started_at = started_at
        self.service = service_for_deployment(settings, deployment)
        one = dataclasses.replace(settings, services=(self.service,) if self.service else ())
        self._one = one
        self._metrics = metrics
        self._health = health
        self._abort = threading.Event()
        self._answer: str = ""
        self._answer_lock = threading.Lock()
        self._stop = threading.Event()
        self.prompt: Prompt | None = None
        self.decisions: list[Decision] = []
        self._last_verdict = ""
        self.rollout = RolloutState()
        self.guard: Guard | None = None

    # --- controls (any thread) -----------------------------------------------------------------

    def abort(self) -> None:
        """Abort the automatic countdown (esc)."""
        self._abort.set()

    def confirm(self) -> None:
        with self._answer_lock:
            self._answer = self._answer or "confirm"

    def dismiss(self) -> None:
        with self._answer_lock:
            self._answer = self._answer or "dismiss"

    def stop(self) -> None:
        self._stop.set()
        self._abort.set()

    # --- reading -------------------------------------------------------------------------------

    def _metrics_source(self) -> Any:
        if self._metrics is None and self.service is not None:
            from deploytui.sources.alerts import make_metrics

            self._metrics = make_metrics(self._one)
        return self._metrics

    def _health_source(self) -> Any:
        if self._health is None and self.service is not None:
            from deploytui.sources.health import HealthSource

            self._health = HealthSource(self._one, transport="httpx")
        return self._health

    async def _read_metrics(self) -> list[Reading]:
        wanted = [c for c in CRITERIA if CRITERION_METRICS[c]]
        source = self._metrics_source()
        if source is None:
            why = ("no service is configured for this deployment" if self.service is None else
                   "no metrics source: set [prometheus] url or the service's metrics_url")
            return [Reading(c, None, "error", message=why) for c in wanted]
        try:
            snap = await source.fetch()
        except Exception as exc:
            return [Reading(c, None, "error", message=f"{exc.__class__.__name__}: {exc}")
                    for c in wanted]
        assert self.service is not None
        out = []
        for c in wanted:
            metric = CRITERION_METRICS[c]
            mv = snap.value(self.service.key, metric)
            query = snap.queries.get(metric) or (
                f"scrape {self.service.metrics_url} ({metric})" if snap.source == "scrape"
                else metric)
            out.append(Reading(c, mv.value, mv.state, query=query, message=mv.message))
        return out

    async def _read_health(self) -> Reading:
        source = self._health_source()
        if source is None:
            return Reading("health_failures", None, "error",
                           message="no service is configured for this deployment")
        try:
            snap = await source.sweep()
        except Exception as exc:
            return Reading("health_failures", None, "error",
                           message=f"{exc.__class__.__name__}: {exc}")
        assert self.service is not None
        report = snap.by_key().get(self.service.key)
        query = f"GET {self.service.health_url}"
        if report is None or report.state in ("pending", "stale"):
            return Reading("health_failures", None, "empty", query=query,
                           message="no health answer yet")
        failing = sum(1 for c in report.checks if c.critical and c.status == "fail")
        if report.state in ("unhealthy", "unreachable"):
            failing = max(failing, 1)
        return Reading("health_failures", float(failing), "ok", query=query,
                       message=report.reason)

    def _read_rollout_blocking(self) -> tuple[RolloutState, str]:
        """(rollout, lock holder) from the Kubernetes API; blocking."""
        settings: Settings = self.runtime.settings
        if not settings.kubernetes.enabled:
            return RolloutState(error="Kubernetes is not enabled ([kubernetes] enabled)"), ""
        from deploytui.actions.kube import kube_handle
        from deploytui.sources.kube_watch import KINDS, api_error_message
        from deploytui.sources.rollout_model import RolloutModel

        ns, _, _ = self.deployment.partition("/")
        try:
            client = kube_handle(self.runtime).client()
        except Exception as exc:
            return RolloutState(error=str(exc)), ""
        model = RolloutModel(settings)
        try:
            for spec in KINDS.values():
                items: list[Any] = []
                token = None
                while True:
                    kwargs: dict[str, Any] = {"limit": 500}
                    if token:
                        kwargs["_continue"] = token
                    doc = client.call(spec.api, spec.list_namespaced, ns, **kwargs) or {}
                    items.extend(spec.extract(o) for o in doc.get("items") or ())
                    token = (doc.get("metadata") or {}).get("continue")
                    if not token:
                        break
                model.replace_all(spec.plural, ns, items)
        except Exception as exc:
            return RolloutState(error=api_error_message(exc, action="reading",
                                                        target=self.deployment)), ""
        snap = model.build(time.time(), namespaces=(ns,))
        rollout = snap.find(self.deployment)
        if rollout is None:
            return RolloutState(error=f"deployment {self.deployment} not found"), ""
        state = RolloutState(revision=rollout.revision,
                             has_previous=any(r.revision != rollout.revision and r.revision > 0
                                              for r in rollout.revisions),
                             phase=rollout.phase)
        return state, self._lock_holder(client)

    def _lock_holder(self, client: Any) -> str:
        """Who else holds the deployment's Lease right now ("" : nobody, or this console)."""
        from deploytui.actions.kube import LeaseLocker
        from deploytui.sources.rollout_model import parse_time

        door = self.runtime.door
        locker = door.locker if isinstance(door.locker, LeaseLocker) else None
        ns, name = (locker or LeaseLocker(client, self.runtime.settings)).lease_ref(self.deployment)
        try:
            lease = client.call("coordination", "read_namespaced_lease", name, ns)
        except Exception:
            return ""      # no Lease (404) or unreadable: the door's own check still applies
        spec = (lease or {}).get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        renewed = parse_time(spec.get("renewTime")) or parse_time(spec.get("acquireTime"))
        duration = float(spec.get("leaseDurationSeconds") or 15)
        if not holder or renewed is None or renewed + duration <= time.time():
            return ""
        instance = ((lease.get("metadata") or {}).get("annotations") or {}).get(
            LeaseLocker.INSTANCE_ANNOTATION)
        if locker is not None and instance == locker.instance:
            return ""
        return str(holder)

    def _warm_up(self) -> None:
        """Import the lazily imported clients one after the other: the first observation reads
        metrics and Kubernetes in parallel threads, and two threads importing ``requests`` at
        once can see it half initialised."""
        try:
            if self.runtime.settings.prometheus.url:
                import prometheus_api_client  # noqa: F401
            if self.runtime.settings.kubernetes.enabled:
                from deploytui.actions.kube import kube_handle

                kube_handle(self.runtime).client()
        except Exception as exc:   # reported by the first observation in plain words
            log.debug("guard: warm-up: %s", exc)

    async def observe(self) -> Observation:
        """One observation (everything read concurrently)."""
        metrics, health, (rollout, holder) = await asyncio.gather(
            self._read_metrics(), self._read_health(),
            asyncio.to_thread(self._read_rollout_blocking))
        self.rollout = rollout
        now = self.clock()
        return Observation(
            ts=now, revision=rollout.revision, readings=(*metrics, health),
            has_previous=rollout.has_previous, read_only=bool(self.runtime.read_only),
            lock_holder=holder, armed=self.armed,
            last_auto_rollback=last_auto_rollback(self.runtime, self.deployment),
            phase=rollout.phase or (f"unknown ({rollout.error})" if rollout.error else ""))

    # --- recording -----------------------------------------------------------------------------

    def _audit(self, action: str, status: str, message: str, after: dict[str, Any],
               cid: str = "") -> None:
        svc = self.service
        try:
            self.runtime.journal.add_audit(AuditRecord(
                action=action, target=self.deployment, status=status, ts=self.clock(),
                service=svc.key if svc else "", environment=svc.env if svc else "",
                deployer=self.runtime.operator, correlation_id=cid, after=after,
                message=message))
        except Exception:
            log.exception("guard: cannot write the audit log")

    def _event(self, summary: str, decision: str, severity: str = "info", cid: str = "",
               **details: Any) -> None:
        svc = self.service
        try:
            self.runtime.journal.add_event(TimelineEvent(
                kind="guard", summary=summary, ts=self.clock(), service=self.deployment,
                env=svc.env if svc else "", severity=severity,  # type: ignore[arg-type]
                actor=GUARD_ACTOR, correlation_id=cid,
                details={"deployment": self.deployment, "decision": decision, **details}))
        except Exception:
            log.exception("guard: cannot write the timeline")

    def _notify(self, event: str, payload: dict[str, Any]) -> None:
        notifier = self.runtime.extras.get("notifier") or getattr(self.runtime.door, "notifier",
                                                                   None)
        if notifier is None:
            return
        try:
            notifier.notify(event, payload)
        except Exception:
            log.exception("guard: notifying %s failed", event)

    def _record(self, d: Decision) -> None:
        results = [r.as_dict() for r in d.results]
        self._audit("guard_eval", "evaluated", d.summary(), {
            "verdict": d.verdict, "action": d.action, "revision": d.revision,
            "mode": self.mode, "armed": self.armed, "dry_run": self.guard_settings.dry_run,
            "results": results})
        if d.verdict != self._last_verdict or d.first_trip:
            severity = {"tripped": "critical", "failing": "warning",
                        "inconclusive": "warning"}.get(d.verdict, "info")
            decision = f"tripped: {d.action}" if d.tripped else d.verdict
            self._event(f"guard {self.deployment}: {d.summary()}", decision, severity,
                        revision=d.revision, evidence=list(d.evidence()), results=results)
        self._last_verdict = d.verdict

    # --- acting --------------------------------------------------------------------------------

    async def _wait_until(self, deadline: float, done: Callable[[], bool]) -> bool:
        """Sleep in small steps until ``deadline``; True when ``done()`` turned true first."""
        while self.clock() < deadline:
            if done():
                return True
            await self.sleep(min(0.1, max(0.0, deadline - self.clock())))
        return done()

    async def _rollback(self, d: Decision) -> GuardOutcome:
        from deploytui.actions.kube import LeaseLocker, kube_handle, make_rollback

        door = self.runtime.door
        if door.locker is None and self.runtime.settings.kubernetes.enabled:
            door.locker = LeaseLocker(kube_handle(self.runtime), self.runtime.settings)

        def run() -> Any:
            action = make_rollback(self.runtime, self.deployment)
            return door.run(action)

        try:
            result = await asyncio.to_thread(run)
        except Exception as exc:     # make_rollback refused before the door (bad key)
            message = f"rollback of {self.deployment} not attempted: {exc}"
            self._audit("guard_rollback", "refused", message, {"revision": d.revision})
            return self._finish("rollback_failed", message, d)
        status = "ok" if result.ok else "failed"
        message = result.message
        if result.ok:
            self.runtime.extras.setdefault("guard_cooldowns", {})[self.deployment] = self.clock()
        self._audit("guard_rollback", status, message,
                    {"revision": d.revision, "tripped_by": list(d.tripped_by)},
                    result.correlation_id)
        self._event(f"guard {self.deployment}: rollback {status} — {message}",
                    "rollback" if result.ok else "rollback failed",
                    "warning" if result.ok else "critical", result.correlation_id)
        if result.ok:
            return self._finish("rolled_back", f"rolled back {self.deployment}: {message}", d,
                                result.correlation_id)
        return self._finish("rollback_failed", f"rollback of {self.deployment} did not happen: "
                            f"{message}", d, result.correlation_id)

    async def _act(self, d: Decision) -> GuardOutcome:
        self._notify("guard_tripped", {
            "deployment": self.deployment, "target": self.deployment, "revision": d.revision,
            "service": self.service.key if self.service else "",
            "env": self.service.env if self.service else "", "action": d.action,
            "message": d.reason, "evidence": list(d.evidence()), "operator": GUARD_ACTOR})
        if d.action == "blocked":
            reason = d.reason + (f" (Kubernetes: {self.rollout.error})" if self.rollout.error
                                 else "")
            self._audit("guard_rollback", "refused", reason, {"revision": d.revision})
            return self._finish("blocked", reason, d)
        if d.action == "dry_run":
            self._audit("guard_rollback", "dry_run", d.reason, {"revision": d.revision})
            return self._finish("would_roll_back", d.reason, d)
        if d.action == "propose":
            if self.on_prompt is None:
                return self._finish("would_roll_back", d.reason, d)
            prompt = Prompt("propose", self.deployment, d.revision, d,
                            self.clock() + self.countdown, self)
            self.prompt = prompt
            self.on_prompt(prompt)
            answered = await self._wait_until(prompt.deadline,
                                              lambda: bool(self._answer) or self._stop.is_set())
            self.prompt = None
            if answered and self._answer == "confirm":
                self._event(f"guard {self.deployment}: rollback confirmed by "
                            f"{self.runtime.operator}", "rollback confirmed", "warning")
                return await self._rollback(d)
            why = ("dismissed by " + self.runtime.operator if self._answer == "dismiss"
                   else "no answer before the countdown ended")
            self._audit("guard_rollback", "refused", f"proposal {why}", {"revision": d.revision})
            self._event(f"guard {self.deployment}: proposal {why}", "dismissed")
            return self._finish("dismissed", f"rollback proposal for {self.deployment} {why}", d)
        # automatic, armed: count down, abortable
        prompt = Prompt("countdown", self.deployment, d.revision, d,
                        self.clock() + self.countdown, self)
        self.prompt = prompt
        if self.on_prompt is not None:
            self.on_prompt(prompt)
        self._event(f"guard {self.deployment}: automatic rollback in {self.countdown:g} s "
                    f"unless aborted", "countdown", "warning")
        aborted = await self._wait_until(prompt.deadline, self._abort.is_set)
        self.prompt = None
        if aborted:
            who = "stopped" if self._stop.is_set() else f"aborted by {self.runtime.operator}"
            self._audit("guard_rollback", "aborted", f"automatic rollback {who}",
                        {"revision": d.revision})
            self._event(f"guard {self.deployment}: automatic rollback {who}", "aborted",
                        "warning")
            return self._finish("aborted", f"automatic rollback of {self.deployment} {who}", d)
        if self.runtime.read_only:
            message = "no rollback: the console became read-only during the countdown"
            self._audit("guard_rollback", "refused", message, {"revision": d.revision})
            return self._finish("blocked", message, d)
        return await self._rollback(d)

    def _finish(self, status: OutcomeStatus, message: str, last: Decision | None,
                cid: str = "") -> GuardOutcome:
        outcome = GuardOutcome(status, self.deployment, message, len(self.decisions), last, cid)
        if self.on_finish is not None:
            try:
                self.on_finish(outcome)
            except Exception:
                log.exception("guard: on_finish failed")
        return outcome

    # --- the loop ------------------------------------------------------------------------------

    async def run(self) -> GuardOutcome:
        """Watch until the window ends, the guard trips and is acted on, or :meth:`stop`."""
        started = self.started_at if self.started_at is not None else self.clock()
        guard = Guard(self.guard_settings, self.deployment, started_at=started, mode=self.mode)
        self.guard = guard
        try:
            if self.mode == "off":
                return self._finish("stopped", "the guard is off ([guard] mode = \"off\")", None)
            await asyncio.to_thread(self._warm_up)
            while not self._stop.is_set():
                tick = self.clock()
                if tick > guard.window_end:
                    break
                obs = await self.observe()
                d = guard.evaluate(obs)
                if d.verdict == "window_over":
                    break
                self.decisions.append(d)
                self._record(d)
                if self.on_decision is not None:
                    self.on_decision(d)
                if d.tripped and d.first_trip:
                    return await self._act(d)
                next_at = tick + self.interval
                if next_at > guard.window_end:
                    break
                while self.clock() < next_at and not self._stop.is_set():
                    await self.sleep(min(0.25, max(0.0, next_at - self.clock())))
            return self._end()
        finally:
            await self._close()

    def _end(self) -> GuardOutcome:
        if self._stop.is_set():
            return self._finish("stopped", f"guard of {self.deployment} stopped",
                                self.decisions[-1] if self.decisions else None)
        last = self.decisions[-1] if self.decisions else None
        if last is not None and last.verdict == "healthy":
            return self._finish("healthy", f"{self.deployment} stayed healthy for the "
                                f"{self.guard_settings.window_minutes * 60:g} s window "
                                f"({len(self.decisions)} evaluations)", last)
        if last is None:
            why = "no evaluation ran"
        elif last.verdict == "failing":
            why = "still above a threshold at the end of the window, not yet at the limit"
        else:
            why = last.reason or "no data"
        return self._finish("inconclusive", f"could not conclude on {self.deployment}: {why}",
                            last)

    async def _close(self) -> None:
        for source in (self._metrics, self._health):
            close = getattr(source, "aclose", None)
            if close is not None:
                try:
                    await close()
                except Exception:
                    log.debug("guard: closing a source failed", exc_info=True)
            elif source is not None and hasattr(source, "close"):
                try:
                    source.close()
                except Exception:
                    log.debug("guard: closing a source failed", exc_info=True)
