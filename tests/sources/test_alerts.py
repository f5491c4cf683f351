"""The alert feed end to end: the simulated fleet, a real Prometheus evaluating rules, a real
Alertmanager; acknowledgements as silences, read back from Alertmanager."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from types import MappingProxyType

import pytest

from deploytui.actions.ack import AckAction, UnackAction
from deploytui.actions.door import ActionDoor
from deploytui.config import (
    AlertmanagerSettings,
    Levels,
    PrometheusSettings,
    RulesSettings,
    Settings,
    load_config,
)
from deploytui.demo.fleet import Fleet
from deploytui.model import MemoryJournal
from deploytui.rules import RuleAlert
from deploytui.sources.alertmanager import AlertmanagerClient, AmAlert, format_ts
from deploytui.sources.alerts import (
    Ack,
    Alert,
    AlertFilter,
    AlertsSnapshot,
    AlertsSource,
    MemoryRuleAckStore,
    apply_filter,
    build_rows,
    escalation,
    filter_presets,
    merge_alerts,
    section_from,
    snapshot_section,
    strip_comparison,
)
from deploytui.sources.prometheus import PrometheusMetrics
from tests.conftest import free_port
from tests.promstack import PromStack, alertmanager_api, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    with Fleet(services=6, kubernetes=False, seed=11) as f:
        f.steer("checkout", "prod", error_rate=0.6)
        yield f


@pytest.fixture(scope="module")
def stack(fleet: Fleet) -> Iterator[PromStack]:
    with PromStack(targets=[fleet.metrics_all_url]) as s:
        yield s


def make_settings(fleet: Fleet, prom_url: str, am_url: str, **rules: object) -> Settings:
    base = load_config(fleet.config_path)
    return base.with_changes(
        prometheus=PrometheusSettings(url=prom_url, timeout=3.0),
        alertmanager=AlertmanagerSettings(url=am_url, timeout=3.0, ack_minutes=30,
                                          ack_comment="on it"),
        rules=RulesSettings(**rules) if rules else base.rules)  # type: ignore[arg-type]


def source_for(settings: Settings, journal: MemoryJournal | None = None,
               rule_acks: MemoryRuleAckStore | None = None) -> AlertsSource:
    return AlertsSource(settings, metrics=PrometheusMetrics(settings),
                        alertmanager=AlertmanagerClient(settings.alertmanager),
                        rule_acks=rule_acks or MemoryRuleAckStore(), journal=journal)


def poll(source: AlertsSource) -> AlertsSnapshot:
    return asyncio.run(source.poll())


def find(snap: AlertsSnapshot, alertname: str, service: str) -> Alert | None:
    for a in snap.alerts:
        if a.alertname == alertname and a.service == service:
            return a
    return None


def wait_alert(source: AlertsSource, alertname: str, service: str, what: str,
               check=lambda a: True) -> Alert:  # type: ignore[no-untyped-def]
    def probe() -> Alert | None:
        a = find(poll(source), alertname, service)
        return a if a is not None and check(a) else None
    return wait_for(probe, timeout=60, interval=0.5, what=what)


def test_a_prometheus_rule_fires_and_appears_in_the_feed(fleet: Fleet, stack: PromStack) -> None:
    journal = MemoryJournal()
    source = source_for(make_settings(fleet, stack.prometheus_url, stack.alertmanager_url),
                        journal)
    a = wait_alert(source, "ServiceErrorRateHigh", "checkout", "the error-rate rule to fire")
    assert a.origin == "alertmanager" and a.env == "prod" and a.severity == "critical"
    assert a.state == "firing" and not a.acked
    assert "checkout in prod answers" in a.summary
    assert "http_requests_total" in a.promql and a.promql.rstrip().endswith("> 20")
    assert a.priority == "P1"
    assert a.annotations["runbook"].startswith("https://")
    snap = poll(source)
    assert snap.errors == {} and snap.metrics is not None and snap.metrics.source == "prometheus"
    # the metrics ride along for the guard and the health detail
    assert snap.metrics.value("checkout", "error_rate_pct", "prod").ok
    from types import SimpleNamespace

    from deploytui.sources.alerts import latest_metrics

    runtime = SimpleNamespace(extras={}, sources={"alerts": source})
    assert latest_metrics(runtime) is snap.metrics
    assert snap.counts["critical"] >= 1
    esc = snap.escalation(snap.find(a.fingerprint))  # type: ignore[arg-type]
    assert esc is not None and esc.level == 1 and esc.priority == "P1"
    assert any(e.kind == "alert_firing" and "ServiceErrorRateHigh" in e.summary
               for e in journal.events)
    # the sparkline is the PromQL's value over time, without the comparison
    points = asyncio.run(source.sparkline(a, minutes=2, points=30))
    assert points and all(v > 20 for _, v in points[-3:])


def test_ack_creates_a_silence_and_the_alert_turns_suppressed(fleet: Fleet,
                                                              stack: PromStack) -> None:
    journal = MemoryJournal()
    settings = make_settings(fleet, stack.prometheus_url, stack.alertmanager_url)
    source = source_for(settings, journal)
    a = wait_alert(source, "ServiceErrorRateHigh", "checkout", "the error-rate rule to fire",
                   lambda a: not a.acked)
    door = ActionDoor(operator="alice@console", audit=journal, timeline=journal)
    action = AckAction(a, comment="rolling back", minutes=30, alertmanager=source.alertmanager,
                       timeline=journal)
    plan = door.plan(action)
    assert any('alertname="ServiceErrorRateHigh"' in c and 'service="checkout"' in c
               for c in plan.changes)
    result = door.run(action, plan)
    assert result.ok, result.message
    sid = result.after["silence_id"]
    # visible through Alertmanager's own API, authored by the operator
    raw = alertmanager_api(stack.alertmanager_url, f"/silence/{sid}")
    assert raw["createdBy"] == "alice@console" and raw["comment"] == "rolling back"
    assert raw["status"]["state"] == "active"
    assert {m["name"]: m["value"] for m in raw["matchers"]} == {
        "alertname": "ServiceErrorRateHigh", "service": "checkout", "env": "prod"}
    assert 29 * 60 < _ts(raw["endsAt"]) - _ts(raw["startsAt"]) <= 30 * 60 + 1
    acked = wait_alert(source, "ServiceErrorRateHigh", "checkout", "the alert to be suppressed",
                       lambda a: a.state == "suppressed")
    assert acked.ack is not None and acked.ack.by == "alice@console"
    assert acked.ack.silence_ids == (sid,) and acked.ack.comment == "rolling back"
    assert escalation(acked, time.time(), {"P1": 15}) is None
    # audited and on the timeline
    assert [(r.action, r.status, r.deployer) for r in journal.audit] == [
        ("ack", "ok", "alice@console")]
    assert any(e.kind == "ack" and e.actor == "alice@console" for e in journal.events)
    assert any(e.kind == "action" and "Acknowledge" in e.summary for e in journal.events)
    # a second ack is refused: nothing to do
    again = door.run(AckAction(acked, comment="x", minutes=5, alertmanager=source.alertmanager))
    assert not again.ok and "already acknowledged by alice@console" in again.message

    # un-ack: the silence is expired and the alert fires again
    un = door.run(UnackAction(acked, alertmanager=source.alertmanager, timeline=journal))
    assert un.ok, un.message
    assert alertmanager_api(stack.alertmanager_url, f"/silence/{sid}")["status"]["state"] \
        == "expired"
    back = wait_alert(source, "ServiceErrorRateHigh", "checkout", "the alert to fire again",
                      lambda a: a.state == "firing")
    assert back.ack is None
    assert [(r.action, r.status) for r in journal.audit] == [
        ("ack", "ok"), ("ack", "refused"), ("unack", "ok")]


def test_an_ack_made_in_alertmanager_directly_shows(fleet: Fleet, stack: PromStack) -> None:
    settings = make_settings(fleet, stack.prometheus_url, stack.alertmanager_url)
    source = source_for(settings)
    wait_alert(source, "AlwaysFiringWarning", "cart", "the cart rule to fire")
    now = time.time()
    created = alertmanager_api(stack.alertmanager_url, "/silences", method="POST", body={
        "matchers": [{"name": "alertname", "value": "AlwaysFiringWarning", "isRegex": False,
                      "isEqual": True},
                     {"name": "service", "value": "car.*", "isRegex": True, "isEqual": True}],
        "startsAt": format_ts(now), "endsAt": format_ts(now + 600),
        "createdBy": "carol (Alertmanager UI)", "comment": "known, ticket OPS-12"})
    try:
        a = wait_alert(source, "AlwaysFiringWarning", "cart", "the external ack to show",
                       lambda a: a.acked)
        assert a.ack is not None and a.ack.by == "carol (Alertmanager UI)"
        assert a.ack.comment == "known, ticket OPS-12"
        assert abs(a.ack.at - now) < 5 and abs(a.ack.until - (now + 600)) < 5
        assert a.state == "suppressed"
        rows = build_rows([a], time.time(), {})
        assert rows[0].acked and "ack carol" in rows[0].cells[6]
    finally:
        alertmanager_api(stack.alertmanager_url, f"/silence/{created['silenceID']}",
                         method="DELETE")


def test_read_only_refuses_the_ack(fleet: Fleet, stack: PromStack) -> None:
    journal = MemoryJournal()
    settings = make_settings(fleet, stack.prometheus_url, stack.alertmanager_url)
    source = source_for(settings)
    a = wait_alert(source, "AlwaysFiringWarning", "cart", "the cart rule to fire",
                   lambda a: not a.acked)
    before = len(alertmanager_api(stack.alertmanager_url, "/silences"))
    door = ActionDoor(operator="dave", read_only=True, audit=journal, timeline=journal)
    result = door.run(AckAction(a, comment="x", minutes=5, alertmanager=source.alertmanager))
    assert not result.ok and "read-only" in result.message
    assert len(alertmanager_api(stack.alertmanager_url, "/silences")) == before
    assert [(r.action, r.status) for r in journal.audit] == [("ack", "refused")]


def test_our_threshold_rules_fire_and_are_acknowledged_locally(fleet: Fleet,
                                                               stack: PromStack) -> None:
    journal = MemoryJournal()
    acks = MemoryRuleAckStore()
    settings = make_settings(
        fleet, stack.prometheus_url, stack.alertmanager_url, for_seconds=0.0,
        error_rate_percent=Levels(1.0, 5.0, 10.0))
    source = source_for(settings, journal, acks)
    a = wait_alert(source, "HighErrorRate", "checkout", "our error-rate rule to fire",
                   lambda a: a.level == "Rollback")
    assert a.origin == "rule" and a.severity == "critical" and a.env == "prod"
    assert a.metric == "error_rate_pct" and a.value is not None and a.value > 10
    assert a.threshold == 10.0 and a.fingerprint.startswith("rule:")
    snap = poll(source)
    assert len(snap.history[a.fingerprint]) >= 2
    assert asyncio.run(source.sparkline(a))
    door = ActionDoor(operator="erin", audit=journal, timeline=journal)
    result = door.run(AckAction(a, comment="mine", minutes=10, rule_acks=acks))
    assert result.ok, result.message
    acked = find(poll(source), "HighErrorRate", "checkout")
    assert acked is not None and acked.ack is not None and acked.ack.by == "erin"
    assert acked.ack.origin == "local" and acked.state == "suppressed"
    # nothing was sent to Alertmanager for a rule alert
    assert not [s for s in alertmanager_api(stack.alertmanager_url, "/silences")
                if s["createdBy"] == "erin"]
    assert door.run(UnackAction(acked, rule_acks=acks)).ok
    assert find(poll(source), "HighErrorRate", "checkout").ack is None  # type: ignore[union-attr]


def test_alertmanager_down_shows_as_such_and_keeps_the_metrics(fleet: Fleet,
                                                               stack: PromStack) -> None:
    settings = make_settings(fleet, stack.prometheus_url, f"http://127.0.0.1:{free_port()}")
    snap = poll(source_for(settings))
    assert "alertmanager" in snap.errors and "is Alertmanager running?" in snap.errors["alertmanager"]
    assert snap.stale and snap.error is None      # Prometheus still answers
    assert snap.metrics is not None and snap.metrics.error is None
    section = section_from(snap)
    assert not section.ok and section.summary["alertmanager_error"]


def test_prometheus_down_shows_as_such(fleet: Fleet, stack: PromStack) -> None:
    settings = make_settings(fleet, f"http://127.0.0.1:{free_port()}", stack.alertmanager_url)
    snap = poll(source_for(settings))
    assert "is Prometheus running?" in snap.errors["prometheus"]
    assert snap.metrics is not None
    assert snap.metrics.value("cart", "p95_s", "prod").state == "error"
    # both down: the source as a whole could not be read
    settings = make_settings(fleet, f"http://127.0.0.1:{free_port()}",
                             f"http://127.0.0.1:{free_port()}")
    snap = poll(source_for(settings))
    assert snap.error is not None and "Prometheus" in snap.error and "Alertmanager" in snap.error


def test_snapshot_section_lists_rows_states_and_figures(fleet: Fleet, stack: PromStack) -> None:
    settings = make_settings(fleet, stack.prometheus_url, stack.alertmanager_url)
    wait_alert(source_for(settings), "ServiceErrorRateHigh", "checkout", "the rule to fire")
    section = asyncio.run(snapshot_section(settings))
    assert section.configured and section.error is None and not section.ok
    row = next(r for r in section.rows if r["alertname"] == "ServiceErrorRateHigh")
    assert row["service"] == "checkout" and row["severity"] == "critical"
    assert row["state"] == "firing" and row["escalation"].startswith("L1 P1")
    assert section.summary["metrics"] == "prometheus" and section.summary["critical"] >= 1
    assert json.loads(json.dumps(section.to_json(), default=str))["rows"]


# --- pure feed logic (no servers) ---------------------------------------------------------------


def _am(fp: str, name: str, service: str, env: str = "prod", severity: str = "warning",
        starts: float = 1000.0, pod: str = "", silenced: tuple[str, ...] = ()) -> AmAlert:
    labels = {"alertname": name, "service": service, "env": env, "severity": severity}
    if pod:
        labels["pod"] = pod
    return AmAlert(fp, MappingProxyType(labels), MappingProxyType({"summary": f"{name} {pod}"}),
                   starts, 0.0, starts, "suppressed" if silenced else "active", silenced)


def test_grouping_dedup_and_order() -> None:
    alerts = merge_alerts(
        [_am("a1", "PodCrash", "cart", pod="cart-1", starts=100),
         _am("a2", "PodCrash", "cart", pod="cart-2", severity="critical", starts=200),
         _am("a2", "PodCrash", "cart", pod="cart-2", severity="critical", starts=200),  # HA dup
         _am("b1", "PodCrash", "cart", env="staging", starts=300),
         _am("c1", "Latency", "search", starts=50)],
        [], [], {}, now=1000.0)
    assert [(a.alertname, a.service, a.env, a.count) for a in alerts] == [
        ("PodCrash", "cart", "staging", 1), ("PodCrash", "cart", "prod", 2),
        ("Latency", "search", "prod", 1)]
    grouped = alerts[1]
    assert grouped.severity == "critical" and grouped.fingerprint == "a2"
    assert grouped.starts_at == 100 and set(grouped.fingerprints) == {"a1", "a2"}
    # the silence an ack would create matches the group, not one pod
    assert {m.name for m in grouped.matchers} == {"alertname", "service", "env"}


def test_rule_alerts_merge_and_local_acks_expire() -> None:
    rule = RuleAlert("rule:1", "HighMemory", "cart", "prod", "memory_pct",
                     __import__("deploytui.rules", fromlist=["Level"]).Level.WARNING, 75.0, 70.0,
                     500.0, "memory")
    live = merge_alerts([], [], [rule], {"rule:1": Ack("x", 600, 2000, "c", (), "local")}, 1000)
    assert live[0].acked and live[0].state == "suppressed"
    expired = merge_alerts([], [], [rule], {"rule:1": Ack("x", 600, 900, "c", (), "local")}, 1000)
    assert not expired[0].acked and expired[0].state == "firing"


def test_escalation_levels_follow_the_response_matrix() -> None:
    a = merge_alerts([_am("x", "Down", "checkout", severity="critical", starts=0.0)],
                     [], [], {}, 0.0)[0]
    minutes = {"P1": 15.0, "P2": 60.0, "P3": 240.0}
    assert a.priority == "P1"
    levels = [(e.level, e.due_in_s) for e in
              (escalation(a, t * 60.0, minutes) for t in (0, 14, 15, 29, 30, 59, 60, 500))
              if e is not None]
    assert levels == [(1, 900.0), (1, 60.0), (2, 900.0), (2, 60.0), (3, 1800.0), (3, 60.0),
                      (4, None), (4, None)]
    staging = merge_alerts([_am("y", "Down", "checkout", env="staging", severity="critical",
                                starts=0.0)], [], [], {}, 0.0)[0]
    assert staging.priority == "P2"
    assert escalation(staging, 3600.0, minutes).level == 2  # type: ignore[union-attr]
    warning = merge_alerts([_am("z", "Slow", "cart", starts=0.0)], [], [], {}, 0.0)[0]
    assert escalation(warning, 99999.0, minutes) is None


def test_filters_and_rows() -> None:
    alerts = merge_alerts(
        [_am("1", "A", "cart", severity="critical", starts=10),
         _am("2", "B", "cart", env="staging", starts=20),
         _am("3", "C", "search", starts=30, silenced=("s1",))], [], [], {}, 100.0)
    presets = filter_presets(alerts)
    assert presets[0] == AlertFilter() and AlertFilter(env="staging") in presets
    assert [a.alertname for a in apply_filter(alerts, AlertFilter(severity="critical"))] == ["A"]
    assert [a.alertname for a in apply_filter(alerts, AlertFilter(env="staging"))] == ["B"]
    assert [a.alertname for a in apply_filter(alerts, AlertFilter(acked=False))] == ["C", "B", "A"]
    rows = build_rows(alerts, 100.0, {"P1": 15})
    assert rows[-1].cells[:3] == ("✖", "critical", "A") and rows[-1].escalation_level == 1
    assert rows[0].suppressed and rows[-1].cells[5] == "1m"  # ages to the minute: no redraw every second
    assert strip_comparison("sum(rate(x[5m])) > 20") == "sum(rate(x[5m]))"


def _ts(text: str) -> float:
    from deploytui.sources.alertmanager import parse_ts

    return parse_ts(text)
