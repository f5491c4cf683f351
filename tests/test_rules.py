"""Threshold rules on synthetic series: levels, ``for`` durations, hysteresis. Pure, no I/O."""

from __future__ import annotations

import math

from deploytui.config import RulesSettings
from deploytui.rules import (
    Level,
    Rule,
    RuleEngine,
    RuleState,
    evaluate,
    raw_level,
    rule_fingerprint,
    rules_from_settings,
    step,
)

ERR = Rule("error_rate_pct", "HighErrorRate", 1.0, 5.0, 10.0, for_seconds=60, hysteresis=0.1)
MEM = Rule("memory_pct", "HighMemory", 70.0, 90.0, None, for_seconds=0, hysteresis=0.1)


def series(values: list[float | None], start: float = 1000.0, every: float = 15.0):
    return [(start + i * every, v) for i, v in enumerate(values)]


def levels_over(values: list[float | None], rule: Rule = ERR, every: float = 15.0) -> list[Level]:
    st = RuleState()
    out = []
    for ts, v in series(values, every=every):
        st = step(st, ts, v, rule)
        out.append(st.level)
    return out


def test_defaults_follow_the_seed_thresholds() -> None:
    rules = {r.metric: r for r in rules_from_settings(RulesSettings())}
    assert (rules["error_rate_pct"].warning, rules["error_rate_pct"].critical,
            rules["error_rate_pct"].rollback) == (1.0, 5.0, 10.0)
    assert (rules["p95_s"].warning, rules["p95_s"].critical, rules["p95_s"].rollback) == (0.5, 2.0, 5.0)
    assert (rules["memory_pct"].warning, rules["memory_pct"].critical, rules["memory_pct"].rollback) \
        == (70.0, 90.0, None)
    assert (rules["restarts_per_min"].warning, rules["restarts_per_min"].critical) == (0.1, 0.5)
    assert rules["memory_pct"].levels == (Level.WARNING, Level.CRITICAL)


def test_raw_level_is_strictly_above_the_threshold() -> None:
    assert raw_level(ERR, 1.0) == Level.NORMAL
    assert raw_level(ERR, 1.01) == Level.WARNING
    assert raw_level(ERR, 5.5) == Level.CRITICAL
    assert raw_level(ERR, 50) == Level.ROLLBACK
    assert raw_level(MEM, 500) == Level.CRITICAL  # no rollback level for memory


def test_a_level_fires_only_after_holding_for_its_duration() -> None:
    # every 15 s; for = 60 s: above from t=0, so fires at the 5th sample (t=60)
    got = levels_over([2, 2, 2, 2, 2, 2])
    assert got == [Level.NORMAL] * 4 + [Level.WARNING] * 2


def test_a_dip_below_restarts_the_for_timer() -> None:
    got = levels_over([2, 2, 2, 0.5, 2, 2, 2, 2, 2])
    assert Level.WARNING not in got[:8]
    assert got[8] == Level.WARNING


def test_for_zero_fires_on_the_first_sample_above() -> None:
    assert levels_over([75.0], MEM) == [Level.WARNING]
    assert levels_over([95.0], MEM) == [Level.CRITICAL]


def test_escalation_each_level_has_its_own_timer() -> None:
    # warning from t=0, critical from t=45: warning fires at t=60, critical at t=105
    got = levels_over([2, 2, 2, 6, 6, 6, 6, 6, 6])
    assert got[4] == Level.WARNING
    assert got[6] == Level.WARNING
    assert got[7] == Level.CRITICAL


def test_straight_to_rollback_after_the_duration() -> None:
    got = levels_over([12, 12, 12, 12, 12])
    assert got[:4] == [Level.NORMAL] * 4
    assert got[4] == Level.ROLLBACK


def test_hysteresis_holds_a_level_until_the_value_falls_below_the_band() -> None:
    # memory warning at 70, hysteresis 10 %: holds down to 63 (exclusive)
    got = levels_over([75, 69, 64, 63.5, 63, 75], MEM)
    assert got == [Level.WARNING, Level.WARNING, Level.WARNING, Level.WARNING, Level.NORMAL,
                   Level.WARNING]


def test_flapping_around_a_threshold_fires_once() -> None:
    rule = Rule("error_rate_pct", "HighErrorRate", 1.0, 5.0, 10.0, for_seconds=30, hysteresis=0.2)
    values = [1.2, 0.95, 1.1, 0.9, 1.3, 0.85, 1.05, 0.99] * 10
    engine = RuleEngine([rule])
    fired = 0
    for ts, v in series(values, every=20):
        for t in engine.observe(ts, [("checkout", "prod", {"error_rate_pct": v})]):
            fired += not t.resolved
    # never 30 s continuously above 1.0, so it never fires at all ...
    assert fired == 0
    # ... and once it holds long enough it fires once and stays through the wobble
    engine = RuleEngine([rule])
    transitions = []
    for ts, v in series([1.5, 1.5, 1.5, *values], every=20):
        transitions += engine.observe(ts, [("checkout", "prod", {"error_rate_pct": v})])
    assert [(t.previous, t.alert.level) for t in transitions] == [(Level.NORMAL, Level.WARNING)]


def test_de_escalation_drops_to_the_highest_level_still_held() -> None:
    got = levels_over([6, 6, 6, 6, 6, 4.6, 3, 0.5], ERR)
    assert got[4] == Level.CRITICAL
    assert got[5] == Level.CRITICAL      # 4.6 > 5 * 0.9 = 4.5: still held
    assert got[6] == Level.WARNING       # 3 is below the critical band, above warning
    assert got[7] == Level.NORMAL


def test_missing_and_nan_samples_change_nothing() -> None:
    st = evaluate(series([2, 2, 2, 2, 2]), ERR)
    assert st.level == Level.WARNING
    after = step(step(st, 2000.0, None, ERR), 2015.0, math.nan, ERR)
    assert after == st


def test_evaluate_over_a_window_equals_stepping() -> None:
    values = [0.2, 3, 3, 3, 3, 3, 7, 7, 7, 7, 7, 2, 0.1]
    st = RuleState()
    for ts, v in series(values):
        st = step(st, ts, v, ERR)
    assert evaluate(series(values), ERR) == st


def test_engine_reports_alerts_history_and_resolution() -> None:
    engine = RuleEngine(rules_from_settings(RulesSettings(for_seconds=0)))
    t = engine.observe(100.0, [("checkout", "prod", {"error_rate_pct": 6.0, "memory_pct": 40.0}),
                               ("cart", "prod", {"error_rate_pct": 0.1})])
    assert [(x.alert.service, x.alert.alertname, x.alert.level) for x in t] == \
        [("checkout", "HighErrorRate", Level.CRITICAL)]
    alerts = engine.alerts()
    assert len(alerts) == 1
    a = alerts[0]
    assert a.fingerprint == rule_fingerprint("HighErrorRate", "checkout", "prod")
    assert a.severity == "critical" and a.threshold == 5.0 and a.value == 6.0 and a.since == 100.0
    engine.observe(110.0, [("checkout", "prod", {"error_rate_pct": 7.0})])
    assert engine.history("checkout", "prod", "error_rate_pct") == ((100.0, 6.0), (110.0, 7.0))
    t = engine.observe(120.0, [("checkout", "prod", {"error_rate_pct": 0.2})])
    assert len(t) == 1 and t[0].resolved and t[0].previous == Level.CRITICAL
    assert engine.alerts() == []
