"""Direct scrape: without Prometheus, read each service's ``metrics_url`` and compute the same
figures as the Prometheus queries, locally.

Services that share one URL (a fleet-wide ``/metrics/all`` page whose series carry ``service``
and ``env`` labels) are fetched once per poll. A series with a service label belongs to that
service; one without belongs to the service whose ``metrics_url`` it came from.

Rates (error rate, latency quantiles, restarts, CPU, DB errors) need two scrapes: the scraper
keeps a few checkpoints per service over :attr:`ScrapeMetrics.window_s` (5 min, the queries'
window) and computes increases between the oldest and the newest; until a second scrape those
figures are ``empty`` ("waiting for a second scrape"). A counter that went down (a restart of
the process) starts the window again.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from deploytui.config import ServiceSettings, Settings
from deploytui.errors import SourceError
from deploytui.sources.metrics import (
    METRIC_NAMES,
    MetricsSnapshot,
    MetricValue,
    ServiceMetrics,
    histogram_quantile,
    parse_exposition,
    service_key,
)

__all__ = ["WANTED", "ScrapeMetrics", "Totals", "describe_targets", "totals_from_exposition"]

#: Metric families the scrape reads (everything else on a page is skipped before parsing).
WANTED = frozenset({
    "http_requests_total",
    "http_request_duration_seconds_bucket",
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "container_memory_limit_bytes",
    "db_connection_errors_total",
    "kube_pod_container_restarts",
    "kube_pod_container_status_restarts_total",
    "kube_pod_status_ready",
})

_COUNTERS = ("requests", "errors", "cpu", "db", "restarts")


@dataclass
class Totals:
    """Raw sums for one service from one page: counters, gauges and histogram buckets."""

    counters: dict[str, float] = field(default_factory=dict)   # requests, errors, cpu, db, restarts
    buckets: dict[float, float] = field(default_factory=dict)   # le -> cumulative count
    memory: float | None = None
    limit: float | None = None
    not_ready: float | None = None

    def add(self, key: str, value: float) -> None:
        self.counters[key] = self.counters.get(key, 0.0) + value


def totals_from_exposition(text: str, *, owner: tuple[str, str] | None, service_label: str
                           ) -> dict[tuple[str, str], Totals]:
    """Sum one page's samples per (service, env)."""
    out: dict[tuple[str, str], Totals] = {}
    for name, labels, value in parse_exposition(text, WANTED):
        svc = labels.get(service_label)
        if svc:
            key = (svc, labels.get("env", owner[1] if owner and owner[0] == svc else ""))
        elif owner is not None:
            key = owner
        else:
            continue
        t = out.get(key)
        if t is None:
            t = out[key] = Totals()
        if math.isnan(value):
            continue
        if name == "http_requests_total":
            t.add("requests", value)
            if labels.get("status", "").startswith("5"):
                t.add("errors", value)
        elif name == "http_request_duration_seconds_bucket":
            try:
                le = float(labels.get("le", "nan").replace("+Inf", "inf"))
            except ValueError:
                continue
            t.buckets[le] = t.buckets.get(le, 0.0) + value
        elif name == "process_cpu_seconds_total":
            t.add("cpu", value)
        elif name == "db_connection_errors_total":
            t.add("db", value)
        elif name in ("kube_pod_container_restarts", "kube_pod_container_status_restarts_total"):
            t.add("restarts", value)
        elif name == "process_resident_memory_bytes":
            t.memory = (t.memory or 0.0) + value
        elif name == "container_memory_limit_bytes":
            t.limit = (t.limit or 0.0) + value
        elif name == "kube_pod_status_ready":
            if labels.get("condition") == "false":
                t.not_ready = (t.not_ready or 0.0) + value
            elif t.not_ready is None:
                t.not_ready = 0.0
    return out


@dataclass
class _History:
    checkpoints: deque[tuple[float, Totals]] = field(default_factory=lambda: deque(maxlen=12))
    latest: tuple[float, Totals] | None = None


