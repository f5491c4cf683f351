"""A real webhook receiver for notification tests: aiohttp on 127.0.0.1 in its own thread.

    with WebhookReceiver(fail_first=2) as rx:
        url = rx.url("/hooks/T000/B000/SECRETPATH")
        ...
        rx.requests            # [(path, json body)], every request, failed ones too
        rx.delivered           # the ones answered 2xx

``fail_first`` requests (over all paths) get HTTP 500; ``fail_always`` answers 500 forever.
"""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType
from typing import Any

from aiohttp import web

__all__ = ["WebhookReceiver"]


class WebhookReceiver:
    def __init__(self, *, fail_first: int = 0, fail_always: bool = False) -> None:
        self.fail_first = fail_first
        self.fail_always = fail_always
        self.requests: list[tuple[str, Any]] = []
        self.delivered: list[tuple[str, Any]] = []
        self.port = 0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def _handle(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            body = await request.text()
        with self._lock:
            self.requests.append((request.path, body))
            failing = self.fail_always or len(self.requests) <= self.fail_first
            if not failing:
                self.delivered.append((request.path, body))
        if failing:
            return web.Response(status=500, text="receiver: failing on purpose")
        return web.Response(status=202 if "enqueue" in request.path else 200, text="ok")

    async def _main(self) -> None:
        app = web.Application()
        app.router.add_route("POST", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._ready.set()
        while not self._stopped.is_set():
            await asyncio.sleep(0.05)
        await self._runner.cleanup()

    def start(self) -> WebhookReceiver:
        def run() -> None:
            self._loop = asyncio.new_event_loop()
            try:
                self._loop.run_until_complete(self._main())
            finally:
                self._loop.close()
                self._ready.set()

        self._thread = threading.Thread(target=run, name="webhook-receiver", daemon=True)
        self._thread.start()
        if not self._ready.wait(10) or not self.port:
            raise RuntimeError("the webhook receiver did not start")
        return self

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
