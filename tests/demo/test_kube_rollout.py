"""The simulated Deployment controller: rolling-update steps, crash loops, history limits."""

from __future__ import annotations

from typing import Any

from kubernetes import client, config, watch

from deploytui.demo.kube import KubeSim, KubeSimThread


def _observe_rollout(kube_client: Any, old_name: str, rv: str, done: Any) -> list[tuple[int, int]]:
    """(old RS replicas, new RS replicas) after every ReplicaSet change, seen through a watch."""
    apps = client.AppsV1Api(kube_client)
    replicas = {old_name: 4}
    states = [(4, 0)]
    w = watch.Watch()
    for event in w.stream(apps.list_namespaced_replica_set, "default", label_selector="app=web", resource_version=rv, timeout_seconds=20):
        rs = event["object"]
        replicas[rs.metadata.name] = rs.spec.replicas
        new = sum(v for k, v in replicas.items() if k != old_name)
        state = (replicas[old_name], new)
        if state != states[-1]:
            states.append(state)
        if done(state, rs):
            w.stop()
    return states


def test_rolling_update_steps_by_surge_and_unavailable(tmp_path: Any) -> None:
    # Deterministic: a manual clock, and the test runs each controller pass itself (50 ms of
    # simulated time per pass); the steps are then read back through a watch.
    now = [1_700_000_000.0]
    with KubeSimThread(controller_interval=3600, clock=lambda: now[0]) as sim:
        sim.set_image_behavior("web:2", ready_seconds=0.5)
        sim.add_deployment("default", "web", image="web:1", replicas=4, max_surge=1, max_unavailable=1)
        (old,) = sim.list_objects("ReplicaSet", "default")
        api_client = config.new_client_from_config(config_file=str(sim.write_kubeconfig(tmp_path / "kubeconfig")))
        rv = client.AppsV1Api(api_client).list_namespaced_replica_set("default").metadata.resource_version
        sim.set_image("default", "web", "web:2")
        for _ in range(200):
            now[0] += 0.05
            sim.call(sim.controller.tick)
            if sim.deployment_view("default", "web").complete:
                break

        def done(state: tuple[int, int], rs: Any) -> bool:
            return state == (0, 4) and rs.metadata.name != old["metadata"]["name"] and (rs.status.available_replicas or 0) == 4

        states = _observe_rollout(api_client, old["metadata"]["name"], rv, done)
        api_client.close()
        # maxSurge 1: never more than 5 pods wanted; maxUnavailable 1: old pods go one at a
        # time, each time a new pod becomes available.
        assert states == [(4, 0), (4, 1), (3, 1), (3, 2), (2, 2), (2, 3), (1, 3), (1, 4), (0, 4)]
        view = sim.deployment_view("default", "web")
        assert view.complete and view.revision == 2 and view.images == (("web:2", 4),)


def test_percentages_round_like_kubernetes(kube_sim: KubeSim, kube_client: Any, wait_for: Any) -> None:
    # 10 replicas at 25 %: maxSurge rounds up (3), maxUnavailable rounds down (2).
    kube_sim.set_image_behavior("web:2", ready_seconds=30)
    kube_sim.add_deployment("default", "web", image="web:1", replicas=10)
    kube_sim.set_image("default", "web", "web:2")

    def settled() -> Any:
        view = kube_sim.deployment_view("default", "web")
        specs = sorted(spec for _, _, spec in view.replica_sets)
        return specs if len(specs) == 2 and sum(specs) == 13 and specs[0] == 5 else None

    # new RS: 3 (surge), then old scaled down by 2 (unavailable) to 8, then new up to 13-8 = 5.
    assert wait_for(settled, what="surge and unavailable budgets used") == [5, 8]
    view = wait_for(
        lambda: (v := kube_sim.deployment_view("default", "web")).updated == 5 and v, what="status to catch up"
    )
    assert (view.ready, view.updated, view.desired) == (8, 5, 10)
    assert not view.complete and view.progressing


