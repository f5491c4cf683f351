"""HTTP routes of the simulated Kubernetes API (aiohttp): discovery, CRUD, watch, Table
responses, ``/metrics`` and fault injection."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from deploytui.demo.kube import resources
from deploytui.demo.kube.access import Access, decode_access_review
from deploytui.demo.kube.api import Api
from deploytui.demo.kube.events_v1 import from_events_v1, to_events_v1
from deploytui.demo.kube.metrics import render_metrics
from deploytui.demo.kube.patch import apply_patch
from deploytui.demo.kube.resources import Resource
from deploytui.demo.kube.selectors import Matcher, field_matcher, label_matcher
from deploytui.demo.kube.store import Store, WatchEvent
from deploytui.demo.kube.tables import to_table, wants_table
from deploytui.demo.kube.util import ApiError, status_failure

__all__ = ["Fault", "KubeServer"]

log = logging.getLogger(__name__)
_JSON = "application/json"
_CORE_EVENTS = resources.lookup("", "v1", "events")
_VERBS = {
    ("GET", True): "list", ("POST", True): "create", ("DELETE", True): "deletecollection",
    ("GET", False): "get", ("PUT", False): "update", ("PATCH", False): "patch", ("DELETE", False): "delete",
}


@dataclass
class Fault:
    """Make the next ``times`` requests whose method matches and whose path (with query) matches
    ``pattern`` wait ``delay`` seconds and then, if ``status`` is set, fail with it."""

    method: str
    pattern: re.Pattern[str]
    status: int | None
    delay: float
    times: int


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=json.dumps(body, separators=(",", ":")), status=status, content_type=_JSON)


def _flag(value: str | None) -> bool:
    return (value or "").lower() in ("true", "1", "yes")


class KubeServer:
    """Builds the aiohttp application over an ``Api``."""

    def __init__(self, store: Store, api: Api, clock: Callable[[], float], bookmark_interval: float, url: Callable[[], str]) -> None:
        self.store = store
        self.api = api
        self.clock = clock
        self.bookmark_interval = bookmark_interval
        self._url = url
        self._faults: list[Fault] = []
        self._faults_lock = threading.Lock()
        self.access = Access()
        self.app = web.Application(middlewares=[self._middleware], client_max_size=16 * 1024 * 1024)
        self.app.router.add_route("*", "/{tail:.*}", self._dispatch)

    def inject_fault(self, fault: Fault) -> None:
        with self._faults_lock:
            self._faults.append(fault)

    def _take_fault(self, request: web.Request) -> Fault | None:
        target = request.path_qs
        with self._faults_lock:
            for fault in self._faults:
                if fault.method in ("*", request.method) and fault.pattern.search(target):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Callable[[web.Request], Any]) -> web.StreamResponse:
        fault = self._take_fault(request)
        if fault is not None:
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.status is not None:
                return _json(status_failure(fault.status, f"injected fault: {request.method} {request.path} failed"), fault.status)
        try:
            return await handler(request)
        except ApiError as exc:
            return _json(exc.status, exc.code)
        except web.HTTPException:
            raise
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception as exc:  # report a server bug as a Status, as the apiserver does
            log.exception("simulated Kubernetes API failed on %s %s", request.method, request.path)
            return _json(status_failure(500, f"Internal error occurred: {exc}"), 500)

    # --- routing ------------------------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"].strip("/")
        if path == "/version" or path == "/version/":
            return _json(resources.version_info())
        if path == "/api":
            return _json(resources.api_versions(self._url().split("//", 1)[-1]))
        if path == "/apis":
            return _json(resources.api_group_list())
        if path == "/metrics":
            return web.Response(text=render_metrics(self.store), content_type="text/plain", charset="utf-8",
                                headers={"X-Content-Type-Options": "nosniff"})
        if path in ("/healthz", "/livez", "/readyz"):
            return web.Response(text="ok")
        parts = [p for p in path.split("/") if p]
        if parts and parts[0] == "api" and len(parts) >= 2:
            group, version, rest = "", parts[1], parts[2:]
        elif parts and parts[0] == "apis" and len(parts) >= 3:
            group, version, rest = parts[1], parts[2], parts[3:]
        elif parts and parts[0] == "apis" and len(parts) == 2:
            group_doc = next((g for g in resources.api_group_list()["groups"] if g["name"] == parts[1]), None)
            if group_doc is None:
                raise ApiError(404, "the server could not find the requested resource", "NotFound")
            return _json({"kind": "APIGroup", "apiVersion": "v1", **group_doc})
        else:
            raise ApiError(404, "the server could not find the requested resource", "NotFound")
        if not rest:
            doc = resources.api_resource_list(group, version)
            if doc is None:
                raise ApiError(404, "the server could not find the requested resource", "NotFound")
            return _json(doc)
        watch_path = rest[0] == "watch"
        if watch_path:
            rest = rest[1:]
        namespace = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            namespace, rest = rest[1], rest[2:]
        r = resources.lookup(group, version, rest[0]) if rest else None
        if r is None or len(rest) > 3 or (namespace is not None and not r.namespaced):
            raise ApiError(404, "the server could not find the requested resource", "NotFound")
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if sub is not None and sub not in r.subresources:
            raise ApiError(404, "the server could not find the requested resource", "NotFound")
        if r.plural in resources.CREATE_ONLY:
            if request.method != "POST" or name is not None:
                raise ApiError(405, f"the server does not allow this method on the requested resource ({request.method})", "MethodNotAllowed")
            return _json(self.access.review(decode_access_review(await request.read())), 201)
        verb = _VERBS.get((request.method, name is None), "get")
        if verb == "list" and (watch_path or _flag(request.query.get("watch"))):
            verb = "watch"
        self.access.check(verb, r.plural, sub, r.group, namespace, name)
        if r.group == "events.k8s.io":
            return await self._events_v1(request, namespace, name, watch_path)
        if name is None:
            return await self._collection(request, r, namespace, watch_path)
        return await self._item(request, r, namespace, name, sub)

    async def _events_v1(self, request: web.Request, namespace: str | None, name: str | None, watch_path: bool) -> web.StreamResponse:
        """events.k8s.io/v1: the stored core/v1 Events, converted on the way in and out."""
        assert _CORE_EVENTS is not None
        core, q, dry_run = _CORE_EVENTS, request.query, bool(request.query.get("dryRun"))
        if name is None and request.method == "GET":
            matchers = [m for m in (label_matcher(q.get("labelSelector")), field_matcher(q.get("fieldSelector"))) if m]
            if watch_path or _flag(q.get("watch")):
                return await self._watch(request, core, namespace, matchers, convert=to_events_v1, api_version="events.k8s.io/v1")
            items, rv = self.api.list(core, namespace, matchers)
            if wants_table(request.headers.get("Accept", "")):
                return _json(self._table(request, core, items, rv))
            return _json({"kind": "EventList", "apiVersion": "events.k8s.io/v1", "metadata": {"resourceVersion": rv}, "items": [to_events_v1(o) for o in items]})
        if name is None and request.method == "POST":
            created = self.api.create(core, namespace, from_events_v1(await self._body(request)), dry_run=dry_run)
            return _json(to_events_v1(created), 201)
        if name is not None and request.method == "GET":
            obj = self.api.get(core, namespace, name)
            if wants_table(request.headers.get("Accept", "")):
                return _json(self._table(request, core, [obj], obj["metadata"]["resourceVersion"]))
            return _json(to_events_v1(obj))
        if name is not None and request.method == "PUT":
            return _json(to_events_v1(self.api.update(core, namespace, name, from_events_v1(await self._body(request)), dry_run=dry_run)))
        if name is not None and request.method == "PATCH":
            current = to_events_v1(self.api.get(core, namespace, name))
            patched = apply_patch(request.content_type, current, await request.read())
            return _json(to_events_v1(self.api.update(core, namespace, name, from_events_v1(patched), dry_run=dry_run)))
        if name is not None and request.method == "DELETE":
            return _json(self.api.delete(core, namespace, name, None, dry_run=dry_run))
        raise ApiError(405, f"the server does not allow this method on the requested resource ({request.method})", "MethodNotAllowed")

    async def _body(self, request: web.Request) -> Any:
        raw = await request.read()
        try:
            return json.loads(raw or b"null")
        except ValueError:
            raise ApiError.bad_request("the request body is not valid JSON") from None

    def _respond(self, request: web.Request, r: Resource, obj: dict[str, Any], status: int = 200) -> web.Response:
        if request.method == "GET" and wants_table(request.headers.get("Accept", "")):
            return _json(self._table(request, r, [obj], obj["metadata"].get("resourceVersion", "")))
        return _json(obj, status)

    def _table(self, request: web.Request, r: Resource, objects: list[dict[str, Any]], rv: str) -> dict[str, Any]:
        return to_table(r.plural, objects, self.clock(), include_object=request.query.get("includeObject", "Metadata"), resource_version=rv)

    async def _collection(self, request: web.Request, r: Resource, namespace: str | None, watch_path: bool) -> web.StreamResponse:
        q = request.query
        dry_run = bool(q.get("dryRun"))
        if request.method == "GET":
            matchers = [m for m in (label_matcher(q.get("labelSelector")), field_matcher(q.get("fieldSelector"))) if m]
            if watch_path or _flag(q.get("watch")):
                return await self._watch(request, r, namespace, matchers)
            items, rv = self.api.list(r, namespace, matchers)
            if wants_table(request.headers.get("Accept", "")):
                return _json(self._table(request, r, items, rv))
            return _json({"kind": f"{r.kind}List", "apiVersion": r.api_version, "metadata": {"resourceVersion": rv}, "items": items})
        if request.method == "POST":
            return _json(self.api.create(r, namespace, await self._body(request), dry_run=dry_run), 201)
        raise ApiError(405, f"the server does not allow this method on the requested resource ({request.method})", "MethodNotAllowed")

    async def _item(self, request: web.Request, r: Resource, namespace: str | None, name: str, sub: str | None) -> web.StreamResponse:
        dry_run = bool(request.query.get("dryRun"))
        method = request.method
        if sub == "scale":
            if method == "GET":
                return _json(self.api.get_scale(r, namespace, name))
            if method == "PUT":
                return _json(self.api.update_scale(r, namespace, name, await self._body(request), dry_run=dry_run))
            if method == "PATCH":
                raw = await request.read()
                return _json(self.api.patch(r, namespace, name, request.content_type, raw, sub="scale", dry_run=dry_run))
        elif method == "GET":
            return self._respond(request, r, self.api.get(r, namespace, name))
        elif method == "PUT":
            return _json(self.api.update(r, namespace, name, await self._body(request), sub=sub, dry_run=dry_run))
        elif method == "PATCH":
            raw = await request.read()
            return _json(self.api.patch(r, namespace, name, request.content_type, raw, sub=sub, dry_run=dry_run))
        elif method == "DELETE" and sub is None:
            raw = await request.read()
            body = json.loads(raw) if raw.strip() else None
            return _json(self.api.delete(r, namespace, name, body, dry_run=dry_run))
        raise ApiError(405, f"the server does not allow this method on the requested resource ({method})", "MethodNotAllowed")

    # --- watch --------------------------------------------------------------------------------

    async def _watch(
        self, request: web.Request, r: Resource, namespace: str | None, matchers: list[Matcher],
        convert: Callable[[dict[str, Any]], dict[str, Any]] | None = None, api_version: str | None = None,
    ) -> web.StreamResponse:
        q = request.query
        rv_param = q.get("resourceVersion") or ""
        bookmarks = _flag(q.get("allowWatchBookmarks"))
        initial_end = _flag(q.get("sendInitialEvents"))
        table = wants_table(request.headers.get("Accept", ""))
        try:
            timeout = float(q.get("timeoutSeconds") or 1800)
        except ValueError:
            raise ApiError.bad_request("timeoutSeconds must be a number") from None
        since = None
        if rv_param not in ("", "0") and not initial_end:
            if not rv_param.isdigit():
                raise ApiError.bad_request(f"invalid resource version: {rv_param!r}")
            since = int(rv_param)
        response = web.StreamResponse(status=200, headers={"Content-Type": _JSON})
        response.enable_chunked_encoding()
        try:
            with self.store.lock:
                watcher, replay, last_rv = self.store.subscribe(r.plural, since)
                initial = self.store.list(r.plural, namespace) if since is None else []
        except ApiError as exc:
            if exc.code != 410:
                raise
            await response.prepare(request)
            await response.write(self._line({"type": "ERROR", "object": exc.status}))
            await response.write_eof()
            return response

        def visible(obj: dict[str, Any] | None) -> bool:
            if obj is None:
                return False
            if namespace is not None and r.namespaced and obj["metadata"].get("namespace") != namespace:
                return False
            return all(m(obj) for m in matchers)

        def encode(kind: str, obj: dict[str, Any]) -> bytes:
            if table and kind in ("ADDED", "MODIFIED", "DELETED"):
                obj = self._table(request, r, [obj], obj["metadata"]["resourceVersion"])
            elif convert is not None and kind != "BOOKMARK":
                obj = convert(obj)
            return self._line({"type": kind, "object": obj})

        def translate(event: WatchEvent) -> bytes | None:
            new, old = visible(event.obj), visible(event.old)
            if event.type == "DELETED":
                return encode("DELETED", event.obj) if old else None
            if new and old:
                return encode("MODIFIED", event.obj)
            if new:
                return encode("ADDED", event.obj)
            if old:
                return encode("DELETED", event.obj)
            return None

        def bookmark(rv: int, end_of_initial: bool = False) -> bytes:
            meta: dict[str, Any] = {"resourceVersion": str(rv), "creationTimestamp": None}
            if end_of_initial:
                meta["annotations"] = {"k8s.io/initial-events-end": "true"}
            return self._line({"type": "BOOKMARK", "object": {"kind": r.kind, "apiVersion": api_version or r.api_version, "metadata": meta}})

        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            await response.prepare(request)
            chunks = [encode("ADDED", o) for o in sorted(initial, key=lambda o: int(o["metadata"]["resourceVersion"])) if visible(o)]
            for event in replay:
                last_rv = max(last_rv, event.rv)
                if (line := translate(event)) is not None:
                    chunks.append(line)
            if initial_end and bookmarks:
                chunks.append(bookmark(last_rv, end_of_initial=True))
            if chunks:
                await response.write(b"".join(chunks))
            next_bookmark = loop.time() + self.bookmark_interval
            while True:
                now = loop.time()
                if now >= deadline:
                    break
                wait = min(deadline, next_bookmark) - now if bookmarks else deadline - now
                try:
                    event = await asyncio.wait_for(watcher.queue.get(), timeout=max(wait, 0.0))
                except TimeoutError:
                    if bookmarks and loop.time() >= next_bookmark:
                        current = self.store.resource_version
                        await asyncio.sleep(0)  # let events handed over from other threads arrive
                        dropped = False
                        while not watcher.queue.empty():
                            queued = watcher.queue.get_nowait()
                            if queued is None:
                                dropped = True
                                break
                            last_rv = max(last_rv, queued.rv)
                            if (line := translate(queued)) is not None:
                                await response.write(line)
                        if dropped:
                            break
                        last_rv = max(last_rv, current)
                        await response.write(bookmark(last_rv))
                        next_bookmark = loop.time() + self.bookmark_interval
                    continue
                if event is None:
                    break
                if since is not None and event.rv <= since:
                    continue
                last_rv = max(last_rv, event.rv)
                if (line := translate(event)) is not None:
                    await response.write(line)
            await response.write_eof()
        except (ConnectionResetError, ConnectionError):
            pass
        finally:
            self.store.unsubscribe(watcher)
        return response

    @staticmethod
    def _line(event: dict[str, Any]) -> bytes:
        return json.dumps(event, separators=(",", ":")).encode() + b"\n"
