"""Pods and ReplicaSets: pod start-up, readiness and crash loops per image; the ReplicaSet
controller that keeps the number of pods at ``spec.replicas``."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from deploytui.demo.kube.objects import new_pod
from deploytui.demo.kube.recorder import EventRecorder
from deploytui.demo.kube.store import Store
from deploytui.demo.kube.util import fnv32a, timestamp

__all__ = ["ImageBehavior", "PodLifecycle", "is_pod_ready"]


@dataclass(frozen=True)
class ImageBehavior:
    """How pods of an image behave: seconds until Ready, or a crash loop restarting every
    ``restart_seconds``."""

    crashloop: bool = False
    ready_seconds: float = 1.0
    restart_seconds: float = 2.0


@dataclass
class _PodSim:
    created: float
    restarts: dict[str, int] = field(default_factory=dict)


def is_pod_ready(pod: Mapping[str, Any]) -> bool:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond.get("status") == "True"
    return False


def _controller_uid(obj: Mapping[str, Any]) -> str | None:
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            return ref.get("uid")
    return None


class PodLifecycle:
    """Drives pod status from image behaviours, and runs the ReplicaSet controller."""

    def __init__(self, store: Store, clock: Callable[[], float], recorder: EventRecorder) -> None:
        self.store = store
        self.clock = clock
        self.recorder = recorder
        self.behaviors: dict[str, ImageBehavior] = {}
        self.default = ImageBehavior()
        self._sims: dict[str, _PodSim] = {}
        self._settled: set[str] = set()  # pods Ready for good: nothing left to simulate
        self._ip = 0

    def behavior(self, image: str) -> ImageBehavior:
        return self.behaviors.get(image, self.default)

    def _next_ip(self) -> str:
        self._ip += 1
        n = self._ip
        return f"10.244.{(n // 250) % 250}.{n % 250 + 2}"

    def track(self, pod: Mapping[str, Any], created: float | None = None) -> None:
        """Start simulating a pod (created through the API or by the ReplicaSet controller)."""
        self._sims.setdefault(pod["metadata"]["uid"], _PodSim(self.clock() if created is None else created))

    # --- pod status ---------------------------------------------------------------------------

    def pod_status(self, pod: Mapping[str, Any], sim: _PodSim, now: float) -> dict[str, Any]:
        """The status a pod has at ``now``."""
        status = dict(pod.get("status") or {})
        statuses, all_ready, any_started = [], True, False
        for container in pod["spec"].get("containers") or []:
            name, image = container["name"], container.get("image", "")
            b = self.behavior(image)
            up_at = sim.created + b.ready_seconds
            entry: dict[str, Any] = {
                "name": name,
                "image": image,
                "imageID": "",
                "ready": False,
                "started": False,
                "restartCount": sim.restarts.get(name, 0),
            }
            if now < up_at:
                entry["state"] = {"waiting": {"reason": "ContainerCreating"}}
                all_ready = False
            elif b.crashloop:
                crashes = 1 + math.floor((now - up_at) / max(b.restart_seconds, 0.01))
                restarts = max(sim.restarts.get(name, 0), crashes)
                sim.restarts[name] = restarts
                last_start = up_at + (crashes - 1) * b.restart_seconds
                entry.update(restartCount=restarts, imageID=self._image_id(image))
                backoff = min(300, 10 * 2 ** min(restarts - 1, 5))
                entry["state"] = {
                    "waiting": {
                        "reason": "CrashLoopBackOff",
                        "message": f"back-off {backoff}s restarting failed container={name} pod={pod['metadata']['name']}_{pod['metadata']['namespace']}({pod['metadata']['uid']})",
                    }
                }
                entry["lastState"] = {
                    "terminated": {
                        "exitCode": 1,
                        "reason": "Error",
                        "startedAt": timestamp(last_start),
                        "finishedAt": timestamp(last_start),
                        "containerID": f"containerd://{fnv32a(f'{name}{restarts}'.encode()):08x}",
                    }
                }
                all_ready = False
                any_started = True
            else:
                entry.update(ready=True, started=True, imageID=self._image_id(image))
                entry["state"] = {"running": {"startedAt": timestamp(up_at)}}
                any_started = True
            statuses.append(entry)
        status["containerStatuses"] = statuses
        status["phase"] = "Running" if any_started else "Pending"
        created = timestamp(sim.created)
        not_ready = [s["name"] for s in statuses if not s["ready"]]
        ready_cond: dict[str, Any] = {"type": "Ready", "status": "True" if all_ready else "False"}
        if not all_ready:
            ready_cond.update(reason="ContainersNotReady", message=f"containers with unready status: [{' '.join(not_ready)}]")
        old_conditions = {c["type"]: c for c in status.get("conditions") or []}
        conditions = [
            {"type": "PodReadyToStartContainers", "status": "True" if any_started or all_ready else "False"},
            {"type": "Initialized", "status": "True"},
            dict(ready_cond, type="Ready"),
            dict(ready_cond, type="ContainersReady"),
            {"type": "PodScheduled", "status": "True"},
        ]
        for cond in conditions:
            old = old_conditions.get(cond["type"])
            changed = old is None or old.get("status") != cond["status"]
            cond["lastProbeTime"] = None
            cond["lastTransitionTime"] = timestamp(now) if changed and old is not None else (old or {}).get("lastTransitionTime", created)
        status["conditions"] = conditions
        return status

    @staticmethod
    def _image_id(image: str) -> str:
        return f"{image.split(':')[0]}@sha256:{fnv32a(image.encode()):08x}{'0' * 56}"

    def sync_pods(self) -> None:
        """Move every simulated pod to the state it has now (writes only on change)."""
        now = self.clock()
        settled = self._settled
        pods = self.store.list("pods")
        for pod in pods:
            uid = pod["metadata"]["uid"]
            if uid in settled:
                continue
            sim = self._sims.get(uid)
            if sim is None:
                sim = self._sims[uid] = _PodSim(now)
            if is_pod_ready(pod) and not self._crashing(pod):
                if all(now >= sim.created + self.behavior(c.get("image", "")).ready_seconds for c in pod["spec"]["containers"]):
                    settled.add(uid)
                    continue
            status = self.pod_status(pod, sim, now)
            if status != pod.get("status"):
                restarted = [
                    s for s, o in zip(status["containerStatuses"], (pod.get("status") or {}).get("containerStatuses") or [], strict=False)
                    if s["restartCount"] > o.get("restartCount", 0)
                ]
                with self.store.lock:
                    current = self.store.get("pods", pod["metadata"]["namespace"], pod["metadata"]["name"])
                    if current is None or current["metadata"]["uid"] != uid:
                        continue
                    self.store.replace("pods", "pods", {**current, "status": status})
                for s in restarted:
                    self.recorder.record(
                        pod, "Warning", "BackOff",
                        f"Back-off restarting failed container {s['name']} in pod {pod['metadata']['name']}_{pod['metadata']['namespace']}({uid})",
                        "kubelet",
                    )
        if len(self._sims) > len(pods) + 100 or len(settled) > len(pods) + 100:
            with self.store.lock:  # create_pod() may run on another thread (KubeSim.add_deployment)
                live = {p["metadata"]["uid"] for p in self.store.list("pods")}
                for uid in [u for u in list(self._sims) if u not in live]:
                    self._sims.pop(uid, None)
                settled &= live

    def behaviors_changed(self) -> None:
        """Image behaviours changed: look at every pod again."""
        self._settled.clear()

    def _crashing(self, pod: Mapping[str, Any]) -> bool:
        return any(self.behavior(c.get("image", "")).crashloop for c in pod["spec"].get("containers") or [])

    # --- ReplicaSet controller ----------------------------------------------------------------

    def create_pod(self, rs: Mapping[str, Any], *, settled: bool = False) -> dict[str, Any]:
        now = self.clock()
        pod = new_pod(rs, now, self._next_ip())
        for _ in range(5):
            if self.store.get("pods", pod["metadata"]["namespace"], pod["metadata"]["name"]) is None:
                break
            pod = new_pod(rs, now, pod["status"]["podIP"])
        created = now
        if settled:
            created -= max((self.behavior(c.get("image", "")).ready_seconds for c in pod["spec"]["containers"]), default=0) + 0.001
        sim = _PodSim(created)
        pod["status"] = self.pod_status({**pod, "metadata": {**pod["metadata"], "uid": ""}}, sim, now)
        stored = self.store.create("pods", "pods", pod)
        self._sims[stored["metadata"]["uid"]] = sim
        return stored

    def sync_replica_set(self, rs: Mapping[str, Any], *, record: bool = True) -> dict[str, Any]:
        """Create or delete pods to match ``spec.replicas``; update the status. Returns the RS."""
        uid = rs["metadata"]["uid"]
        pods = [p for p in self.store.owned(uid, "pods") if _controller_uid(p) == uid]
        want = int(rs["spec"].get("replicas", 1))
        if len(pods) < want:
            for _ in range(want - len(pods)):
                pod = self.create_pod(rs)
                pods.append(pod)
                if record:
                    self.recorder.record(rs, "Normal", "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}", "replicaset-controller")
        elif len(pods) > want:
            # Delete not-ready pods first, then the newest ones, as the ReplicaSet controller does.
            pods.sort(key=lambda p: (is_pod_ready(p), -int(p["metadata"]["resourceVersion"])))
            for pod in pods[: len(pods) - want]:
                meta = pod["metadata"]
                if self.store.get("pods", meta["namespace"], meta["name"]) is not None:
                    self.store.delete("pods", "pods", meta["namespace"], meta["name"])
                if record:
                    self.recorder.record(rs, "Normal", "SuccessfulDelete", f"Deleted pod: {meta['name']}", "replicaset-controller")
            pods = pods[len(pods) - want :]
        ready = sum(1 for p in pods if is_pod_ready(p))
        status: dict[str, Any] = {"replicas": len(pods)}
        if pods:
            status["fullyLabeledReplicas"] = len(pods)
        if ready:
            status["readyReplicas"] = ready
            status["availableReplicas"] = ready
        status["observedGeneration"] = rs["metadata"].get("generation", 1)
        if status != rs.get("status"):
            with self.store.lock:
                current = self.store.get("replicasets", rs["metadata"]["namespace"], rs["metadata"]["name"])
                if current is not None and current["metadata"]["uid"] == uid:
                    return self.store.replace("replicasets", "replicasets.apps", {**current, "status": status})
        return dict(rs)
