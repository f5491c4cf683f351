"""The simulated fleet behind ``deploytui demo`` and the test suite.

* :mod:`deploytui.demo.services` — simulated services over HTTP (health formats, Prometheus
  metrics, steering knobs), many per listening socket;
* :mod:`deploytui.demo.kube` — a simulated Kubernetes API;
* :mod:`deploytui.demo.scenarios` — what happens to the fleet over time;
* :mod:`deploytui.demo.fleet` — :class:`Fleet`, all of it on one background loop, plus the
  deploytui config, kubeconfig and port registry describing it.

``from deploytui.demo import Fleet`` works; the import is lazy so that importing
``deploytui.demo.kube`` alone stays cheap.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Fleet", "SimService"]


def __getattr__(name: str) -> Any:
    if name == "Fleet":
        from deploytui.demo.fleet import Fleet

        return Fleet
    if name == "SimService":
        from deploytui.demo.services import SimService

        return SimService
    raise AttributeError(f"module 'deploytui.demo' has no attribute {name!r}")
