"""``deploytui notify``: dead letters (table, jsonl), retry, test — against a real receiver; the
webhook URL's secret path and the routing key never appear in any output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from deploytui.cli import main
from deploytui.config import load_config
from deploytui.notify import DeliveryWorker, StoreNotifier
from deploytui.store import open_store
from tests.webhook_receiver import WebhookReceiver

SECRET = "T1SECRET/B1SECRET/notify-cmd-secret-path"
KEY = "PDKEYsecret9876543210fedcba"


def write_config(tmp_path: Path, rx: WebhookReceiver) -> Path:
    path = tmp_path / "notify.toml"
    path.write_text(f"""
[notify]
backoff_seconds = [0.0, 0.0, 0.0, 0.0, 0.0]
[[notify.channels]]
name = "ops-slack"
kind = "slack"
url = "{rx.url('/hooks/' + SECRET)}"
[[notify.channels]]
name = "ops-pager"
kind = "pagerduty"
url = "{rx.url('/v2/enqueue')}"
routing_key = "{KEY}"
[[notify.routes]]
role = "ops"
events = ["*"]
channels = ["ops-slack"]
[store]
path = "{tmp_path / 'store.db'}"
""", encoding="utf-8")
    return path


def dead_letter(config: Path) -> int:
    """Queue one message and fail it five times (the receiver is failing)."""
    settings = load_config(config)
    with open_store(settings) as store:
        [nid] = StoreNotifier(store, settings.notify).enqueue(
            "rollback_completed", {"target": "shop/checkout", "env": "prod"})
        worker = DeliveryWorker(store, settings.notify)
        for _ in range(5):
            worker.deliver_due()
        found = store.notification(nid)
        assert found is not None and found.status == "dead" and found.attempts == 5
    return nid


def test_dead_letters_retry_and_test(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with WebhookReceiver(fail_first=5) as rx:
        config = write_config(tmp_path, rx)
        nid = dead_letter(config)
        outputs = []

        assert main(["notify", "dead-letters", "-c", str(config)]) == 0
        table = capsys.readouterr().out
        outputs.append(table)
        assert "rollback_completed" in table and "ops-slack" in table and "shop/checkout" in table
        assert "HTTP 500" in table and "1 dead letter(s)" in table

        assert main(["notify", "-c", str(config), "dead-letters", "--format", "jsonl"]) == 0
        out = capsys.readouterr().out
        outputs.append(out)
        [row] = [json.loads(line) for line in out.splitlines()]
        assert (row["id"], row["event"], row["attempts"]) == (nid, "rollback_completed", 5)
        assert row["last_error"] == "ops-slack (http://127.0.0.1/***): HTTP 500"

        assert main(["notify", "retry", str(nid), "-c", str(config)]) == 0   # 6th request: ok
        out = capsys.readouterr().out
        outputs.append(out)
        assert f"notification #{nid} (rollback_completed) delivered to ops-slack" in out
        assert rx.delivered[-1][1]["text"].startswith("Rollback completed: shop/checkout")
        assert main(["notify", "dead-letters", "-c", str(config)]) == 0
        assert "no dead letters" in capsys.readouterr().out

        assert main(["notify", "test", "ops-pager", "-c", str(config)]) == 0
        out = capsys.readouterr().out
        outputs.append(out)
        assert "test message delivered to ops-pager (pagerduty, http://127.0.0.1/***)" in out
        trigger, resolve = (b for p, b in rx.delivered[-2:])
        assert (trigger["event_action"], resolve["event_action"]) == ("trigger", "resolve")
        assert trigger["dedup_key"] == resolve["dedup_key"]

        assert main(["notify", "retry", "999", "-c", str(config)]) == 2
        assert main(["notify", "test", "nope", "-c", str(config)]) == 2
        err = capsys.readouterr().err
        assert "no notification #999" in err and "channels: ops-slack, ops-pager" in err
    for text in outputs:
        assert SECRET not in text and KEY not in text


def test_failed_test_and_retry_exit_1_masked(tmp_path: Path) -> None:
    with WebhookReceiver(fail_always=True) as rx:
        config = write_config(tmp_path, rx)
        nid = dead_letter(config)
        for argv in (["notify", "test", "ops-slack"], ["notify", "retry", str(nid)]):
            proc = subprocess.run([sys.executable, "-m", "deploytui", *argv, "-c", str(config)],
                                  capture_output=True, text=True, timeout=60)
            assert proc.returncode == 1, proc.stderr
            assert "HTTP 500" in proc.stdout
            assert SECRET not in proc.stdout + proc.stderr
            assert KEY not in proc.stdout + proc.stderr
        assert "queued; next attempt at" in proc.stdout   # a retry starts the schedule afresh
