"""The ``kubectl rollout undo`` algorithm for a Deployment, on raw API objects (dicts).

Written from the behaviour of kubectl's ``DeploymentRollbacker`` (k8s.io/kubectl, package
polymorphichelpers) so that a rollback from deploytui leaves a Deployment exactly as
``kubectl rollout undo [--to-revision=N]`` would:

1. the history is the ReplicaSets *controlled* by the Deployment (controller owner reference
   with the Deployment's uid) among those its selector matches;
2. a ReplicaSet's revision is its ``deployment.kubernetes.io/revision`` annotation (ones that
   do not parse are ignored);
3. ``to_revision == 0`` means the second-highest revision ("previous"); otherwise the exact
   revision, or "unable to find specified revision N in history";
4. a paused Deployment is refused;
5. when the ReplicaSet's template already equals the Deployment's (ignoring the
   ``pod-template-hash`` label; empty and missing maps compare equal) nothing is done;
6. otherwise one JSON patch replaces ``/spec/template`` with the ReplicaSet's template minus the
   hash label, and ``/metadata/annotations`` with the ReplicaSet's annotations, except the ones
   the Deployment keeps its own values for (last-applied, revision, revision-history,
   desired/max replicas, rollback-to).

Pure functions, no I/O: :mod:`deploytui.actions.kube` fetches the objects and sends the patch.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ANNOTATIONS_TO_SKIP",
    "UndoError",
    "UndoPlan",
    "controlled_by",
    "equal_ignore_hash",
    "label_selector",
    "plan_undo",
    "revision_of",
    "select_revision",
]

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
CHANGE_CAUSE = "kubernetes.io/change-cause"

#: kept from the Deployment, never copied from the ReplicaSet
ANNOTATIONS_TO_SKIP = frozenset({
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    "deployment.kubernetes.io/revision-history",
    "deployment.kubernetes.io/desired-replicas",
    "deployment.kubernetes.io/max-replicas",
    "deprecated.deployment.rollback.to",
})


class UndoError(Exception):
    """The rollback cannot be done; ``reason`` is ``not_found``, ``no_history``, ``paused`` or
    ``unchanged`` (template already matches)."""

    def __init__(self, message: str, reason: str) -> None:
        self.reason = reason
        super().__init__(message)


def revision_of(obj: Mapping[str, Any]) -> int | None:
    value = ((obj.get("metadata") or {}).get("annotations") or {}).get(REVISION)
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def controlled_by(rs: Mapping[str, Any], deployment: Mapping[str, Any]) -> bool:
    uid = (deployment.get("metadata") or {}).get("uid")
    return any(ref.get("controller") and ref.get("uid") == uid
               for ref in (rs.get("metadata") or {}).get("ownerReferences") or ())


def label_selector(selector: Mapping[str, Any] | None) -> str:
    """A ``LabelSelector`` as the query-string form the list call takes."""
    selector = selector or {}
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or ():
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In":
            parts.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            parts.append(str(key))
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)


def _normal(value: Any) -> Any:
    """Semantic equality as apimachinery's: nil and empty maps / slices are the same."""
    if isinstance(value, Mapping):
        out = {k: _normal(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in (None, {}, [])}
    if isinstance(value, list):
        return [_normal(v) for v in value]
    return value


def _without_hash(template: Mapping[str, Any]) -> dict[str, Any]:
    t = copy.deepcopy(dict(template))
    labels = (t.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(HASH_LABEL, None)
    return t


def equal_ignore_hash(t1: Mapping[str, Any], t2: Mapping[str, Any]) -> bool:
    return _normal(_without_hash(t1)) == _normal(_without_hash(t2))


def select_revision(deployment: Mapping[str, Any], replica_sets: Iterable[Mapping[str, Any]],
                    to_revision: int = 0) -> Mapping[str, Any]:
    """The ReplicaSet to roll back to (``to_revision`` 0: the previous one)."""
    name = (deployment.get("metadata") or {}).get("name", "")
    if to_revision < 0:
        raise UndoError(f"unable to find specified revision {to_revision} in history", "not_found")
    latest: tuple[int, Mapping[str, Any] | None] = (-1, None)
    previous: tuple[int, Mapping[str, Any] | None] = (-1, None)
    for rs in replica_sets:
        if not controlled_by(rs, deployment):
            continue
        v = revision_of(rs)
        if v is None:
            continue
        if to_revision == 0:
            if latest[0] < v:
                previous, latest = latest, (v, rs)
            elif previous[0] < v:
                previous = (v, rs)
        elif v == to_revision:
            return rs
    if to_revision > 0:
        raise UndoError(f"unable to find specified revision {to_revision} in history", "not_found")
    if previous[1] is None:
        raise UndoError(f"no rollout history found for deployment {name!r}", "no_history")
    return previous[1]


@dataclass(frozen=True)
class UndoPlan:
    """What the rollback will do: from the Deployment's revision to the ReplicaSet's."""

    namespace: str
    name: str
    from_revision: int
    to_revision: int
    from_images: tuple[str, ...]
    to_images: tuple[str, ...]
    to_change_cause: str
    replica_set: str
    resource_version: str
    patch: tuple[Mapping[str, Any], ...]

    def describe(self) -> str:
        return (f"revision {self.from_revision} image {', '.join(self.from_images)} -> "
                f"revision {self.to_revision} image {', '.join(self.to_images)}")


def _images(template: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(str(c.get("image", ""))
                 for c in (template.get("spec") or {}).get("containers") or ())


def plan_undo(deployment: Mapping[str, Any], replica_sets: Iterable[Mapping[str, Any]],
              to_revision: int = 0) -> UndoPlan:
    """kubectl's order: find the revision, refuse when paused, skip when already matching,
    then build the patch. Raises :class:`UndoError`."""
    meta = deployment.get("metadata") or {}
    spec = deployment.get("spec") or {}
    name = meta.get("name", "")
    rs = select_revision(deployment, replica_sets, to_revision)
    if spec.get("paused"):
        raise UndoError(f"you cannot roll back a paused deployment; resume it first with "
                        f"'kubectl rollout resume deployment/{name}' and try again", "paused")
    rs_template = (rs.get("spec") or {}).get("template") or {}
    rs_revision = revision_of(rs) or 0
    if equal_ignore_hash(rs_template, spec.get("template") or {}):
        raise UndoError(f"skipped rollback (current template already matches revision "
                        f"{to_revision or rs_revision})", "unchanged")
    template = _without_hash(rs_template)
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items()
                   if k in ANNOTATIONS_TO_SKIP}
    rs_annotations = (rs.get("metadata") or {}).get("annotations") or {}
    annotations.update({k: v for k, v in rs_annotations.items() if k not in ANNOTATIONS_TO_SKIP})
    patch = (
        {"op": "replace", "path": "/spec/template", "value": template},
        {"op": "replace", "path": "/metadata/annotations", "value": annotations},
    )
    return UndoPlan(
        namespace=meta.get("namespace", ""), name=name,
        from_revision=revision_of(deployment) or 0, to_revision=rs_revision,
        from_images=_images(spec.get("template") or {}), to_images=_images(rs_template),
        to_change_cause=str(rs_annotations.get(CHANGE_CAUSE, "")),
        replica_set=(rs.get("metadata") or {}).get("name", ""),
        resource_version=str(meta.get("resourceVersion", "")), patch=patch)
