"""The Fleet: start/stop hygiene, the files it writes, Kubernetes wiring and the scenarios."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from deploytui.config import load_config
from deploytui.demo.fleet import ALLOWED_PORTS, DEFAULT_SERVICES, Fleet, build_specs
from deploytui.demo.scenarios import SCENARIOS, get_scenario, scenario_lines
from tests.conftest import require_binary
from tests.fleet_fixtures import fleet_fixture, parse_metrics, sample_value  # noqa: F401


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    """Poll until ``condition()`` is truthy; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"gave up waiting for {what}")


def sim_state(fleet: Fleet, env: str, name: str) -> dict[str, Any]:
    return httpx.get(f"{fleet.base_url}/_sim/services/{env}/{name}", timeout=5).json()


def error_share(fleet: Fleet, metrics_url: str, pause: float = 1.0) -> tuple[float, float]:
    """(5xx share, share slower than 5 s) of the traffic between two scrapes."""
    before = parse_metrics(httpx.get(metrics_url, timeout=5).text)
    time.sleep(pause)
    after = parse_metrics(httpx.get(metrics_url, timeout=5).text)

    def delta(name: str, **labels: str) -> float:
        return sample_value(after, name, **labels) - sample_value(before, name, **labels)

    total = delta("http_requests_total")
    errors = delta("http_requests_total", status="500") + delta("http_requests_total", status="503")
    count = delta("http_request_duration_seconds_count")
    slow = count - delta("http_request_duration_seconds_bucket", le="5.0")
    return errors / total, slow / count


def test_start_stop_leaves_nothing_behind(tmp_path: Path) -> None:
    before = set(threading.enumerate())
    fleet = Fleet(workdir=tmp_path / "w").start()
    try:
        assert fleet.running
        assert len(fleet.services) == len(DEFAULT_SERVICES)
        assert all(httpx.get(s.health_url, timeout=5).status_code == 200 for s in fleet.services)
        base = fleet.base_url
    finally:
        fleet.stop()
    assert not fleet.running
    assert set(threading.enumerate()) - before == set()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{base}/metrics/all", timeout=2)
    # The workdir it was given is kept; a temporary one is removed.
    assert (tmp_path / "w" / "deploytui-demo.toml").exists()
    with Fleet(kubernetes=False) as temp:
        workdir = temp.workdir
        assert workdir.exists()
    assert not workdir.exists()


def test_config_file_describes_the_fleet(fleet: Fleet) -> None:
    raw = tomllib.loads(fleet.config_path.read_text())
    assert fleet.config_path.is_absolute() and fleet.kubeconfig_path.is_absolute()
    assert 1.0 <= raw["console"]["refresh_interval"] <= 2.0
    assert raw["prometheus"]["url"] == "" and raw["alertmanager"]["url"] == ""
    settings = load_config(fleet.config_path)  # validates with the real loader
    assert len(settings.services) == len(fleet.services)
    by_key = {(s.env, s.name): s for s in settings.services}
    for svc in fleet.services:
        cfg = by_key[(svc.env, svc.name)]
        assert cfg.health_url == svc.health_url and cfg.metrics_url == svc.metrics_url
        assert cfg.team == svc.team and cfg.expected_version == svc.version
        assert cfg.deployment == (svc.deployment or "")
    assert settings.kubernetes.enabled
    assert Path(settings.kubernetes.kubeconfig) == fleet.kubeconfig_path
    assert set(settings.kubernetes.namespaces) == {"shop", "shop-staging", "shop-dev"}
    assert settings.store_path.parent == fleet.workdir
    assert settings.postmortem_dir.parent == fleet.workdir
    registry = tomllib.loads(Path(settings.ports.registry).read_text())
    for svc in fleet.services:
        entry = registry[svc.name][svc.env]
        assert entry["start"] == entry["end"] == svc.port
        lo, hi = ALLOWED_PORTS[svc.env]
        assert lo <= svc.port <= hi  # type: ignore[operator]
    # The steady registry is clean: no port is declared twice.
    ports = [e["start"] for envs in registry.values() for e in envs.values()]
    assert len(ports) == len(set(ports))


