"""Builders, defaulting and validation of the objects the simulated API stores."""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from typing import Any

from deploytui.demo.kube.selectors import label_matcher, selector_string
from deploytui.demo.kube.util import ApiError, fnv32a, safe_encode, timestamp

__all__ = [
    "CHANGE_CAUSE",
    "HASH_LABEL",
    "REVISION",
    "REVISION_HISTORY",
    "default_deployment",
    "default_pod_spec",
    "new_event",
    "new_namespace",
    "new_pod",
    "new_replica_set",
    "new_service",
    "owner_ref",
    "scale_of",
    "template_hash",
]

REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
CHANGE_CAUSE = "kubernetes.io/change-cause"
HASH_LABEL = "pod-template-hash"

_RAND = random.Random(0x5EED)
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def random_suffix(n: int = 5) -> str:
    return "".join(_RAND.choice(_SUFFIX_ALPHABET) for _ in range(n))


def default_pod_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """The defaults the apiserver fills into a pod spec (so templates compare as on a cluster)."""
    for container in spec.get("containers") or []:
        image = str(container.get("image", ""))
        tag = image.rsplit("/", 1)[-1]
        latest = "@" not in tag and (":" not in tag or tag.endswith(":latest"))
        container.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
        container.setdefault("resources", {})
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        for port in container.get("ports") or []:
            port.setdefault("protocol", "TCP")
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    return spec


def _validate_template(kind: str, name: str, spec: Mapping[str, Any]) -> None:
    template = spec.get("template") or {}
    containers = (template.get("spec") or {}).get("containers") or []
    if not containers:
        raise ApiError.invalid(kind, name, "spec.template.spec.containers: Required value")
    for n, c in enumerate(containers):
        if not c.get("name"):
            raise ApiError.invalid(kind, name, f"spec.template.spec.containers[{n}].name: Required value")
        if not c.get("image"):
            raise ApiError.invalid(kind, name, f"spec.template.spec.containers[{n}].image: Required value")
    selector = spec.get("selector")
    if not selector or not (selector.get("matchLabels") or selector.get("matchExpressions")):
        raise ApiError.invalid(kind, name, "spec.selector: Required value")
    matcher = label_matcher(selector_string(selector))
    if matcher is not None and not matcher(template):
        raise ApiError.invalid(
            kind, name, "spec.template.metadata.labels: Invalid value: `selector` does not match template `labels`"
        )


def default_deployment(obj: dict[str, Any]) -> dict[str, Any]:
    """Apply apps/v1 Deployment defaults and validate; raises ``ApiError`` 422."""
    meta = obj.setdefault("metadata", {})
    name = meta.get("name", "")
    obj["apiVersion"], obj["kind"] = "apps/v1", "Deployment"
    spec = obj.setdefault("spec", {})
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    if not isinstance(spec["replicas"], int) or spec["replicas"] < 0:
        raise ApiError.invalid("Deployment", name, "spec.replicas: Invalid value: must be greater than or equal to 0")
    strategy = spec.setdefault("strategy", {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = strategy.setdefault("rollingUpdate", {})
        rolling.setdefault("maxSurge", "25%")
        rolling.setdefault("maxUnavailable", "25%")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    template = spec.setdefault("template", {})
    template.setdefault("metadata", {})
    template["metadata"].pop("creationTimestamp", None)
    default_pod_spec(template.setdefault("spec", {}))
    _validate_template("Deployment", name, spec)
    obj.setdefault("status", {})
    return obj


def template_hash(template: Mapping[str, Any], collision_count: int = 0) -> str:
    """The ``pod-template-hash`` of a template (fnv32a of its canonical JSON, safe-encoded)."""
    data = json.dumps(template, sort_keys=True, separators=(",", ":")).encode()
    if collision_count:
        data += str(collision_count).encode()
    return safe_encode(fnv32a(data))


def owner_ref(owner: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def new_replica_set(deployment: Mapping[str, Any], pod_hash: str, replicas: int, revision: int) -> dict[str, Any]:
    meta = deployment["metadata"]
    spec = deployment["spec"]
    template = json.loads(json.dumps(spec["template"]))
    template["metadata"].setdefault("labels", {})[HASH_LABEL] = pod_hash
    selector = json.loads(json.dumps(spec["selector"]))
    selector.setdefault("matchLabels", {})[HASH_LABEL] = pod_hash
    labels = dict(template["metadata"]["labels"])
    annotations = {
        k: v
        for k, v in (meta.get("annotations") or {}).items()
        if not k.startswith("kubectl.kubernetes.io/last-applied") and k not in (REVISION, REVISION_HISTORY)
    }
    annotations[REVISION] = str(revision)
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": f"{meta['name']}-{pod_hash}",
            "namespace": meta["namespace"],
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [owner_ref(deployment)],
        },
        "spec": {
            "replicas": replicas,
            "minReadySeconds": spec.get("minReadySeconds", 0),
            "selector": selector,
            "template": template,
        },
        "status": {"replicas": 0, "observedGeneration": 0},
    }


def new_pod(rs: Mapping[str, Any], now: float, ip: str, node: str = "demo-node-1") -> dict[str, Any]:
    template = rs["spec"]["template"]
    spec = json.loads(json.dumps(template["spec"]))
    spec["nodeName"] = node
    spec.setdefault("serviceAccountName", "default")
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("priority", 0)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{rs['metadata']['name']}-{random_suffix()}",
            "generateName": f"{rs['metadata']['name']}-",
            "namespace": rs["metadata"]["namespace"],
            "labels": dict(template["metadata"].get("labels") or {}),
            "annotations": dict(template["metadata"].get("annotations") or {}),
            "ownerReferences": [owner_ref(rs)],
        },
        "spec": spec,
        "status": {
            "phase": "Pending",
            "qosClass": "BestEffort",
            "hostIP": "10.0.0.1",
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "startTime": timestamp(now),
        },
    }


