"""``?``: every key, generated from the bindings themselves so it cannot drift."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

__all__ = ["HelpScreen", "help_rows"]


def _bindings_of(obj: Any) -> list[Binding]:
    out = []
    for b in getattr(obj, "BINDINGS", []):
        if isinstance(b, Binding):
            out.append(b)
        elif isinstance(b, tuple):
            out.append(Binding(*b))
    return out


def help_rows(console: Any) -> list[tuple[str, str, str]]:
    """(section, keys, description) for every binding the operator can use right now."""
    rows: list[tuple[str, str, str]] = []
    keymap = dict(console.runtime.settings.keymap) if console is not None else {}

    def keys(b: Binding) -> str:
        raw = keymap.get(b.id, b.key) if b.id else b.key
        return ", ".join(k.replace("question_mark", "?") for k in raw.split(","))

    app = console.app if console is not None else None
    if console is not None:
        for b in _bindings_of(console):
            name = b.action.split("(")[0]
            if console.check_action(name, ()) is False:
                continue
            rows.append(("Console", keys(b), b.description or name))
        seen = set()
        for pane in console.panes.values():
            for b in _bindings_of(pane):
                if (type(pane).__name__, b.key) in seen:
                    continue
                seen.add((type(pane).__name__, b.key))
                if hasattr(pane, "check_action") and pane.check_action(b.action.split("(")[0], ()) is False:
                    continue
                rows.append((pane.pane_title, keys(b), b.description or b.action))
        from deploytui.ui.widgets.vtable import VirtualTable

        for b in _bindings_of(VirtualTable):
            rows.append(("Tables", keys(b), b.description or b.action))
    if app is not None:
        for b in _bindings_of(app):
            rows.append(("App", keys(b), b.description or b.action))
        rows.append(("App", "ctrl+p", "Command palette (the same actions)"))
    return rows


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 90; max-width: 100%; height: auto; max-height: 100%;
        border: round $primary; background: $surface; padding: 0 1;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "dismiss_help", "Close"),
    ]

    def __init__(self, console: Any) -> None:
        super().__init__()
        self.console_screen = console

    def compose(self) -> ComposeResult:
        table = Table(title="deploytui keys", expand=True, show_edge=False)
        table.add_column("Where", style="bold")
        table.add_column("Keys")
        table.add_column("What")
        for section, keys, desc in help_rows(self.console_screen):
            table.add_row(section, keys, desc)
        with VerticalScroll():
            yield Static(table, id="help-table")

    def action_dismiss_help(self) -> None:
        self.dismiss(None)
