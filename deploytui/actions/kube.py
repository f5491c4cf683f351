"""Kubernetes actions behind the door: rollback (``u``), scale (``s``), restart (``R``), and the
``coordination.k8s.io/v1`` Lease locker that keeps two operators from acting at once.

Building them (the app does this from the selected target)::

    action = make_rollback(runtime, "shop/checkout")            # previous revision
    action = make_rollback(runtime, "shop/checkout", to_revision=6)
    action = make_scale(runtime, "shop/checkout", 8)
    action = make_restart(runtime, "shop/checkout")
    plan = runtime.door.plan(action)      # blocking: reads the cluster; ActionRefused says why not
    result = runtime.door.run(action, plan)

``deployment_for(runtime, target)`` resolves the deployment of a selected service or alert.
Every write records a Kubernetes Event on the Deployment (reason ``DeploytuiRollback`` /
``DeploytuiScale`` / ``DeploytuiRestart``, with the correlation id) besides the door's audit and
timeline. API failures raise :class:`ActionFailed` with a plain-words reason; nothing is
changed when the write did not go through.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

from deploytui.actions.door import ActionContext, ActionPlan, ActionResult
from deploytui.actions.undo import (
    UndoError,
    equal_ignore_hash,
    label_selector,
    plan_undo,
    revision_of,
)
from deploytui.config import Settings
from deploytui.errors import ActionFailed, ActionRefused, SourceError
from deploytui.model import Target
from deploytui.sources.kube_watch import KubeClient, KubeHandle, api_error_message, error_status
from deploytui.sources.rollout_model import ServiceIndex, parse_time

__all__ = [
    "MAX_REPLICAS",
    "LeaseLocker",
    "RestartAction",
    "RollbackAction",
    "ScaleAction",
    "deployment_for",
    "kube_handle",
    "make_restart",
    "make_rollback",
    "make_scale",
]

log = logging.getLogger(__name__)

MAX_REPLICAS = 1000
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"


def _rfc3339(ts: float, micro: bool = False) -> str:
    fmt = "%Y-%m-%dT%H:%M:%S.%fZ" if micro else "%Y-%m-%dT%H:%M:%SZ"
    return datetime.fromtimestamp(ts, UTC).strftime(fmt)


def _human_time(ts: float | None) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if ts else "an unknown time"


def _version(images: tuple[str, ...] | list[str]) -> str:
    if not images:
        return ""
    tail = images[0].rsplit("/", 1)[-1].split("@", 1)[0]
    return tail.split(":", 1)[1] if ":" in tail else tail


def _late(on_time: bool) -> str:
    return "" if on_time else " (the API answered too late, but the change is in place)"


def _images(template: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(str(c.get("image", "")) for c in (template.get("spec") or {}).get("containers") or ())


# --- building from the runtime ---------------------------------------------------------------


def kube_handle(runtime: Any) -> KubeHandle:
    """The runtime's shared lazy client (created on first use). Also makes sure the door locks
    with Leases, whichever path built the runtime (console, headless command, test)."""
    handle = runtime.extras.get("kube")
    if not isinstance(handle, KubeHandle):
        handle = KubeHandle(runtime.settings)
        runtime.extras["kube"] = handle
    door = getattr(runtime, "door", None)
    if door is not None and door.locker is None:
        door.locker = LeaseLocker(handle, runtime.settings)
    return handle


def deployment_for(runtime: Any, target: Target) -> str:
    """The ``namespace/name`` the actions act on for a selection ("" when none is known):
    the target's deployment, the service's configured deployment, or the deployment the
    rollouts source mapped to that service by its ``app`` label or name."""
    if target.deployment:
        return target.deployment
    if not target.service:
        return ""
    svc = runtime.settings.service(target.service)
    if svc is not None and svc.deployment:
        return svc.deployment
    source = runtime.sources.get("rollouts")
    latest = getattr(source, "latest", None)
    for rollout in getattr(latest, "rollouts", ()):
        if rollout.service == (svc.key if svc else target.service):
            return str(rollout.key)
    return ""


def make_rollback(runtime: Any, deployment: str, to_revision: int | None = None) -> RollbackAction:
    return RollbackAction(kube_handle(runtime), runtime.settings, deployment, to_revision or 0)


def make_scale(runtime: Any, deployment: str, replicas: int) -> ScaleAction:
    return ScaleAction(kube_handle(runtime), runtime.settings, deployment, replicas)


def make_restart(runtime: Any, deployment: str) -> RestartAction:
    return RestartAction(kube_handle(runtime), runtime.settings, deployment)


# --- the actions -------------------------------------------------------------------------------


class _KubeAction:
    id: ClassVar[str]
    verb: ClassVar[str]          # "rolling back"
    reason: ClassVar[str]        # Kubernetes Event reason

    def __init__(self, client: KubeHandle | KubeClient, settings: Settings, deployment: str,
                 clock: Callable[[], float] = time.time) -> None:
        namespace, sep, name = deployment.partition("/")
        if not sep or not namespace or not name:
            raise ActionRefused(f"{deployment!r} is not a deployment (expected namespace/name)",
                                reason="validation")
        self.handle = client
        self.settings = settings
        self.namespace, self.name = namespace, name
        self.key = deployment
        self.clock = clock

    # plumbing ---------------------------------------------------------------------------------

    def client(self) -> KubeClient:
        if isinstance(self.handle, KubeClient):
            return self.handle
        try:
            return self.handle.client()
        except SourceError as exc:
            raise ActionRefused(str(exc), reason="unavailable") from None

    def read(self, api: str, method: str, *args: Any, **kwargs: Any) -> Any:
        """A read before anything is changed: failures refuse the action."""
        client = self.client()
        try:
            return client.call(api, method, *args, **kwargs)
        except Exception as exc:
            raise ActionRefused(api_error_message(exc, action=f"{self.verb}", target=self.key,
                                                  timeout=client.request_timeout),
                                reason="unavailable") from None

    def write(self, applied: Callable[[Mapping[str, Any]], bool], api: str, method: str,
              *args: Any, **kwargs: Any) -> bool:
        """Send the change. Returns False when the API timed out but a read right after shows
        the change in place (it answered late); raises ActionFailed when it did not go through."""
        client = self.client()
        try:
            client.call(api, method, *args, **kwargs)
            return True
        except Exception as exc:
            status = error_status(exc)
            message = api_error_message(exc, action=self.verb, target=self.key,
                                        timeout=client.request_timeout)
            if status is None:
                # A timeout or dropped connection does not say whether the change landed: look.
                try:
                    now = client.call("apps", "read_namespaced_deployment", self.name,
                                      self.namespace)
                except Exception:
                    raise ActionFailed(f"{message}; the deployment could not be read back, so "
                                       f"whether it changed is unknown — check it before "
                                       f"retrying", reason="unknown") from None
                if applied(now):
                    return False
                raise ActionFailed(f"{message}; read back right after, the deployment was left "
                                   f"as it was (should the server still apply the request late, "
                                   f"the rollouts pane will show it)", reason="timeout") from None
            raise ActionFailed(f"{message}; the deployment was left as it was",
                               reason=f"http_{status}" if status else "timeout") from None

    def deployment(self) -> dict[str, Any]:
        return self.read("apps", "read_namespaced_deployment", self.name, self.namespace)

    def service_of(self, dep: Mapping[str, Any]) -> tuple[str, str, str]:
        """``(service key, env, confirm_text)``; prod asks for the deployment's name."""
        labels = (dep.get("metadata") or {}).get("labels") or {}
        svc = ServiceIndex(self.settings.services).lookup(self.namespace, self.name, labels)
        if svc is None:
            return "", "", ""
        return svc.key, svc.env, self.name if svc.env == "prod" else ""

    def record_event(self, dep: Mapping[str, Any], message: str, ctx: ActionContext,
                     type_: str = "Normal") -> str:
        """A core/v1 Event on the Deployment; returns "" or a note when it could not be written."""
        meta = dep.get("metadata") or {}
        now = _rfc3339(self.clock())
        body = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{self.name}.deploytui-{secrets.token_hex(6)}",
                         "namespace": self.namespace,
                         "annotations": {"deploytui/correlation-id": ctx.correlation_id,
                                         "deploytui/operator": ctx.operator}},
            "involvedObject": {"apiVersion": "apps/v1", "kind": "Deployment", "name": self.name,
                               "namespace": self.namespace, "uid": meta.get("uid", ""),
                               "resourceVersion": meta.get("resourceVersion", "")},
            "reason": self.reason, "type": type_, "count": 1,
            "message": f"{message} by {ctx.operator} (correlation id {ctx.correlation_id})",
            "firstTimestamp": now, "lastTimestamp": now,
            "source": {"component": "deploytui", "host": socket.gethostname()},
            "reportingComponent": "deploytui", "reportingInstance": ctx.operator,
        }
        try:
            self.client().call("core", "create_namespaced_event", self.namespace, body)
        except Exception as exc:
            log.warning("cannot record the Kubernetes Event for %s: %s", self.key, exc)
            return f" (the Kubernetes Event could not be written: {error_status(exc) or exc})"
        return ""

    def failed(self, dep: Mapping[str, Any], exc: ActionFailed, ctx: ActionContext) -> ActionFailed:
        self.record_event(dep, f"{self.verb} {self.key} failed: {exc}", ctx, "Warning")
        return exc

    def plan_base(self, dep: Mapping[str, Any], title: str, changes: tuple[str, ...], **kw: Any
                  ) -> ActionPlan:
        service, env, confirm = self.service_of(dep)
        return ActionPlan(action_id=self.id, target=self.key, title=title, changes=changes,
                          env=env, service=service, confirm_text=confirm, lock_key=self.key, **kw)

    @staticmethod
    def check_unchanged(plan: ActionPlan, dep: Mapping[str, Any], field: str, now: Any) -> None:
        then = plan.params.get(field)
        if then is not None and then != now:
            raise ActionRefused(f"{plan.target} changed since the confirmation ({field} {then} -> "
                                f"{now}); nothing was done — review the new state and try again",
                                reason="changed")


