"""The guard against the simulated fleet: real services over HTTP, the simulated Kubernetes API,
the real store, the real action door and Lease locks, and a real webhook receiver."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from deploytui.actions.kube import LeaseLocker
from deploytui.config import (
    GuardCriterion,
    NotifyChannel,
    NotifyRoute,
    Secret,
    Settings,
    load_config,
)
from deploytui.demo.fleet import IMAGE_REPO, Fleet
from deploytui.guard_runner import GuardOutcome, GuardRunner, Prompt
from deploytui.notify import install_notifier
from deploytui.runtime import Runtime, build_runtime
from deploytui.sources.kube_watch import KubeHandle
from tests.conftest import free_port
from tests.webhook_receiver import WebhookReceiver

DEP = "shop/checkout"


def wait_for(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def fast_settings(fleet: Fleet, *, mode: str = "auto", **changes: Any) -> Settings:
    s = load_config(fleet.config_path)
    crit = {"error_rate_percent": GuardCriterion(10.0, 1.0, 2),
            "p95_seconds": GuardCriterion(5.0, 1.0, 2),
            "restarts_per_minute": GuardCriterion(0.5, 1.0, 2),
            "db_errors_per_minute": GuardCriterion(10.0, 1.0, 2),
            "health_failures": GuardCriterion(1.0, 1.0, 2)}
    guard = dataclasses.replace(s.guard, mode=mode, interval_seconds=0.5, window_minutes=1.0,  # type: ignore[arg-type]
                                countdown_seconds=1.0, cooldown_minutes=60.0, **crit)
    return dataclasses.replace(s, guard=guard, **changes)


def image(fleet: Fleet) -> str:
    assert fleet.kube is not None
    return str(fleet.kube.deployment_view("shop", "checkout").template_images[0])


def bad_rollout_started(fleet: Fleet) -> None:
    fleet.steer("checkout", "prod", request_rate=2000.0)
    wait_for(lambda: image(fleet).endswith(":1.5.0"), "the bad rollout to start")


def run(runner: GuardRunner) -> GuardOutcome:
    return asyncio.run(runner.run())


def close(rt: Runtime) -> None:
    getattr(rt.journal, "store", rt.journal).close()


def evaluations(rt: Runtime) -> list[Any]:
    return [r for r in rt.journal.audit(action="guard_eval")]


def test_auto_rolls_back_the_bad_rollout_then_cooldown(tmp_path: Path) -> None:
    with WebhookReceiver() as rx, \
            Fleet(scenario="bad-rollout", time_scale=20.0, workdir=tmp_path / "f") as fleet:
        bad_rollout_started(fleet)
        hook = rx.url("/hook/guard-secret-path-0123")
        settings = fast_settings(fleet)
        settings = dataclasses.replace(settings, notify=dataclasses.replace(
            settings.notify,
            channels=(NotifyChannel("ops-hook", "webhook", url=Secret(hook)),),
            routes=(NotifyRoute("ops", ("*",), ("ops-hook",)),)))
        rt = build_runtime(settings, with_sources=False)
        install_notifier(rt)
        prompts: list[Prompt] = []
        lines: list[str] = []
        runner = GuardRunner(rt, DEP, armed=True, on_prompt=prompts.append,
                             on_decision=lambda d: lines.append(d.summary()))
        outcome = run(runner)
        assert outcome.status == "rolled_back", outcome.message
        assert outcome.exit_code == 1
        assert [p.kind for p in prompts] == ["countdown"]
        assert any("error rate" in e for e in prompts[0].evidence)
        wait_for(lambda: image(fleet).endswith(":1.4.2"), "checkout back on 1.4.2")

        evals = evaluations(rt)
        assert len(evals) == outcome.evaluations >= 3
        tripped = evals[-1]
        assert tripped.status == "evaluated" and tripped.after["verdict"] == "tripped"
        by_crit = {r["criterion"]: r for r in tripped.after["results"]}
        assert by_crit["error_rate_percent"]["value"] > 10.0
        assert by_crit["error_rate_percent"]["threshold"] == 10.0
        assert "scrape" in by_crit["error_rate_percent"]["query"]
        assert evals[0].after["verdict"] in ("inconclusive", "failing")   # first scrape: no rate
        rollback = [r for r in rt.journal.audit(action="rollback") if r.status == "ok"]
        assert len(rollback) == 1 and rollback[0].target == DEP
        assert [r.status for r in rt.journal.audit(action="guard_rollback")] == ["ok"]
        kinds = [e.details.get("decision") for e in rt.journal.events() if e.kind == "guard"]
        assert "tripped: rollback" in kinds and "rollback" in kinds

        wait_for(lambda: {b["event"] for _, b in rx.delivered} >= {
            "guard_tripped", "rollback_initiated", "rollback_completed"}, "the notifications")
        rt.extras["notify_worker"].stop()

        # a second bad rollout within the cooldown: no second automatic rollback
        assert fleet.kube is not None
        bad = f"{IMAGE_REPO}/checkout:1.6.0"
        fleet.kube.set_image_behavior(bad, crashloop=True)
        fleet.kube.set_image("shop", "checkout", bad, change_cause="deploy 1.6.0 (bad)")
        again = run(GuardRunner(rt, DEP, armed=True))
        assert again.status == "blocked" and "cooldown" in again.message
        assert image(fleet).endswith(":1.6.0")
        close(rt)


def test_propose_shows_a_proposal_and_dismiss_keeps_the_revision(tmp_path: Path) -> None:
    with Fleet(scenario="bad-rollout", time_scale=20.0, workdir=tmp_path / "f") as fleet:
        bad_rollout_started(fleet)
        rt = build_runtime(fast_settings(fleet, mode="propose"), with_sources=False)
        prompts: list[Prompt] = []

        def answer(prompt: Prompt) -> None:
            prompts.append(prompt)
            prompt.runner.dismiss()

        outcome = run(GuardRunner(rt, DEP, on_prompt=answer, countdown_seconds=5.0))
        assert outcome.status == "dismissed" and outcome.exit_code == 1
        [prompt] = prompts
        assert prompt.kind == "propose" and prompt.revision == 2
        assert prompt.evidence and prompt.deadline > prompt.decision.ts
        assert image(fleet).endswith(":1.5.0")
        assert [r.status for r in rt.journal.audit(action="guard_rollback")] == ["refused"]

        # headless (no prompt callback): "would roll back", nothing changed
        headless = run(GuardRunner(rt, DEP))
        assert headless.status == "would_roll_back" and headless.exit_code == 1
        assert image(fleet).endswith(":1.5.0")

        # confirmed: rolled back through the door
        confirmed = run(GuardRunner(rt, DEP, on_prompt=lambda p: p.runner.confirm()))
        assert confirmed.status == "rolled_back", confirmed.message
        wait_for(lambda: image(fleet).endswith(":1.4.2"), "checkout back on 1.4.2")
        close(rt)


def test_healthy_rollout_does_not_trip(tmp_path: Path) -> None:
    with Fleet(scenario="steady", time_scale=20.0, workdir=tmp_path / "f") as fleet:
        assert fleet.kube is not None
        fleet.kube.set_image("shop", "checkout", f"{IMAGE_REPO}/checkout:1.4.3",
                             change_cause="deploy 1.4.3")
        rt = build_runtime(fast_settings(fleet), with_sources=False)
        outcome = run(GuardRunner(rt, DEP, armed=True, window_seconds=4.0))
        assert outcome.status == "healthy", outcome.message
        assert outcome.exit_code == 0
        assert all(r.after["verdict"] != "tripped" for r in evaluations(rt))
        assert rt.journal.audit(action="rollback") == []
        assert image(fleet).endswith(":1.4.3")
        close(rt)


def test_lock_held_by_another_operator_and_read_only(tmp_path: Path) -> None:
    with Fleet(scenario="bad-rollout", time_scale=20.0, workdir=tmp_path / "f") as fleet:
        bad_rollout_started(fleet)
        settings = fast_settings(fleet)
        other = KubeHandle(settings).client()
        with LeaseLocker(other, settings).hold(DEP, "alice@other-console"):
            rt = build_runtime(settings, with_sources=False)
            outcome = run(GuardRunner(rt, DEP, armed=True))
        assert outcome.status == "blocked", outcome.message
        assert "alice@other-console holds the lock" in outcome.message
        assert image(fleet).endswith(":1.5.0")
        assert rt.journal.audit(action="rollback") == []
        close(rt)

        ro = build_runtime(dataclasses.replace(settings, console=dataclasses.replace(
            settings.console, read_only=True)), with_sources=False)
        outcome = run(GuardRunner(ro, DEP, armed=True))
        assert outcome.status == "blocked" and "read-only" in outcome.message
        assert image(fleet).endswith(":1.5.0")
        close(ro)


def test_no_data_is_inconclusive(tmp_path: Path) -> None:
    """Metrics that cannot be read are never taken for health (the health endpoint answers)."""
    with Fleet(scenario="steady", time_scale=20.0, workdir=tmp_path / "f") as fleet:
        assert fleet.kube is not None
        fleet.kube.set_image("shop", "checkout", f"{IMAGE_REPO}/checkout:1.4.3")
        settings = fast_settings(fleet)
        dead = f"http://127.0.0.1:{free_port()}"
        settings = dataclasses.replace(
            settings, prometheus=dataclasses.replace(settings.prometheus, url=dead, timeout=0.5))
        rt = build_runtime(settings, with_sources=False)
        outcome = run(GuardRunner(rt, DEP, armed=True, window_seconds=3.0))
        assert outcome.status == "inconclusive" and outcome.exit_code == 2, outcome.message
        evals = evaluations(rt)
        assert evals and all(r.after["verdict"] == "inconclusive" for r in evals)
        results = {r["criterion"]: r for r in evals[-1].after["results"]}
        assert results["error_rate_percent"]["status"] == "inconclusive"
        assert "refused" in results["error_rate_percent"]["message"] or \
            "connect" in results["error_rate_percent"]["message"]
        assert results["health_failures"]["status"] == "pass"
        assert rt.journal.audit(action="rollback") == []
        close(rt)
