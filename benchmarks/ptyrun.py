"""Run a command in a pseudo-terminal and measure what it writes: bytes, CPU, first frame.

Used by bench_terminal.py (bytes/s and CPU over a run) and bench_startup.py (process start to
first frame), and by a short CI test that runs the byte counter without asserting timings.
"""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from dataclasses import dataclass, field

import psutil

__all__ = ["PtyRun", "run_in_pty", "start_fleet"]


@dataclass
class PtyRun:
    bytes_total: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    first_frame_s: float | None = None
    per_second: list[int] = field(default_factory=list)
    output_tail: bytes = b""

    @property
    def bytes_per_s(self) -> float:
        return self.bytes_total / self.seconds if self.seconds else 0.0

    @property
    def cpu_percent(self) -> float:
        return 100.0 * self.cpu_seconds / self.seconds if self.seconds else 0.0


def run_in_pty(argv: list[str], *, seconds: float, cols: int = 200, rows: int = 50,
               env: dict[str, str] | None = None, first_frame_marker: bytes = b"Health",
               warmup: float = 0.0, keys: list[tuple[float, bytes]] | None = None) -> PtyRun:
    """Run ``argv`` for ``warmup + seconds`` in a pty of cols x rows; count bytes after warmup.

    ``keys``: (at second, bytes) to type. The process gets SIGTERM at the end, then SIGKILL.
    """
    pid, fd = pty.fork()
    if pid == 0:  # child
        os.environ.update(env or {})
        os.environ.setdefault("TERM", "xterm-256color")
        os.execvp(argv[0], argv)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    os.kill(pid, signal.SIGWINCH)
    proc = psutil.Process(pid)
    started = time.monotonic()
    result = PtyRun()
    measuring_from = started + warmup
    cpu_at_start: float | None = None if warmup else 0.0
    buffer = b""
    pending_keys = sorted(keys or [])
    bucket_start, bucket = measuring_from, 0
    try:
        while True:
            now = time.monotonic()
            if now >= measuring_from + seconds:
                break
            while pending_keys and now - started >= pending_keys[0][0]:
                os.write(fd, pending_keys.pop(0)[1])
            if cpu_at_start is None and now >= measuring_from:
                times = proc.cpu_times()
                cpu_at_start = times.user + times.system + times.children_user + times.children_system
            ready, _, _ = select.select([fd], [], [], 0.05)
            if not ready:
                continue
            try:
                data = os.read(fd, 65536)
            except OSError:
                break
            if not data:
                break
            if result.first_frame_s is None:
                buffer += data
                if first_frame_marker in buffer:
                    result.first_frame_s = time.monotonic() - started
                    buffer = b""
            if now >= measuring_from:
                result.bytes_total += len(data)
                while now - bucket_start >= 1.0:
                    result.per_second.append(bucket)
                    bucket, bucket_start = 0, bucket_start + 1.0
                bucket += len(data)
            result.output_tail = (result.output_tail + data)[-4000:]
        times = proc.cpu_times()
        total = times.user + times.system + times.children_user + times.children_system
        result.cpu_seconds = total - (cpu_at_start or 0.0)
        result.seconds = time.monotonic() - measuring_from
    finally:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.kill(pid, sig)
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline:
                    done, _ = os.waitpid(pid, os.WNOHANG)
                    if done:
                        break
                    time.sleep(0.05)
                else:
                    continue
                break
            except (ProcessLookupError, ChildProcessError):
                break
        os.close(fd)
    return result


def start_fleet(*options: str) -> tuple[subprocess.Popen[str], str]:
    """Start `deploytui demo --fleet-only OPTIONS`; return the process and its config path."""
    proc = subprocess.Popen([sys.executable, "-m", "deploytui", "demo", "--fleet-only", *options],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith("config:"):
            return proc, line.split(":", 1)[1].strip()
    proc.kill()
    raise SystemExit("fleet did not start")
