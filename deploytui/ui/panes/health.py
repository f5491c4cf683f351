"""The health pane: every service, worst first, with a latency sparkline for the selected row.

Rows live outside the widget: each snapshot is projected to one display tuple per service, a
:class:`Row` is rebuilt only when that tuple changed, and :class:`VirtualTable` repaints only the
visible lines that differ — a steady fleet repaints nothing. Figures that move every poll
(last latency, uptime, time in state) are shown on the sparkline line of the selected row and in
the detail screen, not in the table.

Keys: ``e`` cycles the env filter, ``/`` filters by text (name, env, state, reason, version,
team, tags), ``escape`` clears the filters, ``enter`` opens the detail screen.
"""

from __future__ import annotations

import asyncio
import time
from operator import itemgetter
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual.actions import SkipAction
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Input, Static

from deploytui.model import Target
from deploytui.ui.panes.base import Pane
from deploytui.ui.status import STATUS
from deploytui.ui.widgets.vtable import Column, Row, VirtualTable

if TYPE_CHECKING:  # Source modules load after the first frame (they are built in a thread then): types only here.
    from deploytui.sources.health import HealthReport, HealthSnapshot

__all__ = ["Cell", "HealthPane", "format_duration", "sparkline"]

COLUMNS = (
    Column("state", "STATE", width=14),
    Column("service", "SERVICE", min_width=10),
    Column("env", "ENV", width=8),
    Column("reason", "REASON", min_width=10),
    Column("p95", "P95", width=9, align="right"),
    Column("availability", "AVAIL", width=9, align="right"),
    Column("version", "VERSION", width=14),
)
_BARS = "▁▂▃▄▅▆▇█"
#: Rows built per event-loop turn when many change at once (about 5 ms of work).
BUILD_CHUNK = 750
_LEVEL_MARK = {"ok": "", "target": " !", "alert": " !!"}
# Extra state the shared status table does not know.
_PENDING = ("○", "pending", "secondary")


class Cell(Text):
    """A rich Text that hashes: VirtualTable keys its line cache on whole rows, and plain
    ``Text`` (mutable) does not hash. Cells are never changed after the row is built."""

    def __hash__(self) -> int:  # type: ignore[override]
        return hash((self.plain, tuple(self.spans), str(self.style)))


_CELLS: dict[tuple[str, str, str, str], Cell] = {}


def _cell(text: str, style: str = "", extra: str = "", extra_style: str = "") -> Cell:
    """A shared cell: 5,000 rows hold a few hundred distinct texts ("● healthy", "100.00%",
    "1.4.2"), and building a rich Text costs more than the rest of a row. Never mutated."""
    key = (text, style, extra, extra_style)
    cell = _CELLS.get(key)
    if cell is None:
        if len(_CELLS) > 20_000:
            _CELLS.clear()
        cell = Cell(text, style=style)
        if extra:
            cell.append(extra, style=extra_style)
        cell = _CELLS[key] = cell
    return cell


def sparkline(values: tuple[float | None, ...], width: int = 40) -> str:
    """Block characters scaled to the largest value; ``×`` for a poll that got no answer."""
    tail = values[-width:]
    answered = [v for v in tail if v is not None]
    if not answered:
        return "×" * len(tail)
    top = max(answered) or 1.0
    out = []
    for v in tail:
        if v is None:
            out.append("×")
        else:
            out.append(_BARS[min(len(_BARS) - 1, int(v / top * (len(_BARS) - 1) + 0.5))])
    return "".join(out)


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 90:
        return f"{s}s"
    if s < 5400:
        return f"{s // 60}m"
    if s < 172800:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    return f"{s // 86400}d{(s % 86400) // 3600}h"


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms"


def _p95_cell(value: float | None) -> str:
    """Whole milliseconds in the table (jitter below 1 ms would repaint rows for nothing)."""
    if value is None:
        return "-"
    return "<1 ms" if value < 1 else f"{value:.0f} ms"


def _project(r: HealthReport) -> tuple[Any, ...]:
    """What the table shows of a report: equal projections need no new row."""
    avail = None if r.availability is None else round(r.availability, 2)
    return (r.state, r.name, r.env, r.reason, _p95_cell(r.p95_ms), r.latency_level, avail,
            r.availability_level, r.version, r.drift)


