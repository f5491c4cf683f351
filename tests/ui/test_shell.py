"""The console shell, headless: sizes and layouts, pane keys, zoom, help, themes, read-only."""

from __future__ import annotations

import pytest

from deploytui.config import ConsoleSettings, Settings
from deploytui.ui.app import DeployApp, make_app
from deploytui.ui.console_screen import ACTION_BINDINGS, ConsoleScreen


def _app(**console: object) -> DeployApp:
    settings = Settings(console=ConsoleSettings(**console))  # type: ignore[arg-type]
    return make_app(settings, autostart_sources=False)


@pytest.mark.parametrize(("size", "layout"), [((80, 24), "tabs"), ((120, 40), "stacked"),
                                              ((200, 50), "grid")])
async def test_starts_at_each_size_with_the_right_layout(size: tuple[int, int], layout: str) -> None:
    app = _app()
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ConsoleScreen)
        assert screen.layout_name == layout
        assert list(screen.panes) == ["health", "rollouts", "ports", "alerts"]
        visible = [p for p in screen.panes.values() if p.display and p.region.height > 0]
        assert len(visible) == (1 if layout == "tabs" else 4)


async def test_number_keys_focus_panes_and_tab_cycles() -> None:
    app = _app()
    async with app.run_test(size=(200, 50)) as pilot:
        screen = app.screen
        assert isinstance(screen, ConsoleScreen)
        for key, pane in (("3", "ports"), ("1", "health"), ("4", "alerts"), ("2", "rollouts")):
            await pilot.press(key)
            assert screen.active_pane_id() == pane
        await pilot.press("tab")
        assert screen.active_pane_id() == "ports"
        await pilot.press("shift+tab", "shift+tab")
        assert screen.active_pane_id() == "health"


async def test_zoom_shows_only_the_focused_pane_and_toggles_back() -> None:
    app = _app()
    async with app.run_test(size=(200, 50)) as pilot:
        screen = app.screen
        assert isinstance(screen, ConsoleScreen)
        await pilot.press("4", "z")
        await pilot.pause()
        assert screen.zoomed
        shown = [pid for pid, p in screen.panes.items() if p.region.height > 0]
        assert shown == ["alerts"]
        assert screen.panes["alerts"].region.height >= 40
        await pilot.press("z")
        await pilot.pause()
        assert not screen.zoomed
        assert all(p.region.height > 0 for p in screen.panes.values())


async def test_help_lists_every_console_binding() -> None:
    from deploytui.ui.screens.help import HelpScreen, help_rows

    app = _app()
    async with app.run_test(size=(120, 40)) as pilot:
        console = app.screen
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        descriptions = {desc for _, _, desc in help_rows(console)}
        for binding in ConsoleScreen.BINDINGS:
            assert binding.description in descriptions
        for _, _, desc in ACTION_BINDINGS:
            assert desc in descriptions
        await pilot.press("escape")
        assert isinstance(app.screen, ConsoleScreen)


async def test_theme_cycling_visits_every_shipped_theme() -> None:
    app = _app(theme="dark")
    async with app.run_test(size=(80, 24)) as pilot:
        assert app.theme == "dark"
        seen = {app.theme}
        for _ in range(len(app.theme_names)):
            await pilot.press("ctrl+t")
            seen.add(app.theme)
        assert {"dark", "light", "high-contrast", "colorblind"} <= seen
        assert app.theme == "dark"  # a full cycle comes back


async def test_unknown_theme_falls_back_with_a_warning() -> None:
    app = _app(theme="no-such-theme")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.theme in app.theme_names
        assert any("no-such-theme" in p for p in app.theme_problems)


async def test_read_only_hides_mutating_keys_and_shows_the_banner() -> None:
    app = _app(read_only=True)
    async with app.run_test(size=(200, 50)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ConsoleScreen)
        assert "READ-ONLY" in screen.mode_badge()
        footer_actions = {ab.binding.action for ab in screen.active_bindings.values()}
        assert not footer_actions & {action for _, action, _ in ACTION_BINDINGS}
        assert "zoom" in footer_actions  # read-only keeps the non-mutating keys
        for _, action, _ in ACTION_BINDINGS:
            assert screen.check_action(action, ()) is False
        palette_titles = [c.title for c in screen.palette_commands()]
        for _, _, desc in ACTION_BINDINGS:
            assert not any(t.startswith(desc) for t in palette_titles)
        banner = screen.query_one("#banner")
        assert banner.has_class("-visible")


async def test_header_shows_mode_badge_and_pinned_clock() -> None:
    settings = Settings()
    app = make_app(settings, autostart_sources=False, mode="demo")
    app.clock = lambda: 0.0
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ConsoleScreen)
        assert screen.mode_badge() == "DEMO · LIVE"
        assert "DEMO" in screen._header_text