def test_crashloop_never_ready_restarts_grow(kube_sim: KubeSim, wait_for: Any) -> None:
    kube_sim.set_image_behavior("api:bad", crashloop=True, ready_seconds=0.05, restart_seconds=0.2)
    kube_sim.add_deployment("default", "api", image="api:1", replicas=2, progress_deadline_seconds=1)
    kube_sim.set_image("default", "api", "api:bad")

    def crashing() -> Any:
        pods = [p for p in kube_sim.list_objects("Pod") if p["spec"]["containers"][0]["image"] == "api:bad"]
        statuses = [p["status"]["containerStatuses"][0] for p in pods]
        return pods if statuses and all(s["restartCount"] >= 3 for s in statuses) else None

    pods = wait_for(crashing, what="restarts to reach 3")
    for pod in pods:
        status = pod["status"]["containerStatuses"][0]
        assert status["state"]["waiting"]["reason"] == "CrashLoopBackOff"
        assert status["ready"] is False and status["lastState"]["terminated"]["exitCode"] == 1
        assert pod["status"]["phase"] == "Running"
        assert {c["type"]: c["status"] for c in pod["status"]["conditions"]}["Ready"] == "False"
    wait_for(lambda: kube_sim.deployment_view("default", "api").deadline_exceeded, what="ProgressDeadlineExceeded")
    deployment = kube_sim.get_object("Deployment", "default", "api")
    assert deployment is not None
    conditions = {c["type"]: c for c in deployment["status"]["conditions"]}
    assert conditions["Progressing"]["status"] == "False"
    assert conditions["Progressing"]["reason"] == "ProgressDeadlineExceeded"
    assert conditions["Available"]["reason"] == "MinimumReplicasAvailable"
    assert deployment["status"]["unavailableReplicas"] == 1
    warnings = [e for e in kube_sim.list_objects("Event", "default") if e["reason"] == "BackOff"]
    assert warnings and all(e["type"] == "Warning" for e in warnings)

    # Rolling back restores progress: the old ReplicaSet is re-adopted with revision 3.
    kube_sim.set_image("default", "api", "api:1")
    wait_for(lambda: kube_sim.deployment_view("default", "api").complete, what="rollback to complete")
    view = kube_sim.deployment_view("default", "api")
    assert view.revision == 3 and view.images == (("api:1", 2),) and not view.deadline_exceeded


def test_conditions_through_a_rollout(kube_sim: KubeSim, wait_for: Any) -> None:
    kube_sim.set_image_behavior("web:2", ready_seconds=0.3)
    kube_sim.add_deployment("default", "web", image="web:1", replicas=2)
    settled = kube_sim.get_object("Deployment", "default", "web")
    assert settled is not None
    assert {c["type"]: c["reason"] for c in settled["status"]["conditions"]} == {
        "Available": "MinimumReplicasAvailable", "Progressing": "NewReplicaSetAvailable",
    }
    kube_sim.set_image("default", "web", "web:2")
    reasons: list[str] = []

    def record() -> bool:
        d = kube_sim.get_object("Deployment", "default", "web")
        assert d is not None
        reason = {c["type"]: c["reason"] for c in d["status"].get("conditions", [])}.get("Progressing", "")
        if not reasons or reasons[-1] != reason:
            reasons.append(reason)
        return reason == "NewReplicaSetAvailable" and d["status"].get("observedGeneration") == 2

    wait_for(record, what="rollout to finish")
    assert reasons[0] in ("NewReplicaSetAvailable", "NewReplicaSetCreated", "ReplicaSetUpdated")
    assert "ReplicaSetUpdated" in reasons and reasons[-1] == "NewReplicaSetAvailable"


def test_paused_deployment_does_not_roll(kube_sim: KubeSim, wait_for: Any) -> None:
    kube_sim.add_deployment("default", "web", image="web:1", replicas=2)
    d = kube_sim.get_object("Deployment", "default", "web")
    assert d is not None
    d["spec"]["paused"] = True
    d["spec"]["template"]["spec"]["containers"][0]["image"] = "web:2"
    d["spec"]["replicas"] = 3
    kube_sim.call(lambda: kube_sim.api.update(kube_sim_resource("deployments"), "default", "web", d))
    wait_for(lambda: kube_sim.deployment_view("default", "web").ready == 3, what="paused deployment to scale")
    view = kube_sim.deployment_view("default", "web")
    assert view.paused and view.images == (("web:1", 3),) and len(view.replica_sets) == 1
    progressing = {c["type"]: c for c in kube_sim.get_object("Deployment", "default", "web")["status"]["conditions"]}["Progressing"]  # type: ignore[index]
    assert (progressing["status"], progressing["reason"]) == ("Unknown", "DeploymentPaused")


