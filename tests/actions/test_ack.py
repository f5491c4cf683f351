"""Acknowledge / un-acknowledge through the action door, against a real Alertmanager."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from deploytui.actions.ack import AckAction, UnackAction, ack_action, unack_action
from deploytui.config import AlertmanagerSettings, ConsoleSettings, Settings
from deploytui.model import MemoryJournal
from deploytui.rules import Level, RuleAlert
from deploytui.runtime import Runtime, build_runtime
from deploytui.sources import alerts as alerts_mod
from deploytui.sources.alertmanager import AlertmanagerClient, format_ts
from deploytui.sources.alerts import Alert, AlertsSource, MemoryRuleAckStore, merge_alerts
from tests.conftest import free_port
from tests.promstack import PromStack, alertmanager_api, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stack() -> Iterator[PromStack]:
    with PromStack(with_prometheus=False) as s:
        yield s


def post_alert(url: str, name: str, service: str) -> None:
    now = time.time()
    alertmanager_api(url, "/alerts", method="POST", body=[{
        "labels": {"alertname": name, "service": service, "env": "prod", "severity": "critical",
                   "pod": f"{service}-0"},
        "annotations": {"summary": f"{service} is on fire"},
        "startsAt": format_ts(now - 60), "endsAt": format_ts(now + 600)}])


def runtime_for(am_url: str, *, read_only: bool = False) -> Runtime:
    settings = Settings(console=ConsoleSettings(read_only=read_only, operator="olive@ops"),
                        alertmanager=AlertmanagerSettings(url=am_url, ack_minutes=45,
                                                          ack_comment="seen, investigating"))
    rt = build_runtime(settings, journal=MemoryJournal(), with_sources=False)
    source = alerts_mod.make_source(rt)
    assert source is not None
    rt.sources["alerts"] = source
    return rt


def feed_alert(rt: Runtime, name: str, check=lambda a: True) -> Alert:  # type: ignore[no-untyped-def]
    source: AlertsSource = rt.sources["alerts"]

    def probe() -> Alert | None:
        snap = asyncio.run(source.poll())
        return next((a for a in snap.alerts if a.alertname == name and check(a)), None)
    return wait_for(probe, timeout=30, interval=0.3, what=f"{name} in the feed")


def test_ack_uses_the_configured_defaults_and_the_operator(stack: PromStack) -> None:
    post_alert(stack.alertmanager_url, "AckDefaults", "payments")
    rt = runtime_for(stack.alertmanager_url)
    alert = feed_alert(rt, "AckDefaults")
    assert alerts_mod.latest_metrics(rt) is None  # no metrics source configured, only AM
    action = ack_action(rt, alert)
    assert isinstance(action, AckAction) and action.id == "ack"
    result = rt.door.run(action)
    assert result.ok, result.message
    raw = alertmanager_api(stack.alertmanager_url, f"/silence/{result.after['silence_id']}")
    assert raw["createdBy"] == "olive@ops" and raw["comment"] == "seen, investigating"
    assert raw["matchers"] and "pod" not in {m["name"] for m in raw["matchers"]}
    acked = feed_alert(rt, "AckDefaults", lambda a: a.acked)
    assert acked.ack is not None and acked.ack.by == "olive@ops"
    assert 44 * 60 < acked.ack.until - acked.ack.at <= 45 * 60 + 1
    journal: MemoryJournal = rt.journal
    assert [(r.action, r.status, r.deployer, r.target) for r in journal.audit] == [
        ("ack", "ok", "olive@ops", alert.fingerprint)]
    assert [e.kind for e in journal.events if e.kind in ("ack", "action")] == ["ack", "action"]
    un = unack_action(rt, acked)
    assert un.id == "unack"
    assert rt.door.run(un).ok
    feed_alert(rt, "AckDefaults", lambda a: not a.acked and a.state == "firing")


def test_read_only_refuses_ack_and_unack(stack: PromStack) -> None:
    post_alert(stack.alertmanager_url, "ReadOnlyAck", "auth")
    rt = runtime_for(stack.alertmanager_url, read_only=True)
    alert = feed_alert(rt, "ReadOnlyAck")
    before = alertmanager_api(stack.alertmanager_url, "/silences")
    for action in (ack_action(rt, alert), unack_action(rt, alert)):
        result = rt.door.run(action)
        assert not result.ok and "read-only" in result.message
    assert alertmanager_api(stack.alertmanager_url, "/silences") == before
    assert [(r.action, r.status) for r in rt.journal.audit] == [("ack", "refused"),
                                                                ("unack", "refused")]


def test_unack_of_an_unacknowledged_alert_is_refused(stack: PromStack) -> None:
    post_alert(stack.alertmanager_url, "NotAcked", "cart")
    rt = runtime_for(stack.alertmanager_url)
    alert = feed_alert(rt, "NotAcked", lambda a: not a.acked)
    result = rt.door.run(unack_action(rt, alert))
    assert not result.ok and "is not acknowledged" in result.message


def test_alertmanager_down_at_ack_time_fails_cleanly(stack: PromStack) -> None:
    post_alert(stack.alertmanager_url, "AmGone", "search")
    rt = runtime_for(stack.alertmanager_url)
    alert = feed_alert(rt, "AmGone")
    dead = AlertmanagerClient(AlertmanagerSettings(url=f"http://127.0.0.1:{free_port()}",
                                                   timeout=1.0))
    result = rt.door.run(AckAction(alert, comment="x", minutes=5, alertmanager=dead))
    assert not result.ok and "could not create the silence" in result.message
    assert "is Alertmanager running?" in result.message
    assert [(r.action, r.status) for r in rt.journal.audit] == [("ack", "failed")]


def test_rule_alerts_are_acknowledged_in_the_local_store() -> None:
    rt = build_runtime(Settings(console=ConsoleSettings(operator="pat")), journal=MemoryJournal(),
                       with_sources=False)
    store = alerts_mod.rule_ack_store(rt)
    assert isinstance(store, MemoryRuleAckStore) and alerts_mod.rule_ack_store(rt) is store
    rule = RuleAlert("rule:abc", "HighErrorRate", "checkout", "prod", "error_rate_pct",
                     Level.CRITICAL, 7.0, 5.0, time.time() - 60, "error rate")
    alert = merge_alerts([], [], [rule], store.rule_acks(), time.time())[0]
    result = rt.door.run(ack_action(rt, alert, comment="mine", minutes=20))
    assert result.ok, result.message
    ack = store.rule_acks()["rule:abc"]
    assert ack.by == "pat" and ack.comment == "mine" and ack.origin == "local"
    acked = merge_alerts([], [], [rule], store.rule_acks(), time.time())[0]
    assert acked.acked and acked.state == "suppressed"
    assert rt.door.run(UnackAction(acked, rule_acks=store)).ok
    assert store.rule_acks() == {}
    # without Alertmanager configured, its alerts cannot be acknowledged
    am_alert = Alert("fp", "alertmanager", "X", "s", "prod", "critical", "", 0.0, "firing")
    refused = rt.door.run(ack_action(rt, am_alert))
    assert not refused.ok and "Alertmanager is not configured" in refused.message


def test_rule_acks_live_in_the_sqlite_store_when_there_is_one(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from deploytui.config import StoreSettings
    from deploytui.store import open_store

    settings = Settings(console=ConsoleSettings(operator="quinn"),
                        store=StoreSettings(path=str(tmp_path / "d.db")))
    store = open_store(settings)
    try:
        rt = build_runtime(settings, journal=store, with_sources=False)
        acks = alerts_mod.rule_ack_store(rt)
        assert isinstance(acks, alerts_mod.StoreRuleAcks)
        rule = RuleAlert("rule:def", "HighMemory", "cart", "prod", "memory_pct",
                         Level.WARNING, 80.0, 70.0, time.time() - 60, "memory")
        alert = merge_alerts([], [], [rule], acks.rule_acks(), time.time())[0]
        assert rt.door.run(ack_action(rt, alert, comment="known leak", minutes=15)).ok
        # a second console on the same store sees it
        again = open_store(settings)
        try:
            seen = alerts_mod.StoreRuleAcks(again).rule_acks()["rule:def"]
            assert seen.by == "quinn" and seen.comment == "known leak"
        finally:
            again.close()
        acked = merge_alerts([], [], [rule], acks.rule_acks(), time.time())[0]
        assert rt.door.run(unack_action(rt, acked)).ok
        assert acks.rule_acks() == {}
        assert sorted(a.action for a in store.audit()) == ["ack", "unack"]
    finally:
        store.close()
