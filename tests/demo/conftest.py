"""Fixtures for the simulated fleet: ``kube_sim`` runs a KubeSim on its own loop in a thread."""

from __future__ import annotations

from collections.abc import Iterator
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