_WAIT = MetricValue("empty", None, "waiting for a second scrape to compute a rate")
_NO_SERIES = MetricValue("empty", None, "the metrics page has no such series for this service")


def _counter_went_down(old: Totals, new: Totals) -> bool:
    return any(new.counters.get(k, 0.0) < old.counters.get(k, 0.0) for k in _COUNTERS) or any(
        new.buckets.get(le, 0.0) < c for le, c in old.buckets.items())


class ScrapeMetrics:
    """Fleet figures from each service's own ``/metrics`` (no Prometheus)."""

    name = "scrape"

    def __init__(self, settings: Settings, *, window_s: float = 300.0) -> None:
        self.settings = settings
        self.window_s = window_s
        self.service_label = settings.prometheus.service_label or "service"
        self.targets: dict[str, list[ServiceSettings]] = {}
        for svc in settings.services:
            if svc.metrics_url:
                self.targets.setdefault(svc.metrics_url, []).append(svc)
        self._session: aiohttp.ClientSession | None = None
        self._session_loop: asyncio.AbstractEventLoop | None = None
        self._history: dict[tuple[str, str], _History] = {}

    @property
    def configured(self) -> bool:
        return bool(self.targets)

    async def _http(self) -> aiohttp.ClientSession:
        # aiohttp, not httpx: httpcore's pool costs O(connections) per request, which made a
        # 5,000-URL sweep take ~45 s; aiohttp does it in ~1.5 s. One session per event loop.
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._session_loop is not loop:
            limit = self.settings.health.concurrency
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=limit, limit_per_host=limit),
                timeout=aiohttp.ClientTimeout(total=self.settings.prometheus.timeout))
            self._session_loop = loop
        return self._session

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def _get(self, url: str, sem: asyncio.Semaphore, services: list[ServiceSettings]
                   ) -> str | SourceError:
        headers: dict[str, str] = {}
        if len(services) == 1:
            headers = {k: v.reveal() for k, v in services[0].headers.items()}
        session = await self._http()
        async with sem:
            try:
                async with session.get(url, headers=headers) as resp:
                    if resp.status != 200:
                        return SourceError("scrape", f"{url} answered HTTP {resp.status}", "http")
                    body = await resp.read()
            except TimeoutError:
                return SourceError("scrape", f"{url} did not answer within "
                                   f"{self.settings.prometheus.timeout:g} s", "timeout")
            except aiohttp.ClientConnectorError:
                return SourceError("scrape", f"cannot connect to {url} (connection refused)",
                                   "refused")
            except (aiohttp.ClientError, OSError) as exc:
                return SourceError("scrape", f"{url}: {exc.__class__.__name__}", "unavailable")
        return body.decode("utf-8", errors="replace")

    async def fetch(self) -> MetricsSnapshot:
        started = time.perf_counter()
        sem = asyncio.Semaphore(self.settings.health.concurrency)
        urls = list(self.targets)
        pages = await asyncio.gather(*(self._get(u, sem, self.targets[u]) for u in urls))
        now = time.monotonic()
        fresh: dict[tuple[str, str], Totals] = {}
        failed: dict[tuple[str, str], str] = {}
        for url, page in zip(urls, pages, strict=True):
            owners = self.targets[url]
            if isinstance(page, SourceError):
                for svc in owners:
                    failed[(svc.name, svc.env)] = str(page)
                continue
            owner = (owners[0].name, owners[0].env) if len(owners) == 1 else None
            found = totals_from_exposition(page, owner=owner, service_label=self.service_label)
            fresh.update(found)
            for svc in owners:
                if (svc.name, svc.env) not in found and (svc.name, "") not in found:
                    fresh.setdefault((svc.name, svc.env), Totals())
        services: dict[str, ServiceMetrics] = {}
        for key, totals in fresh.items():
            values = self._figures(key, now, totals)
            services[service_key(*key)] = ServiceMetrics(key[0], key[1], values)
        for key, message in failed.items():
            err = MetricValue("error", None, message)
            services[service_key(*key)] = ServiceMetrics(key[0], key[1],
                                                         {m: err for m in METRIC_NAMES})
            self._history.pop(key, None)
        error = None
        if urls and all(isinstance(p, SourceError) for p in pages):
            first = next(p for p in pages if isinstance(p, SourceError))
            error = (str(first) if len(urls) == 1 else
                     f"scrape: none of the {len(urls)} metrics endpoints answered ({first})")
        return MetricsSnapshot(source="scrape", services=services, errors={}, queries={},
                               error=error, duration_s=time.perf_counter() - started)

    def _figures(self, key: tuple[str, str], now: float, t: Totals) -> dict[str, MetricValue]:
        hist = self._history.get(key)
        if hist is None:
            hist = self._history[key] = _History()
        if hist.latest is not None and _counter_went_down(hist.latest[1], t):
            hist.checkpoints.clear()
        while hist.checkpoints and now - hist.checkpoints[0][0] > self.window_s:
            if len(hist.checkpoints) == 1:
                break
            hist.checkpoints.popleft()
        if not hist.checkpoints or now - hist.checkpoints[-1][0] >= self.window_s / 10:
            hist.checkpoints.append((now, t))
        hist.latest = (now, t)
        values: dict[str, MetricValue] = {
            "memory_pct": _ratio(t.memory, t.limit),
            "pods_not_ready": (MetricValue.of(t.not_ready) if t.not_ready is not None
                               else _NO_SERIES),
        }
        t0, old = hist.checkpoints[0]
        dt = now - t0
        has = t.counters
        if dt <= 0 or old is t:
            present = {"error_rate_pct": "requests" in has, "p95_s": bool(t.buckets),
                       "p99_s": bool(t.buckets), "restarts_per_min": "restarts" in has,
                       "cpu_pct": "cpu" in has, "db_errors_per_min": "db" in has}
            for m, there in present.items():
                values[m] = _WAIT if there else _NO_SERIES
            return {m: values[m] for m in METRIC_NAMES}

        def inc(name: str) -> float | None:
            if name not in has:
                return None
            return max(0.0, has[name] - old.counters.get(name, 0.0))

        req, err = inc("requests"), inc("errors")
        if req is None:
            values["error_rate_pct"] = _NO_SERIES
        else:
            values["error_rate_pct"] = MetricValue.of((err or 0.0) / req * 100 if req > 0
                                                      else math.nan)
        if t.buckets:
            deltas = [(le, max(0.0, c - old.buckets.get(le, 0.0))) for le, c in t.buckets.items()]
            values["p95_s"] = MetricValue.of(histogram_quantile(0.95, deltas))
            values["p99_s"] = MetricValue.of(histogram_quantile(0.99, deltas))
        else:
            values["p95_s"] = values["p99_s"] = _NO_SERIES
        for metric, name, scale in (("restarts_per_min", "restarts", 60.0),
                                    ("cpu_pct", "cpu", 100.0),
                                    ("db_errors_per_min", "db", 60.0)):
            d = inc(name)
            values[metric] = _NO_SERIES if d is None else MetricValue.of(d / dt * scale)
        return {m: values[m] for m in METRIC_NAMES}

    async def query_range(self, expr: str, start: float, end: float, step: float,
                          match: Mapping[str, str] | None = None) -> list[tuple[float, float]]:
        """The scrape has no range queries (the alert feed uses its rule history instead)."""
        return []


def _ratio(num: float | None, den: float | None) -> MetricValue:
    if num is None or den is None:
        return _NO_SERIES
    if den == 0:
        return MetricValue.of(math.nan)
    return MetricValue.of(num / den * 100)


def describe_targets(settings: Settings) -> Mapping[str, Any]:
    """How many services and distinct metrics URLs a scrape would read (for summaries)."""
    urls = {s.metrics_url for s in settings.services if s.metrics_url}
    return {"services": sum(1 for s in settings.services if s.metrics_url), "urls": len(urls)}