def test_revision_history_limit_prunes_old_replica_sets(kube_sim: KubeSim, wait_for: Any) -> None:
    kube_sim.add_deployment("default", "web", image="web:1", replicas=1, revision_history_limit=2)
    for n in range(2, 6):
        kube_sim.set_image("default", "web", f"web:{n}")
        wait_for(lambda n=n: kube_sim.deployment_view("default", "web").images == ((f"web:{n}", 1),), what=f"web:{n}")
    wait_for(lambda: len(kube_sim.list_objects("ReplicaSet")) == 3, what="pruning to 2 old ReplicaSets")
    revisions = sorted(rev for _, rev, _ in kube_sim.deployment_view("default", "web").replica_sets)
    assert revisions == [3, 4, 5]


def test_deleting_a_deployment_collects_its_replica_sets_and_pods(kube_sim: KubeSim, kube_client: Any, wait_for: Any) -> None:
    kube_sim.add_deployment("default", "web", image="web:1", replicas=2)
    kube_sim.add_deployment("default", "api", image="api:1", replicas=1)
    client.AppsV1Api(kube_client).delete_namespaced_deployment("web", "default")
    wait_for(lambda: len(kube_sim.list_objects("Pod")) == 1, what="garbage collection")
    assert [rs["metadata"]["name"].split("-")[0] for rs in kube_sim.list_objects("ReplicaSet")] == ["api"]


def test_created_deployment_rolls_out_from_scratch(kube_sim: KubeSim, kube_client: Any, wait_for: Any) -> None:
    body = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "fresh"},
        "spec": {
            "replicas": 2, "selector": {"matchLabels": {"app": "fresh"}},
            "template": {"metadata": {"labels": {"app": "fresh"}}, "spec": {"containers": [{"name": "c", "image": "fresh:1"}]}},
        },
    }
    created = client.AppsV1Api(kube_client).create_namespaced_deployment("default", body)
    assert created.spec.strategy.rolling_update.max_surge == "25%"
    assert created.spec.template.spec.containers[0].image_pull_policy == "IfNotPresent"
    wait_for(lambda: kube_sim.deployment_view("default", "fresh").complete, what="fresh deployment ready")
    assert kube_sim.deployment_view("default", "fresh").revision == 1


def kube_sim_resource(kind: str) -> Any:
    from deploytui.demo.kube.resources import by_kind

    return by_kind(kind)


def test_recreate_strategy_stops_old_pods_first(kube_sim: KubeSim, kube_client: Any) -> None:
    kube_sim.add_deployment("default", "db", image="db:1", replicas=2)
    apps, core = client.AppsV1Api(kube_client), client.CoreV1Api(kube_client)
    apps.patch_namespaced_deployment("db", "default", {"spec": {"strategy": {"type": "Recreate", "rollingUpdate": None}}})
    rv = core.list_namespaced_pod("default").metadata.resource_version
    alive = {p["metadata"]["name"]: "db:1" for p in kube_sim.list_objects("Pod")}
    kube_sim.set_image("default", "db", "db:2")
    mixed = False
    w = watch.Watch()
    for event in w.stream(core.list_namespaced_pod, "default", resource_version=rv, timeout_seconds=15):
        pod = event["object"]
        if event["type"] == "DELETED":
            alive.pop(pod.metadata.name, None)
        else:
            alive[pod.metadata.name] = pod.spec.containers[0].image
        mixed = mixed or set(alive.values()) == {"db:1", "db:2"}
        ready = {c.type: c.status for c in pod.status.conditions or []}.get("Ready") == "True"
        if set(alive.values()) == {"db:2"} and len(alive) == 2 and ready:
            w.stop()
    assert not mixed, "Recreate must never run old and new pods together"
    assert set(alive.values()) == {"db:2"}


def test_unsettled_deployment_is_rolled_out_by_the_controller(kube_sim: KubeSim, wait_for: Any) -> None:
    created = kube_sim.add_deployment("default", "web", image="web:1", replicas=3, settled=False, change_cause="first")
    assert created["status"] == {} and kube_sim.list_objects("ReplicaSet") == []
    wait_for(lambda: kube_sim.deployment_view("default", "web").complete, what="first rollout")
    (rs,) = kube_sim.list_objects("ReplicaSet")
    assert rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    assert rs["metadata"]["annotations"]["kubernetes.io/change-cause"] == "first"
    assert rs["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] == "3"
    messages = [e["message"] for e in kube_sim.list_objects("Event") if e["reason"] == "ScalingReplicaSet"]
    assert messages == [f"Scaled up replica set {rs['metadata']['name']} to 3"]
