"""Object storage with one global resourceVersion counter, a bounded watch history and fan-out.

Thread-safety: every read and write takes ``Store.lock`` (a ``threading.RLock``), so the
synchronous ``KubeSim`` methods may be called from any thread. Stored objects are never mutated
after they are stored (writers store a new dict), so a reader may serialise the references it got
under the lock after releasing it. Watch events are handed to each watcher's asyncio queue on the
watcher's own loop: directly when already on that loop's thread, else via
``loop.call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from deploytui.demo.kube.util import ApiError, timestamp

__all__ = ["Store", "WatchEvent", "Watcher"]

Key = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped objects


@dataclass(frozen=True)
class WatchEvent:
    """One change: ``type`` ADDED / MODIFIED / DELETED of ``obj`` (``old`` is the previous state)."""

    rv: int
    plural: str
    type: str
    obj: dict[str, Any]
    old: dict[str, Any] | None


class Watcher:
    """A subscription to changes of one resource type; events arrive on ``queue`` (None = dropped)."""

    def __init__(self, plural: str, loop: asyncio.AbstractEventLoop) -> None:
        self.plural = plural
        self.loop = loop
        self.thread_id = threading.get_ident()
        self.queue: asyncio.Queue[WatchEvent | None] = asyncio.Queue()

    def push(self, event: WatchEvent | None) -> None:
        if threading.get_ident() == self.thread_id:
            self.queue.put_nowait(event)
        elif not self.loop.is_closed():
            try:
                self.loop.call_soon_threadsafe(self.queue.put_nowait, event)
            except RuntimeError:  # the loop closed meanwhile: the watch is gone anyway
                pass


def _owner_uids(obj: dict[str, Any]) -> list[str]:
    return [ref["uid"] for ref in obj.get("metadata", {}).get("ownerReferences") or [] if "uid" in ref]


class Store:
    """All objects of the simulated cluster, keyed by plural resource name and (namespace, name)."""

    def __init__(self, clock: Callable[[], float], history_limit: int = 20_000) -> None:
        self.lock = threading.RLock()
        self.clock = clock
        self._rv = 0
        self._objects: dict[str, dict[Key, dict[str, Any]]] = {}
        self._owned: dict[str, set[tuple[str, str, str]]] = {}
        self._history: deque[WatchEvent] = deque()
        self._history_limit = history_limit
        self._floor = 0
        self._watchers: dict[str, set[Watcher]] = {}
        self._owner_versions: dict[str, int] = {}
        self._deleted_at: dict[str, int] = {}

    # --- reads -----------------------------------------------------------------------------

    @property
    def resource_version(self) -> int:
        with self.lock:
            return self._rv

    def get(self, plural: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        with self.lock:
            return self._objects.get(plural, {}).get((namespace or "", name))

    def list(self, plural: str, namespace: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            objects = self._objects.get(plural, {})
            if namespace is None:
                return list(objects.values())
            return [o for (ns, _), o in objects.items() if ns == namespace]

    def owned(self, owner_uid: str, plural: str) -> list[dict[str, Any]]:
        """Objects of ``plural`` with an owner reference to ``owner_uid``."""
        with self.lock:
            out = []
            for p, ns, name in self._owned.get(owner_uid, ()):
                if p == plural and (obj := self._objects.get(p, {}).get((ns, name))) is not None:
                    out.append(obj)
            return out

    def owner_version(self, owner_uid: str) -> int:
        """The resourceVersion of the last change to any object owned by ``owner_uid`` (0 if none):
        lets controllers skip owners whose dependents did not change."""
        with self.lock:
            return self._owner_versions.get(owner_uid, 0)

    def deleted_at(self, plural: str) -> int:
        """The resourceVersion of the last deletion of a ``plural`` object (0 if none)."""
        with self.lock:
            return self._deleted_at.get(plural, 0)

    def count(self, plural: str) -> int:
        with self.lock:
            return len(self._objects.get(plural, {}))

    # --- writes ----------------------------------------------------------------------------

    def create(self, plural: str, qualified: str, obj: dict[str, Any]) -> dict[str, Any]:
        """Store a new object: fills uid, creationTimestamp, generation, resourceVersion."""
        meta = obj.setdefault("metadata", {})
        key = (meta.get("namespace") or "", meta["name"])
        with self.lock:
            bucket = self._objects.setdefault(plural, {})
            if key in bucket:
                raise ApiError.already_exists(qualified, key[1])
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("creationTimestamp", timestamp(self.clock()))
            meta.setdefault("generation", 1)
            self._rv += 1
            meta["resourceVersion"] = str(self._rv)
            bucket[key] = obj
            self._index(plural, key, obj, add=True)
            self._emit(WatchEvent(self._rv, plural, "ADDED", obj, None))
            return obj

    def replace(self, plural: str, qualified: str, obj: dict[str, Any], *, expect_rv: str | None = None) -> dict[str, Any]:
        """Store a new state of an existing object (optimistic concurrency when ``expect_rv``)."""
        meta = obj["metadata"]
        key = (meta.get("namespace") or "", meta["name"])
        with self.lock:
            bucket = self._objects.setdefault(plural, {})
            old = bucket.get(key)
            if old is None:
                raise ApiError.not_found(qualified, key[1])
            if expect_rv and expect_rv != old["metadata"]["resourceVersion"]:
                raise ApiError.conflict(qualified, key[1])
            for fixed in ("uid", "creationTimestamp"):
                meta[fixed] = old["metadata"][fixed]
            self._rv += 1
            meta["resourceVersion"] = str(self._rv)
            bucket[key] = obj
            self._index(plural, key, old, add=False)
            self._index(plural, key, obj, add=True)
            self._emit(WatchEvent(self._rv, plural, "MODIFIED", obj, old))
            return obj

    def delete(self, plural: str, qualified: str, namespace: str | None, name: str, *, expect_rv: str | None = None) -> dict[str, Any]:
        key = (namespace or "", name)
        with self.lock:
            bucket = self._objects.get(plural, {})
            old = bucket.get(key)
            if old is None:
                raise ApiError.not_found(qualified, name)
            if expect_rv and expect_rv != old["metadata"]["resourceVersion"]:
                raise ApiError.conflict(qualified, name)
            del bucket[key]
            self._index(plural, key, old, add=False)
            self._rv += 1
            self._deleted_at[plural] = self._rv
            gone = {**old, "metadata": {**old["metadata"], "resourceVersion": str(self._rv)}}
            self._emit(WatchEvent(self._rv, plural, "DELETED", gone, old))
            return gone

    def _index(self, plural: str, key: Key, obj: dict[str, Any], *, add: bool) -> None:
        entry = (plural, key[0], key[1])
        for uid in _owner_uids(obj):
            self._owner_versions[uid] = self._rv
            if add:
                self._owned.setdefault(uid, set()).add(entry)
            elif uid in self._owned:
                self._owned[uid].discard(entry)
                if not self._owned[uid]:
                    del self._owned[uid]

    # --- watch -----------------------------------------------------------------------------

    def _emit(self, event: WatchEvent) -> None:
        self._history.append(event)
        while len(self._history) > self._history_limit:
            self._floor = self._history.popleft().rv
        for watcher in self._watchers.get(event.plural, ()):
            watcher.push(event)

    def subscribe(self, plural: str, since: int | None) -> tuple[Watcher, list[WatchEvent], int]:
        """Register a watcher (on the running loop); returns it, the events to replay after
        ``since`` (None = no replay) and the current resourceVersion. ``ApiError`` 410 when
        ``since`` is older than the kept history."""
        watcher = Watcher(plural, asyncio.get_running_loop())
        with self.lock:
            replay: list[WatchEvent] = []
            if since is not None:
                if since < self._floor:
                    raise ApiError(410, f"too old resource version: {since} ({self._floor + 1})", "Expired")
                replay = [e for e in self._history if e.rv > since and e.plural == plural]
            self._watchers.setdefault(plural, set()).add(watcher)
            return watcher, replay, self._rv

    def unsubscribe(self, watcher: Watcher) -> None:
        with self.lock:
            self._watchers.get(watcher.plural, set()).discard(watcher)

    def watchers(self) -> Iterable[Watcher]:
        with self.lock:
            return [w for ws in self._watchers.values() for w in ws]

    def drop_watches(self) -> None:
        """End every open watch stream (each gets a None sentinel)."""
        for watcher in self.watchers():
            watcher.push(None)

    def compact(self) -> None:
        """Forget the watch history: resuming from any older resourceVersion now gets 410."""
        with self.lock:
            self._history.clear()
            self._floor = self._rv
