"""Outside systems, one module each. No module here imports ``textual``.

Every source the console runs follows one small contract::

    class SomeSource:
        name: str                                   # "health", "rollouts", "ports", "alerts"
        async def run(self, publish: Callable[[Snapshot], None]) -> None:
            '''Loop forever: fetch, publish a new frozen snapshot, wait. Never raises for an
            outside failure (it publishes a snapshot marked stale with the reason instead);
            returns only when cancelled.'''

and every pane's module offers ``async def snapshot_section(settings) -> model.Section`` for
``deploytui snapshot``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["Publish", "Source"]

Publish = Callable[[Any], None]


class Source(Protocol):
    name: str

    async def run(self, publish: Publish) -> None: ...
