"""Kubernetes Services (nodePort, port) and pod hostPorts, read with the official client from
the simulated Kubernetes API."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config

from deploytui.config import Settings, load_config
from deploytui.demo.kube import KubeSim, KubeSimThread
from deploytui.sources import ports


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[KubeSim]:
    with KubeSimThread(controller_interval=0.05) as sim:
        sim.set_default_ready_seconds(0.1)
        sim.write_kubeconfig(tmp_path / "kubeconfig")
        yield sim


def settings(tmp_path: Path, extra: str = "") -> Settings:
    path = tmp_path / "deploytui.toml"
    path.write_text(f"""\
[kubernetes]
enabled = true
kubeconfig = "kubeconfig"
{extra}
[ports]
probe = false
allowed = {{ prod = "5000-5999", staging = "4000-4999" }}
""")
    return load_config(path)


def create_pod_with_host_port(sim: KubeSim, namespace: str, name: str, host_port: int,
                              labels: dict[str, str]) -> None:
    api = config.new_client_from_config(config_file=str(sim.kubeconfig))
    try:
        client.CoreV1Api(api).create_namespaced_pod(namespace, {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {"nodeName": "node-1", "containers": [{
                "name": "app", "image": "agent:1",
                "ports": [{"containerPort": 9100, "hostPort": host_port, "protocol": "TCP"}]}]},
        })
    finally:
        api.close()


def test_services_node_ports_and_host_ports(tmp_path: Path, sim: KubeSim) -> None:
    sim.add_service("shop", "checkout", type="NodePort",
                    ports=[{"port": 80, "targetPort": 8080, "nodePort": 30080}])
    sim.add_service("staging", "cart", type="NodePort",
                    ports=[{"port": 80, "targetPort": 8080, "nodePort": 30080}])
    sim.add_service("shop", "search", ports=[{"port": 80, "targetPort": 9200}])
    sim.ensure_namespace("monitoring")
    for name in ("agent-a", "agent-b"):  # two replicas of one daemon: one claim
        create_pod_with_host_port(sim, "monitoring", name, 9100, {"app": "node-agent"})
    s = settings(tmp_path, '[[services]]\nname = "checkout"\nenv = "prod"\n'
                           'health_url = "http://127.0.0.1:1/h"\ndeployment = "shop/checkout"\n')

    allocs = ports.kube_allocations(s)
    got = {(a.service, a.env, a.kind, a.start) for a in allocs}
    assert ("checkout", "prod", "nodePort", 30080) in got  # env from [[services]] deployment
    assert ("cart", "staging", "nodePort", 30080) in got   # env from the namespace
    assert ("search", "shop", "service port", 80) in got
    host_ports = [a for a in allocs if a.kind == "hostPort"]
    assert [(a.service, a.start, a.host) for a in host_ports] == [("node-agent", 9100, "node-1")]
    node = next(a for a in allocs if a.service == "checkout" and a.kind == "nodePort")
    assert node.where == "Service shop/checkout: spec.ports[0].nodePort" and node.target == "8080"

    snap = asyncio.run(ports.collect(s))
    (dup,) = [c for c in snap.conflicts if c.kind == "duplicate_nodeport"]
    assert {p.where for p in dup.parties} == {"Service shop/checkout: spec.ports[0].nodePort",
                                              "Service staging/cart: spec.ports[0].nodePort"}
    # every Service has port 80 on its own cluster IP: that is not a conflict
    assert {c.kind for c in snap.conflicts} == {"duplicate_nodeport"}
    assert snap.errors == ()
    # cluster-wide: the clash shows when either party's env is selected
    assert len(snap.filtered("prod").conflicts) == len(snap.filtered("staging").conflicts) == 1


def test_namespaces_limit_pods_but_node_ports_stay_cluster_wide(tmp_path: Path, sim: KubeSim) -> None:
    sim.add_service("a", "one", type="NodePort", ports=[{"port": 80, "nodePort": 31000}])
    sim.add_service("b", "two", type="NodePort", ports=[{"port": 80, "nodePort": 31000}])
    s = settings(tmp_path, 'namespaces = ["a"]\n')
    assert s.kubernetes.namespaces == ("a",)
    snap = asyncio.run(ports.collect(s))
    assert [c.kind for c in snap.conflicts] == ["duplicate_nodeport"]


def test_unreachable_cluster_is_an_error_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "kubeconfig").write_text(
        '{"apiVersion": "v1", "kind": "Config", "current-context": "x", '
        '"clusters": [{"name": "x", "cluster": {"server": "http://127.0.0.1:9"}}], '
        '"users": [{"name": "x", "user": {"token": "t"}}], '
        '"contexts": [{"name": "x", "context": {"cluster": "x", "user": "x"}}]}')
    s = settings(tmp_path, 'request_timeout = 2.0\n[ports.allocations.web.prod]\nstart = 5050\n')
    snap = asyncio.run(ports.collect(s))
    assert snap.errors and snap.errors[0].startswith("kubernetes:")
    assert [r.allocation.label for r in snap.rows] == ["web@prod"]  # the config's still show


def test_bad_kubeconfig(tmp_path: Path) -> None:
    (tmp_path / "kubeconfig").write_text("not: [a kubeconfig")
    snap = asyncio.run(ports.collect(settings(tmp_path)))
    assert "cannot load the kubeconfig" in snap.errors[0]


async def test_console_source_caches_kubernetes_until_poked(tmp_path: Path, sim: KubeSim) -> None:
    sim.add_service("a", "one", type="NodePort", ports=[{"port": 80, "nodePort": 31001}])
    source = ports.PortsSource(settings(tmp_path), interval=60.0, kube_ttl=3600.0)
    first = await source.poll()
    assert [r.allocation.start for r in first.rows if r.allocation.kind == "nodePort"] == [31001]
    sim.add_service("b", "two", type="NodePort", ports=[{"port": 80, "nodePort": 31002}])
    cached = await source.poll()
    assert [r.allocation.start for r in cached.rows if r.allocation.kind == "nodePort"] == [31001]
    source.poke()
    fresh = await source.poll()
    assert sorted(r.allocation.start for r in fresh.rows
                  if r.allocation.kind == "nodePort") == [31001, 31002]
