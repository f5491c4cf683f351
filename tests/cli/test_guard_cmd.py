"""``deploytui guard`` against the simulated fleet: exit codes 0, 1 and 2, progress lines."""

from __future__ import annotations

import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from deploytui.cli import main
from deploytui.demo.fleet import IMAGE_REPO, Fleet
from tests.conftest import free_port

FAST = {"criterion": {"for_seconds": 1.0, "limit": 2}}


def fast_config(fleet: Fleet, tmp_path: Path, **prometheus: Any) -> Path:
    data = tomllib.loads(fleet.config_path.read_text(encoding="utf-8"))
    crit = FAST["criterion"]
    data["guard"] = {
        "mode": "propose", "interval_seconds": 0.5, "window_minutes": 1.0,
        "countdown_seconds": 1.0, "cooldown_minutes": 60.0,
        "error_rate_percent": {"threshold": 10.0, **crit},
        "p95_seconds": {"threshold": 5.0, **crit},
        "restarts_per_minute": {"threshold": 0.5, **crit},
        "db_errors_per_minute": {"threshold": 10.0, **crit},
        "health_failures": {"threshold": 1.0, **crit},
    }
    data["prometheus"].update(prometheus)
    path = tmp_path / "guard.toml"
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    return path


def image(fleet: Fleet) -> str:
    assert fleet.kube is not None
    return str(fleet.kube.deployment_view("shop", "checkout").template_images[0])


def wait_bad(fleet: Fleet) -> None:
    fleet.steer("checkout", "prod", request_rate=2000.0)
    deadline = time.monotonic() + 30
    while not image(fleet).endswith(":1.5.0"):
        assert time.monotonic() < deadline, "the bad rollout did not start"
        time.sleep(0.05)


def test_bad_rollout_auto_rollback_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                           ) -> None:
    with Fleet(scenario="bad-rollout", time_scale=20.0, workdir=tmp_path / "f") as fleet:
        wait_bad(fleet)
        config = fast_config(fleet, tmp_path)
        # report only first: would roll back, nothing changes
        assert main(["guard", "--deployment", "shop/checkout", "-c", str(config)]) == 1
        out = capsys.readouterr().out
        assert "result: would roll back" in out and image(fleet).endswith(":1.5.0")
        assert main(["guard", "--deployment", "shop/checkout", "--auto-rollback", "--dry-run",
                     "-c", str(config)]) == 1
        assert "dry run" in capsys.readouterr().out and image(fleet).endswith(":1.5.0")
        # then for real
        code = main(["guard", "--deployment", "shop/checkout", "--timeout", "60s",
                     "--auto-rollback", "-c", str(config)])
        out = capsys.readouterr().out
        assert code == 1, out
        lines = out.splitlines()
        assert lines[0].startswith("guarding shop/checkout for 60 s every 0.5 s (auto-rollback")
        assert any(" shop/checkout rev 2 " in line and "error rate %" in line for line in lines)
        assert any(line.startswith("guard tripped: rolling back shop/checkout in") for line in lines)
        assert lines[-1].startswith("result: rolled back — rolled back shop/checkout")
        deadline = time.monotonic() + 30
        while not image(fleet).endswith(":1.4.2"):
            assert time.monotonic() < deadline, "checkout was not rolled back"
            time.sleep(0.05)
        assert main(["audit", "--format", "jsonl", "-c", str(config)]) == 0
        audit = capsys.readouterr().out
        assert '"action": "guard_eval"' in audit and '"action": "guard_rollback"' in audit


def test_healthy_rollout_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with Fleet(scenario="steady", time_scale=20.0, workdir=tmp_path / "f") as fleet:
        assert fleet.kube is not None
        fleet.kube.set_image("shop", "checkout", f"{IMAGE_REPO}/checkout:1.4.3")
        config = fast_config(fleet, tmp_path)
        code = main(["guard", "--deployment", "shop/checkout", "--timeout", "4s",
                     "--auto-rollback", "-c", str(config)])
        out = capsys.readouterr().out
        assert code == 0, out
        assert out.splitlines()[-1].startswith("result: healthy")
        assert image(fleet).endswith(":1.4.3")


def test_unreadable_metrics_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with Fleet(scenario="steady", time_scale=20.0, workdir=tmp_path / "f") as fleet:
        config = fast_config(fleet, tmp_path, url=f"http://127.0.0.1:{free_port()}", timeout=0.5)
        code = main(["guard", "--deployment", "shop/checkout", "--timeout", "3s",
                     "--auto-rollback", "-c", str(config)])
        out = capsys.readouterr().out
        assert code == 2, out
        assert "error rate %: no data" in out
        assert out.splitlines()[-1].startswith("result: inconclusive — could not conclude")


def test_bad_arguments_exit_2_as_a_process(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "deploytui", "guard", "--deployment", "checkout"],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 2
    assert "--deployment must be namespace/name" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "deploytui", "guard", "--deployment",
                           "shop/checkout", "--timeout", "soon"],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 2 and "not a duration" in proc.stderr
