"""Label selectors (equality and set-based) and field selectors, as the apiserver parses them."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from deploytui.demo.kube.util import ApiError

__all__ = ["field_matcher", "label_matcher", "selector_string"]

Matcher = Callable[[Mapping[str, Any]], bool]

_SET = re.compile(r"^\s*([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")
_EQ = re.compile(r"^\s*([\w./-]+)\s*(==|!=|=)\s*([\w./-]*)\s*$")
_EXISTS = re.compile(r"^\s*(!?)\s*([\w./-]+)\s*$")


def _split_terms(text: str) -> list[str]:
    """Split on commas that are not inside ``in (a,b)`` parentheses."""
    terms, depth, current = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            terms.append("".join(current))
            current = []
        else:
            current.append(ch)
    terms.append("".join(current))
    return [t for t in terms if t.strip()]


def _term(term: str) -> Callable[[Mapping[str, str]], bool]:
    if m := _SET.match(term):
        key, op, values = m.group(1), m.group(2), {v.strip() for v in m.group(3).split(",") if v.strip()}
        if op == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    if m := _EQ.match(term):
        key, op, value = m.groups()
        if op == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    if m := _EXISTS.match(term):
        negate, key = m.groups()
        if negate:
            return lambda labels: key not in labels
        return lambda labels: key in labels
    raise ApiError.bad_request(f"unable to parse requirement: {term.strip()!r}")


def label_matcher(selector: str | None) -> Matcher | None:
    """A predicate over objects for a ``labelSelector`` query value, or None for "everything"."""
    if not selector or not selector.strip():
        return None
    terms = [_term(t) for t in _split_terms(selector)]

    def match(obj: Mapping[str, Any]) -> bool:
        labels = obj.get("metadata", {}).get("labels") or {}
        return all(t(labels) for t in terms)

    return match


def _lookup(obj: Mapping[str, Any], path: str) -> str:
    value: Any = obj
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return ""
        value = value.get(part)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def field_matcher(selector: str | None) -> Matcher | None:
    """A predicate for a ``fieldSelector`` (``metadata.name=x,involvedObject.kind=Pod``)."""
    if not selector or not selector.strip():
        return None
    terms: list[tuple[str, bool, str]] = []
    for raw in _split_terms(selector):
        m = _EQ.match(raw)
        if not m:
            raise ApiError.bad_request(f"invalid field selector: {raw.strip()!r}")
        key, op, value = m.groups()
        terms.append((key, op != "!=", value))

    def match(obj: Mapping[str, Any]) -> bool:
        return all((_lookup(obj, key) == value) == equal for key, equal, value in terms)

    return match


def selector_string(selector: Mapping[str, Any] | None) -> str:
    """``metav1.LabelSelector`` rendered as a selector string (``app=x,tier in (a,b)``)."""
    if not selector:
        return ""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        op = str(expr.get("operator", "")).lower()
        key = expr.get("key", "")
        values = ",".join(sorted(expr.get("values") or []))
        if op == "in":
            parts.append(f"{key} in ({values})")
        elif op == "notin":
            parts.append(f"{key} notin ({values})")
        elif op == "exists":
            parts.append(key)
        elif op == "doesnotexist":
            parts.append(f"!{key}")
    return ",".join(parts)
