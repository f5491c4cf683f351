"""Prometheus: one fleet-wide instant query per metric, aggregated server-side by service.

``prometheus-api-client`` is blocking and costs ~0.1 s to import, so it is imported inside
:meth:`PrometheusClient._connect` (never at start-up) and every call runs in a thread
(``asyncio.to_thread``). The queries of one poll run concurrently.

Default queries (``[prometheus.queries]`` overrides them by name and adds new ones; the seed's
short names ``error_rate``, ``p95``, ``memory`` ... are accepted for the built-in metrics) carry
the service label and ``env``, so the same service name in two envs stays two rows; a query that
aggregates only ``by (service)`` is read too (its figures apply to the service in every env).

States are never folded into "fine": a service missing from a result is ``empty``, a NaN
sample is ``nan``, a failed query is ``error`` for that metric, and an unreachable Prometheus
sets :attr:`MetricsSnapshot.error`.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from deploytui.config import PrometheusSettings, Settings
from deploytui.errors import SourceError
from deploytui.sources.metrics import (
    EMPTY,
    METRIC_NAMES,
    MetricsSnapshot,
    MetricValue,
    ServiceMetrics,
    service_key,
)

__all__ = [
    "QUERY_ALIASES",
    "PrometheusClient",
    "PrometheusMetrics",
    "default_queries",
    "resolve_queries",
]

#: Short names accepted in ``[prometheus.queries]`` for the built-in metrics.
QUERY_ALIASES: Mapping[str, str] = MappingProxyType({
    "error_rate": "error_rate_pct",
    "error_rate_percent": "error_rate_pct",
    "p95": "p95_s",
    "p95_seconds": "p95_s",
    "p99": "p99_s",
    "p99_seconds": "p99_s",
    "restarts": "restarts_per_min",
    "restarts_per_minute": "restarts_per_min",
    "restart_rate": "restarts_per_min",
    "pods_not_ready": "pods_not_ready",
    "cpu": "cpu_pct",
    "cpu_percent": "cpu_pct",
    "memory": "memory_pct",
    "memory_percent": "memory_pct",
    "db_errors": "db_errors_per_min",
    "db_errors_per_minute": "db_errors_per_min",
})


def default_queries(service_label: str = "service", window: str = "5m") -> dict[str, str]:
    """The seed's queries, one per metric for the whole fleet, ``by (<service>, env)``."""
    by = f"{service_label}, env"
    w = window

    def per_min(selector: str) -> str:
        return f"sum by ({by}) (rate({selector}[{w}])) * 60"

    total = f"sum by ({by}) (rate(http_requests_total[{w}]))"
    errors = f'sum by ({by}) (rate(http_requests_total{{status=~"5.."}}[{w}]))'
    return {
        # "or total * 0": a service without any 5xx series has 0 %, not "no data".
        "error_rate_pct": f"({errors} or {total} * 0) / {total} * 100",
        "p95_s": (f"histogram_quantile(0.95, sum by ({by}, le) "
                  f"(rate(http_request_duration_seconds_bucket[{w}])))"),
        "p99_s": (f"histogram_quantile(0.99, sum by ({by}, le) "
                  f"(rate(http_request_duration_seconds_bucket[{w}])))"),
        # kube-state-metrics' counter, or the per-service gauge the demo services expose
        "restarts_per_min": per_min(
            '{__name__=~"kube_pod_container_status_restarts_total|kube_pod_container_restarts"}'),
        "pods_not_ready": f'sum by ({by}) (kube_pod_status_ready{{condition="false"}})',
        "cpu_pct": f"sum by ({by}) (rate(process_cpu_seconds_total[{w}])) * 100",
        "memory_pct": (f"sum by ({by}) (process_resident_memory_bytes) / "
                       f"sum by ({by}) (container_memory_limit_bytes) * 100"),
        "db_errors_per_min": per_min("db_connection_errors_total"),
    }


def resolve_queries(settings: PrometheusSettings) -> dict[str, str]:
    """Default queries with ``[prometheus.queries]`` applied (aliases resolved)."""
    queries = default_queries(settings.service_label)
    for name, expr in settings.queries.items():
        queries[QUERY_ALIASES.get(name, name)] = expr
    return queries


