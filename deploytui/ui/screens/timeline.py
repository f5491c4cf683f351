"""The incident timeline (``t``), notes (``n``), incidents (``i``) and post-mortems (``m``).

Entry points for the console (``deploytui/ui/flows.py`` calls them with the active screen and
the selected :class:`~deploytui.model.Target`; any screen with ``.runtime`` will do):

* :class:`TimelineScreen` ``(runtime)`` — the open incident's events (from half an hour before
  it opened), or the last
  :data:`RECENT_HOURS` hours when none is open; keys ``n`` note, ``i`` open incident,
  ``s`` severity, ``c`` close, ``m`` post-mortem, ``esc`` back.
* :func:`open_incident_flow` — no incident open: ask a title and severity and open one;
  one open: choose its severity (1-4) or close it (c).
* :func:`note_flow` — ask for a note and put it on the timeline.
* :func:`postmortem_flow` — write the post-mortem of the open (else latest) incident, or of the
  last two hours, in a thread; notify the path.

Every mutation is refused in read-only mode (the door's check) and hidden from the footer.
The :class:`~deploytui.incidents.IncidentManager` is ``runtime.extras["incidents"]``; when the
runtime has none yet, :func:`incident_manager` attaches one.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, DataTable, Input, Label, Static

from deploytui.errors import ActionRefused, DeploytuiError
from deploytui.incidents import SEVERITIES, IncidentManager, attach_incidents
from deploytui.model import Target, TimelineEvent
from deploytui.postmortem import LEAD_IN_SECONDS
from deploytui.ui.widgets.keybar import KeyBar

__all__ = [
    "RECENT_HOURS",
    "IncidentScreen",
    "NoteScreen",
    "SeverityScreen",
    "TimelineScreen",
    "close_flow",
    "incident_manager",
    "note_flow",
    "open_incident_flow",
    "postmortem_flow",
    "severity_flow",
]

#: with no open incident, the timeline shows this many hours
RECENT_HOURS = 6.0
_MAX_ROWS = 1000

_MODAL_CSS = """
NoteScreen, IncidentScreen, SeverityScreen {
    align: center middle;
}
NoteScreen > Vertical, IncidentScreen > Vertical, SeverityScreen > Vertical {
    width: 72;
    max-width: 100%;
    height: auto;
    border: thick $primary;
    background: $surface;
    padding: 0 1;
}
NoteScreen .title, IncidentScreen .title, SeverityScreen .title {
    text-style: bold;
    margin-bottom: 1;
}
NoteScreen .error, IncidentScreen .error { color: $error; }
NoteScreen .hint, IncidentScreen .hint, SeverityScreen .hint { color: $text-muted; }
NoteScreen Horizontal, IncidentScreen Horizontal, SeverityScreen Horizontal {
    height: auto;
    margin-top: 1;
}
SeverityScreen Button, IncidentScreen Button, NoteScreen Button { margin-right: 1; }
SeverityScreen Button.-current { text-style: bold reverse; }
"""


def incident_manager(runtime: Any) -> IncidentManager:
    """The runtime's incident manager (attaching one if the app did not)."""
    manager = runtime.extras.get("incidents")
    if isinstance(manager, IncidentManager):
        return manager
    return attach_incidents(runtime)


def _refuse_if_read_only(screen: Any, action_id: str) -> bool:
    """Notify and return True when read-only mode forbids ``action_id``."""
    try:
        screen.runtime.door.check_allowed(action_id)
    except ActionRefused as exc:
        screen.notify(str(exc), severity="warning")
        return True
    return False


# --- modals ------------------------------------------------------------------------------------


