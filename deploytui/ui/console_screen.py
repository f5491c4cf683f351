"""The main screen: header, four panes (grid, stacked or one at a time), footer.

Every key an operator uses is a ``Binding`` with an id (remappable from ``[keymap]``). Mutating
bindings are hidden by ``check_action`` in read-only mode, and the action door refuses them again,
so no entry path — key, command palette, programmatic — can bypass read-only.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, ClassVar

from textual import work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Container, Horizontal
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Digits, Label, Static

from deploytui.actions.door import MUTATING_ACTIONS, Action, ActionPlan
from deploytui.errors import ActionRefused, DeploytuiError
from deploytui.model import Target
from deploytui.ui.panes.base import Pane
from deploytui.ui.widgets.keybar import KeyBar

__all__ = ["ACTION_BINDINGS", "ConsoleScreen"]

# (key, action, description, binding id == action id in the door)
ACTION_BINDINGS: tuple[tuple[str, str, str], ...] = (
    ("u", "rollback", "Rollback"),
    ("s", "scale", "Scale"),
    ("R", "restart", "Restart"),
    ("a", "ack", "Ack"),
    ("A", "unack", "Un-ack"),
    ("p", "port_reassign", "Reassign port"),
    ("g", "guard_arm", "Arm guard"),
    ("i", "incident_open", "Incident"),
    ("n", "note", "Note"),
    ("m", "postmortem", "Post-mortem"),
)

#: action name -> (module, function) building it: fn(screen, target) -> None (runs the flow)
ACTION_HANDLERS: dict[str, tuple[str, str]] = {
    "rollback": ("deploytui.ui.flows", "rollback"),
    "scale": ("deploytui.ui.flows", "scale"),
    "restart": ("deploytui.ui.flows", "restart"),
    "ack": ("deploytui.ui.flows", "ack"),
    "unack": ("deploytui.ui.flows", "unack"),
    "port_reassign": ("deploytui.ui.flows", "port_reassign"),
    "guard_arm": ("deploytui.ui.flows", "guard_arm"),
    "incident_open": ("deploytui.ui.flows", "incident_open"),
    "note": ("deploytui.ui.flows", "note"),
    "postmortem": ("deploytui.ui.flows", "postmortem"),
}


def _current_context(path: Path | None) -> str:
    """current-context of a kubeconfig ($KUBECONFIG, ~/.kube/config); "" when unreadable."""
    import os

    import yaml

    candidates = [path] if path else [
        Path(p) for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p
    ] or [Path.home() / ".kube" / "config"]
    for candidate in candidates:
        try:
            data = yaml.safe_load(candidate.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(data, dict) and data.get("current-context"):
            return str(data["current-context"])
    return "default context"


class HeaderBar(Static):
    """deploytui · context · envs · mode badge · clock. Redrawn only when its text changes."""

    DEFAULT_CSS = """
    HeaderBar {
        height: 1;
        background: $panel;
        color: $text;
        padding: 0 1;
    }
    """


class Banner(Static):
    DEFAULT_CSS = """
    Banner {
        height: auto;
        display: none;
        padding: 0 1;
        background: $warning 30%;
        color: $text;
        text-style: bold;
    }
    Banner.-visible { display: block; }
    Banner.-error { background: $error 40%; }
    """


class TabStrip(Static):
    """In the one-pane-at-a-time layout: which panes there are, with their keys and counts."""

    DEFAULT_CSS = """
    TabStrip {
        height: 1;
        display: none;
        background: $surface;
        color: $text-muted;
        padding: 0 1;
    }
    """


class WallSummary(Horizontal):
    """Wall mode: each pane's number of problems in large digits, readable across a room."""

    DEFAULT_CSS = """
    WallSummary { height: 5; display: none; }
    WallSummary > Horizontal { width: 1fr; height: 5; border: round $panel-lighten-2; }
    WallSummary > Horizontal.-bad { border: heavy $error; }
    WallSummary > Horizontal.-good { border: round $success; }
    WallSummary Digits { width: auto; text-style: bold; margin-right: 2; }
    WallSummary Label { text-style: bold; height: 3; content-align: left middle; }
    """

    def __init__(self, panes: dict[str, Pane]) -> None:
        super().__init__(id="wall-summary")
        self.panes = panes
        self._shown: dict[str, tuple[int | None, str]] = {}

    def compose(self) -> ComposeResult:
        for pane_id, pane in self.panes.items():
            with Horizontal(id=f"wall-{pane_id}"):
                yield Digits("-")
                yield Label(pane.pane_title.upper())

    def update_counts(self) -> None:
        for pane_id, pane in self.panes.items():
            state = (pane.problems, pane._counts)
            if self._shown.get(pane_id) == state:
                continue
            self._shown[pane_id] = state
            box = self.query_one(f"#wall-{pane_id}", Horizontal)
            problems = pane.problems
            box.query_one(Digits).update("-" if problems is None else str(problems))
            glyph = "✔" if problems == 0 else ("✖" if problems else "…")
            box.query_one(Label).update(f"{glyph} {pane.pane_title.upper()}  {pane._counts}")
            box.set_class(bool(problems), "-bad")
            box.set_class(problems == 0, "-good")