class PrometheusClient:
    """Blocking calls to one Prometheus; every error is a :class:`SourceError` for the operator."""

    def __init__(self, settings: PrometheusSettings) -> None:
        self.settings = settings
        self.url = settings.url.rstrip("/")
        self._conn: Any = None
        self._lock = threading.Lock()

    def _connect(self) -> Any:
        with self._lock:
            if self._conn is None:
                from prometheus_api_client import PrometheusConnect  # lazy: start-up stays fast
                from urllib3.util.retry import Retry

                headers = {}
                if self.settings.token:
                    headers["Authorization"] = f"Bearer {self.settings.token.reveal()}"
                # No retries: a down Prometheus must show as down within one timeout.
                self._conn = PrometheusConnect(url=self.url, headers=headers or None,
                                               retry=Retry(total=0, raise_on_status=False),
                                               timeout=self.settings.timeout)
                self._conn._session.mount(  # pool as large as one poll's concurrent queries
                    self.url, _adapter(Retry(total=0, raise_on_status=False)))
            return self._conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn._session.close()
                self._conn = None

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query; the raw ``result`` list."""
        conn = self._connect()
        try:
            data = conn.custom_query(expr)
        except Exception as exc:
            raise self._error(exc) from None
        if not isinstance(data, list):
            raise SourceError("prometheus", "the query must return an instant vector "
                              f"aggregated by {self.settings.service_label}, not a scalar", "parse")
        return data

    def query_range(self, expr: str, start: float, end: float, step: float
                    ) -> list[dict[str, Any]]:
        conn = self._connect()
        try:
            return list(conn.custom_query_range(
                expr, start_time=datetime.fromtimestamp(start, UTC),
                end_time=datetime.fromtimestamp(end, UTC), step=f"{max(step, 0.001):g}s"))
        except Exception as exc:
            raise self._error(exc) from None

    def _error(self, exc: Exception) -> SourceError:
        import requests  # already imported by prometheus_api_client

        where = self.url
        if isinstance(exc, requests.exceptions.Timeout):
            return SourceError("prometheus", f"{where} did not answer within "
                               f"{self.settings.timeout:g} s", "timeout")
        if isinstance(exc, requests.exceptions.ConnectionError):
            text = str(exc)
            if "Name or service not known" in text or "nodename nor servname" in text:
                return SourceError("prometheus", f"cannot resolve the host of {where}", "dns")
            if "SSL" in text or "certificate" in text:
                return SourceError("prometheus", f"TLS handshake with {where} failed", "tls")
            return SourceError("prometheus", f"cannot connect to {where} (connection refused) — "
                               "is Prometheus running?", "refused")
        text = str(exc)
        if "HTTP Status Code" in text:
            status = text.split("HTTP Status Code", 1)[1].strip().split(" ", 1)[0]
            detail = _api_error(text)
            if status in ("401", "403"):
                return SourceError("prometheus", f"{where} refused the credentials (HTTP "
                                   f"{status}); check prometheus.token", "auth")
            if status in ("400", "422"):
                return SourceError("prometheus", f"query rejected: {detail}", "parse")
            return SourceError("prometheus", f"{where} answered HTTP {status}: {detail}", "http")
        if isinstance(exc, ValueError):
            return SourceError("prometheus", f"{where} did not answer with JSON", "parse")
        return SourceError("prometheus", f"{where}: {exc.__class__.__name__}: {exc}", "unavailable")


def _adapter(retry: Any) -> Any:
    from requests.adapters import HTTPAdapter

    return HTTPAdapter(max_retries=retry, pool_connections=4, pool_maxsize=32)


def _api_error(text: str) -> str:
    """The ``error`` field of a Prometheus API error body inside the client's message."""
    start = text.find("{")
    if start != -1:
        raw = text[start:].rstrip("')\"")
        try:
            body = json.loads(raw.encode().decode("unicode_escape"))
            return str(body.get("error", raw))[:300]
        except (ValueError, UnicodeDecodeError):
            pass
    return text[:300]


def _sample(value: Any) -> float:
    try:
        return float(value[1])
    except (TypeError, ValueError, IndexError):
        return math.nan


