"""A kube-state-metrics style ``/metrics`` page (Prometheus text format 0.0.4).

Every series carries ``namespace``; deployment and pod series also carry ``deployment`` and
``service`` (the deployment's ``app`` label, else its name) so fleet-wide queries such as
``sum by (service) (rate(kube_pod_container_status_restarts_total[5m]))`` work.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deploytui.demo.kube.store import Store

__all__ = ["render_metrics"]

_HELP = {
    "kube_deployment_spec_replicas": "Number of desired pods for a deployment.",
    "kube_deployment_status_replicas": "The number of replicas per deployment.",
    "kube_deployment_status_replicas_ready": "The number of ready replicas per deployment.",
    "kube_deployment_status_replicas_available": "The number of available replicas per deployment.",
    "kube_deployment_status_replicas_updated": "The number of updated replicas per deployment.",
    "kube_deployment_status_replicas_unavailable": "The number of unavailable replicas per deployment.",
    "kube_deployment_status_observed_generation": "The generation observed by the deployment controller.",
    "kube_deployment_metadata_generation": "Sequence number representing a specific generation of the desired state.",
    "kube_pod_container_status_restarts_total": "The number of container restarts per container.",
    "kube_pod_container_status_waiting_reason": "Describes the reason the container is currently in waiting state.",
    "kube_pod_status_ready": "Describes whether the pod is ready to serve requests.",
    "kube_pod_status_phase": "The pods current phase.",
}
_TYPES = {"kube_pod_container_status_restarts_total": "counter"}


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(pairs: Mapping[str, str]) -> str:
    return "{" + ",".join(f'{k}="{_escape(str(v))}"' for k, v in pairs.items()) + "}"


def _service(d: Mapping[str, Any]) -> str:
    labels = d["metadata"].get("labels") or {}
    template_labels = ((d.get("spec") or {}).get("template") or {}).get("metadata", {}).get("labels") or {}
    return labels.get("app") or template_labels.get("app") or d["metadata"]["name"]


def render_metrics(store: Store) -> str:
    """The whole page, rendered from a consistent snapshot of the store."""
    with store.lock:
        deployments = store.list("deployments")
        replica_sets = store.list("replicasets")
        pods = store.list("pods")
    series: dict[str, list[str]] = {name: [] for name in _HELP}
    by_uid = {d["metadata"]["uid"]: d for d in deployments}
    rs_owner: dict[str, Mapping[str, Any]] = {}
    for rs in replica_sets:
        for ref in rs["metadata"].get("ownerReferences") or []:
            if ref.get("controller") and ref.get("uid") in by_uid:
                rs_owner[rs["metadata"]["uid"]] = by_uid[ref["uid"]]
    for d in deployments:
        base = {"namespace": d["metadata"]["namespace"], "deployment": d["metadata"]["name"], "service": _service(d)}
        label = _labels(base)
        status = d.get("status") or {}
        series["kube_deployment_spec_replicas"].append(f"kube_deployment_spec_replicas{label} {d['spec'].get('replicas', 1)}")
        for key, name in (
            ("replicas", "kube_deployment_status_replicas"),
            ("readyReplicas", "kube_deployment_status_replicas_ready"),
            ("availableReplicas", "kube_deployment_status_replicas_available"),
            ("updatedReplicas", "kube_deployment_status_replicas_updated"),
            ("unavailableReplicas", "kube_deployment_status_replicas_unavailable"),
            ("observedGeneration", "kube_deployment_status_observed_generation"),
        ):
            series[name].append(f"{name}{label} {int(status.get(key) or 0)}")
        series["kube_deployment_metadata_generation"].append(
            f"kube_deployment_metadata_generation{label} {d['metadata'].get('generation', 1)}"
        )
    for pod in pods:
        meta = pod["metadata"]
        base = {"namespace": meta["namespace"], "pod": meta["name"]}
        owner = None
        for ref in meta.get("ownerReferences") or []:
            if ref.get("controller"):
                owner = rs_owner.get(ref.get("uid", ""))
        if owner is not None:
            base.update(deployment=owner["metadata"]["name"], service=_service(owner))
        status = pod.get("status") or {}
        ready = next((c.get("status") == "True" for c in status.get("conditions") or [] if c.get("type") == "Ready"), False)
        for cond, value in (("true", ready), ("false", not ready)):
            series["kube_pod_status_ready"].append(f"kube_pod_status_ready{_labels({**base, 'condition': cond})} {int(value)}")
        phase = status.get("phase", "Pending")
        for p in ("Pending", "Running", "Succeeded", "Failed", "Unknown"):
            series["kube_pod_status_phase"].append(f"kube_pod_status_phase{_labels({**base, 'phase': p})} {int(p == phase)}")
        for cs in status.get("containerStatuses") or []:
            labels = {**base, "container": cs.get("name", "")}
            series["kube_pod_container_status_restarts_total"].append(
                f"kube_pod_container_status_restarts_total{_labels(labels)} {int(cs.get('restartCount') or 0)}"
            )
            reason = ((cs.get("state") or {}).get("waiting") or {}).get("reason")
            if reason:
                series["kube_pod_container_status_waiting_reason"].append(
                    f"kube_pod_container_status_waiting_reason{_labels({**labels, 'reason': reason})} 1"
                )
    out: list[str] = []
    for name, lines in series.items():
        out.append(f"# HELP {name} {_HELP[name]}")
        out.append(f"# TYPE {name} {_TYPES.get(name, 'gauge')}")
        out.extend(lines)
    return "\n".join(out) + "\n"
