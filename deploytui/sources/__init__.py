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

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["Publish", "Source", "wake_from_any_thread"]

Publish = Callable[[Any], None]


class Source(Protocol):
    name: str

    async def run(self, publish: Publish) -> None: ...


def wake_from_any_thread(loop: asyncio.AbstractEventLoop | None, event: asyncio.Event | None) -> None:
    """Set a source's wake-up event, whether called on its loop or from another thread (the
    action door runs in worker threads). Does nothing before the source runs or after it ends."""
    if loop is None or event is None or loop.is_closed():
        return
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        event.set()
    else:
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(event.set)
