"""The timeline screen, notes, incidents and post-mortems inside the real console app."""

from __future__ import annotations

import time
from pathlib import Path

from textual.widgets import DataTable, Static

from deploytui.config import Settings, parse_config
from deploytui.incidents import IncidentManager, attach_incidents
from deploytui.model import TimelineEvent
from deploytui.runtime import Runtime, build_runtime
from deploytui.store import Store
from deploytui.ui.app import DeployApp, make_app
from deploytui.ui.console_screen import ConsoleScreen
from deploytui.ui.screens.timeline import (
    IncidentScreen,
    NoteScreen,
    SeverityScreen,
    TimelineScreen,
)


def _settings(tmp_path: Path, extra: str = "") -> Settings:
    return parse_config(f"""
[console]
operator = "alice@host"
{extra}

[[services]]
name = "checkout"
env = "prod"
health_url = "http://127.0.0.1:1/health"

[store]
path = "{tmp_path / 'store.db'}"

[postmortem]
output_dir = "{tmp_path / 'pm'}"
""")


def _app(tmp_path: Path, extra: str = "") -> tuple[DeployApp, Runtime, IncidentManager]:
    settings = _settings(tmp_path, extra)
    runtime = build_runtime(settings, with_sources=False)
    manager = attach_incidents(runtime, start=False)
    return make_app(settings, runtime=runtime, autostart_sources=False), runtime, manager


def _rows(screen: TimelineScreen) -> list[list[str]]:
    table = screen.query_one(DataTable)
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


async def _console_key(app: DeployApp, action: str) -> None:
    """Run a console binding's action (as its key would; pane inputs may hold the focus)."""
    console = app.get_screen_console()
    assert console is not None
    await console.run_action(action)


def _header(screen: TimelineScreen) -> str:
    return str(screen.query_one("#timeline-header", Static).render())


async def test_timeline_shows_recent_events_then_the_incident(tmp_path: Path) -> None:
    app, runtime, manager = _app(tmp_path)
    now = time.time()
    runtime.journal.add_event(TimelineEvent(kind="note", summary="deploy [v1.4.2] planned",
                                            ts=now - 600, actor="bob@host"))
    runtime.journal.add_event(TimelineEvent(kind="note", summary="too old to show",
                                            ts=now - 7 * 3600))
    async with app.run_test(size=(140, 40)) as pilot:
        await _console_key(app, "timeline")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, TimelineScreen)
        assert "No open incident" in _header(screen)
        assert [r[3] for r in _rows(screen)] == ["deploy [v1.4.2] planned"]  # markup stays text

        runtime.journal.add_event(TimelineEvent(
            kind="health_changed", summary="prod/checkout: healthy -> unhealthy", ts=time.time(),
            service="prod/checkout", env="prod", details={"from": "healthy", "to": "unhealthy"}))
        screen.refresh_events()
        await pilot.pause()
        assert _header(screen).startswith("Incident #1 · P2 · open")
        kinds = [r[1] for r in _rows(screen)]
        assert kinds == ["note", "health_changed", "incident"]  # 10 min before it, then it
        assert manager.current() is not None

        await pilot.press("escape")
        assert isinstance(app.screen, ConsoleScreen)


async def test_note_severity_and_close_from_the_timeline(tmp_path: Path) -> None:
    app, _runtime, manager = _app(tmp_path)
    manager.open(severity="P3", title="slow checkout", actor="bob@host")
    async with app.run_test(size=(140, 40)) as pilot:
        await _console_key(app, "timeline")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, TimelineScreen)

        await pilot.press("n")
        await pilot.pause()
        assert isinstance(app.screen, NoteScreen)
        await pilot.press(*"db failover started", "enter")
        await pilot.pause()
        assert app.screen is screen
        assert [r[3] for r in _rows(screen)][-1] == "db failover started"
        assert _rows(screen)[-1][4] == "alice@host"

        await pilot.press("s")
        await pilot.pause()
        assert isinstance(app.screen, SeverityScreen)
        await pilot.press("1")
        await pilot.pause()
        current = manager.current()
        assert current is not None and current.severity == "P1"
        assert "· P1 ·" in _header(screen)

        await pilot.press("c")
        await pilot.pause()
        assert isinstance(app.screen, NoteScreen)
        await pilot.press("ctrl+u", *"failover done", "enter")
        await pilot.pause()
        assert manager.current() is None
        closed = manager.store.incident(1)
        assert closed is not None and closed.close_reason == "failover done"
        assert closed.closed_by == "alice@host"
        assert "No open incident" in _header(screen)


async def test_i_opens_an_incident_from_the_console(tmp_path: Path) -> None:
    app, _runtime, manager = _app(tmp_path)
    async with app.run_test(size=(140, 40)) as pilot:
        await _console_key(app, "incident_open")
        await pilot.pause()
        assert isinstance(app.screen, IncidentScreen)
        await pilot.click("#sev-P1")
        await pilot.press(*"payments failing", "enter")
        await pilot.pause()
        assert isinstance(app.screen, ConsoleScreen)
        current = manager.current()
        assert current is not None
        assert (current.severity, current.title, current.opened_by) == (
            "P1", "payments failing", "alice@host")
        # with one open, i offers severity / close instead of a second incident
        await _console_key(app, "incident_open")
        await pilot.pause()
        assert isinstance(app.screen, SeverityScreen)
        await pilot.press("escape")
        assert len(manager.store.incidents()) == 1


async def test_m_writes_a_postmortem(tmp_path: Path) -> None:
    app, _runtime, manager = _app(tmp_path)
    manager.open(severity="P2", title="cart errors", actor="bob@host")
    async with app.run_test(size=(140, 40)) as pilot:
        await _console_key(app, "timeline")
        await pilot.pause()
        await pilot.press("m")
        await app.workers.wait_for_complete()
        await pilot.pause()
    written = list((tmp_path / "pm").glob("*-incident-1.md"))
    assert len(written) == 1
    assert written[0].read_text().startswith("# Post-mortem: incident #1 — cart errors")


async def test_read_only_hides_and_refuses_mutations(tmp_path: Path) -> None:
    app, _runtime, manager = _app(tmp_path, extra="read_only = true")
    async with app.run_test(size=(140, 40)) as pilot:
        await _console_key(app, "timeline")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, TimelineScreen)
        for action in ("note", "incident_open", "postmortem"):
            assert screen.check_action(action, ()) is False
        await pilot.press("n", "i", "m")
        await pilot.pause()
        assert app.screen is screen
    assert manager.store.events() == [] and manager.current() is None
    assert not (tmp_path / "pm").exists()


async def test_store_problem_is_shown(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    Store(settings.store_path).close()
    runtime = build_runtime(settings, journal=Store(settings.store_path, read_only=True),
                            with_sources=False)
    attach_incidents(runtime, start=False)
    app = make_app(settings, runtime=runtime, autostart_sources=False)
    async with app.run_test(size=(140, 40)) as pilot:
        runtime.journal.add_event(TimelineEvent(kind="note", summary="kept in memory"))
        await _console_key(app, "timeline")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, TimelineScreen)
        status = str(screen.query_one("#timeline-status", Static).render())
        assert "read-only" in status and "in memory" in status
        assert [r[3] for r in _rows(screen)] == ["kept in memory"]
