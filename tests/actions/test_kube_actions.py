"""Rollback / scale / restart through the door against the simulated Kubernetes API over HTTP,
with real kubectl as the reference for ``rollout undo`` and real Leases for the locks."""

from __future__ import annotations

import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from deploytui.actions.door import ActionDoor
from deploytui.actions.kube import (
    LeaseLocker,
    RestartAction,
    RollbackAction,
    ScaleAction,
    deployment_for,
    make_restart,
    make_rollback,
    make_scale,
)
from deploytui.config import KubernetesSettings, ServiceSettings, Settings
from deploytui.demo.kube import KubeSim, KubeSimThread
from deploytui.errors import ActionRefused
from deploytui.model import MemoryJournal, Target
from deploytui.runtime import build_runtime
from deploytui.sources.kube_watch import KubeClient, connect
from tests.conftest import require_binary

CID = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{6}$")


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[KubeSim]:
    with KubeSimThread(controller_interval=0.03, bookmark_interval=0.3) as s:
        s.set_default_ready_seconds(0.05)
        s.write_kubeconfig(tmp_path / "kubeconfig", namespace="shop")
        yield s


def settings_for(sim: KubeSim, **kube: Any) -> Settings:
    values: dict[str, Any] = {"enabled": True, "kubeconfig": str(sim.kubeconfig),
                              "namespaces": ("shop",), "request_timeout": 3.0,
                              "lease_duration_seconds": 15}
    values.update(kube)
    services = (
        ServiceSettings(name="checkout", env="prod", health_url="http://127.0.0.1:1/h",
                        deployment="shop/checkout"),
        ServiceSettings(name="cart", env="staging", health_url="http://127.0.0.1:1/h"),
    )
    return Settings(kubernetes=KubernetesSettings(**values), services=services)


@pytest.fixture
def settings(sim: KubeSim) -> Settings:
    return settings_for(sim)


@pytest.fixture
def client(settings: Settings) -> Iterator[KubeClient]:
    c = connect(settings)
    yield c
    c.close()


def door_for(client: KubeClient, settings: Settings, operator: str = "alice@laptop",
             journal: MemoryJournal | None = None, read_only: bool = False) -> ActionDoor:
    journal = journal if journal is not None else MemoryJournal()
    return ActionDoor(operator=operator, read_only=read_only, audit=journal, timeline=journal,
                      locker=LeaseLocker(client, settings))


