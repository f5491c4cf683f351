"""Health payload parsers: every common format, detected from the content type and the body.

:func:`parse_health` turns one HTTP answer (status code, content type, the first bytes of the
body) into a :class:`Reading`. It never raises: anything it cannot read is the ``unparseable``
format, with the first bytes kept for the detail view.

Formats (``Reading.format``):

``seed``        ``{"status": "healthy", "uptime": 12.3, "version": "1.4.2", "checks": {"db": "healthy"}}``
``actuator``    Spring Boot Actuator: ``{"status": "UP", "components": {...}}`` (nested components;
                UP / DOWN / OUT_OF_SERVICE / UNKNOWN; Boot 1.x ``details`` nesting too)
``ietf``        IETF health-check draft (``application/health+json``): pass / warn / fail, ``checks``
                as ``{"name:measurement": [{...}, ...]}``
``plain``       a short text word: ``ok``, ``healthy``, ``degraded``, ``fail`` ...
``status``      no usable body: the HTTP status code decides (2xx pass, anything else fail)
``unparseable`` a 2xx answer whose body is none of the above

Status words are normalised to ``pass`` / ``warn`` / ``fail`` / ``unknown``.

Also here: :func:`mask_payload` / :func:`pretty_payload`, which mask secret-looking keys before
a payload is shown.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "CheckResult",
    "Reading",
    "Status",
    "is_secret_key",
    "mask_payload",
    "mask_text",
    "normalise_status",
    "parse_health",
    "pretty_payload",
]

Status = Literal["pass", "warn", "fail", "unknown"]

_PASS = frozenset({"pass", "passed", "passing", "ok", "healthy", "up", "green", "true",
                   "alive", "ready", "available", "serving", "running", "success"})
_WARN = frozenset({"warn", "warning", "degraded", "yellow", "partial", "partially_available",
                   "partial_outage"})
_FAIL = frozenset({"fail", "failed", "failing", "unhealthy", "down", "out_of_service", "red",
                   "false", "error", "critical", "unavailable", "not_serving", "dead",
                   "not_ready", "outage", "major_outage"})
_STATUS_RANK: Mapping[str, int] = {"pass": 0, "unknown": 1, "warn": 2, "fail": 3}
#: Characters of an unparseable body kept for the detail view.
EXCERPT_CHARS = 160
_ACTUATOR_WORDS = frozenset({"UP", "DOWN", "OUT_OF_SERVICE", "UNKNOWN"})


def normalise_status(value: Any) -> Status:
    """``"UP"`` -> pass, ``"degraded"`` -> warn, ``"OUT_OF_SERVICE"`` -> fail, else unknown."""
    if isinstance(value, bool):
        return "pass" if value else "fail"
    if not isinstance(value, str):
        return "unknown"
    word = value.strip().lower().replace("-", "_").replace(" ", "_")
    if word in _PASS:
        return "pass"
    if word in _WARN:
        return "warn"
    if word in _FAIL:
        return "fail"
    return "unknown"


def worst(*statuses: Status) -> Status:
    return max(statuses, key=_STATUS_RANK.__getitem__, default="pass")


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One check a health payload reports (a database, a cache, a disk ...)."""

    name: str                   # "database", "db/primary" (nested actuator), "db:responseTime"
    status: Status
    word: str = ""              # the status as the service wrote it ("DOWN", "unhealthy")
    detail: str = ""            # short, secrets masked ("12.3 ms", "database=PostgreSQL")
    critical: bool = True       # set by the source from ``critical_checks``


@dataclass(frozen=True, slots=True)
class Reading:
    """What one health answer says."""

    format: str                  # seed, actuator, ietf, plain, status, unparseable
    status: Status
    word: str = ""               # top-level status as written ("UP", "healthy", "HTTP 200")
    version: str = ""
    uptime_s: float | None = None
    checks: tuple[CheckResult, ...] = ()
    note: str = ""               # e.g. "served as text/html, read as JSON"; "body cut at 64 KiB"
    excerpt: str = ""            # first characters of an unparseable body (escaped, masked)


# --- entry point -------------------------------------------------------------------------------


