"""Real ``kubectl`` against the simulated API: what it prints and does matches a real cluster."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from deploytui.demo.kube import KubeSim
from tests.conftest import require_binary


@pytest.fixture
def kubectl(kube_sim: KubeSim, tmp_path: Path) -> Any:
    binary = require_binary("kubectl", "/usr/bin/kubectl")
    assert kube_sim.kubeconfig is not None

    def run(*args: str, timeout: float = 30.0, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [binary, "--kubeconfig", str(kube_sim.kubeconfig), "--cache-dir", str(tmp_path / "kube-cache"), *args]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        if check and result.returncode != 0:
            pytest.fail(f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result

    return run


def _table(text: str) -> list[list[str]]:
    return [line.split() for line in text.strip().splitlines()]


def test_get_deployments_and_pods(kube_sim: KubeSim, kubectl: Any) -> None:
    kube_sim.add_deployment("default", "web", image="nginx:1.25", replicas=3)
    rows = _table(kubectl("get", "deployments").stdout)
    assert rows[0] == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert rows[1][:4] == ["web", "3/3", "3", "3"]

    wide = _table(kubectl("get", "deploy", "-o", "wide").stdout)
    assert wide[0] == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"]
    assert wide[1][5:] == ["app", "nginx:1.25", "app=web"]

    pods = _table(kubectl("get", "pods").stdout)
    assert pods[0] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert len(pods) == 4
    assert all(row[0].startswith("web-") and row[1:4] == ["1/1", "Running", "0"] for row in pods[1:])

    rs = _table(kubectl("get", "rs").stdout)
    assert rs[0] == ["NAME", "DESIRED", "CURRENT", "READY", "AGE"] and rs[1][1:4] == ["3", "3", "3"]

    everywhere = _table(kubectl("get", "deploy", "-A").stdout)
    assert everywhere[0][:2] == ["NAMESPACE", "NAME"] and everywhere[1][:2] == ["default", "web"]

    as_json = json.loads(kubectl("get", "deployment", "web", "-o", "json").stdout)
    assert as_json["status"]["readyReplicas"] == 3


def test_get_other_kinds(kube_sim: KubeSim, kubectl: Any, tmp_path: Path) -> None:
    kube_sim.add_service("default", "web", ports=[{"port": 80, "nodePort": 30080}], type="NodePort")
    services = _table(kubectl("get", "svc").stdout)
    assert services[0] == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    assert services[1][1] == "NodePort" and services[1][4] == "80:30080/TCP"
    assert _table(kubectl("get", "ns").stdout)[0] == ["NAME", "STATUS", "AGE"]
    lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "lock"}, "spec": {"holderIdentity": "alice"}}
    manifest = tmp_path / "lease.json"
    manifest.write_text(json.dumps(lease))
    # The simulated API serves no OpenAPI document, so client-side validation is switched off.
    assert kubectl("create", "-f", str(manifest), "--validate=false").stdout.strip() == "lease.coordination.k8s.io/lock created"
    leases = _table(kubectl("get", "leases").stdout)
    assert leases[0] == ["NAME", "HOLDER", "AGE"] and leases[1][:2] == ["lock", "alice"]


def test_crashloop_pods_show_backoff(kube_sim: KubeSim, kubectl: Any, wait_for: Any) -> None:
    kube_sim.set_image_behavior("api:bad", crashloop=True, ready_seconds=0.1, restart_seconds=0.3)
    kube_sim.add_deployment("default", "api", image="api:bad", replicas=1)
    wait_for(
        lambda: kube_sim.list_objects("Pod")[0]["status"]["containerStatuses"][0]["restartCount"] >= 2,
        what="restarts to grow",
    )
    row = _table(kubectl("get", "pods").stdout)[1]
    assert row[1:3] == ["0/1", "CrashLoopBackOff"]
    assert int(row[3]) >= 2


def test_scale(kube_sim: KubeSim, kubectl: Any, wait_for: Any) -> None:
    kube_sim.add_deployment("default", "web", image="web:1", replicas=3)
    assert kubectl("scale", "deployment/web", "--replicas=5").stdout.strip() == "deployment.apps/web scaled"
    wait_for(lambda: kube_sim.deployment_view("default", "web").ready == 5, what="5 ready replicas")
    assert len(kube_sim.list_objects("Pod", "default")) == 5
    assert kube_sim.deployment_view("default", "web").revision == 1


def test_rollout_status_follows_an_unfinished_rollout(kube_sim: KubeSim, kubectl: Any) -> None:
    kube_sim.set_image_behavior("web:2", ready_seconds=0.4)
    kube_sim.add_deployment("default", "web", image="web:1", replicas=4, max_surge=1, max_unavailable=0)
    kube_sim.set_image("default", "web", "web:2")
    result = kubectl("rollout", "status", "deployment/web", "--timeout=60s", timeout=90)
    assert 'Waiting for deployment "web" rollout to finish' in result.stdout
    assert result.stdout.strip().endswith('deployment "web" successfully rolled out')
    view = kube_sim.deployment_view("default", "web")
    assert view.images == (("web:2", 4),) and view.complete


def test_rollout_status_reports_exceeded_progress_deadline(kube_sim: KubeSim, kubectl: Any) -> None:
    kube_sim.set_image_behavior("web:bad", crashloop=True, ready_seconds=0.1)
    kube_sim.add_deployment("default", "web", image="web:1", replicas=3, progress_deadline_seconds=2)
    kube_sim.set_image("default", "web", "web:bad")
    result = kubectl("rollout", "status", "deployment/web", "--timeout=60s", timeout=90, check=False)
    assert result.returncode != 0
    assert 'deployment "web" exceeded its progress deadline' in result.stderr
    view = kube_sim.deployment_view("default", "web")
    # maxSurge 25% of 3 rounds up to 1, maxUnavailable 25% of 3 rounds down to 0: the old
    # ReplicaSet keeps all 3 pods, the new one has 1 crash-looping pod.
    assert view.deadline_exceeded and view.images == (("web:1", 3),)
    assert [spec for _, _, spec in view.replica_sets] == [3, 1]


def test_rollout_history_and_undo(kube_sim: KubeSim, kubectl: Any, wait_for: Any) -> None:
    kube_sim.add_deployment("default", "web", image="web:1", replicas=2, change_cause="deploy v1")
    for n in (2, 3):
        kube_sim.set_image("default", "web", f"web:{n}", change_cause=f"deploy v{n}")
        wait_for(lambda n=n: kube_sim.deployment_view("default", "web").images == ((f"web:{n}", 2),), what=f"web:{n}")
    history = _table(kubectl("rollout", "history", "deployment/web").stdout)
    assert history[1] == ["REVISION", "CHANGE-CAUSE"]
    assert history[2:] == [["1", "deploy", "v1"], ["2", "deploy", "v2"], ["3", "deploy", "v3"]]
    detail = kubectl("rollout", "history", "deployment/web", "--revision=2").stdout
    assert "web:2" in detail

    assert kubectl("rollout", "undo", "deployment/web").stdout.strip() == "deployment.apps/web rolled back"
    kubectl("rollout", "status", "deployment/web", "--timeout=60s", timeout=90)
    view = kube_sim.deployment_view("default", "web")
    assert view.images == (("web:2", 2),) and view.revision == 4
    rs_v2 = next(rs for rs in kube_sim.list_objects("ReplicaSet") if rs["spec"]["template"]["spec"]["containers"][0]["image"] == "web:2")
    annotations = rs_v2["metadata"]["annotations"]
    assert annotations["deployment.kubernetes.io/revision"] == "4"
    assert annotations["deployment.kubernetes.io/revision-history"] == "2"
    assert annotations["kubernetes.io/change-cause"] == "deploy v2"
    deployment = kube_sim.get_object("Deployment", "default", "web")
    assert deployment is not None and deployment["metadata"]["annotations"]["kubernetes.io/change-cause"] == "deploy v2"
    history = _table(kubectl("rollout", "history", "deployment/web").stdout)
    assert [row[0] for row in history[2:]] == ["1", "3", "4"]

    kubectl("rollout", "undo", "deployment/web", "--to-revision=1")
    kubectl("rollout", "status", "deployment/web", "--timeout=60s", timeout=90)
    view = kube_sim.deployment_view("default", "web")
    assert view.images == (("web:1", 2),) and view.revision == 5
    assert [row[0] for row in _table(kubectl("rollout", "history", "deployment/web").stdout)[2:]] == ["3", "4", "5"]
    # As on a real cluster, undoing to the current template is skipped.
    same = kubectl("rollout", "undo", "deployment/web", "--to-revision=5")
    assert "skipped rollback" in same.stdout + same.stderr


def test_rollout_restart(kube_sim: KubeSim, kubectl: Any) -> None:
    kube_sim.add_deployment("default", "web", image="web:1", replicas=2)
    before = {p["metadata"]["name"] for p in kube_sim.list_objects("Pod")}
    assert kubectl("rollout", "restart", "deployment/web").stdout.strip() == "deployment.apps/web restarted"
    kubectl("rollout", "status", "deployment/web", "--timeout=60s", timeout=90)
    deployment = kube_sim.get_object("Deployment", "default", "web")
    assert deployment is not None
    assert "kubectl.kubernetes.io/restartedAt" in deployment["spec"]["template"]["metadata"]["annotations"]
    after = {p["metadata"]["name"] for p in kube_sim.list_objects("Pod")}
    assert len(after) == 2 and not (before & after)
    assert kube_sim.deployment_view("default", "web").revision == 2


def test_get_events_after_a_rollout(kube_sim: KubeSim, kubectl: Any, wait_for: Any) -> None:
    kube_sim.add_deployment("default", "web", image="web:1", replicas=2)
    kube_sim.set_image("default", "web", "web:2")
    wait_for(lambda: kube_sim.deployment_view("default", "web").complete and kube_sim.deployment_view("default", "web").revision == 2, what="rollout")
    out = kubectl("get", "events", "--field-selector", "involvedObject.kind=Deployment").stdout
    lines = out.strip().splitlines()
    assert lines[0].split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert any("ScalingReplicaSet" in line and "deployment/web" in line and "Scaled up replica set web-" in line for line in lines)


def test_auth_can_i_follows_permissions(kube_sim: KubeSim, kubectl: Any) -> None:
    assert kubectl("auth", "can-i", "patch", "deployments").stdout.strip() == "yes"
    kube_sim.set_permission("update", "deployments/scale", allowed=False)
    result = kubectl("auth", "can-i", "update", "deployments", "--subresource=scale", check=False)
    assert (result.returncode, result.stdout.strip()) == (1, "no")


def test_get_events_prefers_core_and_serves_events_k8s_io(kube_sim: KubeSim, kubectl: Any, wait_for: Any) -> None:
    kube_sim.add_deployment("default", "web", image="web:1", replicas=1, settled=False)
    wait_for(lambda: kube_sim.deployment_view("default", "web").complete, what="rollout")
    core = json.loads(kubectl("get", "events", "-o", "json").stdout)
    assert {item["apiVersion"] for item in core["items"]} == {"v1"}
    v1 = json.loads(kubectl("get", "events.v1.events.k8s.io", "-o", "json").stdout)
    assert v1["items"] and all("note" in item and "regarding" in item for item in v1["items"])
    table = kubectl("get", "events.v1.events.k8s.io").stdout.splitlines()
    assert table[0].split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
