"""A pane whose module is not part of this build: says so instead of failing to start."""

from __future__ import annotations

from deploytui.ui.panes.base import Pane

__all__ = ["missing_pane"]

_TITLES = {"health": "Health", "rollouts": "Rollouts", "ports": "Ports", "alerts": "Alerts"}


def missing_pane(pane_id: str) -> type[Pane]:
    title = _TITLES.get(pane_id, pane_id.title())

    class MissingPane(Pane):
        not_configured_text = "not available in this build"

        def on_mount(self) -> None:
            super().on_mount()
            self.set_empty(f"{title}: not available in this build")

    MissingPane.pane_id = pane_id
    MissingPane.pane_title = title
    MissingPane.__name__ = f"{title}Pane"
    return MissingPane
