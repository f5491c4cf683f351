"""Health source: polls every configured service's health endpoints, one sweep per interval.

One shared ``httpx.AsyncClient`` keeps connections alive across sweeps. By default its transport
is ``httpx_aiohttp``'s over one aiohttp session that this source owns (about 7x less CPU per poll
than httpx's own, see ``benchmarks/bench_health.py``), and polls go straight to that session with
the endpoint's URL parsed once: converting every request and answer between httpx and aiohttp
objects cost more CPU than the poll itself. With ``transport="httpx"`` each endpoint's request is
built once and sent through the transport (httpx's cookie and redirect layers are not wanted
for a health poll). A pool of ``[health] concurrency`` workers walks every endpoint of every
service (so no more requests are ever in flight); every request has
its own time budget (``[health] timeout``, covering connect, headers and body), so one hanging
endpoint holds one slot for at most ``timeout`` seconds and never delays the others. Sweeps never
overlap: the next starts ``refresh_interval`` after the last one started, or as soon as it ends
when it ran longer. While a long sweep runs, a progress snapshot is published every interval.

Bodies are streamed and cut at ``[health] max_body_bytes``. Payload formats are read by
:mod:`deploytui.sources.health_formats`.

States, worst first: ``unreachable`` (refused / dns / tls / timeout / disconnected — in
``HealthReport.failure``), ``unhealthy``, ``stale`` (no completed poll for
``stale_after_intervals`` intervals), ``degraded``, ``pending`` (not polled yet), ``healthy``.

Windows (``[health] window_seconds``, polls stamped with the injectable ``clock``):

* availability = polls answered healthy or degraded / all polls, in percent;
* p95 = nearest-rank 95th percentile (the ``ceil(0.95 * n)``-th smallest) of the latencies of
  the polls that got an HTTP answer (a timeout counts against availability, not p95);
* levels: p95 above ``latency_target_ms`` is "target", above ``latency_alert_ms`` "alert";
  availability below ``availability_target`` is "target", below ``availability_alert`` "alert".

A healthy answer slower than ``latency_target_ms`` makes the service degraded ("slow"). With
``critical_checks`` set, only those checks (``database`` also matches ``db``) make a service
unhealthy; the others degrade it. Empty: every check is critical.

State changes go to the journal as ``TimelineEvent(kind="health_changed")``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import socket
import ssl
import time
from array import array
from bisect import bisect_left, insort
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # httpx is imported when polling starts, not on the path to the first frame
    import httpx

from deploytui.config import ServiceSettings, Settings
from deploytui.model import EventSink, Section, TimelineEvent
from deploytui.sources.health_formats import CheckResult, Reading, parse_health

__all__ = [
    "STATES",
    "STATE_RANK",
    "Answer",
    "CheckResult",
    "HealthReport",
    "HealthSnapshot",
    "HealthSource",
    "LatencyWindow",
    "StateChange",
    "classify_error",
    "make_source",
    "snapshot_section",
]

log = logging.getLogger(__name__)

State = Literal["unreachable", "unhealthy", "stale", "degraded", "pending", "healthy"]
#: Every state, worst first.
STATES: tuple[str, ...] = ("unreachable", "unhealthy", "stale", "degraded", "pending", "healthy")
STATE_RANK: Mapping[str, int] = {s: i for i, s in enumerate(STATES)}
_SEVERITY = {"unreachable": "critical", "unhealthy": "critical", "stale": "warning",
             "degraded": "warning", "pending": "info", "healthy": "info"}
#: Recent latencies kept per service for the sparkline.
HISTORY_LEN = 40
#: Bytes of each answer kept in the report for the detail view.
RAW_KEEP = 16384
_ACCEPT = "application/health+json, application/json;q=0.9, text/plain;q=0.8, */*;q=0.5"
_HEADERS = {"Accept": _ACCEPT, "Accept-Encoding": "identity", "User-Agent": "deploytui-health"}
_ALIASES = {"database": ("db", "datasource"), "db": ("database", "datasource"),
            "cache": ("redis", "memcached"), "redis": ("cache",)}


# --- snapshots ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StateChange:
    ts: float
    from_state: str
    to_state: str
    reason: str


@dataclass(frozen=True, slots=True)
class HealthReport:
    """One service as of its last poll. Equality ignores when it was taken."""

    key: str                               # "env/name"
    name: str
    env: str
    state: str                             # one of STATES
    reason: str = ""                       # why not healthy, for the operator
    failure: str = ""                      # unreachable: refused, dns, tls, timeout, disconnected
    team: str = ""
    tags: tuple[str, ...] = ()
    url: str = ""
    format: str = ""                       # seed, actuator, ietf, plain, status, unparseable
    status_code: int | None = None
    content_type: str = ""
    latency_ms: float | None = None        # last poll
    p95_ms: float | None = None            # over the window
    availability: float | None = None      # percent over the window
    samples: int = 0                       # polls in the window
    latency_level: str = "ok"              # ok, target (p95 above target), alert (above alert)
    availability_level: str = "ok"         # ok, target (below target), alert (below alert)
    version: str = ""
    expected_version: str = ""
    drift: str = ""                        # "" or "expected 1.4.2" / "majority 1.4.2"
    uptime_s: float | None = field(default=None, compare=False)
    state_since: float | None = None
    polled_at: float | None = field(default=None, compare=False)
    checks: tuple[CheckResult, ...] = ()
    note: str = ""
    excerpt: str = ""                      # first bytes of an unparseable answer
    truncated: bool = False
    raw: bytes = b""                       # first RAW_KEEP bytes of the body (may hold secrets)
    latency_history: tuple[float | None, ...] = ()   # ms, oldest first; None: no answer
    recent_changes: tuple[StateChange, ...] = ()     # newest last

    @property
    def rank(self) -> int:
        return STATE_RANK.get(self.state, 0)

    @property
    def ok(self) -> bool:
        return self.state == "healthy"

    def time_in_state(self, now: float) -> float | None:
        return None if self.state_since is None else max(0.0, now - self.state_since)


@dataclass(frozen=True, slots=True)
class HealthSnapshot:
    """All services after a sweep (or, ``complete=False``, part way through a long one)."""

    reports: tuple[HealthReport, ...] = ()
    taken_at: float = field(default=0.0, compare=False)
    interval: float = 5.0
    complete: bool = True
    error: str = ""                        # the source itself failed (not one service)
    sweep_seconds: float = field(default=0.0, compare=False)
    transport: str = field(default="", compare=False)

    def counts(self) -> dict[str, int]:
        c = Counter(r.state for r in self.reports)
        return {s: c[s] for s in STATES if c[s]}

    @property
    def ok(self) -> bool:
        return not self.error and all(r.ok for r in self.reports)

    def worst_first(self) -> list[HealthReport]:
        return sorted(self.reports, key=lambda r: (r.rank, r.env, r.name))

    def by_key(self) -> dict[str, HealthReport]:
        return {r.key: r for r in self.reports}


# --- windows -----------------------------------------------------------------------------------


class LatencyWindow:
    """Polls of one service over the last ``seconds``: availability and nearest-rank p95.

    Compact on purpose (5,000 services x 720 polls an hour): parallel arrays with a moving head,
    plus a sorted array of the answered latencies so p95 is one index, not a sort.
    """

    __slots__ = ("_head", "_lat", "_sorted", "_t", "_up", "_ups", "seconds")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._t = array("d")
        self._lat = array("f")          # NaN: no answer
        self._up = bytearray()
        self._sorted = array("f")
        self._head = 0
        self._ups = 0

    def add(self, t: float, latency_ms: float | None, up: bool) -> None:
        self._t.append(t)
        self._lat.append(math.nan if latency_ms is None else latency_ms)
        self._up.append(1 if up else 0)
        self._ups += 1 if up else 0
        if latency_ms is not None:
            insort(self._sorted, self._lat[-1])
        self.expire(t)

    def expire(self, now: float) -> None:
        """Drop polls at or before ``now - seconds``."""
        limit = now - self.seconds
        t, head, n = self._t, self._head, len(self._t)
        while head < n and t[head] <= limit:
            lat = self._lat[head]
            if lat == lat:  # not NaN
                del self._sorted[bisect_left(self._sorted, lat)]
            self._ups -= self._up[head]
            head += 1
        self._head = head
        if head > 256 and head * 2 > n:
            del self._t[:head]
            del self._lat[:head]
            del self._up[:head]
            self._head = 0

    def __len__(self) -> int:
        return len(self._t) - self._head

    @property
    def availability(self) -> float | None:
        n = len(self)
        return None if n == 0 else 100.0 * self._ups / n

    @property
    def p95(self) -> float | None:
        n = len(self._sorted)
        if n == 0:
            return None
        return float(self._sorted[math.ceil(0.95 * n) - 1])


# --- one poll ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Answer:
    """What fetching one URL gave: an HTTP answer, or a failure kind."""

    url: str
    code: int | None = None
    content_type: str = ""
    body: bytes = b""
    truncated: bool = False
    latency_ms: float | None = None
    failure: str = ""              # refused, dns, tls, timeout, disconnected, error
    message: str = ""


def classify_error(exc: BaseException) -> tuple[str, str]:
    """(kind, operator message) for a failed request; kind is refused, dns, tls, timeout,
    disconnected or error. Walks the cause chain: transports disagree on the outer type
    (``httpx_aiohttp`` reports a refused connection as ``ConnectTimeout``)."""
    chain: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and len(chain) < 8:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    names = {type(e).__name__ for e in chain}
    if any(isinstance(e, socket.gaierror) for e in chain) or "ClientConnectorDNSError" in names:
        return "dns", "DNS lookup failed"
    for e in chain:
        if isinstance(e, ssl.SSLCertVerificationError):
            return "tls", f"TLS certificate not trusted ({e.verify_message or 'verify failed'})"
        if isinstance(e, ssl.SSLError | ssl.CertificateError) or "SSL" in type(e).__name__:
            return "tls", f"TLS handshake failed ({getattr(e, 'reason', None) or 'ssl error'})"
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return "refused", "connection refused"
    if any(isinstance(e, ConnectionResetError | BrokenPipeError) for e in chain) or names & {
        "RemoteProtocolError", "ServerDisconnectedError", "ReadError", "ClientOSError",
        "ClientPayloadError",
    }:
        return "disconnected", "the server closed the connection without answering"
    import httpx

    if any(isinstance(e, TimeoutError | httpx.TimeoutException) for e in chain):
        return "timeout", "timed out"
    text = str(exc).lower()
    if "name or service not known" in text or "nodename nor servname" in text:
        return "dns", "DNS lookup failed"
    if "refused" in text or "connect call failed" in text:
        return "refused", "connection refused"
    return "error", f"{type(exc).__name__}: {str(exc)[:120]}"


async def _read_capped(chunks: AsyncIterator[bytes], cap: int) -> tuple[bytes, bool]:
    """(body, cut) from a body's chunks: reading stops past ``cap``, the rest is never fetched."""
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        parts.append(chunk)
        size += len(chunk)
        if size > cap:
            return b"".join(parts)[:cap], True
    return (parts[0] if len(parts) == 1 else b"".join(parts)), False


