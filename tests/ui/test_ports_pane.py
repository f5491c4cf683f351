"""The Ports pane in the real console (``App.run_test`` + Pilot) fed by the real PortsSource
over a registry file: conflicts first, filter, explain, reassign through confirm and the door,
read-only, stale."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import Input, Static

from deploytui.config import Settings, load_config
from deploytui.model import MemoryJournal
from deploytui.runtime import build_runtime
from deploytui.sources.ports import PortsSource
from deploytui.ui.app import DeployApp, make_app
from deploytui.ui.console_screen import ConsoleScreen
from deploytui.ui.panes.ports import PortsPane
from deploytui.ui.screens.confirm import ConfirmScreen
from deploytui.ui.screens.port_detail import PortDetailScreen

REGISTRY = """\
# registry: comments survive a reassign
[checkout.prod]
start = 5050
end = 5050
description = "checkout HTTP"

[cart.prod]
start = 5050
end = 5050

[search.dev]
start = 3050
end = 3050
"""


def settings(tmp_path: Path, *, read_only: bool = False) -> Settings:
    (tmp_path / "ports.toml").write_text(REGISTRY)
    cfg = tmp_path / "deploytui.toml"
    cfg.write_text(f"""\
[console]
read_only = {'true' if read_only else 'false'}
[ports]
registry = "ports.toml"
probe = false
allowed = {{ dev = "3000-3999", prod = "5000-5999" }}
[ports.allocations.billing.dev]
start = 3050
""")
    return load_config(cfg)


def app_for(s: Settings) -> tuple[DeployApp, PortsSource, MemoryJournal]:
    journal = MemoryJournal()
    runtime = build_runtime(s, journal=journal, with_sources=False)
    source = PortsSource(s, interval=60.0)
    runtime.sources["ports"] = source
    return make_app(s, runtime=runtime), source, journal


async def until(pilot: Pilot, cond: Callable[[], object], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.02)


def pane_of(app: DeployApp) -> PortsPane:
    screen = app.get_screen_console()
    assert isinstance(screen, ConsoleScreen)
    pane = screen.panes["ports"]
    assert isinstance(pane, PortsPane)
    return pane


def texts(pane: PortsPane) -> list[list[str]]:
    return [[str(c) for c in row.cells] for row in pane.table.rows]


async def test_conflicts_first_with_glyph_and_word(tmp_path: Path) -> None:
    app, _, _ = app_for(settings(tmp_path))
    async with app.run_test(size=(200, 50)) as pilot:
        pane = pane_of(app)
        await until(pilot, lambda: pane.table.row_count == 4, "the first poll")
        rows = texts(pane)
        # two conflicts (prod duplicate, dev duplicate): all four rows conflicted, by env
        assert [r[:3] for r in rows] == [["billing", "dev", "3050"], ["search", "dev", "3050"],
                                         ["cart", "prod", "5050"], ["checkout", "prod", "5050"]]
        assert all(r[5] == "✗ duplicate port" for r in rows)
        assert rows[0][4] == "· not probed" and rows[0][3] == "config"
        assert "4 allocations · 2 conflicts" in str(pane.border_title)
        assert pane.problems == 2 and not pane.stale


async def test_filter_and_clear(tmp_path: Path) -> None:
    app, _, _ = app_for(settings(tmp_path))
    async with app.run_test(size=(200, 50)) as pilot:
        pane = pane_of(app)
        await until(pilot, lambda: pane.table.row_count == 4, "the first poll")
        await pilot.press("3", "slash")
        assert isinstance(app.focused, Input)
        await pilot.press(*"prod")
        await until(pilot, lambda: pane.table.row_count == 2, "the filter")
        assert {r[0] for r in texts(pane)} == {"cart", "checkout"}
        assert "filter 'prod': 2 shown" in str(pane.border_title)
        await pilot.press("enter")  # back to the table, filter kept
        assert app.focused is pane.table and pane.table.row_count == 2
        await pilot.press("escape")
        await until(pilot, lambda: pane.table.row_count == 4, "the filter to clear")


async def test_enter_explains_the_conflict(tmp_path: Path) -> None:
    app, _, _ = app_for(settings(tmp_path))
    async with app.run_test(size=(200, 50)) as pilot:
        pane = pane_of(app)
        await until(pilot, lambda: pane.table.row_count == 4, "the first poll")
        await pilot.press("3", "down", "down", "enter")  # cart@prod
        await until(pilot, lambda: isinstance(app.screen, PortDetailScreen), "the detail screen")
        body = str(app.screen.query_one("#port-detail-body", Static).render())
        assert "declared in: ports.toml: cart.prod" in body
        assert "✗ same port, two services in prod: cart@prod and checkout@prod both claim 5050" in body
        assert "ports.toml: checkout.prod" in body
        assert "move checkout@prod to 5051" in body
        await pilot.press("escape")
        assert isinstance(app.screen, ConsoleScreen)


async def test_p_reassigns_after_typed_confirmation(tmp_path: Path) -> None:
    s = settings(tmp_path)
    app, _, journal = app_for(s)
    async with app.run_test(size=(200, 50)) as pilot:
        pane = pane_of(app)
        await until(pilot, lambda: pane.table.row_count == 4, "the first poll")
        await pilot.press("3", "down", "down", "down")  # checkout@prod
        assert pane.selected_target().port_service == "checkout@prod|ports.toml: checkout.prod"
        await pilot.press("p")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
        confirm = app.screen
        assert isinstance(confirm, ConfirmScreen)
        assert confirm.plan.changes == ("checkout@prod 5050 -> 5051 in ports.toml",)
        await pilot.press(*"checkout", "enter")  # prod: type the service name
        await until(pilot, lambda: journal.audit, "the action to run")
        assert journal.audit[0].status == "ok", journal.audit[0].message
        text = (tmp_path / "ports.toml").read_text()
        assert "[checkout.prod]\nstart = 5051\nend = 5051" in text
        assert text.startswith("# registry: comments survive a reassign")
        # the source polls again at once: the prod conflict is gone
        await until(pilot, lambda: "1 conflict" in str(pane.border_title), "the re-poll")
        checkout = next(r for r in texts(pane) if r[0] == "checkout")
        assert checkout[2] == "5051" and checkout[5] == "✓ ok"


async def test_p_on_an_inline_allocation_says_it_cannot_rewrite_the_config(tmp_path: Path) -> None:
    app, _, journal = app_for(settings(tmp_path))
    async with app.run_test(size=(200, 50)) as pilot:
        pane = pane_of(app)
        await until(pilot, lambda: pane.table.row_count == 4, "the first poll")
        await pilot.press("3", "p")  # billing@dev, inline in the config
        await until(pilot, lambda: any("does not rewrite the config file" in str(n.message)
                                       for n in app._notifications), "the refusal")
        assert not isinstance(app.screen, ConfirmScreen) and journal.audit == []


async def test_read_only_hides_reassign_and_writes_nothing(tmp_path: Path) -> None:
    app, _, journal = app_for(settings(tmp_path, read_only=True))
    async with app.run_test(size=(200, 50)) as pilot:
        pane = pane_of(app)
        await until(pilot, lambda: pane.table.row_count == 4, "the first poll")
        await pilot.press("3", "down", "down", "down", "p")
        await pilot.pause(0.2)
        assert isinstance(app.screen, ConsoleScreen)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, PortDetailScreen), "the detail screen")
        assert app.screen.check_action("port_reassign", ()) is False
        await pilot.press("p")
        await pilot.pause(0.2)
        assert not isinstance(app.screen, ConfirmScreen)
    assert (tmp_path / "ports.toml").read_text() == REGISTRY
    assert journal.audit == []


async def test_broken_registry_marks_the_pane_stale_and_keeps_rows(tmp_path: Path) -> None:
    app, source, _ = app_for(settings(tmp_path))
    async with app.run_test(size=(200, 50)) as pilot:
        pane = pane_of(app)
        await until(pilot, lambda: pane.table.row_count == 4, "the first poll")
        (tmp_path / "ports.toml").write_text("[broken\n")
        source.poke()
        await until(pilot, lambda: pane.stale, "the stale marker")
        assert "not valid TOML" in str(pane.border_subtitle) and pane.has_class("-stale")
        assert pane.table.row_count == 4
        (tmp_path / "ports.toml").write_text(REGISTRY)
        source.poke()
        await until(pilot, lambda: not pane.stale, "recovery")


async def test_not_configured_says_so(tmp_path: Path) -> None:
    s = load_config(_write(tmp_path / "c.toml", ""))
    app = make_app(s, runtime=build_runtime(s, journal=MemoryJournal(), with_sources=False))
    async with app.run_test(size=(200, 50)) as pilot:
        await pilot.pause()
        pane = pane_of(app)
        assert pane.has_class("-empty")
        assert "not configured" in str(pane.query_one(".pane-empty", Static).render())
    await asyncio.sleep(0)


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


async def test_p_from_the_detail_screen_goes_through_the_same_confirmation(tmp_path: Path) -> None:
    app, _, journal = app_for(settings(tmp_path))
    async with app.run_test(size=(200, 50)) as pilot:
        pane = pane_of(app)
        await until(pilot, lambda: pane.table.row_count == 4, "the first poll")
        await pilot.press("3", "down", "down", "down", "enter")  # checkout@prod
        await until(pilot, lambda: isinstance(app.screen, PortDetailScreen), "the detail screen")
        assert app.screen.check_action("port_reassign", ()) is True
        await pilot.press("p")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
        await pilot.press("escape")  # cancelled: nothing written, nothing audited
        await until(pilot, lambda: isinstance(app.screen, ConsoleScreen), "the console")
        assert (tmp_path / "ports.toml").read_text() == REGISTRY and journal.audit == []
        # an inline allocation's detail screen offers no reassign
        await pilot.press("home", "enter")  # billing@dev
        await until(pilot, lambda: isinstance(app.screen, PortDetailScreen), "the detail screen")
        assert app.screen.check_action("port_reassign", ()) is False
        body = str(app.screen.query_one("#port-detail-body", Static).render())
        assert "does not rewrite the config file" in body
