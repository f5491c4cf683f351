"""The Rollouts pane: every watched Deployment, worst first, with its rollout state.

Columns: state (glyph *and* word), namespace/name, revision, version, a bar of
updated / ready / available against desired, time since the rollout began, and the ETA from
this deployment's past rollouts ("no history" when there is none). ``/`` filters (name,
namespace, service, phase, image), ``enter`` opens the revision history and recent Events
(:class:`~deploytui.ui.screens.rollout_detail.RolloutDetailScreen`), where a revision can be
picked to roll back to. ``u`` / ``s`` / ``R`` are console keys acting on the selected row.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType

from deploytui.model import Target
from deploytui.ui.panes.base import Pane
from deploytui.ui.panes.filtering import TextFilter
from deploytui.ui.widgets.vtable import Column, Row, VirtualTable

if TYPE_CHECKING:  # Source modules load after the first frame (they are built in a thread then): types only here.
    from deploytui.sources.rollout_model import Rollout, RolloutSnapshot

__all__ = ["COLUMNS", "PHASE_GLYPH", "RolloutsPane", "age_text", "progress_cell"]

COLUMNS = (
    Column("state", "STATE", 13),
    Column("deployment", "DEPLOYMENT", 0, 12),
    Column("revision", "REV", 4, align="right"),
    Column("version", "VERSION", 0, 8),
    Column("progress", "UPDATED/READY/AVAILABLE", 24),
    Column("age", "AGE", 7, align="right"),
    Column("eta", "ETA", 0, 10),
)

PHASE_GLYPH = {"failed": "✗", "stalled": "⚠", "progressing": "↻", "paused": "⏸", "complete": "✓"}
PHASE_COLOR = {"failed": "error", "stalled": "warning", "progressing": "primary",
               "paused": "secondary", "complete": "success"}
BAR = 10


def progress_cell(r: Rollout) -> str:
    """``█████▓▒░░░ 4/3/3 of 6``: █ available, ▓ ready not yet available, ▒ updated not
    ready, ░ still to update (each cell 1/10 of the desired replicas); then the numbers."""
    desired = max(r.desired, 1)

    def cells(n: int) -> int:
        return min(BAR, round(BAR * max(0, n) / desired))

    available = cells(r.available)
    ready = max(0, cells(max(r.ready, r.available)) - available)
    updated = max(0, cells(max(r.updated, r.ready, r.available)) - available - ready)
    rest = BAR - available - ready - updated
    bar = "█" * available + "▓" * ready + "▒" * updated + "░" * rest
    return f"{bar} {r.updated}/{r.ready}/{r.available} of {r.desired}"


def age_text(r: Rollout, now: float) -> str:
    """Time since the rollout began: to the second while it runs, coarsely once it is done."""
    age = r.age(now)
    if age is None:
        return ""
    if r.phase != "complete":
        from deploytui.sources.rollout_model import format_duration

        return format_duration(age)
    if age < 60:
        return "<1m"
    minutes = int(age // 60)
    if minutes < 60:
        return f"{minutes}m"
    hours = minutes // 60
    return f"{hours}h{minutes % 60:02d}m" if hours < 48 else f"{hours // 24}d"


def _valid_until(r: Rollout, now: float) -> float:
    """Until when a row's text (its age and ETA) stays the same."""
    if r.started_at is None:
        return float("inf")
    age = now - r.started_at
    if r.phase == "complete" and age >= 120:
        return now + 60 - (age % 60)
    return now + 1 - (age % 1)


