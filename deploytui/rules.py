"""Threshold rules: a figure -> a level (Normal / Warning / Critical / Rollback). Pure, no I/O.

How a level is reached and left (``[rules]`` in the config):

* A level is **reached** when the value is *above* its threshold (``value > threshold``, the
  seed's "restarts > 0.1 per min") continuously for ``for_seconds``. Samples are what the
  sources publish; the time between them counts as "continuously" as long as every sample is
  above. ``for_seconds = 0`` fires on the first sample above.
* A level that fired is **held** while the value stays above ``threshold * (1 - hysteresis)``;
  once it falls to or below that, the level drops at once to the highest lower level still
  held (or reached), so a value wobbling around a threshold does not fire and clear every poll.
* A missing or NaN sample changes nothing (no data is neither better nor worse).

:func:`step` is the whole state machine on frozen :class:`RuleState`; :func:`evaluate` folds it
over a window of samples; :class:`RuleEngine` keeps one state and a short history per
(service, metric) for the alert feed, and reports transitions.
"""

from __future__ import annotations

import enum
import hashlib
import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from deploytui.config import Levels, RulesSettings

__all__ = [
    "RULE_METRICS",
    "Level",
    "Rule",
    "RuleAlert",
    "RuleEngine",
    "RuleState",
    "RuleTransition",
    "evaluate",
    "raw_level",
    "rule_fingerprint",
    "rules_from_settings",
    "step",
]


class Level(enum.IntEnum):
    NORMAL = 0
    WARNING = 1
    CRITICAL = 2
    ROLLBACK = 3

    @property
    def word(self) -> str:
        return self.name.capitalize()

    @property
    def severity(self) -> str:
        """The alert severity of this level (Rollback is a critical alert)."""
        return ("info", "warning", "critical", "critical")[self]


#: config key in [rules] -> (metric name in MetricsSnapshot, alertname, text)
RULE_METRICS: Mapping[str, tuple[str, str, str]] = MappingProxyType({
    "error_rate_percent": ("error_rate_pct", "HighErrorRate", "error rate"),
    "p95_seconds": ("p95_s", "HighLatencyP95", "p95 latency"),
    "memory_percent": ("memory_pct", "HighMemory", "memory of limit"),
    "restarts_per_minute": ("restarts_per_min", "CrashLooping", "container restarts per minute"),
})


@dataclass(frozen=True)
class Rule:
    """Thresholds for one metric. ``rollback`` None means the metric has no Rollback level."""

    metric: str
    alertname: str
    warning: float
    critical: float
    rollback: float | None = None
    for_seconds: float = 60.0
    hysteresis: float = 0.1
    text: str = ""

    @classmethod
    def from_levels(cls, metric: str, alertname: str, levels: Levels, *, for_seconds: float,
                    hysteresis: float, text: str = "") -> Rule:
        return cls(metric, alertname, levels.warning, levels.critical, levels.rollback,
                   for_seconds, hysteresis, text)

    def threshold(self, level: Level) -> float | None:
        if level == Level.WARNING:
            return self.warning
        if level == Level.CRITICAL:
            return self.critical
        if level == Level.ROLLBACK:
            return self.rollback
        return None

    @property
    def levels(self) -> tuple[Level, ...]:
        """The levels above Normal this rule has, lowest first."""
        top = (Level.WARNING, Level.CRITICAL)
        return (*top, Level.ROLLBACK) if self.rollback is not None else top


def rules_from_settings(settings: RulesSettings) -> tuple[Rule, ...]:
    out = []
    for key, (metric, alertname, text) in RULE_METRICS.items():
        levels: Levels = getattr(settings, key)
        out.append(Rule.from_levels(metric, alertname, levels, for_seconds=settings.for_seconds,
                                    hysteresis=settings.hysteresis, text=text))
    return tuple(out)


def raw_level(rule: Rule, value: float) -> Level:
    """The level ``value`` is above, ignoring ``for`` and hysteresis."""
    out = Level.NORMAL
    for level in rule.levels:
        threshold = rule.threshold(level)
        if threshold is not None and value > threshold:
            out = level
    return out


@dataclass(frozen=True)
class RuleState:
    """Where one (service, metric) stands. ``above_since[k]`` is when the value last went above
    the threshold of level k+1 (Warning, Critical, Rollback) and stayed there, or None."""

    level: Level = Level.NORMAL
    since: float | None = None                       # when ``level`` was entered
    above_since: tuple[float | None, float | None, float | None] = (None, None, None)
    value: float | None = None                       # last usable sample
    ts: float | None = None                          # its time


def step(state: RuleState, ts: float, value: float | None, rule: Rule) -> RuleState:
    """The state after one sample ``(ts, value)``. Pure."""
    if value is None or math.isnan(value):
        return state
    above = list(state.above_since)
    new_level = Level.NORMAL
    for level in rule.levels:
        threshold = rule.threshold(level)
        assert threshold is not None
        i = level - 1
        if value > threshold:
            if above[i] is None:
                above[i] = ts
        else:
            above[i] = None
        held = state.level >= level and value > threshold * (1.0 - rule.hysteresis)
        started = above[i]
        reached = started is not None and ts - started >= rule.for_seconds
        if held or reached:
            new_level = level
    since = state.since if new_level == state.level else ts
    return RuleState(new_level, since, (above[0], above[1], above[2]), value, ts)


