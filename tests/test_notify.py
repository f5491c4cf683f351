"""Notifications against a real webhook receiver on 127.0.0.1 (aiohttp) and a real store file."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, ClassVar

import pytest

from deploytui.actions.door import ActionContext, ActionDoor, ActionPlan, ActionResult
from deploytui.config import Settings, parse_config
from deploytui.errors import ActionFailed
from deploytui.notify import (
    EVENTS,
    DeliveryWorker,
    StoreNotifier,
    build_request,
    install_notifier,
    render,
    route,
)
from deploytui.runtime import build_runtime
from deploytui.store import Store, known_secrets
from tests.webhook_receiver import WebhookReceiver

SECRET_PATH = "T0SECRET/B0SECRET/xoxb-verysecretpath"
ROUTING_KEY = "R0UTINGKEYsecret0123456789abcdef"


class Clock:
    def __init__(self, t: float = 1_800_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def make_settings(rx: WebhookReceiver, tmp_path: Path, *, backoff: str = "[5, 10, 20, 40, 80]"
                  ) -> Settings:
    text = f"""
[notify]
backoff_seconds = {backoff}
[[notify.channels]]
name = "ops-slack"
kind = "slack"
url = "${{SLACK_URL}}"
timeout = 2.0
[[notify.channels]]
name = "ops-teams"
kind = "teams"
url = "{rx.url('/teams/webhookb2/' + SECRET_PATH)}"
[[notify.channels]]
name = "ops-pager"
kind = "pagerduty"
url = "{rx.url('/v2/enqueue')}"
routing_key = "${{PD_KEY}}"
[[notify.channels]]
name = "audit-hook"
kind = "webhook"
url = "{rx.url('/generic/' + SECRET_PATH)}"
[[notify.routes]]
role = "ops"
events = ["rollout_failed", "rollback_initiated", "rollback_completed", "guard_tripped"]
channels = ["ops-slack", "ops-pager", "ops-teams"]
[[notify.routes]]
role = "dev"
events = ["*"]
channels = ["ops-slack"]
[[notify.routes]]
role = "audit"
events = ["incident_opened", "incident_closed"]
channels = ["audit-hook"]
[store]
path = "{tmp_path / 'store.db'}"
"""
    return parse_config(text, environ={"SLACK_URL": rx.url("/hooks/" + SECRET_PATH),
                                       "PD_KEY": ROUTING_KEY})


def open_store(settings: Settings, clock: Clock) -> Store:
    return Store(settings.store_path, secrets=known_secrets(settings), clock=clock)


def test_templates_cover_every_event() -> None:
    payload = {"target": "shop/checkout", "revision": 7, "incident_id": 3, "severity": "P1",
               "title": "checkout down", "alertname": "HighErrorRate", "message": "why",
               "evidence": ["error rate 42 % > 10"]}
    titles = {e: render(e, payload).title for e in EVENTS}
    assert titles["guard_tripped"] == "Guard tripped: shop/checkout revision 7"
    assert titles["incident_opened"].startswith("Incident #3 opened (P1)")
    assert titles["acknowledged"] == "Acknowledged: HighErrorRate"
    assert len(set(titles.values())) == len(EVENTS)
    assert "• error rate 42 % > 10" in render("guard_tripped", payload).text


def test_routing_per_role(tmp_path: Path) -> None:
    with WebhookReceiver() as rx:
        s = make_settings(rx, tmp_path).notify
        assert route(s, "rollout_started") == {"ops-slack": ("dev",)}
        assert route(s, "guard_tripped") == {"ops-slack": ("ops", "dev"), "ops-pager": ("ops",),
                                             "ops-teams": ("ops",)}
        assert route(s, "incident_opened") == {"ops-slack": ("dev",), "audit-hook": ("audit",)}


def test_delivery_formats_and_pagerduty_dedup(tmp_path: Path) -> None:
    clock = Clock()
    with WebhookReceiver() as rx:
        settings = make_settings(rx, tmp_path)
        store = open_store(settings, clock)
        notifier = StoreNotifier(store, settings.notify, clock=clock)
        worker = DeliveryWorker(store, settings.notify, clock=clock)
        notifier.notify("guard_tripped", {"deployment": "shop/checkout", "revision": 2,
                                          "env": "prod", "evidence": ["error rate 40 % > 10"]})
        notifier.notify("rollback_completed", {"target": "shop/checkout", "env": "prod"})
        notifier.notify("rollout_started", {"target": "shop/cart"})
        results = worker.deliver_due()
        assert [r.status for r in results] == ["delivered"] * 7
        by_path: dict[str, list[Any]] = {}
        for path, body in rx.delivered:
            by_path.setdefault(path.split("/")[1], []).append(body)
        assert len(by_path["hooks"]) == 3                       # slack: all three events
        assert "Guard tripped: shop/checkout" in by_path["hooks"][0]["text"]
        assert by_path["hooks"][0]["blocks"][0]["type"] == "section"
        teams = by_path["teams"][0]
        assert teams["@type"] == "MessageCard" and teams["themeColor"] == "E01E5A"
        trigger, resolve = by_path["v2"]
        assert trigger["event_action"] == "trigger" and resolve["event_action"] == "resolve"
        assert trigger["dedup_key"] == resolve["dedup_key"] == "deploytui/rollout/shop/checkout"
        assert trigger["routing_key"] == ROUTING_KEY
        assert trigger["payload"]["severity"] == "critical"
        assert "payload" not in resolve
        # the stored rows hold the channel name and roles, never the URL or key
        stored = store.notifications(limit=10)
        assert {n.status for n in stored} == {"delivered"}
        assert all(SECRET_PATH not in str(n.payload) for n in stored)
        assert {tuple(n.payload["roles"]) for n in stored if n.channel == "ops-slack"} == {
            ("ops", "dev"), ("dev",)}
        store.close()


def test_backoff_schedule_with_injectable_clock(tmp_path: Path) -> None:
    clock = Clock()
    t0 = clock.t
    with WebhookReceiver(fail_first=3) as rx:
        settings = make_settings(rx, tmp_path)
        store = open_store(settings, clock)
        notifier = StoreNotifier(store, settings.notify, clock=clock)
        worker = DeliveryWorker(store, settings.notify, clock=clock)
        [nid] = notifier.enqueue("rollout_started", {"target": "shop/cart"})
        schedule = []
        for step in range(200):       # one second at a time, as a worker loop would
            clock.t = t0 + step
            for r in worker.deliver_due():
                schedule.append((step, r.status, r.attempts,
                                 None if r.next_attempt is None else r.next_attempt - t0))
        assert schedule == [(0, "pending", 1, 5.0), (5, "pending", 2, 15.0),
                            (15, "pending", 3, 35.0), (35, "delivered", 4, None)]
        assert len(rx.requests) == 4 and len(rx.delivered) == 1
        n = store.notification(nid)
        assert n is not None and n.status == "delivered" and n.attempts == 4
        store.close()


def test_dead_letter_after_five_attempts_masked(tmp_path: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    clock = Clock()
    t0 = clock.t
    with WebhookReceiver(fail_always=True) as rx:
        settings = make_settings(rx, tmp_path)
        store = open_store(settings, clock)
        notifier = StoreNotifier(store, settings.notify, clock=clock)
        worker = DeliveryWorker(store, settings.notify, clock=clock, journal=store)
        notifier.enqueue("rollout_started", {"target": "shop/cart"})
        attempts_at = []
        for step in range(400):
            clock.t = t0 + step
            for r in worker.deliver_due():
                attempts_at.append((step, r.status))
        assert attempts_at == [(0, "pending"), (5, "pending"), (15, "pending"), (35, "pending"),
                               (75, "dead")]
        [dead] = store.dead_letters()
        assert dead.attempts == 5 and "HTTP 500" in dead.last_error
        assert "127.0.0.1/***" in dead.last_error
        assert SECRET_PATH not in dead.last_error
        events = store.events()
        assert any(e.kind == "notification" and "dead-lettered after 5" in e.summary
                   for e in events)
        store.close()
    assert "dead-lettered" in caplog.text
    assert SECRET_PATH not in caplog.text
    assert ROUTING_KEY not in caplog.text
    assert SECRET_PATH.encode() not in (tmp_path / "store.db").read_bytes()


def test_restart_resumes_the_queue(tmp_path: Path) -> None:
    clock = Clock()
    t0 = clock.t
    with WebhookReceiver(fail_first=1) as rx:
        settings = make_settings(rx, tmp_path)
        store = open_store(settings, clock)
        notifier = StoreNotifier(store, settings.notify, clock=clock)
        first = DeliveryWorker(store, settings.notify, clock=clock)
        [a] = notifier.enqueue("rollout_started", {"target": "shop/cart"})
        [r] = first.deliver_due()
        assert r.status == "pending"                  # failed once, next attempt at +5 s
        [b] = notifier.enqueue("rollout_completed", {"target": "shop/cart"})
        store.close()                                 # the console stops here

        clock.t = t0 + 6
        store2 = open_store(settings, clock)          # a new console on the same file
        worker2 = DeliveryWorker(store2, settings.notify, clock=clock)
        results = worker2.deliver_due()
        assert sorted(r.id for r in results if r.status == "delivered") == sorted([a, b])
        assert sorted(body["text"].split("\n")[0] for _, body in rx.delivered) == [
            "Rollout completed: shop/cart", "Rollout started: shop/cart"]
        store2.close()


def test_worker_thread_delivers_and_stops(tmp_path: Path) -> None:
    with WebhookReceiver() as rx:
        settings = make_settings(rx, tmp_path)
        rt = build_runtime(settings, with_sources=False)
        notifier = install_notifier(rt)
        assert notifier is not None and rt.door.notifier is notifier
        worker = rt.extras["notify_worker"]
        notifier.notify("incident_opened", {"incident_id": 4, "severity": "P2", "title": "x"})
        deadline = time.monotonic() + 20
        while len(rx.delivered) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        worker.stop()
        assert sorted(p.split("/")[1] for p, _ in rx.delivered) == ["generic", "hooks"]
        generic = next(b for p, b in rx.delivered if p.startswith("/generic"))
        assert generic["event"] == "incident_opened"
        assert generic["dedup_key"] == "deploytui/incident/4"
        getattr(rt.journal, "store", rt.journal).close()


class _Rollback:
    """A rollback-shaped action with a fixed outcome (the door's notifications are the subject;
    the real Kubernetes rollback is exercised in tests/test_guard_runner.py)."""

    id: ClassVar[str] = "rollback"

    def __init__(self, fail: bool) -> None:
        self.fail = fail

    def plan(self) -> ActionPlan:
        return ActionPlan("rollback", "shop/checkout", "Roll back shop/checkout",
                          ("revision 2 -> 1",), env="prod", service="prod/checkout",
                          params={"from_revision": 2, "target_revision": 1})

    def execute(self, plan: ActionPlan, ctx: ActionContext) -> ActionResult:
        if self.fail:
            raise ActionFailed("the API said no")
        return ActionResult(True, "rolled back")


def test_door_notifies_rollback_start_and_outcome(tmp_path: Path) -> None:
    clock = Clock()
    with WebhookReceiver() as rx:
        settings = make_settings(rx, tmp_path)
        store = open_store(settings, clock)
        door = ActionDoor(operator="ann@ops", audit=store, timeline=store,
                          notifier=StoreNotifier(store, settings.notify, clock=clock))
        assert door.run(_Rollback(fail=False)).ok
        assert not door.run(_Rollback(fail=True)).ok
        rows = sorted(store.notifications(limit=50), key=lambda n: n.id)
        slack = [(n.event, n.payload.get("to_revision")) for n in rows if n.channel == "ops-slack"]
        assert slack == [("rollback_initiated", 1), ("rollback_completed", 1),
                         ("rollback_initiated", 1), ("rollout_failed", 1)]
        read_only = ActionDoor(operator="ann@ops", read_only=True, audit=store,
                               notifier=StoreNotifier(store, settings.notify, clock=clock))
        before = len(store.notifications(limit=100))
        assert not read_only.run(_Rollback(fail=False)).ok
        assert len(store.notifications(limit=100)) == before     # refused: nothing sent
        _url, body = build_request(settings.notify.channels[2], "acknowledged",
                                  {"alertname": "HighErrorRate", "fingerprint": "abc"})
        assert body["event_action"] == "acknowledge" and body["dedup_key"] == "deploytui/alert/abc"
        store.close()


def test_rollout_snapshots_become_notifications(tmp_path: Path) -> None:
    from deploytui.notify import RolloutNotifications
    from deploytui.sources.rollout_model import Rollout, RolloutSnapshot

    def snap(phase: str, revision: int) -> RolloutSnapshot:
        r = Rollout(namespace="shop", name="checkout", phase=phase,  # type: ignore[arg-type]
                    message="m", images=(f"x/checkout:1.{revision}.0",), revision=revision,
                    desired=4, current=4, updated=4, ready=4, available=4, service="prod/checkout",
                    env="prod")
        return RolloutSnapshot(rollouts=(r,), loaded=True)

    clock = Clock()
    with WebhookReceiver() as rx:
        settings = make_settings(rx, tmp_path)
        store = open_store(settings, clock)
        notes = RolloutNotifications(StoreNotifier(store, settings.notify, clock=clock))
        assert notes.observe(snap("progressing", 1)) == []       # the baseline: no re-announce
        assert notes.observe(snap("complete", 1)) == ["rollout_completed"]
        assert notes.observe(snap("complete", 1)) == []
        assert notes.observe(snap("progressing", 2)) == ["rollout_started"]
        assert notes.observe(snap("stalled", 2)) == ["rollout_stalled"]
        assert notes.observe(snap("failed", 2)) == ["rollout_failed"]
        assert notes.observe(snap("progressing", 3)) == ["rollout_started"]
        queued = [n for n in store.notifications(limit=50) if n.channel == "ops-slack"]
        assert {n.event for n in queued} == {"rollout_completed", "rollout_started",
                                             "rollout_stalled", "rollout_failed"}
        started = next(n for n in queued if n.event == "rollout_started")
        assert started.payload["version"] == "1.3.0"
        assert render("rollout_started", started.payload).title == \
            "Rollout started: shop/checkout → 1.3.0"
        store.close()
