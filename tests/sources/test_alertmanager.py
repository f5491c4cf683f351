"""Alertmanager API v2 client against a real Alertmanager (alerts posted to its own API)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from deploytui.config import AlertmanagerSettings
from deploytui.errors import SourceError
from deploytui.sources.alertmanager import (
    AlertmanagerClient,
    Matcher,
    ack_matchers,
    acks_by_fingerprint,
    format_ts,
    parse_ts,
    promql_of,
)
from tests.conftest import free_port
from tests.promstack import PromStack, alertmanager_api, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stack() -> Iterator[PromStack]:
    with PromStack(with_prometheus=False) as s:
        yield s


def post_alert(url: str, **labels: str) -> None:
    now = time.time()
    alertmanager_api(url, "/alerts", method="POST", body=[{
        "labels": labels,
        "annotations": {"summary": f"{labels.get('alertname')} test"},
        "startsAt": format_ts(now - 30), "endsAt": format_ts(now + 600),
        "generatorURL": "http://prom.example/graph?g0.expr=rate%28x%5B5m%5D%29+%3E+1&g0.tab=1",
    }])


def client(url: str, **kw: float) -> AlertmanagerClient:
    return AlertmanagerClient(AlertmanagerSettings(url=url, **kw))


def test_reads_alerts_with_labels_annotations_state_and_promql(stack: PromStack) -> None:
    post_alert(stack.alertmanager_url, alertname="ReadMe", service="cart", env="prod",
               severity="warning", pod="cart-1")
    c = client(stack.alertmanager_url)
    alerts = wait_for(lambda: [a for a in c.alerts() if a.alertname == "ReadMe"],
                      what="the posted alert")
    a = alerts[0]
    assert a.labels["service"] == "cart" and a.severity == "warning"
    assert a.annotations["summary"] == "ReadMe test"
    assert a.state == "active" and a.silenced_by == () and a.inhibited_by == ()
    assert abs(a.starts_at - (time.time() - 30)) < 5
    assert a.promql == "rate(x[5m]) > 1"
    assert a.fingerprint


def test_silence_round_trip_matches_identifying_labels_only(stack: PromStack) -> None:
    post_alert(stack.alertmanager_url, alertname="SilenceMe", service="search", env="prod",
               severity="critical", pod="search-7", instance="10.0.0.7:8080")
    c = client(stack.alertmanager_url)
    alert = wait_for(lambda: [a for a in c.alerts() if a.alertname == "SilenceMe"],
                     what="the posted alert")[0]
    matchers = ack_matchers(alert.labels)
    assert {m.name for m in matchers} == {"alertname", "service", "env"}
    now = time.time()
    sid = c.create_silence(matchers, starts_at=now, ends_at=now + 3600,
                           created_by="alice@host", comment="looking")
    # visible through Alertmanager's own API
    raw = alertmanager_api(stack.alertmanager_url, f"/silence/{sid}")
    assert raw["createdBy"] == "alice@host" and raw["comment"] == "looking"
    assert {m["name"] for m in raw["matchers"]} == {"alertname", "service", "env"}
    # and the alert turns suppressed, silenced by it
    silenced = wait_for(lambda: [a for a in c.alerts() if a.alertname == "SilenceMe"
                                 and a.state == "suppressed"], what="the alert to be suppressed")
    assert silenced[0].silenced_by == (sid,)
    acks = acks_by_fingerprint(silenced, c.silences())
    assert [s.created_by for s in acks[silenced[0].fingerprint]] == ["alice@host"]
    c.expire_silence(sid)
    assert c.silence(sid).state == "expired"
    wait_for(lambda: [a for a in c.alerts() if a.alertname == "SilenceMe"
                      and a.state == "active"], what="the alert to be active again")


def test_alertmanager_down_is_a_clear_source_error() -> None:
    c = client(f"http://127.0.0.1:{free_port()}", timeout=2)
    with pytest.raises(SourceError) as info:
        c.alerts()
    assert info.value.kind == "refused"
    assert "is Alertmanager running?" in str(info.value)


def test_bad_silence_is_reported_with_alertmanagers_reason(stack: PromStack) -> None:
    c = client(stack.alertmanager_url)
    now = time.time()
    with pytest.raises(SourceError) as info:
        c.create_silence((Matcher("alertname", "X"),), starts_at=now, ends_at=now - 60,
                         created_by="bob", comment="backwards")
    assert info.value.kind == "http" and "400" in str(info.value)


def test_timestamps_and_generator_urls() -> None:
    assert parse_ts("2026-11-23T12:58:33.703Z") == pytest.approx(1795438713.703)
    assert parse_ts("2026-11-23T12:58:33.703123456Z") == pytest.approx(1795438713.703123)
    assert parse_ts("") == 0.0
    assert parse_ts(format_ts(1795438713.5)) == pytest.approx(1795438713.5)
    assert promql_of("http://p:9090/graph?g0.expr=up+%3D%3D+0&g0.tab=1") == "up == 0"
    assert promql_of("") == ""
    with pytest.raises(ValueError):
        ack_matchers({"service": "x"})