# --- per-service bookkeeping -------------------------------------------------------------------


class _Track:
    __slots__ = ("answers", "changes", "eval_key", "eval_result", "history", "last_poll",
                 "polled_at", "reading", "requests", "since", "state", "svc", "window")

    def __init__(self, svc: ServiceSettings, window_seconds: float) -> None:
        self.svc = svc
        self.window = LatencyWindow(window_seconds)
        self.history: deque[float | None] = deque(maxlen=HISTORY_LEN)
        self.changes: deque[StateChange] = deque(maxlen=20)
        self.state = "pending"
        self.since: float | None = None
        self.polled_at: float | None = None
        self.last_poll: tuple[str, str, str] = ("pending", "not polled yet", "")
        self.reading: Reading | None = None
        self.answers: tuple[Answer, ...] = ()
        # (url, parsed URL or built request, headers) per endpoint, made on the first poll
        self.requests: list[tuple[str, Any, Mapping[str, str] | None]] | None = None
        self.eval_key: tuple[Any, ...] = ()
        self.eval_result: tuple[str, str, str, Reading | None] | None = None


@functools.lru_cache(maxsize=1024)
def _critical_names(critical_checks: tuple[str, ...]) -> frozenset[str] | None:
    if not critical_checks:
        return None
    names = set()
    for n in critical_checks:
        names.add(n.lower())
        names.update(_ALIASES.get(n.lower(), ()))
    return frozenset(names)


