"""A small RBAC stand-in: everything is allowed unless denied, per verb / resource / namespace.

Denied requests get 403 Forbidden with the apiserver's message, and
``selfsubjectaccessreviews`` (``kubectl auth can-i``) answer from the same rules.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from deploytui.demo.kube.util import ApiError

__all__ = ["USER", "Access", "decode_access_review"]

USER = "deploytui-demo"


_PROTO_MAGIC = b"k8s\x00"


def _proto_fields(data: bytes) -> dict[int, list[bytes | int]]:
    """Decode one protobuf message into {field number: [values]} (no schema needed)."""
    fields: dict[int, list[bytes | int]] = {}
    i = 0

    def varint() -> int:
        nonlocal i
        shift = result = 0
        while True:
            byte = data[i]
            i += 1
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return result
            shift += 7

    while i < len(data):
        key = varint()
        number, wire = key >> 3, key & 7
        value: bytes | int
        if wire == 0:
            value = varint()
        elif wire == 2:
            length = varint()
            value, i = data[i : i + length], i + length
        elif wire == 1:
            value, i = data[i : i + 8], i + 8
        elif wire == 5:
            value, i = data[i : i + 4], i + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        fields.setdefault(number, []).append(value)
    return fields


def _first(fields: dict[int, list[bytes | int]], number: int) -> bytes:
    value = fields.get(number, [b""])[0]
    return value if isinstance(value, bytes) else b""


def decode_access_review(raw: bytes) -> dict[str, Any]:
    """A ``SelfSubjectAccessReview`` from its JSON or Kubernetes protobuf encoding (kubectl
    ``auth can-i`` sends protobuf)."""
    if not raw.startswith(_PROTO_MAGIC):
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            raise ApiError.bad_request("the request body is not valid JSON") from None
        return body if isinstance(body, dict) else {}
    try:
        review = _proto_fields(_first(_proto_fields(raw[len(_PROTO_MAGIC) :]), 2))
        spec = _proto_fields(_first(review, 2))
        attrs = _proto_fields(_first(spec, 1)) if 1 in spec else {}
    except (IndexError, ValueError) as exc:
        raise ApiError.bad_request(f"the request body is not a valid protobuf message: {exc}") from None
    names = {1: "namespace", 2: "verb", 3: "group", 4: "version", 5: "resource", 6: "subresource", 7: "name"}
    resource = {name: _first(attrs, n).decode() for n, name in names.items() if n in attrs}
    return {"spec": {"resourceAttributes": resource} if resource else {}}


class Access:
    """Deny rules keyed by (verb, "resource[/subresource]", namespace or "*")."""

    def __init__(self) -> None:
        self._denied: set[tuple[str, str, str]] = set()
        self._lock = threading.Lock()

    def set(self, verb: str, resource: str, *, allowed: bool, namespace: str | None = None) -> None:
        key = (verb, resource, namespace or "*")
        with self._lock:
            if allowed:
                self._denied.discard(key)
            else:
                self._denied.add(key)

    def allowed(self, verb: str, resource: str, namespace: str | None) -> bool:
        with self._lock:
            if not self._denied:
                return True
            for v in (verb, "*"):
                for r in (resource, "*"):
                    for ns in (namespace or "*", "*"):
                        if (v, r, ns) in self._denied:
                            return False
        return True

    def check(self, verb: str, plural: str, sub: str | None, group: str, namespace: str | None, name: str | None) -> None:
        resource = f"{plural}/{sub}" if sub else plural
        if self.allowed(verb, resource, namespace):
            return
        qualified = f"{plural}.{group}" if group else plural
        subject = f'{qualified} "{name}"' if name else qualified
        where = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
        message = f'{subject} is forbidden: User "{USER}" cannot {verb} resource "{resource}" in API group "{group}"{where}'
        details: dict[str, Any] = {"kind": plural}
        if name:
            details["name"] = name
        if group:
            details["group"] = group
        raise ApiError(403, message, "Forbidden", details)

    def review(self, body: Any) -> dict[str, Any]:
        """Answer a ``SelfSubjectAccessReview``."""
        spec = (body or {}).get("spec") or {}
        attrs = spec.get("resourceAttributes") or {}
        resource = attrs.get("resource", "")
        if attrs.get("subresource"):
            resource = f"{resource}/{attrs['subresource']}"
        allowed = self.allowed(attrs.get("verb", ""), resource, attrs.get("namespace") or None) if attrs else True
        status: dict[str, Any] = {"allowed": allowed}  # RBAC never explains a "no"
        return {
            "kind": "SelfSubjectAccessReview",
            "apiVersion": "authorization.k8s.io/v1",
            "metadata": {"creationTimestamp": None},
            "spec": spec,
            "status": status,
        }
