"""The rollouts source: Deployments, ReplicaSets and Pods by list+watch, as a
:class:`~deploytui.sources.rollout_model.RolloutSnapshot` per change.

    source = make_source(runtime)          # None unless [kubernetes] enabled = true
    await source.run(publish)              # publish(RolloutSnapshot) on every change

One watch per kind and namespace (or one per kind over all namespaces when more than
:data:`ALL_NAMESPACES_OVER` are configured, or ``namespaces = ["*"]``), each in its own thread
(:class:`~deploytui.sources.kube_watch.ListWatch`). Changes are coalesced, applied and turned into
a snapshot in one worker thread, so the event loop only publishes. While a watch cannot reach
the API the snapshot carries ``stale_since`` and the reason; the rows keep their last state.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from deploytui.config import Settings
from deploytui.errors import SourceError
from deploytui.model import Section
from deploytui.sources import Publish
from deploytui.sources.kube_watch import (
    KINDS,
    KubeClient,
    KubeHandle,
    ListWatch,
    api_error_message,
)
from deploytui.sources.rollout_model import (
    RolloutModel,
    RolloutSnapshot,
    format_duration,
    parse_time,
)

__all__ = [
    "ALL_NAMESPACES_OVER",
    "COLUMNS",
    "KubeSource",
    "fetch_events",
    "make_source",
    "snapshot_section",
]

log = logging.getLogger(__name__)

ALL_NAMESPACES_OVER = 8
#: the text table's columns; the JSON rows carry more (service, image, each replica count,
#: restarts, message)
COLUMNS = ("namespace", "deployment", "phase", "revision", "version", "progress", "age", "eta")


def _watch_targets(namespaces: tuple[str, ...]) -> tuple[list[str | None], set[str] | None]:
    """Which namespaces to open watches on, and the set to filter by (None: keep everything)."""
    if "*" in namespaces:
        return [None], None
    if len(namespaces) > ALL_NAMESPACES_OVER:
        return [None], set(namespaces)
    return list(namespaces), None


class KubeSource:
    """Source contract: ``name`` and ``async run(publish)``; see the module docstring."""

    name = "rollouts"

    def __init__(self, settings: Settings, journal: Any = None, handle: KubeHandle | None = None,
                 *, tick: float = 1.0, coalesce: float = 0.01,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.handle = handle or KubeHandle(settings)
        self.model = RolloutModel(settings, journal)
        self.tick = tick
        self.coalesce = coalesce
        self.clock = clock
        self.latest: RolloutSnapshot | None = None
        self.watchers: list[ListWatch] = []
        self._failures: dict[str, tuple[str, float]] = {}
        self._filter: set[str] | None = None
        self._namespaces: tuple[str, ...] = ()
        self._context = ""

    # called on the watch threads --------------------------------------------------------------

    def _status(self, name: str, error: str | None) -> None:
        if error is None:
            self._failures.pop(name, None)
        elif name not in self._failures:
            self._failures[name] = (error, self.clock())
        else:
            self._failures[name] = (error, self._failures[name][1])

    # called in the build worker ---------------------------------------------------------------

    def _apply_build(self, items: list[tuple[Any, ...]]) -> RolloutSnapshot:
        keep = self._filter
        for item in items:
            if item[0] == "list":
                _, kind, namespace, infos = item
                if keep is not None:
                    infos = [i for i in infos if i.namespace in keep]
                self.model.replace_all(kind, namespace, infos)
            else:
                _, kind, kind_event, info = item
                if keep is None or info.namespace in keep:
                    self.model.apply(kind, kind_event, info)
        failures = list(self._failures.values())
        stale = min((since for _, since in failures), default=None)
        error = failures[0][0] if failures else None
        return self.model.build(self.clock(), stale_since=stale, error=error,
                                namespaces=self._namespaces, context=self._context,
                                loaded=self.model.loaded_kinds >= set(KINDS))

    # the loop ---------------------------------------------------------------------------------

    async def _connect(self, publish: Publish) -> KubeClient:
        backoff = 1.0
        first_failure: float | None = None
        while True:
            try:
                return await asyncio.to_thread(self.handle.client)
            except SourceError as exc:
                message = str(exc)
            except Exception as exc:  # e.g. an exec credential plugin that crashed
                message = f"kubernetes: cannot connect: {exc.__class__.__name__}: {exc}"
            first_failure = first_failure or self.clock()
            self.latest = RolloutSnapshot(taken_at=self.clock(), stale_since=first_failure,
                                          error=message)
            publish(self.latest)
            await asyncio.sleep(backoff)
            backoff = min(30.0, backoff * 2)

    async def run(self, publish: Publish) -> None:
        loop = asyncio.get_running_loop()
        wake = asyncio.Event()
        queue: deque[tuple[Any, ...]] = deque()

        def emit(item: tuple[Any, ...]) -> None:
            queue.append(item)
            loop.call_soon_threadsafe(wake.set)

        def status(name: str, error: str | None) -> None:
            self._status(name, error)
            loop.call_soon_threadsafe(wake.set)

        client = await self._connect(publish)
        self._namespaces, self._context = client.namespaces, client.context
        targets, self._filter = _watch_targets(client.namespaces)
        self.watchers = [ListWatch(client, spec, ns, emit, status)
                         for spec in KINDS.values() for ns in targets]
        for w in self.watchers:
            w.start()
        try:
            while True:
                try:
                    await asyncio.wait_for(wake.wait(), timeout=self.tick)
                except TimeoutError:
                    pass
                wake.clear()
                if not queue and self._settled():
                    continue  # nothing arrived and nothing changes with time: no rebuild
                if self.coalesce:
                    await asyncio.sleep(self.coalesce)
                items = [queue.popleft() for _ in range(len(queue))]
                snap = await asyncio.to_thread(self._apply_build, items)
                if not snap.same_content(self.latest):
                    self.latest = snap
                    publish(snap)
        finally:
            for w in self.watchers:
                w.stop()

    def _settled(self) -> bool:
        """The last snapshot cannot change without a watch event: no rollout whose phase moves
        with time (progressing can become stalled), no watch failure, nothing stale."""
        snap = self.latest
        return (snap is not None and snap.loaded and not self._failures and snap.error is None
                and snap.stale_since is None
                and not any(r.phase == "progressing" for r in snap.rollouts))

    # hooks the console's flows use (deploytui.ui.flows) -------------------------------------

    def find_deployment(self, name: str, env: str = "") -> str | None:
        """The deployment of service ``name`` (in ``env``): mapped by config or labels, else one
        named like it (in a namespace named like the env, when there are several)."""
        snap = self.latest
        if snap is None:
            return None
        mapped = [r for r in snap.rollouts if r.service == f"{env}/{name}"] if env else []
        if mapped:
            return mapped[0].key
        named = [r for r in snap.rollouts if r.name == name]
        if not named:
            return None
        return next((r.key for r in named if r.namespace == env), named[0].key)

    def desired_replicas(self, deployment: str) -> int | None:
        found = self.latest.find(deployment) if self.latest is not None else None
        return found.desired if found is not None else None

    def stats(self) -> dict[str, dict[str, int]]:
        """Per watch: how many (re-)lists and watch connections it made."""
        return {w.name: {"relists": w.relists, "connects": w.reconnects} for w in self.watchers}


def make_source(runtime: Any) -> KubeSource | None:
    """The rollouts source for ``runtime`` (None unless ``[kubernetes] enabled``).

    Also shares the lazy client as ``runtime.extras["kube"]`` (actions use it) and gives the
    door a :class:`~deploytui.actions.kube.LeaseLocker` when it has no locker yet.
    """
    settings: Settings = runtime.settings
    if not settings.kubernetes.enabled:
        return None
    from deploytui.actions.kube import kube_handle

    return KubeSource(settings, runtime.journal, kube_handle(runtime))


# --- one-shot reads -----------------------------------------------------------------------------


def read_once(settings: Settings, client: KubeClient | None = None) -> RolloutSnapshot:
    """List everything once (no watch) and build a snapshot. Blocking."""
    client = client or KubeHandle(settings).client()
    model = RolloutModel(settings)
    targets, keep = _watch_targets(client.namespaces)
    for spec in KINDS.values():
        for ns in targets:
            method, args = (spec.list_all, ()) if ns is None else (spec.list_namespaced, (ns,))
            infos: list[Any] = []
            token = None
            while True:
                kwargs: dict[str, Any] = {"limit": 500}
                if token:
                    kwargs["_continue"] = token
                try:
                    doc = client.call(spec.api, method, *args, **kwargs) or {}
                except Exception as exc:
                    raise SourceError("kubernetes", api_error_message(
                        exc, action="reading", target=f"{spec.plural} in {ns or 'all namespaces'}",
                        timeout=client.request_timeout)) from None
                infos.extend(spec.extract(o) for o in doc.get("items") or ())
                token = (doc.get("metadata") or {}).get("continue")
                if not token:
                    break
            if keep is not None:
                infos = [i for i in infos if i.namespace in keep]
            model.replace_all(spec.plural, ns, infos)
    return model.build(time.time(), namespaces=client.namespaces, context=client.context)


async def snapshot_section(settings: Settings) -> Section:
    """The rollouts pane for ``deploytui snapshot`` (text and JSON)."""
    if not settings.kubernetes.enabled:
        return Section(name="rollouts", configured=False)
    try:
        snap = await asyncio.to_thread(read_once, settings)
    except SourceError as exc:
        return Section(name="rollouts", configured=True, ok=False, error=str(exc))
    now = snap.taken_at
    counts = {k: v for k, v in snap.counts().items() if v}
    summary: dict[str, Any] = {"context": snap.context, "namespaces": ",".join(snap.namespaces),
                               "deployments": len(snap.rollouts), **counts}
    return Section(name="rollouts", configured=True, ok=snap.ok, columns=COLUMNS,
                   rows=tuple(r.row(now) for r in snap.rollouts), summary=summary, taken_at=now)


def fetch_events(client: KubeClient, namespace: str, names: list[str], limit: int = 20
                 ) -> list[dict[str, Any]]:
    """Recent Events on the named objects (a Deployment and its ReplicaSets), newest first.
    Blocking; the detail screen calls it in a thread."""
    out: list[dict[str, Any]] = []
    now = time.time()
    for name in names:
        doc = client.call("core", "list_namespaced_event", namespace,
                          field_selector=f"involvedObject.name={name}") or {}
        for ev in doc.get("items") or ():
            involved = ev.get("involvedObject") or {}
            if involved.get("name") != name:
                continue
            ts = (parse_time(ev.get("lastTimestamp")) or parse_time(ev.get("eventTime"))
                  or parse_time((ev.get("metadata") or {}).get("creationTimestamp")) or 0.0)
            out.append({"ts": ts, "age": format_duration(now - ts) if ts else "",
                        "type": ev.get("type", ""), "reason": ev.get("reason", ""),
                        "object": f"{involved.get('kind', '')}/{name}",
                        "message": ev.get("message", ""), "count": ev.get("count") or 1})
    out.sort(key=lambda e: -e["ts"])
    return out[:limit]