class PrometheusMetrics:
    """Fleet figures from Prometheus: :meth:`fetch` runs every query (in threads) once."""

    name = "prometheus"

    def __init__(self, settings: Settings, client: PrometheusClient | None = None) -> None:
        self.settings = settings
        self.client = client or PrometheusClient(settings.prometheus)
        self.queries = resolve_queries(settings.prometheus)
        self.service_label = settings.prometheus.service_label

    async def fetch(self) -> MetricsSnapshot:
        started = time.perf_counter()
        names = list(self.queries)
        results = await asyncio.gather(
            *(asyncio.to_thread(self._query, self.queries[n]) for n in names))
        # Building 5,000 services' figures takes ~0.1 s: off the event loop (the UI's).
        snap = await asyncio.to_thread(self.build, dict(zip(names, results, strict=True)))
        return replace(snap, duration_s=time.perf_counter() - started)

    def fetch_blocking(self) -> MetricsSnapshot:
        started = time.perf_counter()
        results = {n: self._query(q) for n, q in self.queries.items()}
        return self.build(results, duration_s=time.perf_counter() - started)

    def _query(self, expr: str) -> list[dict[str, Any]] | SourceError:
        try:
            return self.client.query(expr)
        except SourceError as exc:
            return exc

    def build(self, results: Mapping[str, list[dict[str, Any]] | SourceError], *,
              duration_s: float = 0.0, taken_at: float | None = None) -> MetricsSnapshot:
        """Turn raw query results into a snapshot (public so benchmarks can time it alone)."""
        label = self.service_label
        errors: dict[str, str] = {}
        found: dict[str, dict[str, MetricValue]] = {}
        idents: dict[str, tuple[str, str]] = {}
        for metric, result in results.items():
            if isinstance(result, SourceError):
                errors[metric] = str(result)
                continue
            missing_label = 0
            for series in result:
                labels = series.get("metric") or {}
                name = labels.get(label)
                if not name:
                    missing_label += 1
                    continue
                env = labels.get("env", "")
                key = service_key(name, env)
                if key not in found:
                    found[key] = {}
                    idents[key] = (name, env)
                found[key][metric] = MetricValue.of(_sample(series.get("value")))
            if missing_label and missing_label == len(result):
                errors[metric] = (f"prometheus: the query returned {missing_label} series without "
                                  f"a {label!r} label; aggregate it by ({label})")
        unreachable = [e for e in results.values()
                       if isinstance(e, SourceError) and e.kind in ("refused", "timeout", "dns",
                                                                    "tls", "auth")]
        error = str(unreachable[0]) if unreachable and len(unreachable) == len(results) else None
        for svc in self.settings.services:
            if svc.key not in found:
                found[svc.key] = {}
                idents[svc.key] = (svc.name, svc.env)
        # A query aggregated only by service (no env label) applies to that service in every
        # env; it stands alone only when no env of that service is known.
        with_env = {idents[k][0] for k in found if idents[k][1]}
        for key in [k for k in found if not idents[k][1] and idents[k][0] in with_env]:
            name = idents[key][0]
            envless = found.pop(key)
            for other, values in found.items():
                if idents[other][0] == name:
                    for m, v in envless.items():
                        values.setdefault(m, v)
        metrics = [*METRIC_NAMES, *(m for m in results if m not in METRIC_NAMES)]
        error_values = {m: MetricValue("error", None, errors[m]) for m in errors}
        services: dict[str, ServiceMetrics] = {}
        for key, values in found.items():
            full = {}
            for m in metrics:
                if m in error_values:
                    full[m] = error_values[m]
                elif m not in results:
                    full[m] = MetricValue("empty", None, "no query configured for this metric")
                else:
                    full[m] = values.get(m, EMPTY)
            name, env = idents[key]
            services[key] = ServiceMetrics(name, env, full)
        kwargs: dict[str, Any] = {}
        if taken_at is not None:
            kwargs["taken_at"] = taken_at
        return MetricsSnapshot(source="prometheus", services=services, errors=errors,
                               queries=dict(self.queries), error=error, duration_s=duration_s,
                               **kwargs)

    async def query_range(self, expr: str, start: float, end: float, step: float,
                          match: Mapping[str, str] | None = None) -> list[tuple[float, float]]:
        """One series' points, for sparklines: the first series whose labels all appear in
        ``match`` (an alert's labels), else the first series."""
        result = await asyncio.to_thread(self.client.query_range, expr, start, end, step)
        return points_of(result, match)

    def close(self) -> None:
        self.client.close()


def points_of(result: Sequence[Mapping[str, Any]], match: Mapping[str, str] | None = None
              ) -> list[tuple[float, float]]:
    """``(ts, value)`` of one series of a range query result (NaN kept as NaN)."""
    if not result:
        return []
    chosen = result[0]
    if match:
        for series in result:
            labels = series.get("metric") or {}
            if all(match.get(k) == v for k, v in labels.items()):
                chosen = series
                break
        else:
            return []
    out = []
    for ts, raw in chosen.get("values", ()):
        try:
            out.append((float(ts), float(raw)))
        except (TypeError, ValueError):
            continue
    return out