class NoteScreen(ModalScreen[str | None]):
    """Ask for one line of text (a note, a close reason). Dismisses with it, or None."""

    DEFAULT_CSS = _MODAL_CSS
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str = "Add a note to the timeline", *, prompt: str = "Note:",
                 value: str = "", hint: str = "Enter saves, Esc cancels.") -> None:
        super().__init__()
        self.title_text = title
        self.prompt = prompt
        self.initial = value
        self.hint = hint

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.title_text, classes="title", markup=False)
            yield Static(self.prompt, markup=False)
            yield Input(value=self.initial, id="note-input")
            yield Static("", classes="error", id="note-error")
            yield Static(self.hint, classes="hint", markup=False)

    def on_mount(self) -> None:
        self.query_one("#note-input", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value.strip()
        if not text:
            self.query_one("#note-error", Static).update("type something, or Esc to cancel")
            return
        self.dismiss(text)

    def action_cancel(self) -> None:
        self.dismiss(None)


class IncidentScreen(ModalScreen[tuple[str, str] | None]):
    """Open an incident: a title and a severity (keys 1-4 while the title is not focused,
    or the buttons). Dismisses with ``(severity, title)``, or None."""

    DEFAULT_CSS = _MODAL_CSS
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, *, severity: str = "P2", title: str = "", services: str = "") -> None:
        super().__init__()
        self.severity = severity
        self.initial_title = title
        self.services = services

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Open an incident", classes="title")
            yield Static("What is happening?", markup=False)
            yield Input(value=self.initial_title, placeholder="checkout errors after deploy",
                        id="incident-title")
            if self.services:
                yield Static(f"Affected: {self.services}", classes="hint", markup=False)
            yield Static(self._severity_text(), id="incident-severity", markup=False)
            with Horizontal():
                for sev in SEVERITIES:
                    yield Button(sev, id=f"sev-{sev}")
            yield Static("", classes="error", id="incident-error")
            yield Static("Enter opens it, Esc cancels.", classes="hint")

    def _severity_text(self) -> str:
        return f"Severity: {self.severity}"

    def on_mount(self) -> None:
        self.query_one("#incident-title", Input).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id and event.button.id.startswith("sev-"):
            self.severity = event.button.id.removeprefix("sev-")
            self.query_one("#incident-severity", Static).update(self._severity_text())
            self.query_one("#incident-title", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss((self.severity, event.value.strip()))

    def action_cancel(self) -> None:
        self.dismiss(None)


class SeverityScreen(ModalScreen[str | None]):
    """For the open incident: 1-4 set the severity, c closes it. Dismisses with ``"P1"`` ..
    ``"P4"``, ``"close"``, or None."""

    DEFAULT_CSS = _MODAL_CSS
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        *(Binding(str(n), f"choose('{sev}')", sev, show=False)
          for n, sev in enumerate(SEVERITIES, start=1)),
        Binding("c", "choose('close')", "Close incident"),
    ]

    def __init__(self, incident_id: int, current: str, *, allow_close: bool = True) -> None:
        super().__init__()
        self.incident_id = incident_id
        self.current = current
        self.allow_close = allow_close

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Incident #{self.incident_id} — severity {self.current}", classes="title")
            with Horizontal():
                for sev in SEVERITIES:
                    yield Button(sev, id=f"sev-{sev}",
                                 classes="-current" if sev == self.current else "")
                if self.allow_close:
                    yield Button("Close incident", variant="warning", id="close")
            hint = "1-4 set the severity"
            yield Static(hint + (", c closes the incident" if self.allow_close else "")
                         + ", Esc cancels.", classes="hint")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "close":
            self.dismiss("close")
        elif event.button.id:
            self.dismiss(event.button.id.removeprefix("sev-"))

    def action_choose(self, value: str) -> None:
        if value == "close" and not self.allow_close:
            return
        self.dismiss(value)

    def action_cancel(self) -> None:
        self.dismiss(None)


# --- flows (what the keys do) ------------------------------------------------------------------


def note_flow(screen: Any, target: Target | None = None) -> None:
    """``n``: ask for a note, add it to the timeline (tagged with the open incident)."""
    if _refuse_if_read_only(screen, "note"):
        return
    runtime = screen.runtime
    manager = incident_manager(runtime)
    service = target.service if target is not None else ""

    def chosen(text: str | None) -> None:
        # read-only may have come on while the dialog was open: check again before writing
        if not text or _refuse_if_read_only(screen, "note"):
            return
        try:
            manager.note(text, actor=runtime.operator, service=service)
        except DeploytuiError as exc:
            screen.notify(str(exc), severity="error")
            return
        screen.notify("note added to the timeline", timeout=3)
        _refresh(screen)

    title = "Add a note to the timeline" + (f" ({service})" if service else "")
    screen.app.push_screen(NoteScreen(title), chosen)


