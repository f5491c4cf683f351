"""The simulated services: every knob does what it promises, seen by a real httpx client."""

from __future__ import annotations

import asyncio
import json
import subprocess

import httpx
import pytest

from deploytui.demo.fleet import ALLOWED_PORTS
from deploytui.demo.services import HUGE_BODY_BYTES, ServiceSpec, ServicesServer, SimService
from tests.conftest import require_binary
from tests.fleet_fixtures import parse_metrics, sample_value, services_server_fixture  # noqa: F401


def svc(server: ServicesServer, name: str) -> SimService:
    return next(s for s in server.services if s.name == name)


async def get(url: str, **kwargs: object) -> httpx.Response:
    async with httpx.AsyncClient(timeout=kwargs.pop("timeout", 5.0)) as client:  # type: ignore[arg-type]
        return await client.get(url, **kwargs)  # type: ignore[arg-type]


async def test_seed_format(services_server: ServicesServer) -> None:
    r = await get(svc(services_server, "cart").health_url)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["status"] == "healthy"
    assert body["version"] == "1.4.2"
    assert body["uptime"] > 0
    assert body["checks"] == {"database": "healthy", "cache": "healthy"}


async def test_other_health_formats(services_server: ServicesServer) -> None:
    actuator = await get(svc(services_server, "payments").health_url)
    assert actuator.json()["status"] == "UP"
    assert actuator.json()["components"]["db"]["status"] == "UP"
    assert "diskSpace" in actuator.json()["components"]

    ietf = await get(svc(services_server, "search").health_url)
    assert ietf.headers["content-type"] == "application/health+json"
    assert ietf.json()["status"] == "pass"
    assert ietf.json()["checks"]["db:responseTime"][0]["status"] == "pass"

    plain = await get(svc(services_server, "recommendations").health_url)
    assert plain.headers["content-type"].startswith("text/plain")
    assert plain.text == "ok"

    bare = await get(svc(services_server, "legacy").health_url)
    assert bare.status_code == 200 and bare.content == b""


async def test_failing_check_and_status_override(services_server: ServicesServer) -> None:
    cart = svc(services_server, "cart")
    await services_server.asteer("cart", checks={"database": "unhealthy"})
    r = await get(cart.health_url)
    assert r.status_code == 503
    assert r.json()["status"] == "unhealthy"
    assert r.json()["checks"] == {"database": "unhealthy", "cache": "healthy"}
    assert (await get(cart.ready_url)).status_code == 503
    assert (await get(cart.live_url)).status_code == 200

    await services_server.asteer("cart", reset=True, status="degraded")
    r = await get(cart.health_url)
    assert r.status_code == 200 and r.json()["status"] == "degraded"

    await services_server.asteer("search", checks={"database": "unhealthy"})
    ietf = await get(svc(services_server, "search").health_url)
    assert ietf.status_code == 503 and ietf.json()["status"] == "fail"
    await services_server.asteer("payments", status="unhealthy")
    assert (await get(svc(services_server, "payments").health_url)).json()["status"] == "DOWN"


async def test_down_on_shared_socket_drops_the_connection(services_server: ServicesServer) -> None:
    cart = svc(services_server, "cart")
    await services_server.asteer("cart", down=True)
    with pytest.raises(httpx.RemoteProtocolError):
        await get(cart.health_url)
    with pytest.raises(httpx.RemoteProtocolError):
        await get(cart.metrics_url)
    # Its neighbours on the same socket are unaffected.
    assert (await get(svc(services_server, "search").health_url)).status_code == 200
    await services_server.asteer("cart", down=False)
    assert (await get(cart.health_url)).status_code == 200


async def test_down_on_dedicated_port_refuses(services_server: ServicesServer) -> None:
    checkout = svc(services_server, "checkout")
    assert checkout.port is not None
    lo, hi = ALLOWED_PORTS["prod"]
    assert lo <= checkout.port <= hi
    async with httpx.AsyncClient(timeout=5.0) as client:
        assert (await client.get(checkout.health_url)).status_code == 200  # keep-alive open
        await services_server.asteer("checkout", down=True)
        with pytest.raises((httpx.ConnectError, httpx.RemoteProtocolError)):
            await client.get(checkout.health_url)  # the kept-alive connection is dropped
        with pytest.raises(httpx.ConnectError):
            await client.get(checkout.health_url)  # and new ones are refused
    await services_server.asteer("checkout", down=False)
    assert (await get(checkout.health_url)).status_code == 200
    # The path-routed URL of a dedicated service works too.
    assert (await get(checkout.path_url + "/health")).json()["status"] == "healthy"


async def test_hang_until_client_timeout(services_server: ServicesServer) -> None:
    cart = svc(services_server, "cart")
    await services_server.asteer("cart", hang=True)
    with pytest.raises(httpx.ReadTimeout):
        await get(cart.health_url, timeout=0.3)
    await services_server.asteer("cart", hang=False)
    assert (await get(cart.health_url)).status_code == 200


