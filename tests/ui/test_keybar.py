"""The key bar: Textual's Footer, rebuilt only when the keys it shows change."""

from __future__ import annotations

from textual.widgets._footer import FooterKey

from deploytui.config import ConsoleSettings, Settings
from deploytui.ui.app import DeployApp, make_app
from deploytui.ui.console_screen import ConsoleScreen
from deploytui.ui.widgets.keybar import KeyBar


def _app(**console: object) -> DeployApp:
    settings = Settings(console=ConsoleSettings(**console))  # type: ignore[arg-type]
    return make_app(settings, autostart_sources=False)


def _shown(bar: KeyBar) -> list[tuple[str, str, bool]]:
    return [(k.key, k.description, k.has_class("-disabled")) for k in bar.query(FooterKey)]



async def test_shows_the_screens_visible_bindings_built_once_at_start_up() -> None:
    app = _app()
    async with app.run_test(size=(200, 50)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ConsoleScreen)
        bar = screen.query_one(KeyBar)
        keys = [key for key, _, _ in _shown(bar)]
        visible = [b.key for _n, b, _e, _t in screen.active_bindings.values() if b.show]
        assert [k for k in keys if k != app.COMMAND_PALETTE_BINDING] == visible
        assert "u" in keys and "q" in keys and app.COMMAND_PALETTE_BINDING in keys
        # Textual's Footer rebuilt 19 keys five times here before the first frame.
        assert bar.builds == 1
        assert not any(k.has_class("-compact") for k in bar.query(FooterKey)
                       if not k.has_class("-command-palette"))
        assert bar.query_one(".-command-palette").has_class("-compact")


async def test_focus_moves_that_keep_the_keys_do_not_rebuild() -> None:
    app = _app()
    async with app.run_test(size=(200, 50)) as pilot:
        await pilot.pause()
        bar = app.screen.query_one(KeyBar)
        before = (bar.builds, _shown(bar))
        await pilot.press("3")   # the ports pane: same screen bindings, different pane keys
        await pilot.pause()
        await pilot.press("1")   # back to health: the same keys as at start
        await pilot.pause()
        assert _shown(bar) == before[1]
        assert bar.builds <= before[0] + 2  # one per distinct key set, never per focus event


async def test_read_only_switch_rebuilds_without_the_mutating_keys() -> None:
    app = _app()
    async with app.run_test(size=(200, 50)) as pilot:
        await pilot.pause()
        bar = app.screen.query_one(KeyBar)
        builds = bar.builds
        assert "u" in [k for k, _, _ in _shown(bar)]
        await pilot.press("ctrl+r")
        await pilot.pause()
        await pilot.pause()
        keys = [k for k, _, _ in _shown(bar)]
        assert "u" not in keys and "s" not in keys and "q" in keys
        assert bar.builds == builds + 1