def open_incident_flow(screen: Any, target: Target | None = None) -> None:
    """``i``: open an incident (title, severity), or change / close the open one."""
    runtime = screen.runtime
    manager = incident_manager(runtime)
    current = manager.current()
    if current is not None:
        severity_flow(screen)
        return
    if _refuse_if_read_only(screen, "incident_open"):
        return
    services = [target.service] if target is not None and target.service else []

    def chosen(answer: tuple[str, str] | None) -> None:
        if answer is None or _refuse_if_read_only(screen, "incident_open"):
            return
        severity, title = answer
        try:
            incident = manager.open(severity=severity, title=title, services=services,
                                    actor=runtime.operator)
        except DeploytuiError as exc:
            screen.notify(str(exc), severity="warning")
            return
        screen.notify(f"incident #{incident.id} opened ({incident.severity})", timeout=5)
        _refresh(screen)

    screen.app.push_screen(IncidentScreen(severity=runtime.settings.incidents.default_severity,
                                          services=", ".join(services)), chosen)


def severity_flow(screen: Any) -> None:
    """Change the open incident's severity, or close it (asking for a reason)."""
    if _refuse_if_read_only(screen, "incident_severity"):
        return
    runtime = screen.runtime
    manager = incident_manager(runtime)
    current = manager.current()
    if current is None:
        screen.notify("no incident is open (i opens one)", severity="warning")
        return

    def chosen(value: str | None) -> None:
        if value is None or _refuse_if_read_only(screen, "incident_severity"):
            return
        if value == "close":
            close_flow(screen)
            return
        try:
            updated = manager.set_severity(value, actor=runtime.operator, incident_id=current.id)
        except DeploytuiError as exc:
            screen.notify(str(exc), severity="warning")
            return
        screen.notify(f"incident #{updated.id} is now {updated.severity}", timeout=4)
        _refresh(screen)

    screen.app.push_screen(SeverityScreen(current.id, current.severity), chosen)


def close_flow(screen: Any) -> None:
    """Close the open incident by hand, with a reason."""
    if _refuse_if_read_only(screen, "incident_close"):
        return
    runtime = screen.runtime
    manager = incident_manager(runtime)
    current = manager.current()
    if current is None:
        screen.notify("no incident is open", severity="warning")
        return

    def chosen(reason: str | None) -> None:
        if not reason or _refuse_if_read_only(screen, "incident_close"):
            return
        try:
            closed = manager.close(actor=runtime.operator, reason=reason, incident_id=current.id)
        except DeploytuiError as exc:
            screen.notify(str(exc), severity="warning")
            return
        screen.notify(f"incident #{closed.id} closed", timeout=4)
        _refresh(screen)

    screen.app.push_screen(NoteScreen(f"Close incident #{current.id}", prompt="Why is it over?",
                                      value="resolved"), chosen)


def postmortem_flow(screen: Any, target: Target | None = None) -> None:
    """``m``: write the post-mortem (open or latest incident, else the last 2 hours) in a thread
    and notify its path."""
    if _refuse_if_read_only(screen, "postmortem"):
        return
    runtime = screen.runtime
    manager = incident_manager(runtime)
    app = screen.app

    def write() -> None:
        from deploytui.postmortem import generate_postmortem

        store = manager.store
        try:
            latest = store.incidents(limit=1)
            if latest:
                path = generate_postmortem(store, runtime.settings, incident_id=latest[0].id)
            else:
                path = generate_postmortem(store, runtime.settings, since=time.time() - 7200)
        except (DeploytuiError, ValueError, OSError) as exc:
            app.call_from_thread(app.notify, f"post-mortem failed: {exc}", severity="error",
                                 timeout=10)
            return
        app.call_from_thread(app.notify, f"post-mortem written: {path}", timeout=15)

    app.notify("writing the post-mortem…", timeout=3)
    app.run_worker(write, name="postmortem", group="action:postmortem", thread=True,
                   exit_on_error=False)


def _refresh(screen: Any) -> None:
    for candidate in (screen, *getattr(screen.app, "screen_stack", ())):
        if isinstance(candidate, TimelineScreen):
            candidate.refresh_events()


# --- the timeline ------------------------------------------------------------------------------


