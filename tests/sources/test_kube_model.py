"""The rollout model's rules on API-shaped objects: kubectl's rollout-status order, paused,
stall timing, scale vs rollout, ETA text, service mapping."""

from __future__ import annotations

from typing import Any

from deploytui.config import KubernetesSettings, ServiceSettings, Settings
from deploytui.model import MemoryJournal
from deploytui.sources.rollout_model import (
    Eta,
    RolloutModel,
    ServiceIndex,
    deployment_info,
    replica_set_info,
    rollout_status,
)

T0 = 1_800_000_000.0


def dep(*, generation: int = 2, observed: int = 2, replicas: int = 4, status_replicas: int = 4,
        updated: int = 4, ready: int = 4, available: int = 4, revision: int = 2,
        paused: bool = False, reason: str = "NewReplicaSetAvailable",
        image: str = "app:1.4.2") -> dict[str, Any]:
    return {
        "metadata": {"namespace": "shop", "name": "web", "uid": "u-web", "generation": generation,
                     "labels": {"app": "web"}, "resourceVersion": "7",
                     "annotations": {"deployment.kubernetes.io/revision": str(revision)},
                     "creationTimestamp": "2027-01-15T08:00:00Z"},
        "spec": {"replicas": replicas, "paused": paused,
                 "template": {"spec": {"containers": [{"name": "app", "image": image}]}}},
        "status": {"observedGeneration": observed, "replicas": status_replicas,
                   "updatedReplicas": updated, "readyReplicas": ready,
                   "availableReplicas": available,
                   "conditions": [{"type": "Progressing", "status": "True", "reason": reason,
                                   "message": "ReplicaSet web-abc has timed out progressing."}]},
    }


def test_rollout_status_follows_kubectl_order() -> None:
    cases = [
        (dep(generation=3, observed=2, updated=0), "progressing",
         "waiting for the spec update to be observed"),
        (dep(reason="ProgressDeadlineExceeded", updated=1), "failed",
         "exceeded its progress deadline (ReplicaSet web-abc has timed out progressing.)"),
        (dep(updated=1), "progressing", "1 of 4 new replicas updated"),
        (dep(status_replicas=5), "progressing", "1 old replicas pending termination"),
        (dep(available=3), "progressing", "3 of 4 updated replicas available"),
        (dep(), "complete", "successfully rolled out"),
    ]
    for obj, state, message in cases:
        got_state, done, got_message = rollout_status(deployment_info(obj))
        assert (got_state, got_message) == (state, message)
        assert done == (state == "complete")


def settings(stall: float = 600.0) -> Settings:
    return Settings(
        kubernetes=KubernetesSettings(enabled=True, stall_after_seconds=stall),
        services=(ServiceSettings(name="web", env="prod", health_url="http://127.0.0.1:1/h"),))


def build(model: RolloutModel, obj: dict[str, Any], now: float) -> Any:
    model.apply("deployments", "MODIFIED", deployment_info(obj))
    return model.build(now).find("shop/web")


def test_paused_stalled_and_scale_without_rollout_events() -> None:
    journal = MemoryJournal()
    model = RolloutModel(settings(stall=60), journal)
    assert build(model, dep(), T0).phase == "complete"
    # a scale: progressing, never "rollout started"
    assert build(model, dep(generation=3, replicas=6, updated=4), T0 + 1).phase == "progressing"
    assert build(model, dep(generation=3, observed=3, replicas=6, updated=6, status_replicas=6, ready=6,
                            available=6), T0 + 5).phase == "complete"
    assert journal.events == []
    # a new revision: started, then no progress for 60 s is a stall
    r = build(model, dep(generation=4, observed=4, replicas=6, updated=1, revision=3,
                         status_replicas=7, ready=6, available=6), T0 + 10)
    assert r.phase == "progressing" and r.started_at == T0 + 10
    assert model.build(T0 + 69).find("shop/web").phase == "progressing"
    stalled = model.build(T0 + 71).find("shop/web")
    assert stalled.phase == "stalled" and stalled.message.startswith("no progress for 1m01s")
    # progress resets the stall clock
    assert build(model, dep(generation=4, observed=4, replicas=6, updated=2, revision=3,
                            status_replicas=7, ready=6, available=6),
                 T0 + 72).phase == "progressing"
    paused = build(model, dep(generation=4, observed=4, replicas=6, updated=2, revision=3,
                              status_replicas=7, ready=6, available=6, paused=True), T0 + 73)
    assert paused.phase == "paused" and paused.message.startswith("paused (")
    done = build(model, dep(generation=5, observed=5, replicas=6, updated=6, revision=3,
                            status_replicas=6, ready=6, available=6), T0 + 100)
    assert done.phase == "complete" and done.completed_at == T0 + 100
    assert [e.kind for e in journal.events] == ["rollout_started", "rollout_stalled",
                                                "rollout_completed"]
    assert journal.events[-1].details["seconds"] == 90.0
    assert all(e.env == "prod" for e in journal.events)
    assert model.durations.eta("shop/web") == Eta(90.0, 1)


