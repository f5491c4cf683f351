"""Fixtures for the simulated fleet: ``kube_sim`` runs a KubeSim on its own loop in a thread."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from deploytui.demo.kube import KubeSim, KubeSimThread


@pytest.fixture
def kube_sim(tmp_path: Path) -> Iterator[KubeSim]:
    """A started KubeSim (fast controller, pods Ready after 0.2 s) with ``sim.kubeconfig``
    written into ``tmp_path``. Blocking clients run in the test thread."""
    with KubeSimThread(controller_interval=0.05, bookmark_interval=0.3) as sim:
        sim.set_default_ready_seconds(0.2)
        sim.write_kubeconfig(tmp_path / "kubeconfig")
        yield sim


@pytest.fixture
def kube_client(kube_sim: KubeSim) -> Iterator[object]:
    """The official client's ApiClient, configured from the generated kubeconfig."""
    from kubernetes import config

    assert kube_sim.kubeconfig is not None
    api_client = config.new_client_from_config(config_file=str(kube_sim.kubeconfig))
    yield api_client
    api_client.close()


@pytest.fixture
def wait_for() -> Callable[..., object]:
    """``wait_for(predicate, timeout=8, what="...")``: poll until the predicate returns a truthy
    value and return it; fail the test with ``what`` when it never does."""

    def wait(predicate: Callable[[], object], timeout: float = 8.0, what: str = "condition") -> object:
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                pytest.fail(f"timed out waiting for {what}")
            time.sleep(0.02)

    return wait
