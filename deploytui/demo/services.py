"""Simulated services: health endpoints and Prometheus metrics over real HTTP on loopback.

Many services share one listening socket and are told apart by path
(``/svc/<env>/<name>/health``) or by Host header (``<name>.<env>.svc``). Small fleets also give
each service a *dedicated* port inside its env's allowed range; its URLs then point there
(``http://127.0.0.1:5050/health``) and the port registry declares it.

Every service is steered at run time with :class:`Knobs` (see :data:`KNOB_NAMES`), from Python
(:meth:`ServicesServer.steer`, thread-safe) or over HTTP (``POST /_sim/services/<env>/<name>``).

``down`` is emulated two ways, both before a single response byte is sent:

* a dedicated port is closed, so new connections are refused (httpx: ``ConnectError``) and
  open keep-alive connections are dropped;
* on the shared socket the connection is closed as soon as the request arrives (httpx:
  ``RemoteProtocolError``, "server disconnected without sending a response").

Simulated traffic is integrated lazily (counters advance to "now" whenever they are read or
the service's state changes), so 5,000 idle services cost nothing between scrapes.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import math
import random
import socket
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from aiohttp import web

__all__ = [
    "BUCKETS",
    "HEALTH_FORMATS",
    "KNOB_NAMES",
    "Knobs",
    "KubeEffect",
    "ServiceSpec",
    "ServicesServer",
    "SimService",
]

log = logging.getLogger(__name__)

#: Health payload formats a service can speak.
HEALTH_FORMATS = ("seed", "actuator", "ietf", "plain", "status")
#: Histogram buckets of ``http_request_duration_seconds`` (seconds).
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
HUGE_BODY_BYTES = 10 * 1024 * 1024
MEMORY_LIMIT_BYTES = 512 * 1024 * 1024
_CHECK_STATES = ("healthy", "unhealthy")
_STATUSES = ("healthy", "degraded", "unhealthy")
# (method, status, share of good or of failed requests)
_OK_SPLIT = (("GET", "200", 0.78), ("GET", "404", 0.02), ("POST", "201", 0.20))
_ERR_SPLIT = (("GET", "500", 0.56), ("POST", "500", 0.14), ("GET", "503", 0.30))
# Requests served by a crash-looping pod: mostly errors, mostly slow.
_BAD_POD_ERROR_RATE = 0.6
_BAD_POD_MEDIAN_S = 4.5
_BAD_POD_SIGMA = 0.6
_UNSET: Any = object()


@dataclass(frozen=True)
class Knobs:
    """The steerable state of one service. Every field is a knob of the same name."""

    latency_ms: float = 5.0            # response delay of its health endpoints (and traffic)
    jitter_ms: float = 2.0             # +- uniform jitter on latency_ms
    error_rate: float = 0.002          # fraction of simulated traffic answered 5xx (0-1)
    down: bool = False                 # refuse / drop every connection
    hang: bool = False                 # never answer (until the client gives up)
    garbage: bool = False              # answer 200 with random bytes
    wrong_content_type: bool = False   # JSON served as text/html, text served as JSON
    version: str | None = None         # reported version (None: the deployment's, else spec)
    status: str | None = None          # force healthy / degraded / unhealthy
    checks: Mapping[str, str] = field(default_factory=dict)  # e.g. {"database": "unhealthy"}
    huge_body: bool = False            # /health answers a 10 MB body
    memory_mb: float | None = None     # resident memory (None: the service's baseline)
    request_rate: float | None = None  # simulated requests per second (None: baseline)


KNOB_NAMES = tuple(f.name for f in fields(Knobs))


@dataclass(frozen=True)
class KubeEffect:
    """What the Kubernetes deployment behind a service currently implies for it."""

    bad_fraction: float = 0.0      # share of traffic hitting pods that run a bad image (0-1)
    version: str | None = None     # version most serving pods run
    restarts: int = 0              # container restarts summed over the pods
    available: bool = True         # False: no pod at all (scaled to 0, deleted)


@dataclass(frozen=True)
class ServiceSpec:
    """How to build one simulated service."""

    name: str
    env: str
    team: str
    format: str = "seed"
    version: str = "1.4.2"
    deployment: str | None = None  # "namespace/name"
    dedicated_port: bool = False   # also serve it on a port of its own


@dataclass(frozen=True)
class SimService:
    """Frozen public facts about a running simulated service."""

    name: str
    env: str
    team: str
    format: str
    health_url: str
    live_url: str
    ready_url: str
    metrics_url: str
    deployment: str | None
    port: int | None               # dedicated port, if any
    path_url: str                  # base URL on the shared socket (…/svc/<env>/<name>)
    version: str                   # version at start


def _phi(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def _lognormal_cdf(x: float, median: float, sigma: float) -> float:
    if x <= 0:
        return 0.0
    return _phi((math.log(x) - math.log(median)) / sigma)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _validate_knobs(values: Mapping[str, Any]) -> dict[str, Any]:
    """Check knob names and types; returns normalised values. Raises ValueError."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key not in KNOB_NAMES:
            raise ValueError(f"unknown knob {key!r}; knobs are: {', '.join(KNOB_NAMES)}")
        if key in ("down", "hang", "garbage", "wrong_content_type", "huge_body"):
            if not isinstance(value, bool):
                raise ValueError(f"{key} must be true or false, not {value!r}")
        elif key in ("latency_ms", "jitter_ms", "error_rate", "memory_mb", "request_rate"):
            if value is None and key in ("memory_mb", "request_rate"):
                out[key] = None
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"{key} must be a number >= 0, not {value!r}")
            if key == "error_rate" and value > 1:
                raise ValueError(f"error_rate is a fraction 0-1, not {value!r}")
            value = float(value)
        elif key == "version":
            if value is not None and (not isinstance(value, str) or not value):
                raise ValueError(f"version must be a non-empty string or null, not {value!r}")
        elif key == "status":
            if value is not None and value not in _STATUSES:
                raise ValueError(f"status must be one of {_STATUSES} or null, not {value!r}")
        elif key == "checks":
            if not isinstance(value, Mapping) or not all(
                isinstance(k, str) and v in _CHECK_STATES for k, v in value.items()
            ):
                raise ValueError(f"checks must map check names to {_CHECK_STATES}, not {value!r}")
            value = dict(value)
        out[key] = value
    return out


