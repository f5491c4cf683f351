"""``KubeSimThread``: run a ``KubeSim`` on its own event loop in a background thread.

    with KubeSimThread(controller_interval=0.1) as sim:
        sim.add_deployment("default", "web", image="web:1")
        client = ...  # blocking clients talk to sim.url from this thread
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from deploytui.demo.kube.sim import KubeSim

__all__ = ["KubeSimThread"]

T = TypeVar("T")


class KubeSimThread:
    """Starts a ``KubeSim(**kwargs)`` in a daemon thread; ``__enter__`` returns the started sim."""

    def __init__(self, start_timeout: float = 10.0, **kwargs: Any) -> None:
        self._kwargs = kwargs
        self._start_timeout = start_timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self.sim: KubeSim | None = None

    def start(self) -> KubeSim:
        self._thread = threading.Thread(target=self._run, name="kubesim", daemon=True)
        self._thread.start()
        if not self._ready.wait(self._start_timeout):
            raise RuntimeError("the simulated Kubernetes API did not start in time")
        if self._error is not None:
            raise RuntimeError(f"the simulated Kubernetes API failed to start: {self._error}") from self._error
        assert self.sim is not None
        return self.sim

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._main())
        finally:
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        try:
            self.sim = KubeSim(**self._kwargs)
            await self.sim.start()
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await self.sim.stop()

    def call(self, fn: Callable[..., T], *args: Any, timeout: float = 30.0) -> T:
        """Run ``fn(*args)`` on the simulator's loop (awaited if it returns an awaitable)."""
        if self.sim is None:
            raise RuntimeError("KubeSimThread is not running")
        return self.sim.call(fn, *args, timeout=timeout)  # type: ignore[no-any-return]

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout=15)
            self._thread = None

    def __enter__(self) -> KubeSim:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
