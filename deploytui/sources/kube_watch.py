"""Connection to the Kubernetes API and the list+watch threads behind the rollouts pane.

The official ``kubernetes`` client is imported lazily (its import costs ~0.1 s) and is blocking,
so everything here runs in threads. Responses are read as raw JSON (``_preload_content=False``)
and turned straight into the compact records of :mod:`deploytui.sources.rollout_model`: the
client's model classes would cost far more time and memory on 10,000 pods.
"""

from __future__ import annotations

import json
import logging
import os
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from deploytui.config import Settings
from deploytui.errors import SourceError
from deploytui.sources.rollout_model import deployment_info, pod_info, replica_set_info

__all__ = [
    "KINDS",
    "KubeClient",
    "KubeHandle",
    "ListWatch",
    "api_error_message",
    "connect",
    "error_status",
]

log = logging.getLogger(__name__)

WATCH_SECONDS = 240          # server-side watch timeout; the stream is then resumed
LIST_PAGE = 500
BACKOFF_MAX = 30.0


@dataclass(frozen=True)
class KindSpec:
    plural: str
    api: str                 # "apps" or "core"
    list_namespaced: str
    list_all: str
    extract: Callable[[Mapping[str, Any]], Any]


KINDS: Mapping[str, KindSpec] = {
    "deployments": KindSpec("deployments", "apps", "list_namespaced_deployment",
                            "list_deployment_for_all_namespaces", deployment_info),
    "replicasets": KindSpec("replicasets", "apps", "list_namespaced_replica_set",
                            "list_replica_set_for_all_namespaces", replica_set_info),
    "pods": KindSpec("pods", "core", "list_namespaced_pod", "list_pod_for_all_namespaces",
                     pod_info),
}


# --- errors in plain words --------------------------------------------------------------------


def error_status(exc: BaseException) -> int | None:
    """The HTTP status of an ``ApiException`` (None for network errors and timeouts)."""
    status = getattr(exc, "status", None)
    return status if isinstance(status, int) and status > 0 else None


def _api_reason(exc: BaseException) -> str:
    body = getattr(exc, "body", None)
    if body:
        try:
            doc = json.loads(body)
            if isinstance(doc, dict) and doc.get("message"):
                return str(doc["message"])
        except (TypeError, ValueError):
            pass
    return str(getattr(exc, "reason", "") or exc.__class__.__name__)


def is_timeout(exc: BaseException) -> bool:
    import urllib3.exceptions as ue

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, (ue.NewConnectionError, ConnectionError)):
            return False    # refused / unreachable (NewConnectionError subclasses a timeout)
        if isinstance(seen, (ue.TimeoutError, TimeoutError, socket.timeout)):
            return True
        reason = getattr(seen, "reason", None)
        if isinstance(reason, BaseException) and reason is not seen:
            seen = reason
            continue
        seen = seen.__cause__ or seen.__context__
    return False


def api_error_message(exc: BaseException, *, action: str, target: str, timeout: float = 0.0) -> str:
    """One sentence for the operator: what failed and why, from an ApiException or network error."""
    status = error_status(exc)
    reason = _api_reason(exc)
    if status == 401:
        return (f"{action} {target}: the cluster did not accept our credentials (401 Unauthorized); "
                f"check the kubeconfig or token")
    if status == 403:
        return (f"{action} {target}: not allowed (403 Forbidden) — your Kubernetes user lacks the "
                f"permission: {reason}")
    if status == 404:
        return f"{action} {target}: not found (404) — it may have been deleted: {reason}"
    if status == 409:
        return (f"{action} {target}: someone else changed it at the same moment (409 Conflict); "
                f"review the new state and try again")
    if status == 410:
        return f"{action} {target}: the API's history is gone (410 Gone): {reason}"
    if status in (400, 422):
        return f"{action} {target}: the API rejected the change as invalid ({status}): {reason}"
    if status == 429:
        return f"{action} {target}: the API server is throttling requests (429); try again shortly"
    if status is not None and status >= 500:
        return f"{action} {target}: the API server failed ({status}): {reason}"
    if status is not None:
        return f"{action} {target}: the API answered {status}: {reason}"
    if is_timeout(exc):
        secs = f" within {timeout:g} s" if timeout else ""
        return f"{action} {target}: the API server did not answer{secs} (timeout)"
    return f"{action} {target}: cannot reach the API server ({exc.__class__.__name__}: {exc})"


# --- connection -------------------------------------------------------------------------------


