"""``deploytui audit``: jsonl and table export, --since, exit codes."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from deploytui.cli import main
from deploytui.model import AuditRecord
from deploytui.store import Store


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "deploytui.toml"
    path.write_text('[store]\npath = "deploytui.db"\n', encoding="utf-8")
    now = time.time()
    with Store(tmp_path / "deploytui.db") as store:
        store.add_audit(AuditRecord(action="rollback", target="shop/checkout", status="ok",
                                    ts=now - 3 * 3600, service="checkout", version="1.4.1",
                                    environment="prod", ports="5050", deployer="alice@host",
                                    duration=42.0, correlation_id="c-1",
                                    before={"revision": 7}, after={"revision": 6},
                                    message="revision 7 -> 6 [rich markup stays text]"))
        store.add_audit(AuditRecord(action="ack", target="fp-123", status="refused",
                                    ts=now - 600, deployer="bob@host",
                                    message="read-only; token=SEKRIT-AUDIT"))
    return path


def test_jsonl_has_runbook_fields_in_order(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "--format", "jsonl", "-c", str(config)]) == 0
    lines = capsys.readouterr().out.splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["action"] for r in records] == ["rollback", "ack"]
    first = records[0]
    assert list(first)[:8] == ["timestamp", "service", "version", "environment", "ports",
                               "deployer", "status", "duration"]
    assert (first["deployer"], first["duration"], first["before"], first["after"]) == (
        "alice@host", 42.0, {"revision": 7}, {"revision": 6})
    assert first["timestamp"].endswith("+00:00")
    assert "SEKRIT-AUDIT" not in "\n".join(lines)


def test_since_filters(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "--since", "1h", "--format", "jsonl", "-c", str(config)]) == 0
    assert [json.loads(x)["action"] for x in capsys.readouterr().out.splitlines()] == ["ack"]


def test_table(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "-c", str(config)]) == 0
    out = capsys.readouterr().out
    assert "rollback" in out and "alice@host" in out and "refused" in out
    assert "revision 7 -> 6 [rich markup stays text]" in out


def test_empty_window_table(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "--since", "1m", "-c", str(config)]) == 0
    assert "no audit records in that window" in capsys.readouterr().out


def test_bad_since_exit_2(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "--since", "last tuesday", "-c", str(config)]) == 2
    assert "not a time: 'last tuesday'" in capsys.readouterr().err


def test_bad_format_exit_2(config: Path) -> None:
    with pytest.raises(SystemExit) as info:
        main(["audit", "--format", "xml", "-c", str(config)])
    assert info.value.code == 2