def wait_for(predicate: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def settled(sim: KubeSim, ns: str, name: str, revision: int | None = None) -> None:
    def done() -> bool:
        v = sim.deployment_view(ns, name)
        return v.complete and (revision is None or v.revision == revision)
    wait_for(done, what=f"{ns}/{name} to settle at revision {revision}")


def three_revisions(sim: KubeSim, ns: str, name: str = "web") -> None:
    sim.add_deployment(ns, name, image="app:1.4.0", replicas=3, change_cause="first")
    for n, image in ((2, "app:1.4.1"), (3, "app:1.4.2")):
        sim.set_image(ns, name, image, change_cause=f"release {image}")
        settled(sim, ns, name, n)


def events_for(sim: KubeSim, ns: str, name: str, reason: str) -> list[dict[str, Any]]:
    return [e for e in sim.list_objects("events", ns)
            if e["involvedObject"]["name"] == name and e["reason"] == reason]


def comparable(sim: KubeSim, ns: str, name: str) -> dict[str, Any]:
    d = sim.get_object("deployments", ns, name)
    assert d is not None
    rss = [rs for rs in sim.list_objects("replicasets", ns)
           if rs["metadata"]["ownerReferences"][0]["uid"] == d["metadata"]["uid"]]
    return {
        "template": d["spec"]["template"],
        "annotations": d["metadata"].get("annotations"),
        "generation": d["metadata"]["generation"],
        "replica_sets": sorted(
            (rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
             rs["metadata"]["annotations"].get("deployment.kubernetes.io/revision-history", ""),
             rs["spec"]["template"]["spec"]["containers"][0]["image"],
             rs["metadata"]["annotations"].get("kubernetes.io/change-cause", ""))
            for rs in rss),
    }


# --- rollback ------------------------------------------------------------------------------------


@pytest.mark.parametrize("to_revision", [None, 1])
def test_rollback_is_identical_to_kubectl_rollout_undo(sim: KubeSim, tmp_path: Path,
                                                       to_revision: int | None) -> None:
    kubectl = require_binary("kubectl", "/usr/bin/kubectl")
    three_revisions(sim, "left")
    three_revisions(sim, "right")
    assert comparable(sim, "left", "web") == comparable(sim, "right", "web")

    argv = [kubectl, "--kubeconfig", str(sim.kubeconfig), "--cache-dir", str(tmp_path / "cache"),
            "-n", "left", "rollout", "undo", "deployment/web"]
    if to_revision:
        argv.append(f"--to-revision={to_revision}")
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "rolled back" in done.stdout

    settings = settings_for(sim, namespaces=("right",))
    client = connect(settings)
    door = door_for(client, settings)
    action = RollbackAction(client, settings, "right/web", to_revision or 0)
    plan = door.plan(action)
    expected_image = "app:1.4.0" if to_revision else "app:1.4.1"
    expected_rev = 1 if to_revision else 2
    assert plan.changes[0] == (f"revision 3 image app:1.4.2 -> revision {expected_rev} "
                               f"image {expected_image}")
    result = door.run(action, plan)
    assert result.ok, result.message

    settled(sim, "left", "web", 4)
    settled(sim, "right", "web", 4)
    left, right = comparable(sim, "left", "web"), comparable(sim, "right", "web")
    assert left == right
    assert right["template"]["spec"]["containers"][0]["image"] == expected_image
    # kubectl itself agrees about the history of both
    hist = [subprocess.run([kubectl, "--kubeconfig", str(sim.kubeconfig), "--cache-dir",
                            str(tmp_path / "cache"), "-n", ns, "rollout", "history",
                            "deployment/web"], capture_output=True, text=True, timeout=60,
                           check=True).stdout.splitlines()[1:] for ns in ("left", "right")]
    assert hist[0] == hist[1]
    client.close()


def test_rollback_refusals_follow_kubectl(sim: KubeSim, settings: Settings,
                                          client: KubeClient) -> None:
    sim.add_deployment("shop", "solo", image="solo:1", replicas=1)
    door = door_for(client, settings)
    with pytest.raises(ActionRefused, match="no rollout history found for deployment 'solo'"):
        door.plan(RollbackAction(client, settings, "shop/solo"))
    three_revisions(sim, "shop")
    with pytest.raises(ActionRefused, match="unable to find specified revision 9 in history"):
        door.plan(RollbackAction(client, settings, "shop/web", 9))
    with pytest.raises(ActionRefused, match=r"skipped rollback \(current template already matches "
                                            r"revision 3\)"):
        door.plan(RollbackAction(client, settings, "shop/web", 3))
    client.call("apps", "patch_namespaced_deployment", "web", "shop", {"spec": {"paused": True}},
                _content_type="application/merge-patch+json")
    with pytest.raises(ActionRefused, match="cannot roll back a paused deployment"):
        door.plan(RollbackAction(client, settings, "shop/web"))
    with pytest.raises(ActionRefused, match="paused"):
        door.plan(RestartAction(client, settings, "shop/web"))


def test_rollback_writes_event_audit_and_timeline(sim: KubeSim, settings: Settings,
                                                  client: KubeClient) -> None:
    three_revisions(sim, "shop", "checkout")
    journal = MemoryJournal()
    door = door_for(client, settings, journal=journal)
    action = RollbackAction(client, settings, "shop/checkout", 1)
    plan = door.plan(action)
    assert plan.confirm_text == "checkout"          # the service is prod: type the name
    assert plan.env == "prod" and plan.service == "prod/checkout"
    assert plan.lock_key == "shop/checkout"
    result = door.run(action, plan)
    assert result.ok and CID.match(result.correlation_id)
    record = journal.audit[-1]
    assert (record.action, record.status, record.deployer) == ("rollback", "ok", "alice@laptop")
    assert record.before["revision"] == 3 and record.after["revision"] == 1
    assert record.correlation_id == result.correlation_id
    assert journal.events[-1].kind == "action" and "rollback" in journal.events[-1].details["action"]
    events = events_for(sim, "shop", "checkout", "DeploytuiRollback")
    assert len(events) == 1
    assert result.correlation_id in events[0]["message"] and "alice@laptop" in events[0]["message"]
    assert events[0]["involvedObject"]["kind"] == "Deployment"
    settled(sim, "shop", "checkout", 4)
    d = sim.get_object("deployments", "shop", "checkout")
    assert d is not None and d["spec"]["template"]["spec"]["containers"][0]["image"] == "app:1.4.0"
    # the lease was released
    assert sim.get_object("leases", "shop", "deploytui-checkout") is None


# --- scale and restart ---------------------------------------------------------------------------


def test_scale_through_the_scale_subresource(sim: KubeSim, settings: Settings,
                                             client: KubeClient) -> None:
    sim.add_deployment("shop", "cart", image="cart:2", replicas=4)
    door = door_for(client, settings)
    action = ScaleAction(client, settings, "shop/cart", "8")
    plan = door.plan(action)
    assert plan.changes == ("replicas 4 -> 8",)
    assert plan.confirm_text == ""                  # staging: a plain yes
    result = door.run(action, plan)
    assert result.ok and result.message == "scaled shop/cart from 4 to 8 replicas"
    wait_for(lambda: sim.deployment_view("shop", "cart").available == 8, what="8 available")
    assert len(events_for(sim, "shop", "cart", "DeploytuiScale")) == 1
    with pytest.raises(ActionRefused, match="already has 8 replicas"):
        door.plan(ScaleAction(client, settings, "shop/cart", 8))


@pytest.mark.parametrize("bad", ["-1", "abc", "2.5", "", "1001", True])
def test_scale_validation(settings: Settings, client: KubeClient, bad: Any) -> None:
    with pytest.raises(ActionRefused) as info:
        ScaleAction(client, settings, "shop/cart", bad)
    assert info.value.reason == "validation"
    assert "replicas must be" in str(info.value)


def test_restart_stamps_restarted_at(sim: KubeSim, settings: Settings, client: KubeClient) -> None:
    sim.add_deployment("shop", "cart", image="cart:2", replicas=2)
    door = door_for(client, settings)
    action = RestartAction(client, settings, "shop/cart")
    plan = door.plan(action)
    assert plan.changes[0].startswith("restart all 2 pods, rolling (revision 1 -> 2")
    result = door.run(action, plan)
    assert result.ok, result.message
    d = sim.get_object("deployments", "shop", "cart")
    assert d is not None
    stamp = d["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", stamp)
    settled(sim, "shop", "cart", 2)
    assert len(events_for(sim, "shop", "cart", "DeploytuiRestart")) == 1


def test_factories_and_target_resolution(sim: KubeSim, settings: Settings) -> None:
    rt = build_runtime(settings, journal=MemoryJournal())
    assert isinstance(rt.door.locker, LeaseLocker)
    assert deployment_for(rt, Target(service="prod/checkout")) == "shop/checkout"
    assert deployment_for(rt, Target(deployment="shop/x")) == "shop/x"
    assert deployment_for(rt, Target(alert_fingerprint="abc")) == ""
    sim.add_deployment("shop", "cart", image="cart:1", replicas=1)
    headless = build_runtime(settings, journal=MemoryJournal(), with_sources=False)
    assert headless.door.locker is None
    make_restart(headless, "shop/cart")      # any kube action gives the door its Lease locker
    assert isinstance(headless.door.locker, LeaseLocker)
    assert isinstance(make_scale(rt, "shop/cart", 2), ScaleAction)
    assert isinstance(make_restart(rt, "shop/cart"), RestartAction)
    rollback = make_rollback(rt, "shop/cart", None)
    with pytest.raises(ActionRefused, match="no rollout history"):
        rt.door.plan(rollback)
    with pytest.raises(ActionRefused, match="namespace/name"):
        make_scale(rt, "cart", 2)


# --- read-only, locks, failures ------------------------------------------------------------------


def test_read_only_refuses_every_kube_action(sim: KubeSim, settings: Settings,
                                             client: KubeClient) -> None:
    three_revisions(sim, "shop")
    journal = MemoryJournal()
    door = door_for(client, settings, journal=journal, read_only=True)
    before = sim.get_object("deployments", "shop", "web")
    for action in (RollbackAction(client, settings, "shop/web"),
                   ScaleAction(client, settings, "shop/web", 5),
                   RestartAction(client, settings, "shop/web")):
        with pytest.raises(ActionRefused, match="read-only"):
            door.plan(action)
        result = door.run(action)
        assert not result.ok and "read-only" in result.message
    assert [r.status for r in journal.audit] == ["refused"] * 3
    assert sim.get_object("deployments", "shop", "web") == before


def test_two_consoles_race_and_exactly_one_acts(sim: KubeSim, settings: Settings) -> None:
    sim.add_deployment("shop", "cart", image="cart:2", replicas=2)
    clients = [connect(settings), connect(settings)]
    doors = [door_for(clients[0], settings, "alice@laptop"), door_for(clients[1], settings, "bob@desk")]
    # the write is slow, so whoever wins holds the lease while the other one tries
    sim.inject_fault("PATCH", r"/deployments/cart/scale", delay=1.0, times=2)
    actions = [ScaleAction(clients[0], settings, "shop/cart", 5),
               ScaleAction(clients[1], settings, "shop/cart", 6)]
    plans = [d.plan(a) for d, a in zip(doors, actions, strict=True)]
    barrier = threading.Barrier(2)
    results: list[Any] = [None, None]

    def go(i: int) -> None:
        barrier.wait()
        results[i] = doors[i].run(actions[i], plans[i])

    threads = [threading.Thread(target=go, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    oks = [r.ok for r in results]
    assert sorted(oks) == [False, True], [r.message for r in results]
    winner, loser = (0, 1) if oks[0] else (1, 0)
    who = ["alice@laptop", "bob@desk"][winner]
    assert re.search(rf"shop/cart is locked: held by {re.escape(who)} since "
                     r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", results[loser].message)
    d = sim.get_object("deployments", "shop", "cart")
    assert d is not None and d["spec"]["replicas"] == [5, 6][winner]
    assert len(events_for(sim, "shop", "cart", "DeploytuiScale")) == 1
    for c in clients:
        c.close()


def test_live_lease_refuses_and_expired_lease_is_taken_over(sim: KubeSim, settings: Settings,
                                                            client: KubeClient) -> None:
    sim.add_deployment("shop", "cart", image="cart:2", replicas=2)
    now = time.time()

    def lease(renewed: float) -> dict[str, Any]:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime(renewed))
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": "deploytui-cart", "namespace": "shop"},
                "spec": {"holderIdentity": "carol@elsewhere", "leaseDurationSeconds": 15,
                         "acquireTime": stamp, "renewTime": stamp}}

    client.call("coordination", "create_namespaced_lease", "shop", lease(now))
    door = door_for(client, settings)
    result = door.run(ScaleAction(client, settings, "shop/cart", 3))
    assert not result.ok
    assert "held by carol@elsewhere since" in result.message
    assert sim.get_object("deployments", "shop", "cart")["spec"]["replicas"] == 2  # type: ignore[index]

    client.call("coordination", "delete_namespaced_lease", "deploytui-cart", "shop")
    client.call("coordination", "create_namespaced_lease", "shop", lease(now - 60))
    result = door.run(ScaleAction(client, settings, "shop/cart", 3))
    assert result.ok, result.message
    assert sim.get_object("leases", "shop", "deploytui-cart") is None


@pytest.mark.parametrize(("status", "delay", "expected"), [
    (403, 0.0, "not allowed (403 Forbidden)"),
    (409, 0.0, "someone else changed it at the same moment (409 Conflict)"),
    (422, 0.0, "the API rejected the change as invalid (422)"),
    (504, 2.5, "the API server did not answer within 1 s (timeout)"),
])
def test_api_errors_leave_the_deployment_as_it_was(sim: KubeSim, status: int, delay: float,
                                                   expected: str) -> None:
    settings = settings_for(sim, request_timeout=1.0)
    client = connect(settings)
    three_revisions(sim, "shop")
    before = sim.get_object("deployments", "shop", "web")
    assert before is not None
    door = door_for(client, settings)
    for action in (RollbackAction(client, settings, "shop/web"),
                   ScaleAction(client, settings, "shop/web", 7),
                   RestartAction(client, settings, "shop/web")):
        plan = door.plan(action)
        sim.inject_fault("PATCH", r"/deployments/web", status=status, delay=delay)
        result = door.run(action, plan)
        assert not result.ok
        assert expected in result.message, result.message
        assert "the deployment was left as it was" in result.message
        time.sleep(delay)      # let a late server-side handler finish before comparing
        after = sim.get_object("deployments", "shop", "web")
        assert after is not None
        assert after["spec"] == before["spec"]
        assert after["metadata"]["generation"] == before["metadata"]["generation"]
    warnings = [e for e in sim.list_objects("events", "shop") if e["type"] == "Warning"
                and e["reason"].startswith("Deploytui")]
    assert len(warnings) == 3
    client.close()


def test_state_changed_since_confirmation_is_refused(sim: KubeSim, settings: Settings,
                                                     client: KubeClient) -> None:
    sim.add_deployment("shop", "cart", image="cart:2", replicas=2)
    door = door_for(client, settings)
    action = ScaleAction(client, settings, "shop/cart", 5)
    plan = door.plan(action)
    client.call("apps", "patch_namespaced_deployment_scale", "cart", "shop",
                {"spec": {"replicas": 3}}, _content_type="application/merge-patch+json")
    result = door.run(action, plan)
    assert not result.ok and "changed since the confirmation (replicas 2 -> 3)" in result.message
    assert sim.get_object("deployments", "shop", "cart")["spec"]["replicas"] == 3  # type: ignore[index]


# --- the undo algorithm on API-shaped objects ----------------------------------------------------


def _rs(name: str, revision: str | None, image: str, owner: str = "u-web",
        annotations: dict[str, str] | None = None) -> dict[str, Any]:
    notes = dict(annotations or {})
    if revision is not None:
        notes["deployment.kubernetes.io/revision"] = revision
    return {"metadata": {"name": name, "annotations": notes,
                         "ownerReferences": [{"uid": owner, "controller": True}]},
            "spec": {"template": {"metadata": {"labels": {"app": "web",
                                                          "pod-template-hash": name[-3:]}},
                                  "spec": {"containers": [{"name": "app", "image": image}]}}}}


def _deployment(image: str, revision: str, paused: bool = False) -> dict[str, Any]:
    return {"metadata": {"name": "web", "namespace": "shop", "uid": "u-web", "resourceVersion": "9",
                         "annotations": {"deployment.kubernetes.io/revision": revision,
                                         "kubectl.kubernetes.io/last-applied-configuration": "{}",
                                         "team": "old"}},
            "spec": {"paused": paused,
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "app", "image": image}]}}}}