def parse_health(code: int, content_type: str, body: bytes, *, truncated: bool = False,
                 cap: int = 0) -> Reading:
    """Read one answer. ``truncated``: the body was cut at ``cap`` bytes. Never raises."""
    try:
        reading = _parse(code, content_type, body, truncated, cap)
    except Exception as exc:  # a payload must never take the worker down
        reading = Reading("unparseable", "fail", f"HTTP {code}",
                          note=f"parser error: {exc.__class__.__name__}",
                          excerpt=_excerpt(body))
    if 200 <= code < 300 or reading.format in ("status", "unparseable"):
        return reading
    # A health body with a non-2xx code: the worse of the two wins (503 + "UP" is not healthy).
    if code >= 500 and reading.status != "fail":
        return _replace(reading, status="fail", note=_join(reading.note, f"HTTP {code}"))
    return reading


def _parse(code: int, content_type: str, body: bytes, truncated: bool, cap: int) -> Reading:
    ctype = content_type.split(";", 1)[0].strip().lower()
    stripped = body.strip()
    if not stripped:
        return _status_only(code, "empty body")
    looks_json = stripped[:1] in (b"{", b"[")
    if looks_json or ctype.endswith("json"):
        doc: Any = None
        if not truncated:
            try:
                doc = json.loads(stripped)
            except (ValueError, UnicodeDecodeError):
                doc = None
        if isinstance(doc, dict):
            reading = _from_json(doc, ctype)
            if reading is not None:
                if looks_json and not ctype.endswith("json"):
                    reading = _replace(reading, note=_join(
                        reading.note, f"served as {ctype or 'no content type'}, read as JSON"))
                return reading
        elif truncated and looks_json:
            salvaged = _salvage(stripped, cap)
            if salvaged is not None:
                return salvaged
    text = _as_text(stripped)
    if text is not None and len(text) <= 64 and "\n" not in text.strip():
        status = normalise_status(text)
        if status != "unknown":
            note = ""
            if ctype.endswith("json"):
                note = f"served as {ctype}, read as text"
            return Reading("plain", status, text.strip()[:32], note=note)
    if not 200 <= code < 300:
        return _status_only(code, "body is not a health payload", excerpt=_excerpt(stripped))
    why = f"body cut at {cap} bytes" if truncated else _describe_garbage(ctype, stripped)
    return Reading("unparseable", "fail", f"HTTP {code}", note=why, excerpt=_excerpt(stripped))


def _status_only(code: int, note: str, excerpt: str = "") -> Reading:
    if 200 <= code < 300:
        status: Status = "pass"
    elif code == 429:
        status = "warn"
    else:
        status = "fail"
    return Reading("status", status, f"HTTP {code}", note=note, excerpt=excerpt)


def _from_json(doc: dict[str, Any], ctype: str) -> Reading | None:
    status_value = doc.get("status")
    checks = doc.get("checks")
    if ctype == "application/health+json" or (
        isinstance(checks, dict) and any(isinstance(v, list) for v in checks.values())
    ):
        return _ietf(doc)
    if "actuator" in ctype or "components" in doc or (
        isinstance(status_value, str) and status_value in _ACTUATOR_WORDS and not isinstance(checks, dict)
    ):
        return _actuator(doc)
    if isinstance(status_value, str) and status_value.lower() in ("pass", "warn", "fail"):
        return _ietf(doc)
    if isinstance(status_value, str | bool) or isinstance(checks, dict):
        return _seed(doc)
    return None


# --- formats -----------------------------------------------------------------------------------


def _seed(doc: dict[str, Any]) -> Reading:
    word = doc.get("status")
    checks: list[CheckResult] = []
    raw_checks = doc.get("checks")
    if isinstance(raw_checks, dict):
        for name, value in raw_checks.items():
            detail = ""
            if isinstance(value, dict):
                detail = _details(value, skip=("status",))
                value = value.get("status")
            checks.append(CheckResult(str(name), normalise_status(value), _word(value), detail))
    status = normalise_status(word) if word is not None else (
        worst(*(c.status for c in checks)) if checks else "unknown")
    return Reading("seed", status, _word(word), version=_version(doc),
                   uptime_s=_number(doc.get("uptime", doc.get("uptime_seconds"))),
                   checks=tuple(checks))


