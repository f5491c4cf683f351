"""Fixtures shared by the whole suite.

Real parts only: servers on 127.0.0.1, real binaries. A missing binary fails the test under
CI (``CI=true``) with a clear message and skips it elsewhere.
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest


def require_binary(name: str, *candidates: str) -> str:
    """Return the path of a required binary, or fail (CI) / skip (elsewhere) with a clear message."""
    for candidate in (name, *candidates):
        found = shutil.which(candidate) or (candidate if os.path.isfile(candidate) else None)
        if found:
            return found
    message = (
        f"required binary {name!r} is not installed; tests/run installs it "
        f"(apt-get install prometheus prometheus-alertmanager kubernetes-client)"
    )
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep every test away from the user's real config and state directories."""
    base = tmp_path_factory.mktemp("xdg")
    for var in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME"):
        path = base / var.lower()
        path.mkdir()
        monkeypatch.setenv(var, str(path))
    monkeypatch.delenv("DEPLOYTUI_CONFIG", raising=False)
    monkeypatch.delenv("DEPLOYTUI_READ_ONLY", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent
