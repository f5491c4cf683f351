"""Test support (no tests here): a small aiohttp server on 127.0.0.1 whose answers each test sets
per path. Shared by the health source, pane and benchmark tests."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def answer(body: Any = b"", *, status: int = 200, ctype: str = "application/json",
           delay: float = 0.0) -> Handler:
    """A handler answering ``body`` (dicts are JSON-encoded) after ``delay`` seconds."""
    data = json.dumps(body).encode() if isinstance(body, dict | list) else (
        body.encode() if isinstance(body, str) else body)

    async def handle(request: web.Request) -> web.StreamResponse:
        if delay:
            await asyncio.sleep(delay)
        resp = web.Response(status=status, body=data)
        if ctype:
            resp.headers["Content-Type"] = ctype
        return resp

    return handle


def hang() -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(3600)
        return web.Response(text="never")

    return handle


def drop(*, after_headers: bool = False) -> Handler:
    """Close the connection without an answer, or after promising 1,000 bytes and sending 10."""
    async def handle(request: web.Request) -> web.StreamResponse:
        transport = request.transport
        assert transport is not None
        if not after_headers:
            transport.close()
            await asyncio.sleep(0.2)
            return web.Response(text="never")
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        resp.content_length = 1000
        await resp.prepare(request)
        await resp.write(b'{"status":')
        await asyncio.sleep(0.05)
        transport.close()
        await asyncio.sleep(0.2)
        return resp

    return handle


def huge(size: int) -> Handler:
    """Streams a ``size``-byte JSON body; records how many bytes it managed to write."""
    async def handle(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(status=200)
        resp.content_type = "application/json"
        resp.content_length = size
        await resp.prepare(request)
        head = b'{"status":"healthy","version":"9.9.9","padding":"'
        await resp.write(head)
        sent = len(head)
        chunk = b"x" * 65536
        try:
            while sent < size - 2:
                part = chunk[: size - 2 - sent]
                await resp.write(part)
                sent += len(part)
            await resp.write(b'"}')
        except (ConnectionError, RuntimeError):
            pass
        return resp

    return handle


class HealthServer:
    """``routes[path] = handler``; ``requests`` logs (path, headers) of every request."""

    def __init__(self) -> None:
        self.routes: dict[str, Handler] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.in_flight: dict[str, int] = {}
        self.max_in_flight: dict[str, int] = {}
        self._runner: web.AppRunner | None = None
        self.base = ""

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def route(self, path: str, handler: Handler) -> str:
        self.routes[path] = handler
        return self.url(path)

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        self.requests.append((path, dict(request.headers)))
        self.in_flight[path] = self.in_flight.get(path, 0) + 1
        self.max_in_flight[path] = max(self.max_in_flight.get(path, 0), self.in_flight[path])
        try:
            handler = self.routes.get(path)
            if handler is None:
                return web.Response(status=404, text="no route")
            return await handler(request)
        finally:
            self.in_flight[path] -= 1

    async def start(self) -> HealthServer:
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, shutdown_timeout=0.2, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