def _actuator(doc: dict[str, Any]) -> Reading:
    checks: list[CheckResult] = []

    def walk(prefix: str, node: Mapping[str, Any]) -> None:
        children = node.get("components")
        if not isinstance(children, dict):
            details = node.get("details")
            # Spring Boot 1.x / 2.0 nest components under "details".
            if isinstance(details, dict) and details and all(
                isinstance(v, dict) and "status" in v for v in details.values()
            ):
                children = details
        if isinstance(children, dict) and children:
            for name, child in children.items():
                if isinstance(child, dict):
                    walk(f"{prefix}{name}/", child)
            return
        if prefix:
            value = node.get("status")
            details = node.get("details")
            detail = _details(details) if isinstance(details, dict) else ""
            checks.append(CheckResult(prefix.rstrip("/"), normalise_status(value), _word(value),
                                      detail))

    walk("", doc)
    word = doc.get("status")
    version = _version(doc)
    if not version:
        info = doc.get("components", {}).get("info") if isinstance(doc.get("components"), dict) else None
        if isinstance(info, dict) and isinstance(info.get("details"), dict):
            version = _version(info["details"])
    return Reading("actuator", normalise_status(word), _word(word), version=version,
                   checks=tuple(checks))


def _ietf(doc: dict[str, Any]) -> Reading:
    checks: list[CheckResult] = []
    uptime: float | None = None
    raw_checks = doc.get("checks")
    if isinstance(raw_checks, dict):
        for name, entries in raw_checks.items():
            items = entries if isinstance(entries, list) else [entries]
            objs = [e for e in items if isinstance(e, dict)]
            for entry in objs:
                label = str(name)
                if len(objs) > 1 and entry.get("componentId"):
                    label = f"{name}[{entry['componentId']}]"
                value, unit = entry.get("observedValue"), entry.get("observedUnit", "")
                detail = ""
                if value is not None:
                    detail = f"{value} {unit}".strip() if not isinstance(value, dict | list) else ""
                output = entry.get("output")
                if isinstance(output, str) and output:
                    detail = _join(detail, mask_text(output)[:80])
                if str(name).split(":", 1)[0] == "uptime" and unit in ("s", "seconds"):
                    uptime = _number(value)
                checks.append(CheckResult(label, normalise_status(entry.get("status")),
                                          _word(entry.get("status")), detail))
    word = doc.get("status")
    version = doc.get("releaseId") or doc.get("release_id") or doc.get("version")
    note = doc.get("output") if isinstance(doc.get("output"), str) else ""
    return Reading("ietf", normalise_status(word), _word(word),
                   version=str(version) if isinstance(version, str | int | float) else "",
                   uptime_s=uptime, checks=tuple(checks), note=mask_text(note)[:120])


_SALVAGE_STATUS = re.compile(rb'"status"\s*:\s*"([A-Za-z_ -]{1,32})"')
_SALVAGE_VERSION = re.compile(rb'"(?:version|releaseId)"\s*:\s*"([^"\\]{1,64})"')


def _salvage(prefix: bytes, cap: int) -> Reading | None:
    """A JSON body cut at the cap: read the top-level status / version from its first bytes."""
    head = prefix[:4096]
    m = _SALVAGE_STATUS.search(head)
    if m is None:
        return None
    word = m.group(1).decode("ascii", "replace")
    status = normalise_status(word)
    if status == "unknown":
        return None
    v = _SALVAGE_VERSION.search(head)
    version = v.group(1).decode("utf-8", "replace") if v else ""
    fmt = "ietf" if word.lower() in ("pass", "warn", "fail") else (
        "actuator" if word in _ACTUATOR_WORDS else "seed")
    return Reading(fmt, status, word, version=version,
                   note=f"body cut at {cap} bytes; status read from its first bytes",
                   excerpt=_excerpt(prefix))


# --- helpers -----------------------------------------------------------------------------------


def _replace(reading: Reading, **changes: Any) -> Reading:
    from dataclasses import replace

    return replace(reading, **changes)


def _join(a: str, b: str) -> str:
    return f"{a}; {b}" if a and b else (a or b)


