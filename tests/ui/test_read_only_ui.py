"""Read-only in the real console (Pilot): every mutating binding x every entry path, against the
simulated Kubernetes API, a real Alertmanager, the registry file, the store and the post-mortem
folder (the world of ``tests/test_read_only.py``).

Entry paths: the key (with the selection on a row the action would really act on), the command
palette (not listed; typed into the real palette: nothing runs), ``run_action_string`` /
``app.run_action`` / the ``action_*`` method / the flow function called directly (refused), the
detail screens' own keys (rollout ``u`` / ``enter`` on a revision, alert ``a`` / ``A``,
port ``p``, timeline ``n i s c m``). Each read-only test has a live twin showing the same key on
the same selection does open its dialog (or act), so a refusal is never an accident.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import pkgutil
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from textual.binding import Binding
from textual.dom import DOMNode

import deploytui.ui
from deploytui.actions.door import MUTATING_ACTIONS
from deploytui.config import Settings
from deploytui.ui.app import DeployApp, make_app
from deploytui.ui.console_screen import ACTION_BINDINGS, ConsoleScreen
from deploytui.ui.guard_banner import GuardController
from deploytui.ui.screens.confirm import ConfirmScreen, PromptScreen
from tests import test_read_only as ro
from tests.test_read_only import (
    ALERT_ACKED,
    ALERT_OPEN,
    DEPLOYMENT,
    LOCKED_WAYS,
    WAYS,
    World,
    live_settings,
    settings_for,
)

pytestmark = pytest.mark.slow

# the same real systems as the programmatic matrix (module-scoped here too)
kube = ro.kube
alertmanager = ro.alertmanager
world = ro.world

#: ConsoleScreen's mutating bindings: action -> (pane to select in, what to select)
CONSOLE_TARGETS: dict[str, tuple[str, str]] = {
    "rollback": ("rollouts", DEPLOYMENT),
    "scale": ("rollouts", DEPLOYMENT),
    "restart": ("rollouts", DEPLOYMENT),
    "ack": ("alerts", ALERT_OPEN),
    "unack": ("alerts", ALERT_ACKED),
    "port_reassign": ("ports", "checkout@prod"),
    "guard_arm": ("rollouts", DEPLOYMENT),
    "incident_open": ("rollouts", DEPLOYMENT),
    "note": ("rollouts", DEPLOYMENT),
    "postmortem": ("rollouts", DEPLOYMENT),
}

#: every binding of every screen / pane / widget in deploytui.ui whose action changes something:
#: (class name, action) -> how read-only stops it
MUTATING_BINDINGS: dict[tuple[str, str], str] = {
    **{("ConsoleScreen", a): "check_action + door" for a in CONSOLE_TARGETS},
    ("ConsoleScreen", "toggle_read_only"): "check_action (locked) + Runtime.set_read_only",
    ("AlertDetailScreen", "ack"): "check_action + door",
    ("AlertDetailScreen", "unack"): "check_action + door",
    ("PortDetailScreen", "port_reassign"): "check_action + console.run_action_string + door",
    ("RolloutDetailScreen", "rollback_to"): "check_action + _rollback + door",
    ("TimelineScreen", "note"): "check_action + flow check_allowed",
    ("TimelineScreen", "incident_open"): "check_action + flow check_allowed",
    ("TimelineScreen", "incident_severity"): "check_action + flow check_allowed",
    ("TimelineScreen", "incident_close"): "check_action + flow check_allowed",
    ("TimelineScreen", "postmortem"): "check_action + flow check_allowed",
    # second steps: only on screen once the first step got past the door / the flow's check
    ("ConfirmScreen", "confirm_key"): "second step (the door refused the plan first)",
    ("SeverityScreen", "choose"): "second step (severity_flow refused first)",
    ("GuardPromptScreen", "confirm"): "second step (the guard blocks in read-only; the door)",
    ("GuardPromptScreen", "dismiss_prompt"): "answers a proposal: changes nothing",
    ("GuardPromptScreen", "escape"): "aborts a countdown: changes nothing",
    ("DeadLettersScreen", "retry"): "re-sends a notification: hidden and refused in read-only",
}
#: bindings that only move, filter, show or close
VIEW_ACTIONS = frozenset({
    "help", "cycle_theme", "quit", "focus_pane", "next_pane", "previous_pane", "zoom",
    "timeline", "dead_letters", "close", "cycle_filter", "cycle_env", "start_filter", "clear_filters", "filter",
    "clear_filter", "cancel", "dismiss", "dismiss_help", "back", "reload", "cursor_up",
    "cursor_down", "page_up", "page_down", "first", "last", "select"})


def _ui_bindings() -> list[tuple[str, str, str]]:
    """(class name, key, action name) of every binding declared in deploytui.ui."""
    out = []
    for info in pkgutil.walk_packages(deploytui.ui.__path__, "deploytui.ui."):
        module = importlib.import_module(info.name)
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ != module.__name__ or not issubclass(cls, DOMNode):
                continue
            for b in cls.__dict__.get("BINDINGS", []):
                binding = b if isinstance(b, Binding) else Binding(*b)
                out.append((name, binding.key, binding.action.split("(")[0]))
    return out


def test_every_mutating_binding_is_classified() -> None:
    """A new binding must be classified here (mutating: how read-only stops it, or view-only)
    before it ships; the console's mutating bindings are exactly MUTATING_ACTIONS' UI ids."""
    bindings = _ui_bindings()
    assert len(bindings) > 40, "the binding enumeration is broken"
    unknown = [(cls, key, action) for cls, key, action in bindings
               if (cls, action) not in MUTATING_BINDINGS and action not in VIEW_ACTIONS]
    assert not unknown, f"bindings to classify (mutating or view-only): {unknown}"
    console = {action for cls, _, action in bindings if cls == "ConsoleScreen"}
    # (toggle_read_only: refused by the lock, not by the door; see the ctrl+r tests)
    assert (console & MUTATING_ACTIONS) - {"toggle_read_only"} == set(CONSOLE_TARGETS)
    assert {action for _, action, _ in ACTION_BINDINGS} == set(CONSOLE_TARGETS)
    # the door ids the console cannot reach by its own keys are reached through the timeline /
    # the guard (their entry paths are in this file and tests/test_read_only.py)
    assert MUTATING_ACTIONS - console == {"incident_close", "incident_severity", "guard_rollback",
                                          "notify_retry"}
    stale = {k for k in MUTATING_BINDINGS if (k[0], k[1]) not in {(c, a) for c, _, a in bindings}}
    assert not stale, f"classified bindings that no longer exist: {stale}"


# --- helpers -------------------------------------------------------------------------------------


async def until(pilot: Any, check: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await pilot.pause(0.05)


async def settle(pilot: Any, app: DeployApp) -> None:
    """Let keys, notifications and the action workers (plan / run threads) finish."""
    await pilot.pause(0.05)

    def idle() -> bool:
        return not [w for w in app.workers if w.group.startswith("action:") and w.is_running]

    await until(pilot, idle, "the action workers to finish")
    await pilot.pause(0.05)


def console(app: DeployApp) -> ConsoleScreen:
    screen = app.get_screen_console()
    assert screen is not None
    return screen


def _row_key(screen: ConsoleScreen, pane_id: str, what: str) -> str | None:
    pane = screen.panes[pane_id]
    for key, item in getattr(pane, "_by_key", {}).items():
        label = {"rollouts": lambda r: r.key, "alerts": lambda a: a.alertname,
                 "ports": lambda r: getattr(getattr(r, "allocation", None), "label", "")}[pane_id]
        if label(item) == what and (pane_id != "ports" or item.allocation.source == "registry"):
            return str(key)
    return None


async def select(pilot: Any, app: DeployApp, pane_id: str, what: str) -> None:
    screen = console(app)
    key = await until(pilot, lambda: _row_key(screen, pane_id, what), f"{what} in {pane_id}")
    screen.focus_pane(pane_id)
    assert screen.panes[pane_id].table.move_to_key(key)
    await pilot.pause()
    target = screen.selected_target()
    assert target != type(target)(), f"nothing selected for {what}"


async def started(pilot: Any, app: DeployApp) -> GuardController:
    """Wait for the panes to show the world and for the console's guard."""
    screen = console(app)
    for pane_id, what in (("rollouts", DEPLOYMENT), ("alerts", ALERT_OPEN),
                          ("alerts", ALERT_ACKED), ("ports", "checkout@prod")):
        await until(pilot, lambda p=pane_id, w=what: _row_key(screen, p, w), f"{what} shown")
    # the console installs the guard (what ``g`` arms) once the rollouts source exists
    guard: GuardController = await until(
        pilot, lambda: app.runtime.extras.get("guard"), "the console's guard", timeout=10)
    assert isinstance(guard, GuardController)
    return guard


