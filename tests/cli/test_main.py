"""The ``deploytui`` entry point: --version, --help, exit codes, config lookup, overrides."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from deploytui import __version__
from deploytui.cli import build_parser, main
from deploytui.cli.common import apply_console_overrides, load_settings, parse_duration
from deploytui.config import Settings, parse_config

REPO = Path(__file__).resolve().parents[2]

GOOD = '[[services]]\nname = "{name}"\nhealth_url = "http://127.0.0.1:1/health"\n'


def run_module(*args: str, env: dict[str, str] | None = None,
               cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m deploytui ...`` as a real process (the test environment's XDG dirs)."""
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "deploytui", *args], capture_output=True,
                          text=True, env=full_env, cwd=cwd or REPO, timeout=60, check=False)


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"deploytui {__version__}"


def test_help_has_examples_and_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: deploytui")
    assert "examples:" in out
    assert "deploytui init && deploytui config check" in out
    assert "deploytui snapshot --format json" in out
    assert "exit codes: 0 ok, 1 not healthy / problems found, 2 could not run" in out
    for option in ("--config", "--read-only", "--theme", "--wall", "--version"):
        assert option in out
    for command in ("init", "config", "snapshot"):
        assert command in out


def test_help_as_a_real_process() -> None:
    result = run_module("--help")
    assert result.returncode == 0, result.stderr
    assert "examples:" in result.stdout
    assert result.stderr == ""


def test_unknown_command_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["no-such-command"])
    assert info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_parser_registers_the_built_commands() -> None:
    parser = build_parser()
    args = parser.parse_args(["snapshot", "--format", "json"])
    assert args.command == "snapshot" and args.format == "json"
    args = parser.parse_args(["config", "check", "x.toml"])
    assert args.config_command == "check" and args.path == "x.toml"
    args = parser.parse_args(["init", "--force"])
    assert args.force is True


# --- a bad config: exit 2, one paragraph, no traceback ----------------------------------------