def evaluate(samples: Iterable[tuple[float, float | None]], rule: Rule,
             state: RuleState | None = None) -> RuleState:
    """Fold :func:`step` over time-ordered samples (a window of history)."""
    st = state or RuleState()
    for ts, value in samples:
        st = step(st, ts, value, rule)
    return st


def rule_fingerprint(alertname: str, service: str, env: str) -> str:
    """Stable id of one of our rule alerts (``rule:`` + 16 hex), same across restarts."""
    digest = hashlib.sha1(f"{alertname}\x00{service}\x00{env}".encode()).hexdigest()[:16]
    return f"rule:{digest}"


@dataclass(frozen=True)
class RuleAlert:
    """One of our rules above Normal for one service."""

    fingerprint: str
    alertname: str
    service: str                 # service name
    env: str
    metric: str
    level: Level
    value: float
    threshold: float
    since: float                 # when this level was entered
    text: str = ""

    @property
    def severity(self) -> str:
        return self.level.severity

    @property
    def summary(self) -> str:
        return (f"{self.text or self.metric} {self.value:.3g} above the {self.level.word.lower()} "
                f"level {self.threshold:g}")


@dataclass(frozen=True)
class RuleTransition:
    """A rule changed level for a service (timeline: alert_firing / alert_resolved)."""

    alert: RuleAlert
    previous: Level
    ts: float

    @property
    def resolved(self) -> bool:
        return self.alert.level == Level.NORMAL


@dataclass
class _Track:
    state: RuleState = field(default_factory=RuleState)
    history: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=120))


class RuleEngine:
    """Rule states and a short history per (service key, metric). No I/O; the caller feeds it
    samples with their timestamps (``observe``) and reads alerts and transitions back."""

    def __init__(self, rules: Sequence[Rule], history_points: int = 120) -> None:
        self.rules = tuple(rules)
        self.history_points = history_points
        self._tracks: dict[tuple[str, str, str], _Track] = {}

    @classmethod
    def from_settings(cls, settings: RulesSettings) -> RuleEngine:
        return cls(rules_from_settings(settings))

    def observe(self, ts: float, samples: Iterable[tuple[str, str, Mapping[str, float | None]]]
                ) -> list[RuleTransition]:
        """Feed one poll: ``(service, env, {metric: value or None})`` per service."""
        transitions: list[RuleTransition] = []
        for service, env, values in samples:
            for rule in self.rules:
                if rule.metric not in values:
                    continue
                value = values[rule.metric]
                key = (service, env, rule.metric)
                track = self._tracks.get(key)
                if track is None:
                    if value is None or math.isnan(value) or value <= rule.warning * (1 - rule.hysteresis):
                        continue  # nothing to remember for a quiet series we never tracked
                    track = _Track(history=deque(maxlen=self.history_points))
                    self._tracks[key] = track
                before = track.state.level
                track.state = step(track.state, ts, value, rule)
                if value is not None and not math.isnan(value):
                    track.history.append((ts, value))
                after = track.state.level
                if after != before:
                    transitions.append(RuleTransition(self._alert(rule, service, env, track.state),
                                                      before, ts))
                if after == Level.NORMAL and all(a is None for a in track.state.above_since) \
                        and track.state.value is not None \
                        and track.state.value <= rule.warning * (1 - rule.hysteresis):
                    # Back to quiet: forget it (history of resolved alerts is in the timeline).
                    del self._tracks[key]
        return transitions

    def _alert(self, rule: Rule, service: str, env: str, st: RuleState) -> RuleAlert:
        level = st.level
        threshold = rule.threshold(level) if level != Level.NORMAL else rule.warning
        return RuleAlert(rule_fingerprint(rule.alertname, service, env), rule.alertname, service,
                         env, rule.metric, level, st.value if st.value is not None else math.nan,
                         threshold if threshold is not None else math.nan,
                         st.since if st.since is not None else (st.ts or 0.0), rule.text)

    def alerts(self) -> list[RuleAlert]:
        """Every (service, metric) currently above Normal."""
        out = []
        by_metric = {r.metric: r for r in self.rules}
        for (service, env, metric), track in self._tracks.items():
            if track.state.level > Level.NORMAL:
                out.append(self._alert(by_metric[metric], service, env, track.state))
        return out

    def history(self, service: str, env: str, metric: str) -> tuple[tuple[float, float], ...]:
        track = self._tracks.get((service, env, metric))
        return tuple(track.history) if track else ()

    def rule_for(self, metric: str) -> Rule | None:
        for r in self.rules:
            if r.metric == metric:
                return r
        return None