class ServiceState:
    """Mutable run-time state of one service; every mutation goes through ``lock``."""

    def __init__(self, spec: ServiceSpec, index: int, seed: int) -> None:
        self.spec = spec
        self.info: SimService | None = None
        rng = random.Random(f"{seed}:{spec.env}:{spec.name}")
        self.rng = rng
        self.lock = threading.Lock()
        self.knobs = Knobs()
        self.kube: KubeEffect | None = None
        self.drift_ms = 0.0  # scenario-owned latency drift, on top of the knobs
        self._p95: tuple[Any, float] | None = None
        self.base_traffic_ms = rng.uniform(20.0, 90.0)
        self.base_rate = rng.uniform(5.0, 40.0)
        self.base_memory_mb = rng.uniform(120.0, 340.0)
        self.cpu_share = rng.uniform(0.03, 0.25)
        now = time.monotonic()
        self.started = now - rng.uniform(600.0, 86400.0 * 3)
        self.last_advance = now
        self.requests: dict[tuple[str, str], float] = {
            (m, s): 0.0 for m, s, _ in (*_OK_SPLIT, *_ERR_SPLIT)
        }
        # Start from a plausible history so rates are non-trivial from the first scrape.
        self.buckets = [0.0] * len(BUCKETS)
        self.duration_sum = 0.0
        self.duration_count = 0.0
        self.cpu_seconds = 0.0
        self.db_errors = 0.0
        self._integrate(rng.uniform(300.0, 3600.0))
        self.last_version = self.version()

    # -- effective state --------------------------------------------------------------
    def version(self) -> str:
        if self.knobs.version:
            return self.knobs.version
        if self.kube is not None and self.kube.version:
            return self.kube.version
        return self.spec.version

    def bad_fraction(self) -> float:
        return self.kube.bad_fraction if self.kube is not None else 0.0

    def unavailable(self) -> bool:
        return self.kube is not None and not self.kube.available

    def error_rate(self) -> float:
        if self.unavailable():
            return 1.0
        f = self.bad_fraction()
        return (1.0 - f) * self.knobs.error_rate + f * _BAD_POD_ERROR_RATE

    def _components(self) -> list[tuple[float, float, float]]:
        """Traffic mixture: (weight, median seconds, sigma)."""
        k = self.knobs
        median = max(1.0, self.base_traffic_ms + k.latency_ms + self.drift_ms) / 1000.0
        sigma = 0.45 + min(1.0, k.jitter_ms / max(k.latency_ms + self.base_traffic_ms, 1.0))
        f = self.bad_fraction()
        comps = [(1.0 - f, median, sigma)]
        if f > 0:
            comps.append((f, max(_BAD_POD_MEDIAN_S, median), _BAD_POD_SIGMA))
        return comps

    def p95_seconds(self) -> float:
        """The 95th percentile of the traffic latency mixture (cached until the state changes)."""
        key = (self.knobs, self.kube, self.drift_ms)
        if self._p95 is None or self._p95[0] != key:
            self._p95 = (key, self._p95_of(self._components()))
        return self._p95[1]

    @staticmethod
    def _p95_of(comps: list[tuple[float, float, float]]) -> float:
        """Bisection on the mixture's CDF."""
        lo, hi = 1e-4, 120.0
        for _ in range(60):
            mid = math.sqrt(lo * hi)
            cdf = sum(w * _lognormal_cdf(mid, m, s) for w, m, s in comps)
            lo, hi = (mid, hi) if cdf < 0.95 else (lo, mid)
        return hi

    def checks(self) -> dict[str, str]:
        out = {"database": "healthy", "cache": "healthy"}
        if self.bad_fraction() >= 0.5:
            out["database"] = "unhealthy"
        out.update(self.knobs.checks)
        return out

    def status(self) -> str:
        if self.knobs.status:
            return self.knobs.status
        checks = self.checks()
        err, f = self.error_rate(), self.bad_fraction()
        if self.unavailable() or checks.get("database") == "unhealthy" or err >= 0.25 or f >= 0.5:
            return "unhealthy"
        if "unhealthy" in checks.values() or err >= 0.05 or f > 0 or self.p95_seconds() > 2.0:
            return "degraded"
        return "healthy"

    def uptime(self, now: float) -> float:
        return max(0.0, now - self.started)

    def memory_bytes(self, now: float) -> float:
        mb = self.knobs.memory_mb
        if mb is None:
            mb = self.base_memory_mb * (1.0 + 0.03 * math.sin(now / 17.0 + self.base_rate))
        return mb * 1024 * 1024

    def rate(self) -> float:
        r = self.knobs.request_rate
        return self.base_rate if r is None else r

    # -- traffic integration ------------------------------------------------------------
    def _integrate(self, dt: float) -> None:
        if dt <= 0 or self.knobs.down:
            return
        n = self.rate() * dt
        err = self.error_rate()
        for method, status, share in _OK_SPLIT:
            self.requests[(method, status)] += n * (1.0 - err) * share
        for method, status, share in _ERR_SPLIT:
            self.requests[(method, status)] += n * err * share
        for w, median, sigma in self._components():
            part = n * w
            for i, le in enumerate(BUCKETS):
                self.buckets[i] += part * _lognormal_cdf(le, median, sigma)
            self.duration_sum += part * median * math.exp(sigma * sigma / 2.0)
        self.duration_count += n
        self.cpu_seconds += dt * self.cpu_share * (1.0 + 2.0 * self.bad_fraction())
        db_rate = 3.0 * self.bad_fraction()
        if self.knobs.checks.get("database") == "unhealthy":
            db_rate += 1.0
        self.db_errors += db_rate * dt

    def advance(self, now: float) -> None:
        """Integrate traffic up to ``now``; call with ``lock`` held."""
        self._integrate(now - self.last_advance)
        self.last_advance = max(self.last_advance, now)

    def mutate(self, *, knobs: Knobs | None = None, kube: Any = _UNSET) -> None:
        """Change knobs and/or the Kubernetes effect, first closing the books at the old state."""
        with self.lock:
            now = time.monotonic()
            self.advance(now)
            if knobs is not None:
                self.knobs = knobs
            if kube is not _UNSET:
                self.kube = kube
            version = self.version()
            if version != self.last_version:
                self.last_version = version
                self.started = now  # a new version is a new process

    def describe(self) -> dict[str, Any]:
        info = self.info
        return {
            "name": self.spec.name,
            "env": self.spec.env,
            "team": self.spec.team,
            "format": self.spec.format,
            "deployment": self.spec.deployment,
            "health_url": info.health_url if info else None,
            "metrics_url": info.metrics_url if info else None,
            "port": info.port if info else None,
            "knobs": asdict(self.knobs),
            "kube": asdict(self.kube) if self.kube else None,
            "effective": {
                "status": self.status(),
                "version": self.version(),
                "error_rate": round(self.error_rate(), 6),
                "p95_seconds": round(self.p95_seconds(), 4),
                "checks": self.checks(),
                "request_rate": self.rate(),
                "drift_ms": self.drift_ms,
            },
        }

    # -- payloads -----------------------------------------------------------------------
    def health_payload(self, now: float) -> tuple[int, bytes, str]:
        """(HTTP status, body, content type) of ``/health`` in this service's format."""
        status, checks, version = self.status(), self.checks(), self.version()
        code = 503 if status == "unhealthy" else 200
        fmt = self.spec.format
        if fmt == "actuator":
            up = {"healthy": "UP", "degraded": "DEGRADED", "unhealthy": "DOWN"}[status]
            comp = {
                "db": {"status": "UP" if checks.get("database") == "healthy" else "DOWN",
                       "details": {"database": "PostgreSQL", "validationQuery": "isValid()"}},
                "diskSpace": {"status": "UP", "details": {
                    "total": 107374182400, "free": 61203283968, "threshold": 10485760,
                    "path": "/app/.", "exists": True}},
                "redis": {"status": "UP" if checks.get("cache") == "healthy" else "DOWN",
                          "details": {"version": "7.2.4"}},
                "ping": {"status": "UP"},
            }
            for name, state in checks.items():
                if name not in ("database", "cache"):
                    comp[name] = {"status": "UP" if state == "healthy" else "DOWN"}
            body = {"status": up, "components": comp}
            return code, json.dumps(body).encode(), "application/vnd.spring-boot.actuator.v3+json"
        if fmt == "ietf":
            word = {"healthy": "pass", "degraded": "warn", "unhealthy": "fail"}[status]
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            ietf_checks: dict[str, list[dict[str, Any]]] = {}
            for name, state in checks.items():
                key = "db" if name == "database" else name
                ietf_checks[f"{key}:responseTime"] = [{
                    "componentId": f"{self.spec.name}-{key}",
                    "componentType": "datastore",
                    "observedValue": round(self.rng.uniform(2, 20), 1),
                    "observedUnit": "ms",
                    "status": "pass" if state == "healthy" else "fail",
                    "time": stamp,
                }]
            ietf_checks["uptime"] = [{"componentType": "system",
                                      "observedValue": round(self.uptime(now)),
                                      "observedUnit": "s", "status": "pass", "time": stamp}]
            body = {"status": word, "version": "1", "releaseId": version,
                    "serviceId": f"{self.spec.name}.{self.spec.env}",
                    "description": f"{self.spec.name} in {self.spec.env}", "checks": ietf_checks}
            return code, json.dumps(body).encode(), "application/health+json"
        if fmt == "plain":
            word = {"healthy": "ok", "degraded": "degraded", "unhealthy": "unhealthy"}[status]
            return code, word.encode(), "text/plain; charset=utf-8"
        if fmt == "status":
            return code, b"", "text/plain; charset=utf-8"
        body = {"status": status, "uptime": round(self.uptime(now), 1), "version": version,
                "checks": checks}
        return code, json.dumps(body).encode(), "application/json"

    def probe_payload(self, kind: str) -> tuple[int, bytes]:
        if kind == "live":
            return 200, b'{"status":"UP"}'
        ready = self.status() != "unhealthy"
        return (200, b'{"status":"UP"}') if ready else (503, b'{"status":"OUT_OF_SERVICE"}')

    def metric_lines(self, now: float) -> dict[str, list[str]]:
        """Exposition lines per metric family (no HELP/TYPE), advancing the counters first."""
        with self.lock:
            self.advance(now)
            lab = f'service="{_escape(self.spec.name)}",env="{_escape(self.spec.env)}"'
            out: dict[str, list[str]] = {name: [] for name, _, _ in _FAMILIES}
            req = out["http_requests_total"]
            for (method, status), value in self.requests.items():
                req.append(f'http_requests_total{{{lab},method="{method}",path="/api",'
                           f'status="{status}"}} {int(value)}')
            hist = out["http_request_duration_seconds"]
            total = int(self.duration_count)
            for le, value in zip(BUCKETS, self.buckets, strict=True):
                hist.append(f'http_request_duration_seconds_bucket{{{lab},le="{le}"}} '
                            f"{min(int(value), total)}")
            hist.append(f'http_request_duration_seconds_bucket{{{lab},le="+Inf"}} {total}')
            hist.append(f"http_request_duration_seconds_sum{{{lab}}} {self.duration_sum:.3f}")
            hist.append(f"http_request_duration_seconds_count{{{lab}}} {total}")
            out["process_resident_memory_bytes"].append(
                f"process_resident_memory_bytes{{{lab}}} {int(self.memory_bytes(now))}")
            out["process_cpu_seconds_total"].append(
                f"process_cpu_seconds_total{{{lab}}} {self.cpu_seconds:.3f}")
            out["container_memory_limit_bytes"].append(
                f"container_memory_limit_bytes{{{lab}}} {MEMORY_LIMIT_BYTES}")
            out["process_start_time_seconds"].append(
                f"process_start_time_seconds{{{lab}}} {time.time() - self.uptime(now):.3f}")
            out["db_connection_errors_total"].append(
                f"db_connection_errors_total{{{lab}}} {int(self.db_errors)}")
            restarts = self.kube.restarts if self.kube else 0
            out["kube_pod_container_restarts"].append(
                f"kube_pod_container_restarts{{{lab}}} {restarts}")
            out["build_info"].append(
                f'build_info{{{lab},version="{_escape(self.version())}"}} 1')
        return out


