"""An event recorder like client-go's: identical events are aggregated into one with a count."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from deploytui.demo.kube.objects import new_event
from deploytui.demo.kube.store import Store
from deploytui.demo.kube.util import ApiError, timestamp

__all__ = ["EventRecorder"]


class EventRecorder:
    """Writes core/v1 Events into the store; keeps at most ``limit`` of the ones it wrote."""

    def __init__(self, store: Store, clock: Callable[[], float], limit: int = 5_000) -> None:
        self.store = store
        self.clock = clock
        self.limit = limit
        self._recent: OrderedDict[tuple[str, str, str, str], tuple[str, str]] = OrderedDict()

    def record(self, involved: Mapping[str, Any], type: str, reason: str, message: str, component: str) -> None:
        meta = involved["metadata"]
        key = (meta.get("namespace") or "default", meta.get("uid", ""), reason, message)
        now = self.clock()
        with self.store.lock:
            where = self._recent.get(key)
            existing = self.store.get("events", *where) if where else None
            if existing is not None:
                updated = {**existing, "count": int(existing.get("count") or 1) + 1, "lastTimestamp": timestamp(now)}
                updated["metadata"] = dict(existing["metadata"])
                self.store.replace("events", "events", updated)
                self._recent.move_to_end(key)
                return
            event = new_event(involved, reason=reason, message=message, type=type, component=component, now=now)
            try:
                self.store.create("events", "events", event)
            except ApiError:
                return
            self._recent[key] = (event["metadata"]["namespace"], event["metadata"]["name"])
            while len(self._recent) > self.limit:
                _, (ns, name) = self._recent.popitem(last=False)
                if self.store.get("events", ns, name) is not None:
                    self.store.delete("events", "events", ns, name)
