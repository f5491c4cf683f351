"""Verb semantics of the simulated API (create, get, list, update, patch, delete, scale),
independent of HTTP: defaulting, validation, generation, preconditions and subresources."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from deploytui.demo.kube.objects import (
    default_deployment,
    default_pod_spec,
    random_suffix,
    scale_of,
)
from deploytui.demo.kube.patch import apply_patch
from deploytui.demo.kube.resources import Resource
from deploytui.demo.kube.selectors import Matcher
from deploytui.demo.kube.store import Store
from deploytui.demo.kube.util import ApiError, clone

__all__ = ["Api"]

Obj = dict[str, Any]
_STATUS_SUBRESOURCE = {"deployments", "replicasets", "pods", "services", "namespaces"}


class Api:
    """The apiserver's registry layer over a ``Store``."""

    def __init__(self, store: Store, on_pod_created: Callable[[Obj], None] | None = None) -> None:
        self.store = store
        self.on_pod_created = on_pod_created

    # --- reads ------------------------------------------------------------------------------

    def get(self, r: Resource, namespace: str | None, name: str) -> Obj:
        obj = self.store.get(r.plural, namespace if r.namespaced else None, name)
        if obj is None:
            raise ApiError.not_found(r.qualified, name)
        return obj

    def list(self, r: Resource, namespace: str | None, matchers: list[Matcher]) -> tuple[list[Obj], str]:
        with self.store.lock:
            items = self.store.list(r.plural, namespace if r.namespaced else None)
            rv = str(self.store.resource_version)
        if matchers:
            items = [o for o in items if all(m(o) for m in matchers)]
        items.sort(key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
        return items, rv

    # --- writes -----------------------------------------------------------------------------

    def _check_body(self, r: Resource, namespace: str | None, body: Any, name: str | None = None) -> Obj:
        if not isinstance(body, dict):
            raise ApiError.bad_request("the request body must be a JSON object")
        kind = body.get("kind")
        if kind and kind != r.kind:
            raise ApiError.bad_request(f"the kind of the object ({kind}) does not match the resource ({r.kind})")
        meta = body.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise ApiError.bad_request("metadata must be an object")
        if r.namespaced:
            if meta.get("namespace") and meta["namespace"] != namespace:
                raise ApiError.bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        if name is not None and meta.get("name") and meta["name"] != name:
            raise ApiError.bad_request(f"the name of the object ({meta['name']}) does not match the name on the URL ({name})")
        if name is not None:
            meta["name"] = name
        body["kind"], body["apiVersion"] = r.kind, r.api_version
        return body

    def _prepare(self, r: Resource, obj: Obj) -> Obj:
        if r.plural == "deployments":
            default_deployment(obj)
        elif r.plural == "pods":
            default_pod_spec(obj.setdefault("spec", {}))
            obj.setdefault("status", {"phase": "Pending"})
        return obj

    def create(self, r: Resource, namespace: str | None, body: Any, *, dry_run: bool = False) -> Obj:
        obj = self._check_body(r, namespace, body)
        meta = obj["metadata"]
        if not meta.get("name"):
            if meta.get("generateName"):
                meta["name"] = f"{meta['generateName']}{random_suffix()}"
            else:
                raise ApiError.invalid(r.kind, "", "metadata.name: Required value: name or generateName is required")
        for server_side in ("uid", "resourceVersion", "creationTimestamp", "generation", "deletionTimestamp"):
            meta.pop(server_side, None)
        if r.namespaced and self.store.get("namespaces", None, namespace or "") is None:
            raise ApiError.not_found("namespaces", namespace or "")
        self._prepare(r, obj)
        if dry_run:
            if self.store.get(r.plural, namespace, meta["name"]) is not None:
                raise ApiError.already_exists(r.qualified, meta["name"])
            return obj
        stored = self.store.create(r.plural, r.qualified, obj)
        if r.plural == "pods" and self.on_pod_created is not None:
            self.on_pod_created(stored)
        return stored

    def update(self, r: Resource, namespace: str | None, name: str, body: Any, *, sub: str | None = None, dry_run: bool = False) -> Obj:
        """PUT of an object (or of its ``status`` subresource), with optimistic concurrency."""
        obj = self._check_body(r, namespace if r.namespaced else None, body, name)
        with self.store.lock:
            old = self.get(r, namespace, name)
            expect = obj["metadata"].get("resourceVersion") or None
            if expect and expect != old["metadata"]["resourceVersion"]:
                raise ApiError.conflict(r.qualified, name)
            new = self._merge_update(r, old, obj, sub)
            if dry_run:
                return new
            return self.store.replace(r.plural, r.qualified, new, expect_rv=expect)

    def _merge_update(self, r: Resource, old: Obj, obj: Obj, sub: str | None) -> Obj:
        if sub == "status":
            new = clone(old)
            new["status"] = obj.get("status") or {}
            return new
        if sub is not None:
            raise ApiError.not_found(f"{r.qualified}/{sub}", old["metadata"]["name"])
        meta = obj["metadata"]
        for fixed in ("uid", "creationTimestamp", "generation"):
            if fixed in old["metadata"]:
                meta[fixed] = old["metadata"][fixed]
            else:
                meta.pop(fixed, None)
        if r.plural in _STATUS_SUBRESOURCE:
            obj["status"] = clone(old.get("status") or {})
        self._prepare(r, obj)
        spec_keys = ("spec",) if r.plural != "leases" else ()
        if any(obj.get(k) != old.get(k) for k in spec_keys) and r.plural not in ("events", "namespaces"):
            meta["generation"] = int(old["metadata"].get("generation", 1)) + 1
        return obj

    def patch(self, r: Resource, namespace: str | None, name: str, content_type: str, raw: bytes, *, sub: str | None = None, dry_run: bool = False) -> Obj:
        """PATCH: apply the patch to the current object, then update. A patch that sets
        ``metadata.resourceVersion`` is a precondition (409 when stale), as on the apiserver."""
        with self.store.lock:
            old = self.get(r, namespace, name)
            if sub == "scale" and r.plural == "deployments":
                return self._set_scale(r, old, apply_patch(content_type, scale_of(old), raw), dry_run=dry_run)
            patched = apply_patch(content_type, old, raw)
            meta = patched.setdefault("metadata", {})
            if meta.get("resourceVersion") == old["metadata"]["resourceVersion"]:
                meta.pop("resourceVersion")  # untouched by the patch: no precondition
            return self.update(r, namespace, name, patched, sub=sub, dry_run=dry_run)

    def delete(self, r: Resource, namespace: str | None, name: str, body: Any = None, *, dry_run: bool = False) -> Obj:
        expect = None
        if isinstance(body, dict):
            expect = ((body.get("preconditions") or {}).get("resourceVersion")) or None
        with self.store.lock:
            old = self.get(r, namespace, name)
            if not dry_run:
                self.store.delete(r.plural, r.qualified, namespace if r.namespaced else None, name, expect_rv=expect)
        details: Obj = {"name": name, "kind": r.plural, "uid": old["metadata"]["uid"]}
        if r.group:
            details["group"] = r.group
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}

    # --- scale subresource --------------------------------------------------------------------

    def get_scale(self, r: Resource, namespace: str | None, name: str) -> Obj:
        return scale_of(self.get(r, namespace, name))

    def update_scale(self, r: Resource, namespace: str | None, name: str, body: Any, *, dry_run: bool = False) -> Obj:
        if not isinstance(body, dict):
            raise ApiError.bad_request("the request body must be a JSON object")
        with self.store.lock:
            return self._set_scale(r, self.get(r, namespace, name), body, dry_run=dry_run)

    def _set_scale(self, r: Resource, deployment: Obj, scale: Obj, *, dry_run: bool) -> Obj:
        name = deployment["metadata"]["name"]
        expect = (scale.get("metadata") or {}).get("resourceVersion") or None
        if expect and expect != deployment["metadata"]["resourceVersion"]:
            raise ApiError.conflict(r.qualified, name)
        replicas = (scale.get("spec") or {}).get("replicas", 0)
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise ApiError.invalid("Scale", name, f"spec.replicas: Invalid value: {json.dumps(replicas)}: must be greater than or equal to 0")
        new = clone(deployment)
        if new["spec"].get("replicas") != replicas:
            new["spec"]["replicas"] = replicas
            new["metadata"]["generation"] = int(new["metadata"].get("generation", 1)) + 1
        if dry_run:
            return scale_of(new)
        stored = self.store.replace(r.plural, r.qualified, new)
        return scale_of(stored)

