"""The Rollouts pane in the console (Pilot), fed by the real source from the simulated
Kubernetes API over HTTP; actions go through the console's confirm flow and the door."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.text import Text

from deploytui.config import ConsoleSettings, KubernetesSettings, ServiceSettings, Settings
from deploytui.demo.kube import KubeSim, KubeSimThread
from deploytui.model import MemoryJournal
from deploytui.runtime import build_runtime
from deploytui.sources.kube import make_source
from deploytui.sources.rollout_model import Rollout
from deploytui.ui.app import DeployApp
from deploytui.ui.panes.rollouts import RolloutsPane, age_text, progress_cell
from deploytui.ui.screens.confirm import ConfirmScreen, PromptScreen
from deploytui.ui.screens.rollout_detail import RolloutDetailScreen

SIZE = (200, 50)


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[KubeSim]:
    with KubeSimThread(controller_interval=0.03, bookmark_interval=0.3) as s:
        s.set_default_ready_seconds(0.3)
        s.write_kubeconfig(tmp_path / "kubeconfig", namespace="shop")
        yield s


def make(sim: KubeSim, *, read_only: bool = False, **kube: Any) -> DeployApp:
    values: dict[str, Any] = {"enabled": True, "kubeconfig": str(sim.kubeconfig),
                              "namespaces": ("shop",), "request_timeout": 2.0}
    values.update(kube)
    settings = Settings(
        console=ConsoleSettings(read_only=read_only, operator="alice@laptop"),
        kubernetes=KubernetesSettings(**values),
        services=(ServiceSettings(name="checkout", env="prod", health_url="http://127.0.0.1:1/h",
                                  deployment="shop/checkout"),
                  ServiceSettings(name="cart", env="staging", health_url="http://127.0.0.1:1/h")))
    runtime = build_runtime(settings, journal=MemoryJournal(), with_sources=False)
    source = make_source(runtime)     # only the rollouts source: the other panes stay empty
    assert source is not None
    runtime.sources["rollouts"] = source
    return DeployApp(runtime)


async def until(pilot: Any, predicate: Callable[[], Any], timeout: float = 15.0,
                what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await pilot.pause(0.05)


def pane(app: DeployApp) -> RolloutsPane:
    return app.query_one(RolloutsPane)


def cells(app: DeployApp) -> list[list[str]]:
    return [[c.plain if isinstance(c, Text) else str(c) for c in row.cells]
            for row in pane(app).table.rows]


def row_of(app: DeployApp, key: str) -> list[str] | None:
    return next((c for c in cells(app) if c[1] == key), None)


async def test_pane_follows_a_rolling_update_step_by_step(sim: KubeSim) -> None:
    sim.add_deployment("shop", "cart", image="cart:1.0.0", replicas=4)
    app = make(sim)
    async with app.run_test(size=SIZE) as pilot:
        row = await until(pilot, lambda: row_of(app, "shop/cart"), what="the cart row")
        assert row[0] == "✓ complete" and row[2] == "1" and row[3] == "1.0.0"
        assert row[4].startswith("██████████ 4/4/4 of 4")
        assert "1 deployments" in str(pane(app).border_title)
        sim.set_image("shop", "cart", "cart:1.1.0", change_cause="release 1.1.0")
        seen: list[str] = []

        def done() -> bool:
            r = row_of(app, "shop/cart")
            if r and (not seen or seen[-1] != r[4]):
                seen.append(r[4])
            return bool(r and r[0] == "✓ complete" and r[2] == "2")

        await until(pilot, done, what="revision 2 complete")
        row = row_of(app, "shop/cart")
        assert row is not None and row[3] == "1.1.0"
        # the bar went through intermediate states, and the running rollout showed "no history"
        assert len(seen) >= 3, seen
        assert any("of 4" in s and not s.startswith("██████████") for s in seen), seen


async def test_worst_first_counts_filter_and_stale(sim: KubeSim) -> None:
    sim.add_deployment("shop", "cart", image="cart:1", replicas=1)
    sim.add_deployment("shop", "search", image="search:1", replicas=1)
    sim.add_deployment("shop", "checkout", image="app:1", replicas=1)
    sim.set_image_behavior("search:bad", crashloop=True, restart_seconds=0.3)
    app = make(sim, stall_after_seconds=1.0)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: len(cells(app)) == 3, what="three rows")
        sim.set_image("shop", "search", "search:bad")
        await until(pilot, lambda: cells(app)[0][:2] == ["⚠ stalled", "shop/search"],
                    what="the stalled rollout first")
        assert "1 stalled" in str(pane(app).border_title)
        assert pane(app).problems == 1
        await pilot.press("2", "slash")
        for ch in "check":
            await pilot.press(ch)
        await until(pilot, lambda: [c[1] for c in cells(app)] == ["shop/checkout"], what="filter")
        assert "filter 'check': 1 shown" in str(pane(app).border_title)
        await pilot.press("escape")
        await until(pilot, lambda: len(cells(app)) == 3, what="filter cleared")
        sim.inject_fault("GET", r"/deployments", status=503, times=4)
        sim.drop_watches()
        await until(pilot, lambda: pane(app).stale, what="stale marker")
        assert "stale since" in str(pane(app).border_subtitle)
        assert "503" in str(pane(app).border_subtitle)
        await until(pilot, lambda: not pane(app).stale, timeout=25, what="fresh again")


async def test_u_rolls_back_the_selected_rollout_after_confirmation(sim: KubeSim) -> None:
    sim.add_deployment("shop", "cart", image="cart:1", replicas=2)
    app = make(sim)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: row_of(app, "shop/cart"), what="cart")
        sim.set_image("shop", "cart", "cart:2")
        await until(pilot, lambda: (r := row_of(app, "shop/cart")) and r[0] == "✓ complete"
                    and r[2] == "2", what="revision 2")
        await pilot.press("2", "u")
        screen = await until(pilot, lambda: isinstance(app.screen, ConfirmScreen) and app.screen,
                             what="the confirmation")
        assert screen.plan.changes[0] == "revision 2 image cart:2 -> revision 1 image cart:1"
        assert screen.plan.confirm_text == ""         # staging
        await pilot.press("y")
        await until(pilot, lambda: (r := row_of(app, "shop/cart")) and r[2] == "3"
                    and r[3] == "1" and r[0] == "✓ complete", what="rolled back (revision 3)")
        audit = app.runtime.journal.audit
        assert [(a.action, a.status, a.deployer) for a in audit] == [
            ("rollback", "ok", "alice@laptop")]


async def test_enter_shows_history_and_events_and_picks_a_revision(sim: KubeSim) -> None:
    sim.add_deployment("shop", "checkout", image="app:1.4.0", replicas=1, change_cause="first")
    app = make(sim)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: row_of(app, "shop/checkout"), what="checkout")
        for n, image in ((2, "app:1.4.1"), (3, "app:1.4.2")):
            sim.set_image("shop", "checkout", image, change_cause=f"release {image}")
            await until(pilot, lambda n=n: (r := row_of(app, "shop/checkout")) and r[2] == str(n)
                        and r[0] == "✓ complete", what=f"revision {n}")
        await pilot.press("2", "enter")
        detail = await until(pilot, lambda: isinstance(app.screen, RolloutDetailScreen)
                             and app.screen, what="the detail screen")
        table = detail.query_one("#rollout-revisions")
        revs = [[c.plain if isinstance(c, Text) else c for c in r.cells] for r in table.rows]
        assert [r[1] for r in revs] == ["3", "2", "1"]
        assert revs[0][0] == "●" and revs[0][2] == "app:1.4.2"
        assert revs[1][3] == "release app:1.4.1" and revs[2][3] == "first"
        events = detail.query_one("#rollout-events")
        await until(pilot, lambda: "ScalingReplicaSet" in str(events.render()),
                    what="events of the deployment")
        await pilot.press("down", "down", "enter")     # revision 1
        confirm = await until(pilot, lambda: isinstance(app.screen, ConfirmScreen) and app.screen,
                              what="the confirmation")
        assert confirm.plan.changes[0] == ("revision 3 image app:1.4.2 -> revision 1 image "
                                           "app:1.4.0")
        assert confirm.plan.confirm_text == "checkout"    # prod: type the name
        for ch in "checkou":
            await pilot.press(ch)
        await pilot.press("enter")
        assert isinstance(app.screen, ConfirmScreen)      # a wrong name does not confirm
        await pilot.press("backspace", "backspace", "backspace", "backspace", "backspace",
                          "backspace", "backspace")
        for ch in "checkout":
            await pilot.press(ch)
        await pilot.press("enter")
        await until(pilot, lambda: (r := row_of(app, "shop/checkout")) and r[2] == "4"
                    and r[3] == "1.4.0", what="back on 1.4.0 as revision 4")


async def test_s_scales_through_the_prompt(sim: KubeSim) -> None:
    from deploytui.ui.screens.scale import ScaleScreen

    sim.add_deployment("shop", "cart", image="cart:1", replicas=2)
    app = make(sim)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: row_of(app, "shop/cart"), what="cart")
        await pilot.press("2", "s")
        prompt = await until(pilot, lambda: isinstance(app.screen, ScaleScreen) and app.screen,
                             what="the replica prompt")
        assert prompt.query_one("#scale-input").value == "2"
        await pilot.press("enter")  # the same count is refused with a message
        assert isinstance(app.screen, ScaleScreen)
        assert "already has 2" in str(prompt.query_one("#scale-error").render())
        await pilot.press("backspace", "5", "enter")
        confirm = await until(pilot, lambda: isinstance(app.screen, ConfirmScreen) and app.screen,
                              what="the confirmation")
        assert confirm.plan.changes == ("replicas 2 -> 5",)
        await pilot.press("y")
        await until(pilot, lambda: (r := row_of(app, "shop/cart")) and "5/5/5 of 5" in r[4],
                    what="5 replicas")


async def test_read_only_hides_and_refuses_rollback(sim: KubeSim) -> None:
    sim.add_deployment("shop", "cart", image="cart:1", replicas=1)
    sim.set_image("shop", "cart", "cart:2")
    app = make(sim, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: (r := row_of(app, "shop/cart")) and r[2] == "2", what="cart")
        await pilot.press("2", "u", "R", "s")
        await pilot.pause(0.2)
        assert not isinstance(app.screen, (ConfirmScreen, PromptScreen))
        await pilot.press("enter")
        detail = await until(pilot, lambda: isinstance(app.screen, RolloutDetailScreen)
                             and app.screen, what="detail")
        assert detail.check_action("rollback_to", ()) is False
        await pilot.press("enter")                    # select a revision: refused
        await pilot.pause(0.2)
        assert not isinstance(app.screen, ConfirmScreen)
    assert app.runtime.journal.audit == []
    d = sim.get_object("deployments", "shop", "cart")
    assert d is not None and d["spec"]["template"]["spec"]["containers"][0]["image"] == "cart:2"


def test_progress_cell_and_age() -> None:
    r = Rollout(namespace="shop", name="x", phase="progressing", message="", images=("x:1",),
                revision=2, desired=10, current=12, updated=6, ready=5, available=3,
                started_at=1000.0)
    assert progress_cell(r) == "███▓▓▒░░░░ 6/5/3 of 10"
    assert age_text(r, 1125.0) == "2m05s"
    done = Rollout(namespace="shop", name="x", phase="complete", message="", images=("x:1",),
                   revision=2, desired=0, current=0, updated=0, ready=0, available=0,
                   started_at=1000.0, completed_at=1000.0)
    assert progress_cell(done) == "░░░░░░░░░░ 0/0/0 of 0"
    assert age_text(done, 1000.0 + 3 * 3600 + 120) == "3h02m"
    assert age_text(done, 1000.0 + 5 * 86400) == "5d"


async def test_scale_screen_validates_and_steps() -> None:
    from textual.app import App

    from deploytui.ui.screens.scale import ScaleScreen, check_replicas

    assert check_replicas("8") == (8, "")
    assert check_replicas("-1")[0] is None and "whole number" in check_replicas("-1")[1]
    r = Rollout(namespace="shop", name="cart", phase="complete", message="", images=("c:1",),
                revision=1, desired=4, current=4, updated=4, ready=4, available=4)
    results: list[int | None] = []

    class Host(App[None]):
        def on_mount(self) -> None:
            self.push_screen(ScaleScreen("shop/cart", r), results.append)

    app = Host()
    async with app.run_test() as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ScaleScreen)
        await pilot.press("enter")                    # unchanged: refused in place
        assert "already has 4 replicas" in str(screen.query_one("#scale-error").render())
        await pilot.press("plus", "plus", "minus", "plus")
        assert screen.query_one("#scale-input").value == "6"
        await pilot.press("enter")
        await pilot.pause()
    assert results == [6]