def test_eta_text() -> None:
    eta = Eta(100.0, 3)
    assert eta.text(0) == "1m40s (1m20s-2m00s)"
    assert eta.text(90) == "10s (0s-30s)"
    assert eta.text(130) == "overdue (usually 1m40s)"


def test_revisions_only_of_controlled_replica_sets() -> None:
    model = RolloutModel(settings())

    def rs(name: str, owner: str, revision: int) -> dict[str, Any]:
        return {"metadata": {"namespace": "shop", "name": name, "uid": f"u-{name}",
                             "creationTimestamp": "2027-01-15T08:00:00Z",
                             "annotations": {"deployment.kubernetes.io/revision": str(revision)},
                             "ownerReferences": [{"kind": "Deployment", "name": "web",
                                                  "uid": owner, "controller": True}]},
                "spec": {"replicas": 1, "template": {"spec": {"containers": [
                    {"name": "app", "image": f"app:{revision}"}]}}}}

    for obj in (rs("web-a", "u-web", 1), rs("web-b", "u-web", 2), rs("web-x", "u-other", 9)):
        model.apply("replicasets", "ADDED", replica_set_info(obj))
    r = build(model, dep(), T0)
    assert [(v.revision, v.current, v.images) for v in r.revisions] == [
        (2, True, ("app:2",)), (1, False, ("app:1",))]


def test_service_index() -> None:
    index = ServiceIndex((
        ServiceSettings(name="checkout", env="prod", health_url="http://x/h",
                        deployment="shop/checkout-v2"),
        ServiceSettings(name="cart", env="staging", health_url="http://x/h"),
        ServiceSettings(name="cart", env="prod", health_url="http://x/h"),
    ))
    assert index.lookup("shop", "checkout-v2").key == "prod/checkout"
    assert index.lookup("shop", "checkout") is None            # configured elsewhere
    assert index.lookup("prod", "cart").key == "prod/cart"     # env named like the namespace
    assert index.lookup("staging", "whatever", {"app": "cart"}).key == "staging/cart"
    assert index.lookup("shop", "nothing", {"app.kubernetes.io/name": "nope"}) is None


def test_durations_persist_through_the_store(tmp_path: Any) -> None:
    import dataclasses

    from deploytui.config import StoreSettings
    from deploytui.store import open_store

    s = dataclasses.replace(settings(), store=StoreSettings(path=str(tmp_path / "d.db")))
    store = open_store(s)
    model = RolloutModel(s, store)
    build(model, dep(), T0)
    build(model, dep(generation=3, updated=1, revision=3, status_replicas=5), T0 + 1)
    build(model, dep(generation=3, observed=3, revision=3), T0 + 43)
    assert store.rollout_durations("shop/web") == [42.0]
    store.close()
    again = open_store(s)          # a new console: the ETA is there from the start
    fresh = RolloutModel(s, again)
    r = build(fresh, dep(generation=4, updated=1, revision=4, status_replicas=5), T0 + 100)
    assert r.phase == "progressing" and r.eta == Eta(42.0, 1)
    again.close()