def _is_critical(name: str, critical: frozenset[str] | None) -> bool:
    if critical is None:
        return True
    low = name.lower()
    base = low.split("[", 1)[0].split(":", 1)[0]
    return bool({low, base, base.rsplit("/", 1)[-1], base.split("/", 1)[0]} & critical)


def _names(checks: Iterable[CheckResult]) -> str:
    names = [c.name for c in checks]
    return ", ".join(names[:3]) + (f" +{len(names) - 3}" if len(names) > 3 else "")


def evaluate(svc: ServiceSettings, health: Answer, probes: Mapping[str, Answer],
             cap: int) -> tuple[str, str, str, Reading | None]:
    """(state, reason, failure kind, reading) for one service's answers, from their content
    (the source adds "slow" on top: latency changes every poll, content mostly does not)."""
    if health.failure:
        return "unreachable", health.message, health.failure, None
    reading = parse_health(health.code or 0, health.content_type, health.body,
                           truncated=health.truncated, cap=cap)
    critical = _critical_names(svc.critical_checks)
    checks = list(reading.checks)
    if critical is not None:  # CheckResult.critical defaults to True: "all checks are critical"
        checks = [c if _is_critical(c.name, critical) else
                  CheckResult(c.name, c.status, c.word, c.detail, False) for c in checks]
    for kind, answer in probes.items():
        label = "liveness" if kind == "live" else "readiness"
        if answer.failure:
            checks.append(CheckResult(kind, "fail", answer.failure, f"{label}: {answer.message}"))
            continue
        probe = parse_health(answer.code or 0, answer.content_type, answer.body,
                             truncated=answer.truncated, cap=cap)
        status = "fail" if probe.format == "unparseable" else probe.status
        checks.append(CheckResult(kind, status, probe.word, f"{label}: HTTP {answer.code}"))
    if probes or critical is not None:
        reading = Reading(reading.format, reading.status, reading.word, reading.version,
                          reading.uptime_s, tuple(checks), reading.note, reading.excerpt)
    failing = [c for c in checks if c.status == "fail"]
    crit_fail = [c for c in failing if c.critical]
    warned = [c for c in checks if c.status in ("warn", "unknown")]
    said = reading.word or f"HTTP {health.code}"
    if reading.format == "unparseable":
        return "unhealthy", f"unparseable answer: {reading.note}", "", reading
    if crit_fail:
        return "unhealthy", f"failing: {_names(crit_fail)}", "", reading
    if reading.status == "fail":
        if failing:  # only non-critical checks fail: the operator said that only degrades it
            return "degraded", f"non-critical failing: {_names(failing)} (says {said})", "", reading
        return "unhealthy", f"reports {said}" if reading.format != "status" else said, "", reading
    if reading.status == "warn":
        return "degraded", f"reports {said}", "", reading
    if failing:
        return "degraded", f"non-critical failing: {_names(failing)}", "", reading
    if warned:
        return "degraded", f"check warns: {_names(warned)}", "", reading
    if reading.status == "unknown":
        return "degraded", f"status unknown ({said})", "", reading
    if health.truncated:
        return "degraded", f"answer over {cap} bytes, cut", "", reading
    return "healthy", "", "", reading


