"""What ``enter`` on a Rollouts row shows: the rollout's state, its revision history (revision,
image, change-cause, age, replicas) and the recent Kubernetes Events of the Deployment and its
current ReplicaSet. ``enter`` or ``u`` on a revision rolls back to it through the console's
confirm-and-run flow (so read-only, the typed confirmation in prod and the lock all apply).
The screen follows the live snapshots while it is open."""

from __future__ import annotations

import time
from typing import Any, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from deploytui.model import Target
from deploytui.sources.rollout_model import Rollout, RolloutSnapshot, format_duration
from deploytui.ui.widgets.vtable import Column, Row, VirtualTable

__all__ = ["RolloutDetailScreen", "revision_rows", "summary_lines"]

REVISION_COLUMNS = (
    Column("current", "", 1),
    Column("revision", "REV", 4, align="right"),
    Column("image", "IMAGE", 0, 12),
    Column("cause", "CHANGE-CAUSE", 0, 12),
    Column("age", "AGE", 8, align="right"),
    Column("replicas", "PODS", 5, align="right"),
)


def summary_lines(r: Rollout, now: float) -> list[str]:
    lines = [f"state:     {r.phase} — {r.message}",
             f"images:    {', '.join(r.images)}   (revision {r.revision})",
             f"replicas:  desired {r.desired} · updated {r.updated} · ready {r.ready} · "
             f"available {r.available}" + (f" · restarts {r.restarts}" if r.restarts else "")]
    if r.service:
        lines.append(f"service:   {r.service}")
    if r.started_at is not None:
        began = f"began {format_duration(r.age(now) or 0.0)} ago"
        if r.phase != "complete":
            lines.append(f"rollout:   {began} · ETA {r.eta_text(now)}")
        else:
            took = f" · took {format_duration(r.took)}" if r.took is not None else ""
            lines.append(f"rollout:   {began}{took}")
    return lines


def revision_rows(r: Rollout, now: float) -> list[Row]:
    rows = []
    for rev in r.revisions:
        age = format_duration(now - rev.created) if rev.created else ""
        rows.append(Row(str(rev.revision), ("●" if rev.current else "", str(rev.revision),
                                            ", ".join(rev.images), rev.change_cause or "<none>",
                                            age, str(rev.replicas))))
    return rows


class RolloutDetailScreen(ModalScreen[None]):
    """Revision history and Events of one deployment; esc closes."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "close", "Close", id="rollout_detail_close"),
        Binding("u", "rollback_to", "Roll back to this revision", id="rollout_detail_rollback"),
    ]

    DEFAULT_CSS = """
    RolloutDetailScreen {
        align: center middle;
    }
    RolloutDetailScreen > Vertical {
        width: 120;
        max-width: 100%;
        height: 90%;
        border: thick $primary;
        background: $surface;
        padding: 0 1;
    }
    RolloutDetailScreen .title {
        text-style: bold;
    }
    RolloutDetailScreen .section {
        text-style: bold;
        margin-top: 1;
    }
    RolloutDetailScreen #rollout-revisions {
        height: auto;
        max-height: 12;
    }
    RolloutDetailScreen #rollout-events {
        height: 1fr;
        overflow-y: auto;
    }
    RolloutDetailScreen .hint {
        color: $text-muted;
    }
    """

    def __init__(self, rollout: Rollout, runtime: Any) -> None:
        super().__init__()
        self.rollout = rollout
        self.runtime = runtime
        self.events_text = "loading events…"

    def compose(self) -> ComposeResult:
        now = time.time()
        with Vertical():
            yield Label(self.rollout.key, classes="title", markup=False)
            yield Static("\n".join(summary_lines(self.rollout, now)), id="rollout-summary",
                         markup=False)
            yield Label("Revisions", classes="section")
            table = VirtualTable(REVISION_COLUMNS, id="rollout-revisions")
            yield table
            yield Label("Recent events", classes="section")
            yield Static(self.events_text, id="rollout-events", markup=False)
            yield Static(self._hint(), classes="hint", id="rollout-hint")

    def _hint(self) -> str:
        if getattr(self.runtime, "read_only", False):
            return "read-only · esc close"
        return "enter/u roll back to the selected revision · esc close"

    def on_mount(self) -> None:
        table = self.query_one("#rollout-revisions", VirtualTable)
        table.set_rows(revision_rows(self.rollout, time.time()))
        table.focus()
        listeners = getattr(self.app, "snapshot_listeners", None)
        if isinstance(listeners, list):
            listeners.append(self._on_snapshot)
        self.load_events()

    def on_unmount(self) -> None:
        listeners = getattr(self.app, "snapshot_listeners", None)
        if isinstance(listeners, list) and self._on_snapshot in listeners:
            listeners.remove(self._on_snapshot)

    def _on_snapshot(self, name: str, snapshot: Any) -> None:
        if name != "rollouts" or not isinstance(snapshot, RolloutSnapshot):
            return
        found = snapshot.find(self.rollout.key)
        if found is None or found == self.rollout:
            return
        self.rollout = found
        now = time.time()
        self.query_one("#rollout-summary", Static).update("\n".join(summary_lines(found, now)))
        self.query_one("#rollout-revisions", VirtualTable).set_rows(revision_rows(found, now))

    @work(thread=True, group="detail:events", exit_on_error=False)
    def load_events(self) -> None:
        from deploytui.actions.kube import kube_handle
        from deploytui.sources.kube import fetch_events

        r = self.rollout
        names = [r.name] + [rev.replica_set for rev in r.revisions if rev.current]
        try:
            events = fetch_events(kube_handle(self.runtime).client(), r.namespace, names)
        except Exception as exc:   # the history is still useful without events
            text = f"events could not be read: {exc}"
        else:
            text = "\n".join(f"{e['age']:>7}  {e['type']:<7}  {e['reason']:<22}  {e['object']}: "
                             f"{e['message']}" + (f" (x{e['count']})" if e["count"] > 1 else "")
                             for e in events) or "no recent events"
        self.app.call_from_thread(self._show_events, text)

    def _show_events(self, text: str) -> None:
        self.events_text = text
        self.query_one("#rollout-events", Static).update(text)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "rollback_to":
            return not getattr(self.runtime, "read_only", False)
        return True

    def on_virtual_table_row_selected(self, event: VirtualTable.RowSelected) -> None:
        event.stop()
        self._rollback(int(event.key))

    def action_rollback_to(self) -> None:
        key = self.query_one("#rollout-revisions", VirtualTable).cursor_key
        if key is not None:
            self._rollback(int(key))

    def _rollback(self, revision: int) -> None:
        if getattr(self.runtime, "read_only", False):
            self.notify("rollback: refused — this console is read-only", severity="warning")
            return
        current = next((rev for rev in self.rollout.revisions if rev.current), None)
        if current is not None and current.revision == revision:
            self.notify(f"revision {revision} is the one running; pick an older one",
                        severity="warning")
            return
        from deploytui.ui.console_screen import ConsoleScreen
        from deploytui.ui.flows import rollback

        console = getattr(self.app, "get_screen_console", lambda: None)()
        r = self.rollout
        self.dismiss(None)
        if isinstance(console, ConsoleScreen):
            rollback(console, Target(service=r.service, deployment=r.key, env=r.env), revision)

    def action_close(self) -> None:
        self.dismiss(None)
