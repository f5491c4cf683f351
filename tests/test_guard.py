"""The guard's decision logic (pure: observations in, decisions out)."""

from __future__ import annotations

import dataclasses

from deploytui.config import GuardCriterion, GuardSettings
from deploytui.guard import CRITERIA, Guard, Observation, Reading, in_cooldown

T0 = 1_700_000_000.0


def settings(**kw: object) -> GuardSettings:
    fast = GuardCriterion(threshold=10.0, for_seconds=20.0, limit=2)
    base = GuardSettings(
        mode="auto", window_minutes=10, interval_seconds=10, countdown_seconds=5,
        cooldown_minutes=60, error_rate_percent=fast,
        p95_seconds=GuardCriterion(5.0, 20.0, 2), restarts_per_minute=GuardCriterion(0.5, 20.0, 2),
        db_errors_per_minute=GuardCriterion(10.0, 20.0, 2),
        health_failures=GuardCriterion(1.0, 20.0, 2))
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


def healthy(**over: float | None) -> tuple[Reading, ...]:
    values = {"error_rate_percent": 0.5, "p95_seconds": 0.2, "restarts_per_minute": 0.0,
              "db_errors_per_minute": 0.0, "health_failures": 0.0}
    values.update(over)
    return tuple(Reading(c, values[c], "ok" if values[c] is not None else "empty",
                         query=f"q:{c}") for c in CRITERIA)


def obs(t: float, readings: tuple[Reading, ...], revision: int = 2, **kw: object) -> Observation:
    return Observation(ts=T0 + t, revision=revision, readings=readings, armed=True, **kw)  # type: ignore[arg-type]


def test_healthy_rollout_never_trips() -> None:
    g = Guard(settings(), "shop/checkout", started_at=T0)
    for t in range(0, 300, 10):
        d = g.evaluate(obs(t, healthy()))
        assert d.verdict == "healthy" and d.action == "none"
    assert g.failures(2) == {}


def test_error_rate_trips_after_for_seconds_and_limit() -> None:
    g = Guard(settings(), "shop/checkout", started_at=T0)
    verdicts = [g.evaluate(obs(t, healthy(error_rate_percent=42.0))) for t in (0, 10, 20, 30)]
    # above from t=0; for_seconds 20 -> first failed evaluation at t=20, second (limit 2) at t=30
    assert [d.verdict for d in verdicts] == ["failing", "failing", "failing", "tripped"]
    assert [d.results[0].status for d in verdicts] == ["above", "above", "fail", "fail"]
    last = verdicts[-1]
    assert last.tripped_by == ("error_rate_percent",) and last.first_trip
    assert last.action == "rollback"
    assert any("42" in line and "> 10" in line for line in last.evidence())
    assert last.results[0].query == "q:error_rate_percent"
    assert not g.evaluate(obs(40, healthy(error_rate_percent=42.0))).first_trip


def test_dip_below_threshold_restarts_the_clock() -> None:
    g = Guard(settings(), "shop/checkout", started_at=T0)
    g.evaluate(obs(0, healthy(p95_seconds=9.0)))
    g.evaluate(obs(10, healthy(p95_seconds=1.0)))          # back under: clock resets
    d = g.evaluate(obs(20, healthy(p95_seconds=9.0)))
    assert d.results[1].status == "above" and d.results[1].failures == 0


def test_no_data_is_inconclusive_never_healthy() -> None:
    g = Guard(settings(), "shop/checkout", started_at=T0)
    nothing = tuple(Reading(c, None, "error", message="prometheus: connection refused")
                    for c in CRITERIA)
    for t in range(0, 200, 10):
        d = g.evaluate(obs(t, nothing))
        assert d.verdict == "inconclusive" and d.action == "none" and not d.conclusive
    assert "no data" in d.reason
    # one missing figure is enough to withhold "healthy"
    d = g.evaluate(obs(210, healthy(db_errors_per_minute=None)))
    assert d.verdict == "inconclusive"
    nan = g.evaluate(obs(220, (*healthy()[:4], Reading("health_failures", float("nan"), "ok"))))
    assert nan.verdict == "inconclusive"


def test_failures_are_counted_per_revision() -> None:
    g = Guard(settings(), "shop/checkout", started_at=T0)
    bad = healthy(error_rate_percent=50.0)
    for t in (0, 10, 20):
        g.evaluate(obs(t, bad, revision=2))
    assert g.failures(2) == {"error_rate_percent": 1}
    d = g.evaluate(obs(30, bad, revision=3))            # a new revision starts from zero...
    assert g.failures(3) == {"error_rate_percent": 1}   # (the clock says "above for 30 s")
    assert d.verdict == "failing"
    assert g.evaluate(obs(40, bad, revision=3)).verdict == "tripped"


def test_health_failures_trip_at_the_threshold() -> None:
    g = Guard(settings(), "shop/checkout", started_at=T0)
    ds = [g.evaluate(obs(t, healthy(health_failures=1.0))) for t in (0, 10, 20, 30)]
    assert ds[-1].tripped_by == ("health_failures",)


def trip(g: Guard, **kw: object) -> object:
    bad = healthy(error_rate_percent=50.0)
    d = None
    for t in (0, 10, 20, 30):
        d = g.evaluate(obs(t, bad, **kw))
    return d


def test_safety_rules_block_the_rollback() -> None:
    def fresh(**kw: object) -> Guard:
        return Guard(settings(**kw), "shop/checkout", started_at=T0)

    d = trip(fresh(), read_only=True)
    assert d.action == "blocked" and "read-only" in d.reason
    d = trip(fresh(), has_previous=False)
    assert d.action == "blocked" and "no previous revision" in d.reason
    d = trip(fresh(), lock_holder="alice@ops")
    assert d.action == "blocked" and "alice@ops holds the lock" in d.reason
    d = trip(fresh(), last_auto_rollback=T0 - 600)           # 10 min ago, cooldown 60 min
    assert d.action == "blocked" and "cooldown" in d.reason
    d = trip(fresh(), last_auto_rollback=T0 - 3700)          # past the cooldown
    assert d.action == "rollback"
    d = trip(fresh(dry_run=True))
    assert d.action == "dry_run" and "would roll back" in d.reason


def test_modes() -> None:
    assert trip(Guard(settings(mode="propose"), "shop/a", started_at=T0)).action == "propose"
    unarmed = Guard(settings(), "shop/a", started_at=T0)
    d = None
    for t in (0, 10, 20, 30):
        d = unarmed.evaluate(Observation(T0 + t, 2, healthy(error_rate_percent=50.0), armed=False))
    assert d is not None and d.action == "propose" and "not armed" in d.reason
    off = Guard(settings(mode="off"), "shop/a", started_at=T0)
    assert off.evaluate(obs(0, healthy(error_rate_percent=99.0))).verdict == "off"
    # cooldown does not stop a proposal: the operator decides
    d = trip(Guard(settings(mode="propose"), "shop/a", started_at=T0), last_auto_rollback=T0)
    assert d.action == "propose"


def test_window_over() -> None:
    g = Guard(settings(window_minutes=1), "shop/checkout", started_at=T0)
    assert g.evaluate(obs(61, healthy(error_rate_percent=99.0))).verdict == "window_over"


def test_in_cooldown() -> None:
    assert in_cooldown(100.0, 100.0 + 59 * 60, 60)
    assert not in_cooldown(100.0, 100.0 + 61 * 60, 60)
    assert not in_cooldown(None, 100.0, 60)
    assert not in_cooldown(100.0, 101.0, 0)