def _drift(tracks: Iterable[_Track]) -> dict[str, str]:
    """key -> drift text, per env: against expected_version, else the env's majority version."""
    by_env: dict[str, list[_Track]] = {}
    for t in tracks:
        if t.reading is not None and t.reading.version:
            by_env.setdefault(t.svc.env, []).append(t)
    out: dict[str, str] = {}
    for members in by_env.values():
        counts = Counter(t.reading.version for t in members if t.reading)
        top = counts.most_common(2)
        majority = top[0][0] if len(members) >= 2 and (len(top) == 1 or top[0][1] > top[1][1]) else ""
        for t in members:
            version = t.reading.version if t.reading else ""
            if t.svc.expected_version:
                if version != t.svc.expected_version:
                    out[t.svc.key] = f"expected {t.svc.expected_version}"
            elif majority and version != majority:
                out[t.svc.key] = f"majority {majority}"
    return out


# --- the source --------------------------------------------------------------------------------


class HealthSource:
    """Polls every service of ``settings`` each ``console.refresh_interval``."""

    name = "health"

    def __init__(self, settings: Settings, *, journal: EventSink | None = None,
                 clock: Callable[[], float] = time.time, transport: str = "aiohttp") -> None:
        if transport not in ("aiohttp", "httpx"):
            raise ValueError(f"transport must be 'aiohttp' or 'httpx', not {transport!r}")
        self.settings = settings
        self.journal = journal
        self.clock = clock
        self.transport = transport
        self.interval = settings.console.refresh_interval
        self._client: httpx.AsyncClient | None = None
        self._transport: httpx.AsyncBaseTransport | None = None
        self._session: Any = None   # aiohttp.ClientSession, the fast path (transport "aiohttp")
        self._tracks = [_Track(s, settings.health.window_seconds) for s in settings.services]
        self.last_sweep_seconds = 0.0

    # -- client ---------------------------------------------------------------------------
    def _origins(self) -> int:
        import httpx

        urls = [u for s in self.settings.services for u in (s.health_url, s.live_url, s.ready_url) if u]
        return len({httpx.URL(u).netloc for u in urls})

    def _ensure_file_limit(self) -> None:
        """Idle keep-alive connections are kept per origin (aiohttp's ``limit`` counts only
        busy ones): with thousands of distinct hosts, make room for one socket each."""
        try:
            import resource
        except ImportError:  # not on this platform
            return
        wanted = self._origins() + 256
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY and soft < wanted:
            new = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
            with contextlib.suppress(ValueError, OSError):
                resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
                log.info("health: raised the open-file limit to %d for %d origins",
                         new, wanted - 256)

    def _make_client(self) -> httpx.AsyncClient:
        import httpx

        h = self.settings.health
        if len(self.settings.services) > 500:
            self._ensure_file_limit()
        # Keep idle connections past the next sweep, or every sweep reconnects.
        keepalive = max(30.0, 3 * self.interval + h.timeout)
        limits = httpx.Limits(max_connections=h.concurrency,
                              max_keepalive_connections=h.concurrency, keepalive_expiry=keepalive)
        transport: httpx.AsyncBaseTransport
        if self.transport == "aiohttp":
            import aiohttp
            from httpx_aiohttp import AiohttpTransport

            # The session the transport would make for itself, made here so polls can use it
            # directly (same pool, same TLS context as httpx: certifi plus $SSL_CERT_FILE).
            connector = aiohttp.TCPConnector(limit=h.concurrency, keepalive_timeout=keepalive,
                                             ssl=httpx.create_ssl_context())
            # No aiohttp timers (its default arms a 5-minute one per request): the poll's own
            # asyncio.timeout(health.timeout) bounds every request.
            # No cookie jar either: each poll stands alone, as with httpx's path.
            self._session = aiohttp.ClientSession(connector=connector, headers=_HEADERS,
                                                  trust_env=False, timeout=aiohttp.ClientTimeout(),
                                                  cookie_jar=aiohttp.DummyCookieJar())
            transport = AiohttpTransport(client=self._session)
        else:
            transport = httpx.AsyncHTTPTransport(limits=limits)
        self._transport = transport
        # trust_env=False: health endpoints are polled directly, never through $HTTP_PROXY.
        # No transport timeouts: one asyncio.timeout(health.timeout) per request covers connect,
        # headers and the whole body (a drip-fed body too), and aiohttp then does not re-arm a
        # read timer on every chunk.
        return httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(None),
                                 follow_redirects=False, trust_env=False, headers=_HEADERS)

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = self._make_client()
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()  # closes the transport, and with it the aiohttp session
            self._client = None
            self._transport = None
            self._session = None
        for track in self._tracks:
            track.requests = None

    # -- polling --------------------------------------------------------------------------
    async def fetch(self, url: str, headers: Mapping[str, str] | None = None) -> Answer:
        """GET one URL within the per-request budget; never raises."""
        return await self._fetch(url, self._target(url, headers), headers)

    def _target(self, url: str, headers: Mapping[str, str] | None) -> Any:
        """What one endpoint's polls reuse: its parsed URL (aiohttp), or its built request."""
        client = self.client
        if self._session is not None:
            import yarl

            return yarl.URL(url)
        return client.build_request("GET", url, headers=headers)

    async def _fetch(self, url: str, target: Any, headers: Mapping[str, str] | None) -> Answer:
        # No semaphore here: a sweep's pool of ``concurrency`` workers is the in-flight limit.
        cap = self.settings.health.max_body_bytes
        start = time.perf_counter()
        try:
            async with asyncio.timeout(self.settings.health.timeout):
                if self._session is not None:
                    code, ctype, body, truncated = await self._get_aiohttp(target, headers, cap)
                else:
                    code, ctype, body, truncated = await self._get_httpx(target, cap)
            latency = (time.perf_counter() - start) * 1000.0
            return Answer(url, code, ctype, body, truncated, latency)
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            return Answer(url, failure="timeout",
                          message=f"timed out after {self.settings.health.timeout:g} s")
        except Exception as exc:  # every failure becomes a state, never a crash
            kind, message = classify_error(exc)
            if kind == "timeout":
                message = f"timed out after {self.settings.health.timeout:g} s"
            return Answer(url, failure=kind, message=message)

    async def _get_aiohttp(self, url: Any, headers: Mapping[str, str] | None,
                           cap: int) -> tuple[int, str, bytes, bool]:
        # No redirects (a 3xx is an answer); a body the server compresses anyway is decoded.
        # Leaving with the body unread closes that connection instead of pooling it.
        async with self._session.get(url, headers=headers, allow_redirects=False) as resp:
            body, truncated = await _read_capped(resp.content.iter_any(), cap)
            return resp.status, resp.headers.get("Content-Type", ""), body, truncated

    async def _get_httpx(self, request: httpx.Request, cap: int) -> tuple[int, str, bytes, bool]:
        # Straight to the transport (the documented ``handle_async_request`` interface): a
        # health poll wants neither httpx's cookie jar nor its redirect handling. The request
        # is built once per endpoint and reused (GET, no body, nothing mutates it).
        transport = self._transport
        assert transport is not None
        resp = await transport.handle_async_request(request)
        try:
            # We ask for identity; decode only when a server compresses anyway.
            chunks = resp.aiter_bytes() if "content-encoding" in resp.headers else resp.aiter_raw()
            body, truncated = await _read_capped(chunks, cap)
        finally:
            await resp.aclose()
        return resp.status_code, resp.headers.get("content-type", ""), body, truncated

    def _requests(self, track: _Track) -> list[tuple[str, Any, Mapping[str, str] | None]]:
        """(url, parsed URL or built request, headers) of each of the service's endpoints:
        health first, then live and ready when configured. Made once, on the first poll."""
        requests = track.requests
        if requests is None:
            svc = track.svc
            headers = {k: v.reveal() for k, v in svc.headers.items()} if svc.headers else None
            requests = track.requests = [
                (u, self._target(u, headers), headers) for u in (
                    svc.health_url, svc.live_url, svc.ready_url) if u]
        return requests

    def _complete(self, track: _Track, answers: list[Answer]) -> None:
        kinds = [k for k, u in (("live", track.svc.live_url), ("ready", track.svc.ready_url)) if u]
        self._record(track, answers[0], dict(zip(kinds, answers[1:], strict=True)))

    def _record(self, track: _Track, health: Answer, probes: Mapping[str, Answer]) -> None:
        now = self.clock()
        h = self.settings.health
        # The same answers as last time (most services, most polls): reuse the evaluation.
        key = (health.code, health.content_type, health.body, health.failure,
               *((a.code, a.failure, a.body) for a in probes.values()))
        if key == track.eval_key and track.eval_result is not None:
            state, reason, failure, reading = track.eval_result
        else:
            try:
                state, reason, failure, reading = evaluate(track.svc, health, probes,
                                                           h.max_body_bytes)
            except Exception as exc:  # defensive: a parser bug must not stop the sweep
                log.exception("health: evaluating %s failed", track.svc.key)
                state, reason, failure, reading = "unhealthy", f"cannot evaluate: {exc}", "", None
            track.eval_key, track.eval_result = key, (state, reason, failure, reading)
        if state == "healthy" and health.latency_ms is not None and (
                health.latency_ms > h.latency_target_ms):
            state, reason = "degraded", (f"slow: {health.latency_ms:.0f} ms > "
                                         f"{h.latency_target_ms:.0f} ms")
        answered = health.latency_ms if not health.failure else None
        track.window.add(now, answered, state in ("healthy", "degraded"))
        track.history.append(None if answered is None else round(answered, 1))
        track.polled_at = now
        track.last_poll = (state, reason, failure)
        track.answers = (health, *probes.values())
        if reading is not None:
            track.reading = reading
        elif state == "unreachable" and track.reading is not None:
            track.reading = replace(track.reading, checks=())

    async def sweep(self) -> HealthSnapshot:
        """Poll every service once (concurrently, under the limit) and return the snapshot."""
        start = time.perf_counter()
        # A pool of ``concurrency`` workers sharing one iterator, rather than a task per service:
        # 5,000 tasks and their semaphore wake-ups cost more CPU than the polls they wait for.
        # A slow endpoint holds one worker for at most ``timeout``; the others go on.
        # The workers share one list of endpoints (a service with live and ready URLs has three):
        # each endpoint is its own job, so no task per service is needed to poll its endpoints
        # side by side; the service is recorded when its last answer is in.
        jobs: list[tuple[_Track, tuple[str, Any, Mapping[str, str] | None], int,
                         list[Answer | None]]] = []
        for track in self._tracks:
            requests = self._requests(track)
            answers: list[Answer | None] = [None] * len(requests)
            jobs.extend((track, request, i, answers) for i, request in enumerate(requests))
        pending = iter(jobs)

        async def worker() -> None:
            for track, request, i, answers in pending:
                answers[i] = await self._fetch(*request)
                if all(a is not None for a in answers):
                    self._complete(track, answers)  # type: ignore[arg-type]  # all filled in

        workers = min(self.settings.health.concurrency, len(jobs))
        await asyncio.gather(*(worker() for _ in range(workers)))
        self.last_sweep_seconds = time.perf_counter() - start
        return self.snapshot()

    async def run(self, publish: Callable[[Any], None]) -> None:
        """Sweep forever; publish after each sweep (and each interval of an overrunning one)."""
        loop = asyncio.get_running_loop()
        try:
            while True:
                started = loop.time()
                task = asyncio.ensure_future(self.sweep())
                try:
                    while True:
                        done, _ = await asyncio.wait({task}, timeout=self.interval)
                        if done:
                            break
                        publish(self.snapshot(complete=False))
                    publish(task.result())
                except asyncio.CancelledError:
                    task.cancel()
                    raise
                except Exception as exc:  # a bug here must not end the polling
                    log.exception("health sweep failed")
                    publish(replace(self.snapshot(), error=f"{type(exc).__name__}: {exc}"))
                delay = started + self.interval - loop.time()
                await asyncio.sleep(max(0.0, delay))
        finally:
            await self.aclose()

    # -- snapshots ------------------------------------------------------------------------
    def snapshot(self, *, complete: bool = True) -> HealthSnapshot:
        """A frozen picture of every service now (stale marking and drift included)."""
        now = self.clock()
        h, c = self.settings.health, self.settings.console
        stale_after = c.stale_after_intervals * self.interval
        drift = _drift(self._tracks)
        reports = []
        for t in self._tracks:
            state, reason, failure = t.last_poll
            if t.polled_at is not None and now - t.polled_at > stale_after:
                age = now - t.polled_at
                state, reason, failure = "stale", f"no poll for {age:.0f} s (was {state})", ""
            if state != t.state:
                self._change(t, state, reason, now)
            reports.append(self._report(t, state, reason, failure, drift.get(t.svc.key, ""), h))
        return HealthSnapshot(reports=tuple(reports), taken_at=now, interval=self.interval,
                              complete=complete, sweep_seconds=self.last_sweep_seconds,
                              transport=self.transport)

    def _change(self, t: _Track, state: str, reason: str, now: float) -> None:
        old = t.state
        t.state, t.since = state, now
        t.changes.append(StateChange(now, old, state, reason))
        if self.journal is None or (old == "pending" and state == "healthy"):
            return
        svc = t.svc
        text = f"{svc.name} ({svc.env}) {old} -> {state}" + (f": {reason}" if reason else "")
        event = TimelineEvent(kind="health_changed", summary=text, ts=now, service=svc.key,
                              env=svc.env, severity=_SEVERITY[state], actor="deploytui",  # type: ignore[arg-type]
                              details={"from": old, "to": state, "reason": reason})
        try:
            self.journal.add_event(event)
        except Exception:  # a full disk must not stop health polling
            log.exception("health: cannot record a timeline event")

    def _report(self, t: _Track, state: str, reason: str, failure: str, drift: str,
                h: Any) -> HealthReport:
        svc, w, r = t.svc, t.window, t.reading
        p95, avail = w.p95, w.availability
        lat_level = "ok" if p95 is None or p95 <= h.latency_target_ms else (
            "alert" if p95 > h.latency_alert_ms else "target")
        av_level = "ok" if avail is None or avail >= h.availability_target else (
            "alert" if avail < h.availability_alert else "target")
        health = t.answers[0] if t.answers else None
        return HealthReport(
            key=svc.key, name=svc.name, env=svc.env, state=state, reason=reason, failure=failure,
            team=svc.team, tags=svc.tags, url=svc.health_url,
            format=r.format if r else "", status_code=health.code if health else None,
            content_type=health.content_type if health else "",
            latency_ms=None if health is None or health.latency_ms is None else round(health.latency_ms, 1),
            p95_ms=None if p95 is None else round(p95, 1),
            availability=None if avail is None else round(avail, 3), samples=len(w),
            latency_level=lat_level, availability_level=av_level,
            version=r.version if r else "", expected_version=svc.expected_version, drift=drift,
            uptime_s=r.uptime_s if r else None, state_since=t.since, polled_at=t.polled_at,
            checks=r.checks if r else (), note=r.note if r else "",
            excerpt=r.excerpt if r else "", truncated=bool(health and health.truncated),
            raw=health.body[:RAW_KEEP] if health else b"",
            latency_history=tuple(t.history), recent_changes=tuple(t.changes),
        )