class KubeClient:
    """An ``ApiClient`` with the three APIs deploytui uses and raw-JSON calls."""

    def __init__(self, api_client: Any, *, namespaces: tuple[str, ...], context: str,
                 request_timeout: float) -> None:
        from kubernetes import client

        self.api_client = api_client
        self.apps = client.AppsV1Api(api_client)
        self.core = client.CoreV1Api(api_client)
        self.coordination = client.CoordinationV1Api(api_client)
        self.namespaces = namespaces
        self.context = context
        self.request_timeout = request_timeout

    def api(self, name: str) -> Any:
        return {"apps": self.apps, "core": self.core, "coordination": self.coordination}[name]

    def call(self, api: str, method: str, *args: Any, timeout: float | None = None,
             **kwargs: Any) -> Any:
        """Call ``api.method`` and return the decoded JSON body (ApiException on non-2xx)."""
        fn = getattr(self.api(api), method)
        resp = fn(*args, _preload_content=False,
                  _request_timeout=timeout or self.request_timeout, **kwargs)
        try:
            data = resp.data
        finally:
            resp.release_conn()
        return json.loads(data) if data else None

    def stream(self, api: str, method: str, *args: Any, **kwargs: Any) -> Any:
        """Open a streaming (watch) request; returns the urllib3 response."""
        fn = getattr(self.api(api), method)
        return fn(*args, _preload_content=False, **kwargs)

    def close(self) -> None:
        try:
            self.api_client.close()
        except Exception:  # closing a pool that is already closed is harmless
            pass


def _context_namespace(config_file: str | None, context: str) -> tuple[str, str]:
    from kubernetes import config as kconfig

    contexts, active = kconfig.list_kube_config_contexts(config_file=config_file)
    chosen = next((c for c in contexts if c.get("name") == context), None) if context else active
    if chosen is None:
        names = ", ".join(sorted(c.get("name", "") for c in contexts)) or "none"
        raise SourceError("kubernetes", f"context {context!r} is not in the kubeconfig "
                                        f"(contexts: {names})", kind="config")
    return chosen.get("name", ""), (chosen.get("context") or {}).get("namespace") or "default"


def connect(settings: Settings) -> KubeClient:
    """Build a client from ``[kubernetes]`` (kubeconfig / context / namespaces, or in-cluster).

    Blocking (it may run an exec credential plugin); raises :class:`SourceError` with the reason.
    """
    from kubernetes import client
    from kubernetes import config as kconfig
    from kubernetes.config.config_exception import ConfigException

    ks = settings.kubernetes
    cfg = client.Configuration()
    try:
        if ks.in_cluster:
            kconfig.load_incluster_config(client_configuration=cfg)
            context = "in-cluster"
            ns_file = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
            try:
                with open(ns_file, encoding="utf-8") as fh:
                    default_ns = fh.read().strip() or "default"
            except OSError:
                default_ns = "default"
        else:
            path = str(settings.resolve_path(ks.kubeconfig)) if ks.kubeconfig else None
            if path is None and not os.environ.get("KUBECONFIG") and not os.path.exists(
                    os.path.expanduser("~/.kube/config")):
                raise SourceError("kubernetes", "no kubeconfig: set [kubernetes] kubeconfig, "
                                                "$KUBECONFIG, or create ~/.kube/config", kind="config")
            context, default_ns = _context_namespace(path, ks.context)
            kconfig.load_kube_config(config_file=path, context=context or None,
                                     client_configuration=cfg, persist_config=False)
    except ConfigException as exc:
        raise SourceError("kubernetes", f"cannot load the Kubernetes configuration: {exc}",
                          kind="config") from None
    except OSError as exc:
        raise SourceError("kubernetes", f"cannot read the kubeconfig: {exc}", kind="config") from None
    namespaces = tuple(ks.namespaces) or (default_ns,)
    cfg.connection_pool_maxsize = max(16, 3 * len(namespaces) + 8)
    api_client = client.ApiClient(cfg)
    api_client.user_agent = "deploytui"
    return KubeClient(api_client, namespaces=namespaces, context=context,
                      request_timeout=ks.request_timeout)


