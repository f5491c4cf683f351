"""The three patch types kubectl sends: JSON patch, JSON merge patch, strategic merge patch."""

from __future__ import annotations

import json
from typing import Any

from deploytui.demo.kube.util import ApiError, clone

__all__ = ["JSON_PATCH", "MERGE_PATCH", "STRATEGIC_MERGE_PATCH", "apply_patch"]

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"

# Merge keys of the list fields that have a "merge" patch strategy in the Kubernetes types we serve.
_MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "imagePullSecrets": "name",
    "conditions": "type",
    "ownerReferences": "uid",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
}


def apply_patch(content_type: str, target: dict[str, Any], body: bytes) -> dict[str, Any]:
    """Return a patched copy of ``target``; ``ApiError`` for a malformed or unsupported patch."""
    kind = content_type.split(";")[0].strip().lower()
    try:
        patch = json.loads(body or b"null")
    except ValueError as exc:
        raise ApiError.bad_request(f"the patch is not valid JSON: {exc}") from None
    if kind == JSON_PATCH:
        if not isinstance(patch, list):
            raise ApiError.bad_request("a JSON patch must be a list of operations")
        return _json_patch(clone(target), patch)
    if not isinstance(patch, dict):
        raise ApiError.bad_request("a merge patch must be a JSON object")
    if kind == MERGE_PATCH:
        return _merge(clone(target), patch)
    if kind == STRATEGIC_MERGE_PATCH:
        return _strategic(clone(target), patch)
    raise ApiError(
        415,
        f"the body of the request was in an unknown format - accepted media types include: "
        f"{JSON_PATCH}, {MERGE_PATCH}, {STRATEGIC_MERGE_PATCH}",
        "UnsupportedMediaType",
    )


# --- RFC 6902 ---------------------------------------------------------------------------------


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise ApiError(422, f"invalid JSON pointer {path!r}", "Invalid")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _parent(doc: Any, parts: list[str]) -> Any:
    node = doc
    for part in parts[:-1]:
        if isinstance(node, list):
            node = node[_index(node, part, existing=True)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            raise ApiError(422, f"the patch path does not exist: /{'/'.join(parts)}", "Invalid")
    return node


def _index(node: list[Any], part: str, *, existing: bool) -> int:
    if part == "-" and not existing:
        return len(node)
    try:
        i = int(part)
    except ValueError:
        raise ApiError(422, f"invalid list index {part!r}", "Invalid") from None
    if i < 0 or i > len(node) - (1 if existing else 0):
        raise ApiError(422, f"list index {i} out of range", "Invalid")
    return i


def _get(doc: Any, parts: list[str]) -> Any:
    if not parts:
        return doc
    parent = _parent(doc, parts)
    last = parts[-1]
    if isinstance(parent, list):
        return parent[_index(parent, last, existing=True)]
    if isinstance(parent, dict) and last in parent:
        return parent[last]
    raise ApiError(422, f"the patch path does not exist: /{'/'.join(parts)}", "Invalid")


def _remove(doc: Any, parts: list[str]) -> Any:
    parent = _parent(doc, parts)
    last = parts[-1]
    if isinstance(parent, list):
        return parent.pop(_index(parent, last, existing=True))
    if isinstance(parent, dict) and last in parent:
        return parent.pop(last)
    raise ApiError(422, f"cannot remove missing path /{'/'.join(parts)}", "Invalid")


def _add(doc: Any, parts: list[str], value: Any, *, replace: bool) -> Any:
    if not parts:
        return value
    parent = _parent(doc, parts)
    last = parts[-1]
    if isinstance(parent, list):
        if replace:
            parent[_index(parent, last, existing=True)] = value
        else:
            parent.insert(_index(parent, last, existing=False), value)
    elif isinstance(parent, dict):
        if replace and last not in parent:
            raise ApiError(422, f"cannot replace missing path /{'/'.join(parts)}", "Invalid")
        parent[last] = value
    else:
        raise ApiError(422, f"cannot add below a scalar at /{'/'.join(parts)}", "Invalid")
    return doc


def _json_patch(doc: Any, ops: list[Any]) -> Any:
    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise ApiError.bad_request(f"invalid JSON patch operation: {op!r}")
        name, parts = op["op"], _pointer(op["path"])
        if name == "add":
            doc = _add(doc, parts, clone(op.get("value")), replace=False)
        elif name == "replace":
            doc = _add(doc, parts, clone(op.get("value")), replace=True)
        elif name == "remove":
            _remove(doc, parts)
        elif name in ("move", "copy"):
            source = _pointer(op.get("from", ""))
            value = _remove(doc, source) if name == "move" else clone(_get(doc, source))
            doc = _add(doc, parts, value, replace=False)
        elif name == "test":
            if _get(doc, parts) != op.get("value"):
                raise ApiError(422, f"testing value {op['path']} failed", "Invalid")
        else:
            raise ApiError.bad_request(f"unknown JSON patch operation {name!r}")
    return doc


# --- RFC 7386 ---------------------------------------------------------------------------------


def _merge(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return clone(patch)
    if not isinstance(target, dict):
        target = {}
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        else:
            target[key] = _merge(target.get(key), value)
    return target


# --- strategic merge patch ----------------------------------------------------------------------


def _strategic(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return clone(patch)
    if not isinstance(target, dict):
        target = {}
    directive = patch.get("$patch")
    if directive == "delete":
        return None
    if directive == "replace":
        return {k: clone(v) for k, v in patch.items() if not k.startswith("$")}
    retain = patch.get("$retainKeys")
    for key, value in patch.items():
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            if isinstance(target.get(field), list):
                target[field] = [v for v in target[field] if v not in value]
            continue
        if key.startswith("$"):
            continue  # $setElementOrder/..., $retainKeys, $patch: ordering hints and directives
        if value is None:
            target.pop(key, None)
        elif isinstance(value, list) and isinstance(target.get(key), list):
            target[key] = _strategic_list(key, target[key], value)
        elif isinstance(value, list):
            target[key] = [clone(v) for v in value if not (isinstance(v, dict) and "$patch" in v)]
        else:
            merged = _strategic(target.get(key), value)
            if merged is None:
                target.pop(key, None)
            else:
                target[key] = merged
    if isinstance(retain, list):
        for key in list(target):
            if key not in retain:
                target.pop(key)
    return target


def _merge_key(field: str, items: list[Any]) -> str | None:
    if field == "ports":
        sample = next((i for i in items if isinstance(i, dict)), {})
        return "containerPort" if "containerPort" in sample else "port"
    return _MERGE_KEYS.get(field)


def _strategic_list(field: str, current: list[Any], patch: list[Any]) -> list[Any]:
    key = _merge_key(field, patch + current)
    if key is None or not all(isinstance(i, dict) for i in patch):
        if any(isinstance(i, dict) and i.get("$patch") == "replace" for i in patch):
            return [clone(i) for i in patch if not (isinstance(i, dict) and "$patch" in i)]
        return clone(patch)
    result = [clone(i) for i in current]
    for item in patch:
        directive = item.get("$patch")
        if directive == "replace":
            return [clone(i) for i in patch if "$patch" not in i]
        position = next(
            (n for n, existing in enumerate(result) if isinstance(existing, dict) and existing.get(key) == item.get(key)),
            None,
        )
        if directive == "delete":
            if position is not None:
                result.pop(position)
            continue
        if position is None:
            result.append(_strategic({}, item))
        else:
            result[position] = _strategic(result[position], item)
    return result