def _word(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return value[:32] if isinstance(value, str) else ""


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _version(doc: Mapping[str, Any]) -> str:
    for key in ("version", "releaseId", "build_version", "app_version"):
        value = doc.get(key)
        if isinstance(value, str | int | float) and not isinstance(value, bool) and value != "":
            return str(value)[:64]
    build = doc.get("build")
    if isinstance(build, dict) and isinstance(build.get("version"), str):
        return build["version"][:64]
    return ""


def _details(details: Mapping[str, Any], skip: tuple[str, ...] = ()) -> str:
    parts = []
    for key, value in details.items():
        if key in skip or isinstance(value, dict | list):
            continue
        if is_secret_key(str(key)):
            shown = "***"
        else:
            shown = mask_text(value) if isinstance(value, str) else str(value)
        parts.append(f"{key}={shown}")
    text = " ".join(parts)
    return text if len(text) <= 80 else text[:79] + "…"


def _as_text(body: bytes) -> str | None:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if any(ord(ch) < 32 and ch not in "\t\r\n" for ch in text):
        return None
    return text


def _describe_garbage(ctype: str, body: bytes) -> str:
    shown = ctype or "no content type"
    if _as_text(body) is None:
        return f"{shown} with binary content ({len(body)} bytes)"
    if body[:1] in (b"{", b"["):
        return f"{shown} without a health status ({len(body)} bytes)"
    return f"{shown} that is not a health payload ({len(body)} bytes)"


def _excerpt(body: bytes) -> str:
    head = body[:EXCERPT_CHARS]
    text = head.decode("utf-8", "backslashreplace")
    text = "".join(ch if ch.isprintable() or ch == " " else repr(ch)[1:-1] for ch in text)
    return mask_text(text)[:EXCERPT_CHARS]


# --- secrets -----------------------------------------------------------------------------------

_SECRET_WORDS = frozenset({"password", "passwd", "pwd", "pass", "token", "secret", "key",
                           "apikey", "authorization", "auth", "credential", "credentials",
                           "cookie", "bearer", "dsn"})
_HINT = re.compile(r"(?i)://|bearer|basic|token|pass|pwd|secret|key|auth|credential")
_WORD_SPLIT = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")
_URL_CREDS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<creds>[^/@\s:]+:[^/@\s]+)@")
_BEARER = re.compile(r"(?i)\b(bearer|basic|token)\s+[A-Za-z0-9._~+/=-]{6,}")
_KV = re.compile(r"""(?ix)
    (?P<key>["']?[A-Za-z0-9_.-]*(?:password|passwd|pwd|token|secret|api[_-]?key|private[_-]?key
        |access[_-]?key|authorization|credentials?)[A-Za-z0-9_.-]*["']?)
    (?P<sep>\s*[:=]\s*)
    (?P<value>"[^"]*"|'[^']*'|[^\s,;&}]+)""")


def is_secret_key(key: str) -> bool:
    """True for keys that look like they hold a secret (``password``, ``apiKey``, ``X-Auth-Token``)."""
    words = {w.lower() for w in _WORD_SPLIT.findall(key)}
    words |= {w[:-1] for w in words if w.endswith("s")}  # tokens, secrets, keys
    if key.lower().replace("-", "").replace("_", "") in _SECRET_WORDS:
        return True
    return bool(words & _SECRET_WORDS)


def mask_text(text: str) -> str:
    """Mask secrets inside free text: ``password=...``, ``Bearer ...``, ``user:pass@`` in URLs."""
    if not text or _HINT.search(text) is None:
        return text
    text = _URL_CREDS.sub(lambda m: f"{m.group('scheme')}***@", text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} ***", text)

    def kv(m: re.Match[str]) -> str:
        value = m.group("value")
        quote = value[0] if value[:1] in ("'", '"') else ""
        return f"{m.group('key')}{m.group('sep')}{quote}***{quote}"

    return _KV.sub(kv, text)


def mask_payload(value: Any) -> Any:
    """A copy of a parsed JSON document with every secret-looking key's value masked."""
    if isinstance(value, dict):
        return {k: ("***" if is_secret_key(str(k)) else mask_payload(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_payload(v) for v in value]
    if isinstance(value, str):
        return mask_text(value)
    return value


def pretty_payload(body: bytes, content_type: str = "", *, limit: int = 200_000) -> str:
    """The raw payload for the detail view: JSON pretty-printed, secrets masked, long text cut."""
    stripped = body.strip()
    if not stripped:
        return "(empty body)"
    try:
        doc = json.loads(stripped)
    except (ValueError, UnicodeDecodeError):
        text = body.decode("utf-8", "backslashreplace")
        text = "".join(ch if ch.isprintable() or ch in "\n\t " else repr(ch)[1:-1] for ch in text)
        text = mask_text(text)
    else:
        text = json.dumps(mask_payload(doc), indent=2, ensure_ascii=False, sort_keys=False)
    return text if len(text) <= limit else text[:limit] + "\n… (cut)"