def test_undo_picks_the_second_highest_controlled_revision() -> None:
    from deploytui.actions.undo import plan_undo, select_revision

    history = [_rs("web-aaa", "3", "app:3"), _rs("web-bbb", "10", "app:10"),
               _rs("web-ccc", "7", "app:7", annotations={"kubernetes.io/change-cause": "seven",
                                                          "deployment.kubernetes.io/revision-history": "2,5"}),
               _rs("web-ddd", "99", "app:99", owner="u-someone-else"),
               _rs("web-eee", None, "app:none"), _rs("web-fff", "x", "app:bad")]
    d = _deployment("app:10", "10")
    assert select_revision(d, history)["metadata"]["name"] == "web-ccc"
    assert select_revision(d, history, 3)["metadata"]["name"] == "web-aaa"
    plan = plan_undo(d, history)
    assert plan.describe() == "revision 10 image app:10 -> revision 7 image app:7"
    template_op, annotations_op = plan.patch
    assert template_op["path"] == "/spec/template"
    assert template_op["value"]["metadata"]["labels"] == {"app": "web"}     # hash label dropped
    assert annotations_op["value"] == {                                     # kubectl's merge
        "deployment.kubernetes.io/revision": "10",
        "kubectl.kubernetes.io/last-applied-configuration": "{}",
        "kubernetes.io/change-cause": "seven"}