async def test_garbage(services_server: ServicesServer) -> None:
    await services_server.asteer("cart", garbage=True)
    r = await get(svc(services_server, "cart").health_url)
    assert r.status_code == 200
    assert len(r.content) > 0
    with pytest.raises(ValueError):
        json.loads(r.content)


async def test_wrong_content_type(services_server: ServicesServer) -> None:
    await services_server.asteer("cart", wrong_content_type=True)
    r = await get(svc(services_server, "cart").health_url)
    assert r.headers["content-type"].startswith("text/html")
    assert r.json()["status"] == "healthy"
    await services_server.asteer("recommendations", wrong_content_type=True)
    r = await get(svc(services_server, "recommendations").health_url)
    assert r.headers["content-type"].startswith("application/json")
    assert r.text == "ok"


async def test_version_change_restarts_uptime(services_server: ServicesServer) -> None:
    cart = svc(services_server, "cart")
    before = (await get(cart.health_url)).json()
    await services_server.asteer("cart", version="1.5.0")
    after = (await get(cart.health_url)).json()
    assert after["version"] == "1.5.0"
    assert after["uptime"] < before["uptime"]
    metrics = parse_metrics((await get(cart.metrics_url)).text)
    assert sample_value(metrics, "build_info", version="1.5.0") == 1
    await services_server.asteer("search", version="0.13.0")
    assert (await get(svc(services_server, "search").health_url)).json()["releaseId"] == "0.13.0"


async def test_huge_body(services_server: ServicesServer) -> None:
    await services_server.asteer("cart", huge_body=True)
    async with httpx.AsyncClient(timeout=10.0) as client:
        async with client.stream("GET", svc(services_server, "cart").health_url) as r:
            assert r.status_code == 200
            assert int(r.headers["content-length"]) == HUGE_BODY_BYTES
            first = b""
            async for chunk in r.aiter_bytes():
                first += chunk
                if len(first) >= 65536:
                    break  # a capped reader stops here; the server must cope
        r = await client.get(svc(services_server, "cart").health_url)
        assert len(r.content) == HUGE_BODY_BYTES
        assert r.json()["status"] == "healthy"


async def test_metrics_parse_and_counters_grow(services_server: ServicesServer) -> None:
    cart = svc(services_server, "cart")
    await services_server.asteer("cart", request_rate=2000.0)  # every series moves in 0.3 s
    first = parse_metrics((await get(cart.metrics_url)).text)
    await asyncio.sleep(0.3)
    second = parse_metrics((await get(cart.metrics_url)).text)
    assert set(first) == set(second)
    for (name, labels), value in first.items():
        assert ("service", "cart") in labels and ("env", "prod") in labels
        if name.endswith(("_total", "_count", "_bucket", "_sum")):
            assert second[(name, labels)] >= value, name
    assert sample_value(second, "http_requests_total") > sample_value(first, "http_requests_total")
    assert sample_value(first, "container_memory_limit_bytes") > sample_value(
        first, "process_resident_memory_bytes") > 0
    for name in ("process_cpu_seconds_total", "db_connection_errors_total",
                 "http_request_duration_seconds_sum"):
        assert any(n == name for n, _ in first), name
    # Histogram buckets are cumulative and end at the count.
    buckets = sorted(
        ((float(dict(lab)["le"]), v) for (n, lab), v in second.items()
         if n == "http_request_duration_seconds_bucket"), key=lambda x: x[0])
    values = [v for _, v in buckets]
    assert values == sorted(values)
    assert buckets[0][0] == 0.005 and buckets[-2][0] == 10.0
    assert values[-1] == sample_value(second, "http_request_duration_seconds_count")


async def test_error_rate_and_latency_drive_metrics(services_server: ServicesServer) -> None:
    cart = svc(services_server, "cart")
    await services_server.asteer("cart", error_rate=0.3, latency_ms=3000.0, jitter_ms=0.0,
                                 request_rate=50000.0)
    before = parse_metrics((await get(cart.metrics_url)).text)
    await asyncio.sleep(0.2)
    after = parse_metrics((await get(cart.metrics_url)).text)
    total = sample_value(after, "http_requests_total") - sample_value(before, "http_requests_total")
    errors = sum(sample_value(after, "http_requests_total", status=s)
                 - sample_value(before, "http_requests_total", status=s) for s in ("500", "503"))
    assert total > 1000
    assert 0.2 < errors / total < 0.4
    slow = (sample_value(after, "http_request_duration_seconds_count")
            - sample_value(after, "http_request_duration_seconds_bucket", le="1.0")) - (
        sample_value(before, "http_request_duration_seconds_count")
        - sample_value(before, "http_request_duration_seconds_bucket", le="1.0"))
    count = (sample_value(after, "http_request_duration_seconds_count")
             - sample_value(before, "http_request_duration_seconds_count"))
    assert slow / count > 0.5


