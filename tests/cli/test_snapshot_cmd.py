"""``deploytui snapshot``: every pane once, as text or JSON; exit 0 / 1 / 2."""

from __future__ import annotations

import asyncio
import importlib
import io
import json
import sys
from pathlib import Path

import pytest
from rich.console import Console

from deploytui import snapshot
from deploytui.cli import main
from deploytui.config import Settings
from deploytui.model import Section
from tests.cli.test_main import run_module
from tests.conftest import free_port

PANES = ("health", "rollouts", "ports", "alerts")
SECTION_KEYS = {"configured", "ok", "error", "taken_at", "summary", "columns", "rows"}


def test_empty_config_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["snapshot"]) == 0
    out = capsys.readouterr().out
    for pane in PANES:
        assert f"{pane.upper()}  not configured" in out
    assert out.index("HEALTH") < out.index("ROLLOUTS") < out.index("PORTS") < out.index("ALERTS")


def test_empty_config_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["snapshot", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {"schema", "taken_at", "ok", "config", *PANES} <= set(doc)
    assert doc["schema"] == 1
    assert doc["ok"] is True
    assert doc["config"] is None
    assert doc["taken_at"].endswith("+00:00")
    for pane in PANES:
        assert set(doc[pane]) == SECTION_KEYS
        assert doc[pane]["configured"] is False
        assert doc[pane]["rows"] == []


def test_json_names_the_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "empty.toml"
    path.write_text("[console]\ntheme = 'light'\n", encoding="utf-8")
    assert main(["snapshot", "--format", "json", "-c", str(path)]) == 0
    assert json.loads(capsys.readouterr().out)["config"] == str(path.resolve())


def test_empty_config_as_a_real_process() -> None:
    result = run_module("snapshot", "--format", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["ok"] is True


def test_bad_format_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["snapshot", "--format", "yaml"])
    assert info.value.code == 2


def _health_snapshot_ready() -> bool:
    try:
        module = importlib.import_module("deploytui.sources.health")
    except ModuleNotFoundError as exc:
        if exc.name != "deploytui.sources.health":
            raise
        return False
    return hasattr(module, "snapshot_section")


def _closed_port_config(tmp_path: Path) -> tuple[Path, str]:
    port = free_port()  # nothing listens there
    path = tmp_path / "closed.toml"
    path.write_text(f'[health]\ntimeout = 1.0\n[[services]]\nname = "lonely"\nenv = "prod"\n'
                    f'health_url = "http://127.0.0.1:{port}/health"\n', encoding="utf-8")
    return path, f"127.0.0.1:{port}"


def test_unreachable_service(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if not _health_snapshot_ready():
        pytest.skip("deploytui.sources.health has no snapshot_section yet")
    path, _ = _closed_port_config(tmp_path)

    assert main(["snapshot", "-c", str(path)]) == 1
    out = capsys.readouterr().out
    assert "HEALTH" in out
    health_text = out[out.index("HEALTH"):out.index("ROLLOUTS")]
    assert "lonely" in health_text
    assert "unreachable" in health_text.lower()
    assert "not configured" not in health_text

    assert main(["snapshot", "--format", "json", "-c", str(path)]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is False
    health = doc["health"]
    assert health["configured"] is True
    assert health["ok"] is False
    assert health["error"] is None  # the source ran; the service is what is down
    assert len(health["rows"]) == 1
    row = json.dumps(health["rows"][0]).lower()
    assert "lonely" in row and "unreachable" in row
    for pane in ("rollouts", "alerts"):
        assert doc[pane]["configured"] is False


# --- the frame itself (deploytui/snapshot.py) ---------------------------------------------------


def _render(sections: dict[str, Section]) -> str:
    console = Console(width=120, record=True, file=io.StringIO())
    snapshot.render_text(sections, console)
    return console.export_text()


def test_exit_codes() -> None:
    ok = Section(name="health", configured=True)
    down = Section(name="health", configured=True, ok=False)
    broken = Section(name="health", configured=True, ok=False, error="boom")
    off = Section(name="ports", configured=False)
    assert snapshot.exit_code({"health": ok, "ports": off}) == 0
    assert snapshot.exit_code({"health": down, "ports": off}) == 1
    assert snapshot.exit_code({"health": broken, "ports": off}) == 2
    assert snapshot.exit_code({"health": down, "ports": broken}) == 2


def test_text_shows_rows_summary_and_errors() -> None:
    sections = {
        "health": Section(name="health", configured=True, ok=False, columns=("service", "state"),
                          rows=({"service": "prod/a", "state": "unreachable"},
                                {"service": "prod/b", "state": None}),
                          summary={"services": 2, "unreachable": 1}),
        "rollouts": Section(name="rollouts", configured=True, ok=False, error="SourceError: no"),
        "ports": Section(name="ports", configured=True),
        "alerts": Section(name="alerts", configured=False),
    }
    text = _render(sections)
    assert "HEALTH  NOT OK  services=2  unreachable=1" in text
    assert "prod/a" in text and "unreachable" in text
    assert "ROLLOUTS  ERROR" in text and "could not read: SourceError: no" in text
    assert "PORTS  OK" in text and "(nothing to show)" in text
    assert "ALERTS  not configured" in text


def test_text_shows_markup_like_values_literally() -> None:
    """Service names, error messages and cells come from outside systems: a '[/x]' or '[bold]'
    in them is text, not Rich markup (a stray closing tag used to raise MarkupError)."""
    sections = {
        "health": Section(name="health", configured=True, ok=False, columns=("service", "detail"),
                          rows=({"service": "[bold]a", "detail": "GET [/health] -> 503"},),
                          summary={"note": "[red]x"}),
        "alerts": Section(name="alerts", configured=True, ok=False,
                          error="SourceError: bad [/api/v2/alerts] reply"),
    }
    text = _render(sections)
    assert "[bold]a" in text
    assert "GET [/health] -> 503" in text
    assert "note=[red]x" in text
    assert "could not read: SourceError: bad [/api/v2/alerts] reply" in text


def test_a_failing_source_does_not_hide_the_others() -> None:

    async def provider(settings: Settings) -> Section:
        raise RuntimeError("exploded")

    module = type(sys)("deploytui_test_boom_source")
    module.snapshot_section = provider  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module
    try:
        section = asyncio.run(snapshot._one("health", module.__name__, Settings()))
    finally:
        del sys.modules[module.__name__]
    assert section.configured is True and section.ok is False
    assert section.error == "RuntimeError: exploded"


def test_a_source_module_that_fails_to_import_is_an_error_not_unconfigured(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "deploytui_test_broken_source.py").write_text(
        "import deploytui_test_no_such_dependency\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    section = asyncio.run(snapshot._one("health", "deploytui_test_broken_source", Settings()))
    assert section.configured is True
    assert section.ok is False
    assert section.error is not None and "deploytui_test_no_such_dependency" in section.error
    # a module that does not exist at all is simply a pane not built yet
    missing = asyncio.run(snapshot._one("health", "deploytui_test_not_there", Settings()))
    assert missing.configured is False