def test_every_deployment_exists_in_kubernetes(fleet: Fleet) -> None:
    assert fleet.kube is not None
    for svc in fleet.services:
        assert svc.deployment
        ns, name = svc.deployment.split("/")
        view = fleet.kube.deployment_view(ns, name)
        assert view.desired >= 1
        assert view.template_images[0].endswith(f":{svc.version}")
    # The sync task hands the pods' version to the health endpoint.
    checkout = fleet.service("checkout", "prod")
    wait_for(lambda: sim_state(fleet, "prod", "checkout")["kube"], "the first kube sync")
    assert httpx.get(checkout.health_url, timeout=5).json()["version"] == "1.4.2"


def test_scaling_to_zero_makes_the_service_unhealthy(fleet: Fleet) -> None:
    svc = fleet.service("notifications", "dev")
    assert httpx.get(svc.health_url, timeout=5).status_code == 200
    kubectl = require_binary("kubectl")
    subprocess.run([kubectl, "--kubeconfig", str(fleet.kubeconfig_path), "-n", "shop-dev",
                    "scale", "deployment/notifications", "--replicas=0"],
                   check=True, capture_output=True, timeout=30)
    wait_for(lambda: httpx.get(svc.health_url, timeout=5).status_code == 503,
             "notifications to turn unhealthy with no pods")


def test_steer_from_another_thread(fleet: Fleet) -> None:
    checkout = fleet.service("checkout", "prod")
    fleet.steer("checkout", "prod", down=True)
    with pytest.raises(httpx.ConnectError):
        httpx.get(checkout.health_url, timeout=5)
    fleet.steer("checkout", "prod", down=False, version="2.0.0")
    assert httpx.get(checkout.health_url, timeout=5).json()["version"] == "2.0.0"
    with pytest.raises(ValueError):
        fleet.steer("checkout", "prod", nonsense=True)


def test_bad_rollout_then_rollback(tmp_path: Path) -> None:
    kubectl = require_binary("kubectl")
    with Fleet(scenario="bad-rollout", time_scale=20.0, workdir=tmp_path / "f") as fleet:
        checkout = fleet.service("checkout", "prod")
        fleet.steer("checkout", "prod", request_rate=5000.0)  # large counts: shares are exact
        wait_for(lambda: sim_state(fleet, "prod", "checkout")["effective"]["error_rate"] > 0.1,
                 "checkout's error rate to pass 10 % after the rollout")
        errors, slow = error_share(fleet, checkout.metrics_url)
        assert errors > 0.10
        assert slow > 0.05  # p95 above 5 s
        assert any("bad-rollout" in message for _, message in fleet.events)
        assert fleet.kube is not None
        view = fleet.kube.deployment_view("shop", "checkout")
        assert view.template_images[0].endswith(":1.5.0") and view.revision == 2
        pods = subprocess.run(
            [kubectl, "--kubeconfig", str(fleet.kubeconfig_path), "get", "pods", "-n", "shop"],
            check=True, capture_output=True, text=True, timeout=30).stdout
        wait_for(lambda: "CrashLoopBackOff" in subprocess.run(
            [kubectl, "--kubeconfig", str(fleet.kubeconfig_path), "get", "pods", "-n", "shop"],
            capture_output=True, text=True, timeout=30).stdout, f"a crash loop in\n{pods}")
        subprocess.run([kubectl, "--kubeconfig", str(fleet.kubeconfig_path), "-n", "shop",
                        "rollout", "undo", "deployment/checkout"],
                       check=True, capture_output=True, timeout=30)
        wait_for(lambda: sim_state(fleet, "prod", "checkout")["effective"]["status"] == "healthy",
                 "checkout to recover after the rollback")
        errors, slow = error_share(fleet, checkout.metrics_url)
        assert errors < 0.05 and slow < 0.05


