"""``deploytui init`` and ``deploytui config check``."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest

from deploytui.cli import main
from deploytui.config import load_config
from deploytui.starter import STARTER_DATA, starter_config_text
from tests.cli.test_main import run_module

SECRET = "tok-7Hq2xKpL9"


def xdg_config() -> Path:
    return Path(os.environ["XDG_CONFIG_HOME"]) / "deploytui" / "config.toml"


# --- init ---------------------------------------------------------------------------------------


def test_init_writes_a_file_that_config_check_accepts(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "new" / "deploytui.toml"
    assert main(["init", str(target)]) == 0
    out = capsys.readouterr().out
    assert f"wrote {target}" in out
    assert f"deploytui config check {target}" in out
    assert target.exists()

    assert main(["config", "check", str(target)]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith(f"{target}: OK\n")
    assert "services: 1 (prod: 1)" in captured.out
    assert captured.err == ""


def test_init_default_path_is_the_xdg_config(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init"]) == 0
    assert xdg_config().exists()
    capsys.readouterr()
    assert main(["config", "check"]) == 0  # found by the lookup, no path needed
    assert capsys.readouterr().out.startswith(f"{xdg_config()}: OK")


def test_init_round_trips_through_a_real_process(tmp_path: Path) -> None:
    target = tmp_path / "c.toml"
    result = run_module("init", str(target))
    assert result.returncode == 0, result.stderr
    result = run_module("config", "check", str(target))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{target}: OK")


def test_init_refuses_to_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "c.toml"
    target.write_text("# mine\n", encoding="utf-8")
    assert main(["init", str(target)]) == 2
    err = capsys.readouterr().err
    assert err == f"deploytui: {target} already exists; use --force to overwrite it\n"
    assert target.read_text(encoding="utf-8") == "# mine\n"


def test_init_force_overwrites(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "c.toml"
    target.write_text("# mine\n", encoding="utf-8")
    assert main(["init", "--force", str(target)]) == 0
    assert target.read_text(encoding="utf-8") == starter_config_text()


def test_init_where_it_cannot_write(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("", encoding="utf-8")
    assert main(["init", str(blocker / "config.toml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"deploytui: cannot write {blocker / 'config.toml'}: ")
    # a directory in the way, even with --force
    folder = tmp_path / "folder.toml"
    folder.mkdir()
    assert main(["init", "--force", str(folder)]) == 2
    assert capsys.readouterr().err.startswith(f"deploytui: cannot write {folder}: ")


def test_starter_text_is_commented_and_carries_the_starter_data() -> None:
    text = starter_config_text()
    assert text.startswith("# deploytui configuration (written by `deploytui init`).")
    data = tomllib.loads(text)
    assert data == STARTER_DATA
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if " = " in line and not line.startswith(("#", " ")) and not line.startswith(("dev", "staging", "prod")):
            assert lines[i - 1].startswith("#"), f"no comment above {line!r}"
        if line.startswith("["):
            assert lines[i - 1].startswith("#"), f"no comment above {line!r}"


def test_starter_subtable_comment_names_the_field() -> None:
    lines = starter_config_text().splitlines()
    i = lines.index("[ports.allowed]")
    assert lines[i - 1] == "# Allowed range per env, 'start-end'."


# --- config check -----------------------------------------------------------------------------


def test_check_summary(tmp_path: Path, repo_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    example = repo_root / "config.example.toml"
    assert main(["config", "check", str(example)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{example}: OK\n")
    assert "  services: 1 (prod: 1)\n" in out
    assert "  kubernetes: $KUBECONFIG / ~/.kube/config, context (current), namespaces shop\n" in out
    assert "  prometheus: http://127.0.0.1:9090, 1 custom queries\n" in out
    assert "  alertmanager: http://127.0.0.1:9093\n" in out
    assert "  ports: registry none, 0 compose files, 1 inline allocations\n" in out
    assert "  notify: ops-slack (slack, not set), ops-pager (pagerduty, not set)\n" in out
    assert "  guard: propose\n" in out
    assert "  console: live, theme dark, refresh 5s\n" in out


def test_check_counts_services_per_env(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "c.toml"
    svc = '[[services]]\nname = "{n}"\nenv = "{e}"\nhealth_url = "http://127.0.0.1:1/h"\n'
    path.write_text(svc.format(n="a", e="prod") + svc.format(n="b", e="prod")
                    + svc.format(n="a", e="dev") + "[console]\nwall = true\n", encoding="utf-8")
    assert main(["config", "check", str(path)]) == 0
    out = capsys.readouterr().out
    assert "  services: 3 (dev: 1, prod: 2)\n" in out
    assert "  kubernetes: off\n" in out
    assert "  alertmanager: off\n" in out
    assert "  notify: none\n" in out
    assert "  console: read-only," in out


def test_check_with_no_config_anywhere(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("deploytui: no config file found (looked at --config, $DEPLOYTUI_CONFIG")
    assert "deploytui init" in err


def test_check_bad_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[[services]]\nname = "a"\nhealth_url = "http://a/h"\n' * 4
                    + '[[services]]\nname = "b"\nhealth_url = "http:/nope"\n', encoding="utf-8")
    assert main(["config", "check", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    # the duplicates are not reported while a service is invalid; the bad URL is
    assert captured.err == (f"deploytui: configuration error in {path.resolve()}: "
                            "services[4].health_url: not a valid http(s) URL: 'http:/nope'\n")


SECRET_CONFIG = """
[prometheus]
url = "http://prom:${SECRET_VALUE}@127.0.0.1:9090"
token = "${SECRET_VALUE}"
[alertmanager]
url = "http://127.0.0.1:9093/?token=${SECRET_VALUE}"
token = "Bearer ${SECRET_VALUE}"
[[services]]
name = "a"
health_url = "http://127.0.0.1:1/health"
headers = { Authorization = "Bearer ${SECRET_VALUE}" }
[[notify.channels]]
name = "slack"
kind = "slack"
url = "https://hooks.slack.com/services/${SECRET_VALUE}"
[[notify.channels]]
name = "pager"
kind = "pagerduty"
routing_key = "${SECRET_VALUE}"
[[notify.channels]]
name = "hook"
kind = "webhook"
url = "https://user:${SECRET_VALUE}@hooks.example.com/x"
"""


def test_check_never_prints_a_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SECRET_VALUE", SECRET)
    path = tmp_path / "c.toml"
    path.write_text(SECRET_CONFIG, encoding="utf-8")
    settings = load_config(path)
    assert settings.prometheus.token.reveal() == SECRET  # the value did reach the settings
    assert main(["config", "check", str(path)]) == 0
    captured = capsys.readouterr()
    output = captured.out + captured.err
    assert SECRET not in output
    assert "slack (slack, https://hooks.slack.com/***)" in output
    assert "pager (pagerduty, ***)" in output
    assert "hook (webhook, https://hooks.example.com/***)" in output
    assert "token ***" in output
    assert "127.0.0.1:9090" in output  # the URL is still shown, without its password


def test_check_never_prints_a_secret_real_process(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(SECRET_CONFIG, encoding="utf-8")
    result = run_module("config", "check", str(path), env={"SECRET_VALUE": SECRET})
    assert result.returncode == 0, result.stderr
    assert SECRET not in result.stdout + result.stderr


def test_bad_secret_url_is_masked_in_the_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SECRET_VALUE", SECRET)
    path = tmp_path / "c.toml"
    path.write_text('[[notify.channels]]\nname = "s"\nkind = "slack"\nurl = "${SECRET_VALUE}"\n',
                    encoding="utf-8")
    assert main(["config", "check", str(path)]) == 2
    captured = capsys.readouterr()
    assert SECRET not in captured.out + captured.err
    assert "notify.channels[0].url: not a valid http(s) URL: ***" in captured.err


def test_init_writes_where_the_lookup_looks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    env_target = tmp_path / "from-env.toml"
    monkeypatch.setenv("DEPLOYTUI_CONFIG", str(env_target))
    assert main(["init"]) == 0
    assert env_target.exists() and not xdg_config().exists()
    assert main(["config", "check"]) == 0
    assert f"{env_target}: OK" in capsys.readouterr().out

    flag_target = tmp_path / "from-flag.toml"
    assert main(["--config", str(flag_target), "init"]) == 0
    assert flag_target.exists()
    assert main(["--config", str(flag_target), "config", "check"]) == 0
    assert f"{flag_target}: OK" in capsys.readouterr().out
