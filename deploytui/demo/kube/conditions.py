"""Deployment status and conditions (``calculateStatus`` / ``syncRolloutStatus`` of the
Deployment controller): counts, Available, Progressing and the progress deadline."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deploytui.demo.kube.util import parse_timestamp, scaled_value, timestamp

__all__ = ["complete", "deadline_pending", "find_condition", "is_rolling", "max_surge", "max_unavailable", "set_condition", "sync_status"]

Obj = dict[str, Any]


def _fenceposts(d: Mapping[str, Any]) -> tuple[int, int]:
    spec = d["spec"]
    replicas = int(spec.get("replicas", 1))
    rolling = (spec.get("strategy") or {}).get("rollingUpdate") or {}
    surge = scaled_value(rolling.get("maxSurge"), replicas, round_up=True, default="25%")
    unavailable = scaled_value(rolling.get("maxUnavailable"), replicas, round_up=False, default="25%")
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def is_rolling(d: Mapping[str, Any]) -> bool:
    return (d["spec"].get("strategy") or {}).get("type", "RollingUpdate") == "RollingUpdate"


def max_surge(d: Mapping[str, Any]) -> int:
    return _fenceposts(d)[0] if is_rolling(d) else 0


def max_unavailable(d: Mapping[str, Any]) -> int:
    replicas = int(d["spec"].get("replicas", 1))
    if not is_rolling(d) or replicas == 0:
        return 0
    return min(_fenceposts(d)[1], replicas)


def _spec_replicas(rs: Mapping[str, Any]) -> int:
    return int(rs["spec"].get("replicas", 1))


def _st(obj: Mapping[str, Any] | None, key: str) -> int:
    return int(((obj or {}).get("status") or {}).get(key) or 0)


def sync_status(
    d: Obj, status: Obj, conditions: list[Obj], all_rs: list[Obj], new_rs: Obj | None,
    paused: bool, has_deadline: bool, now: float,
) -> None:
    """``calculateStatus`` + ``syncRolloutStatus``: counts, Available and Progressing."""
    old_status = d.get("status") or {}
    replicas = int(d["spec"].get("replicas", 1))
    available = sum(_st(rs, "availableReplicas") for rs in all_rs)
    counts = {
        "replicas": sum(_st(rs, "replicas") for rs in all_rs),
        "updatedReplicas": _st(new_rs, "replicas") if new_rs else 0,
        "readyReplicas": sum(_st(rs, "readyReplicas") for rs in all_rs),
        "availableReplicas": available,
        "unavailableReplicas": max(0, sum(_spec_replicas(rs) for rs in all_rs) - available),
    }
    for key, value in counts.items():  # the apiserver omits zero counts (omitempty)
        if value:
            status[key] = value
        else:
            status.pop(key, None)
    status["observedGeneration"] = d["metadata"].get("generation", 1)
    if available >= replicas - max_unavailable(d):
        set_condition(conditions, "Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.", now)
    else:
        set_condition(conditions, "Available", "False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability.", now)
    current = find_condition(conditions, "Progressing")
    if paused:
        if has_deadline and (current is None or current.get("reason") != "DeploymentPaused"):
            set_condition(conditions, "Progressing", "Unknown", "DeploymentPaused", "Deployment is paused", now)
    elif has_deadline:
        if current is not None and current.get("reason") == "DeploymentPaused":
            set_condition(conditions, "Progressing", "Unknown", "DeploymentResumed", "Deployment is resumed", now)
            current = find_condition(conditions, "Progressing")
        rs_name = new_rs["metadata"]["name"] if new_rs else None
        complete_before = (
            status.get("replicas", 0) == status.get("updatedReplicas", 0)
            and current is not None and current.get("reason") == "NewReplicaSetAvailable"
        )
        if not complete_before:
            if complete(d, status):
                msg = f'ReplicaSet "{rs_name}" has successfully progressed.' if rs_name else f'Deployment "{d["metadata"]["name"]}" has successfully progressed.'
                set_condition(conditions, "Progressing", "True", "NewReplicaSetAvailable", msg, now)
            elif _progressing(old_status, status):
                msg = f'ReplicaSet "{rs_name}" is progressing.' if rs_name else f'Deployment "{d["metadata"]["name"]}" is progressing.'
                transition = current["lastTransitionTime"] if current and current.get("status") == "True" else timestamp(now)
                conditions[:] = [c for c in conditions if c["type"] != "Progressing"]
                conditions.append(_new_condition("Progressing", "True", "ReplicaSetUpdated", msg, now, transition))
            elif _timed_out(d, current, now):
                msg = f'ReplicaSet "{rs_name}" has timed out progressing.' if rs_name else f'Deployment "{d["metadata"]["name"]}" has timed out progressing.'
                set_condition(conditions, "Progressing", "False", "ProgressDeadlineExceeded", msg, now)
    else:
        conditions[:] = [c for c in conditions if c["type"] != "Progressing"]
    conditions.sort(key=lambda c: {"Available": 0, "Progressing": 1}.get(c["type"], 2))
    status["conditions"] = conditions

def deadline_pending(d: Mapping[str, Any]) -> bool:
    """True while a rollout could still time out: the controller must look again even if
    nothing changed."""
    if d["spec"].get("paused") or d["spec"].get("progressDeadlineSeconds") is None:
        return False
    for cond in (d.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Progressing":
            return cond.get("reason") not in ("NewReplicaSetAvailable", "ProgressDeadlineExceeded")
    return True


def complete(d: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    replicas = int(d["spec"].get("replicas", 1))
    return (
        int(status.get("updatedReplicas") or 0) == replicas
        and int(status.get("replicas") or 0) == replicas
        and int(status.get("availableReplicas") or 0) == replicas
        and int(status.get("observedGeneration") or 0) >= int(d["metadata"].get("generation", 1))
    )


def _progressing(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    def g(s: Mapping[str, Any], k: str) -> int:
        return int(s.get(k) or 0)

    return (
        g(new, "updatedReplicas") > g(old, "updatedReplicas")
        or g(new, "replicas") - g(new, "updatedReplicas") < g(old, "replicas") - g(old, "updatedReplicas")
        or g(new, "readyReplicas") > g(old, "readyReplicas")
        or g(new, "availableReplicas") > g(old, "availableReplicas")
    )


def _timed_out(d: Mapping[str, Any], cond: Mapping[str, Any] | None, now: float) -> bool:
    if cond is None or cond.get("reason") == "NewReplicaSetAvailable":
        return False
    if cond.get("reason") == "ProgressDeadlineExceeded":
        return True
    since = parse_timestamp(cond.get("lastUpdateTime"))
    return since is not None and since + int(d["spec"]["progressDeadlineSeconds"]) < now


def find_condition(conditions: list[Obj], type: str) -> Obj | None:
    return next((c for c in conditions if c.get("type") == type), None)


def _new_condition(type: str, status: str, reason: str, message: str, now: float, transition: str | None = None) -> Obj:
    stamp = timestamp(now)
    return {
        "type": type, "status": status, "lastUpdateTime": stamp,
        "lastTransitionTime": transition or stamp, "reason": reason, "message": message,
    }


def set_condition(conditions: list[Obj], type: str, status: str, reason: str, message: str, now: float) -> None:
    """``SetDeploymentCondition``: no change for the same status and reason; keep the transition
    time when only the reason changes."""
    current = find_condition(conditions, type)
    if current is not None and current.get("status") == status and current.get("reason") == reason:
        return
    transition = current["lastTransitionTime"] if current is not None and current.get("status") == status else None
    conditions[:] = [c for c in conditions if c.get("type") != type]
    conditions.append(_new_condition(type, status, reason, message, now, transition))