class RollbackAction(_KubeAction):
    """``kubectl rollout undo [--to-revision=N]`` (see :mod:`deploytui.actions.undo`)."""

    id: ClassVar[str] = "rollback"
    verb = "rolling back"
    reason = "DeploytuiRollback"

    def __init__(self, client: KubeHandle | KubeClient, settings: Settings, deployment: str,
                 to_revision: int = 0, clock: Callable[[], float] = time.time) -> None:
        super().__init__(client, settings, deployment, clock)
        if to_revision < 0:
            raise ActionRefused(f"revision must be a positive number, got {to_revision}",
                                reason="validation")
        self.to_revision = to_revision

    def _undo(self) -> tuple[dict[str, Any], Any]:
        dep = self.deployment()
        selector = label_selector((dep.get("spec") or {}).get("selector"))
        rss = self.read("apps", "list_namespaced_replica_set", self.namespace,
                        label_selector=selector) or {}
        try:
            return dep, plan_undo(dep, rss.get("items") or (), self.to_revision)
        except UndoError as exc:
            raise ActionRefused(f"cannot roll back {self.key}: {exc}", reason=exc.reason) from None

    def plan(self) -> ActionPlan:
        dep, undo = self._undo()
        which = f"revision {undo.to_revision}" if self.to_revision else "the previous revision"
        changes = [undo.describe()]
        if undo.to_change_cause:
            changes.append(f"change-cause: {undo.to_change_cause}")
        return self.plan_base(
            dep, f"Roll back {self.key} to {which}", tuple(changes), version=_version(undo.to_images),
            before={"revision": undo.from_revision, "images": list(undo.from_images)},
            after={"revision": undo.to_revision, "images": list(undo.to_images)},
            params={"to_revision": self.to_revision, "target_revision": undo.to_revision,
                    "from_revision": undo.from_revision})

    def execute(self, plan: ActionPlan, ctx: ActionContext) -> ActionResult:
        dep, undo = self._undo()
        self.check_unchanged(plan, dep, "from_revision", undo.from_revision)
        self.check_unchanged(plan, dep, "target_revision", undo.to_revision)
        ctx.renew()
        target = undo.patch[0]["value"]
        try:
            on_time = self.write(
                lambda now: equal_ignore_hash((now.get("spec") or {}).get("template") or {}, target),
                "apps", "patch_namespaced_deployment", self.name, self.namespace,
                [dict(op) for op in undo.patch], _content_type=JSON_PATCH)
        except ActionFailed as exc:
            raise self.failed(dep, exc, ctx) from None
        message = (f"rolled back {self.key} from revision {undo.from_revision} to the template of "
                   f"revision {undo.to_revision} ({', '.join(undo.to_images)})") + _late(on_time)
        note = self.record_event(dep, message, ctx)
        return ActionResult(True, message + note, after={
            "revision": undo.to_revision, "images": list(undo.to_images)})