def test_bad_config_in_process(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[[services]]\nname = 'a'\nhealth_url = 'htp:/x'\n", encoding="utf-8")
    assert main(["--config", str(bad), "snapshot"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (f"deploytui: configuration error in {bad.resolve()}: "
                            "services[0].health_url: not a valid http(s) URL: 'htp:/x'\n")


def test_bad_config_as_a_real_process(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(GOOD.format(name="a") * 1 + "[[services]]\nname = 'b'\nhealth_url = 'x'\n"
                   "[console]\nlayuot = 'grid'\n", encoding="utf-8")
    result = run_module("config", "check", str(bad))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    err = result.stderr
    assert err.startswith(f"deploytui: configuration error in {bad.resolve()}: 2 problems:")
    assert "services[1].health_url: not a valid http(s) URL: 'x'" in err
    assert "console.layuot: unknown key — did you mean 'layout'?" in err
    assert "\n\n" not in err.strip()  # one paragraph


def test_syntax_error_as_a_real_process(tmp_path: Path) -> None:
    bad = tmp_path / "broken.toml"
    bad.write_text("[console\n", encoding="utf-8")
    result = run_module("--config", str(bad), "snapshot")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith(f"deploytui: configuration error in {bad.resolve()}: "
                                    "not valid TOML")


def test_missing_config_file_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(tmp_path / "nope.toml"), "snapshot"]) == 2
    err = capsys.readouterr().err
    assert "nope.toml: file not found (create one with `deploytui init`)" in err


# --- config lookup order ----------------------------------------------------------------------


def _write(path: Path, name: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(GOOD.format(name=name), encoding="utf-8")
    return path


def _loaded_name(*argv: str) -> str:
    args = build_parser().parse_args(list(argv))
    return load_settings(args).services[0].name


def test_lookup_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    xdg = Path(os.environ["XDG_CONFIG_HOME"])
    _write(xdg / "deploytui" / "config.toml", "from-xdg")
    assert _loaded_name("snapshot") == "from-xdg"

    env_file = _write(tmp_path / "env.toml", "from-env")
    monkeypatch.setenv("DEPLOYTUI_CONFIG", str(env_file))
    assert _loaded_name("snapshot") == "from-env"

    flag_file = _write(tmp_path / "flag.toml", "from-flag")
    assert _loaded_name("--config", str(flag_file), "snapshot") == "from-flag"
    # the subcommand's own -c wins over the global one
    sub_file = _write(tmp_path / "sub.toml", "from-sub")
    assert _loaded_name("--config", str(flag_file), "snapshot", "-c", str(sub_file)) == "from-sub"


def test_no_config_anywhere_means_an_empty_fleet() -> None:
    settings = load_settings(build_parser().parse_args(["snapshot"]))
    assert settings.services == ()
    assert settings.source_path == ""


def test_config_check_follows_the_lookup_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    xdg_file = _write(Path(os.environ["XDG_CONFIG_HOME"]) / "deploytui" / "config.toml", "x")
    assert main(["config", "check"]) == 0
    assert capsys.readouterr().out.startswith(f"{xdg_file}: OK")
    env_file = _write(tmp_path / "env.toml", "e")
    monkeypatch.setenv("DEPLOYTUI_CONFIG", str(env_file))
    assert main(["config", "check"]) == 0
    assert capsys.readouterr().out.startswith(f"{env_file}: OK")
    flag_file = _write(tmp_path / "flag.toml", "f")
    assert main(["--config", str(flag_file), "config", "check"]) == 0
    assert capsys.readouterr().out.startswith(f"{flag_file}: OK")
    arg_file = _write(tmp_path / "arg.toml", "a")
    assert main(["--config", str(flag_file), "config", "check", str(arg_file)]) == 0
    assert capsys.readouterr().out.startswith(f"{arg_file}: OK")


def test_deploytui_config_pointing_nowhere_is_an_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DEPLOYTUI_CONFIG", str(tmp_path / "gone.toml"))
    assert main(["snapshot"]) == 2
    assert "gone.toml: file not found" in capsys.readouterr().err


# --- console overrides ------------------------------------------------------------------------


def _overrides(*argv: str, settings: Settings | None = None) -> Settings:
    args = build_parser().parse_args(list(argv))
    return apply_console_overrides(settings or Settings(), args)


def test_no_overrides() -> None:
    s = _overrides()
    assert s == Settings()
    assert s.read_only is False


def test_read_only_flag() -> None:
    s = _overrides("--read-only")
    assert s.console.read_only is True and s.read_only is True
    assert s.console.wall is False


@pytest.mark.parametrize("value", ["1", "true", "yes", "on", "TRUE"])
def test_read_only_env(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("DEPLOYTUI_READ_ONLY", value)
    assert _overrides().console.read_only is True


@pytest.mark.parametrize("value", ["", "0", "false", "no"])
def test_read_only_env_off(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("DEPLOYTUI_READ_ONLY", value)
    assert _overrides().console.read_only is False


def test_wall_flag_implies_read_only() -> None:
    s = _overrides("--wall")
    assert s.console.wall is True
    assert s.console.read_only is True
    assert s.read_only is True


def test_wall_in_the_file_implies_read_only() -> None:
    s = _overrides(settings=parse_config("[console]\nwall = true\n", environ={}))
    assert s.console.read_only is True


def test_read_only_in_the_file_is_kept() -> None:
    s = _overrides(settings=parse_config("[console]\nread_only = true\n", environ={}))
    assert s.console.read_only is True


def test_theme_context_and_namespaces() -> None:
    s = _overrides("--theme", "light", "--context", "kind-dev", "-n", "shop", "--namespace", "web")
    assert s.console.theme == "light"
    assert s.kubernetes.context == "kind-dev"
    assert s.kubernetes.namespaces == ("shop", "web")


def test_overrides_keep_the_rest_of_the_file() -> None:
    base = parse_config(GOOD.format(name="a") + "[console]\ntheme = 'dark'\nrefresh_interval = 2\n",
                        source="/x/c.toml", environ={})
    s = _overrides("--read-only", settings=base)
    assert s.services == base.services
    assert s.console.refresh_interval == 2.0
    assert s.console.theme == "dark"
    assert s.source_path == "/x/c.toml"
    assert base.console.read_only is False  # the original is untouched


def test_apply_overrides_with_a_bare_namespace() -> None:
    # callers that build their own Namespace (demo, tests) need not set every option
    s = apply_console_overrides(Settings(), argparse.Namespace())
    assert s == Settings()


# --- durations --------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "seconds"), [
    ("90", 90.0), ("90s", 90.0), ("45sec", 45.0), ("30m", 1800.0), ("5min", 300.0),
    ("2h", 7200.0), ("1d", 86400.0), ("1.5h", 5400.0), (" 10 m ", 600.0), ("0", 0.0),
])
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "abc", "10x", "-5m", "1h30m", "m", "1e3s"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match=r"not a duration: .*\(examples: 90s, 30m, 2h, 1d\)"):
        parse_duration(text)


def test_closed_output_pipe_is_quiet(repo_root: Path) -> None:
    """``deploytui config check | head -1``: the reader is gone; no traceback, exit 141."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # nobody will ever read: every write fails with EPIPE
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO)
    try:
        result = subprocess.run([sys.executable, "-m", "deploytui", "config", "check",
                                 str(repo_root / "config.example.toml")],
                                stdout=write_end, stderr=subprocess.PIPE, text=True, env=env,
                                cwd=REPO, timeout=60, check=False)
    finally:
        os.close(write_end)
    assert "Traceback" not in result.stderr
    assert "BrokenPipeError" not in result.stderr
    assert result.returncode == 141


# --- read-only lock and options around a subcommand --------------------------------------------


@pytest.fixture(autouse=True)
def _no_lock_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEPLOYTUI_READ_ONLY_LOCK", raising=False)


def test_lock_read_only_flag() -> None:
    s = _overrides("--lock-read-only")
    assert s.console.lock_read_only is True
    assert s.console.read_only is True


def test_lock_read_only_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEPLOYTUI_READ_ONLY_LOCK", "1")
    s = _overrides()
    assert (s.console.lock_read_only, s.console.read_only) == (True, True)


def test_console_options_before_or_after_a_subcommand() -> None:
    parser = build_parser()
    if "demo" not in parser.format_help():
        pytest.skip("deploytui demo is not built in this checkout")
    for argv in (["--read-only", "demo"], ["demo", "--read-only"]):
        s = apply_console_overrides(Settings(), parser.parse_args(argv))
        assert s.console.read_only is True, argv
    s = apply_console_overrides(Settings(), parser.parse_args(["--theme", "light", "demo"]))
    assert s.console.theme == "light"
    s = apply_console_overrides(Settings(), parser.parse_args(["demo"]))
    assert s.console.read_only is False and s.console.theme == "dark"