# --- wiring ------------------------------------------------------------------------------------


def make_source(runtime: Any) -> HealthSource | None:
    """The runtime's health source, or None when no service is configured."""
    settings: Settings = runtime.settings
    if not settings.services:
        return None
    return HealthSource(settings, journal=runtime.journal)


COLUMNS = ("service", "env", "state", "reason", "latency_ms", "p95_ms", "availability",
           "version", "drift")


def report_row(r: HealthReport) -> dict[str, Any]:
    return {"service": r.name, "env": r.env, "state": r.state, "reason": r.reason or None,
            "latency_ms": r.latency_ms, "p95_ms": r.p95_ms, "availability": r.availability,
            "version": r.version or None, "drift": r.drift or None}


async def snapshot_section(settings: Settings) -> Section:
    """Poll every service once: the health pane's rows for ``deploytui snapshot``."""
    if not settings.services:
        return Section(name="health", configured=False)
    source = HealthSource(settings)
    try:
        snap = await source.sweep()
    finally:
        await source.aclose()
    counts = snap.counts()
    drifted = sum(1 for r in snap.reports if r.drift)
    summary: dict[str, Any] = {"services": len(snap.reports), **counts}
    if drifted:
        summary["drift"] = drifted
    return Section(name="health", configured=True, ok=snap.ok, columns=COLUMNS,
                   rows=tuple(report_row(r) for r in snap.worst_first()), summary=summary,
                   taken_at=snap.taken_at)

