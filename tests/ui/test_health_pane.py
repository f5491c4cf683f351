"""The health pane, headless, fed by real sweeps of loopback servers: worst-first order, env
and text filters, the detail screen, and no repaint for an unchanged fleet."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import AsyncIterator
from typing import Any

import pytest
from rich.console import Console

from deploytui.config import ConsoleSettings, HealthSettings, Secret, ServiceSettings, Settings
from deploytui.sources.health import HealthSnapshot, HealthSource
from deploytui.ui.app import DeployApp, make_app
from deploytui.ui.panes.health import HealthPane, sparkline
from deploytui.ui.screens.health_detail import HealthDetailScreen
from tests.conftest import free_port
from tests.sources.test_health_server import HealthServer, answer

SEED = {"status": "healthy", "uptime": 99.0, "version": "1.4.2",
        "checks": {"database": "healthy", "cache": "healthy"}}


@pytest.fixture
async def server() -> AsyncIterator[HealthServer]:
    srv = await HealthServer().start()
    srv.route("/ok", answer(SEED))
    srv.route("/bad", answer({**SEED, "status": "unhealthy",
                              "checks": {"database": "unhealthy", "cache": "healthy"},
                              "config": {"db_password": "hunter2"}}, status=503))
    srv.route("/warn", answer({"status": "warn", "checks": {}}, ctype="application/health+json"))
    yield srv
    await srv.stop()


def fleet_settings(server: HealthServer) -> Settings:
    refused = f"http://127.0.0.1:{free_port()}/health"
    services = (
        ServiceSettings(name="alpha", env="prod", health_url=server.url("/ok")),
        ServiceSettings(name="beta", env="staging", health_url=server.url("/ok"), tags=("chk",)),
        ServiceSettings(name="cart", env="prod", health_url=server.url("/bad"), team="shop",
                        headers={"Authorization": Secret("Bearer top-secret")}),
        ServiceSettings(name="down", env="staging", health_url=refused),
        ServiceSettings(name="warny", env="prod", health_url=server.url("/warn")),
    )
    return Settings(services=services, health=HealthSettings(timeout=1.0),
                    console=ConsoleSettings(refresh_interval=5.0))


async def poll(settings: Settings) -> tuple[HealthSource, HealthSnapshot]:
    source = HealthSource(settings)
    snap = await source.sweep()
    return source, snap


def plain(widget: Any) -> str:
    """What a Static shows, as text."""
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(widget.content)
    return console.export_text()


def shown(pane: HealthPane) -> list[str]:
    return [row.key for row in pane.table.rows]


async def started(settings: Settings) -> DeployApp:
    return make_app(settings, autostart_sources=False)


async def test_rows_are_sorted_worst_first(server: HealthServer) -> None:
    settings = fleet_settings(server)
    source, snap = await poll(settings)
    app = await started(settings)
    async with app.run_test(size=(160, 40)) as pilot:
        app.publish("health", snap)
        await pilot.pause()
        pane = app.screen.query_one(HealthPane)
        assert shown(pane) == ["staging/down", "prod/cart", "prod/warny", "prod/alpha",
                               "staging/beta"]
        first = pane.table.rows[0]
        assert str(first.cells[0]) == "⊘ unreachable"      # glyph + word, not colour alone
        assert "refused" in str(first.cells[3])
        assert "1 unhealthy" in str(pane.border_title)
    await source.aclose()


async def test_e_cycles_envs_and_slash_filters_by_text(server: HealthServer) -> None:
    settings = fleet_settings(server)
    source, snap = await poll(settings)
    app = await started(settings)
    async with app.run_test(size=(160, 40)) as pilot:
        app.publish("health", snap)
        await pilot.pause()
        pane = app.screen.query_one(HealthPane)
        await pilot.press("e")
        assert pane.env_filter == "prod"
        assert shown(pane) == ["prod/cart", "prod/warny", "prod/alpha"]
        await pilot.press("e")
        assert shown(pane) == ["staging/down", "staging/beta"]
        await pilot.press("e")
        assert pane.env_filter is None and len(shown(pane)) == 5
        await pilot.press("slash", "c", "h", "k")
        assert pane.text_filter == "chk"
        assert shown(pane) == ["staging/beta"]            # matched by its tag
        await pilot.press("enter")                          # back to the table, filter kept
        assert shown(pane) == ["staging/beta"]
        await pilot.press("escape")
        assert pane.text_filter == "" and len(shown(pane)) == 5
        await pilot.press("slash", "u", "n", "h", "e", "a", "l")
        assert shown(pane) == ["prod/cart"]                # matched by its state
    await source.aclose()


async def test_enter_opens_the_detail_screen_with_checks_and_masked_payload(
        server: HealthServer) -> None:
    settings = fleet_settings(server)
    source, snap = await poll(settings)
    app = await started(settings)
    async with app.run_test(size=(160, 50)) as pilot:
        app.publish("health", snap)
        await pilot.pause()
        pane = app.screen.query_one(HealthPane)
        await pilot.press("down")                           # second row: prod/cart
        assert pane.selected_target().service == "prod/cart"
        assert plain(pane.query_one("#health-spark")).startswith("cart ")
        await pilot.press("enter")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, HealthDetailScreen)
        assert screen.report.key == "prod/cart"
        checks = plain(screen.query_one("#health-detail-checks"))
        payload = plain(screen.query_one("#health-detail-payload"))
        changes = plain(screen.query_one("#health-detail-changes"))
        summary = plain(screen.query_one("#health-detail-summary"))
        assert "✖ unhealthy" in summary and "shop" in summary
        assert "database" in checks and "unhealthy" in checks and "critical" in checks
        assert '"db_password": "***"' in payload and "hunter2" not in payload
        assert "top-secret" not in payload
        assert "pending -> unhealthy" in changes
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, HealthDetailScreen)
    await source.aclose()


async def test_an_unchanged_fleet_repaints_nothing(server: HealthServer) -> None:
    settings = fleet_settings(server)
    source, snap = await poll(settings)
    app = await started(settings)
    async with app.run_test(size=(160, 40)) as pilot:
        app.publish("health", snap)
        await pilot.pause()
        pane = app.screen.query_one(HealthPane)
        repaints, builds = pane.table.repaints, pane.row_builds
        app.publish("health", source.snapshot())            # equal snapshot, taken later
        await pilot.pause()
        # What moves every poll (last latency, uptime, history) is not in the table.
        moved = dataclasses.replace(snap, reports=tuple(
            dataclasses.replace(r, latency_ms=(r.latency_ms or 0) + 1.5, uptime_s=1e6,
                                latency_history=(*r.latency_history, 9.0))
            for r in snap.reports))
        assert moved != snap
        app.publish("health", moved)
        await pilot.pause()
        assert pane.table.repaints == repaints
        assert pane.row_builds == builds
        server.routes["/warn"] = answer(SEED)                # one service recovers
        app.publish("health", await source.sweep())
        await pilot.pause()
        assert pane.table.repaints > repaints
        assert "prod/warny" not in shown(pane)[:3]
    await source.aclose()


def test_sparkline_scales_and_marks_missing_answers() -> None:
    assert sparkline((1.0, 8.0, None, 4.0)) == "▂█×▅"   # scaled from 0 to the largest
    assert sparkline((None, None)) == "××"
    assert sparkline(()) == ""


async def test_the_console_polls_the_simulated_fleet() -> None:
    from deploytui.config import load_config
    from deploytui.demo.fleet import Fleet
    from deploytui.model import MemoryJournal
    from deploytui.runtime import build_runtime

    with Fleet(services=8, kubernetes=False) as fleet:
        settings = load_config(fleet.config_path)
        settings = dataclasses.replace(settings, console=ConsoleSettings(refresh_interval=0.3))
        runtime = build_runtime(settings, journal=MemoryJournal(), with_sources=False)
        from deploytui.sources.health import make_source

        source = make_source(runtime)
        assert source is not None
        runtime.sources["health"] = source
        app = make_app(settings, runtime=runtime)
        async with app.run_test(size=(160, 40)) as pilot:
            pane = app.screen.query_one(HealthPane)
            for _ in range(100):
                await pilot.pause(0.05)
                if pane.table.row_count == 8:
                    break
            assert pane.table.row_count == 8
            victim = fleet.services[0]
            fleet.steer(victim.name, victim.env, down=True)
            key = f"{victim.env}/{victim.name}"
            for _ in range(100):
                await pilot.pause(0.05)
                if pane.table.rows and pane.table.rows[0].key == key:
                    break
            assert pane.table.rows[0].key == key             # the down service went to the top
            assert str(pane.table.rows[0].cells[0]) == "⊘ unreachable"
            events = [e for e in runtime.journal.events if e.kind == "health_changed"]
            assert any(e.service == key and e.details["to"] == "unreachable" for e in events)


async def test_many_new_rows_are_built_in_chunks(server: HealthServer,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from deploytui.ui.panes import health as health_pane

    monkeypatch.setattr(health_pane, "BUILD_CHUNK", 2)     # 5 rows > 2: the chunked path
    settings = fleet_settings(server)
    source, snap = await poll(settings)
    app = await started(settings)
    async with app.run_test(size=(160, 40)) as pilot:
        app.publish("health", snap)
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        pane = app.screen.query_one(HealthPane)
        assert shown(pane)[0] == "staging/down" and len(shown(pane)) == 5
        assert pane.row_builds == 5
    await source.aclose()
