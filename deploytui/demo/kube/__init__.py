"""A simulated Kubernetes API over real HTTP on 127.0.0.1, for ``deploytui demo`` and the tests.

It serves apps/v1 Deployments (+ ``scale`` / ``status``) and ReplicaSets, core/v1 Pods, Events,
Services and Namespaces, coordination.k8s.io/v1 Leases and authorization.k8s.io/v1
SelfSubjectAccessReviews, with discovery, watch (resume, bookmarks, 410 Gone), the three patch
types, Table responses for ``kubectl get``, a Deployment controller (rolling updates, rollbacks,
progress deadlines), kube-state-metrics style ``/metrics``, an RBAC stand-in and fault injection.
The official ``kubernetes`` client and ``kubectl`` accept it.

    with KubeSimThread(controller_interval=0.1) as sim:       # its own loop, in a thread
        sim.add_deployment("prod", "checkout", image="checkout:1.4", replicas=3)
        sim.set_image_behavior("checkout:1.5", crashloop=True)
        kubeconfig = sim.write_kubeconfig(tmp_path / "kubeconfig")
        sim.set_image("prod", "checkout", "checkout:1.5", change_cause="release 1.5")

Inside a running loop use ``KubeSim`` directly: ``await sim.start()`` ... ``await sim.stop()``.
Thread-safety: one ``threading.RLock`` guards the store (see ``store.py``), so the synchronous
methods may be called from any thread.
"""

from __future__ import annotations

from deploytui.demo.kube.pods import ImageBehavior
from deploytui.demo.kube.sim import DeploymentView, KubeSim
from deploytui.demo.kube.thread import KubeSimThread

__all__ = ["DeploymentView", "ImageBehavior", "KubeSim", "KubeSimThread"]