class TimelineScreen(Screen[None]):
    """The open incident's events (or the last hours), newest at the bottom, live."""

    DEFAULT_CSS = """
    TimelineScreen #timeline-header {
        dock: top;
        height: auto;
        padding: 0 1;
        background: $panel;
        text-style: bold;
    }
    TimelineScreen #timeline-header.-incident { background: $error 40%; }
    TimelineScreen #timeline-status {
        dock: bottom;
        height: auto;
        padding: 0 1;
        color: $warning;
        display: none;
    }
    TimelineScreen #timeline-status.-visible { display: block; }
    TimelineScreen DataTable { height: 1fr; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="timeline_back"),
        Binding("t", "back", "Back", show=False, id="timeline_close"),
        Binding("n", "note", "Note", id="note"),
        Binding("i", "incident_open", "Incident", id="incident_open"),
        Binding("s", "incident_severity", "Severity", id="incident_severity"),
        Binding("c", "incident_close", "Close incident", id="incident_close"),
        Binding("m", "postmortem", "Post-mortem", id="postmortem"),
        Binding("r", "reload", "Refresh", show=False, id="timeline_refresh"),
    ]

    #: seconds between reloads (other consoles and sources write the same store)
    refresh_seconds: ClassVar[float] = 2.0

    def __init__(self, runtime: Any) -> None:
        super().__init__()
        self.runtime = runtime
        self.manager = incident_manager(runtime)
        self.shown: list[TimelineEvent] = []
        self.incident_open = False
        self._signature: tuple[Any, ...] = ()

    def compose(self) -> ComposeResult:
        yield Static("", id="timeline-header", markup=False)
        table: DataTable[Text] = DataTable(id="timeline-table", cursor_type="row",
                                           zebra_stripes=True)
        table.add_columns("time", "kind", "service", "event", "by")
        yield table
        yield Static("", id="timeline-status", markup=False)
        yield KeyBar()

    def on_mount(self) -> None:
        self.refresh_events()
        self.set_interval(self.refresh_seconds, self.refresh_events)
        self.query_one(DataTable).focus()

    # --- data ----------------------------------------------------------------------------------

    def refresh_events(self) -> None:
        """Reload from the store; redraw only when something changed."""
        incident = self.manager.current()
        store = self.manager.store
        if incident is not None:  # with what changed just before it opened
            events = store.events(since=incident.opened_at - LEAD_IN_SECONDS, limit=_MAX_ROWS)
            header = (f"Incident #{incident.id} · {incident.severity} · open "
                      f"{incident.duration() / 60:.0f} min · "
                      f"{', '.join(incident.services) or 'no services yet'}"
                      + (f" · {incident.title}" if incident.title else ""))
        else:
            events = store.events(since=time.time() - RECENT_HOURS * 3600, limit=_MAX_ROWS)
            header = f"No open incident — the last {RECENT_HOURS:g} hours (i opens one)"
        error = self.manager.error
        signature = (header, len(events), events[-1] if events else None, error)
        if signature == self._signature:
            return
        self._signature = signature
        if self.incident_open != (incident is not None):
            self.incident_open = incident is not None
            self.refresh_bindings()
        head = self.query_one("#timeline-header", Static)
        head.update(header)
        head.set_class(incident is not None, "-incident")
        status = self.query_one("#timeline-status", Static)
        status.update(f"store: {error}" if error else "")
        status.set_class(bool(error), "-visible")
        self._fill(events)

    def _fill(self, events: list[TimelineEvent]) -> None:
        table: DataTable[Text] = self.query_one(DataTable)
        multi_day = bool(events) and (
            datetime.fromtimestamp(events[0].ts).date() != datetime.fromtimestamp(events[-1].ts).date())
        fmt = "%m-%d %H:%M:%S" if multi_day else "%H:%M:%S"
        table.clear()
        for e in events:  # Text, not str: event text is never read as markup
            table.add_row(*(Text(cell) for cell in (
                datetime.fromtimestamp(e.ts).strftime(fmt), e.kind, e.service, e.summary, e.actor)))
        self.shown = events
        if events:
            table.move_cursor(row=len(events) - 1)

    # --- keys ----------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        from deploytui.actions.door import MUTATING_ACTIONS

        if action in MUTATING_ACTIONS and self.runtime.read_only:
            return False
        if action in ("incident_severity", "incident_close") and not self.incident_open:
            return None  # shown greyed out: nothing to change
        return True

    def action_back(self) -> None:
        self.dismiss()

    def action_reload(self) -> None:
        self._signature = ()
        self.refresh_events()

    def action_note(self) -> None:
        note_flow(self, self._selected_target())

    def action_incident_open(self) -> None:
        open_incident_flow(self, self._selected_target())

    def action_incident_severity(self) -> None:
        severity_flow(self)

    def action_incident_close(self) -> None:
        close_flow(self)

    def action_postmortem(self) -> None:
        postmortem_flow(self)

    def _selected_target(self) -> Target:
        table: DataTable[Text] = self.query_one(DataTable)
        row = table.cursor_row
        if 0 <= row < len(self.shown):
            e = self.shown[row]
            return Target(service=e.service, env=e.env)
        return Target()
