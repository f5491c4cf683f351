"""The replica-count modal of ``s``: shows the deployment's current replicas, takes a new
count (typed, or ``+`` / ``-``), validates it with the same rule as
:class:`~deploytui.actions.kube.ScaleAction` and dismisses with the number (None on esc).
The confirmation with exactly what changes comes after, from the door's plan."""

from __future__ import annotations

from typing import ClassVar

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from deploytui.actions.kube import ScaleAction
from deploytui.errors import ActionRefused
from deploytui.sources.rollout_model import Rollout

__all__ = ["CountInput", "ScaleScreen", "check_replicas"]


def check_replicas(text: str) -> tuple[int | None, str]:
    """``(count, "")`` for a valid count, ``(None, reason)`` otherwise."""
    try:
        return ScaleAction.validate(text), ""
    except ActionRefused as exc:
        return None, str(exc)


class CountInput(Input):
    """Digits only; ``+`` / ``-`` step the count instead of being typed."""

    STEPS: ClassVar[dict[str, int]] = {"plus": 1, "equals_sign": 1, "minus": -1}

    async def _on_key(self, event: events.Key) -> None:
        step = self.STEPS.get(event.key)
        if step is None:
            await super()._on_key(event)
            return
        event.stop()
        event.prevent_default()
        self.action_step(step)

    def action_step(self, delta: int) -> None:
        count, _ = check_replicas(self.value or "0")
        self.value = str(max(0, (count or 0) + delta))


class ScaleScreen(ModalScreen[int | None]):
    """Ask for a replica count for ``deployment``."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="scale_cancel"),
    ]

    DEFAULT_CSS = """
    ScaleScreen {
        align: center middle;
    }
    ScaleScreen > Vertical {
        width: 64;
        max-width: 100%;
        height: auto;
        border: thick $warning;
        background: $surface;
        padding: 0 1;
    }
    ScaleScreen .title {
        text-style: bold;
        margin-bottom: 1;
    }
    ScaleScreen .hint {
        color: $text-muted;
    }
    ScaleScreen #scale-error {
        color: $error;
    }
    ScaleScreen Horizontal {
        height: auto;
        margin-top: 1;
        align-horizontal: right;
    }
    ScaleScreen Button {
        margin-left: 1;
    }
    """

    def __init__(self, deployment: str, rollout: Rollout | None = None) -> None:
        super().__init__()
        self.deployment = deployment
        self.rollout = rollout

    def compose(self) -> ComposeResult:
        r = self.rollout
        current = str(r.desired) if r is not None else ""
        with Vertical():
            yield Label(f"Scale {self.deployment}", classes="title", markup=False)
            if r is not None:
                yield Static(f"now: {r.desired} desired · {r.ready} ready · {r.available} "
                             f"available ({r.phase})", markup=False)
            yield Static("Replicas:")
            yield CountInput(value=current, id="scale-input", restrict=r"[0-9]*")
            yield Static("", id="scale-error", markup=False)
            yield Static("+ / - adjust · enter continue to the confirmation · esc cancel",
                         classes="hint")
            with Horizontal():
                yield Button("Cancel", id="cancel")
                yield Button("Continue", variant="primary", id="ok")

    def on_mount(self) -> None:
        self.query_one("#scale-input", Input).focus()

    def _submit(self) -> None:
        count, problem = check_replicas(self.query_one("#scale-input", Input).value)
        if count is None:
            self.query_one("#scale-error", Static).update(problem)
            return
        if self.rollout is not None and count == self.rollout.desired:
            self.query_one("#scale-error", Static).update(
                f"{self.deployment} already has {count} replicas")
            return
        self.dismiss(count)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "ok":
            self._submit()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)