def test_equal_ignore_hash_treats_empty_and_missing_alike() -> None:
    from deploytui.actions.undo import equal_ignore_hash

    a = {"metadata": {"labels": {"pod-template-hash": "abc"}, "annotations": {}},
         "spec": {"containers": [{"name": "app", "image": "x:1", "env": []}]}}
    b = {"metadata": {}, "spec": {"containers": [{"name": "app", "image": "x:1"}]}}
    assert equal_ignore_hash(a, b)
    assert not equal_ignore_hash(a, {"metadata": {}, "spec": {"containers": [
        {"name": "app", "image": "x:2"}]}})


def test_lease_is_renewed_while_held_and_released_after(sim: KubeSim) -> None:
    sim.add_deployment("shop", "cart", image="cart:1", replicas=1)
    settings = settings_for(sim, lease_duration_seconds=3)
    client = connect(settings)
    alice = LeaseLocker(client, settings)
    bob = LeaseLocker(connect(settings), settings)
    with alice.hold("shop/cart", "alice@laptop") as renew:
        first = sim.get_object("leases", "shop", "deploytui-cart")
        assert first is not None and first["spec"]["holderIdentity"] == "alice@laptop"
        assert first["spec"]["leaseDurationSeconds"] == 3
        time.sleep(1.6)                               # the keep-alive renews every second
        second = sim.get_object("leases", "shop", "deploytui-cart")
        assert second is not None
        assert second["spec"]["renewTime"] > first["spec"]["renewTime"]
        assert second["spec"]["acquireTime"] == first["spec"]["acquireTime"]
        renew()                                       # the action's own renewal works too
        with pytest.raises(ActionRefused, match="held by alice@laptop since"), \
                bob.hold("shop/cart", "bob@desk"):
            pass
        with pytest.raises(ActionRefused, match=r"held by you \(alice@laptop\) in another console"), \
                bob.hold("shop/cart", "alice@laptop"):
            pass
    assert sim.get_object("leases", "shop", "deploytui-cart") is None
    with bob.hold("shop/cart", "bob@desk"):          # free again
        lease = sim.get_object("leases", "shop", "deploytui-cart")
        assert lease is not None and lease["spec"]["holderIdentity"] == "bob@desk"
    client.close()
