"""The `/` text filter shared by panes: an Input shown while filtering, focusable only then
(so it never takes the keys of a pane that is not filtering)."""

from __future__ import annotations

from typing import Any, ClassVar

from textual.widgets import Input

__all__ = ["TextFilter"]


class TextFilter:
    """Mixin for a Pane with ``self.table`` and ``refresh_rows()``; the Input has the id
    ``filter_input_id``. The filter text is ``self.filter_text``."""

    filter_input_id: ClassVar[str] = ""
    filter_text: str
    table: Any

    def filter_box(self, placeholder: str) -> Input:
        """The filter Input to yield from ``compose_body`` (styled by ``Pane``'s CSS)."""
        box = Input(placeholder=placeholder, id=self.filter_input_id, classes="pane-filter")
        box.can_focus = False  # only while filtering: never the screen's first focus
        return box

    def _filter_box(self) -> Input:
        return self.query_one(f"#{self.filter_input_id}", Input)  # type: ignore[attr-defined]

    def action_filter(self) -> None:
        self.add_class("-filtering")  # type: ignore[attr-defined]
        box = self._filter_box()
        box.can_focus = True
        box.focus()

    def action_clear_filter(self) -> None:
        box = self._filter_box()
        if not self.has_class("-filtering") and not box.value:  # type: ignore[attr-defined]
            return
        box.value = ""
        self.filter_text = ""
        self._close_filter()
        self.refresh_rows()  # type: ignore[attr-defined]

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id != self.filter_input_id:
            return
        event.stop()
        self.filter_text = event.value
        self.refresh_rows()  # type: ignore[attr-defined]

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != self.filter_input_id:
            return
        event.stop()
        if event.value:
            self.table.focus()  # the filter stays shown while it applies
        else:
            self._close_filter()

    def _close_filter(self) -> None:
        self.remove_class("-filtering")  # type: ignore[attr-defined]
        self._filter_box().can_focus = False
        self.table.focus()
