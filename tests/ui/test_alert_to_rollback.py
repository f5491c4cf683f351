"""From a firing alert to a confirmed rollback of its service: the keys are counted.

Real parts: the simulated fleet (services over HTTP + simulated Kubernetes API), the console's
own sources (direct scrape metrics, rule alerts, Kubernetes watch), the action door and a Lease.
A staging service is used so the confirmation is one key; in prod the operator also types the
deployment name (tests/ui/test_rollouts_pane.py covers that).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from deploytui.config import load_config
from deploytui.demo.fleet import IMAGE_REPO, Fleet
from deploytui.ui.app import make_app
from deploytui.ui.console_screen import ConsoleScreen
from deploytui.ui.screens.confirm import ConfirmScreen


async def _until(pilot: Any, check: Callable[[], Any], what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        await pilot.pause(0.2)
    raise AssertionError(f"timed out waiting for {what}")


async def test_firing_alert_to_confirmed_rollback_in_at_most_four_keys(tmp_path: Path) -> None:
    with Fleet(services=12, scenario="steady", seed=1, workdir=tmp_path / "fleet") as fleet:
        assert fleet.kube is not None
        settings = load_config(fleet.config_path)
        settings = dataclasses.replace(
            settings,
            console=dataclasses.replace(settings.console, refresh_interval=0.5),
            rules=dataclasses.replace(settings.rules, for_seconds=0.0),
            guard=dataclasses.replace(settings.guard, mode="off"),
        )
        good = fleet.kube.deployment_view("shop-staging", "checkout")
        bad_image = f"{IMAGE_REPO}/checkout:9.9.9-bad"
        fleet.kube.set_image_behavior(bad_image, crashloop=True)
        fleet.kube.set_image("shop-staging", "checkout", bad_image, change_cause="bad build")

        app = make_app(settings, mode="demo")
        async with app.run_test(size=(200, 50)) as pilot:
            screen = app.screen
            assert isinstance(screen, ConsoleScreen)
            alerts = screen.panes["alerts"]

            def checkout_alert_on_top() -> bool:
                target = alerts.selected_target()
                return target.service.endswith("checkout") and target.env == "staging"

            # wait for the alert to fire and be the newest (top) row
            await _until(pilot, lambda: any("checkout" in str(r.cells) and "staging" in str(r.cells)
                                            for r in alerts.table.rows), "the alert", 90)
            keys = ["4"]
            await pilot.press(*keys)
            await _until(pilot, checkout_alert_on_top, "the checkout alert selected", 30)
            keys.append("u")
            await pilot.press("u")
            confirm = await _until(pilot, lambda: isinstance(app.screen, ConfirmScreen) and app.screen,
                                   "the confirmation")
            assert confirm.plan.target == "shop-staging/checkout"
            assert any("9.9.9-bad" in c and good.template_images[0] in c for c in confirm.plan.changes)
            keys.append("y")
            await pilot.press("y")
            assert len(keys) <= 4, keys

            def rolled_back() -> bool:
                view = fleet.kube.deployment_view("shop-staging", "checkout")
                return view.template_images == good.template_images
            await _until(pilot, rolled_back, "the rollback", 30)

            audit = [r for r in app.runtime.journal.audit() if r.action == "rollback"]
            assert audit and audit[-1].status == "ok"
            events = fleet.kube.list_objects("Event", "shop-staging")
            assert any(e.get("reason") == "DeploytuiRollback" for e in events)