class ScaleAction(_KubeAction):
    """Set ``spec.replicas`` through the scale subresource."""

    id: ClassVar[str] = "scale"
    verb = "scaling"
    reason = "DeploytuiScale"

    def __init__(self, client: KubeHandle | KubeClient, settings: Settings, deployment: str,
                 replicas: int | str, clock: Callable[[], float] = time.time) -> None:
        super().__init__(client, settings, deployment, clock)
        self.replicas = self.validate(replicas)

    @staticmethod
    def validate(replicas: int | str) -> int:
        """An int from 0 to :data:`MAX_REPLICAS`, or ActionRefused (reason ``validation``)."""
        text = str(replicas).strip()
        if isinstance(replicas, bool) or not text.isdigit():
            raise ActionRefused(f"replicas must be a whole number from 0 to {MAX_REPLICAS}, "
                                f"got {text!r}", reason="validation")
        value = int(text)
        if value > MAX_REPLICAS:
            raise ActionRefused(f"replicas must be at most {MAX_REPLICAS}, got {value}",
                                reason="validation")
        return value

    def _current(self) -> int:
        scale = self.read("apps", "read_namespaced_deployment_scale", self.name, self.namespace)
        return int(((scale or {}).get("spec") or {}).get("replicas") or 0)

    def plan(self) -> ActionPlan:
        dep = self.deployment()
        current = self._current()
        if current == self.replicas:
            raise ActionRefused(f"{self.key} already has {current} replicas; nothing to change",
                                reason="unchanged")
        images = _images((dep.get("spec") or {}).get("template") or {})
        return self.plan_base(
            dep, f"Scale {self.key}", (f"replicas {current} -> {self.replicas}",),
            version=_version(images), before={"replicas": current},
            after={"replicas": self.replicas}, params={"replicas": current})

    def execute(self, plan: ActionPlan, ctx: ActionContext) -> ActionResult:
        dep = self.deployment()
        current = self._current()
        self.check_unchanged(plan, dep, "replicas", current)
        ctx.renew()
        try:
            on_time = self.write(
                lambda now: (now.get("spec") or {}).get("replicas") == self.replicas,
                "apps", "patch_namespaced_deployment_scale", self.name, self.namespace,
                {"spec": {"replicas": self.replicas}}, _content_type=MERGE_PATCH)
        except ActionFailed as exc:
            raise self.failed(dep, exc, ctx) from None
        message = f"scaled {self.key} from {current} to {self.replicas} replicas" + _late(on_time)
        note = self.record_event(dep, message, ctx)
        return ActionResult(True, message + note, after={"replicas": self.replicas})


