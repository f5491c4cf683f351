"""``events.k8s.io/v1`` Events as a view of the stored ``core/v1`` Events (one store, two shapes,
as on a real cluster)."""

from __future__ import annotations

from typing import Any

__all__ = ["from_events_v1", "to_events_v1"]

Obj = dict[str, Any]

# (core/v1 field, events.k8s.io/v1 field)
_RENAMED = (
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
)
_SAME = ("metadata", "reason", "type", "action", "related", "series", "eventTime", "reportingInstance")


def to_events_v1(core: Obj) -> Obj:
    out: Obj = {"apiVersion": "events.k8s.io/v1", "kind": "Event"}
    for key in _SAME:
        if core.get(key) is not None:
            out[key] = core[key]
    out.setdefault("eventTime", None)
    for old, new in _RENAMED:
        if core.get(old) is not None:
            out[new] = core[old]
    controller = core.get("reportingComponent") or (core.get("source") or {}).get("component")
    if controller:
        out["reportingController"] = controller
    return out


def from_events_v1(event: Any) -> Any:
    if not isinstance(event, dict):
        return event
    core: Obj = {"apiVersion": "v1", "kind": "Event"}
    for key in _SAME:
        if event.get(key) is not None:
            core[key] = event[key]
    for old, new in _RENAMED:
        if event.get(new) is not None:
            core[old] = event[new]
    if event.get("reportingController"):
        core["reportingComponent"] = event["reportingController"]
        core.setdefault("source", {"component": event["reportingController"]})
    core.setdefault("involvedObject", {})
    return core
