"""``meta.k8s.io/v1`` Table responses with the columns ``kubectl get`` shows on a real cluster."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from deploytui.demo.kube.selectors import selector_string
from deploytui.demo.kube.util import format_age, parse_timestamp

__all__ = ["to_table", "wants_table"]

Obj = Mapping[str, Any]
Column = tuple[str, str, int]  # name, type, priority (1 = shown with -o wide)

_COLUMNS: dict[str, list[Column]] = {
    "deployments": [
        ("Name", "string", 0), ("Ready", "string", 0), ("Up-to-date", "integer", 0), ("Available", "integer", 0),
        ("Age", "string", 0), ("Containers", "string", 1), ("Images", "string", 1), ("Selector", "string", 1),
    ],
    "replicasets": [
        ("Name", "string", 0), ("Desired", "integer", 0), ("Current", "integer", 0), ("Ready", "integer", 0),
        ("Age", "string", 0), ("Containers", "string", 1), ("Images", "string", 1), ("Selector", "string", 1),
    ],
    "pods": [
        ("Name", "string", 0), ("Ready", "string", 0), ("Status", "string", 0), ("Restarts", "string", 0),
        ("Age", "string", 0), ("IP", "string", 1), ("Node", "string", 1), ("Nominated Node", "string", 1),
        ("Readiness Gates", "string", 1),
    ],
    "events": [
        ("Last Seen", "string", 0), ("Type", "string", 0), ("Reason", "string", 0), ("Object", "string", 0),
        ("Subobject", "string", 1), ("Source", "string", 1), ("Message", "string", 0), ("First Seen", "string", 1),
        ("Count", "string", 1), ("Name", "string", 1),
    ],
    "services": [
        ("Name", "string", 0), ("Type", "string", 0), ("Cluster-IP", "string", 0), ("External-IP", "string", 0),
        ("Port(s)", "string", 0), ("Age", "string", 0), ("Selector", "string", 1),
    ],
    "namespaces": [("Name", "string", 0), ("Status", "string", 0), ("Age", "string", 0)],
    "leases": [("Name", "string", 0), ("Holder", "string", 0), ("Age", "string", 0)],
}

_DESCRIPTIONS = {"Name": "Name must be unique within a namespace.", "Age": "CreationTimestamp is a timestamp representing the server time when this object was created."}


def wants_table(accept: str) -> bool:
    """True when the Accept header asks for ``as=Table`` (kubectl get does)."""
    for part in accept.split(","):
        params = {p.split("=", 1)[0].strip(): p.split("=", 1)[1].strip() for p in part.split(";")[1:] if "=" in p}
        if params.get("as") == "Table" and params.get("g") == "meta.k8s.io":
            return True
    return False


def _age(value: str | None, now: float) -> str:
    t = parse_timestamp(value)
    return "<unknown>" if t is None else format_age(now - t)


def _containers(template_spec: Mapping[str, Any]) -> tuple[str, str]:
    containers = template_spec.get("containers") or []
    return ",".join(c.get("name", "") for c in containers), ",".join(c.get("image", "") for c in containers)


def _deployment(o: Obj, now: float) -> list[Any]:
    spec, status = o.get("spec") or {}, o.get("status") or {}
    names, images = _containers((spec.get("template") or {}).get("spec") or {})
    return [
        o["metadata"]["name"], f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 1)}",
        status.get("updatedReplicas", 0), status.get("availableReplicas", 0),
        _age(o["metadata"].get("creationTimestamp"), now), names, images, selector_string(spec.get("selector")),
    ]


def _replica_set(o: Obj, now: float) -> list[Any]:
    spec, status = o.get("spec") or {}, o.get("status") or {}
    names, images = _containers((spec.get("template") or {}).get("spec") or {})
    return [
        o["metadata"]["name"], spec.get("replicas", 1), status.get("replicas", 0), status.get("readyReplicas", 0),
        _age(o["metadata"].get("creationTimestamp"), now), names, images, selector_string(spec.get("selector")),
    ]


def _pod(o: Obj, now: float) -> list[Any]:
    status = o.get("status") or {}
    statuses = status.get("containerStatuses") or []
    total = len((o.get("spec") or {}).get("containers") or [])
    ready = sum(1 for s in statuses if s.get("ready"))
    reason = status.get("reason") or status.get("phase") or "Unknown"
    restarts, last_restart = 0, None
    for s in statuses:
        restarts += int(s.get("restartCount") or 0)
        waiting = (s.get("state") or {}).get("waiting") or {}
        if waiting.get("reason"):
            reason = waiting["reason"]
        finished = parse_timestamp(((s.get("lastState") or {}).get("terminated") or {}).get("finishedAt"))
        if finished is not None and (last_restart is None or finished > last_restart):
            last_restart = finished
    if o["metadata"].get("deletionTimestamp"):
        reason = "Terminating"
    restart_cell = str(restarts)
    if restarts and last_restart is not None:
        restart_cell = f"{restarts} ({format_age(now - last_restart)} ago)"
    return [
        o["metadata"]["name"], f"{ready}/{total}", reason, restart_cell, _age(o["metadata"].get("creationTimestamp"), now),
        status.get("podIP") or "<none>", (o.get("spec") or {}).get("nodeName") or "<none>", "<none>", "<none>",
    ]


def _event(o: Obj, now: float) -> list[Any]:
    involved = o.get("involvedObject") or {}
    last = o.get("lastTimestamp") or o.get("eventTime") or o["metadata"].get("creationTimestamp")
    first = o.get("firstTimestamp") or o.get("eventTime") or o["metadata"].get("creationTimestamp")
    source = (o.get("source") or {}).get("component") or o.get("reportingComponent") or ""
    return [
        _age(last, now), o.get("type", ""), o.get("reason", ""),
        f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}", involved.get("fieldPath", ""),
        source, o.get("message", ""), _age(first, now), str(o.get("count") or 1), o["metadata"]["name"],
    ]


def _service(o: Obj, now: float) -> list[Any]:
    spec = o.get("spec") or {}
    ports = []
    for p in spec.get("ports") or []:
        text = f"{p.get('port')}:{p['nodePort']}" if p.get("nodePort") else str(p.get("port"))
        ports.append(f"{text}/{p.get('protocol', 'TCP')}")
    ingress = ((o.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    external = ",".join(i.get("ip") or i.get("hostname", "") for i in ingress) or (
        "<pending>" if spec.get("type") == "LoadBalancer" else "<none>"
    )
    selector = ",".join(f"{k}={v}" for k, v in sorted((spec.get("selector") or {}).items())) or "<none>"
    return [
        o["metadata"]["name"], spec.get("type", "ClusterIP"), spec.get("clusterIP") or "<none>", external,
        ",".join(ports) or "<none>", _age(o["metadata"].get("creationTimestamp"), now), selector,
    ]


def _namespace(o: Obj, now: float) -> list[Any]:
    return [o["metadata"]["name"], (o.get("status") or {}).get("phase", "Active"), _age(o["metadata"].get("creationTimestamp"), now)]


def _lease(o: Obj, now: float) -> list[Any]:
    holder = (o.get("spec") or {}).get("holderIdentity") or ""
    return [o["metadata"]["name"], holder, _age(o["metadata"].get("creationTimestamp"), now)]


_ROWS: dict[str, Callable[[Obj, float], list[Any]]] = {
    "deployments": _deployment, "replicasets": _replica_set, "pods": _pod, "events": _event,
    "services": _service, "namespaces": _namespace, "leases": _lease,
}


def _row_object(o: Obj, include: str) -> dict[str, Any] | None:
    if include == "None":
        return None
    if include == "Object":
        return dict(o)
    meta = {k: v for k, v in o["metadata"].items() if k != "managedFields"}
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": meta}


def to_table(plural: str, objects: list[Obj], now: float, *, include_object: str = "Metadata", resource_version: str = "") -> dict[str, Any]:
    """A ``meta.k8s.io/v1`` Table of ``objects`` (``include_object``: None, Metadata or Object)."""
    columns = _COLUMNS[plural]
    rows = []
    for o in objects:
        row: dict[str, Any] = {"cells": _ROWS[plural](o, now)}
        obj = _row_object(o, include_object or "Metadata")
        if obj is not None:
            row["object"] = obj
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": [
            {
                "name": name,
                "type": type,
                "format": "name" if name == "Name" and n == 0 else "",
                "description": _DESCRIPTIONS.get(name, name),
                "priority": priority,
            }
            for n, (name, type, priority) in enumerate(columns)
        ],
        "rows": rows,
    }
