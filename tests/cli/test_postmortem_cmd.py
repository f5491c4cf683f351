"""``deploytui postmortem``: flags, the path it prints, exit codes."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from deploytui.cli import main
from deploytui.model import AuditRecord, TimelineEvent
from deploytui.store import Store
from tests.cli.test_main import run_module

SLACK = "https://hooks.slack.com/services/T9/B9/CLISECRET77"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "deploytui.toml"
    path.write_text(f"""
[[notify.channels]]
name = "ops-slack"
kind = "slack"
url = "{SLACK}"

[postmortem]
output_dir = "pm"

[store]
path = "state/deploytui.db"
""", encoding="utf-8")
    return path


def fill(config: Path) -> int:
    """An incident 50..20 minutes ago; returns its id."""
    now = time.time()
    (config.parent / "state").mkdir(exist_ok=True)
    with Store(config.parent / "state" / "deploytui.db") as store:
        inc = store.create_incident("P2", title="cart down", services=["prod/cart"],
                                    opened_by="deploytui", now=now - 3000)
        store.add_event(TimelineEvent(kind="health_changed", summary="prod/cart: healthy -> unhealthy",
                                      ts=now - 3000, service="prod/cart",
                                      details={"from": "healthy", "to": "unhealthy"}))
        store.add_event(TimelineEvent(kind="note", summary=f"paged via {SLACK}", ts=now - 2400,
                                      actor="alice@host"))
        store.add_event(TimelineEvent(kind="health_changed", summary="prod/cart: unhealthy -> healthy",
                                      ts=now - 1800, service="prod/cart",
                                      details={"from": "unhealthy", "to": "healthy"}))
        store.add_audit(AuditRecord(action="restart", target="shop/cart", status="ok",
                                    ts=now - 2000, deployer="alice@host"))
        store.update_incident(inc.id, close=True, closed_by="alice@host", now=now - 1200)
        return inc.id


def test_incident_to_default_folder(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    iid = fill(config)
    assert main(["postmortem", "--incident", str(iid), "-c", str(config)]) == 0
    path = Path(capsys.readouterr().out.strip())
    assert path.parent == config.parent / "pm"   # relative to the config file
    assert path.name.endswith(f"-incident-{iid}.md")
    text = path.read_text()
    assert "CLISECRET77" not in text
    headings = [t.content for t in MarkdownIt().parse(text) if t.type == "inline"][:2]
    assert headings == ["Post-mortem: incident #1 — cart down", "Summary"]
    assert "unhealthy or unreachable for 20 min" in text


def test_latest_incident_when_no_option(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fill(config)
    assert main(["postmortem", "-c", str(config)]) == 0
    assert capsys.readouterr().out.strip().endswith("-incident-1.md")


def test_window_with_output_never_overwrites(config: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    fill(config)
    out = tmp_path / "incident.md"
    assert main(["postmortem", "--since", "2h", "-o", str(out), "-c", str(config)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert main(["postmortem", "--since", "2h", "--until", "10m", "-o", str(out),
                 "-c", str(config)]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "incident-2.md")
    assert "time-window report" in out.read_text()


@pytest.mark.parametrize(("args", "message"), [
    (["--incident", "99"], "no incident #99"),
    (["--since", "yesterday-ish"], "not a time: 'yesterday-ish'"),
    (["--since", "1h", "--until", "2h"], "window is empty"),
    (["--incident", "1", "--since", "2h"], "either --incident or --since/--until"),
    (["--until", "2h"], "--until needs --since"),
])
def test_bad_arguments_exit_2(config: Path, capsys: pytest.CaptureFixture[str],
                              args: list[str], message: str) -> None:
    fill(config)
    assert main(["postmortem", *args, "-c", str(config)]) == 2
    captured = capsys.readouterr()
    assert message in captured.err and captured.out == ""


def test_no_incident_recorded_exit_2(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["postmortem", "-c", str(config)]) == 2
    assert "no incident recorded" in capsys.readouterr().err


def test_as_a_real_process(config: Path) -> None:
    iid = fill(config)
    result = run_module("postmortem", "--incident", str(iid), "-c", str(config))
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()).is_file()
    bad = run_module("postmortem", "--incident", "42", "-c", str(config))
    assert bad.returncode == 2 and "no incident #42" in bad.stderr
