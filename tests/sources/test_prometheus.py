"""Fleet-wide metrics from a real Prometheus scraping the simulated fleet."""

from __future__ import annotations

import asyncio
import math
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from deploytui.config import PrometheusSettings, Settings, load_config
from deploytui.demo.fleet import Fleet
from deploytui.sources.metrics import METRIC_NAMES, MetricsSnapshot
from deploytui.sources.prometheus import PrometheusMetrics, default_queries, resolve_queries
from tests.conftest import free_port
from tests.promstack import PromStack, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    with Fleet(services=6, kubernetes=False, seed=7) as f:
        # No traffic at all from the start: its ratios and quantiles are 0/0 = NaN.
        f.steer("search", "prod", request_rate=0.0)
        f.steer("checkout", "prod", error_rate=0.5)
        yield f


@pytest.fixture(scope="module")
def stack(fleet: Fleet) -> Iterator[PromStack]:
    with PromStack(targets=[fleet.metrics_all_url], rules="") as s:
        s.wait_for(lambda: len(s.prom_query("rate(http_requests_total[5m])")) > 0,
                   what="two scrapes of the fleet")
        yield s


def settings_for(fleet: Fleet, url: str, **queries: str) -> Settings:
    base = load_config(fleet.config_path)
    return base.with_changes(prometheus=PrometheusSettings(url=url, timeout=3.0,
                                                           queries=queries))


def fetch(settings: Settings) -> MetricsSnapshot:
    source = PrometheusMetrics(settings)
    try:
        return asyncio.run(source.fetch())
    finally:
        source.close()


def test_one_query_per_metric_gives_every_service_its_figures(fleet: Fleet, stack: PromStack) -> None:
    settings = settings_for(fleet, stack.prometheus_url)
    snap = wait_for(lambda: (s := fetch(settings)) and s.value("checkout", "error_rate_pct",
                                                               "prod").ok and s,
                    what="checkout's error rate")
    assert snap.source == "prometheus" and snap.error is None and not snap.errors
    assert set(snap.queries) == set(METRIC_NAMES)
    assert {k for k in snap.services} == {f"{s.env}/{s.name}" for s in fleet.services}
    cart = snap.get("cart", "prod")
    assert cart is not None
    for metric in ("error_rate_pct", "p95_s", "p99_s", "cpu_pct", "memory_pct",
                   "db_errors_per_min", "restarts_per_min"):
        assert cart.get(metric).state == "ok", (metric, cart.get(metric))
    assert 0 < cart.value("memory_pct") < 100  # type: ignore[operator]
    assert cart.value("p95_s") <= cart.value("p99_s")  # type: ignore[operator]
    # the steered service: half its requests fail (the window started with the fleet)
    wait_for(lambda: fetch(settings).value("checkout", "error_rate_pct", "prod").value > 20,
             what="checkout's error rate to climb above 20 %")


def test_empty_nan_and_error_are_distinct_states(fleet: Fleet, stack: PromStack) -> None:
    settings = settings_for(
        fleet, stack.prometheus_url,
        p99="histogram_quantile(0.99, sum by (service, env, le) (rate(nonsense[5m)))",
        db_errors="sum by (service, env) (metric_nobody_exports)")
    snap = fetch(settings)
    search = snap.get("search", "prod")
    assert search is not None
    # no traffic: 0 / 0
    assert search.get("error_rate_pct").state == "nan"
    assert search.get("p95_s").state == "nan"
    assert search.get("memory_pct").state == "ok"
    # no kube-state-metrics in this fleet: the query answers, with nothing
    assert search.get("pods_not_ready").state == "empty"
    assert search.get("db_errors_per_min").state == "empty"
    # a broken query: an error for that metric only, with Prometheus' reason
    assert search.get("p99_s").state == "error"
    assert "query rejected" in snap.errors["p99_s"]
    assert snap.value("search", "p99_s", "prod").state == "error"
    assert snap.error is None
    assert search.get("p99_s").text() == "error" and search.get("p95_s").text() == "NaN"


def test_prometheus_down_is_an_error_not_fine(fleet: Fleet) -> None:
    settings = settings_for(fleet, f"http://127.0.0.1:{free_port()}")
    snap = fetch(settings)
    assert snap.error is not None and "is Prometheus running?" in snap.error
    assert snap.value("cart", "error_rate_pct", "prod").state == "error"
    # configured services are still listed, each figure in state error
    assert all(v.state == "error" for sm in snap.services.values() for v in sm.values.values())


def test_queries_aggregated_by_service_only_apply_in_every_env(fleet: Fleet,
                                                               stack: PromStack) -> None:
    settings = settings_for(
        fleet, stack.prometheus_url,
        error_rate='sum by (service) (rate(http_requests_total{status=~"5.."}[5m])) / '
                   "sum by (service) (rate(http_requests_total[5m])) * 100")
    snap = fetch(settings)
    assert "error_rate_pct" in snap.queries and "by (service)" in snap.queries["error_rate_pct"]
    assert snap.value("checkout", "error_rate_pct", "prod").state == "ok"
    assert snap.value("checkout", "p95_s", "prod").state == "ok"


def test_extra_queries_extend_by_name(fleet: Fleet, stack: PromStack) -> None:
    settings = settings_for(fleet, stack.prometheus_url,
                            uptime_s="max by (service, env) (time() - process_start_time_seconds)")
    snap = fetch(settings)
    assert snap.value("auth", "uptime_s", "prod").value > 60  # type: ignore[operator]
    assert resolve_queries(settings.prometheus)["uptime_s"].startswith("max by")


def test_query_range_for_sparklines(fleet: Fleet, stack: PromStack) -> None:
    source = PrometheusMetrics(settings_for(fleet, stack.prometheus_url))

    def history() -> list[tuple[float, float]]:
        end = time.time()
        return asyncio.run(source.query_range(
            'sum(process_resident_memory_bytes{service="cart"})', end - 30, end, 1.0))

    try:
        # The stack fixture only waits for two scrapes, which a loaded machine can put inside
        # one step: wait until Prometheus holds at least two steps of history.
        points = wait_for(lambda: p if len(p := history()) >= 2 else None,
                          what="two 1 s steps of cart's memory history")
    finally:
        source.close()
    assert len(points) >= 2
    assert all(v > 0 and not math.isnan(v) for _, v in points)


def test_default_queries_aggregate_server_side_by_service() -> None:
    queries = default_queries("app")
    assert set(queries) == set(METRIC_NAMES)
    assert all("by (app, env" in q for q in queries.values())
    assert "histogram_quantile(0.95" in queries["p95_s"]


def test_the_client_library_is_imported_lazily() -> None:
    code = ("import sys, deploytui.sources.prometheus, deploytui.sources.alerts; "
            "print('prometheus_api_client' in sys.modules, 'pandas' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "False"]