async def test_metrics_all_has_every_service(services_server: ServicesServer) -> None:
    text = (await get(f"{services_server.base_url}/metrics/all")).text
    assert text.count("# TYPE http_requests_total counter") == 1
    samples = parse_metrics(text)
    for s in services_server.services:
        assert sample_value(samples, "http_requests_total", service=s.name, env=s.env) > 0
    await services_server.asteer("cart", down=True)
    samples = parse_metrics((await get(f"{services_server.base_url}/metrics/all")).text)
    assert sample_value(samples, "http_requests_total", service="cart") == 0


async def test_host_header_routing(services_server: ServicesServer) -> None:
    base = services_server.base_url
    r = await get(f"{base}/health", headers={"Host": "search.prod.svc"})
    assert r.json()["serviceId"] == "search.prod"
    r = await get(f"{base}/health", headers={"Host": "nope.prod.svc"})
    assert r.status_code == 404


async def test_http_steering_api(services_server: ServicesServer) -> None:
    base = services_server.base_url
    async with httpx.AsyncClient(timeout=5.0) as client:
        listing = (await client.get(f"{base}/_sim/services")).json()["services"]
        assert {(s["env"], s["name"]) for s in listing} == {
            (s.env, s.name) for s in services_server.services}
        r = await client.post(f"{base}/_sim/services/prod/cart",
                              json={"version": "9.9.9", "checks": {"cache": "unhealthy"}})
        assert r.status_code == 200
        assert r.json()["effective"]["status"] == "degraded"
        health = (await client.get(svc(services_server, "cart").health_url)).json()
        assert health["version"] == "9.9.9" and health["checks"]["cache"] == "unhealthy"
        r = await client.post(f"{base}/_sim/services/prod/checkout", json={"down": True})
        assert r.status_code == 200
        with pytest.raises(httpx.ConnectError):
            await client.get(svc(services_server, "checkout").health_url)
        assert (await client.post(f"{base}/_sim/services/prod/cart",
                                  json={"colour": "red"})).status_code == 400
        assert (await client.post(f"{base}/_sim/services/prod/cart",
                                  json={"error_rate": 7})).status_code == 400
        assert (await client.post(f"{base}/_sim/services/prod/nope",
                                  json={"down": True})).status_code == 404
        assert (await client.post(f"{base}/_sim/services/prod/cart",
                                  content=b"not json")).status_code == 400
        r = await client.post(f"{base}/_sim/services/prod/cart", json={"reset": True})
        assert r.json()["knobs"]["version"] is None


def test_bad_knobs_are_refused() -> None:
    server = ServicesServer([ServiceSpec("a", "dev", "t"), ServiceSpec("a", "prod", "t")])
    with pytest.raises(ValueError, match="unknown knob"):
        server.steer("a", "dev", latency=3)
    with pytest.raises(ValueError, match="error_rate"):
        server.steer("a", "dev", error_rate=1.5)
    with pytest.raises(KeyError, match="several envs"):
        server.steer("a", down=True)
    with pytest.raises(KeyError):
        server.steer("b", "dev", down=True)
    with pytest.raises(ValueError, match="twice"):
        ServicesServer([ServiceSpec("a", "dev", "t"), ServiceSpec("a", "dev", "u")])


async def test_two_hundred_services_share_one_socket() -> None:
    specs = [ServiceSpec(f"svc-{i:03d}", ("dev", "staging", "prod")[i % 3], "team")
             for i in range(200)]
    server = ServicesServer(specs, seed=3)
    await server.start()
    try:
        ports = {httpx.URL(s.health_url).port for s in server.services}
        assert ports == {server.port}
        limits = httpx.Limits(max_connections=20)
        async with httpx.AsyncClient(timeout=10.0, limits=limits) as client:
            responses = await asyncio.gather(*(client.get(s.health_url) for s in server.services))
        assert all(r.status_code == 200 for r in responses)
        assert {r.json()["status"] for r in responses} == {"healthy"}
        await server.asteer("svc-007", "staging", down=True)
        async with httpx.AsyncClient(timeout=10.0) as client:
            with pytest.raises(httpx.RemoteProtocolError):
                await client.get(server.services[7].health_url)
            assert (await client.get(server.services[8].health_url)).status_code == 200
    finally:
        await server.stop()


async def test_exposition_passes_promtool(services_server: ServicesServer) -> None:
    promtool = require_binary("promtool", "/usr/bin/promtool")
    for url in (f"{services_server.base_url}/metrics/all",
                svc(services_server, "checkout").metrics_url):
        text = (await get(url)).text
        result = await asyncio.to_thread(
            subprocess.run, [promtool, "check", "metrics"], input=text, capture_output=True,
            text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
