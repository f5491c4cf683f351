"""The Deployment controller: rolling updates, revisions, rollbacks, status and conditions,
modelled on kube-controller-manager's ``pkg/controller/deployment``."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from deploytui.demo.kube.conditions import (
    complete,
    deadline_pending,
    find_condition,
    is_rolling,
    max_surge,
    max_unavailable,
    set_condition,
    sync_status,
)
from deploytui.demo.kube.objects import (
    DESIRED_REPLICAS,
    HASH_LABEL,
    MAX_REPLICAS,
    REVISION,
    REVISION_HISTORY,
    new_replica_set,
    template_hash,
)
from deploytui.demo.kube.pods import PodLifecycle
from deploytui.demo.kube.recorder import EventRecorder
from deploytui.demo.kube.store import Store

__all__ = ["DeploymentController", "revision_of"]

log = logging.getLogger(__name__)
Obj = dict[str, Any]


def revision_of(obj: Mapping[str, Any]) -> int:
    try:
        return int((obj["metadata"].get("annotations") or {}).get(REVISION, "0"))
    except ValueError:
        return 0


def _strip_hash(template: Mapping[str, Any]) -> Any:
    t = json.loads(json.dumps(template))
    labels = (t.get("metadata") or {}).get("labels")
    if labels is not None:
        labels.pop(HASH_LABEL, None)
        if not labels:
            t["metadata"].pop("labels")
    return t


def _spec_replicas(rs: Mapping[str, Any]) -> int:
    return int(rs["spec"].get("replicas", 1))


def _st(obj: Mapping[str, Any], key: str) -> int:
    return int((obj.get("status") or {}).get(key) or 0)


class DeploymentController:
    """Runs the Deployment and ReplicaSet controllers and the pod simulation on a timer."""

    def __init__(self, store: Store, clock: Callable[[], float], interval: float = 0.5) -> None:
        self.store = store
        self.clock = clock
        self.interval = interval
        self.recorder = EventRecorder(store, clock)
        self.pods = PodLifecycle(store, clock, self.recorder)
        self.ticks = 0
        # Fingerprints (own resourceVersion, owner_version) of the last sync: unchanged objects
        # are skipped, which keeps a pass over a settled fleet of thousands cheap.
        self._rs_seen: dict[str, tuple[str, int]] = {}
        self._deployment_seen: dict[str, tuple[str, int]] = {}
        self._gc_seen: tuple[int, ...] = ()

    async def run(self) -> None:
        while True:
            try:
                self.tick()
            except Exception:  # one bad object must not stop the simulated cluster
                log.exception("simulated deployment controller tick failed")
            await asyncio.sleep(self.interval)

    def tick(self) -> None:
        self.ticks += 1
        self.pods.sync_pods()
        self._garbage_collect()
        for rs in self.store.list("replicasets"):
            with self.store.lock:
                uid = rs["metadata"]["uid"]
                if self._rs_seen.get(uid) == (rs["metadata"]["resourceVersion"], self.store.owner_version(uid)):
                    continue
                self._sync_rs(rs)
        for d in self.store.list("deployments"):
            with self.store.lock:
                current = self.store.get("deployments", d["metadata"]["namespace"], d["metadata"]["name"])
                if current is None:
                    continue
                uid = current["metadata"]["uid"]
                fingerprint = (current["metadata"]["resourceVersion"], self.store.owner_version(uid))
                if self._deployment_seen.get(uid) == fingerprint and not deadline_pending(current):
                    continue
                for rs in self.sync_deployment(current):
                    self._sync_rs(rs)
                # The fingerprint from before the sync: if the sync wrote anything, the next pass
                # looks again (as the real controller is re-queued by its own writes).
                self._deployment_seen[uid] = fingerprint
        if self.ticks % 50 == 0:
            self._forget_deleted()

    def _sync_rs(self, rs: Obj) -> None:
        uid = rs["metadata"]["uid"]
        updated = self.pods.sync_replica_set(rs)
        self._rs_seen[uid] = (updated["metadata"]["resourceVersion"], self.store.owner_version(uid))

    def _forget_deleted(self) -> None:
        for seen, plural in ((self._rs_seen, "replicasets"), (self._deployment_seen, "deployments")):
            live = {o["metadata"]["uid"] for o in self.store.list(plural)}
            for uid in [u for u in seen if u not in live]:
                del seen[uid]

    def _garbage_collect(self) -> None:
        """Delete ReplicaSets and pods whose controlling owner is gone (background cascading)."""
        with self.store.lock:
            key = (
                self.store.deleted_at("deployments"), self.store.deleted_at("replicasets"),
                self.store.count("replicasets"), self.store.count("pods"),
            )
        if key == self._gc_seen:
            return  # no owner deleted and no object created since the last collection
        for plural, owners, qualified in (("replicasets", "deployments", "replicasets.apps"), ("pods", "replicasets", "pods")):
            with self.store.lock:
                alive = {o["metadata"]["uid"] for o in self.store.list(owners)}
                for obj in self.store.list(plural):
                    refs = [r for r in obj["metadata"].get("ownerReferences") or [] if r.get("controller")]
                    if refs and refs[0].get("uid") not in alive:
                        self.store.delete(plural, qualified, obj["metadata"]["namespace"], obj["metadata"]["name"])
        with self.store.lock:
            self._gc_seen = (
                self.store.deleted_at("deployments"), self.store.deleted_at("replicasets"),
                self.store.count("replicasets"), self.store.count("pods"),
            )

    # --- helpers ------------------------------------------------------------------------------

    def _scale(self, d: Obj, rs: Obj, replicas: int, *, record: bool = True) -> Obj:
        old = _spec_replicas(rs)
        annotations = dict(rs["metadata"].get("annotations") or {})
        annotations[DESIRED_REPLICAS] = str(d["spec"].get("replicas", 1))
        annotations[MAX_REPLICAS] = str(int(d["spec"].get("replicas", 1)) + max_surge(d))
        if old == replicas and annotations == rs["metadata"].get("annotations"):
            return rs
        updated = {**rs, "metadata": {**rs["metadata"], "annotations": annotations}, "spec": {**rs["spec"], "replicas": replicas}}
        if old != replicas:
            updated["metadata"]["generation"] = int(rs["metadata"].get("generation", 1)) + 1
        stored = self.store.replace("replicasets", "replicasets.apps", updated)
        if record and old != replicas:
            direction = "up" if replicas > old else "down"
            self.recorder.record(
                d, "Normal", "ScalingReplicaSet", f"Scaled {direction} replica set {rs['metadata']['name']} to {replicas}",
                "deployment-controller",
            )
        return stored

    def _new_rs_replicas(self, d: Obj, all_rs: list[Obj], new_rs: Obj | None) -> int:
        replicas = int(d["spec"].get("replicas", 1))
        if not is_rolling(d):
            return replicas
        current = sum(_spec_replicas(rs) for rs in all_rs)
        new_count = _spec_replicas(new_rs) if new_rs else 0
        total = replicas + max_surge(d)
        if current >= total:
            return new_count
        return new_count + min(total - current, replicas - new_count)

    # --- the sync -----------------------------------------------------------------------------

    def sync_deployment(self, d: Obj) -> list[Obj]:
        """One reconcile of a deployment; returns the ReplicaSets whose spec it changed."""
        if d["metadata"].get("deletionTimestamp"):
            return []
        uid = d["metadata"]["uid"]
        now = self.clock()
        owned = [
            rs for rs in self.store.owned(uid, "replicasets")
            if any(r.get("controller") and r.get("uid") == uid for r in rs["metadata"].get("ownerReferences") or [])
        ]
        owned.sort(key=lambda rs: (rs["metadata"]["creationTimestamp"], int(rs["metadata"]["resourceVersion"])))
        template = _strip_hash(d["spec"]["template"])
        new_rs = next((rs for rs in owned if _strip_hash(rs["spec"]["template"]) == template), None)
        old_rss = [rs for rs in owned if rs is not new_rs]
        status = json.loads(json.dumps(d.get("status") or {}))
        conditions: list[Obj] = status.get("conditions") or []
        paused = bool(d["spec"].get("paused"))
        has_deadline = d["spec"].get("progressDeadlineSeconds") is not None
        changed: list[Obj] = []
        annotations = dict(d["metadata"].get("annotations") or {})
        max_old = max((revision_of(rs) for rs in old_rss), default=0)

        if new_rs is not None:
            new_rs = self._adopt_revision(d, new_rs, max_old + 1)
            if has_deadline and find_condition(conditions, "Progressing") is None:
                set_condition(conditions, "Progressing", "True", "FoundNewReplicaSet", f'Found new replica set "{new_rs["metadata"]["name"]}"', now)
        elif not paused and (is_rolling(d) or not any(_st(rs, "replicas") or _spec_replicas(rs) for rs in old_rss)):
            new_rs = self._create_rs(d, owned, max_old + 1)
            changed.append(new_rs)
            if has_deadline:
                set_condition(conditions, "Progressing", "True", "NewReplicaSetCreated", f'Created new replica set "{new_rs["metadata"]["name"]}"', now)
        if new_rs is not None:
            annotations[REVISION] = new_rs["metadata"]["annotations"][REVISION]
        all_rs = [*old_rss, new_rs] if new_rs is not None else list(old_rss)

        if paused:
            active = [rs for rs in all_rs if _spec_replicas(rs) > 0]
            target = new_rs if new_rs is not None and len(active) <= 1 else (active[0] if len(active) == 1 else None)
            if target is not None and _spec_replicas(target) != d["spec"].get("replicas", 1):
                changed.append(self._replace_in(all_rs, self._scale(d, target, int(d["spec"].get("replicas", 1)))))
        elif not is_rolling(d):
            changed += self._recreate(d, old_rss, new_rs, all_rs)
        else:
            changed += self._rolling(d, old_rss, new_rs, all_rs)
        all_rs = [self.store.get("replicasets", rs["metadata"]["namespace"], rs["metadata"]["name"]) or rs for rs in all_rs]
        if new_rs is not None:
            new_rs = all_rs[-1]
            if not changed and complete(d, d.get("status") or {}):
                self._cleanup(d, all_rs[:-1])

        sync_status(d, status, conditions, all_rs, new_rs, paused, has_deadline, now)
        if status != (d.get("status") or {}) or annotations != (d["metadata"].get("annotations") or {}):
            meta = {**d["metadata"], "annotations": annotations}
            self.store.replace("deployments", "deployments.apps", {**d, "metadata": meta, "status": status})
        return changed

    @staticmethod
    def _replace_in(all_rs: list[Obj], rs: Obj) -> Obj:
        for n, existing in enumerate(all_rs):
            if existing["metadata"]["uid"] == rs["metadata"]["uid"]:
                all_rs[n] = rs
        return rs

    def _adopt_revision(self, d: Obj, rs: Obj, new_revision: int) -> Obj:
        """``SetNewReplicaSetAnnotations``: bump a re-adopted ReplicaSet to max+1, remember its
        old revision, copy the deployment's annotations (change-cause)."""
        annotations = dict(rs["metadata"].get("annotations") or {})
        before = dict(annotations)
        for key, value in (d["metadata"].get("annotations") or {}).items():
            if key.startswith("kubectl.kubernetes.io/last-applied") or key in (REVISION, REVISION_HISTORY, DESIRED_REPLICAS, MAX_REPLICAS):
                continue
            annotations[key] = value
        old = annotations.get(REVISION, "")
        if (int(old) if old.isdigit() else 0) < new_revision:
            annotations[REVISION] = str(new_revision)
            if old:
                history = [h for h in annotations.get(REVISION_HISTORY, "").split(",") if h]
                annotations[REVISION_HISTORY] = ",".join([*history, old])
        if annotations == before:
            return rs
        return self.store.replace("replicasets", "replicasets.apps", {**rs, "metadata": {**rs["metadata"], "annotations": annotations}})

    def _create_rs(self, d: Obj, owned: list[Obj], revision: int) -> Obj:
        template = _strip_hash(d["spec"]["template"])
        collisions = int((d.get("status") or {}).get("collisionCount") or 0)
        pod_hash = template_hash(template, collisions)
        while self.store.get("replicasets", d["metadata"]["namespace"], f"{d['metadata']['name']}-{pod_hash}") is not None:
            collisions += 1
            pod_hash = template_hash(template, collisions)
        replicas = self._new_rs_replicas(d, owned, None)
        rs = new_replica_set(d, pod_hash, replicas, revision)
        rs["metadata"]["annotations"][DESIRED_REPLICAS] = str(d["spec"].get("replicas", 1))
        rs["metadata"]["annotations"][MAX_REPLICAS] = str(int(d["spec"].get("replicas", 1)) + max_surge(d))
        stored = self.store.create("replicasets", "replicasets.apps", rs)
        if replicas > 0:
            self.recorder.record(
                d, "Normal", "ScalingReplicaSet", f"Scaled up replica set {rs['metadata']['name']} to {replicas}",
                "deployment-controller",
            )
        return stored

    def _rolling(self, d: Obj, old_rss: list[Obj], new_rs: Obj | None, all_rs: list[Obj]) -> list[Obj]:
        replicas = int(d["spec"].get("replicas", 1))
        if new_rs is not None:
            current = _spec_replicas(new_rs)
            if current > replicas:
                return [self._replace_in(all_rs, self._scale(d, new_rs, replicas))]
            if current < replicas:
                target = self._new_rs_replicas(d, all_rs, new_rs)
                if target != current:
                    return [self._replace_in(all_rs, self._scale(d, new_rs, target))]
        old = [rs for rs in all_rs if new_rs is None or rs["metadata"]["uid"] != new_rs["metadata"]["uid"]]
        return self._reconcile_old(d, old, new_rs, all_rs)

    def _reconcile_old(self, d: Obj, old_rss: list[Obj], new_rs: Obj | None, all_rs: list[Obj]) -> list[Obj]:
        if sum(_spec_replicas(rs) for rs in old_rss) == 0:
            return []
        replicas = int(d["spec"].get("replicas", 1))
        min_available = replicas - max_unavailable(d)
        all_pods = sum(_spec_replicas(rs) for rs in all_rs)
        new_unavailable = (_spec_replicas(new_rs) - _st(new_rs, "availableReplicas")) if new_rs else 0
        max_scaled_down = all_pods - min_available - new_unavailable
        if max_scaled_down <= 0:
            return []
        changed: list[Obj] = []
        # First remove old pods that are not available anyway (they do not count towards availability).
        cleaned = 0
        for rs in sorted(old_rss, key=lambda r: r["metadata"]["creationTimestamp"]):
            if cleaned >= max_scaled_down:
                break
            spec, available = _spec_replicas(rs), _st(rs, "availableReplicas")
            if spec == 0 or spec == available:
                continue
            count = min(max_scaled_down - cleaned, spec - available)
            cleaned += count
            changed.append(self._replace_in(all_rs, self._scale(d, rs, spec - count)))
        old_rss = [next(a for a in all_rs if a["metadata"]["uid"] == rs["metadata"]["uid"]) for rs in old_rss]
        # Then scale down available old pods while keeping minAvailable.
        available_total = sum(_st(rs, "availableReplicas") for rs in all_rs)
        if available_total > min_available:
            budget, done = available_total - min_available, 0
            for rs in sorted(old_rss, key=lambda r: r["metadata"]["creationTimestamp"]):
                if done >= budget:
                    break
                spec = _spec_replicas(rs)
                if spec == 0:
                    continue
                count = min(spec, budget - done)
                done += count
                changed.append(self._replace_in(all_rs, self._scale(d, rs, spec - count)))
        return changed

    def _recreate(self, d: Obj, old_rss: list[Obj], new_rs: Obj | None, all_rs: list[Obj]) -> list[Obj]:
        active = [rs for rs in old_rss if _spec_replicas(rs) > 0]
        if active:
            return [self._replace_in(all_rs, self._scale(d, rs, 0)) for rs in active]
        if any(_st(rs, "replicas") for rs in old_rss) or new_rs is None:
            return []
        replicas = int(d["spec"].get("replicas", 1))
        if _spec_replicas(new_rs) != replicas:
            return [self._replace_in(all_rs, self._scale(d, new_rs, replicas))]
        return []

    def _cleanup(self, d: Obj, old_rss: list[Obj]) -> None:
        limit = d["spec"].get("revisionHistoryLimit")
        if limit is None or len(old_rss) <= limit:
            return
        for rs in sorted(old_rss, key=revision_of)[: len(old_rss) - int(limit)]:
            if _st(rs, "replicas") or _spec_replicas(rs):
                continue
            meta = rs["metadata"]
            if self.store.get("replicasets", meta["namespace"], meta["name"]) is not None:
                self.store.delete("replicasets", "replicasets.apps", meta["namespace"], meta["name"])
