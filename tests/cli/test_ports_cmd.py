"""``deploytui ports check`` / ``ports show``: tables, conflicts, JSON, exit codes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from deploytui.cli import main

REPO = Path(__file__).resolve().parents[2]

CLEAN = """\
[checkout.prod]
start = 5050
end = 5050
description = "checkout HTTP"

[checkout.dev]
start = 3050
end = 3050
"""

CONFLICTING = CLEAN + """
[cart.prod]
start = 5050
end = 5050
"""

COMPOSE = """\
services:
  web:
    ports: ["3060:3000"]
  api:
    ports:
      - target: 8080
        published: "3060"
"""


def setup(tmp_path: Path, registry: str, extra: str = "") -> Path:
    (tmp_path / "ports.toml").write_text(registry)
    cfg = tmp_path / "deploytui.toml"
    cfg.write_text('[ports]\nregistry = "ports.toml"\nprobe = false\n'
                   f'allowed = {{ dev = "3000-3999", prod = "5000-5999" }}\n{extra}')
    return cfg


def test_check_ci_clean_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = setup(tmp_path, CLEAN)
    assert main(["ports", "check", "--ci", "-c", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "✓ no conflicts" in out and "checkout" in out and "ports.toml: checkout.prod" in out


def test_check_ci_conflict_exits_1_and_explains(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    cfg = setup(tmp_path, CONFLICTING)
    assert main(["ports", "check", "--ci", "-c", str(cfg)]) == 1
    out = capsys.readouterr().out
    assert "CONFLICTS (1)" in out
    assert "✗ same port, two services in prod: cart@prod and checkout@prod both claim 5050" in out
    assert "ports.toml: cart.prod" in out and "ports.toml: checkout.prod" in out
    assert "suggestion: move checkout@prod to 5051" in out
    assert "✗ duplicate_port" in out  # the row marker: glyph and word


def test_check_without_ci_reports_and_exits_0(tmp_path: Path) -> None:
    assert main(["ports", "check", "-c", str(setup(tmp_path, CONFLICTING))]) == 0


def test_check_env_filter(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = setup(tmp_path, CONFLICTING)
    assert main(["ports", "check", "--ci", "--env", "dev", "-c", str(cfg)]) == 0
    assert main(["ports", "check", "--ci", "--env", "prod", "-c", str(cfg)]) == 1


def test_config_option_before_the_subcommand_too(tmp_path: Path) -> None:
    cfg = setup(tmp_path, CONFLICTING)
    assert main(["-c", str(cfg), "ports", "check", "--ci"]) == 1


def test_check_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "docker-compose.yml").write_text(COMPOSE)
    cfg = setup(tmp_path, CONFLICTING, 'compose_files = ["docker-compose.yml"]\n')
    assert main(["ports", "check", "--ci", "--format", "json", "-c", str(cfg)]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == 1 and doc["ok"] is False and doc["env"] is None
    assert doc["summary"]["conflicts"] == 2 and doc["summary"]["allocations"] == 5
    kinds = {c["kind"]: c for c in doc["conflicts"]}
    assert set(kinds) == {"duplicate_port", "compose_clash"}
    clash = kinds["compose_clash"]
    assert {p["where"] for p in clash["parties"]} == {"docker-compose.yml: services.web.ports[0]",
                                                      "docker-compose.yml: services.api.ports[0]"}
    assert clash["suggestion"].startswith("move ")
    row = next(r for r in doc["allocations"] if r["service"] == "web")
    assert (row["range"], row["source"], row["conflict"]) == ("3060", "compose", "compose_clash")


def test_show_prints_the_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = setup(tmp_path, CONFLICTING)
    assert main(["ports", "show", "-c", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "SERVICE" in out and "DECLARED IN" in out and "CONFLICTS" not in out
    assert main(["ports", "show", "--format", "json", "--env", "dev", "-c", str(cfg)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [r["service"] for r in doc["allocations"]] == ["checkout"] and doc["env"] == "dev"


def test_show_with_live_probe(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        port = s.getsockname()[1]
        cfg = tmp_path / "deploytui.toml"
        cfg.write_text(f"[ports.allocations.live.dev]\nstart = {port}\n")
        assert main(["ports", "show", "--format", "json", "-c", str(cfg)]) == 0
    (row,) = json.loads(capsys.readouterr().out)["allocations"]
    assert row["live"] == "listening" and row["pids"] == [os.getpid()]


@pytest.mark.parametrize(("name", "text", "says"), [
    ("ports.toml", "[checkout.prod\nstart = 1\n", "ports.toml: not valid TOML"),
    ("ports.toml", "[checkout]\nprod = 5050\n", "ports.toml: checkout.prod: expected a table"),
    ("ports.json", '{"checkout": {"prod": 5050}}', "ports.json: checkout.prod: expected a table"),
])
def test_bad_registry_exits_2_naming_file_and_entry(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                    name: str, text: str, says: str) -> None:
    (tmp_path / name).write_text(text)
    cfg = tmp_path / "deploytui.toml"
    cfg.write_text(f'[ports]\nregistry = "{name}"\n')
    assert main(["ports", "check", "--ci", "-c", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "configuration error" in err and says in err


def test_unreadable_kubernetes_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "kubeconfig").write_text("not: [valid")
    cfg = setup(tmp_path, CLEAN, '[kubernetes]\nenabled = true\nkubeconfig = "kubeconfig"\n')
    assert main(["ports", "check", "--ci", "-c", str(cfg)]) == 2
    assert "kubernetes: cannot load the kubeconfig" in capsys.readouterr().err
    assert main(["ports", "check", "--ci", "--no-kube", "-c", str(cfg)]) == 0


def test_ci_as_a_real_process(tmp_path: Path) -> None:
    cfg = setup(tmp_path, CONFLICTING)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "deploytui", "ports", "check", "--ci", *args],
                              capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60,
                              check=False)

    bad = run("-c", str(cfg))
    assert bad.returncode == 1, bad.stderr
    assert "cart@prod and checkout@prod both claim 5050" in bad.stdout
    (tmp_path / "ports.toml").write_text(CLEAN)
    good = run("--config", str(cfg))
    assert good.returncode == 0, good.stderr
    (tmp_path / "ports.toml").write_text("[oops\n")
    broken = run("-c", str(cfg))
    assert broken.returncode == 2 and "ports.toml" in broken.stderr


def test_rows_appear_in_deploytui_snapshot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = setup(tmp_path, CONFLICTING)
    assert main(["snapshot", "--format", "json", "-c", str(cfg)]) == 1  # a conflict: not ok
    section = json.loads(capsys.readouterr().out)["ports"]
    assert section["configured"] is True and section["ok"] is False and section["error"] is None
    assert section["columns"] == ["service", "env", "range", "source", "live", "conflict"]
    assert section["summary"] == {"allocations": 3, "conflicts": 1, "listening": 0,
                                  "undeclared": 0}
    by = {(r["service"], r["env"]): r for r in section["rows"]}
    assert by["cart", "prod"]["conflict"] == "duplicate_port"
    assert by["checkout", "dev"]["conflict"] == "" and by["checkout", "dev"]["range"] == "3050"
    assert main(["snapshot", "-c", str(cfg)]) == 1
    out = capsys.readouterr().out
    assert "PORTS  NOT OK" in out and "duplicate_port" in out


def test_nothing_configured_or_unknown_env_cannot_pass_ci(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    assert main(["ports", "check", "--ci", "-c", str(empty)]) == 2
    assert "no port allocations configured" in capsys.readouterr().err
    cfg = setup(tmp_path, CLEAN)
    assert main(["ports", "check", "--ci", "--env", "prdo", "-c", str(cfg)]) == 2
    assert "no env 'prdo'" in capsys.readouterr().err
    # an env with an allowed range but no allocation yet is simply empty
    cfg.write_text(cfg.read_text().replace('prod = "5000-5999"', 'prod = "5000-5999", qa = "6000-6999"'))
    assert main(["ports", "check", "--ci", "--env", "qa", "-c", str(cfg)]) == 0
    assert "0 allocations" in capsys.readouterr().out