def new_event(
    involved: Mapping[str, Any], *, reason: str, message: str, type: str, component: str, now: float
) -> dict[str, Any]:
    meta = involved["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": f"{meta['name']}.{_event_suffix(now)}",
            "namespace": meta.get("namespace") or "default",
        },
        "involvedObject": {
            "apiVersion": involved.get("apiVersion"),
            "kind": involved.get("kind"),
            "name": meta["name"],
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
        },
        "reason": reason,
        "message": message,
        "type": type,
        "count": 1,
        "firstTimestamp": timestamp(now),
        "lastTimestamp": timestamp(now),
        "eventTime": None,
        "source": {"component": component},
        "reportingComponent": component,
        "reportingInstance": "",
    }


_last_event_ns = 0


def _event_suffix(now: float) -> str:
    """Hex nanoseconds, strictly increasing, like client-go's event names."""
    global _last_event_ns
    _last_event_ns = max(int(now * 1e9), _last_event_ns + 1)
    return f"{_last_event_ns:x}"


def new_namespace(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }


def new_service(
    namespace: str, name: str, ports: list[dict[str, Any]], type: str, selector: Mapping[str, str] | None, cluster_ip: str
) -> dict[str, Any]:
    norm: list[dict[str, Any]] = []
    for n, p in enumerate(ports):
        port = dict(p)
        port.setdefault("protocol", "TCP")
        port.setdefault("targetPort", port.get("port"))
        if type in ("NodePort", "LoadBalancer") and "nodePort" not in port:
            port["nodePort"] = 30000 + (fnv32a(f"{namespace}/{name}/{n}".encode()) % 2768)
        norm.append(port)
    spec: dict[str, Any] = {
        "type": type,
        "ports": norm,
        "clusterIP": cluster_ip,
        "clusterIPs": [cluster_ip],
        "sessionAffinity": "None",
        "ipFamilies": ["IPv4"],
        "ipFamilyPolicy": "SingleStack",
        "internalTrafficPolicy": "Cluster",
    }
    if selector:
        spec["selector"] = dict(selector)
    if type in ("NodePort", "LoadBalancer"):
        spec["externalTrafficPolicy"] = "Cluster"
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
        "status": {"loadBalancer": {}},
    }


def scale_of(deployment: Mapping[str, Any]) -> dict[str, Any]:
    """The ``autoscaling/v1`` Scale view of a deployment."""
    meta = deployment["metadata"]
    status = deployment.get("status") or {}
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"],
            "creationTimestamp": meta["creationTimestamp"],
        },
        "spec": {"replicas": deployment["spec"].get("replicas", 1)},
        "status": {
            "replicas": status.get("replicas", 0),
            "selector": selector_string(deployment["spec"].get("selector")),
        },
    }