class ConsoleScreen(Screen[None]):
    # Textual would focus the first focusable widget (a hidden filter Input), and on_mount then
    # moves focus to the first pane's table: start there.
    AUTO_FOCUS = "VirtualTable"

    BINDINGS: ClassVar[list[Binding]] = [
        Binding("1", "focus_pane('health')", "Health", show=False, id="pane_health"),
        Binding("2", "focus_pane('rollouts')", "Rollouts", show=False, id="pane_rollouts"),
        Binding("3", "focus_pane('ports')", "Ports", show=False, id="pane_ports"),
        Binding("4", "focus_pane('alerts')", "Alerts", show=False, id="pane_alerts"),
        Binding("tab", "next_pane", "Next pane", show=False, id="next_pane"),
        Binding("shift+tab", "previous_pane", "Previous pane", show=False, id="previous_pane"),
        Binding("z", "zoom", "Zoom", id="zoom"),
        Binding("t", "timeline", "Timeline", id="timeline"),
        Binding("ctrl+r", "toggle_read_only", "Read-only", show=False, id="toggle_read_only"),
        Binding("D", "dead_letters", "Dead letters", show=False, id="dead_letters"),
        *(Binding(key, action, desc, id=action) for key, action, desc in ACTION_BINDINGS),
    ]

    def __init__(self, runtime: Any) -> None:
        super().__init__(classes="-wall" if runtime.settings.console.wall else None)
        self.runtime = runtime
        self.panes: dict[str, Pane] = {}
        self.pane_order: list[str] = []
        self._layout = ""
        self._header_text = ""
        self._banner_text = ""
        self._tabstrip_text = ""
        self._context_label: str | None = None

    # --- composition --------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        from deploytui.ui.app import PANE_CLASSES, load_pane_class

        # Every class the first frame needs is given at construction: a class changed after
        # mount restyles the node and all its descendants (about 10 ms each at start-up).
        console = self.runtime.settings.console
        self._layout = self._wanted_layout()
        zoomed = console.wall and console.wall_rotate_seconds > 0
        yield HeaderBar(id="header")
        yield Banner(id="banner")
        strip = TabStrip(id="tabstrip")
        strip.display = self._layout == "tabs" or zoomed
        yield strip
        for number, pane_id in enumerate(PANE_CLASSES, start=1):
            cls = load_pane_class(pane_id)
            cls.pane_number = number
            self.panes[pane_id] = cls(self.runtime, classes="-active" if number == 1 else None)
            self.pane_order.append(pane_id)
        if console.wall:
            yield WallSummary(self.panes)
        with Container(id="panes", classes=f"-{self._layout}" + (" -zoomed" if zoomed else "")):
            yield from self.panes.values()
        yield KeyBar()

    def on_mount(self) -> None:
        console = self.runtime.settings.console
        self.set_interval(1.0, self.tick)
        if console.wall:
            for table in self.query("VirtualTable"):
                table.add_class("-no-cursor")
            if console.wall_rotate_seconds > 0:
                self.set_interval(console.wall_rotate_seconds, self.action_next_pane)
        self.update_header()
        self.update_banner()
        self.apply_layout()
        self.focus_pane(self.pane_order[0])

    def tick(self) -> None:
        """Once a second: the clock, and the stale banner. Writes only what changed."""
        self.update_header()
        stale = [p for p in self.panes.values() if p.stale]
        if stale:
            names = ", ".join(f"{p.pane_title} ({p.border_subtitle})" for p in stale)
            text = f"STALE DATA — {names}"
            if text != self._banner_text:
                self.update_banner(text, error=True)
        elif self._banner_text.startswith("STALE"):
            self.update_banner()
        if self.runtime.settings.console.wall:
            for pane in self.panes.values():
                pane.show_last_updated()
            for summary in self.query(WallSummary):
                summary.update_counts()

    def on_resize(self) -> None:
        self.apply_layout()

    # --- header, banner, layout ---------------------------------------------------------------

    def mode_badge(self) -> str:
        parts = []
        if self.runtime.mode == "demo":
            parts.append("DEMO")
        parts.append("READ-ONLY" if self.runtime.read_only else "LIVE")
        if self.runtime.settings.console.wall:
            parts.append("WALL")
        return " · ".join(parts)

    def _kube_context(self) -> str:
        """The Kubernetes context the console acts in, read once from the kubeconfig.

        A console that builds its sources after the first frame reads it then too (parsing
        YAML costs ~20 ms of start-up): see :meth:`load_kube_context`."""
        if self._context_label is None:
            if getattr(self.app, "defer_sources", False):
                return ""
            self.load_kube_context()
        return self._context_label or ""

    def load_kube_context(self) -> None:
        """Read the context label (any thread; the header shows it on its next update)."""
        if self._context_label is None:
            k = self.runtime.settings.kubernetes
            label = ""
            if k.enabled:
                label = k.context or ("in-cluster" if k.in_cluster else _current_context(
                    self.runtime.settings.resolve_path(k.kubeconfig) if k.kubeconfig else None))
            self._context_label = f"kube: {label}" if label else ""

    def update_header(self) -> None:
        s = self.runtime.settings
        ctx = self._kube_context()
        envs = sorted({svc.env for svc in s.services})
        env_text = f"envs: {', '.join(envs)}" if envs else "no services configured"
        clock = time.strftime("%H:%M", time.localtime(getattr(self.app, "clock", time.time)()))
        guard = self.runtime.extras.get("guard_badge", "")
        # The mode badge and the clock first: at 80 columns the rest may be cut, never they.
        rest = "  ".join(x for x in (ctx, env_text, guard) if x)
        text = f"deploytui [reverse] {self.mode_badge()} [/reverse] {clock}  {rest}"
        if self.runtime.settings.console.wall:
            text = text.replace(clock, time.strftime("%H:%M:%S", time.localtime(getattr(self.app, "clock", time.time)())))
        if text != self._header_text:
            self._header_text = text
            # One line, always: repaint it without a layout pass of the whole screen.
            self.query_one(HeaderBar).update(text, layout=False)

    def update_banner(self, message: str | None = None, *, error: bool = False) -> None:
        banner = self.query_one(Banner)
        if message is None and self.runtime.read_only and not self.runtime.settings.console.wall:
            locked = " (locked)" if self.runtime.read_only_locked else ""
            message = f"READ-ONLY{locked}: actions are disabled"
        self._banner_text = message or ""
        banner.set_class(bool(message), "-visible")
        banner.set_class(error, "-error")
        banner.update(message or "")

    def _wanted_layout(self) -> str:
        wanted = self.runtime.settings.console.layout
        if wanted != "auto":
            return wanted
        width, height = self.app.size
        if width >= 160 and height >= 40:
            return "grid"
        return "stacked" if height >= 40 else "tabs"

    def apply_layout(self) -> None:
        wanted = self._wanted_layout()
        container = self.query_one("#panes")
        for name in ("grid", "stacked", "tabs"):
            container.set_class(name == wanted, f"-{name}")
        self.query_one(TabStrip).display = wanted == "tabs" or container.has_class("-zoomed")
        self._layout = wanted
        self.update_tabstrip()

    @property
    def layout_name(self) -> str:
        return self._layout

    def update_tabstrip(self) -> None:
        active = self.active_pane_id()
        parts = []
        for pane_id in self.pane_order:
            pane = self.panes[pane_id]
            label = f"{pane.pane_number} {pane.pane_title}"
            counts = getattr(pane, "_counts", "")
            problems = getattr(pane, "problems", None)
            if counts and (pane_id == active or self.app.size.width >= 140):
                label += f" ({counts})"
            elif problems:
                label += f" ({problems}!)"
            parts.append(f"[reverse] {label} [/reverse]" if pane_id == active else f" {label} ")
        text = " ".join(parts)
        if text != self._tabstrip_text:  # called on every snapshot in the tabs layout
            self._tabstrip_text = text
            self.query_one(TabStrip).update(text, layout=False)  # one line, always

    # --- panes --------------------------------------------------------------------------------

    def deliver(self, name: str, snapshot: Any) -> None:
        pane = self.panes.get(name)
        if pane is None or not pane.is_mounted or getattr(self.app, "_exit", False):
            return
        try:
            pane.update_snapshot(snapshot)
        except NoMatches:
            return  # the console is closing: the pane's widgets are already gone
        pane.mark_updated()
        if self._layout == "tabs":
            self.update_tabstrip()

    def refresh_all_rows(self) -> None:
        for pane in self.panes.values():
            pane.refresh_rows()

    def active_pane_id(self) -> str:
        focused = self.focused
        for pane_id, pane in self.panes.items():
            if focused is not None and (focused is pane or pane in focused.ancestors_with_self):
                return pane_id
        for pane_id, pane in self.panes.items():
            if pane.has_class("-active"):
                return pane_id
        return self.pane_order[0] if self.pane_order else ""

    def active_pane(self) -> Pane | None:
        return self.panes.get(self.active_pane_id())

    def focus_pane(self, pane_id: str) -> None:
        pane = self.panes.get(pane_id)
        if pane is None:
            return
        for other in self.panes.values():
            other.set_class(other is pane, "-active")
        pane.focus_body()
        self.update_tabstrip()

    def action_focus_pane(self, pane_id: str) -> None:
        self.focus_pane(pane_id)

    def _step_pane(self, step: int) -> None:
        current = self.active_pane_id()
        index = self.pane_order.index(current) if current in self.pane_order else 0
        self.focus_pane(self.pane_order[(index + step) % len(self.pane_order)])

    def action_next_pane(self) -> None:
        self._step_pane(1)

    def action_previous_pane(self) -> None:
        self._step_pane(-1)

    def action_zoom(self) -> None:
        container = self.query_one("#panes")
        container.toggle_class("-zoomed")
        active = self.active_pane_id()
        self.focus_pane(active)
        self.apply_layout()

    @property
    def zoomed(self) -> bool:
        return self.query_one("#panes").has_class("-zoomed")

    def selected_target(self) -> Target:
        pane = self.active_pane()
        return pane.selected_target() if pane is not None else Target()

    # --- read-only ----------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in MUTATING_ACTIONS and self.runtime.read_only:
            return False  # hidden from footer, help and palette; the door refuses anyway
        if action == "toggle_read_only" and self.runtime.read_only and self.runtime.read_only_locked:
            return False
        return True

    def action_toggle_read_only(self) -> None:
        wanted = not self.runtime.read_only
        if not self.runtime.set_read_only(wanted):
            self.notify("read-only is locked for this console", severity="warning")
            return
        self.notify("read-only on" if wanted else "read-only off: actions enabled")
        self.update_header()
        self.update_banner()
        self.refresh_bindings()

    # --- actions ------------------------------------------------------------------------------

    def _dispatch(self, action: str) -> None:
        if action in MUTATING_ACTIONS and self.runtime.read_only:
            # Reached only programmatically (check_action hides the key); say so, change nothing.
            self.notify(f"{action}: refused — this console is read-only", severity="warning")
            return
        module, fn = ACTION_HANDLERS[action]
        import importlib

        handler = getattr(importlib.import_module(module), fn)
        handler(self, self.selected_target())

    def action_rollback(self) -> None:
        self._dispatch("rollback")

    def action_scale(self) -> None:
        self._dispatch("scale")

    def action_restart(self) -> None:
        self._dispatch("restart")

    def action_ack(self) -> None:
        self._dispatch("ack")

    def action_unack(self) -> None:
        self._dispatch("unack")

    def action_port_reassign(self) -> None:
        self._dispatch("port_reassign")

    def action_guard_arm(self) -> None:
        self._dispatch("guard_arm")

    def action_incident_open(self) -> None:
        self._dispatch("incident_open")

    def action_note(self) -> None:
        self._dispatch("note")

    def action_postmortem(self) -> None:
        self._dispatch("postmortem")

    def action_dead_letters(self) -> None:
        from deploytui.ui.guard_banner import show_dead_letters

        show_dead_letters(self)

    def action_timeline(self) -> None:
        from deploytui.ui.flows import timeline

        timeline(self, self.selected_target())

    # The generic confirm-and-run flow every mutating action uses.
    def run_confirmed_action(self, build: Callable[[], Action], *,
                             on_done: Callable[[Any], None] | None = None) -> None:
        """Plan (thread) -> ConfirmScreen -> run through the door (thread) -> notify."""
        self._plan_worker(build, on_done)

    @work(thread=True, group="action:plan", exit_on_error=False)
    def _plan_worker(self, build: Callable[[], Action], on_done: Callable[[Any], None] | None) -> None:
        try:
            action = build()
            plan = self.runtime.door.plan(action)
        except ActionRefused as exc:
            self.app.call_from_thread(self.notify, str(exc), severity="warning", timeout=8)
            return
        except DeploytuiError as exc:
            self.app.call_from_thread(self.notify, str(exc), severity="error", timeout=10)
            return
        self.app.call_from_thread(self._confirm, action, plan, on_done)

    def _confirm(self, action: Action, plan: ActionPlan, on_done: Callable[[Any], None] | None) -> None:
        from deploytui.ui.screens.confirm import ConfirmScreen

        def decided(ok: bool | None) -> None:
            if ok:
                self.notify(f"{plan.title}: running…", timeout=3)
                self._run_worker(action, plan, on_done)
            else:
                self.notify(f"{plan.title}: cancelled", timeout=3)

        self.app.push_screen(ConfirmScreen(plan), decided)

    @work(thread=True, group="action:run", exit_on_error=False)
    def _run_worker(self, action: Action, plan: ActionPlan, on_done: Callable[[Any], None] | None) -> None:
        result = self.runtime.door.run(action, plan)
        severity = "information" if result.ok else "error"
        text = f"{plan.title}: {'done' if result.ok else 'failed'} — {result.message}"
        self.app.call_from_thread(self.notify, text, severity=severity, timeout=10)
        if on_done is not None:
            self.app.call_from_thread(on_done, result)

    # --- command palette ----------------------------------------------------------------------

    def palette_commands(self) -> Iterable[SystemCommand]:
        """The same actions as the keys, minus those read-only mode hides."""
        for binding in self.BINDINGS:
            action = binding.action
            name = action.split("(")[0]
            if self.check_action(name, ()) is False:
                continue
            title = binding.description or name
            yield SystemCommand(f"{title} [{binding.key}]", f"deploytui: {name.replace('_', ' ')}",
                                self._palette_callback(action))

    def _palette_callback(self, action: str) -> Callable[[], Any]:
        async def run() -> None:
            await self.run_action_string(action)

        return run

    async def run_action_string(self, action: str) -> None:
        # Goes through check_action again: the palette cannot reach a hidden action.
        name = action.split("(")[0]
        if self.check_action(name, ()) is False:
            self.notify(f"{name}: refused — this console is read-only", severity="warning")
            return
        await self.run_action(action)