class RestartAction(_KubeAction):
    """``kubectl rollout restart``: stamp ``kubectl.kubernetes.io/restartedAt`` on the template."""

    id: ClassVar[str] = "restart"
    verb = "restarting"
    reason = "DeploytuiRestart"

    def plan(self) -> ActionPlan:
        dep = self.deployment()
        spec = dep.get("spec") or {}
        if spec.get("paused"):
            raise ActionRefused(f"cannot restart {self.key}: it is paused (run 'kubectl rollout "
                                f"resume deployment/{self.name}' first)", reason="paused")
        replicas = spec.get("replicas", 1)
        revision = revision_of(dep) or 0
        images = _images(spec.get("template") or {})
        return self.plan_base(
            dep, f"Restart {self.key}",
            (f"restart all {replicas} pods, rolling (revision {revision} -> {revision + 1}, "
             f"image {', '.join(images)} unchanged)",),
            version=_version(images), before={"revision": revision},
            params={"revision": revision})

    def execute(self, plan: ActionPlan, ctx: ActionContext) -> ActionResult:
        dep = self.deployment()
        if (dep.get("spec") or {}).get("paused"):
            raise ActionRefused(f"cannot restart {self.key}: it is paused", reason="paused")
        self.check_unchanged(plan, dep, "revision", revision_of(dep) or 0)
        stamp = _rfc3339(self.clock())
        ctx.renew()
        body = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}}
        def applied(now: Mapping[str, Any]) -> bool:
            meta = ((now.get("spec") or {}).get("template") or {}).get("metadata") or {}
            return (meta.get("annotations") or {}).get(RESTARTED_AT) == stamp

        try:
            on_time = self.write(applied, "apps", "patch_namespaced_deployment", self.name,
                                 self.namespace, body, _content_type=STRATEGIC_PATCH)
        except ActionFailed as exc:
            raise self.failed(dep, exc, ctx) from None
        message = f"restarted {self.key} (restartedAt {stamp})" + _late(on_time)
        note = self.record_event(dep, message, ctx)
        return ActionResult(True, message + note, after={"restartedAt": stamp})


