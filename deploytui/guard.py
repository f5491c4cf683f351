"""The auto-rollback guard: pure decision logic, no I/O.

After a rollout of a deployment starts, :mod:`deploytui.guard_runner` reads the figures every
``[guard] interval_seconds`` and hands them to :meth:`Guard.evaluate` as an
:class:`Observation`; the guard answers with a :class:`Decision`. Nothing here reads a clock,
a socket or a file: time is the observation's ``ts``, so tests drive it step by step.

Criteria (``[guard]``, each a :class:`~deploytui.config.GuardCriterion`)::

    error_rate_percent    error rate %          > threshold for for_seconds
    p95_seconds           p95 latency, s        > threshold for for_seconds
    restarts_per_minute   container restarts    > threshold for for_seconds (crash loop)
    db_errors_per_minute  DB connection errors  > threshold for for_seconds
    health_failures       failing health checks >= threshold for for_seconds

One evaluation of one criterion is ``pass`` (at or below the threshold), ``above`` (above it,
but not yet for ``for_seconds``), ``fail`` (above it for ``for_seconds``: one failed evaluation
is counted for the revision being rolled out) or ``inconclusive`` (no data, NaN or a query
error: never counted as a pass, and it neither starts nor clears the "above since" clock).
Once a criterion has ``limit`` failed evaluations for one revision the guard is *tripped* for
that revision; a new revision starts from zero.

What a trip leads to (:attr:`Decision.action`), in this order of precedence:

    blocked   read-only console, no previous revision, another operator holds the Lease,
              or (automatic mode) a rollback of this deployment within the cooldown
    dry_run   [guard] dry_run: say what would be done, do nothing
    propose   mode "propose", or mode "auto" while not armed: ask the operator
    rollback  mode "auto" and armed: count down, then roll back through the action door

A healthy verdict needs every criterion conclusive and passing; anything else is not success.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from deploytui.config import GuardCriterion, GuardSettings

__all__ = [
    "CRITERIA",
    "CRITERION_LABELS",
    "CRITERION_METRICS",
    "CriterionResult",
    "Decision",
    "Guard",
    "Observation",
    "Reading",
    "in_cooldown",
]

#: The criteria, in the order they are shown.
CRITERIA: tuple[str, ...] = ("error_rate_percent", "p95_seconds", "restarts_per_minute",
                             "db_errors_per_minute", "health_failures")

#: criterion -> the :mod:`deploytui.sources.metrics` figure it reads ("" : from health checks)
CRITERION_METRICS: Mapping[str, str] = {
    "error_rate_percent": "error_rate_pct",
    "p95_seconds": "p95_s",
    "restarts_per_minute": "restarts_per_min",
    "db_errors_per_minute": "db_errors_per_min",
    "health_failures": "",
}

CRITERION_LABELS: Mapping[str, str] = {
    "error_rate_percent": "error rate %",
    "p95_seconds": "p95 latency s",
    "restarts_per_minute": "restarts/min",
    "db_errors_per_minute": "DB errors/min",
    "health_failures": "failing health checks",
}

#: criteria that trip at the threshold (a count), the others strictly above it
_AT_OR_ABOVE = frozenset({"health_failures"})

ReadingState = Literal["ok", "empty", "nan", "error"]
ResultStatus = Literal["pass", "above", "fail", "inconclusive"]
Verdict = Literal["off", "healthy", "failing", "inconclusive", "tripped", "window_over"]
Action = Literal["none", "propose", "rollback", "dry_run", "blocked"]


@dataclass(frozen=True)
class Reading:
    """One figure for one criterion, or why there is none."""

    criterion: str
    value: float | None
    state: ReadingState = "ok"
    query: str = ""                  # the PromQL, the scraped URL or the health URL
    message: str = ""                # why there is no value

    @property
    def conclusive(self) -> bool:
        return self.state == "ok" and self.value is not None and not math.isnan(self.value)


@dataclass(frozen=True)
class Observation:
    """Everything the guard needs for one evaluation (the runner gathers it)."""

    ts: float
    revision: int                          # the revision being rolled out (0: unknown)
    readings: tuple[Reading, ...]
    has_previous: bool = True              # a previous revision exists to roll back to
    read_only: bool = False
    lock_holder: str = ""                  # another operator holding the deployment's Lease
    armed: bool = False                    # auto mode: armed by the operator (or --auto-rollback)
    last_auto_rollback: float | None = None   # when this deployment was last rolled back by us
    phase: str = ""                        # the rollout's phase, for the evidence


@dataclass(frozen=True)
class CriterionResult:
    criterion: str
    status: ResultStatus
    value: float | None
    threshold: float
    query: str = ""
    above_since: float | None = None
    failures: int = 0                      # failed evaluations for this revision so far
    limit: int = 3
    message: str = ""

    def text(self) -> str:
        """``error rate % 42.1 > 10 for 30s (2/3 failed)`` or ``p95 latency s: no data (...)``."""
        label = CRITERION_LABELS.get(self.criterion, self.criterion)
        if self.status == "inconclusive":
            return f"{label}: no data ({self.message or 'no value'}) — inconclusive"
        op = ">=" if self.criterion in _AT_OR_ABOVE else ">"
        value = _fmt(self.value)
        if self.status == "pass":
            return f"{label} {value} (ok, threshold {op} {_fmt(self.threshold)})"
        return (f"{label} {value} {op} {_fmt(self.threshold)}"
                f" — {'failed' if self.status == 'fail' else 'above'}"
                f" ({self.failures}/{self.limit} failed evaluations)")

    def as_dict(self) -> dict[str, object]:
        return {"criterion": self.criterion, "status": self.status, "value": self.value,
                "threshold": self.threshold, "query": self.query, "failures": self.failures,
                "limit": self.limit, "message": self.message}


@dataclass(frozen=True)
class Decision:
    """The answer to one evaluation."""

    ts: float
    deployment: str
    revision: int
    verdict: Verdict
    action: Action = "none"
    reason: str = ""                       # why blocked / proposed / rolled back, in plain words
    results: tuple[CriterionResult, ...] = ()
    tripped_by: tuple[str, ...] = ()       # the criteria at their limit
    first_trip: bool = False               # this evaluation is the one that tripped it

    @property
    def tripped(self) -> bool:
        return self.verdict == "tripped"

    @property
    def conclusive(self) -> bool:
        return self.verdict in ("healthy", "failing", "tripped")

    def evidence(self) -> tuple[str, ...]:
        """One line per criterion, the failing ones first."""
        order = {"fail": 0, "above": 1, "inconclusive": 2, "pass": 3}
        return tuple(r.text() for r in sorted(self.results, key=lambda r: order[r.status]))

    def summary(self) -> str:
        head = f"{self.deployment} revision {self.revision}: {self.verdict}"
        if self.action != "none":
            head += f", {self.action}"
        if self.reason:
            head += f" — {self.reason}"
        return head


def in_cooldown(last: float | None, now: float, cooldown_minutes: float) -> bool:
    """True when an automatic rollback at ``last`` is less than the cooldown ago."""
    return last is not None and cooldown_minutes > 0 and now - last < cooldown_minutes * 60.0


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if value == 0 or abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}".rstrip("0").rstrip(".") if abs(value) >= 0.01 else f"{value:.2g}"


@dataclass
class _CriterionState:
    above_since: float | None = None


@dataclass
class Guard:
    """The guard of one deployment for one watch window. Feed it observations in time order.

    ``started_at`` is when the rollout started; after ``window_minutes`` the verdict is
    ``window_over``. ``mode`` overrides ``settings.mode`` (the headless command does).
    """

    settings: GuardSettings
    deployment: str
    started_at: float
    mode: str = ""
    _states: dict[str, _CriterionState] = field(default_factory=dict)
    _failures: dict[tuple[int, str], int] = field(default_factory=dict)
    _tripped: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.mode = self.mode or self.settings.mode

    @property
    def window_end(self) -> float:
        return self.started_at + self.settings.window_minutes * 60.0

    def criterion(self, name: str) -> GuardCriterion:
        crit: GuardCriterion = getattr(self.settings, name)
        return crit

    def failures(self, revision: int) -> dict[str, int]:
        """Failed evaluations per criterion for ``revision``."""
        return {c: n for (rev, c), n in self._failures.items() if rev == revision}

    def _judge(self, reading: Reading, revision: int, ts: float) -> CriterionResult:
        name = reading.criterion
        crit = self.criterion(name)
        state = self._states.setdefault(name, _CriterionState())
        key = (revision, name)
        if not reading.conclusive:
            why = reading.message or {"empty": "no series", "nan": "NaN",
                                      "error": "query failed"}.get(reading.state, "no value")
            return CriterionResult(name, "inconclusive", None, crit.threshold, reading.query,
                                   state.above_since, self._failures.get(key, 0), crit.limit, why)
        value = float(reading.value)  # type: ignore[arg-type]
        above = value >= crit.threshold if name in _AT_OR_ABOVE else value > crit.threshold
        if not above:
            state.above_since = None
            return CriterionResult(name, "pass", value, crit.threshold, reading.query, None,
                                   self._failures.get(key, 0), crit.limit)
        if state.above_since is None:
            state.above_since = ts
        if ts - state.above_since >= crit.for_seconds:
            self._failures[key] = self._failures.get(key, 0) + 1
            status: ResultStatus = "fail"
        else:
            status = "above"
        return CriterionResult(name, status, value, crit.threshold, reading.query,
                               state.above_since, self._failures.get(key, 0), crit.limit)

    def evaluate(self, obs: Observation) -> Decision:
        """Judge one observation. Readings for unknown criteria are ignored; a criterion
        without a reading is inconclusive."""
        if self.mode == "off":
            return Decision(obs.ts, self.deployment, obs.revision, "off",
                            reason="the guard is off ([guard] mode = \"off\")")
        if obs.ts > self.window_end:
            return Decision(obs.ts, self.deployment, obs.revision, "window_over",
                            reason=f"the {self.settings.window_minutes:g} min watch window is over")
        given = {r.criterion: r for r in obs.readings if r.criterion in CRITERIA}
        results = tuple(self._judge(given.get(c, Reading(c, None, "empty", message="not read")),
                                    obs.revision, obs.ts) for c in CRITERIA)
        at_limit = tuple(r.criterion for r in results if r.failures >= r.limit)
        if at_limit:
            first = obs.revision not in self._tripped
            self._tripped.add(obs.revision)
            action, reason = self._action(obs, at_limit)
            return Decision(obs.ts, self.deployment, obs.revision, "tripped", action, reason,
                            results, at_limit, first)
        if any(r.status in ("fail", "above") for r in results):
            verdict: Verdict = "failing"
        elif any(r.status == "inconclusive" for r in results):
            verdict = "inconclusive"
        else:
            verdict = "healthy"
        reason = ""
        if verdict == "inconclusive":
            missing = [CRITERION_LABELS[r.criterion] for r in results if r.status == "inconclusive"]
            reason = "no data for " + ", ".join(missing) + " (not counted as healthy)"
        return Decision(obs.ts, self.deployment, obs.revision, verdict, "none", reason, results)

    def _action(self, obs: Observation, at_limit: Iterable[str]) -> tuple[Action, str]:
        why = "tripped by " + ", ".join(CRITERION_LABELS[c] for c in at_limit)
        if obs.read_only:
            return "blocked", f"{why}; no rollback: the console is read-only"
        if not obs.has_previous:
            return "blocked", f"{why}; no rollback: there is no previous revision to go back to"
        if obs.lock_holder:
            return "blocked", (f"{why}; no rollback: {obs.lock_holder} holds the lock on "
                               f"{self.deployment}")
        automatic = self.mode == "auto" and obs.armed
        if automatic and in_cooldown(obs.last_auto_rollback, obs.ts, self.settings.cooldown_minutes):
            return "blocked", (f"{why}; no automatic rollback: {self.deployment} was already "
                               f"rolled back automatically within the "
                               f"{self.settings.cooldown_minutes:g} min cooldown")
        if self.settings.dry_run:
            return "dry_run", f"{why}; dry run: would roll back to the previous revision"
        if not automatic:
            extra = " (auto mode is not armed)" if self.mode == "auto" else ""
            return "propose", f"{why}; proposing a rollback to the operator{extra}"
        return "rollback", f"{why}; rolling back to the previous revision"
