"""``KubeSim``: the simulated Kubernetes API server with its controllers.

Thread-safety: the store is guarded by a ``threading.RLock`` (``Store.lock``); every synchronous
method here may be called from any thread while the server and the controller run on the loop
that called ``start()``. Watch fan-out crosses threads with ``loop.call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import re
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from deploytui.demo.kube.api import Api
from deploytui.demo.kube.controller import DeploymentController, revision_of
from deploytui.demo.kube.objects import (
    CHANGE_CAUSE,
    default_deployment,
    new_namespace,
    new_replica_set,
    new_service,
    template_hash,
)
from deploytui.demo.kube.pods import ImageBehavior, is_pod_ready
from deploytui.demo.kube.resources import by_kind
from deploytui.demo.kube.server import Fault, KubeServer
from deploytui.demo.kube.store import Store
from deploytui.demo.kube.util import ApiError, clone

__all__ = ["DeploymentView", "KubeSim"]


@dataclass(frozen=True)
class DeploymentView:
    """A snapshot of one deployment as an operator would summarise it."""

    namespace: str
    name: str
    revision: int
    generation: int
    observed_generation: int
    desired: int
    updated: int
    ready: int
    available: int
    unavailable: int
    images: tuple[tuple[str, int], ...]  # images of ready pods, with how many ready pods run each
    template_images: tuple[str, ...]
    paused: bool
    complete: bool
    progressing: bool
    deadline_exceeded: bool
    replica_sets: tuple[tuple[str, int, int], ...] = field(default=())  # (name, revision, spec replicas)
    taken_at: float = 0.0


class KubeSim:
    """A Kubernetes API on 127.0.0.1 that the official client and kubectl accept."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        controller_interval: float = 0.5,
        clock: Callable[[], float] = time.time,
        bookmark_interval: float = 5.0,
        history_limit: int = 20_000,
    ) -> None:
        self.host = host
        self.port = port
        self.clock = clock
        self.url = ""
        self.kubeconfig: Path | None = None  # the last file write_kubeconfig() wrote
        self.store = Store(clock, history_limit=history_limit)
        self.controller = DeploymentController(self.store, clock, controller_interval)
        self.api = Api(self.store, on_pod_created=self.controller.pods.track)
        self.server = KubeServer(self.store, self.api, clock, bookmark_interval, lambda: self.url)
        self._runner: web.AppRunner | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._cluster_ip = 0
        self.ensure_namespace("default")
        self.ensure_namespace("kube-system")

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Start listening and the controller loop (call inside the loop that will run them)."""
        self._loop = asyncio.get_running_loop()
        self._runner = web.AppRunner(self.server.app, access_log=None, shutdown_timeout=1.0, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        sockets = site._server.sockets if site._server is not None else []  # type: ignore[union-attr]
        self.port = int(sockets[0].getsockname()[1])
        self.url = f"http://{self.host}:{self.port}"
        self._task = asyncio.create_task(self.controller.run(), name="kubesim:controller")

    async def stop(self) -> None:
        """Close watches, listeners and the controller; leaves no task behind."""
        self.store.drop_watches()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def write_kubeconfig(self, path: Path, context: str = "deploytui-demo", namespace: str = "default") -> Path:
        """Write a kubeconfig for this server (plain http, a dummy token user) and return its path."""
        if not self.url:
            raise RuntimeError("KubeSim.write_kubeconfig: start() the simulator first")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": context, "cluster": {"server": self.url}}],
            "users": [{"name": f"{context}-user", "user": {"token": "deploytui-demo-token"}}],
            "contexts": [{"name": context, "context": {"cluster": context, "user": f"{context}-user", "namespace": namespace}}],
            "current-context": context,
            "preferences": {},
        }
        path.write_text(json.dumps(config, indent=2) + "\n")
        path.chmod(0o600)
        self.kubeconfig = path
        return path

    # --- building the world -------------------------------------------------------------------

    def ensure_namespace(self, name: str) -> None:
        with self.store.lock:
            if self.store.get("namespaces", None, name) is None:
                self.store.create("namespaces", "namespaces", new_namespace(name))

    def add_deployment(
        self,
        namespace: str,
        name: str,
        *,
        image: str,
        replicas: int = 3,
        labels: Mapping[str, str] | None = None,
        container: str = "app",
        change_cause: str | None = None,
        progress_deadline_seconds: int = 600,
        max_surge: int | str = "25%",
        max_unavailable: int | str = "25%",
        revision_history_limit: int = 10,
        settled: bool = True,
    ) -> dict[str, Any]:
        """Create a deployment; ``settled`` also creates revision 1's ReplicaSet with ready pods."""
        pod_labels = dict(labels or {"app": name})
        annotations = {CHANGE_CAUSE: change_cause} if change_cause else {}
        deployment = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace, "labels": dict(pod_labels), "annotations": annotations},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": dict(pod_labels)},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": max_surge, "maxUnavailable": max_unavailable}},
                "revisionHistoryLimit": revision_history_limit,
                "progressDeadlineSeconds": progress_deadline_seconds,
                "template": {
                    "metadata": {"labels": dict(pod_labels)},
                    "spec": {"containers": [{"name": container, "image": image}]},
                },
            },
        }
        default_deployment(deployment)
        with self.store.lock:
            self.ensure_namespace(namespace)
            stored = self.store.create("deployments", "deployments.apps", deployment)
            if settled:
                stored = self._settle(stored)
            return clone(stored)

    def _settle(self, d: dict[str, Any]) -> dict[str, Any]:
        replicas = int(d["spec"]["replicas"])
        rs = new_replica_set(d, template_hash(d["spec"]["template"]), replicas, 1)
        rs["status"] = {"replicas": 0}
        rs = self.store.create("replicasets", "replicasets.apps", rs)
        for _ in range(replicas):
            self.controller.pods.create_pod(rs, settled=True)
        rs = self.controller.pods.sync_replica_set(rs, record=False)
        self.controller.sync_deployment(d)
        current = self.store.get("deployments", d["metadata"]["namespace"], d["metadata"]["name"]) or d
        # A settled deployment has finished rolling out long ago: its Progressing condition says so.
        self.controller.sync_deployment(current)
        return self.store.get("deployments", d["metadata"]["namespace"], d["metadata"]["name"]) or current

    def add_service(
        self, namespace: str, name: str, *, ports: list[dict[str, Any]], type: str = "ClusterIP",
        selector: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        with self.store.lock:
            self.ensure_namespace(namespace)
            self._cluster_ip += 1
            ip = f"10.96.{self._cluster_ip // 250}.{self._cluster_ip % 250 + 1}"
            service = new_service(namespace, name, ports, type, selector if selector is not None else {"app": name}, ip)
            return clone(self.store.create("services", "services", service))

    def set_image(self, namespace: str, name: str, image: str, *, container: str | None = None, change_cause: str | None = None) -> None:
        """Like ``kubectl set image`` (plus the change-cause annotation when given)."""
        with self.store.lock:
            d = self.store.get("deployments", namespace, name)
            if d is None:
                raise ApiError.not_found("deployments.apps", name)
            new = clone(d)
            containers = new["spec"]["template"]["spec"]["containers"]
            target = next((c for c in containers if container is None or c["name"] == container), None)
            if target is None:
                raise ApiError.invalid("Deployment", name, f"no container named {container!r}")
            target["image"] = image
            if change_cause is not None:
                new["metadata"].setdefault("annotations", {})[CHANGE_CAUSE] = change_cause
            self.api.update(by_kind("deployments"), namespace, name, new)

    def set_image_behavior(self, image: str, *, crashloop: bool = False, ready_seconds: float = 1.0, restart_seconds: float = 2.0) -> None:
        """How pods running ``image`` behave: time to Ready, or a crash loop (never Ready,
        restartCount growing every ``restart_seconds``, waiting reason CrashLoopBackOff)."""
        self.controller.pods.behaviors[image] = ImageBehavior(crashloop, ready_seconds, restart_seconds)
        self.controller.pods.behaviors_changed()

    def set_default_ready_seconds(self, seconds: float) -> None:
        """Time to Ready of images without a behaviour of their own."""
        self.controller.pods.default = ImageBehavior(False, seconds)
        self.controller.pods.behaviors_changed()

    # --- reading the world --------------------------------------------------------------------

    def get_object(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        r = by_kind(kind)
        obj = self.store.get(r.plural, namespace if r.namespaced else None, name)
        return clone(obj) if obj is not None else None

    def list_objects(self, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        r = by_kind(kind)
        items = self.store.list(r.plural, namespace if r.namespaced else None)
        return clone(sorted(items, key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"])))

    def deployment_view(self, namespace: str, name: str) -> DeploymentView:
        with self.store.lock:
            d = self.store.get("deployments", namespace, name)
            if d is None:
                raise ApiError.not_found("deployments.apps", name)
            uid = d["metadata"]["uid"]
            replica_sets = self.store.owned(uid, "replicasets")
            pods = [p for rs in replica_sets for p in self.store.owned(rs["metadata"]["uid"], "pods")]
        status = d.get("status") or {}
        images: Counter[str] = Counter()
        for pod in pods:
            if is_pod_ready(pod):
                for c in pod["spec"]["containers"]:
                    images[c.get("image", "")] += 1
        conditions = {c["type"]: c for c in status.get("conditions") or []}
        progressing = conditions.get("Progressing", {})
        desired = int(d["spec"].get("replicas", 1))
        observed = int(status.get("observedGeneration") or 0)
        generation = int(d["metadata"].get("generation", 1))
        complete = (
            observed >= generation
            and int(status.get("updatedReplicas") or 0) == desired
            and int(status.get("replicas") or 0) == desired
            and int(status.get("availableReplicas") or 0) == desired
        )
        return DeploymentView(
            namespace=namespace,
            name=name,
            revision=revision_of(d),
            generation=generation,
            observed_generation=observed,
            desired=desired,
            updated=int(status.get("updatedReplicas") or 0),
            ready=int(status.get("readyReplicas") or 0),
            available=int(status.get("availableReplicas") or 0),
            unavailable=int(status.get("unavailableReplicas") or 0),
            images=tuple(sorted(images.items())),
            template_images=tuple(c.get("image", "") for c in d["spec"]["template"]["spec"]["containers"]),
            paused=bool(d["spec"].get("paused")),
            complete=complete,
            progressing=not complete and progressing.get("reason") != "ProgressDeadlineExceeded",
            deadline_exceeded=progressing.get("reason") == "ProgressDeadlineExceeded",
            replica_sets=tuple(
                sorted(((rs["metadata"]["name"], revision_of(rs), int(rs["spec"].get("replicas", 1))) for rs in replica_sets), key=lambda t: t[1])
            ),
            taken_at=self.clock(),
        )

    def call(self, fn: Callable[..., Any], *args: Any, timeout: float = 30.0) -> Any:
        """Run ``fn(*args)`` on the simulator's loop from another thread (awaited if it returns
        an awaitable) and return its result."""
        if self._loop is None or self._loop.is_closed():
            raise RuntimeError("KubeSim.call: the simulator is not running")

        async def runner() -> Any:
            result = fn(*args)
            if inspect.isawaitable(result):
                result = await result
            return result

        return asyncio.run_coroutine_threadsafe(runner(), self._loop).result(timeout)

    # --- fault injection ----------------------------------------------------------------------

    def inject_fault(self, method: str, path_regex: str, *, status: int | None = None, delay: float = 0.0, times: int = 1) -> None:
        """Make the next ``times`` requests with ``method`` ("*" for any) whose path and query
        match ``path_regex`` (``re.search``) wait ``delay`` seconds, then fail with ``status``."""
        self.server.inject_fault(Fault(method.upper(), re.compile(path_regex), status, delay, times))

    def set_permission(self, verb: str, resource: str, *, allowed: bool, namespace: str | None = None) -> None:
        """Allow or deny ``verb`` (get, list, watch, create, update, patch, delete or "*") on
        ``resource`` ("deployments", "deployments/scale", "*"), in one namespace or all. Denied
        requests get 403 Forbidden as from RBAC, and ``kubectl auth can-i`` says "no"."""
        self.server.access.set(verb, resource, allowed=allowed, namespace=namespace)

    def drop_watches(self) -> None:
        """End every open watch stream; clients must reconnect."""
        self.store.drop_watches()

    def compact_history(self) -> None:
        """Forget the watch history, so resuming from an older resourceVersion gets 410 Gone."""
        self.store.compact()
