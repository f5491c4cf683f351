"""The Alerts pane in the console (App.run_test + Pilot), fed by a real Alertmanager."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from deploytui.config import AlertmanagerSettings, ConsoleSettings, Settings
from deploytui.model import MemoryJournal
from deploytui.runtime import Runtime, build_runtime
from deploytui.sources import alerts as alerts_mod
from deploytui.sources.alertmanager import format_ts
from deploytui.ui.app import DeployApp
from deploytui.ui.console_screen import ConsoleScreen
from deploytui.ui.panes.alerts import AlertsPane
from deploytui.ui.screens.alert_detail import AlertDetailScreen
from tests.promstack import PromStack, alertmanager_api

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stack() -> Iterator[PromStack]:
    with PromStack(with_prometheus=False) as s:
        now = time.time()
        alertmanager_api(s.alertmanager_url, "/alerts", method="POST", body=[
            {"labels": {"alertname": "CheckoutDown", "service": "checkout", "env": "prod",
                        "severity": "critical", "pod": f"checkout-{i}"},
             "annotations": {"summary": "checkout answers 503", "runbook": "https://rb/co"},
             "startsAt": format_ts(now - 1200), "endsAt": format_ts(now + 3600),
             "generatorURL": "http://p/graph?g0.expr=up%7Bservice%3D%22checkout%22%7D+%3D%3D+0"}
            for i in range(2)] + [
            {"labels": {"alertname": "SlowSearch", "service": "search", "env": "staging",
                        "severity": "warning"},
             "annotations": {"summary": "search p95 above 1 s"},
             "startsAt": format_ts(now - 60), "endsAt": format_ts(now + 3600)}])
        yield s


def runtime_for(url: str, *, read_only: bool = False) -> Runtime:
    settings = Settings(console=ConsoleSettings(refresh_interval=0.5, operator="uma@ui",
                                                read_only=read_only),
                        alertmanager=AlertmanagerSettings(url=url, ack_comment="on it",
                                                          ack_minutes=20))
    rt = build_runtime(settings, journal=MemoryJournal(), with_sources=False)
    source = alerts_mod.make_source(rt)
    assert source is not None
    rt.sources["alerts"] = source
    return rt


async def until(pilot: Any, check: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        await pilot.pause(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def pane_of(app: DeployApp) -> AlertsPane:
    screen = app.get_screen_console()
    assert isinstance(screen, ConsoleScreen)
    pane = screen.panes["alerts"]
    assert isinstance(pane, AlertsPane)
    return pane


async def test_feed_rows_counts_filter_detail_and_ack(stack: PromStack) -> None:
    rt = runtime_for(stack.alertmanager_url)
    app = DeployApp(rt)
    async with app.run_test(size=(200, 50)) as pilot:
        pane = pane_of(app)
        await until(pilot, lambda: pane.table.row_count == 2, "two rows in the feed")
        assert "1 critical · 1 warning" in str(pane.border_title)
        rows = pane.table.rows
        # newest first; the two checkout pods are one row
        assert [str(r.cells[2]) for r in rows] == ["SlowSearch", "CheckoutDown ×2"]
        assert str(rows[1].cells[0]) == "✖" and str(rows[1].cells[1]) == "critical"
        # 20 min old, 15 min response time: L2, L3 at 30 min
        assert re.fullmatch(r"L2 P1 →L3 \d+m\d\ds", str(rows[1].cells[7]))
        assert str(rows[0].cells[7]) == ""                 # warnings do not escalate

        console = app.get_screen_console()
        assert console is not None
        console.focus_pane("alerts")
        await pilot.pause()
        assert console.active_pane_id() == "alerts"
        await pilot.press("down")
        target = app.get_screen_console().selected_target()  # type: ignore[union-attr]
        assert target.service == "prod/checkout" and target.env == "prod"
        assert target.alert_fingerprint == rows[1].key

        await pilot.press("f")  # -> critical only
        assert [str(r.cells[2]) for r in pane.table.rows] == ["CheckoutDown ×2"]
        assert "filter critical: 1 shown" in str(pane.border_title)
        for _ in range(len(alerts_mod.filter_presets(pane.snapshot.alerts)) - 1):
            await pilot.press("f")
        assert pane.table.row_count == 2  # back to all
        assert pane.table.move_to_key(rows[1].key)

        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, AlertDetailScreen), "the detail")
        body = str(app.screen.query_one("#alert-detail-body").render())
        assert "pod=checkout-" in body and 'up{service="checkout"} == 0' in body
        assert "runbook: https://rb/co" in body and "escalation:  L2" in body
        await pilot.press("escape")

        # a: prompt for the comment and the duration (defaults from the config), confirm
        await pilot.press("a")
        await until(pilot, lambda: type(app.screen).__name__ == "PromptScreen", "the prompt")
        await pilot.press("enter")
        await until(pilot, lambda: getattr(app.screen, "prompt", "") == "For how long?",
                    "the duration prompt")
        await pilot.press("enter")
        await until(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen", "the confirm")
        await pilot.press("y")
        row = await until(
            pilot, lambda: next((r for r in pane.table.rows if "ack uma@ui" in str(r.cells[6])),
                                None), "the row to show the acknowledgement", timeout=30)
        assert row.style == "dim"
        silences = alertmanager_api(stack.alertmanager_url, "/silences")
        mine = [s for s in silences if s["createdBy"] == "uma@ui"
                and s["status"]["state"] == "active"]
        assert len(mine) == 1 and mine[0]["comment"] == "on it"
        assert "1 acked" in str(pane.border_title)

        # A: un-acknowledge the same row
        await pilot.press("A")
        await until(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen", "the confirm")
        await pilot.press("y")
        await until(pilot, lambda: not any("ack" in str(r.cells[6]) for r in pane.table.rows),
                    "the acknowledgement to go", timeout=30)
        assert [(r.action, r.status) for r in rt.journal.audit] == [("ack", "ok"),
                                                                    ("unack", "ok")]


async def test_read_only_hides_ack_and_the_stale_marker_shows(stack: PromStack) -> None:
    from tests.conftest import free_port

    rt = runtime_for(f"http://127.0.0.1:{free_port()}", read_only=True)
    app = DeployApp(rt)
    async with app.run_test(size=(160, 40)) as pilot:
        pane = pane_of(app)
        await until(pilot, lambda: pane.stale, "the stale marker")
        assert "is Alertmanager running?" in str(pane.border_subtitle)
        assert pane.has_class("-empty")
        screen = app.get_screen_console()
        assert screen is not None and screen.check_action("ack", ()) is False
        screen.focus_pane("alerts")
        await pilot.press("a")
        await pilot.pause(0.2)
        assert isinstance(app.screen, ConsoleScreen)  # no prompt opened
        assert rt.journal.audit == []


async def test_update_is_cheap_when_nothing_changed(stack: PromStack) -> None:
    rt = runtime_for(stack.alertmanager_url)
    app = DeployApp(rt, autostart_sources=False)
    async with app.run_test(size=(200, 50)) as pilot:
        pane = pane_of(app)
        snap = await rt.sources["alerts"].poll()
        pane.update_snapshot(snap)
        await pilot.pause()
        before = pane.table.repaints
        pane.update_snapshot(snap)
        assert pane.table.repaints == before
        assert pane.table.row_count == len(snap.alerts)
        await asyncio.sleep(0)


async def test_rule_alert_detail_shows_the_rule_and_its_history_sparkline() -> None:
    from deploytui.rules import Level, RuleAlert
    from deploytui.sources.alerts import AlertsSnapshot, merge_alerts
    from deploytui.sources.metrics import MetricsSnapshot

    now = time.time()
    rule = RuleAlert("rule:0123456789abcdef", "HighLatencyP95", "cart", "prod", "p95_s",
                     Level.CRITICAL, 2.4, 2.0, now - 300, "p95 latency")
    alerts = merge_alerts([], [], [rule], {}, now)
    history = {rule.fingerprint: tuple((now - 60 + i * 10, 1.5 + i * 0.2) for i in range(7))}
    metrics = MetricsSnapshot(source="prometheus", queries={"p95_s": "histogram_quantile(0.95, x)"})
    snap = AlertsSnapshot(alerts=alerts, metrics=metrics, counts={"critical": 1},
                          parts=("prometheus",), history=history,
                          response_minutes={"P1": 15.0}, taken_at=now)
    settings = Settings(console=ConsoleSettings(refresh_interval=3600))
    rt = build_runtime(settings, journal=MemoryJournal(), with_sources=False)
    rt.sources["alerts"] = object()  # configured; the test hands the pane its snapshot
    app = DeployApp(rt, autostart_sources=False)
    async with app.run_test(size=(160, 45)) as pilot:
        pane = pane_of(app)
        pane.update_snapshot(snap)
        await pilot.pause()
        row = pane.table.rows[0]
        assert row.cells[1] == "critical" and row.cells[8] == "2.40 s"
        assert row.cells[7].startswith("L1 P1")
        console = app.get_screen_console()
        assert console is not None
        console.focus_pane("alerts")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, AlertDetailScreen), "the detail")
        detail = app.screen
        assert isinstance(detail, AlertDetailScreen)
        body = str(detail.query_one("#alert-detail-body").render())
        assert "deploytui threshold rule" in body and "[rules] p95_seconds" in body
        assert "PromQL:      histogram_quantile(0.95, x)" in body
        assert "Critical level > 2.00 s" in body
        caption = await until(
            pilot, lambda: (t := str(detail.query_one("#alert-detail-caption").render()))
            .startswith("last") and t, "the sparkline")
        assert "min 1.50 s" in caption and "max 2.70 s" in caption
        assert len(detail.points) == 7