def app_for(settings: Settings) -> DeployApp:
    """The console as ``deploytui`` starts it (sources built after the first frame when the
    console does that)."""
    if "defer_sources" in inspect.signature(make_app).parameters:
        return make_app(settings, defer_sources=True)
    return make_app(settings)


@contextlib.asynccontextmanager
async def running(app: DeployApp) -> AsyncIterator[Any]:
    """``app.run_test`` whose sources are stopped before the app closes: a snapshot delivered
    while the console is closing raises NoMatches in the pane (reported to the lead)."""
    async with app.run_test(size=(200, 50)) as pilot:
        try:
            yield pilot
        finally:
            for worker in list(app.workers):
                if worker.group.startswith(("poll:", "guard")):
                    worker.cancel()
            await pilot.pause(0.3)


def new_events(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """The Deploytui* Kubernetes Events that appeared between two World.state() readings."""
    return sorted((Counter(after["deploytui_events"]) - Counter(before["deploytui_events"]))
                  .elements())


#: the dialogs a flow asks its values in (the replica count, the ack comment and duration)
ASK_SCREENS = ("PromptScreen", "ScaleScreen")


def asking(app: DeployApp) -> bool:
    return type(app.screen).__name__ in ASK_SCREENS


async def answer(pilot: Any, app: DeployApp, value: str | None = None) -> None:
    """Answer the open ask dialog: its default, or ``value`` (the replica count must change)."""
    if value is None and type(app.screen).__name__ == "ScaleScreen":
        value = "5"
    if value is not None:
        app.screen.query("Input").first().value = value
    await pilot.press("enter")
    await settle(pilot, app)


def notes(app: DeployApp) -> list[str]:
    return [str(n.message) for n in app._notifications]


# --- keys ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("way", list(WAYS))
async def test_every_mutating_key_changes_nothing(world: World, monkeypatch: pytest.MonkeyPatch,
                                                  way: str) -> None:
    app = app_for(settings_for(world, way, monkeypatch))
    async with running(app) as pilot:
        guard = await started(pilot, app)
        assert guard.mode == "auto"   # so g would arm it
        screen = console(app)
        assert "READ-ONLY" in screen.mode_badge()
        before = world.state()
        for key, action, _ in ACTION_BINDINGS:
            pane_id, what = CONSOLE_TARGETS[action]
            await select(pilot, app, pane_id, what)
            assert screen.check_action(action, ()) is False, action
            await pilot.press(key)
            await settle(pilot, app)
            assert app.screen is screen, f"{key} ({action}) opened {app.screen!r} in read-only mode"
        footer = {ab.binding.action for ab in screen.active_bindings.values() if ab.enabled}
        assert not footer & MUTATING_ACTIONS, footer
        assert guard.armed is False
        world.assert_unchanged(before, f"the keys ({way})")
        assert not {s for _, s in world.audit()} - {"refused"}, world.audit()


async def test_live_twin_every_key_opens_its_flow(world: World,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The same keys on the same selection in a live console: each reaches its dialog (or, for
    ``g`` and ``m``, acts), so the read-only run above refused something real."""
    app = app_for(live_settings(world, monkeypatch))
    expected: dict[str, type | str] = {
        "rollback": ConfirmScreen, "scale": "ask", "restart": ConfirmScreen,
        "ack": PromptScreen, "unack": ConfirmScreen, "port_reassign": ConfirmScreen,
        "incident_open": "IncidentScreen", "note": "NoteScreen"}
    async with running(app) as pilot:
        guard = await started(pilot, app)
        screen = console(app)
        for key, action, _ in ACTION_BINDINGS:
            pane_id, what = CONSOLE_TARGETS[action]
            await select(pilot, app, pane_id, what)
            await pilot.press(key)
            if action == "guard_arm":
                assert guard.armed is True
                continue
            if action == "postmortem":
                await until(pilot, lambda: world.state()["postmortems"], "the post-mortem file")
                continue
            want = expected[action]
            await until(pilot, lambda w=want: asking(app) if w == "ask"
                        else (type(app.screen).__name__ == w) if isinstance(w, str)
                        else isinstance(app.screen, w), f"{key} ({action}) to open {want}")
            await pilot.press("escape")
            await until(pilot, lambda: app.screen is screen, "the dialog to close")
        assert ("guard_arm", "ok") in world.audit()


# --- toggling back (ctrl+r) ------------------------------------------------------------------------


@pytest.mark.parametrize("way", sorted(LOCKED_WAYS))
async def test_locked_read_only_refuses_ctrl_r(world: World, monkeypatch: pytest.MonkeyPatch,
                                               way: str) -> None:
    app = app_for(settings_for(world, way, monkeypatch))
    async with running(app) as pilot:
        await started(pilot, app)
        screen = console(app)
        before = world.state()
        await pilot.press("ctrl+r")
        await settle(pilot, app)
        assert app.runtime.read_only and app.runtime.read_only_locked
        assert screen.check_action("toggle_read_only", ()) is False
        # programmatically too: the action method and the runtime both refuse
        screen.action_toggle_read_only()
        assert app.runtime.set_read_only(False) is False
        assert app.runtime.read_only
        await select(pilot, app, "rollouts", DEPLOYMENT)
        await pilot.press("s")
        await settle(pilot, app)
        assert app.screen is screen
        world.assert_unchanged(before, f"ctrl+r then s ({way})")


async def test_unlocked_read_only_console_switches_back_with_ctrl_r(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """An unlocked read-only console (``--read-only``) is switched back to live with ``ctrl+r``
    and then the actions work: ``s`` scales the deployment for real (the positive control)."""
    app = app_for(settings_for(world, "flag --read-only", monkeypatch))
    async with running(app) as pilot:
        await started(pilot, app)
        screen = console(app)
        assert app.runtime.read_only and not app.runtime.read_only_locked
        await pilot.press("ctrl+r")
        await settle(pilot, app)
        assert not app.runtime.read_only, (
            "ctrl+r did not switch an unlocked read-only console back to live: "
            f"check_action('toggle_read_only') = {screen.check_action('toggle_read_only', ())}")
        await scale_to_3_with_keys(pilot, app, world)


async def scale_to_3_with_keys(pilot: Any, app: DeployApp, world: World) -> None:
    screen = console(app)
    before = world.state()
    await select(pilot, app, "rollouts", DEPLOYMENT)
    await pilot.press("s")
    await until(pilot, lambda: asking(app), "the replicas prompt")
    await answer(pilot, app, "3")
    await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
    await pilot.press(*"checkout", "enter")        # prod: type the deployment's name
    await until(pilot, lambda: app.screen is screen, "the confirmation to close")
    await settle(pilot, app)
    after = world.state()
    assert after["deployment"]["replicas"] == 3 != before["deployment"]["replicas"]
    assert new_events(before, after) == ["DeploytuiScale"]
    assert ("scale", "ok") in world.audit()
    # put it back for the next tests (through the door, live)
    from deploytui.actions.kube import make_scale

    assert app.runtime.door.run(make_scale(app.runtime, DEPLOYMENT, 2)).ok


async def test_positive_control_live_console_scales_with_keys(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """A live console: ctrl+r turns read-only on (refuses ``s``), ctrl+r again turns it off
    (the console was not started read-only) and ``s`` scales for real."""
    app = app_for(live_settings(world, monkeypatch))
    async with running(app) as pilot:
        await started(pilot, app)
        screen = console(app)
        await pilot.press("ctrl+r")
        await settle(pilot, app)
        assert app.runtime.read_only and "READ-ONLY" in screen.mode_badge()
        before = world.state()
        await select(pilot, app, "rollouts", DEPLOYMENT)
        await pilot.press("s")
        await settle(pilot, app)
        assert app.screen is screen
        world.assert_unchanged(before, "s after ctrl+r")
        await pilot.press("ctrl+r")
        await settle(pilot, app)
        assert not app.runtime.read_only and "LIVE" in screen.mode_badge()
        await scale_to_3_with_keys(pilot, app, world)


# --- the command palette and programmatic calls ------------------------------------------------------


@pytest.mark.parametrize("way", ["flag --read-only", "config [console] read_only",
                                 "env DEPLOYTUI_READ_ONLY=1", "flag --wall"])
async def test_palette_and_programmatic_calls_change_nothing(
        world: World, monkeypatch: pytest.MonkeyPatch, way: str) -> None:
    from deploytui.ui import flows

    app = app_for(settings_for(world, way, monkeypatch))
    async with running(app) as pilot:
        guard = await started(pilot, app)
        screen = console(app)
        before = world.state()
        audit_before = world.audit()
        mutating = [b for b in screen.BINDINGS if b.action in CONSOLE_TARGETS]
        assert len(mutating) == len(CONSOLE_TARGETS)
        # the palette does not list them (the screen's commands, and what the app offers)
        titles = [c.title for c in screen.palette_commands()]
        system = [c.title for c in app.get_system_commands(screen)]
        for b in mutating:
            assert not [t for t in titles + system if t.startswith(f"{b.description} [")], b
        assert any(t.startswith("Zoom") for t in titles)   # the view commands stay
        for action in CONSOLE_TARGETS:
            pane_id, what = CONSOLE_TARGETS[action]
            await select(pilot, app, pane_id, what)
            target = screen.selected_target()
            # what Textual's dispatch does for a palette entry / a binding: check_action first
            assert await app.run_action(f"screen.{action}") is False
            assert await app.run_action(action, screen) is False
            paths: dict[str, Callable[[], Any]] = {
                "run_action_string (the palette callback)": lambda a=action: (
                    screen.run_action_string(a)),
                "the action_* method": lambda a=action: getattr(screen, f"action_{a}")(),
                "ConsoleScreen._dispatch": lambda a=action: screen._dispatch(a),
                "the flow function": lambda a=action, t=target: getattr(flows, a)(screen, t),
            }
            for path, call in paths.items():
                app.clear_notifications()
                result = call()
                if inspect.isawaitable(result):
                    await result
                await settle(pilot, app)
                for _ in range(3):   # scale / ack ask first (ack: comment, duration); the door
                    if not asking(app):
                        break
                    await answer(pilot, app)
                assert app.screen is screen, f"{action} via {path} reached {app.screen!r}"
                assert any("read-only" in n for n in notes(app)), (action, path, notes(app))
        assert guard.armed is False
        world.assert_unchanged(before, f"the palette / programmatic calls ({way})")
        assert world.audit() == audit_before, "door.plan refuses without running anything"


async def test_typing_into_the_real_palette_runs_nothing(world: World,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """ctrl+p, "Scale", enter: in a live console that opens the replicas prompt; read-only,
    the palette has no such command and nothing opens."""
    for read_only in (False, True):
        settings = (settings_for(world, "flag --read-only", monkeypatch) if read_only
                    else live_settings(world, monkeypatch))
        app = app_for(settings)
        async with running(app) as pilot:
            await started(pilot, app)
            screen = console(app)
            await select(pilot, app, "rollouts", DEPLOYMENT)
            before = world.state()
            app.action_command_palette()
            await pilot.pause(0.2)
            await pilot.press(*"scale")
            await pilot.pause(0.5)
            await pilot.press("enter")
            await settle(pilot, app)
            if read_only:
                while app.screen is not screen and not asking(app):
                    await pilot.press("escape")
                    await pilot.pause(0.1)
                assert app.screen is screen
                world.assert_unchanged(before, "the palette")
            else:
                await until(pilot, lambda a=app: asking(a),
                            "the palette's Scale to open the replicas prompt")


# --- the detail screens and the timeline ----------------------------------------------------------


async def test_detail_screens_and_timeline_keys_change_nothing(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.test_read_only import _open_incident

    _open_incident(world, monkeypatch)   # so s / c on the timeline have something to change
    app = app_for(settings_for(world, "flag --read-only", monkeypatch))
    async with running(app) as pilot:
        await started(pilot, app)
        screen = console(app)
        before = world.state()
        audit_before = world.audit()
        assert before["incidents"], "the incident opened elsewhere"

        # rollout detail: u and enter on the previous revision
        await select(pilot, app, "rollouts", DEPLOYMENT)
        await pilot.press("enter")
        await until(pilot, lambda: type(app.screen).__name__ == "RolloutDetailScreen", "detail")
        detail = app.screen
        assert detail.check_action("rollback_to", ()) is False
        detail.query_one("#rollout-revisions").move_to_key("1")
        await pilot.press("u")
        await settle(pilot, app)
        assert app.screen is detail
        await pilot.press("enter")
        await settle(pilot, app)
        assert not isinstance(app.screen, ConfirmScreen) and not asking(app), app.screen
        while app.screen is not screen:
            await pilot.press("escape")
            await pilot.pause(0.05)

        # alert detail: a, A
        for name, key in ((ALERT_OPEN, "a"), (ALERT_ACKED, "A")):
            await select(pilot, app, "alerts", name)
            await pilot.press("enter")
            await until(pilot, lambda: type(app.screen).__name__ == "AlertDetailScreen", "detail")
            detail = app.screen
            assert detail.check_action("ack", ()) is False
            assert detail.check_action("unack", ()) is False
            await pilot.press(key)
            await settle(pilot, app)
            assert not isinstance(app.screen, ConfirmScreen) and not asking(app), app.screen
            while app.screen is not screen:
                await pilot.press("escape")
                await pilot.pause(0.05)

        # port detail: p
        await select(pilot, app, "ports", "checkout@prod")
        await pilot.press("enter")
        await until(pilot, lambda: type(app.screen).__name__ == "PortDetailScreen", "detail")
        detail = app.screen
        assert detail.check_action("port_reassign", ()) is False
        await pilot.press("p")
        await settle(pilot, app)
        assert app.screen is detail
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen, "the port detail to close")

        # the timeline: n i s c m
        await pilot.press("t")
        await until(pilot, lambda: type(app.screen).__name__ == "TimelineScreen", "the timeline")
        timeline = app.screen
        for key, action in (("n", "note"), ("i", "incident_open"), ("s", "incident_severity"),
                            ("c", "incident_close"), ("m", "postmortem")):
            assert timeline.check_action(action, ()) is False, action
            await pilot.press(key)
            await settle(pilot, app)
            assert app.screen is timeline, f"{key} ({action}) opened {app.screen!r}"
            # the action methods themselves (programmatic) refuse too
            getattr(timeline, f"action_{action}")()
            await settle(pilot, app)
            assert app.screen is timeline, f"action_{action} opened {app.screen!r}"
        world.assert_unchanged(before, "the detail screens and the timeline")
        new = world.audit()[len(audit_before):]
        assert not {s for _, s in new} - {"refused"}, new


async def test_live_twin_detail_screens_and_timeline_open_their_flows(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.test_read_only import _open_incident

    _open_incident(world, monkeypatch)
    app = app_for(live_settings(world, monkeypatch))
    async with running(app) as pilot:
        await started(pilot, app)
        screen = console(app)
        await select(pilot, app, "rollouts", DEPLOYMENT)
        await pilot.press("enter")
        await until(pilot, lambda: type(app.screen).__name__ == "RolloutDetailScreen", "detail")
        app.screen.query_one("#rollout-revisions").move_to_key("1")
        await pilot.press("u")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "rollback confirm")
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen, "back")
        await select(pilot, app, "alerts", ALERT_OPEN)
        await pilot.press("enter")
        await until(pilot, lambda: type(app.screen).__name__ == "AlertDetailScreen", "detail")
        await pilot.press("a")
        await until(pilot, lambda: asking(app), "ack prompt")
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen, "back")
        await select(pilot, app, "ports", "checkout@prod")
        await pilot.press("enter")
        await until(pilot, lambda: type(app.screen).__name__ == "PortDetailScreen", "detail")
        await pilot.press("p")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "reassign confirm")
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen, "back")
        await pilot.press("t")
        await until(pilot, lambda: type(app.screen).__name__ == "TimelineScreen", "the timeline")
        timeline = app.screen
        for key, modal in (("n", "NoteScreen"), ("i", "SeverityScreen"), ("s", "SeverityScreen"),
                           ("c", "NoteScreen")):
            await pilot.press(key)
            await until(pilot, lambda m=modal: type(app.screen).__name__ == m, f"{key} -> {modal}")
            await pilot.press("escape")
            await until(pilot, lambda: app.screen is timeline, "back to the timeline")



# --- remapped keys, help ----------------------------------------------------------------------------


@pytest.mark.parametrize("read_only", [True, False], ids=["read-only", "live twin"])
async def test_remapped_keys_are_refused_too(world: World, monkeypatch: pytest.MonkeyPatch,
                                             read_only: bool) -> None:
    """``[keymap]`` moves a mutating binding to another key: read-only still refuses it (the
    check is on the action, not the key); live, the new key opens the flow."""
    import dataclasses
    import types

    base = (settings_for(world, "flag --read-only", monkeypatch) if read_only
            else live_settings(world, monkeypatch))
    settings = dataclasses.replace(base, keymap=types.MappingProxyType(
        {"restart": "x", "port_reassign": "ctrl+y"}))
    app = app_for(settings)
    async with running(app) as pilot:
        await started(pilot, app)
        screen = console(app)
        before = world.state()
        for key, (pane_id, what) in (("x", ("rollouts", DEPLOYMENT)),
                                     ("ctrl+y", ("ports", "checkout@prod"))):
            await select(pilot, app, pane_id, what)
            await pilot.press(key)
            await settle(pilot, app)
            if read_only:
                assert app.screen is screen, f"remapped {key} opened {app.screen!r}"
            else:
                await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), f"{key} flow")
                await pilot.press("escape")
                await until(pilot, lambda: app.screen is screen, "back")
        if read_only:
            from deploytui.ui.screens.help import help_rows

            shown = {desc for _, _, desc in help_rows(screen)}
            assert not shown & {desc for _, _, desc in ACTION_BINDINGS}, shown
        world.assert_unchanged(before, "remapped keys")


# --- a dialog opened while live, answered after read-only came on -----------------------------------


async def _answer_after_read_only(pilot: Any, app: DeployApp, key: str,
                                  modal: str | tuple[str, ...], typed: str) -> None:
    """Press ``key`` (``"i c"``: several), wait for ``modal``, turn read-only on, type and
    press enter, then close whatever is left."""
    screen = console(app)
    modals = (modal,) if isinstance(modal, str) else modal
    await select(pilot, app, "rollouts", DEPLOYMENT)
    for k in key.split():
        await pilot.press(k)
        await pilot.pause(0.1)
    await until(pilot, lambda: type(app.screen).__name__ in modals, f"{key} -> {modal}")
    assert app.runtime.set_read_only(True)      # e.g. another part of the console turns it on
    await pilot.press(*typed, "enter")
    await settle(pilot, app)
    while app.screen is not screen:
        await pilot.press("escape")
        await pilot.pause(0.05)
    assert app.runtime.set_read_only(False)


async def test_door_actions_opened_live_are_refused_once_read_only(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """``s``: the replicas prompt was open when read-only came on; the door refuses the plan."""
    app = app_for(live_settings(world, monkeypatch))
    async with running(app) as pilot:
        await started(pilot, app)
        before = world.state()
        await _answer_after_read_only(pilot, app, "s", ASK_SCREENS, "5")
        world.assert_unchanged(before, "a replicas prompt answered after read-only came on")


@pytest.mark.parametrize(("key", "modal", "typed", "what", "incident"), [
    ("n", "NoteScreen", "written after read-only", "notes", False),
    ("i", "IncidentScreen", "written after read-only", "incidents", False),
    ("i", "SeverityScreen", "1", "incidents", True),
    ("i c", "NoteScreen", "", "incidents", True),
], ids=["note", "incident open", "incident severity", "incident close"])
async def test_incident_and_note_dialogs_opened_live_refuse_once_read_only(
        world: World, monkeypatch: pytest.MonkeyPatch, key: str, modal: str, typed: str,
        what: str, incident: bool) -> None:
    """``n`` / ``i`` / ``i c``: the dialog was open when read-only came on; answering it must
    not write (as the door-based actions re-check at run time). Found by this matrix, fixed in
    2495c0b."""
    if incident:
        from tests.test_read_only import _open_incident

        _open_incident(world, monkeypatch)
    app = app_for(live_settings(world, monkeypatch))
    async with running(app) as pilot:
        await started(pilot, app)
        before = world.state()
        await _answer_after_read_only(pilot, app, key, modal, typed)
        after = world.state()
        assert after[what] == before[what], (
            f"{modal} answered after read-only came on wrote {what}: {after[what]}")


# --- the guard's proposal (guard_rollback) ------------------------------------------------------


@pytest.mark.parametrize("read_only", [True, False], ids=["read-only", "live twin"])
async def test_guard_proposal_y_rolls_back_only_when_live(
        world: World, monkeypatch: pytest.MonkeyPatch, read_only: bool) -> None:
    """A guard proposal on screen (made while live); read-only comes on; ``y`` must not roll
    back (the door refuses the guard's rollback). Live, the same ``y`` rolls back."""
    import dataclasses

    from deploytui.guard import Guard, Observation, Reading
    from deploytui.guard_runner import GuardOutcome, GuardRunner
    from deploytui.ui.guard_banner import GuardPromptScreen

    settings = live_settings(world, monkeypatch)
    settings = dataclasses.replace(settings, guard=dataclasses.replace(
        settings.guard, mode="propose", health_failures=dataclasses.replace(
            settings.guard.health_failures, for_seconds=0, limit=1)))
    app = app_for(settings)
    async with running(app) as pilot:
        controller = await started(pilot, app)
        rt = app.runtime
        before = world.state()
        guard = Guard(settings.guard, DEPLOYMENT, started_at=time.time(), mode="propose")
        decision = guard.evaluate(Observation(
            ts=time.time(), revision=2, readings=(Reading("health_failures", 3.0),),
            has_previous=True, read_only=False, phase="progressing"))
        assert decision.tripped and decision.action == "propose", decision
        outcomes: list[GuardOutcome] = []
        runner = GuardRunner(rt, DEPLOYMENT, mode="propose", countdown_seconds=60,
                             on_prompt=controller.show_prompt, on_finish=outcomes.append)

        async def act() -> None:
            await runner._act(decision)

        app.run_worker(act(), group="test-guard", exit_on_error=False)
        await until(pilot, lambda: isinstance(app.screen, GuardPromptScreen), "the proposal")
        if read_only:
            assert rt.set_read_only(True)
        await pilot.press("y")
        await until(pilot, lambda: outcomes, "the guard's outcome", timeout=30)
        if read_only:
            assert outcomes[0].status == "rollback_failed", outcomes[0]
            assert "read-only" in outcomes[0].message
            world.assert_unchanged(before, "y on a guard proposal")
        else:
            assert outcomes[0].status == "rolled_back", outcomes[0]
            after = world.state()
            assert after["deployment"]["revision"] != before["deployment"]["revision"]
            assert new_events(before, after) == ["DeploytuiRollback"]
