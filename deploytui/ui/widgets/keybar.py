"""The key bar: Textual's Footer, rebuilt only when the keys it shows change.

Textual's Footer recomposes on every bindings change (each focus move, each screen resume), and
each of its keys restyles itself twice on mount (``compact`` defaults to True, then the footer's
binding sets it back). At start-up that was five rebuilds of 19 keys and about 85 ms of restyling
before the first frame. This subclass coalesces the changes of one refresh into one check,
rebuilds only when the (key, description, enabled) list differs from what is shown, and gives
each key its compact state before it mounts.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable
from itertools import groupby

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer
from textual.widgets._footer import FooterKey, FooterLabel, KeyGroup

__all__ = ["KeyBar"]


class KeyBar(Footer):
    """A footer that only rebuilds when what it would show changes."""

    def __init__(self, *children: object, **kwargs: object) -> None:
        super().__init__(*children, **kwargs)  # type: ignore[arg-type]
        self._shown: Hashable = None
        self._check_pending = False
        self.builds = 0  # times the keys were (re)built: tests and benchmarks read it

    def _visible_bindings(self) -> list[tuple[Binding, bool, str]]:
        return [(binding, enabled, tooltip)
                for (_, binding, enabled, tooltip) in self.screen.active_bindings.values()
                if binding.show]

    def _signature(self) -> Hashable:
        keys = tuple((b.key, b.action, b.description, enabled, tooltip, b.group)
                     for b, enabled, tooltip in self._visible_bindings())
        return keys, self.show_command_palette, self.compact, self.app.ENABLE_COMMAND_PALETTE

    def _key(self, binding: Binding, enabled: bool, tooltip: str, description: str,
             classes: str = "", *, compact: bool | None = None) -> FooterKey:
        compact = self.compact if compact is None else compact
        key = FooterKey(binding.key, self.app.get_key_display(binding), description,
                        binding.action, disabled=not enabled, tooltip=tooltip,
                        classes=f"{classes} -compact".strip() if compact else classes)
        # Set before mount, so mounting does not run the watcher (a restyle) at all.
        key.set_reactive(FooterKey.compact, compact)
        return key

    def compose(self) -> ComposeResult:
        if not self._bindings_ready:
            return
        self._shown = self._signature()
        self.builds += 1
        by_action: defaultdict[str, list[tuple[Binding, bool, str]]] = defaultdict(list)
        for binding, enabled, tooltip in self._visible_bindings():
            by_action[binding.action].append((binding, enabled, tooltip))
        self.styles.grid_size_columns = len(by_action)
        for group, members in groupby(by_action.values(), lambda m: m[0][0].group):
            grouped = list(members)
            if group is not None and len(grouped) > 1:
                with KeyGroup(classes="-compact" if group.compact else ""):
                    for binding, enabled, tooltip in (m[0] for m in grouped):
                        yield self._key(binding, enabled, tooltip or binding.description, "",
                                        "-grouped")
                yield FooterLabel(group.description)
            else:
                for binding, enabled, tooltip in (m[0] for m in grouped):
                    yield self._key(binding, enabled, tooltip, binding.description)
        if self.show_command_palette and self.app.ENABLE_COMMAND_PALETTE:
            found = self.screen.active_bindings.get(self.app.COMMAND_PALETTE_BINDING)
            if found is not None:
                _node, binding, enabled, _tooltip = found
                # Textual's footer leaves this key compact whatever the footer's setting.
                yield self._key(binding, enabled, binding.tooltip or binding.description,
                                binding.description, "-command-palette", compact=True)

    def bindings_changed(self, screen: Screen) -> None:
        self._bindings_ready = True
        if not screen.app.app_focus:
            return
        if self.is_attached and screen is self.screen and not self._check_pending:
            self._check_pending = True
            self.call_after_refresh(self._recompose_if_changed)

    async def _recompose_if_changed(self) -> None:
        self._check_pending = False
        if not self.is_attached:
            return
        if self._signature() != self._shown:
            await self.recompose()

    def watch_compact(self, compact: bool) -> None:
        if self.is_attached and self._bindings_ready:
            self.call_after_refresh(self._recompose_if_changed)