def test_bad_rollout_without_kubernetes(tmp_path: Path) -> None:
    with Fleet(scenario="bad-rollout", time_scale=20.0, kubernetes=False) as fleet:
        assert fleet.kube is None
        checkout = fleet.service("checkout", "prod")
        fleet.steer("checkout", "prod", request_rate=5000.0)
        wait_for(lambda: sim_state(fleet, "prod", "checkout")["effective"]["error_rate"] > 0.1,
                 "the emulated rollout to raise the error rate")
        errors, _ = error_share(fleet, checkout.metrics_url, pause=0.5)
        assert errors > 0.1
        wait_for(lambda: (sim_state(fleet, "prod", "checkout")["kube"] or {}).get(
            "bad_fraction") == 1.0, "the emulated rollout to finish")
        assert httpx.get(checkout.health_url, timeout=5).json()["version"] == "1.5.0"
        fleet.set_kube_effect("checkout", "prod", None)  # what a rollback would do
        assert sim_state(fleet, "prod", "checkout")["effective"]["status"] == "healthy"


def test_port_clash_registry_and_undeclared_listener(tmp_path: Path) -> None:
    with Fleet(scenario="port-clash", kubernetes=False, workdir=tmp_path / "f") as fleet:
        registry = tomllib.loads(fleet.registry_path.read_text())
        prod = [(name, envs["prod"]) for name, envs in registry.items() if "prod" in envs]
        by_port: dict[int, list[str]] = {}
        for name, entry in prod:
            by_port.setdefault(entry["start"], []).append(name)
        assert any(len(names) == 2 for names in by_port.values())
        staging = [e for envs in registry.values() for env, e in envs.items() if env == "staging"
                   and e["end"] > e["start"]]
        assert any(a is not b and a["start"] <= b["end"] and b["start"] <= a["end"]
                   for a in staging for b in staging)
        assert len(fleet.undeclared_ports) == 1
        port = fleet.undeclared_ports[0]
        declared = {e["start"] for envs in registry.values() for e in envs.values()}
        assert port not in declared
        assert ALLOWED_PORTS["dev"][0] <= port <= ALLOWED_PORTS["dev"][1]
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass  # really listening


def test_flapping_alternates(tmp_path: Path) -> None:
    with Fleet(scenario="flapping", kubernetes=False, time_scale=10.0) as fleet:
        cart = fleet.service("cart", "prod")
        seen: set[int] = set()

        def both() -> bool:
            seen.add(httpx.get(cart.health_url, timeout=5).status_code)
            return {200, 503} <= seen

        wait_for(both, "cart to be seen both healthy and unhealthy")


def test_specs_are_deterministic_and_scale() -> None:
    big = build_specs(5000, seed=7)
    assert big == build_specs(5000, seed=7)
    assert big != build_specs(5000, seed=8)
    assert len({(s.env, s.name) for s in big}) == 5000
    assert not any(s.dedicated_port for s in big)
    assert sum(1 for s in big if s.deployment) == 200
    assert {s.format for s in big} == {"seed", "actuator", "ietf", "plain"}
    small = build_specs(12)
    assert {s.env for s in small} == {"dev", "staging", "prod"}
    assert all(s.dedicated_port and s.deployment for s in small)
    with pytest.raises(ValueError):
        build_specs(5001)


def test_scenarios_are_listed() -> None:
    assert set(SCENARIOS) == {"steady", "bad-rollout", "port-clash", "flapping"}
    lines = scenario_lines()
    assert len(lines) == 4 and all(line.split()[0] in SCENARIOS for line in lines)
    with pytest.raises(ValueError, match="choose one of"):
        get_scenario("meteor-strike")
    with pytest.raises(ValueError):
        Fleet(scenario="meteor-strike")


def test_steady_drift_never_undoes_steering(tmp_path: Path) -> None:
    with Fleet(scenario="steady", kubernetes=False, time_scale=50.0, services=3) as fleet:
        for svc in fleet.services:
            fleet.steer(svc.name, svc.env, latency_ms=250.0)
        wait_for(lambda: fleet.scenario_clock() > 20.0, "four drift rounds")
        for svc in fleet.services:
            state = sim_state(fleet, svc.env, svc.name)
            assert state["knobs"]["latency_ms"] == 250.0
        assert any(sim_state(fleet, s.env, s.name)["effective"]["drift_ms"] != 0.0
                   for s in fleet.services)


def test_a_stopped_fleet_starts_again() -> None:
    fleet = Fleet(services=2, kubernetes=False)
    for _ in range(2):
        with fleet:
            assert httpx.get(fleet.services[0].health_url, timeout=5).status_code == 200
        assert not fleet.running
    fleet.stop()  # idempotent
