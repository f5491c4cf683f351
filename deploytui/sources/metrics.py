"""Service metrics shared by the Prometheus source, the direct scrape and their readers.

One :class:`MetricsSnapshot` per poll holds, per service, one :class:`MetricValue` for each name
in :data:`METRIC_NAMES`. A value is never silently "fine": it is ``ok`` (a number), ``empty``
(the query or scrape had no series for that service), ``nan`` (the series exists but is
NaN, e.g. no traffic in the window) or ``error`` (the query or scrape failed; ``message`` says
why). The guard and the health detail read figures from here (``snapshot.value(...)``).

Also here: the Prometheus text-format reader and ``histogram_quantile`` used by the direct
scrape, so both paths compute the same figures the same way.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from deploytui.model import utcnow

__all__ = [
    "METRIC_LABELS",
    "METRIC_NAMES",
    "METRIC_UNITS",
    "MetricState",
    "MetricValue",
    "MetricsSnapshot",
    "ServiceMetrics",
    "format_value",
    "histogram_quantile",
    "parse_exposition",
    "service_key",
]

#: Every figure a metrics source produces, per service, in display order.
METRIC_NAMES: tuple[str, ...] = (
    "error_rate_pct",
    "p95_s",
    "p99_s",
    "restarts_per_min",
    "pods_not_ready",
    "cpu_pct",
    "memory_pct",
    "db_errors_per_min",
)

METRIC_LABELS: Mapping[str, str] = MappingProxyType({
    "error_rate_pct": "error rate",
    "p95_s": "p95 latency",
    "p99_s": "p99 latency",
    "restarts_per_min": "restarts",
    "pods_not_ready": "pods not ready",
    "cpu_pct": "CPU",
    "memory_pct": "memory of limit",
    "db_errors_per_min": "DB connection errors",
})

METRIC_UNITS: Mapping[str, str] = MappingProxyType({
    "error_rate_pct": "%",
    "p95_s": "s",
    "p99_s": "s",
    "restarts_per_min": "/min",
    "pods_not_ready": "",
    "cpu_pct": "%",
    "memory_pct": "%",
    "db_errors_per_min": "/min",
})

MetricState = Literal["ok", "empty", "nan", "error"]


def service_key(name: str, env: str = "") -> str:
    """``env/name`` (the id :class:`deploytui.config.ServiceSettings` uses), or ``name``."""
    return f"{env}/{name}" if env else name


@dataclass(frozen=True, slots=True)
class MetricValue:
    """One figure of one service, or the reason there is none."""

    state: MetricState
    value: float | None = None
    message: str = ""

    @classmethod
    def of(cls, value: float) -> MetricValue:
        if math.isnan(value):
            return cls("nan", None, "the series is NaN (no samples or no traffic in the window)")
        return cls("ok", value)

    @property
    def ok(self) -> bool:
        return self.state == "ok"

    def text(self, metric: str = "") -> str:
        """``12.3 %``, or the state word (``empty``, ``NaN``, ``error``)."""
        if self.state == "ok" and self.value is not None:
            return format_value(self.value, METRIC_UNITS.get(metric, ""))
        return {"empty": "empty", "nan": "NaN", "error": "error"}.get(self.state, self.state)


EMPTY = MetricValue("empty", None, "no series for this service")


def format_value(value: float, unit: str = "") -> str:
    if math.isinf(value):
        text = "+Inf" if value > 0 else "-Inf"
    elif value == 0 or abs(value) >= 100:
        text = f"{value:.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    elif abs(value) >= 0.01:
        text = f"{value:.2f}"
    else:
        text = f"{value:.2g}"
    if unit in ("%", "/min") or not unit:
        return f"{text}{unit}"
    return f"{text} {unit}"


@dataclass(frozen=True, slots=True)
class ServiceMetrics:
    """The figures of one service in one poll."""

    service: str                      # the service label (name)
    env: str = ""                     # the env label, "" when the query does not carry one
    values: Mapping[str, MetricValue] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return service_key(self.service, self.env)

    def get(self, metric: str) -> MetricValue:
        return self.values.get(metric, EMPTY)

    def value(self, metric: str) -> float | None:
        v = self.values.get(metric)
        return v.value if v is not None and v.state == "ok" else None


@dataclass(frozen=True)
class MetricsSnapshot:
    """Figures for the whole fleet from one poll of Prometheus or of the direct scrape.

    ``source`` is ``prometheus`` or ``scrape``; ``error`` is set when the source could not be
    read at all (every value is then in state ``error``); ``errors`` names each metric whose
    query failed; ``queries`` is the PromQL behind each metric (empty for the scrape).
    """

    source: str
    services: Mapping[str, ServiceMetrics] = field(default_factory=dict)
    errors: Mapping[str, str] = field(default_factory=dict)
    queries: Mapping[str, str] = field(default_factory=dict)
    error: str | None = None
    duration_s: float = 0.0
    taken_at: float = field(default_factory=utcnow)

    def get(self, service: str, env: str = "") -> ServiceMetrics | None:
        """Figures for ``service`` (a name or an ``env/name`` key) in ``env``.

        Falls back to the env-less entry when the queries do not aggregate by env.
        """
        if "/" in service and not env:
            env, service = service.split("/", 1)
        found = self.services.get(service_key(service, env))
        if found is None and env:
            found = self.services.get(service)
        return found

    def value(self, service: str, metric: str, env: str = "") -> MetricValue:
        """One figure, or the reason there is none (``error`` when the query failed)."""
        if self.error:
            return MetricValue("error", None, self.error)
        if metric in self.errors:
            return MetricValue("error", None, self.errors[metric])
        sm = self.get(service, env)
        if sm is None:
            return EMPTY
        return sm.get(metric)

    def state_counts(self) -> dict[str, dict[str, int]]:
        """Per metric, how many services are in each state (for summaries)."""
        out: dict[str, dict[str, int]] = {m: {} for m in METRIC_NAMES}
        for sm in self.services.values():
            for m in METRIC_NAMES:
                st = self.value(sm.service, m, sm.env).state
                out[m][st] = out[m].get(st, 0) + 1
        return out


# --- Prometheus text exposition --------------------------------------------------------------

_LABEL_RE = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')


def _unescape(value: str) -> str:
    if "\\" not in value:
        return value
    return value.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")


def _parse_float(text: str) -> float:
    t = text.strip()
    if t in ("+Inf", "Inf"):
        return math.inf
    if t == "-Inf":
        return -math.inf
    return float(t)  # "NaN" parses


#: ``name{labels}`` -> parsed labels. A service's series are the same scrape after scrape (only
#: the values move), so each label set is parsed once; bounded by clearing when full.
_SERIES: dict[str, dict[str, str]] = {}
_SERIES_MAX = 200_000


def parse_exposition(text: str, names: Iterable[str] | None = None
                     ) -> Iterator[tuple[str, dict[str, str], float]]:
    """Samples ``(name, labels, value)`` of a Prometheus text exposition.

    ``names`` limits the result to those metric names (checked before labels are parsed, so
    a large page costs little for the families nobody reads). Malformed lines are skipped.
    The ``labels`` dicts are shared between scrapes of the same series: read them, never
    change them.
    """
    wanted = names if isinstance(names, frozenset | set) else (
        frozenset(names) if names is not None else None)
    series_cache = _SERIES
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] == "#":
            continue
        brace = line.find("{")
        space = line.find(" ")
        if brace != -1 and (space == -1 or brace < space):
            name = line[:brace]
            if wanted is not None and name not in wanted:
                continue
            end = line.rfind("}")
            if end < brace:
                continue
            series = line[:end + 1]
            cached = series_cache.get(series)
            if cached is not None:
                labels = cached
            else:
                labels = {}
                body = line[brace + 1:end]
                pos = 0
                while pos < len(body):
                    m = _LABEL_RE.match(body, pos)
                    if m is None:
                        break
                    labels[m.group(1)] = _unescape(m.group(2))
                    pos = m.end()
                if len(series_cache) >= _SERIES_MAX:
                    series_cache.clear()
                series_cache[series] = labels
            rest = line[end + 1:].split()
        else:
            if space == -1:
                continue
            name = line[:space]
            if wanted is not None and name not in wanted:
                continue
            labels = {}
            rest = line[space + 1:].split()
        if not rest:
            continue
        try:
            value = _parse_float(rest[0])
        except ValueError:
            continue
        yield name, labels, value


def histogram_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float:
    """Prometheus' ``histogram_quantile`` over cumulative ``(le, count)`` buckets.

    Linear interpolation inside the bucket; NaN when there are no observations; the upper
    bound of the highest finite bucket when the quantile falls in ``+Inf``.
    """
    if not buckets:
        return math.nan
    ordered = sorted(buckets)
    if not math.isinf(ordered[-1][0]):
        return math.nan
    # Counts must be monotonic; repair small inconsistencies like Prometheus does.
    fixed: list[tuple[float, float]] = []
    top = 0.0
    for le, count in ordered:
        top = max(top, count)
        fixed.append((le, top))
    total = fixed[-1][1]
    if total <= 0 or math.isnan(total):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    rank = q * total
    prev_le, prev_count = 0.0, 0.0
    for i, (le, count) in enumerate(fixed):
        if count >= rank:
            if math.isinf(le):
                return fixed[i - 1][0] if i > 0 else math.nan
            if i == 0 and le <= 0:
                return le
            width = count - prev_count
            if width <= 0:
                return le
            return prev_le + (le - prev_le) * (rank - prev_count) / width
        prev_le, prev_count = le, count
    return fixed[-2][0] if len(fixed) > 1 else math.nan
