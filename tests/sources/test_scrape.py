"""Direct scrape of the simulated fleet's /metrics (no Prometheus): the same figures, locally."""

from __future__ import annotations

import asyncio
import dataclasses
import math
from collections.abc import Iterator

import pytest

from deploytui.config import Settings, load_config
from deploytui.demo.fleet import Fleet
from deploytui.sources.alerts import make_metrics
from deploytui.sources.metrics import MetricsSnapshot, histogram_quantile, parse_exposition
from deploytui.sources.scrape import ScrapeMetrics
from tests.conftest import free_port


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    with Fleet(services=8, kubernetes=False, seed=3) as f:
        f.steer("search", "prod", request_rate=0.0)
        yield f


def two_scrapes(scraper: ScrapeMetrics, between: float = 0.6) -> tuple[MetricsSnapshot, MetricsSnapshot]:
    async def go() -> tuple[MetricsSnapshot, MetricsSnapshot]:
        try:
            first = await scraper.fetch()
            await asyncio.sleep(between)
            return first, await scraper.fetch()
        finally:
            await scraper.aclose()
    return asyncio.run(go())


def test_without_prometheus_the_services_are_scraped(fleet: Fleet) -> None:
    settings = load_config(fleet.config_path)
    assert not settings.prometheus.url
    metrics = make_metrics(settings)
    assert isinstance(metrics, ScrapeMetrics) and metrics.configured


def test_rates_need_two_scrapes_then_match_the_steered_service(fleet: Fleet) -> None:
    # plenty of traffic, so 0.6 s between scrapes holds hundreds of requests (counters are ints)
    fleet.steer("checkout", "prod", error_rate=0.4, latency_ms=900.0, jitter_ms=0.0,
                request_rate=1000.0)
    settings = load_config(fleet.config_path)
    first, second = two_scrapes(ScrapeMetrics(settings))
    assert first.source == "scrape" and first.error is None
    co1 = first.get("checkout", "prod")
    assert co1 is not None
    assert co1.get("memory_pct").state == "ok"                 # a gauge: known at once
    assert co1.get("error_rate_pct").state == "empty"          # a rate: not yet
    assert "second scrape" in co1.get("error_rate_pct").message
    co = second.get("checkout", "prod")
    assert co is not None
    assert 35 < co.value("error_rate_pct") < 45  # type: ignore[operator]
    assert co.value("p95_s") > 0.5  # type: ignore[operator]
    assert co.value("p95_s") <= co.value("p99_s")  # type: ignore[operator]
    assert co.get("cpu_pct").state == "ok"
    assert co.get("restarts_per_min").state == "ok" and co.value("restarts_per_min") == 0
    assert co.get("pods_not_ready").state == "empty"           # no kube-state-metrics here
    search = second.get("search", "prod")
    assert search is not None
    assert search.get("error_rate_pct").state == "nan"         # 0 requests / 0 requests
    assert search.get("p95_s").state == "nan"
    fleet.steer("checkout", "prod", error_rate=0.002, latency_ms=5.0, jitter_ms=2.0,
                request_rate=None)


def test_a_down_service_is_an_error_for_that_service_only(fleet: Fleet) -> None:
    fleet.steer("cart", "prod", down=True)
    try:
        settings = load_config(fleet.config_path)
        _, snap = two_scrapes(ScrapeMetrics(settings), between=0.2)
    finally:
        fleet.steer("cart", "prod", down=False)
    cart = snap.get("cart", "prod")
    assert cart is not None
    assert {v.state for v in cart.values.values()} == {"error"}
    assert snap.value("cart", "memory_pct", "prod").state == "error"
    assert snap.error is None
    auth = snap.get("auth", "prod")
    assert auth is not None and auth.get("memory_pct").state == "ok"


def test_nothing_answering_is_a_source_error() -> None:
    port = free_port()
    settings = Settings(services=(
        _svc("a", f"http://127.0.0.1:{port}/metrics"),
        _svc("b", f"http://127.0.0.1:{port}/other"),
    ))
    _, snap = two_scrapes(ScrapeMetrics(settings), between=0.0)
    assert snap.error is not None and "none of the 2 metrics endpoints answered" in snap.error


def test_a_shared_fleet_page_is_fetched_once_and_split_by_labels(fleet: Fleet) -> None:
    base = load_config(fleet.config_path)
    settings = dataclasses.replace(base, services=tuple(
        dataclasses.replace(s, metrics_url=fleet.metrics_all_url) for s in base.services))
    scraper = ScrapeMetrics(settings)
    assert len(scraper.targets) == 1
    _, snap = two_scrapes(scraper)
    assert {k for k in snap.services} >= {s.key for s in base.services}
    assert snap.value("search", "error_rate_pct", "prod").state == "nan"
    assert snap.value("auth", "error_rate_pct", "prod").state == "ok"


def _svc(name: str, metrics_url: str):  # type: ignore[no-untyped-def]
    from deploytui.config import ServiceSettings

    return ServiceSettings(name=name, health_url="http://127.0.0.1:1/health",
                           metrics_url=metrics_url)


def test_exposition_reader_and_histogram_quantile() -> None:
    text = (
        "# HELP x y\n# TYPE http_requests_total counter\n"
        'http_requests_total{service="a",status="500",path="/q\\"x"} 5\n'
        'http_requests_total{service="a",status="200"} 95 1700000000000\n'
        "process_cpu_seconds_total 12.5\n"
        'broken{service="a" 1\n'
        "up NaN\n"
    )
    samples = list(parse_exposition(text))
    assert samples[0] == ("http_requests_total", {"service": "a", "status": "500",
                                                  "path": '/q"x'}, 5.0)
    assert samples[1][2] == 95.0 and samples[2] == ("process_cpu_seconds_total", {}, 12.5)
    assert math.isnan(samples[-1][2])
    assert [s[0] for s in parse_exposition(text, {"up"})] == ["up"]
    buckets = [(0.1, 50.0), (0.5, 90.0), (1.0, 100.0), (math.inf, 100.0)]
    assert histogram_quantile(0.5, buckets) == pytest.approx(0.1)
    assert histogram_quantile(0.95, buckets) == pytest.approx(0.75)
    assert histogram_quantile(0.99, [(0.1, 1.0), (math.inf, 10.0)]) == 0.1
    assert math.isnan(histogram_quantile(0.95, [(0.1, 0.0), (math.inf, 0.0)]))
    assert math.isnan(histogram_quantile(0.95, []))


def test_snapshot_section_in_scrape_mode_shows_rule_alerts_now(fleet: Fleet) -> None:
    from deploytui.sources.alerts import snapshot_section

    fleet.steer("payments", "prod", error_rate=0.5)
    try:
        settings = load_config(fleet.config_path)
        assert settings.rules.for_seconds > 0  # the one-shot applies levels without `for`
        section = asyncio.run(snapshot_section(settings))
    finally:
        fleet.steer("payments", "prod", error_rate=0.002)
    assert section.configured and section.error is None and not section.ok
    row = next(r for r in section.rows if r["service"] == "payments")
    assert row["alertname"] == "HighErrorRate" and row["severity"] == "critical"
    assert row["value"] > 10 and row["fingerprint"].startswith("rule:")
    assert section.summary["metrics"] == "scrape"
