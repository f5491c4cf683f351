"""`deploytui serve`: the page, the token, and no process left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import httpx
import psutil
import pytest

from tests.conftest import free_port


def _start(tmp_path: Path, *extra: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "deploytui", "serve", "--port", str(port), *extra],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/static/css/xterm.css", timeout=0.5)
            return proc, port
        except httpx.TransportError:
            if proc.poll() is not None:
                break
            time.sleep(0.1)
    proc.kill()
    out = proc.stdout.read().decode() if proc.stdout else ""
    pytest.fail(f"deploytui serve did not start: {out}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("deploytui serve did not stop on SIGINT")


async def test_serves_the_app_shell_read_only_and_leaves_no_child(tmp_path: Path) -> None:
    proc, port = _start(tmp_path)
    children: list[psutil.Process] = []
    try:
        page = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
        assert page.status_code == 200
        assert "deploytui" in page.text and "/ws" in page.text
        async with aiohttp.ClientSession() as session:
            ws = await session.ws_connect(f"ws://127.0.0.1:{port}/ws?width=100&height=30")
            received = b""
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and b"READ-ONLY" not in received:
                try:
                    msg = await ws.receive(timeout=2)
                except TimeoutError:
                    continue
                if msg.type == aiohttp.WSMsgType.BINARY:
                    received += msg.data
                elif msg.type == aiohttp.WSMsgType.TEXT:
                    received += msg.data.encode()
                else:
                    break
            children = psutil.Process(proc.pid).children(recursive=True)
            assert children, "serve should run the console in a child process"
            cmdlines = [" ".join(c.cmdline()) for c in children]
            assert any("--read-only" in c and "--lock-read-only" in c for c in cmdlines)
            assert b"READ-ONLY" in received  # the console's header, drawn in the browser
            await ws.close()
    finally:
        _stop(proc)
    _gone, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, f"child processes left behind: {[p.pid for p in alive]}"


def test_allow_actions_requires_a_token(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "deploytui", "serve", "--allow-actions"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=30,
                            env={k: v for k, v in os.environ.items() if k != "DEPLOYTUI_SERVE_TOKEN"})
    assert result.returncode == 2
    assert "token" in result.stderr


def test_with_actions_the_browser_must_present_the_token(tmp_path: Path) -> None:
    token = "s3cr3t-token-for-the-browser-0123"
    proc, port = _start(tmp_path, "--allow-actions", env={"DEPLOYTUI_SERVE_TOKEN": token})
    try:
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=5).status_code == 401
        assert httpx.get(f"http://127.0.0.1:{port}/?token=wrong", timeout=5).status_code == 401
        ok = httpx.get(f"http://127.0.0.1:{port}/?token={token}", timeout=5)
        assert ok.status_code == 200
        assert ok.cookies.get("deploytui_token") == token
    finally:
        _stop(proc)
    out = proc.stdout.read().decode() if proc.stdout else ""
    assert token not in out  # the secret is never printed
