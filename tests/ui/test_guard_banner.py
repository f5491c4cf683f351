"""The guard in the real console (Pilot) against the simulated fleet: `g` arms it, the countdown
banner appears on the bad rollout and `esc` aborts it; a proposal rolls back on `y`."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

from textual.widgets import Static

from deploytui.config import GuardCriterion, Settings, load_config
from deploytui.demo.fleet import Fleet
from deploytui.runtime import Runtime, build_runtime
from deploytui.sources.rollout_model import Rollout, RolloutSnapshot
from deploytui.ui.app import DeployApp, make_app
from deploytui.ui.guard_banner import ARMED_BADGE, GuardPromptScreen, install_guard

DEP = "shop/checkout"


def settings_for(fleet: Fleet, mode: str, countdown: float, read_only: bool = False) -> Settings:
    s = load_config(fleet.config_path)
    c = GuardCriterion(threshold=10.0, for_seconds=1.0, limit=2)
    guard = dataclasses.replace(
        s.guard, mode=mode, interval_seconds=0.5, window_minutes=1.0,  # type: ignore[arg-type]
        countdown_seconds=countdown, error_rate_percent=c,
        p95_seconds=GuardCriterion(5.0, 1.0, 2), restarts_per_minute=GuardCriterion(0.5, 1.0, 2),
        db_errors_per_minute=GuardCriterion(10.0, 1.0, 2),
        health_failures=GuardCriterion(1.0, 1.0, 2))
    console = dataclasses.replace(s.console, read_only=read_only, operator="ann@ops")
    return dataclasses.replace(s, guard=guard, console=console)


def image(fleet: Fleet) -> str:
    assert fleet.kube is not None
    return str(fleet.kube.deployment_view("shop", "checkout").template_images[0])


def start_bad(fleet: Fleet) -> None:
    fleet.steer("checkout", "prod", request_rate=2000.0)
    deadline = time.monotonic() + 30
    while not image(fleet).endswith(":1.5.0"):
        assert time.monotonic() < deadline, "the bad rollout did not start"
        time.sleep(0.05)


async def until(pilot: object, check: Callable[[], bool], what: str, timeout: float = 40) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await pilot.pause(0.1)  # type: ignore[attr-defined]


def app_for(settings: Settings) -> tuple[DeployApp, Runtime]:
    rt = build_runtime(settings, with_sources=False)
    return make_app(settings, runtime=rt, autostart_sources=False), rt


def close(rt: Runtime) -> None:
    getattr(rt.journal, "store", rt.journal).close()


async def test_g_arms_and_esc_aborts_the_automatic_rollback(tmp_path: Path) -> None:
    with Fleet(scenario="bad-rollout", time_scale=20.0, workdir=tmp_path / "f") as fleet:
        start_bad(fleet)
        app, rt = app_for(settings_for(fleet, "auto", countdown=60.0))
        controller = install_guard(rt, app)
        assert rt.extras["guard"] is controller
        async with app.run_test(size=(160, 48)) as pilot:
            assert rt.extras["guard_badge"] == "guard: auto (disarmed)"
            await pilot.press("g")
            assert controller.armed and rt.extras["guard_badge"] == ARMED_BADGE
            console = app.get_screen_console()
            assert console is not None and "GUARD ARMED" in console._header_text
            controller.watch(DEP)
            await until(pilot, lambda: isinstance(app.screen, GuardPromptScreen),
                        "the countdown banner")
            banner = app.screen
            assert isinstance(banner, GuardPromptScreen) and banner.prompt.kind == "countdown"
            text = " ".join(str(w.render()) for w in banner.query(Static))
            assert "automatic rollback of shop/checkout" in text and "error rate" in text
            assert "Rolling back in" in text and "esc aborts" in text
            await pilot.press("escape")
            await until(pilot, lambda: bool(controller.outcomes), "the guard to finish")
            assert controller.outcomes[0].status == "aborted"
            assert not isinstance(app.screen, GuardPromptScreen)
            await pilot.press("g")
            assert not controller.armed
        assert image(fleet).endswith(":1.5.0")
        statuses = [r.status for r in rt.journal.audit(action="guard_rollback")]
        assert statuses == ["aborted"]
        assert [r.after["armed"] for r in rt.journal.audit(action="guard_arm")] == [True, False]
        close(rt)


async def test_proposal_from_a_rollouts_snapshot_and_y_rolls_back(tmp_path: Path) -> None:
    with Fleet(scenario="bad-rollout", time_scale=20.0, workdir=tmp_path / "f") as fleet:
        start_bad(fleet)
        app, rt = app_for(settings_for(fleet, "propose", countdown=60.0))
        controller = install_guard(rt, app)
        async with app.run_test(size=(160, 48)) as pilot:
            assert rt.extras["guard_badge"] == "guard: propose"
            await pilot.press("g")             # arming is for auto mode only
            assert not controller.armed
            rollout = Rollout(namespace="shop", name="checkout", phase="progressing",
                              message="", images=("x:1.5.0",), revision=2, desired=4, current=4,
                              updated=1, ready=3, available=3)
            app.publish("rollouts", RolloutSnapshot(rollouts=(rollout,), loaded=True))
            await until(pilot, lambda: DEP in controller.runners, "a guard for the rollout")
            await until(pilot, lambda: isinstance(app.screen, GuardPromptScreen), "the proposal")
            banner = app.screen
            assert isinstance(banner, GuardPromptScreen) and banner.prompt.kind == "propose"
            text = " ".join(str(w.render()) for w in banner.query(Static))
            assert "roll back shop/checkout" in text and "Proposal expires in" in text
            await pilot.press("y")
            await until(pilot, lambda: bool(controller.outcomes), "the rollback")
            assert controller.outcomes[0].status == "rolled_back", controller.outcomes[0].message
            # the same revision is not guarded twice
            app.publish("rollouts", RolloutSnapshot(rollouts=(rollout,), loaded=True))
            await pilot.pause(0.3)
            assert DEP not in controller.runners
        deadline = time.monotonic() + 30
        while not image(fleet).endswith(":1.4.2"):
            assert time.monotonic() < deadline, "checkout was not rolled back"
            time.sleep(0.05)
        close(rt)


async def test_read_only_console_cannot_arm(tmp_path: Path) -> None:
    with Fleet(scenario="steady", time_scale=20.0, workdir=tmp_path / "f") as fleet:
        app, rt = app_for(settings_for(fleet, "auto", countdown=5.0, read_only=True))
        controller = install_guard(rt, app)
        async with app.run_test(size=(160, 48)):
            console = app.get_screen_console()
            assert console is not None
            controller.toggle_armed(console)
            assert not controller.armed
            assert rt.extras["guard_badge"] == "guard: auto (disarmed)"
        close(rt)


async def test_dead_letters_screen_lists_and_retries(tmp_path: Path) -> None:
    from textual.widgets import DataTable

    from deploytui.config import parse_config
    from deploytui.ui.guard_banner import DeadLettersScreen, show_dead_letters
    from tests.webhook_receiver import WebhookReceiver

    secret = "T9/B9/dead-letter-screen-secret"
    with WebhookReceiver() as rx:
        settings = parse_config(f"""
[console]
operator = "ann@ops"
[[notify.channels]]
name = "ops-slack"
kind = "slack"
url = "{rx.url('/hooks/' + secret)}"
[[notify.routes]]
role = "ops"
channels = ["ops-slack"]
[store]
path = "{tmp_path / 'store.db'}"
""")
        app, rt = app_for(settings)
        nid = rt.journal.enqueue_notification("rollout_failed", "ops-slack",
                                              {"target": "shop/checkout"})
        rt.journal.mark_failed(nid, f"ops-slack ({rx.url('/hooks/' + secret)}): HTTP 500", None)
        controller = install_guard(rt, app)
        assert controller.refresh_dead_letters(force=True) == 1
        assert "1 undelivered notification" in rt.extras["guard_badge"]
        async with app.run_test(size=(160, 48)) as pilot:
            console = app.get_screen_console()
            assert console is not None
            show_dead_letters(console)
            await pilot.pause(0.2)
            screen = app.screen
            assert isinstance(screen, DeadLettersScreen)
            table = screen.query_one(DataTable)
            assert table.row_count == 1
            row = [str(c) for c in table.get_row_at(0)]
            assert row[2:5] == ["rollout_failed", "ops-slack", "shop/checkout"]
            assert secret not in " ".join(row) and "127.0.0.1/***" in row[6]
            await pilot.press("r")
            await until(pilot, lambda: table.row_count == 0, "the retried message to leave")
            assert rx.delivered and rx.delivered[0][1]["text"].startswith("Rollout FAILED")
            await pilot.press("escape")
        assert controller.refresh_dead_letters(force=True) == 0
        close(rt)
