"""Small helpers shared by the simulated Kubernetes API: errors, timestamps, hashing."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "ApiError",
    "clone",
    "fnv32a",
    "format_age",
    "micro_timestamp",
    "parse_timestamp",
    "safe_encode",
    "scaled_value",
    "status_failure",
    "timestamp",
]


def clone(obj: Any) -> Any:
    """A deep copy of JSON-shaped data (faster than ``copy.deepcopy`` for dicts of strings)."""
    return json.loads(json.dumps(obj))


def timestamp(t: float) -> str:
    """RFC 3339 with second precision, as ``metav1.Time`` serialises."""
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro_timestamp(t: float) -> str:
    """RFC 3339 with microseconds, as ``metav1.MicroTime`` serialises."""
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_timestamp(value: str | None) -> float | None:
    if not value:
        return None
    text = value.replace("Z", "+00:00")
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def format_age(seconds: float) -> str:
    """Go's ``duration.HumanDuration``, which kubectl uses for the AGE column."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        rest = s % 60
        return f"{minutes}m" if rest == 0 else f"{minutes}m{rest}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h" if rest == 0 else f"{hours}h{rest}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d" if rest == 0 else f"{hours // 24}d{rest}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if days == 0 else f"{hours // 24 // 365}y{days}d"
    return f"{hours // 24 // 365}y"


def fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for byte in data:
        h ^= byte
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def safe_encode(value: int) -> str:
    """Like apimachinery's ``rand.SafeEncodeString`` of the decimal hash: no vowels, no 0/1/3."""
    return "".join(_SAFE_ALPHABET[ord(ch) % len(_SAFE_ALPHABET)] for ch in str(value))


_PERCENT = re.compile(r"^(\d+)%$")


def scaled_value(value: int | str | None, total: int, *, round_up: bool, default: str) -> int:
    """``intstr.GetScaledValueFromIntOrPercent``: ints as they are, percentages of ``total``."""
    if value is None:
        value = default
    if isinstance(value, bool):
        raise ApiError.invalid("Deployment", "", f"invalid value {value!r}: must be an int or a percentage")
    if isinstance(value, int):
        return value
    match = _PERCENT.match(str(value))
    if not match:
        if str(value).isdigit():
            return int(value)
        raise ApiError.invalid("Deployment", "", f"invalid value {value!r}: must be an int or a percentage")
    scaled = int(match.group(1)) * total / 100
    return math.ceil(scaled) if round_up else math.floor(scaled)


_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


def status_failure(
    code: int, message: str, reason: str | None = None, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A ``v1.Status`` with ``status: Failure`` as the apiserver writes it."""
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason or _REASONS.get(code, "Unknown"),
        "code": code,
    }
    if details:
        body["details"] = details
    return body


class ApiError(Exception):
    """An API failure that the server turns into a ``Status`` response."""

    def __init__(
        self, code: int, message: str, reason: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.status = status_failure(code, message, reason, details)

    @staticmethod
    def _details(qualified: str, name: str) -> dict[str, Any]:
        resource, _, group = qualified.partition(".")
        details: dict[str, Any] = {"name": name, "kind": resource}
        if group:
            details["group"] = group
        return details

    @classmethod
    def not_found(cls, qualified: str, name: str) -> ApiError:
        return cls(404, f'{qualified} "{name}" not found', "NotFound", cls._details(qualified, name))

    @classmethod
    def already_exists(cls, qualified: str, name: str) -> ApiError:
        return cls(409, f'{qualified} "{name}" already exists', "AlreadyExists", cls._details(qualified, name))

    @classmethod
    def conflict(cls, qualified: str, name: str) -> ApiError:
        message = (
            f'Operation cannot be fulfilled on {qualified} "{name}": the object has been modified; '
            "please apply your changes to the latest version and try again"
        )
        return cls(409, message, "Conflict", cls._details(qualified, name))

    @classmethod
    def invalid(cls, kind: str, name: str, problem: str) -> ApiError:
        message = f'{kind} "{name}" is invalid: {problem}'
        return cls(422, message, "Invalid", {"name": name, "kind": kind})

    @classmethod
    def bad_request(cls, message: str) -> ApiError:
        return cls(400, message, "BadRequest")
