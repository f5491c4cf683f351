"""``deploytui serve``: the console in a browser, via textual-serve.

Read-only (and locked read-only) unless ``--allow-actions`` is given together with a token the
browser must present (``DEPLOYTUI_SERVE_TOKEN`` or ``--token-file``): open
``http://HOST:PORT/?token=...`` once; the server then sets an HttpOnly cookie for the websocket.
Binds to 127.0.0.1 by default. Every child process is stopped on exit.
"""

from __future__ import annotations

import argparse
import hmac
import logging
import os
import shlex
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from deploytui.cli.common import load_settings

__all__ = ["build_command", "register", "run"]

COOKIE = "deploytui_token"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve the console to a browser (read-only by default)",
                       description="Serve the console in a browser with textual-serve. Read-only "
                       "unless --allow-actions is given with a token (DEPLOYTUI_SERVE_TOKEN or "
                       "--token-file) that the browser must present as ?token=...")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--allow-actions", action="store_true",
                   help="let the browser run actions (requires a token)")
    p.add_argument("--token-file", help="file holding the access token (else $DEPLOYTUI_SERVE_TOKEN)")
    p.add_argument("--demo", action="store_true", help="serve `deploytui demo` instead")
    p.add_argument("-c", "--config", dest="sub_config", help="config file")
    p.set_defaults(func=run)


def build_command(args: argparse.Namespace, config_path: str | None) -> str:
    """The command textual-serve runs (it uses a shell, so every part is quoted)."""
    argv = [sys.executable, "-m", "deploytui"]
    if config_path:
        argv += ["--config", str(Path(config_path).resolve())]
    if not args.allow_actions:
        argv += ["--read-only", "--lock-read-only"]
    if getattr(args, "theme", None):
        argv += ["--theme", args.theme]
    if args.demo:
        argv += ["demo"]
    return "exec " + shlex.join(argv)


def _token(args: argparse.Namespace) -> str:
    if args.token_file:
        try:
            return Path(args.token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SystemExit(f"deploytui serve: cannot read --token-file: {exc.strerror}") from None
    return os.environ.get("DEPLOYTUI_SERVE_TOKEN", "").strip()


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    token = ""
    if args.allow_actions:
        token = _token(args)
        if len(token) < 16:
            print("deploytui serve: --allow-actions needs a token of at least 16 characters in "
                  "$DEPLOYTUI_SERVE_TOKEN or --token-file", file=sys.stderr)
            return 2
    command = build_command(args, settings.source_path or None)
    server = _make_server(command, args.host, args.port, token)
    mode = "actions allowed (token required)" if token else "read-only"
    print(f"deploytui serve: http://{args.host}:{args.port}/  ({mode}); Ctrl-C stops it")
    try:
        server.serve()
    finally:
        _stop_children()
    return 0


def _make_server(command: str, host: str, port: int, token: str) -> object:
    from aiohttp import web
    from textual_serve.server import Server

    class TokenServer(Server):
        async def _make_app(self) -> web.Application:
            app = await super()._make_app()
            if token:
                app.middlewares.append(_token_middleware(token))
            return app

        async def on_startup(self, app: web.Application) -> None:
            return None  # our own start-up line is printed instead of the banner

        def initialize_logging(self) -> None:
            super().initialize_logging()
            for name in ("aiohttp.access", "aiohttp.server", "textual-serve", ""):
                logging.getLogger(name).addFilter(_MaskToken(token))

    return TokenServer(command, host=host, port=port, title="deploytui")


class _MaskToken(logging.Filter):
    """Access logs print query strings: never let the token through."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token

    def filter(self, record: logging.LogRecord) -> bool:
        if self.token:
            message = record.getMessage()
            if self.token in message:
                record.msg = message.replace(self.token, "***")
                record.args = ()
        return True


def _token_middleware(token: str) -> Callable[..., Awaitable[object]]:
    from aiohttp import web

    @web.middleware
    async def check(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        if request.path.startswith("/static"):
            return await handler(request)
        given = request.query.get("token") or request.cookies.get(COOKIE, "")
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise web.HTTPUnauthorized(text="deploytui: a valid ?token= is required")
        response = await handler(request)
        if request.query.get("token") and isinstance(response, web.Response):
            response.set_cookie(COOKIE, token, httponly=True, samesite="Strict")
        return response

    return check


def _stop_children() -> None:
    """Terminate every process we started (the app processes textual-serve spawned)."""
    import psutil

    children = psutil.Process().children(recursive=True)
    for child in children:
        try:
            child.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(children, timeout=3)
    for child in alive:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass
