"""Health source against real HTTP servers on 127.0.0.1: formats, failure kinds, windows, drift,
timeline events, stale marking, the run loop and ``deploytui snapshot``'s section."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from deploytui.config import (
    ConsoleSettings,
    HealthSettings,
    Secret,
    ServiceSettings,
    Settings,
    load_config,
)
from deploytui.model import MemoryJournal
from deploytui.runtime import build_runtime
from deploytui.sources.health import (
    HealthSnapshot,
    HealthSource,
    LatencyWindow,
    classify_error,
    make_source,
    snapshot_section,
)
from tests.conftest import free_port
from tests.sources.test_health_server import HealthServer, answer, drop, hang, huge


@pytest.fixture
async def server() -> AsyncIterator[HealthServer]:
    srv = await HealthServer().start()
    yield srv
    await srv.stop()


class FakeClock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def svc(name: str, url: str, **kw: Any) -> ServiceSettings:
    return ServiceSettings(name=name, health_url=url, **kw)


def settings(*services: ServiceSettings, interval: float = 5.0, **health: Any) -> Settings:
    h = {"timeout": 2.0, **health}
    return Settings(services=services, health=HealthSettings(**h),
                    console=ConsoleSettings(refresh_interval=interval))


async def sweep(st: Settings, **kw: Any) -> HealthSnapshot:
    source = HealthSource(st, **kw)
    try:
        return await source.sweep()
    finally:
        await source.aclose()


SEED_OK = {"status": "healthy", "uptime": 3600.5, "version": "1.4.2",
           "checks": {"database": "healthy", "cache": "healthy"}}
ACTUATOR_DOWN = {"status": "DOWN", "components": {
    "db": {"status": "DOWN", "components": {
        "primary": {"status": "DOWN", "details": {"error": "connection reset"}},
        "replica": {"status": "UP"}}},
    "diskSpace": {"status": "UP", "details": {"free": 123}},
}}
IETF_WARN = {"status": "warn", "version": "1", "releaseId": "2.0.1", "checks": {
    "db:responseTime": [{"componentId": "db1", "status": "pass", "observedValue": 12,
                         "observedUnit": "ms"}],
    "disk:utilization": [{"componentId": "d1", "status": "warn", "observedValue": 91,
                          "observedUnit": "percent"}],
    "uptime": [{"status": "pass", "observedValue": 500, "observedUnit": "s"}]}}


# --- formats ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("handler", "state", "fmt", "reason_part"), [
    (answer(SEED_OK), "healthy", "seed", ""),
    (answer({**SEED_OK, "checks": {"database": "healthy", "cache": "unhealthy"}}),
     "unhealthy", "seed", "cache"),                      # no critical_checks: all are critical
    (answer({**SEED_OK, "status": "unhealthy", "checks": {"database": "unhealthy"}}, status=503),
     "unhealthy", "seed", "database"),
    (answer(ACTUATOR_DOWN, status=503, ctype="application/vnd.spring-boot.actuator.v3+json"),
     "unhealthy", "actuator", "db/primary"),
    (answer({"status": "UP", "components": {"db": {"status": "UP"}}}), "healthy", "actuator", ""),
    (answer({"status": "OUT_OF_SERVICE"}, status=503), "unhealthy", "actuator", "OUT_OF_SERVICE"),
    (answer({"status": "UNKNOWN", "components": {"x": {"status": "UNKNOWN"}}}),
     "degraded", "actuator", "x"),
    (answer(IETF_WARN, ctype="application/health+json"), "degraded", "ietf", "warn"),
    (answer({"status": "fail", "checks": {"db:connections": [{"status": "fail"}]}},
            status=503, ctype="application/health+json"), "unhealthy", "ietf", "db:connections"),
    (answer("ok", ctype="text/plain"), "healthy", "plain", ""),
    (answer("DEGRADED\n", ctype="text/plain"), "degraded", "plain", "DEGRADED"),
    (answer(b"", status=204, ctype=""), "healthy", "status", ""),
    (answer(b"", status=503, ctype=""), "unhealthy", "status", "HTTP 503"),
    (answer("<html>Bad gateway</html>", status=502, ctype="text/html"), "unhealthy", "status",
     "HTTP 502"),
])
async def test_each_format_maps_to_its_state(server: HealthServer, handler: Any, state: str,
                                             fmt: str, reason_part: str) -> None:
    url = server.route("/health", handler)
    snap = await sweep(settings(svc("api", url)))
    (report,) = snap.reports
    assert (report.state, report.format) == (state, fmt), report.reason
    assert reason_part in report.reason


async def test_seed_fields_are_read(server: HealthServer) -> None:
    snap = await sweep(settings(svc("api", server.route("/h", answer(SEED_OK)))))
    r = snap.reports[0]
    assert (r.version, r.uptime_s, r.status_code) == ("1.4.2", 3600.5, 200)
    assert [(c.name, c.status) for c in r.checks] == [("database", "pass"), ("cache", "pass")]
    assert r.latency_ms is not None and r.latency_ms > 0
    assert r.samples == 1 and r.availability == 100.0


async def test_ietf_reads_release_id_uptime_and_check_arrays(server: HealthServer) -> None:
    url = server.route("/h", answer(IETF_WARN, ctype="application/health+json"))
    r = (await sweep(settings(svc("api", url)))).reports[0]
    assert r.version == "2.0.1" and r.uptime_s == 500
    assert {c.name: c.status for c in r.checks}["disk:utilization"] == "warn"


async def test_critical_checks_decide_unhealthy_versus_degraded(server: HealthServer) -> None:
    body = {"status": "DOWN", "components": {"db": {"status": "UP"}, "redis": {"status": "DOWN"}}}
    url = server.route("/h", answer(body, status=503))
    only_db = svc("api", url, critical_checks=("database",))   # "database" matches "db"
    all_critical = svc("web", url)
    snap = await sweep(settings(only_db, all_critical))
    by = {r.name: r for r in snap.reports}
    assert by["api"].state == "degraded" and "redis" in by["api"].reason
    assert by["web"].state == "unhealthy"
    assert [c.critical for c in by["api"].checks] == [True, False]


async def test_live_ready_pair_becomes_checks(server: HealthServer) -> None:
    health = server.route("/health", answer("ok", ctype="text/plain"))
    live = server.route("/health/live", answer({"status": "UP"}))
    ready = server.route("/health/ready", answer({"status": "OUT_OF_SERVICE"}, status=503))
    r = (await sweep(settings(svc("api", health, live_url=live, ready_url=ready)))).reports[0]
    assert r.state == "unhealthy" and "ready" in r.reason
    assert {c.name: c.status for c in r.checks} == {"live": "pass", "ready": "fail"}
    server.routes["/health/ready"] = answer({"status": "UP"})
    r = (await sweep(settings(svc("api", health, live_url=live, ready_url=ready)))).reports[0]
    assert r.state == "healthy"


# --- failure kinds ---------------------------------------------------------------------------

async def test_connection_refused_is_unreachable_refused() -> None:
    url = f"http://127.0.0.1:{free_port()}/health"
    for transport in ("aiohttp", "httpx"):
        r = (await sweep(settings(svc("api", url)), transport=transport)).reports[0]
        assert (r.state, r.failure) == ("unreachable", "refused"), transport
        assert "refused" in r.reason


async def test_dns_failure_is_unreachable_dns() -> None:
    for transport in ("aiohttp", "httpx"):
        st = settings(svc("api", "http://no-such-service.invalid/health"))
        r = (await sweep(st, transport=transport)).reports[0]
        assert (r.state, r.failure) == ("unreachable", "dns"), transport


async def test_tls_failure_is_unreachable_tls(server: HealthServer) -> None:
    url = server.route("/h", answer(SEED_OK)).replace("http://", "https://")
    for transport in ("aiohttp", "httpx"):
        r = (await sweep(settings(svc("api", url)), transport=transport)).reports[0]
        assert (r.state, r.failure) == ("unreachable", "tls"), transport


async def test_hanging_endpoint_times_out(server: HealthServer) -> None:
    url = server.route("/h", hang())
    for transport in ("aiohttp", "httpx"):
        r = (await sweep(settings(svc("api", url), timeout=0.3), transport=transport)).reports[0]
        assert (r.state, r.failure) == ("unreachable", "timeout"), transport
        assert "0.3 s" in r.reason


async def test_a_dropped_connection_is_unreachable_disconnected(server: HealthServer) -> None:
    before = server.route("/before", drop())
    during = server.route("/during", drop(after_headers=True))
    for transport in ("aiohttp", "httpx"):
        snap = await sweep(settings(svc("before", before), svc("during", during)),
                           transport=transport)
        by = {r.name: r for r in snap.reports}
        for name in ("before", "during"):
            assert (by[name].state, by[name].failure) == ("unreachable", "disconnected"), \
                (transport, name, by[name].reason)


async def test_cookies_an_endpoint_sets_are_never_sent_back(server: HealthServer) -> None:
    from aiohttp import web

    async def sets_cookie(request: web.Request) -> web.StreamResponse:
        resp = web.json_response({"status": "UP"})
        resp.set_cookie("session", "abc123")
        return resp

    async def reports_cookie(request: web.Request) -> web.StreamResponse:
        sent = request.headers.get("Cookie", "")
        return web.json_response({"status": "DOWN" if sent else "UP", "cookie": sent})

    # By name, not by IP: aiohttp's default cookie jar ignores cookies from IP addresses.
    url = server.route("/h", sets_cookie).replace("127.0.0.1", "localhost")
    probe = server.route("/probe", reports_cookie).replace("127.0.0.1", "localhost")
    for transport in ("aiohttp", "httpx"):
        source = HealthSource(settings(svc("api", url, ready_url=probe)), transport=transport)
        try:
            await source.sweep()
            r = (await source.sweep()).reports[0]
        finally:
            await source.aclose()
        assert r.state == "healthy", (transport, r.reason)


async def test_garbage_is_unparseable_with_its_first_bytes(server: HealthServer) -> None:
    url = server.route("/h", answer(b"\x00\xff\xfe garbage \x01" * 20))
    r = (await sweep(settings(svc("api", url)))).reports[0]
    assert (r.state, r.format) == ("unhealthy", "unparseable")
    assert r.excerpt.startswith("\\x00\\xff") and len(r.excerpt) < 200


async def test_wrong_content_type_is_read_from_the_body(server: HealthServer) -> None:
    json_as_html = server.route("/a", answer(SEED_OK, ctype="text/html"))
    text_as_json = server.route("/b", answer("ok", ctype="application/json"))
    snap = await sweep(settings(svc("a", json_as_html), svc("b", text_as_json)))
    by = {r.name: r for r in snap.reports}
    assert (by["a"].state, by["a"].format) == ("healthy", "seed")
    assert "text/html" in by["a"].note
    assert (by["b"].state, by["b"].format) == ("healthy", "plain")


async def test_a_10_mb_body_is_cut_at_the_cap(server: HealthServer) -> None:
    url = server.route("/h", huge(10 * 1024 * 1024))
    for transport in ("aiohttp", "httpx"):
        source = HealthSource(settings(svc("api", url), max_body_bytes=4096), transport=transport)
        answer_ = await source.fetch(url)
        snap = await source.sweep()
        await source.aclose()
        assert answer_.truncated and len(answer_.body) == 4096, transport
        r = snap.reports[0]
        assert r.truncated and len(r.raw) == 4096
        # The status is still read from the first bytes; the cut itself degrades the service.
        assert (r.state, r.version) == ("degraded", "9.9.9")
        assert "cut" in r.reason


def test_classify_error_walks_the_cause_chain() -> None:
    import httpx

    outer = httpx.ConnectTimeout("Cannot connect")
    outer.__cause__ = ConnectionRefusedError(111, "refused")
    assert classify_error(outer)[0] == "refused"
    tls = httpx.ConnectError("x")
    tls.__cause__ = ssl.SSLError(1, "WRONG_VERSION_NUMBER")
    assert classify_error(tls)[0] == "tls"
    assert classify_error(httpx.ReadTimeout("slow"))[0] == "timeout"
    assert classify_error(httpx.RemoteProtocolError("Server disconnected"))[0] == "disconnected"


# --- isolation and robustness ----------------------------------------------------------------

async def test_a_hanging_endpoint_does_not_delay_the_others(server: HealthServer) -> None:
    services = [svc("stuck", server.route("/stuck", hang()))]
    services += [svc(f"fast{i}", server.route(f"/fast{i}", answer(SEED_OK))) for i in range(8)]
    order: list[str] = []
    loop_time = asyncio.get_running_loop().time
    source = HealthSource(settings(*services, timeout=1.0, concurrency=2), clock=loop_time)
    original = source._record

    def record(track: Any, health: Any, probes: Any) -> None:
        order.append(track.svc.name)
        original(track, health, probes)

    source._record = record  # type: ignore[method-assign]
    snap = await source.sweep()
    await source.aclose()
    # The stuck endpoint was asked first and holds one of the two slots until its timeout;
    # every fast service went through the other slot and finished before it.
    assert order[-1] == "stuck" and sorted(order[:-1]) == sorted(f"fast{i}" for i in range(8))
    by = {r.name: r for r in snap.reports}
    assert by["stuck"].failure == "timeout"
    assert all(by[f"fast{i}"].state == "healthy" for i in range(8))
    stuck_at = by["stuck"].polled_at
    assert stuck_at is not None
    assert all((by[f"fast{i}"].polled_at or 0) < stuck_at for i in range(8))


async def test_garbage_never_stops_the_run_loop(server: HealthServer) -> None:
    bodies = [b"\x00\xff", b"{", b"[1,2", b'{"status": {"nested": []}}', b"\xef\xbb\xbf{}",
              b'{"checks": 5}', b'{"status":"UP","components":[1,2]}', b"null", b"9" * 5000]
    readable = {6: "healthy"}  # top-level "UP" is still read; odd components are skipped
    services = [svc(f"g{i}", server.route(f"/g{i}", answer(b))) for i, b in enumerate(bodies)]
    services.append(svc("ok", server.route("/ok", answer(SEED_OK))))
    source = HealthSource(settings(*services, interval=0.2))
    got: list[HealthSnapshot] = []
    task = asyncio.create_task(source.run(got.append))
    while len(got) < 3:
        await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    last = got[-1]
    assert not last.error and len(last.reports) == len(services)
    assert {r.name: r.state for r in last.reports}["ok"] == "healthy"
    states = {r.name: r.state for r in last.reports}
    for i in range(len(bodies)):
        assert states[f"g{i}"] == readable.get(i, "unhealthy"), bodies[i]


async def test_sweeps_never_overlap(server: HealthServer) -> None:
    # Each poll takes longer than the interval: the next sweep waits for the last one to end.
    url = server.route("/slow", answer(SEED_OK, delay=0.4))
    source = HealthSource(settings(svc("slow", url), interval=0.2, timeout=2.0))
    got: list[HealthSnapshot] = []
    task = asyncio.create_task(source.run(got.append))
    while sum(1 for s in got if s.complete) < 3:
        await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert server.max_in_flight["/slow"] == 1
    assert any(not s.complete for s in got)  # progress snapshots during the long sweep


# --- windows ---------------------------------------------------------------------------------

def test_window_p95_is_nearest_rank_and_expires() -> None:
    w = LatencyWindow(100.0)
    for i in range(1, 101):                 # latencies 1..100 ms at t = 1..100
        w.add(float(i), float(i), up=i % 10 != 0)
    assert w.p95 == 95.0                    # ceil(0.95 * 100) = 95th smallest
    assert w.availability == 90.0
    w.add(150.0, 1000.0, up=True)           # drops t <= 50
    assert len(w) == 51
    assert w.p95 == 99.0                    # 51 values: 51..100 and 1000 -> 49th smallest
    assert w.availability == pytest.approx(100 * 46 / 51)
    w.add(151.0, None, up=False)            # a failed poll counts for availability only
    assert len(w) == 51 and w.p95 == 99.0
    w.expire(1000.0)
    assert len(w) == 0 and w.p95 is None and w.availability is None


def test_window_stays_compact_over_many_polls() -> None:
    w = LatencyWindow(60.0)
    for i in range(10_000):
        w.add(i * 5.0, 5.0 + (i % 7), up=True)
    assert len(w) == 12 and len(w._t) < 600


async def test_availability_and_p95_follow_the_window(server: HealthServer) -> None:
    url = server.route("/h", answer(SEED_OK))
    clock = FakeClock()
    st = settings(svc("api", url), window_seconds=60.0, availability_target=99.9,
                  availability_alert=99.5)
    source = HealthSource(st, clock=clock)
    for _ in range(3):
        await source.sweep()
        clock.advance(10)
    server.routes["/h"] = answer({**SEED_OK, "status": "unhealthy"}, status=503)
    r = (await source.sweep()).reports[0]
    assert r.samples == 4 and r.availability == 75.0 and r.availability_level == "alert"
    server.routes["/h"] = answer(SEED_OK)
    clock.advance(55)                       # the first three polls (t=0,10,20) leave the window
    r = (await source.sweep()).reports[0]
    await source.aclose()
    assert r.samples == 2 and r.availability == 50.0
    assert r.p95_ms is not None and r.p95_ms >= min(x for x in r.latency_history if x)


# --- drift, events, stale --------------------------------------------------------------------

async def test_version_drift_against_majority_and_expected(server: HealthServer) -> None:
    def ver(v: str) -> Any:
        return answer({**SEED_OK, "version": v})

    services = [svc("a", server.route("/a", ver("1.4.2"))), svc("b", server.route("/b", ver("1.4.2"))),
                svc("c", server.route("/c", ver("1.5.0"))),
                svc("d", server.route("/d", ver("1.4.2")), expected_version="1.4.3"),
                svc("e", server.route("/e", ver("1.5.0")), env="staging")]
    by = {r.name: r for r in (await sweep(settings(*services))).reports}
    assert by["c"].drift == "majority 1.4.2"
    assert by["d"].drift == "expected 1.4.3"
    assert by["a"].drift == by["b"].drift == by["e"].drift == ""


async def test_state_changes_become_timeline_events(server: HealthServer) -> None:
    url = server.route("/h", answer(SEED_OK))
    journal = MemoryJournal()
    source = HealthSource(settings(svc("checkout", url, env="prod")), journal=journal)
    await source.sweep()
    await source.sweep()
    assert journal.events == []             # first healthy sighting and steady polls: nothing
    server.routes["/h"] = answer({**SEED_OK, "checks": {"database": "unhealthy"}}, status=503)
    await source.sweep()
    await source.sweep()
    server.routes["/h"] = answer(SEED_OK)
    snap = await source.sweep()
    await source.aclose()
    kinds = [(e.kind, e.details["from"], e.details["to"]) for e in journal.events]
    assert kinds == [("health_changed", "healthy", "unhealthy"),
                     ("health_changed", "unhealthy", "healthy")]
    first = journal.events[0]
    assert first.service == "prod/checkout" and first.env == "prod"
    assert first.severity == "critical" and "database" in first.summary
    changes = snap.reports[0].recent_changes
    assert [(c.from_state, c.to_state) for c in changes][-2:] == [("healthy", "unhealthy"),
                                                                  ("unhealthy", "healthy")]


async def test_no_poll_for_n_intervals_is_stale(server: HealthServer) -> None:
    clock = FakeClock()
    journal = MemoryJournal()
    source = HealthSource(settings(svc("api", server.route("/h", answer(SEED_OK))), interval=5.0),
                          clock=clock, journal=journal)
    await source.sweep()
    await source.aclose()
    clock.advance(14)                       # 3 intervals = 15 s: not yet
    assert source.snapshot().reports[0].state == "healthy"
    clock.advance(2)
    r = source.snapshot().reports[0]
    assert r.state == "stale" and "16 s" in r.reason
    assert journal.events[-1].details["to"] == "stale"


async def test_equal_snapshots_compare_equal(server: HealthServer) -> None:
    clock = FakeClock()
    source = HealthSource(settings(svc("api", server.route("/h", answer(SEED_OK)))), clock=clock)
    await source.sweep()
    await source.aclose()
    first = source.snapshot()
    clock.advance(1)
    second = source.snapshot()
    assert first == second and first.taken_at != second.taken_at


async def test_secret_headers_are_sent_and_never_shown(server: HealthServer) -> None:
    body = {**SEED_OK, "config": {"db_password": "hunter2", "apiKey": "k-123"}}
    url = server.route("/h", answer(body))
    service = svc("api", url, headers={"Authorization": Secret("Bearer s3cr3t-token")})
    snap = await sweep(settings(service))
    assert server.requests[-1][1]["Authorization"] == "Bearer s3cr3t-token"
    assert "s3cr3t" not in repr(snap) and "s3cr3t" not in repr(service)
    from deploytui.sources.health_formats import pretty_payload

    shown = pretty_payload(snap.reports[0].raw)
    assert "hunter2" not in shown and "k-123" not in shown and '"db_password": "***"' in shown


# --- wiring ----------------------------------------------------------------------------------

async def test_snapshot_section_rows_worst_first(server: HealthServer) -> None:
    ok = svc("ok", server.route("/ok", answer(SEED_OK)))
    bad = svc("bad", f"http://127.0.0.1:{free_port()}/health")
    section = await snapshot_section(settings(ok, bad))
    assert section.configured and not section.ok and section.error is None
    assert [row["service"] for row in section.rows] == ["bad", "ok"]
    assert section.rows[0]["state"] == "unreachable" and "refused" in section.rows[0]["reason"]
    assert set(section.columns) >= {"service", "env", "state", "reason", "latency_ms", "p95_ms",
                                    "availability", "version", "drift"}
    assert section.summary["unreachable"] == 1 and section.summary["healthy"] == 1
    doc = section.to_json()
    assert doc["rows"][1]["version"] == "1.4.2"
    only_ok = await snapshot_section(settings(ok))
    assert only_ok.ok
    empty = await snapshot_section(Settings())
    assert not empty.configured


def test_make_source_only_with_services() -> None:
    assert make_source(build_runtime(Settings(), with_sources=False)) is None
    rt = build_runtime(settings(svc("a", "http://127.0.0.1:1/h")), journal=MemoryJournal(),
                       with_sources=True)
    assert isinstance(rt.sources["health"], HealthSource)
    assert rt.sources["health"].journal is rt.journal


# --- against the simulated fleet -------------------------------------------------------------

@pytest.fixture
def fleet() -> Any:
    from deploytui.demo.fleet import Fleet

    with Fleet(services=10, kubernetes=False) as f:
        yield f


async def test_the_simulated_fleet_reads_healthy_then_follows_its_knobs(fleet: Any) -> None:
    st = load_config(fleet.config_path)
    source = HealthSource(st)
    snap = await source.sweep()
    formats = {r.format for r in snap.reports}
    assert all(r.state == "healthy" for r in snap.reports), [(r.key, r.reason) for r in snap.reports]
    assert len(formats) >= 3
    names: Callable[[int], Any] = lambda i: fleet.services[i]  # noqa: E731
    fleet.steer(names(0).name, names(0).env, down=True)
    fleet.steer(names(1).name, names(1).env, garbage=True)
    fleet.steer(names(2).name, names(2).env, checks={"database": "unhealthy"})
    fleet.steer(names(3).name, names(3).env, version="9.0.0")
    fleet.steer(names(4).name, names(4).env, huge_body=True)
    snap = await source.sweep()
    await source.aclose()
    by = snap.by_key()
    key = lambda i: f"{names(i).env}/{names(i).name}"  # noqa: E731
    assert by[key(0)].state == "unreachable" and by[key(0)].failure in ("refused", "disconnected")
    assert by[key(1)].state == "unhealthy"
    assert by[key(2)].state == "unhealthy"
    assert by[key(3)].drift.startswith("expected")
    assert by[key(4)].truncated


async def test_deploytui_snapshot_shows_the_health_rows(server: HealthServer) -> None:
    import json

    from deploytui import snapshot as snapshot_cmd

    st = settings(svc("ok", server.route("/ok", answer(SEED_OK))),
                  svc("bad", server.route("/bad", answer({"status": "DOWN"}, status=503))))
    sections = await snapshot_cmd.collect(st)
    doc = json.loads(snapshot_cmd.render_json(sections, st))
    health = doc["health"]
    assert health["configured"] and not health["ok"]
    assert [(r["service"], r["state"]) for r in health["rows"]] == [("bad", "unhealthy"),
                                                                   ("ok", "healthy")]
    assert snapshot_cmd.exit_code({"health": sections["health"]}) == 1


async def test_a_compressed_answer_is_decoded(server: HealthServer) -> None:
    import gzip
    import json

    from aiohttp import web

    async def gzipped(request: web.Request) -> web.StreamResponse:
        body = gzip.compress(json.dumps(SEED_OK).encode())
        return web.Response(body=body, headers={"Content-Type": "application/json",
                                                "Content-Encoding": "gzip"})

    url = server.route("/gz", gzipped)
    for transport in ("aiohttp", "httpx"):
        r = (await sweep(settings(svc("api", url)), transport=transport)).reports[0]
        assert (r.state, r.version) == ("healthy", "1.4.2"), transport
    assert server.requests[-1][1]["Accept-Encoding"] == "identity"
