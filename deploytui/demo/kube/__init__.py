"""A simulated Kubernetes API (apps/v1, core/v1, coordination.k8s.io/v1) over real HTTP on
127.0.0.1, with a Deployment controller, for ``deploytui demo`` and the test suite."""

from __future__ import annotations

from deploytui.demo.kube.pods import ImageBehavior
from deploytui.demo.kube.sim import DeploymentView, KubeSim
from deploytui.demo.kube.thread import KubeSimThread

__all__ = ["DeploymentView", "ImageBehavior", "KubeSim", "KubeSimThread"]
