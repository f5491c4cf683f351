"""Fault injection, dropped watches, /metrics and the server lifecycle of the simulated API."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import urllib.error
import urllib.request
from typing import Any

import aiohttp
import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from deploytui.demo.kube import KubeSim, KubeSimThread


def test_injected_statuses_reach_the_client(kube_sim: KubeSim, kube_client: Any) -> None:
    kube_sim.add_deployment("default", "web", image="web:1", replicas=1)
    apps = client.AppsV1Api(kube_client)
    kube_sim.inject_fault("GET", r"/apis/apps/v1/namespaces/default/deployments", status=403)
    with pytest.raises(ApiException) as forbidden:
        apps.list_namespaced_deployment("default")
    assert forbidden.value.status == 403
    body = json.loads(forbidden.value.body)
    assert (body["kind"], body["status"], body["reason"], body["code"]) == ("Status", "Failure", "Forbidden", 403)
    assert len(apps.list_namespaced_deployment("default").items) == 1  # only the next request failed

    kube_sim.inject_fault("PATCH", r"/deployments/web$", status=409, times=2)
    for _ in range(2):
        with pytest.raises(ApiException) as conflict:
            apps.patch_namespaced_deployment("web", "default", {"metadata": {"labels": {"x": "y"}}})
        assert conflict.value.status == 409
    apps.patch_namespaced_deployment("web", "default", {"metadata": {"labels": {"x": "y"}}})

    kube_sim.inject_fault("*", r"deployments/web/scale", status=500)
    with pytest.raises(ApiException) as broken:
        apps.read_namespaced_deployment_scale("web", "default")
    assert broken.value.status == 500 and json.loads(broken.value.body)["reason"] == "InternalError"


def test_injected_hang_outlasts_a_client_timeout(kube_sim: KubeSim) -> None:
    kube_sim.inject_fault("GET", r"^/version", delay=1.5)
    with pytest.raises((TimeoutError, urllib.error.URLError)):
        urllib.request.urlopen(f"{kube_sim.url}/version", timeout=0.3)
    with urllib.request.urlopen(f"{kube_sim.url}/version", timeout=5) as response:
        assert json.load(response)["major"] == "1"


def test_dropped_watches_end_the_stream(kube_sim: KubeSim, kube_client: Any) -> None:
    kube_sim.add_deployment("default", "web", image="web:1", replicas=1)
    apps = client.AppsV1Api(kube_client)
    got_first = threading.Event()
    seen: list[str] = []

    def consume() -> None:
        for event in watch.Watch().stream(apps.list_namespaced_deployment, "default", timeout_seconds=30):
            seen.append(event["type"])
            got_first.set()

    consumer = threading.Thread(target=consume, daemon=True)
    consumer.start()
    assert got_first.wait(10)
    kube_sim.drop_watches()
    consumer.join(10)
    assert not consumer.is_alive(), "the watch stream did not end when the server dropped it"
    assert seen[0] == "ADDED"


def test_watch_resumes_after_a_drop_without_losing_events(kube_sim: KubeSim, kube_client: Any) -> None:
    kube_sim.add_deployment("default", "web", image="web:1", replicas=1)
    apps = client.AppsV1Api(kube_client)
    rv = apps.list_namespaced_deployment("default").metadata.resource_version
    images: list[str] = []
    w = watch.Watch()
    connected = threading.Event()

    def consume() -> None:
        connected.set()
        for event in w.stream(apps.list_namespaced_deployment, "default", resource_version=rv):
            images.append(event["object"].spec.template.spec.containers[0].image)
            if images[-1] == "web:3":
                w.stop()

    consumer = threading.Thread(target=consume, daemon=True)
    consumer.start()
    assert connected.wait(5)
    kube_sim.set_image("default", "web", "web:2")
    kube_sim.drop_watches()
    kube_sim.set_image("default", "web", "web:3")  # happens while (or before) the client reconnects
    consumer.join(15)
    assert not consumer.is_alive()
    assert "web:2" in images and images[-1] == "web:3"


def test_metrics_in_kube_state_metrics_format(kube_sim: KubeSim, wait_for: Any) -> None:
    kube_sim.set_image_behavior("api:bad", crashloop=True, ready_seconds=0.05, restart_seconds=0.2)
    kube_sim.add_deployment("prod", "checkout", image="checkout:1", replicas=3, labels={"app": "checkout-svc"})
    kube_sim.add_deployment("prod", "api", image="api:bad", replicas=1)

    def scrape() -> str:
        with urllib.request.urlopen(f"{kube_sim.url}/metrics", timeout=5) as response:
            assert response.headers["Content-Type"].startswith("text/plain")
            return response.read().decode()

    def restarts() -> int:
        m = re.search(r'kube_pod_container_status_restarts_total\{namespace="prod",pod="api-[^"]+",deployment="api",service="api",container="app"\} (\d+)', scrape())
        return int(m.group(1)) if m else 0

    wait_for(lambda: restarts() >= 2, what="restart counter to grow")
    text = scrape()
    assert 'kube_deployment_spec_replicas{namespace="prod",deployment="checkout",service="checkout-svc"} 3' in text
    assert 'kube_deployment_status_replicas_ready{namespace="prod",deployment="checkout",service="checkout-svc"} 3' in text
    assert 'kube_deployment_status_replicas_available{namespace="prod",deployment="api",service="api"} 0' in text
    assert 'kube_deployment_status_replicas_updated{namespace="prod",deployment="checkout",service="checkout-svc"} 3' in text
    ready = re.findall(r'kube_pod_status_ready\{namespace="prod",pod="checkout-[^"]+",deployment="checkout",service="checkout-svc",condition="true"\} 1', text)
    assert len(ready) == 3
    assert "# TYPE kube_pod_container_status_restarts_total counter" in text


async def test_start_and_stop_inside_a_loop_leave_no_tasks() -> None:
    sim = KubeSim(controller_interval=0.02, bookmark_interval=0.1)
    await sim.start()
    sim.add_deployment("default", "web", image="web:1", replicas=2)
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{sim.url}/apis/apps/v1/deployments") as response:
            assert (await response.json())["items"][0]["metadata"]["name"] == "web"
        watch_response = await session.get(f"{sim.url}/apis/apps/v1/deployments?watch=1&allowWatchBookmarks=true")
        first = json.loads(await watch_response.content.readline())
        assert first["type"] == "ADDED"
        bookmark = json.loads(await watch_response.content.readline())
        assert bookmark["type"] == "BOOKMARK" and set(bookmark["object"]["metadata"]) >= {"resourceVersion"}
        await sim.stop()
        assert await watch_response.content.read() == b""  # stop() ended the open watch
        watch_response.release()
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert others == []


def test_sync_methods_are_safe_from_many_threads(tmp_path: Any) -> None:
    with KubeSimThread(controller_interval=0.01) as sim:
        sim.set_default_ready_seconds(0.01)
        errors: list[BaseException] = []

        def worker(n: int) -> None:
            try:
                sim.add_deployment("default", f"svc{n}", image="img:1", replicas=2)
                for version in range(2, 6):
                    sim.set_image("default", f"svc{n}", f"img:{version}")
                    sim.list_objects("Pod")
                    sim.deployment_view("default", f"svc{n}")
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert errors == []
        deadline_ok = sim.call(lambda: all(sim.deployment_view("default", f"svc{n}").template_images == ("img:5",) for n in range(8)))
        assert deadline_ok
        resource_versions = [int(o["metadata"]["resourceVersion"]) for o in sim.list_objects("Pod")]
        assert len(set(resource_versions)) == len(resource_versions)


def test_denied_permissions_are_forbidden_like_rbac(kube_sim: KubeSim, kube_client: Any) -> None:
    kube_sim.add_deployment("prod", "web", image="web:1", replicas=1)
    kube_sim.set_permission("patch", "deployments", allowed=False, namespace="prod")
    apps = client.AppsV1Api(kube_client)
    with pytest.raises(ApiException) as forbidden:
        apps.patch_namespaced_deployment("web", "prod", {"metadata": {"labels": {"x": "y"}}})
    body = json.loads(forbidden.value.body)
    assert forbidden.value.status == 403 and body["reason"] == "Forbidden"
    assert body["message"] == (
        'deployments.apps "web" is forbidden: User "deploytui-demo" cannot patch resource "deployments" '
        'in API group "apps" in the namespace "prod"'
    )
    assert apps.read_namespaced_deployment("web", "prod").metadata.name == "web"  # reads still work
    review = client.AuthorizationV1Api(kube_client).create_self_subject_access_review(
        client.V1SelfSubjectAccessReview(
            spec=client.V1SelfSubjectAccessReviewSpec(
                resource_attributes=client.V1ResourceAttributes(namespace="prod", verb="patch", group="apps", resource="deployments")
            )
        )
    )
    assert review.status.allowed is False
    kube_sim.set_permission("patch", "deployments", allowed=True, namespace="prod")
    apps.patch_namespaced_deployment("web", "prod", {"metadata": {"labels": {"x": "y"}}})


def test_openapi_is_absent_and_send_initial_events_ends_with_a_bookmark(kube_sim: KubeSim) -> None:
    for path in ("/openapi/v2", "/openapi/v3"):
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"{kube_sim.url}{path}", timeout=5)
        assert missing.value.code == 404
    kube_sim.add_deployment("default", "web", image="web:1", replicas=1)
    url = (
        f"{kube_sim.url}/apis/apps/v1/namespaces/default/deployments?watch=true&sendInitialEvents=true"
        "&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=5"
    )
    with urllib.request.urlopen(url, timeout=10) as response:
        first = json.loads(response.readline())
        second = json.loads(response.readline())
    assert (first["type"], first["object"]["metadata"]["name"]) == ("ADDED", "web")
    assert second["type"] == "BOOKMARK"
    assert second["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


def test_the_injected_clock_drives_timestamps_and_deadlines() -> None:
    now = [1_700_000_000.0]
    with KubeSimThread(controller_interval=0.02, clock=lambda: now[0]) as sim:
        sim.set_image_behavior("web:bad", crashloop=True, ready_seconds=1)
        sim.add_deployment("default", "web", image="web:1", replicas=2)  # default deadline: 600 s
        created = sim.get_object("Deployment", "default", "web")
        assert created is not None and created["metadata"]["creationTimestamp"] == "2023-11-14T22:13:20Z"
        sim.set_image("default", "web", "web:bad")
        sim.call(sim.controller.tick)
        sim.call(sim.controller.tick)
        assert not sim.deployment_view("default", "web").deadline_exceeded
        now[0] += 601
        sim.call(sim.controller.tick)
        sim.call(sim.controller.tick)
        assert sim.deployment_view("default", "web").deadline_exceeded
        pods = [p for p in sim.list_objects("Pod") if p["spec"]["containers"][0]["image"] == "web:bad"]
        assert pods and pods[0]["status"]["containerStatuses"][0]["restartCount"] >= 100  # every 2 s for 600 s
