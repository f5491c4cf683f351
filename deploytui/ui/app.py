"""The console: header, four panes, footer; keys, command palette, themes, actions.

``make_app(settings, mode)`` builds the app for ``__main__`` and tests alike; tests may pass a
prepared :class:`~deploytui.runtime.Runtime` (with their own sources) instead.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from deploytui.config import Settings
from deploytui.runtime import Runtime, build_runtime
from deploytui.ui.console_screen import ConsoleScreen
from deploytui.ui.themes import load_themes

__all__ = ["PANE_CLASSES", "DeployApp", "make_app"]

log = logging.getLogger(__name__)

#: pane id -> "module:Class"; the order is the order of keys 1-4
PANE_CLASSES: dict[str, str] = {
    "health": "deploytui.ui.panes.health:HealthPane",
    "rollouts": "deploytui.ui.panes.rollouts:RolloutsPane",
    "ports": "deploytui.ui.panes.ports:PortsPane",
    "alerts": "deploytui.ui.panes.alerts:AlertsPane",
}


def load_pane_class(pane_id: str) -> type:
    module, _, cls = PANE_CLASSES[pane_id].partition(":")
    return getattr(importlib.import_module(module), cls)


class DeployApp(App[int]):
    """The deploytui console."""

    CSS_PATH = "app.tcss"
    TITLE = "deploytui"
    ENABLE_COMMAND_PALETTE = True

    BINDINGS: ClassVar[list[Binding]] = [
        Binding("question_mark", "help", "Help", id="help"),
        Binding("ctrl+t", "cycle_theme", "Theme", id="cycle_theme"),
        Binding("q", "quit", "Quit", id="quit"),
    ]

    def __init__(self, runtime: Runtime, *, autostart_sources: bool = True,
                 clock: Callable[[], float] = time.time, defer_sources: bool = False) -> None:
        super().__init__()
        # defer_sources: build the sources after the first frame, in a thread (start-up speed)
        self.defer_sources = defer_sources
        self.clock = clock  # the header clock; snapshot tests pin it
        self.runtime = runtime
        self.autostart_sources = autostart_sources
        self.snapshot_listeners: list[Callable[[str, Any], None]] = []
        self._pending: dict[str, Any] = {}
        self._pending_lock = threading.Lock()
        self._thread_id = threading.get_ident()
        themes, problems = load_themes(runtime.settings)
        self.theme_problems = problems
        for theme in themes.values():
            self.register_theme(theme)
        self.theme_names = list(themes) or ["textual-dark"]
        wanted = runtime.settings.console.theme
        self._initial_theme = wanted if wanted in themes else self.theme_names[0]
        if wanted not in themes:
            self.theme_problems.append(f"theme {wanted!r} not found; using {self._initial_theme!r}")

    # --- start-up -----------------------------------------------------------------------------

    def get_default_screen(self) -> Screen:
        return ConsoleScreen(self.runtime)

    def on_mount(self) -> None:
        self._thread_id = threading.get_ident()
        self.theme = self._initial_theme
        if self.runtime.settings.keymap:
            self.set_keymap(dict(self.runtime.settings.keymap))
        for problem in self.theme_problems:
            self.notify(problem, severity="warning", timeout=8)
        store_error = getattr(self.runtime.journal, "error", None)
        if store_error:
            self.notify(f"store unavailable, events kept in memory only: {store_error}",
                        severity="error", timeout=15)
        self.call_after_refresh(self._first_frame_drawn)
        if self.defer_sources:
            self.call_after_refresh(self._build_sources)
        elif self.autostart_sources:
            self.call_after_refresh(self.start_sources)
            incidents = self.runtime.extras.get("incidents")
            if incidents is not None and hasattr(incidents, "start"):
                incidents.start()

    @staticmethod
    def _first_frame_drawn() -> None:
        """The command line turns the collector off until the first frame (start-up speed):
        keep what start-up built out of every collection from now on, and turn it back on."""
        if not gc.isenabled():
            gc.freeze()
            gc.enable()

    def on_unmount(self) -> None:
        extras = self.runtime.extras
        for name, method in (("incidents", "stop"), ("notify_worker", "stop"), ("guard", "stop_all")):
            obj = extras.get(name)
            if obj is not None and hasattr(obj, method):
                try:
                    getattr(obj, method)()
                except Exception:
                    log.exception("stopping %s failed", name)

    @work(thread=True, group="startup", exit_on_error=False)
    def _build_sources(self) -> None:
        from deploytui.runtime import add_sources

        console = self.get_screen_console()
        try:
            if console is not None:
                console.load_kube_context()
        except Exception:  # only the header's label: never a reason not to build the sources
            log.exception("reading the Kubernetes context for the header failed")
        try:
            add_sources(self.runtime)
        except Exception as exc:  # a broken source module must not take the console down
            log.exception("building sources failed")
            self.call_from_thread(self.notify, f"sources failed to start: {exc}", severity="error")
        self.call_from_thread(self._sources_ready)

    def _sources_ready(self) -> None:
        console = self.get_screen_console()
        if console is not None:
            console.update_header()  # now with the Kubernetes context
            for pane_id, pane in console.panes.items():
                if pane_id not in self.runtime.sources:
                    pane.set_empty(f"{pane.pane_title}: {pane.not_configured_text}")
        settings = self.runtime.settings
        if settings.guard.mode != "off" and "rollouts" in self.runtime.sources \
                and "guard" not in self.runtime.extras:
            from deploytui.ui.guard_banner import install_guard

            install_guard(self.runtime, self)
        if self.autostart_sources:
            self.start_sources()
        # Fleet-scale snapshots make full garbage collections pause the UI for 150-350 ms;
        # what exists after start-up lives as long as the console, so keep it out of them.
        gc.freeze()
        self.set_timer(20.0, gc.freeze)

    def start_sources(self) -> None:
        for name, source in self.runtime.sources.items():
            self.run_worker(self._run_source(name, source), name=f"poll:{name}",
                            group=f"poll:{name}", exit_on_error=False)

    async def _run_source(self, name: str, source: Any) -> None:
        # A source never raises for outside failures; if it has a bug, restart it with backoff
        # rather than leave the pane frozen.
        delay = 1.0
        while True:
            try:
                await source.run(lambda snap, _n=name: self.publish(_n, snap))
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("source %s crashed", name)
                self.notify(f"{name} source failed: {exc}; restarting in {delay:.0f}s",
                            severity="error", timeout=8)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 60.0)

    # --- snapshots: thread-safe, coalesced ------------------------------------------------------

    def publish(self, name: str, snapshot: Any) -> None:
        """Hand a new snapshot to pane ``name``; callable from any thread. Only the latest
        snapshot per pane is delivered when several arrive before the UI gets to them."""
        with self._pending_lock:
            first = name not in self._pending
            self._pending[name] = snapshot
        if not first:
            return
        if threading.get_ident() == self._thread_id:
            self.call_later(self._deliver_pending, name)
        else:
            try:
                self.call_from_thread(self.call_later, self._deliver_pending, name)
            except RuntimeError:  # app shutting down
                pass

    def _deliver_pending(self, name: str) -> None:
        with self._pending_lock:
            snapshot = self._pending.pop(name, None)
        if snapshot is None:
            return
        screen = self.get_screen_console()
        if screen is not None:
            screen.deliver(name, snapshot)
        for listener in list(self.snapshot_listeners):
            try:
                listener(name, snapshot)
            except Exception:
                log.exception("snapshot listener failed")

    def get_screen_console(self) -> ConsoleScreen | None:
        for screen in self.screen_stack:
            if isinstance(screen, ConsoleScreen):
                return screen
        return None

    # --- app-wide actions ---------------------------------------------------------------------

    def action_help(self) -> None:
        from deploytui.ui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.get_screen_console()))

    def action_cycle_theme(self) -> None:
        names = self.theme_names
        current = names.index(self.theme) if self.theme in names else -1
        self.theme = names[(current + 1) % len(names)]
        self._status_colors = None  # type: ignore[attr-defined]
        console = self.get_screen_console()
        if console is not None:
            console.refresh_all_rows()
        self.notify(f"theme: {self.theme}", timeout=2)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        console = self.get_screen_console()
        if console is not None:
            yield from console.palette_commands()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR and event.worker.group.startswith("action:"):
            self.notify(f"{event.worker.name} failed: {event.worker.error}", severity="error")


def make_app(settings: Settings, *, mode: str = "live", runtime: Runtime | None = None,
             autostart_sources: bool = True, with_sources: bool = True,
             defer_sources: bool = False) -> DeployApp:
    """Build the console for ``settings`` (the factory both ``__main__`` and tests use).

    A runtime built here also gets the notification queue worker and the auto-rollback guard;
    an injected runtime (tests) is used as given.
    """
    if runtime is None:
        runtime = build_runtime(settings, mode=mode, with_sources=with_sources and not defer_sources)
        from deploytui.notify import install_notifier

        install_notifier(runtime, start=autostart_sources)
        app = DeployApp(runtime, autostart_sources=autostart_sources, defer_sources=defer_sources)
        if settings.guard.mode != "off" and "rollouts" in runtime.sources:
            from deploytui.ui.guard_banner import install_guard

            install_guard(runtime, app)
        return app
    return DeployApp(runtime, autostart_sources=autostart_sources)