class HealthPane(Pane):
    """Service health, worst first; ``enter`` for every check and the raw payload."""

    pane_id = "health"
    pane_title = "Health"
    not_configured_text = "no services configured (add [[services]] to the config)"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("e", "cycle_env", "Env", id="health_env"),
        Binding("slash", "start_filter", "Filter", id="health_filter"),
        Binding("escape", "clear_filters", "Clear filter", show=False, id="health_clear"),
    ]

    DEFAULT_CSS = """
    HealthPane > #health-filter {
        display: none;
        height: 1;
        border: none;
        padding: 0 1;
        background: $boost;
    }
    HealthPane.-filtering > #health-filter {
        display: block;
    }
    HealthPane > #health-spark {
        height: 1;
        padding: 0 1;
        color: $text-muted;
    }
    """

    def __init__(self, runtime: Any, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(runtime, id=id, classes=classes)
        self.env_filter: str | None = None
        self.text_filter = ""
        # key -> (projection, sort key, row)
        self._rows: dict[str, tuple[tuple[Any, ...], tuple[int, str, str], Row]] = {}
        self._reports: dict[str, HealthReport] = {}
        self._spark_text = ""
        self._colors_key: Any = None
        self.row_builds = 0   # rows (re)built since start: benchmarks and tests read it

    # --- composition --------------------------------------------------------------------------

    def compose_body(self) -> ComposeResult:
        yield Input(placeholder="filter: name, env, state, reason, version, tag…",
                    id="health-filter")
        table = VirtualTable(COLUMNS, id="health-table", classes="pane-body")
        if getattr(self.runtime.settings.console, "wall", False):
            table.add_class("-no-cursor")
        yield table
        yield Static("", id="health-spark")

    def on_mount(self) -> None:
        super().on_mount()
        interval = self.runtime.settings.console.refresh_interval
        self.set_interval(max(1.0, interval), self._check_stale)

    @property
    def table(self) -> VirtualTable:
        return self.query_one("#health-table", VirtualTable)

    # --- data ---------------------------------------------------------------------------------

    def update_snapshot(self, snapshot: Any) -> None:
        from deploytui.sources.health import HealthSnapshot

        if not isinstance(snapshot, HealthSnapshot):
            return
        previous = self.snapshot
        super().update_snapshot(snapshot)
        if snapshot.error:
            self.set_stale(f"health polling failed: {snapshot.error}", time.time())
        else:
            self.set_stale(None)
        if previous is not None and previous == snapshot:
            self._update_spark()  # the table is unchanged; only the selected row's line moves
            return
        self._reports = {r.key: r for r in snapshot.reports}
        self.refresh_rows()

    def refresh_rows(self) -> None:
        """Project reports to rows (rebuilding only changed ones), filter, sort, hand over."""
        snapshot: HealthSnapshot | None = self.snapshot
        if snapshot is None:
            return
        from deploytui.sources.health import STATE_RANK

        colors = self.colors
        colors_key = tuple(sorted(colors.items()))
        if colors_key != self._colors_key:  # theme changed: every row's colours change
            self._colors_key = colors_key
            self._rows.clear()
        cache = self._rows
        needle = self.text_filter.lower()
        env = self.env_filter
        rank = STATE_RANK
        keyed: list[tuple[tuple[int, str, str], Row]] = []
        append = keyed.append
        stale: list[tuple[HealthReport, tuple[Any, ...]]] = []
        for r in snapshot.reports:
            if env is not None and r.env != env:
                continue
            if needle and not self._matches(r, needle):
                continue
            proj = _project(r)
            cached = cache.get(r.key)
            if cached is None or cached[0] != proj:
                stale.append((r, proj))
                continue
            append(cached[1:])  # type: ignore[arg-type]
        if len(stale) > BUILD_CHUNK:
            # Thousands of new rows (first arrival, theme change): build them over several
            # event-loop turns so the UI never stalls, then come back here.
            self._build_in_chunks(stale, colors)
            return
        for r, proj in stale:
            cached = cache[r.key] = (proj, (rank.get(r.state, 0), r.env, r.name),
                                     self._build_row(r, colors))
            self.row_builds += 1
            append(cached[1:])  # type: ignore[arg-type]
        keyed.sort(key=itemgetter(0))
        rows = [row for _, row in keyed]
        if snapshot.reports:
            self.set_empty(None)
        self.table.set_rows(rows)
        self._update_counts(snapshot)
        self._update_spark()

    def _build_in_chunks(self, stale: list[tuple[HealthReport, tuple[Any, ...]]],
                         colors: dict[str, str]) -> None:
        from deploytui.sources.health import STATE_RANK

        async def build() -> None:
            rank = STATE_RANK
            for start in range(0, len(stale), BUILD_CHUNK):
                for r, proj in stale[start:start + BUILD_CHUNK]:
                    self._rows[r.key] = (proj, (rank.get(r.state, 0), r.env, r.name),
                                         self._build_row(r, colors))
                    self.row_builds += 1
                await asyncio.sleep(0)
            self.refresh_rows()

        # A newer snapshot replaces a build still running (exclusive group).
        self.run_worker(build(), group="health-rows", exclusive=True, exit_on_error=False)

    @staticmethod
    def _matches(r: HealthReport, needle: str) -> bool:
        hay = " ".join((r.name, r.env, r.state, r.reason, r.version, r.team, r.drift, *r.tags))
        return needle in hay.lower()

    def _build_row(self, r: HealthReport, colors: dict[str, str]) -> Row:
        if r.state == "pending":
            glyph, word, var = _PENDING
        else:
            glyph, word, var = STATUS.get(r.state, ("?", r.state, "secondary"))
        state = _cell(f"{glyph} {word}", colors.get(var, ""))
        lat, av = r.latency_level, r.availability_level
        p95 = _cell(_p95_cell(r.p95_ms) + _LEVEL_MARK.get(lat, ""),
                    "" if lat == "ok" else colors.get("error" if lat == "alert" else "warning", ""))
        avail = _cell(("-" if r.availability is None else f"{r.availability:.2f}%")
                      + _LEVEL_MARK.get(av, ""),
                      "" if av == "ok" else colors.get("error" if av == "alert" else "warning", ""))
        version = _cell(r.version or "-", "", " ≠drift" if r.drift else "",
                        colors.get("warning", "") if r.drift else "")
        return Row(key=r.key, cells=(state, r.name, r.env, r.reason or "", p95, avail, version))

    def _update_counts(self, snapshot: HealthSnapshot) -> None:
        counts = snapshot.counts()
        parts = [f"{len(snapshot.reports)} svc"]
        for state in ("unreachable", "unhealthy", "stale", "degraded"):
            if counts.get(state):
                parts.append(f"{STATUS[state][0]}{counts[state]} {state}")
        filters = []
        if self.env_filter:
            filters.append(f"env={self.env_filter}")
        if self.text_filter:
            filters.append(f"/{self.text_filter}")
        if filters:
            parts.append(f"showing {self.table.row_count} ({' '.join(filters)})")
        self.set_counts(" · ".join(parts))

    # --- selected row -------------------------------------------------------------------------

    def selected_report(self) -> HealthReport | None:
        key = self.table.cursor_key if self.is_mounted else None
        return self._reports.get(key) if key else None

    def selected_target(self) -> Target:
        r = self.selected_report()
        if r is None:
            return Target()
        svc = self.runtime.settings.service(r.key)
        return Target(service=r.key, env=r.env, deployment=svc.deployment if svc else "")

    def _update_spark(self) -> None:
        r = self.selected_report()
        if r is None:
            text = ""
            if self.snapshot is not None and self.table.row_count == 0 and self._reports:
                text = "no service matches the filter (esc clears)"
        else:
            now = time.time()
            text = (f"{r.name}  {sparkline(r.latency_history)}  last {_ms(r.latency_ms)}"
                    f"  p95 {_ms(r.p95_ms)}  {r.state} for {format_duration(r.time_in_state(now))}"
                    f"  up {format_duration(r.uptime_s)}")
        if text != self._spark_text:
            self._spark_text = text
            # A fixed one-line widget: repaint it, no layout pass (this runs every poll).
            self.query_one("#health-spark", Static).update(text, layout=False)

    def on_virtual_table_row_highlighted(self, event: VirtualTable.RowHighlighted) -> None:
        event.stop()
        self._update_spark()

    def on_virtual_table_row_selected(self, event: VirtualTable.RowSelected) -> None:
        event.stop()
        report = self._reports.get(event.key)
        if report is not None:
            from deploytui.ui.screens.health_detail import HealthDetailScreen

            self.app.push_screen(HealthDetailScreen(report, self.runtime))

    # --- filters ------------------------------------------------------------------------------

    def envs(self) -> list[str]:
        found = {r.env for r in self._reports.values()}
        found.update(s.env for s in self.runtime.settings.services)
        return sorted(found)

    def action_cycle_env(self) -> None:
        envs = self.envs()
        if not envs:
            return
        if self.env_filter not in envs:
            self.env_filter = envs[0]
        else:
            i = envs.index(self.env_filter) + 1
            self.env_filter = envs[i] if i < len(envs) else None
        self.refresh_rows()

    def action_start_filter(self) -> None:
        self.add_class("-filtering")
        box = self.query_one("#health-filter", Input)
        box.value = self.text_filter
        box.focus()

    def action_clear_filters(self) -> None:
        if not (self.env_filter or self.text_filter or self.has_class("-filtering")):
            raise SkipAction()  # nothing to clear: let escape reach the screen and the app
        self.env_filter = None
        self.text_filter = ""
        self.query_one("#health-filter", Input).value = ""
        self.remove_class("-filtering")
        self.table.focus()
        self.refresh_rows()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id != "health-filter":
            return
        event.stop()
        self.text_filter = event.value.strip()
        self.refresh_rows()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "health-filter":
            return
        event.stop()
        if not self.text_filter:
            self.remove_class("-filtering")
        self.table.focus()

    # --- staleness of the whole source --------------------------------------------------------

    def _check_stale(self) -> None:
        snapshot: HealthSnapshot | None = self.snapshot
        if snapshot is None or snapshot.error or self.last_updated is None:
            return
        console = self.runtime.settings.console
        limit = console.stale_after_intervals * console.refresh_interval
        age = time.time() - self.last_updated
        if age > limit:
            self.set_stale(f"no health update for {age:.0f} s", self.last_updated)