_FAMILIES = (
    ("http_requests_total", "counter", "Requests handled, by method, path and status."),
    ("http_request_duration_seconds", "histogram", "Request latency in seconds."),
    ("process_resident_memory_bytes", "gauge", "Resident memory size in bytes."),
    ("process_cpu_seconds_total", "counter", "Total user and system CPU time in seconds."),
    ("container_memory_limit_bytes", "gauge", "Memory limit of the container in bytes."),
    ("process_start_time_seconds", "gauge", "Start time of the process since the epoch."),
    ("db_connection_errors_total", "counter", "Failed database connection attempts."),
    ("kube_pod_container_restarts", "gauge", "Container restarts over the service's pods."),
    ("build_info", "gauge", "Always 1; the version label carries the running version."),
)


def render_metrics(states: Iterable[ServiceState], now: float) -> str:
    """Prometheus text exposition for the given services, one block per family."""
    per_service = [s.metric_lines(now) for s in states]
    parts: list[str] = []
    for name, kind, help_text in _FAMILIES:
        parts.append(f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n")
        for lines in per_service:
            if lines[name]:
                parts.append("\n".join(lines[name]))
                parts.append("\n")
    return "".join(parts)


class ServicesServer:
    """Serves a set of simulated services on one shared socket (plus optional dedicated ports).

    Runs on the event loop that calls :meth:`start`; :meth:`steer` may be called from any thread.
    """

    def __init__(
        self,
        specs: Iterable[ServiceSpec],
        *,
        host: str = "127.0.0.1",
        seed: int = 0,
        port_ranges: Mapping[str, tuple[int, int]] | None = None,
    ) -> None:
        self.host = host
        self.seed = seed
        self.port_ranges = dict(port_ranges or {})
        self._states: list[ServiceState] = []
        self._by_key: dict[tuple[str, str], ServiceState] = {}
        for i, spec in enumerate(specs):
            if spec.format not in HEALTH_FORMATS:
                raise ValueError(f"service {spec.name}: unknown health format {spec.format!r}")
            if (spec.env, spec.name) in self._by_key:
                raise ValueError(f"service {spec.name!r} appears twice in env {spec.env!r}")
            state = ServiceState(spec, i, seed)
            self._states.append(state)
            self._by_key[(spec.env, spec.name)] = state
        self._by_port: dict[int, ServiceState] = {}
        self._sites: dict[int, web.SockSite] = {}
        self._runner: web.ServerRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        self._huge: bytes | None = None
        self.port = 0
        self.base_url = ""
        self.services: list[SimService] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._steer_lock = threading.Lock()

    # -- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        server = web.Server(self._handle, handler_cancellation=True, access_log=None)
        self._runner = web.ServerRunner(server, shutdown_timeout=0.5, access_log=None)
        await self._runner.setup()
        sock = _bind(self.host, 0)
        self.port = sock.getsockname()[1]
        self.base_url = f"http://{self.host}:{self.port}"
        site = web.SockSite(self._runner, sock)
        await site.start()
        used: set[int] = set()
        for state in self._states:
            if state.spec.dedicated_port:
                dsock = self._bind_in_range(state.spec.env, used)
                if dsock is not None:
                    dport = dsock.getsockname()[1]
                    used.add(dport)
                    self._by_port[dport] = state
                    self._sites[dport] = web.SockSite(self._runner, dsock)
                    await self._sites[dport].start()
        self.services = [self._info(state) for state in self._states]

    async def stop(self) -> None:
        self._stopping = True
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self._sites.clear()

    def _bind_in_range(self, env: str, used: set[int]) -> socket.socket | None:
        lo, hi = self.port_ranges.get(env, (0, 0))
        if not lo:
            return _bind(self.host, 0)
        width = hi - lo + 1
        start = random.Random(f"{self.seed}:{env}:ports").randrange(width)
        for i in range(width):
            port = lo + (start + i * 7) % width
            if port in used:
                continue
            try:
                return _bind(self.host, port)
            except OSError as exc:
                if exc.errno not in (errno.EADDRINUSE, errno.EACCES):
                    raise
        log.warning("no free port left in the %s range %d-%d; using an ephemeral port", env, lo, hi)
        return _bind(self.host, 0)

    def _info(self, state: ServiceState) -> SimService:
        spec = state.spec
        path_url = f"{self.base_url}/svc/{spec.env}/{spec.name}"
        port = next((p for p, s in self._by_port.items() if s is state), None)
        base = f"http://{self.host}:{port}" if port else path_url
        info = SimService(
            name=spec.name, env=spec.env, team=spec.team, format=spec.format,
            health_url=f"{base}/health", live_url=f"{base}/health/live",
            ready_url=f"{base}/health/ready", metrics_url=f"{base}/metrics",
            deployment=spec.deployment, port=port, path_url=path_url, version=spec.version,
        )
        state.info = info
        return info

    # -- steering -------------------------------------------------------------------------
    def state(self, name: str, env: str | None = None) -> ServiceState:
        """The state of a service; ``env`` may be omitted when the name is unique."""
        if env is not None:
            try:
                return self._by_key[(env, name)]
            except KeyError:
                raise KeyError(f"no simulated service {name!r} in env {env!r}") from None
        found = [s for s in self._states if s.spec.name == name]
        if not found:
            raise KeyError(f"no simulated service named {name!r}")
        if len(found) > 1:
            envs = ", ".join(s.spec.env for s in found)
            raise KeyError(f"service {name!r} exists in several envs ({envs}); pass env=")
        return found[0]

    def states(self) -> list[ServiceState]:
        return list(self._states)

    def steer(self, name: str, env: str | None = None, **knobs: Any) -> Knobs:
        """Change knobs of one service (thread-safe). ``reset=True`` first restores defaults.

        From another thread it returns once a dedicated port is closed / reopened; on the
        server's own loop that happens in a task (use :meth:`asteer` to wait for it).
        Returns the new knobs. Raises KeyError for an unknown service, ValueError for a bad knob.
        """
        state, old, new = self._apply(name, env, knobs)
        if state.info is not None and state.info.port and old.down != new.down:
            self._run_on_loop(self._set_listening(state.info.port, not new.down))
        return new

    async def asteer(self, name: str, env: str | None = None, **knobs: Any) -> Knobs:
        """:meth:`steer` for code on the server's loop: waits for listener changes."""
        state, old, new = self._apply(name, env, knobs)
        if state.info is not None and state.info.port and old.down != new.down:
            await self._set_listening(state.info.port, not new.down)
        return new

    def _apply(self, name: str, env: str | None,
               knobs: dict[str, Any]) -> tuple[ServiceState, Knobs, Knobs]:
        state = self.state(name, env)
        knobs = dict(knobs)
        reset = knobs.pop("reset", False)
        if not isinstance(reset, bool):
            raise ValueError(f"reset must be true or false, not {reset!r}")
        values = _validate_knobs(knobs)
        with self._steer_lock:
            old = state.knobs
            base = Knobs() if reset else old
            if "checks" in values and not reset:
                values["checks"] = {**base.checks, **values["checks"]}
            new = replace(base, **values)
            state.mutate(knobs=new)
        return state, old, new

    def set_drift(self, name: str, env: str, drift_ms: float) -> None:
        """Scenario-owned latency drift (ms), added to whatever the knobs say."""
        state = self.state(name, env)
        with state.lock:
            state.advance(time.monotonic())
            state.drift_ms = float(drift_ms)

    def set_kube_effect(self, name: str, env: str, effect: KubeEffect | None) -> None:
        """Record what the service's deployment implies (called by the fleet's sync task)."""
        state = self.state(name, env)
        if state.kube != effect:
            state.mutate(kube=effect)

    def _run_on_loop(self, coro: Any) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            coro.close()
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            task = loop.create_task(coro)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            asyncio.run_coroutine_threadsafe(coro, loop).result(timeout=10)

    async def _set_listening(self, port: int, listening: bool) -> None:
        if self._runner is None or self._stopping:
            return
        site = self._sites.get(port)
        if not listening:
            if site is not None:
                await site.stop()
                self._sites.pop(port, None)
            for handler in self._runner.server.connections if self._runner.server else []:
                transport = handler.transport
                if transport is not None and _local_port(transport) == port:
                    transport.abort()
        elif site is None:
            try:
                sock = _bind(self.host, port)
            except OSError as exc:
                log.warning("cannot listen again on port %d: %s", port, exc)
                return
            self._sites[port] = web.SockSite(self._runner, sock)
            await self._sites[port].start()

    # -- HTTP -----------------------------------------------------------------------------
    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        path = request.path
        dedicated = self._by_port.get(_local_port(request.transport)) if self._by_port else None
        if dedicated is not None:
            return await self._serve(request, dedicated, path.lstrip("/"))
        if path.startswith("/svc/"):
            parts = path[5:].split("/", 2)
            if len(parts) >= 2:
                state = self._by_key.get((parts[0], parts[1]))
                if state is None:
                    return _json(404, {"error": f"no service {parts[1]!r} in env {parts[0]!r}"})
                return await self._serve(request, state, parts[2] if len(parts) == 3 else "")
        if path == "/metrics/all":
            live = [s for s in self._states if not s.knobs.down]
            text = render_metrics(live, time.monotonic())
            return web.Response(text=text, content_type="text/plain", charset="utf-8",
                                headers={"X-Content-Type-Options": "nosniff"})
        if path == "/_sim/services" or path.startswith("/_sim/services/"):
            return await self._sim_api(request)
        host = (request.host or "").split(":", 1)[0]
        labels = host.split(".")
        if len(labels) == 3 and labels[2] == "svc":
            state = self._by_key.get((labels[1], labels[0]))
            if state is not None:
                return await self._serve(request, state, path.lstrip("/"))
        if path in ("/", ""):
            return _json(200, {"fleet": "deploytui simulated services",
                               "services": len(self._states),
                               "routes": ["/svc/<env>/<name>/health", "/metrics/all",
                                          "/_sim/services"]})
        return _json(404, {"error": f"no route for {path}"})

    async def _serve(self, request: web.BaseRequest, state: ServiceState,
                     endpoint: str) -> web.StreamResponse:
        knobs = state.knobs
        if knobs.down:
            return _drop(request)
        if knobs.hang:
            while not self._stopping and state.knobs.hang:
                transport = request.transport
                if transport is None or transport.is_closing():
                    break
                await asyncio.sleep(0.2)
            if state.knobs.down or self._stopping:
                return _drop(request)
        if endpoint != "metrics" and (knobs.latency_ms > 0 or knobs.jitter_ms > 0):
            delay = (knobs.latency_ms + state.drift_ms
                     + state.rng.uniform(-knobs.jitter_ms, knobs.jitter_ms))
            if delay > 0:
                await asyncio.sleep(delay / 1000.0)
        if endpoint not in ("health", "health/live", "health/ready", "metrics", "livez", "readyz"):
            return _json(404, {"error": f"{state.spec.name} has no endpoint /{endpoint}"})
        if knobs.garbage:
            noise = bytes([0x00, 0xFF]) + state.rng.randbytes(510)
            return web.Response(body=noise, content_type="application/json")
        if endpoint == "metrics":
            text = render_metrics([state], time.monotonic())
            return web.Response(text=text, content_type="text/plain", charset="utf-8")
        if endpoint == "health" and knobs.huge_body:
            return await self._huge_body(request)
        if endpoint == "health":
            code, body, ctype = state.health_payload(time.monotonic())
        else:
            code, body = state.probe_payload("live" if endpoint in ("health/live", "livez")
                                              else "ready")
            ctype = "application/json"
        if knobs.wrong_content_type:
            ctype = "text/html" if ctype.split(";")[0].endswith("json") else "application/json"
        resp = web.Response(status=code, body=body)
        resp.headers["Content-Type"] = ctype
        return resp

    async def _huge_body(self, request: web.BaseRequest) -> web.StreamResponse:
        if self._huge is None:
            head = b'{"status":"healthy","version":"1.4.2","padding":"'
            tail = b'"}'
            self._huge = head + b"x" * (HUGE_BODY_BYTES - len(head) - len(tail)) + tail
        resp = web.StreamResponse(status=200)
        resp.content_type = "application/json"
        resp.content_length = len(self._huge)
        await resp.prepare(request)
        view = memoryview(self._huge)
        chunk = 256 * 1024
        try:
            for i in range(0, len(view), chunk):
                await resp.write(view[i:i + chunk])
            await resp.write_eof()
        except (ConnectionError, RuntimeError):
            pass  # the client stopped reading (as a body cap should)
        return resp

    async def _sim_api(self, request: web.BaseRequest) -> web.StreamResponse:
        parts = [p for p in request.path.split("/") if p][2:]
        if not parts:
            if request.method != "GET":
                return _json(405, {"error": "use GET /_sim/services"})
            return _json(200, {"services": [s.describe() for s in self._states]})
        if len(parts) != 2:
            return _json(404, {"error": "use /_sim/services/<env>/<name>"})
        env, name = parts
        if (env, name) not in self._by_key:
            return _json(404, {"error": f"no service {name!r} in env {env!r}"})
        state = self._by_key[(env, name)]
        if request.method == "GET":
            return _json(200, state.describe())
        if request.method != "POST":
            return _json(405, {"error": "use GET or POST"})
        try:
            body = await request.json()
        except ValueError:
            return _json(400, {"error": "the body must be a JSON object of knobs"})
        if not isinstance(body, dict):
            return _json(400, {"error": "the body must be a JSON object of knobs"})
        try:
            await self.asteer(name, env, **body)
        except (ValueError, TypeError) as exc:
            return _json(400, {"error": str(exc)})
        return _json(200, state.describe())


def _json(status: int, body: Any) -> web.Response:
    return web.Response(status=status, text=json.dumps(body), content_type="application/json")


def _drop(request: web.BaseRequest) -> web.StreamResponse:
    """Close the connection before any response byte is sent."""
    transport = request.transport
    if transport is not None:
        transport.abort()
    raise asyncio.CancelledError


def _local_port(transport: asyncio.BaseTransport | None) -> int | None:
    if transport is None:
        return None
    name = transport.get_extra_info("sockname")
    return int(name[1]) if name else None


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(1024)
        sock.setblocking(False)
    except OSError:
        with contextlib.suppress(OSError):
            sock.close()
        raise
    return sock