# --- locks ---------------------------------------------------------------------------------------


class LeaseLocker:
    """The door's :class:`~deploytui.actions.door.Locker` on ``coordination.k8s.io/v1`` Leases.

    One Lease per deployment, ``deploytui-<name>`` in the deployment's namespace (or
    ``deploytui-<namespace>-<name>`` in ``[kubernetes] lease_namespace``). The holder is the
    operator identity; a console instance id in an annotation tells two consoles of one operator
    apart. A live Lease of someone else refuses with who holds it and since when; an expired one
    is taken over (optimistic concurrency on resourceVersion, so exactly one contender wins).
    While held it is renewed every third of its duration; leaving the context deletes it.
    Keys that are not ``namespace/name`` are not locked.
    """

    INSTANCE_ANNOTATION = "deploytui/instance"

    def __init__(self, client: KubeHandle | KubeClient, settings: Settings, *,
                 clock: Callable[[], float] = time.time, instance: str | None = None) -> None:
        self.handle = client
        self.duration = int(settings.kubernetes.lease_duration_seconds)
        self.lease_namespace = settings.kubernetes.lease_namespace
        self.clock = clock
        self.instance = instance or secrets.token_hex(6)

    def client(self) -> KubeClient:
        if isinstance(self.handle, KubeClient):
            return self.handle
        try:
            return self.handle.client()
        except SourceError as exc:
            raise ActionRefused(f"cannot take the lock: {exc}", reason="lock_unavailable") from None

    def lease_ref(self, key: str) -> tuple[str, str]:
        namespace, _, name = key.partition("/")
        if self.lease_namespace:
            return self.lease_namespace, f"deploytui-{namespace}-{name}"[:253]
        return namespace, f"deploytui-{name}"[:253]

    def _body(self, ns: str, name: str, holder: str, now: float, transitions: int,
              rv: str | None = None, acquired: float | None = None) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": name, "namespace": ns,
                                "labels": {"app.kubernetes.io/managed-by": "deploytui"},
                                "annotations": {self.INSTANCE_ANNOTATION: self.instance}}
        if rv:
            meta["resourceVersion"] = rv
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta,
                "spec": {"holderIdentity": holder, "leaseDurationSeconds": self.duration,
                         "acquireTime": _rfc3339(acquired or now, micro=True),
                         "renewTime": _rfc3339(now, micro=True),
                         "leaseTransitions": transitions}}

    def _refusal(self, key: str, lease: Mapping[str, Any], holder: str) -> ActionRefused:
        spec = lease.get("spec") or {}
        who = spec.get("holderIdentity") or "someone"
        since = parse_time(spec.get("acquireTime")) or parse_time(spec.get("renewTime"))
        other = ((lease.get("metadata") or {}).get("annotations") or {}).get(self.INSTANCE_ANNOTATION)
        if who == holder and other != self.instance:
            who = f"you ({holder}) in another console"
        return ActionRefused(f"{key} is locked: held by {who} since {_human_time(since)}; "
                             f"try again when they are done", reason="locked")

    def _live(self, lease: Mapping[str, Any], now: float) -> bool:
        spec = lease.get("spec") or {}
        if not spec.get("holderIdentity"):
            return False
        renewed = parse_time(spec.get("renewTime")) or parse_time(spec.get("acquireTime"))
        duration = spec.get("leaseDurationSeconds") or self.duration
        return renewed is not None and renewed + float(duration) > now

    def _acquire(self, key: str, holder: str) -> dict[str, Any]:
        client = self.client()
        ns, name = self.lease_ref(key)
        now = self.clock()

        def fail(exc: Exception) -> ActionRefused:
            return ActionRefused("cannot take the lock: " + api_error_message(
                exc, action="locking", target=key, timeout=client.request_timeout),
                reason="lock_unavailable")

        try:
            current = client.call("coordination", "read_namespaced_lease", name, ns)
        except Exception as exc:
            if error_status(exc) != 404:
                raise fail(exc) from None
            try:
                return client.call("coordination", "create_namespaced_lease", ns,
                                   self._body(ns, name, holder, now, 0))
            except Exception as exc2:
                if error_status(exc2) != 409:
                    raise fail(exc2) from None
                try:   # someone created it between our read and our create
                    current = client.call("coordination", "read_namespaced_lease", name, ns)
                except Exception as exc3:
                    raise fail(exc3) from None
        mine = (((current.get("metadata") or {}).get("annotations") or {})
                .get(self.INSTANCE_ANNOTATION) == self.instance)
        if self._live(current, now) and not mine:
            raise self._refusal(key, current, holder)
        spec = current.get("spec") or {}
        body = self._body(ns, name, holder, now, int(spec.get("leaseTransitions") or 0) + 1,
                          rv=(current.get("metadata") or {}).get("resourceVersion"))
        try:
            return client.call("coordination", "replace_namespaced_lease", name, ns, body)
        except Exception as exc:
            if error_status(exc) == 409:
                try:
                    latest = client.call("coordination", "read_namespaced_lease", name, ns)
                except Exception:
                    latest = current
                raise self._refusal(key, latest, holder) from None
            raise fail(exc) from None

    @contextlib.contextmanager
    def hold(self, key: str, holder: str) -> Iterator[Callable[[], None]]:
        if key.count("/") != 1:
            yield lambda: None
            return
        lease = self._acquire(key, holder)
        state = {"lease": lease, "lost": ""}
        guard = threading.Lock()
        stop = threading.Event()
        ns, name = self.lease_ref(key)
        client = self.client()

        def renew() -> None:
            with guard:
                if state["lost"]:
                    raise ActionFailed(f"lost the lock on {key}: {state['lost']}; stopped before "
                                       f"changing anything more", reason="lock_lost")
                cur = state["lease"]
                spec = cur.get("spec") or {}
                body = self._body(ns, name, holder, self.clock(), int(spec.get("leaseTransitions") or 0),
                                  rv=(cur.get("metadata") or {}).get("resourceVersion"),
                                  acquired=parse_time(spec.get("acquireTime")))
                try:
                    state["lease"] = client.call("coordination", "replace_namespaced_lease", name,
                                                 ns, body)
                except Exception as exc:
                    state["lost"] = api_error_message(exc, action="renewing the lock on",
                                                      target=key)
                    raise ActionFailed(f"lost the lock on {key}: {state['lost']}",
                                       reason="lock_lost") from None

        def keep_alive() -> None:
            while not stop.wait(max(1.0, self.duration / 3)):
                try:
                    renew()
                except ActionFailed:
                    return

        thread = threading.Thread(target=keep_alive, name=f"lease:{key}", daemon=True)
        thread.start()
        try:
            yield renew
        finally:
            stop.set()
            thread.join(timeout=2)
            with guard:
                rv = ((state["lease"].get("metadata") or {}).get("resourceVersion"))
                if not state["lost"]:
                    try:
                        client.call("coordination", "delete_namespaced_lease", name, ns,
                                    body={"preconditions": {"resourceVersion": rv}})
                    except Exception as exc:   # it expires on its own in a few seconds
                        log.warning("cannot release the lock on %s: %s", key, exc)
