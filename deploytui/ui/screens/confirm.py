"""Confirmation and prompt modals.

``ConfirmScreen`` shows an :class:`~deploytui.actions.door.ActionPlan` — exactly what will change
— and, in prod, asks the operator to type the deployment name. ``PromptScreen`` asks for one
value with a validator (replica count, silence comment, note).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from deploytui.actions.door import ActionPlan

__all__ = ["ConfirmScreen", "PromptScreen"]

MODAL_CSS = """
ConfirmScreen, PromptScreen {
    align: center middle;
}
ConfirmScreen > Vertical, PromptScreen > Vertical {
    width: 80;
    max-width: 100%;
    height: auto;
    max-height: 100%;
    border: thick $warning;
    background: $surface;
    padding: 0 1;
}
ConfirmScreen .title, PromptScreen .title {
    text-style: bold;
    margin-bottom: 1;
}
ConfirmScreen .change {
    color: $text;
}
ConfirmScreen .hint, PromptScreen .hint {
    color: $text-muted;
    margin-top: 1;
}
ConfirmScreen .error, PromptScreen .error {
    color: $error;
}
ConfirmScreen Horizontal, PromptScreen Horizontal {
    height: auto;
    margin-top: 1;
    align-horizontal: right;
}
ConfirmScreen Button, PromptScreen Button {
    margin-left: 1;
}
"""


class ConfirmScreen(ModalScreen[bool]):
    """Dismisses with True when the operator confirms."""

    DEFAULT_CSS = MODAL_CSS
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("y", "confirm_key", "Confirm", show=False),
    ]

    def __init__(self, plan: ActionPlan) -> None:
        super().__init__()
        self.plan = plan

    def compose(self) -> ComposeResult:
        plan = self.plan
        with Vertical():
            yield Label(plan.title, classes="title")
            for line in plan.changes or ("(no change)",):
                yield Static(f"  • {line}", classes="change", markup=False)
            if plan.env:
                yield Static(f"  environment: {plan.env}", classes="change", markup=False)
            if plan.confirm_text:
                yield Static(f"This is {plan.env or 'a protected environment'}. Type "
                             f"{plan.confirm_text!r} to confirm:", classes="hint", markup=False)
                yield Input(placeholder=plan.confirm_text, id="confirm-input")
                yield Static("", classes="error", id="confirm-error")
            else:
                yield Static("Press y or Enter to confirm, Esc to cancel.", classes="hint")
            with Horizontal():
                yield Button("Cancel", id="cancel")
                yield Button("Confirm", variant="error", id="confirm")

    def on_mount(self) -> None:
        if self.plan.confirm_text:
            self.query_one("#confirm-input", Input).focus()
        else:
            self.query_one("#confirm", Button).focus()

    def _try_confirm(self) -> None:
        if self.plan.confirm_text:
            typed = self.query_one("#confirm-input", Input).value.strip()
            if typed != self.plan.confirm_text:
                self.query_one("#confirm-error", Static).update(
                    f"typed text does not match {self.plan.confirm_text!r}")
                return
        self.dismiss(True)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "confirm":
            self._try_confirm()
        else:
            self.dismiss(False)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self._try_confirm()

    def action_confirm_key(self) -> None:
        if not self.plan.confirm_text:
            self.dismiss(True)

    def action_cancel(self) -> None:
        self.dismiss(False)


class PromptScreen(ModalScreen[str | None]):
    """Ask for one value; ``validate`` returns an error message or None. Dismisses with the value."""

    DEFAULT_CSS = MODAL_CSS
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, *, prompt: str = "", value: str = "",
                 validate: Callable[[str], str | None] | None = None, hint: str = "") -> None:
        super().__init__()
        self.title_text = title
        self.prompt = prompt
        self.initial = value
        self.validate = validate
        self.hint = hint

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.title_text, classes="title", markup=False)
            if self.prompt:
                yield Static(self.prompt, markup=False)
            yield Input(value=self.initial, id="prompt-input")
            yield Static("", classes="error", id="prompt-error")
            if self.hint:
                yield Static(self.hint, classes="hint", markup=False)
            with Horizontal():
                yield Button("Cancel", id="cancel")
                yield Button("OK", variant="primary", id="ok")

    def on_mount(self) -> None:
        self.query_one("#prompt-input", Input).focus()

    def _submit(self) -> None:
        value = self.query_one("#prompt-input", Input).value.strip()
        problem = self.validate(value) if self.validate else None
        if problem:
            self.query_one("#prompt-error", Static).update(problem)
            return
        self.dismiss(value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self._submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "ok":
            self._submit()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)
