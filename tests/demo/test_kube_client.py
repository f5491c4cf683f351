"""The official ``kubernetes`` Python client against the simulated API."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from deploytui.demo.kube import KubeSim


def test_version_and_discovery(kube_sim: KubeSim, kube_client: Any) -> None:
    info = client.VersionApi(kube_client).get_code()
    assert (info.major, info.minor) == ("1", "32")
    assert info.git_version.startswith("v1.32")
    groups = {g.name for g in client.ApisApi(kube_client).get_api_versions().groups}
    assert {"apps", "coordination.k8s.io"} <= groups
    apps = client.AppsV1Api(kube_client).get_api_resources()
    by_name = {r.name: r for r in apps.resources}
    assert by_name["deployments"].short_names == ["deploy"]
    assert by_name["deployments/scale"].kind == "Scale"
    assert "deployments/status" in by_name
    core = {r.name: r for r in client.CoreV1Api(kube_client).get_api_resources().resources}
    assert core["pods"].short_names == ["po"] and core["events"].short_names == ["ev"]


def test_list_get_and_owner_chain(kube_sim: KubeSim, kube_client: Any) -> None:
    kube_sim.add_deployment("prod", "api", image="api:1.0", replicas=3)
    kube_sim.add_deployment("staging", "web", image="web:2.0", replicas=2)
    apps, core = client.AppsV1Api(kube_client), client.CoreV1Api(kube_client)

    everywhere = apps.list_deployment_for_all_namespaces()
    assert {(d.metadata.namespace, d.metadata.name) for d in everywhere.items} == {("prod", "api"), ("staging", "web")}
    assert int(everywhere.metadata.resource_version) > 0

    d = apps.read_namespaced_deployment("api", "prod")
    assert d.status.ready_replicas == 3 and d.status.observed_generation == d.metadata.generation == 1
    assert d.metadata.annotations["deployment.kubernetes.io/revision"] == "1"

    (rs,) = apps.list_namespaced_replica_set("prod").items
    owner = rs.metadata.owner_references[0]
    assert (owner.kind, owner.uid, owner.controller) == ("Deployment", d.metadata.uid, True)
    assert rs.metadata.annotations["deployment.kubernetes.io/revision"] == "1"
    pod_hash = rs.metadata.labels["pod-template-hash"]
    assert rs.metadata.name == f"api-{pod_hash}"

    pods = core.list_namespaced_pod("prod", label_selector="app=api").items
    assert len(pods) == 3
    for pod in pods:
        assert pod.metadata.owner_references[0].uid == rs.metadata.uid
        assert pod.metadata.labels["pod-template-hash"] == pod_hash
        assert pod.status.phase == "Running"
        assert {c.type: c.status for c in pod.status.conditions}["Ready"] == "True"
        assert pod.status.container_statuses[0].restart_count == 0
    assert core.list_namespaced_pod("prod", label_selector="app in (web,other)").items == []
    assert len(core.list_pod_for_all_namespaces(label_selector="app in (web,api)").items) == 5
    one = core.list_namespaced_pod("prod", field_selector=f"metadata.name={pods[0].metadata.name}").items
    assert [p.metadata.name for p in one] == [pods[0].metadata.name]
    assert {ns.metadata.name for ns in core.list_namespace().items} >= {"default", "prod", "staging"}

    with pytest.raises(ApiException) as missing:
        apps.read_namespaced_deployment("nope", "prod")
    assert missing.value.status == 404
    assert '"reason":"NotFound"' in missing.value.body.replace(" ", "")


def test_patches_of_every_type(kube_sim: KubeSim, kube_client: Any, wait_for: Any) -> None:
    kube_sim.add_deployment("default", "web", image="web:1", replicas=2)
    apps = client.AppsV1Api(kube_client)

    merged = apps.patch_namespaced_deployment("web", "default", {"metadata": {"labels": {"team": "blue"}}})
    assert merged.metadata.labels["team"] == "blue"
    assert merged.metadata.generation == 1  # metadata only: no new generation

    apps.api_client.set_default_header("Content-Type", "application/json-patch+json")
    patched = apps.patch_namespaced_deployment(
        "web", "default", [{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "web:2"}]
    )
    assert patched.spec.template.spec.containers[0].image == "web:2"
    assert patched.metadata.generation == 2
    apps.api_client.default_headers.pop("Content-Type")

    strategic = apps.patch_namespaced_deployment(
        "web", "default",
        {"spec": {"template": {"spec": {"containers": [{"name": "app", "env": [{"name": "MODE", "value": "x"}]}]}}}},
    )
    container = strategic.spec.template.spec.containers[0]
    assert container.image == "web:2" and container.env[0].name == "MODE"  # merged by name, not replaced

    wait_for(lambda: kube_sim.deployment_view("default", "web").complete, what="rollout of web:2 with env")
    view = kube_sim.deployment_view("default", "web")
    assert view.images == (("web:2", 2),) and view.revision >= 2


def test_scale_subresource(kube_sim: KubeSim, kube_client: Any, wait_for: Any) -> None:
    kube_sim.add_deployment("default", "web", image="web:1", replicas=2)
    apps = client.AppsV1Api(kube_client)
    scale = apps.read_namespaced_deployment_scale("web", "default")
    assert scale.spec.replicas == 2 and scale.status.selector == "app=web"
    apps.patch_namespaced_deployment_scale("web", "default", {"spec": {"replicas": 4}})
    wait_for(lambda: kube_sim.deployment_view("default", "web").ready == 4, what="4 ready pods")
    scale = apps.read_namespaced_deployment_scale("web", "default")
    scale.spec.replicas = 1
    apps.replace_namespaced_deployment_scale("web", "default", scale)
    wait_for(lambda: len(kube_sim.list_objects("Pod", "default")) == 1, what="scale down to 1 pod")
    view = kube_sim.deployment_view("default", "web")
    assert (view.desired, view.revision) == (1, 1)  # scaling is not a new revision
    stale = client.V1Scale(metadata=client.V1ObjectMeta(name="web", resource_version="1"), spec=client.V1ScaleSpec(replicas=3))
    with pytest.raises(ApiException) as conflict:
        apps.replace_namespaced_deployment_scale("web", "default", stale)
    assert conflict.value.status == 409


def test_watch_resume_and_deletion(kube_sim: KubeSim, kube_client: Any) -> None:
    kube_sim.add_deployment("default", "web", image="web:1", replicas=1)
    apps = client.AppsV1Api(kube_client)
    start = apps.list_namespaced_deployment("default").metadata.resource_version
    kube_sim.add_deployment("default", "api", image="api:1", replicas=1)
    apps.delete_namespaced_deployment("web", "default")

    seen: list[tuple[str, str]] = []
    w = watch.Watch()
    for event in w.stream(apps.list_namespaced_deployment, "default", resource_version=start, timeout_seconds=5):
        seen.append((event["type"], event["object"].metadata.name))
        if ("DELETED", "web") in seen:
            w.stop()
    assert seen[0] == ("ADDED", "api")
    assert ("DELETED", "web") in seen
    assert int(w.resource_version) > int(start)

    # Without a resourceVersion a watch starts with the current state as ADDED events.
    w2 = watch.Watch()
    first = next(iter(w2.stream(apps.list_namespaced_deployment, "default", timeout_seconds=5)))
    w2.stop()
    assert (first["type"], first["object"].metadata.name) == ("ADDED", "api")


def test_watch_label_selector_and_bookmarks(kube_sim: KubeSim, kube_client: Any) -> None:
    kube_sim.add_deployment("default", "web", image="web:1", replicas=1)
    core = client.CoreV1Api(kube_client)
    rv = core.list_namespaced_pod("default").metadata.resource_version
    w = watch.Watch()
    types: list[str] = []
    for event in w.stream(
        core.list_namespaced_pod, "default", label_selector="app=web", resource_version=rv,
        allow_watch_bookmarks=True, timeout_seconds=5,
    ):
        types.append(event["type"])
        if event["type"] == "BOOKMARK":
            w.stop()
    assert types[-1] == "BOOKMARK"
    assert int(w.resource_version) >= int(rv)


def test_watch_compacted_history_is_410(kube_sim: KubeSim, kube_client: Any) -> None:
    kube_sim.add_deployment("default", "web", image="web:1", replicas=1)
    apps = client.AppsV1Api(kube_client)
    old = apps.list_namespaced_deployment("default").metadata.resource_version
    kube_sim.set_image("default", "web", "web:2")
    kube_sim.compact_history()
    with pytest.raises(ApiException) as gone:
        for _ in watch.Watch().stream(apps.list_namespaced_deployment, "default", resource_version=old):
            pass
    assert gone.value.status == 410
    # The documented recovery works: list again, watch from the new resourceVersion.
    fresh = apps.list_namespaced_deployment("default").metadata.resource_version
    w = watch.Watch()
    kube_sim.set_image("default", "web", "web:3")
    for event in w.stream(apps.list_namespaced_deployment, "default", resource_version=fresh, timeout_seconds=5):
        assert event["type"] == "MODIFIED"
        w.stop()


def test_events_create_and_list(kube_sim: KubeSim, kube_client: Any) -> None:
    d = kube_sim.add_deployment("default", "web", image="web:1", replicas=1)
    core = client.CoreV1Api(kube_client)
    now = dt.datetime.now(dt.UTC)
    body = client.CoreV1Event(
        metadata=client.V1ObjectMeta(name="web.deploytui-1", namespace="default"),
        involved_object=client.V1ObjectReference(kind="Deployment", name="web", namespace="default", uid=d["metadata"]["uid"]),
        reason="RollbackRequested", message="rollback by deploytui", type="Normal",
        first_timestamp=now, last_timestamp=now, count=1, source=client.V1EventSource(component="deploytui"),
    )
    created = core.create_namespaced_event("default", body)
    assert created.metadata.uid and created.metadata.resource_version
    found = core.list_namespaced_event("default", field_selector="involvedObject.name=web,involvedObject.kind=Deployment").items
    assert [e.reason for e in found] == ["RollbackRequested"]
    by_uid = core.list_namespaced_event("default", field_selector=f"involvedObject.uid={d['metadata']['uid']}").items
    assert len(by_uid) == 1
    with pytest.raises(ApiException) as exists:
        core.create_namespaced_event("default", body)
    assert exists.value.status == 409 and "AlreadyExists" in exists.value.body


def test_controller_emits_scaling_events(kube_sim: KubeSim, kube_client: Any, wait_for: Any) -> None:
    kube_sim.add_deployment("default", "web", image="web:1", replicas=3)
    kube_sim.set_image("default", "web", "web:2")
    core = client.CoreV1Api(kube_client)

    def scaling() -> list[str]:
        events = core.list_namespaced_event("default", field_selector="involvedObject.name=web,reason=ScalingReplicaSet").items
        return [e.message for e in events]

    messages = wait_for(lambda: [m for m in scaling() if "Scaled down" in m and m.endswith(" to 0")], what="old RS scaled to 0")
    assert messages
    assert any(m.startswith("Scaled up replica set web-") for m in scaling())


def test_leases_optimistic_concurrency(kube_sim: KubeSim, kube_client: Any) -> None:
    coord = client.CoordinationV1Api(kube_client)
    now = dt.datetime.now(dt.UTC)
    lease = client.V1Lease(
        metadata=client.V1ObjectMeta(name="deploytui-web", namespace="default"),
        spec=client.V1LeaseSpec(holder_identity="alice", lease_duration_seconds=30, acquire_time=now, renew_time=now),
    )
    created = coord.create_namespaced_lease("default", lease)
    assert created.spec.holder_identity == "alice"
    with pytest.raises(ApiException) as exists:
        coord.create_namespaced_lease("default", lease)
    assert exists.value.status == 409 and "AlreadyExists" in exists.value.body

    mine = coord.read_namespaced_lease("deploytui-web", "default")
    theirs = coord.read_namespaced_lease("deploytui-web", "default")
    mine.spec.holder_identity = "bob"
    updated = coord.replace_namespaced_lease("deploytui-web", "default", mine)
    assert updated.spec.holder_identity == "bob"
    assert int(updated.metadata.resource_version) > int(theirs.metadata.resource_version)

    theirs.spec.holder_identity = "carol"
    with pytest.raises(ApiException) as conflict:
        coord.replace_namespaced_lease("deploytui-web", "default", theirs)
    assert conflict.value.status == 409
    assert '"reason":"Conflict"' in conflict.value.body.replace(" ", "")
    assert coord.read_namespaced_lease("deploytui-web", "default").spec.holder_identity == "bob"

    stale_patch = {"metadata": {"resourceVersion": theirs.metadata.resource_version}, "spec": {"holderIdentity": "dave"}}
    with pytest.raises(ApiException) as patch_conflict:
        coord.patch_namespaced_lease("deploytui-web", "default", stale_patch)
    assert patch_conflict.value.status == 409

    coord.delete_namespaced_lease("deploytui-web", "default")
    with pytest.raises(ApiException) as gone:
        coord.read_namespaced_lease("deploytui-web", "default")
    assert gone.value.status == 404


def test_services_expose_node_ports(kube_sim: KubeSim, kube_client: Any) -> None:
    kube_sim.add_service("prod", "api", ports=[{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30080}], type="NodePort")
    kube_sim.add_service("prod", "db", ports=[{"port": 5432}])
    services = {s.metadata.name: s for s in client.CoreV1Api(kube_client).list_service_for_all_namespaces().items}
    assert services["api"].spec.ports[0].node_port == 30080
    assert services["api"].spec.type == "NodePort"
    assert services["db"].spec.ports[0].node_port is None


def test_events_k8s_io_is_a_view_of_core_events(kube_sim: KubeSim, kube_client: Any) -> None:
    d = kube_sim.add_deployment("default", "web", image="web:1", replicas=1)
    events = client.EventsV1Api(kube_client)
    now = dt.datetime.now(dt.UTC)
    created = events.create_namespaced_event(
        "default",
        client.EventsV1Event(
            metadata=client.V1ObjectMeta(name="web.v1-event"),
            event_time=now, reporting_controller="deploytui", reporting_instance="console-1",
            action="Rollback", reason="RollbackRequested", note="rollback by deploytui", type="Normal",
            regarding=client.V1ObjectReference(kind="Deployment", name="web", namespace="default", uid=d["metadata"]["uid"]),
        ),
    )
    assert created.note == "rollback by deploytui" and created.regarding.name == "web"
    core = client.CoreV1Api(kube_client).read_namespaced_event("web.v1-event", "default")
    assert (core.message, core.involved_object.kind, core.reporting_component) == ("rollback by deploytui", "Deployment", "deploytui")
    listed = events.list_namespaced_event("default", field_selector="reason=RollbackRequested").items
    assert [e.metadata.name for e in listed] == ["web.v1-event"]
    rv = events.list_namespaced_event("default").metadata.resource_version
    client.CoreV1Api(kube_client).patch_namespaced_event("web.v1-event", "default", {"count": 2})
    w = watch.Watch()
    for event in w.stream(events.list_namespaced_event, "default", resource_version=rv, timeout_seconds=5):
        assert event["type"] == "MODIFIED" and event["object"].deprecated_count == 2
        w.stop()