class RolloutsPane(TextFilter, Pane):
    """Deployments and their rollouts (pane 2)."""

    filter_input_id = "rollouts-filter"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter", id="rollouts_filter"),
        Binding("escape", "clear_filter", "Clear filter", show=False, id="rollouts_clear_filter"),
    ]

    pane_id = "rollouts"
    pane_title = "Rollouts"
    pane_number = 2
    not_configured_text = ("not configured — set [kubernetes] enabled = true, with kubeconfig, "
                           "context and namespaces (see config.example.toml)")

    def __init__(self, runtime: Any, *, id: str | None = None, classes: str | None = None,
                 clock: Any = time.time) -> None:
        super().__init__(runtime, id=id, classes=classes)
        self.filter_text = ""
        self.clock = clock
        self._by_key: dict[str, Rollout] = {}
        self._row_cache: dict[str, tuple[Rollout, float, Row]] = {}
        self._active = False

    def compose_body(self) -> ComposeResult:
        yield self.filter_box("filter: name, namespace, service, phase, image — esc clears")
        yield VirtualTable(COLUMNS, id="rollouts-table", classes="pane-body")

    def on_mount(self) -> None:
        super().on_mount()
        self.set_interval(1.0, self._tick)

    @property
    def table(self) -> VirtualTable:
        return self.query_one("#rollouts-table", VirtualTable)

    # --- data ---------------------------------------------------------------------------------

    def update_snapshot(self, snapshot: Any) -> None:
        super().update_snapshot(snapshot)
        self.refresh_rows()

    def _tick(self) -> None:
        # ages and ETAs of running rollouts move every second; nothing else does
        if self._active:
            self.refresh_rows()

    def _row(self, r: Rollout, now: float, colors: dict[str, str]) -> Row:
        cached = self._row_cache.get(r.key)
        if cached is not None and cached[0] is r and now < cached[1]:
            return cached[2]
        age = age_text(r, now)
        version = r.version if len(r.images) <= 1 else f"{r.version} +{len(r.images) - 1}"
        row = Row(r.key, (f"{PHASE_GLYPH[r.phase]} {r.phase}", r.key, str(r.revision), version,
                          progress_cell(r), age, r.eta_text(now)),
                  colors.get(PHASE_COLOR[r.phase], "") if r.phase != "complete" else "")
        if cached is not None and cached[2] == row:
            row = cached[2]   # same text: keep the object, so the table compares by identity
        self._row_cache[r.key] = (r, _valid_until(r, now), row)
        return row

    def refresh_rows(self) -> None:
        snap: RolloutSnapshot | None = self.snapshot
        if snap is None:
            return
        if snap.error and not snap.loaded:
            self.set_empty(f"Rollouts: {snap.error}")
        elif not snap.loaded:
            self.set_empty(f"Rollouts: reading deployments from {snap.context or 'the cluster'}…")
        elif not snap.rollouts:
            where = ", ".join(snap.namespaces) or "the watched namespaces"
            self.set_empty(f"Rollouts: no deployments in {where}")
        else:
            self.set_empty(None)
        now = float(self.clock())
        colors = self.colors
        needle = self.filter_text.lower().strip()
        rows: list[Row] = []
        by_key: dict[str, Rollout] = {}
        active = False
        for r in snap.rollouts:
            if needle and not any(needle in v.lower() for v in (
                    r.key, r.service, r.phase, r.message, *r.images)):
                continue
            active = active or r.phase != "complete" or (
                r.started_at is not None and now - r.started_at < 3600)
            by_key[r.key] = r
            rows.append(self._row(r, now, colors))
        if len(self._row_cache) > len(snap.rollouts) + 100:
            self._row_cache = {k: v for k, v in self._row_cache.items() if k in by_key}
        self._by_key = by_key
        self._active = active
        self.table.set_rows(rows)
        counts = snap.counts()
        parts = [f"{len(snap.rollouts)} deployments"]
        parts += [f"{counts[p]} {p}" for p in ("failed", "stalled", "progressing", "paused")
                  if counts[p]]
        if needle:
            parts.append(f"filter {self.filter_text!r}: {len(rows)} shown")
        self.set_counts(" · ".join(parts), problems=counts["failed"] + counts["stalled"])
        self.set_stale(snap.error if snap.stale_since is not None else None, snap.stale_since)

    # --- selection ----------------------------------------------------------------------------

    def selected_rollout(self) -> Rollout | None:
        key = self.table.cursor_key
        return self._by_key.get(key) if key is not None else None

    def selected_target(self) -> Target:
        r = self.selected_rollout()
        if r is None:
            return Target()
        return Target(service=r.service, deployment=r.key, env=r.env)

    def on_virtual_table_row_selected(self, event: VirtualTable.RowSelected) -> None:
        event.stop()
        rollout = self._by_key.get(event.key)
        if rollout is None:
            return
        from deploytui.ui.screens.rollout_detail import RolloutDetailScreen

        self.app.push_screen(RolloutDetailScreen(rollout, self.runtime))