class KubeHandle:
    """Connects on first use (thread-safe), so building the runtime never imports the client."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client: KubeClient | None = None
        self._lock = threading.Lock()

    def client(self) -> KubeClient:
        with self._lock:
            if self._client is None:
                self._client = connect(self.settings)
            return self._client

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None


# --- list + watch -----------------------------------------------------------------------------


def _lines(resp: Any) -> Iterator[bytes]:
    buf = bytearray()
    for chunk in resp.stream(amt=None, decode_content=True):
        buf.extend(chunk)
        start = 0
        while (nl := buf.find(b"\n", start)) != -1:
            if nl > start:
                yield bytes(buf[start:nl])
            start = nl + 1
        del buf[:start]
    if buf.strip():
        yield bytes(buf)


class ListWatch(threading.Thread):
    """One kind in one namespace (None: all namespaces): list, then watch from the list's
    ``resourceVersion``; resume after a dropped stream, re-list after 410 Gone, back off
    (with jitter, up to 30 s) while the API is unreachable.

    ``emit(item)`` receives ``("list", kind, namespace, infos)`` after every (re-)list and
    ``("event", kind, type, info)`` per change; ``status(name, error)`` gets None when healthy
    and the operator-readable reason when not.
    """

    def __init__(self, client: KubeClient, spec: KindSpec, namespace: str | None,
                 emit: Callable[[tuple[Any, ...]], None],
                 status: Callable[[str, str | None], None]) -> None:
        super().__init__(name=f"watch:{spec.plural}:{namespace or '*'}", daemon=True)
        self.client = client
        self.spec = spec
        self.namespace = namespace
        self.emit = emit
        self.report = status
        self.stop_event = threading.Event()
        self.resource_version: str | None = None
        self.relists = 0
        self.reconnects = 0
        self._resp: Any = None

    def _list_call(self) -> tuple[str, tuple[Any, ...]]:
        if self.namespace is None:
            return self.spec.list_all, ()
        return self.spec.list_namespaced, (self.namespace,)

    def stop(self) -> None:
        self.stop_event.set()
        resp = self._resp
        if resp is not None:
            try:
                sock = getattr(getattr(resp, "connection", None), "sock", None)
                if sock is not None:
                    sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def run(self) -> None:
        backoff = 0.5
        while not self.stop_event.is_set():
            try:
                if self.resource_version is None:
                    self._list()
                    self.report(self.name, None)
                self._watch()
                backoff = 0.5
            except Exception as exc:
                if self.stop_event.is_set():
                    return
                if error_status(exc) == 410:
                    self.resource_version = None
                    continue
                where = self.namespace or "all namespaces"
                self.report(self.name, api_error_message(
                    exc, action="reading", target=f"{self.spec.plural} in {where}",
                    timeout=self.client.request_timeout))
                log.debug("%s failed: %s", self.name, exc)
                self.stop_event.wait(backoff * (0.8 + 0.4 * random.random()))
                backoff = min(BACKOFF_MAX, backoff * 2)

    def _list(self) -> None:
        method, args = self._list_call()
        infos: list[Any] = []
        token: str | None = None
        extract = self.spec.extract
        while True:
            kwargs: dict[str, Any] = {"limit": LIST_PAGE}
            if token:
                kwargs["_continue"] = token
            doc = self.client.call(self.spec.api, method, *args, **kwargs) or {}
            infos.extend(extract(item) for item in doc.get("items") or ())
            meta = doc.get("metadata") or {}
            token = meta.get("continue") or None
            if not token:
                self.resource_version = str(meta.get("resourceVersion") or "") or None
                break
        self.relists += 1
        self.emit(("list", self.spec.plural, self.namespace, infos))

    def _watch(self) -> None:
        method, args = self._list_call()
        kwargs: dict[str, Any] = {
            "watch": True, "allow_watch_bookmarks": True, "timeout_seconds": WATCH_SECONDS,
            "_request_timeout": (self.client.request_timeout, WATCH_SECONDS + 30),
        }
        if self.resource_version:
            kwargs["resource_version"] = self.resource_version
        resp = self.client.stream(self.spec.api, method, *args, **kwargs)
        self._resp = resp
        self.reconnects += 1
        self.report(self.name, None)
        extract = self.spec.extract
        try:
            for line in _lines(resp):
                if self.stop_event.is_set():
                    return
                event = json.loads(line)
                kind = event.get("type")
                obj = event.get("object") or {}
                if kind == "ERROR":
                    code = obj.get("code")
                    if code == 410:
                        self.resource_version = None   # history compacted: list again
                        return
                    raise SourceError("kubernetes", f"watch error {code}: {obj.get('message')}")
                rv = (obj.get("metadata") or {}).get("resourceVersion")
                if rv:
                    self.resource_version = str(rv)
                if kind in ("ADDED", "MODIFIED", "DELETED"):
                    self.emit(("event", self.spec.plural, kind, extract(obj)))
        finally:
            self._resp = None
            resp.close()
            resp.release_conn()
        if not self.stop_event.is_set():
            time.sleep(0.05)   # a server that ends streams at once must not make us spin
