"""``deploytui demo``: the scenario list, argument errors, and ``--fleet-only`` as a real process."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from deploytui.cli import main
from deploytui.config import load_config
from deploytui.demo.scenarios import SCENARIOS
from tests.conftest import require_binary


def test_list_scenarios(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--list-scenarios"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == list(SCENARIOS)
    assert all(len(line.split(maxsplit=1)[1]) > 10 for line in lines)


@pytest.mark.parametrize("argv", [["--services", "0"], ["--services", "5001"],
                                  ["--scenario", "meteor-strike"], ["--time-scale", "0"]])
def test_bad_arguments_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--fleet-only", *argv]) == 2
    assert "deploytui demo:" in capsys.readouterr().err


class FleetProcess:
    """``python -m deploytui demo --fleet-only ...`` in its own session, stdout read by a thread."""

    def __init__(self, repo_root: Path, *args: str) -> None:
        env = dict(os.environ, PYTHONPATH=str(repo_root), PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "deploytui", "demo", "--fleet-only", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
            cwd=repo_root, start_new_session=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def value(self, prefix: str, timeout: float = 60.0) -> str:
        """The rest of the first stdout line starting with ``prefix``."""
        for line in self.seen:
            if line.startswith(prefix):
                return line[len(prefix):].strip()
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                self.kill()
                pytest.fail(f"no {prefix!r} line; stdout so far: {self.seen}; "
                            f"stderr: {self.proc.stderr.read() if self.proc.stderr else ''}")
            self.seen.append(line)
            if line.startswith(prefix):
                return line[len(prefix):].strip()

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def group_gone(self) -> bool:
        try:
            os.killpg(self.proc.pid, 0)
        except ProcessLookupError:
            return True
        return False


@pytest.fixture
def fleet_process(repo_root: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    started: list[FleetProcess] = []

    def start(*args: str) -> FleetProcess:
        p = FleetProcess(repo_root, *args)
        started.append(p)
        return p

    yield start
    for p in started:
        p.kill()


@pytest.mark.slow
def test_fleet_only_with_kubectl_then_sigint(fleet_process, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    kubectl = require_binary("kubectl")
    p = fleet_process("--workdir", str(tmp_path / "fleet"), "--seed", "3")
    kubeconfig = Path(p.value("kubeconfig:"))
    config = Path(p.value("config:"))
    assert kubeconfig.is_absolute() and kubeconfig.is_file()
    assert config.is_absolute() and config.is_file()
    assert config.parent == (tmp_path / "fleet").resolve()
    out = subprocess.run([kubectl, "--kubeconfig", str(kubeconfig), "get", "deployments", "-A"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "checkout" in out.stdout and "shop-staging" in out.stdout
    settings = load_config(config)
    assert len(settings.services) == 12
    for svc in settings.services:
        assert httpx.get(svc.health_url, timeout=5).status_code == 200
    assert p.proc.poll() is None
    p.proc.send_signal(signal.SIGINT)
    assert p.proc.wait(timeout=30) == 0
    assert p.group_gone()
    with pytest.raises(httpx.ConnectError):
        httpx.get(settings.services[0].health_url, timeout=2)


@pytest.mark.slow
def test_fleet_only_stops_on_sigterm(fleet_process) -> None:  # type: ignore[no-untyped-def]
    p = fleet_process("--services", "300", "--scenario", "flapping", "--no-kubernetes")
    config = Path(p.value("config:"))
    base = p.value("services:").split()[0]
    listing = httpx.get(f"{base}/_sim/services", timeout=10).json()["services"]
    assert len(listing) == 300
    p.proc.send_signal(signal.SIGTERM)
    assert p.proc.wait(timeout=30) == 0
    assert p.group_gone()
    assert not config.exists()  # its temporary workdir is removed


@pytest.mark.slow
def test_demo_runs_the_console_and_stops_the_fleet(repo_root: Path, tmp_path: Path) -> None:
    """``deploytui demo`` in a real pseudo-terminal: the console shows the fleet; ``q`` quits,
    and the fleet goes with it (nothing left in the process group, its sockets closed)."""
    import fcntl
    import pty
    import select
    import struct
    import termios
    import time

    workdir = tmp_path / "demo"
    pid, fd = pty.fork()
    if pid == 0:  # the child: become deploytui demo
        os.environ.update(PYTHONPATH=str(repo_root), TERM="xterm-256color")
        os.chdir(repo_root)
        os.execv(sys.executable, [sys.executable, "-m", "deploytui", "demo", "--workdir",
                                  str(workdir)])
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    screen = b""

    def read_for(seconds: float, until: bytes | None = None) -> None:
        nonlocal screen
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not (until and until in screen):
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                try:
                    screen += os.read(fd, 65536)
                except OSError:
                    return

    try:
        read_for(60, until=b"checkout")
        assert b"checkout" in screen, screen[-2000:]
        config = load_config(workdir / "deploytui-demo.toml")
        url = config.services[0].health_url
        assert httpx.get(url, timeout=5).status_code == 200
        read_for(2)
        os.write(fd, b"q")
        read_for(30)
        _, status = os.waitpid(pid, 0)
        pid = 0
        assert os.waitstatus_to_exitcode(status) == 0, screen[-3000:].decode(errors="replace")
        with pytest.raises(httpx.ConnectError):
            httpx.get(url, timeout=2)
    finally:
        if pid:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)
