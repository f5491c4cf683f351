"""The embedded store against real SQLite files, real threads and real writer processes."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from deploytui.config import parse_config
from deploytui.errors import StoreError
from deploytui.model import AuditRecord, TimelineEvent
from deploytui.store import SCHEMA_VERSION, Store, known_secrets, open_store, scrub
from deploytui.store_schema import MIGRATIONS

WRITER = Path(__file__).with_name("store_writer.py")
REPO = Path(__file__).resolve().parent.parent


def _writer(db: Path, tag: str, count: int | None = None) -> subprocess.Popen[str]:
    args = [sys.executable, str(WRITER), str(db), tag] + ([str(count)] if count is not None else [])
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _ids(store: Store) -> set[str]:
    return {e.correlation_id for e in store.events()}


# --- schema ------------------------------------------------------------------------------------


def test_new_file_gets_current_schema_and_wal(tmp_path: Path) -> None:
    db = tmp_path / "state" / "deploytui.db"
    settings = parse_config(f'[store]\npath = "{db}"\n')
    with open_store(settings) as store:
        assert db.exists()
        assert store.schema_version == SCHEMA_VERSION == len(MIGRATIONS)
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"events", "audit", "incidents", "rollout_durations", "notifications",
            "alert_acks"} <= tables


def test_empty_existing_file_is_migrated(tmp_path: Path) -> None:
    db = tmp_path / "empty.db"
    db.write_bytes(b"")
    with Store(db) as store:
        assert store.schema_version == SCHEMA_VERSION
        store.add_event(TimelineEvent(kind="note", summary="first"))
        assert [e.summary for e in store.events()] == ["first"]


def test_migrates_from_previous_schema_keeping_rows(tmp_path: Path) -> None:
    db = tmp_path / "v1.db"
    conn = sqlite3.connect(db, isolation_level=None)
    for statement in MIGRATIONS[0].split(";"):
        if statement.strip():
            conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    conn.execute("INSERT INTO events (ts, kind, summary, service) VALUES (100, 'note', 'old', 'prod/a')")
    conn.execute("INSERT INTO incidents (severity, opened_at) VALUES ('P2', 90)")
    conn.execute("INSERT INTO notifications (created_at, event, channel, next_attempt) "
                 "VALUES (100, 'incident_opened', 'ops-slack', 100)")
    conn.close()

    with Store(db, clock=lambda: 200.0) as store:
        assert store.schema_version == 2
        assert [(e.summary, e.service) for e in store.events()] == [("old", "prod/a")]
        old = store.due_notifications(now=150)
        assert [(n.event, n.dedup_key, n.attempts) for n in old] == [("incident_opened", "", 0)]
        # v2 features work on the migrated file
        store.add_event(TimelineEvent(kind="note", summary="tagged", ts=5000), incident_id=1)
        assert [e.summary for e in store.events(incident_id=1)] == ["old", "tagged"]
        store.ack_alert("rule:error_rate:prod/a", "alice@host", comment="looking")
        assert set(store.alert_acks()) == {"rule:error_rate:prod/a"}


def test_file_from_a_newer_deploytui_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "future.db"
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    conn.close()
    with pytest.raises(StoreError, match="newer than this deploytui"):
        Store(db)


def test_not_a_database_gives_clear_error(tmp_path: Path) -> None:
    db = tmp_path / "junk.db"
    db.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(StoreError, match="not a deploytui store"):
        Store(db)


def test_two_stores_migrating_the_same_file_at_once(tmp_path: Path) -> None:
    db = tmp_path / "race.db"
    errors: list[BaseException] = []

    def open_it() -> None:
        try:
            Store(db).close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with Store(db) as store:
        assert store.schema_version == SCHEMA_VERSION


# --- writes, concurrency, crash ----------------------------------------------------------------


def test_events_and_audit_round_trip_with_queries(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        for ts, kind in ((10, "health_changed"), (20, "note"), (30, "alert_firing")):
            store.add_event(TimelineEvent(kind=kind, summary=kind, ts=ts, service="prod/a",
                                          details={"to": "unhealthy", "n": 1}))
        assert [e.kind for e in store.events(since=15)] == ["note", "alert_firing"]
        assert [e.kind for e in store.events(until=15)] == ["health_changed"]
        assert [e.kind for e in store.events(kinds=["note"])] == ["note"]
        assert [e.kind for e in store.events(limit=2)] == ["note", "alert_firing"]
        assert store.events()[0].details == {"to": "unhealthy", "n": 1}
        store.add_audit(AuditRecord(action="rollback", target="shop/checkout", status="ok", ts=25,
                                    service="checkout", version="1.4.1", environment="prod",
                                    ports="5050", deployer="alice@host", duration=12.5,
                                    correlation_id="c1", before={"revision": 7},
                                    after={"revision": 6}, message="rolled back"))
        [rec] = store.audit(since=20)
        assert (rec.action, rec.deployer, rec.duration, dict(rec.before), dict(rec.after)) == (
            "rollback", "alice@host", 12.5, {"revision": 7}, {"revision": 6})
        assert store.audit(since=26) == []


def test_secrets_are_never_written(tmp_path: Path) -> None:
    settings = parse_config(
        '[[services]]\nname = "a"\nhealth_url = "http://127.0.0.1:1/h"\n'
        'headers = { Authorization = "Bearer sekrit-header-token" }\n'
        '[[notify.channels]]\nname = "s"\nkind = "slack"\n'
        'url = "https://hooks.slack.com/services/T000/B000/XXXXSECRET"\n')
    secrets = known_secrets(settings)
    assert "sekrit-header-token" in secrets
    db = tmp_path / "s.db"
    with Store(db, secrets=secrets) as store:
        store.add_event(TimelineEvent(
            kind="notification", summary="sent to https://hooks.slack.com/services/T000/B000/XXXXSECRET",
            details={"auth": "Bearer sekrit-header-token", "token": "tok-123456",
                     "url": "https://example.com/x?password=hunter22&q=1"}))
        store.add_audit(AuditRecord(action="ack", target="x", status="ok",
                                    message="curl -H 'Authorization: Bearer abcdef123456' key=ZZZ999",
                                    before={"api_key": "k-000111"}))
        store.enqueue_notification("incident_opened", "s", {"text": "hi", "routing_key": "R0UT1NGKEY"})
    raw = db.read_bytes() + b"".join(p.read_bytes() for p in tmp_path.glob("s.db-*"))
    for secret in (b"XXXXSECRET", b"sekrit-header-token", b"tok-123456", b"hunter22",
                   b"abcdef123456", b"ZZZ999", b"k-000111", b"R0UT1NGKEY"):
        assert secret not in raw
    assert scrub("see https://hooks.slack.com/services/A/B/C") == "see https://hooks.slack.com/***"


def test_concurrent_threads_lose_nothing(tmp_path: Path) -> None:
    db = tmp_path / "threads.db"
    shared = Store(db)
    second = Store(db)   # a second connection to the same file, as another console would have

    def write(store: Store, tag: str) -> None:
        for n in range(100):
            store.add_event(TimelineEvent(kind="note", summary=tag, correlation_id=f"{tag}-{n}"))

    threads = [threading.Thread(target=write, args=(shared if i % 2 else second, f"t{i}"))
               for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert shared.error is None and second.error is None
    expected = {f"t{i}-{n}" for i in range(8) for n in range(100)}
    assert _ids(shared) == expected
    shared.close()
    second.close()


def test_two_processes_write_the_same_file(tmp_path: Path) -> None:
    db = tmp_path / "procs.db"
    Store(db).close()
    procs = [_writer(db, tag, 200) for tag in ("p1", "p2")]
    outputs = [p.communicate(timeout=60) for p in procs]
    for p, (_out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err
    printed = {line for out, _ in outputs for line in out.split()}
    assert len(printed) == 400
    with Store(db) as store:
        assert _ids(store) == printed


def test_kill_9_mid_stream_loses_no_committed_event(tmp_path: Path) -> None:
    db = tmp_path / "crash.db"
    proc = _writer(db, "k")
    assert proc.stdout is not None
    printed = []
    for line in proc.stdout:
        printed.append(line.strip())
        if len(printed) >= 300:
            break
    proc.send_signal(signal.SIGKILL)
    rest, _ = proc.communicate(timeout=30)
    printed += rest.split()
    assert proc.returncode == -signal.SIGKILL
    with Store(db) as store:
        stored = _ids(store)
    assert len(printed) >= 300
    assert set(printed) <= stored


# --- failure and degrade -----------------------------------------------------------------------


def test_read_only_file_degrades_and_keeps_events_in_memory(tmp_path: Path) -> None:
    db = tmp_path / "ro.db"
    with Store(db) as store:
        store.add_event(TimelineEvent(kind="note", summary="before", ts=1))
    # SQLite's read-only open mode refuses writes for root too (chmod would not).
    store = Store(db, read_only=True)
    with pytest.raises(StoreError, match="is read-only"):
        store.append_event(TimelineEvent(kind="note", summary="strict"))
    store.add_event(TimelineEvent(kind="note", summary="while read-only", ts=2))
    store.add_audit(AuditRecord(action="ack", target="x", status="ok", ts=3))
    assert store.degraded and store.error is not None
    assert "read-only" in store.error and "in memory" in store.error
    assert [e.summary for e in store.events()] == ["before", "while read-only"]
    assert [r.action for r in store.audit()] == ["ack"]
    assert store.pending_count == 2
    store.close()


def test_store_folder_that_cannot_be_created_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    settings = parse_config(f'[store]\npath = "{blocker}/sub/deploytui.db"\n')
    with pytest.raises(StoreError, match="cannot create the store folder"):
        open_store(settings)


def test_full_disk_degrades_then_writes_backlog_when_space_returns(tmp_path: Path) -> None:
    now = [1_000_000.0]
    store = Store(tmp_path / "full.db", max_bytes=64 * 1024, retention_days=1,
                  clock=lambda: now[0])
    big = "x" * 2000
    n = 0
    while store.error is None:
        store.add_event(TimelineEvent(kind="note", summary=f"{n} {big}", ts=now[0]))
        n += 1
        assert n < 1000, "the size cap never took effect"
    assert "disk is full" in store.error
    kept = store.pending_count
    assert kept == 1
    with pytest.raises(StoreError, match="disk is full"):
        store.append_event(TimelineEvent(kind="note", summary=big))
    # space comes back: retention removes old rows, the backlog goes out with the next write
    now[0] += 2 * 86400
    assert store.prune() > 0
    store.add_event(TimelineEvent(kind="note", summary="after", ts=now[0]))
    assert store.error is None and store.pending_count == 0
    # the event kept in memory while the disk was full is in the file now, before "after"
    summaries = [e.summary for e in store.events()]
    assert summaries[-1] == "after"
    assert summaries[0].startswith(f"{n - 1} ") and len(summaries) == 2
    store.close()


# --- retention, durations, queue, acks ---------------------------------------------------------


def test_retention_prunes_old_rows_but_keeps_live_state(tmp_path: Path) -> None:
    day = 86400.0
    now = 100 * day
    with Store(tmp_path / "r.db", retention_days=30, clock=lambda: now) as store:
        store.add_event(TimelineEvent(kind="note", summary="old", ts=now - 40 * day))
        store.add_event(TimelineEvent(kind="note", summary="new", ts=now - 1 * day))
        store.add_audit(AuditRecord(action="ack", target="a", status="ok", ts=now - 40 * day))
        store.record_rollout_duration("shop/a", 3, 60, now=now - 40 * day)
        store.record_rollout_duration("shop/a", 4, 90, now=now - 2 * day)
        old_open = store.create_incident("P2", now=now - 50 * day)
        old_closed = store.create_incident("P3", now=now - 50 * day)
        store.update_incident(old_closed.id, close=True, now=now - 45 * day)
        store.enqueue_notification("e", "c", {}, now=now - 40 * day)
        delivered = store.enqueue_notification("e", "c", {}, now=now - 40 * day)
        store.mark_delivered(delivered, now=now - 40 * day)
        removed = store.prune()
        assert removed == 5
        assert [e.summary for e in store.events()] == ["new"]
        assert store.audit() == []
        assert store.rollout_durations("shop/a") == [90.0]
        assert [i.id for i in store.incidents()] == [old_open.id]
        assert [n.status for n in store.notifications()] == ["pending"]


def test_rollout_durations_for_eta(tmp_path: Path) -> None:
    with Store(tmp_path / "d.db") as store:
        for rev, secs in enumerate((50, 60, 70, 80)):
            store.record_rollout_duration("shop/checkout", rev, secs, now=1000 + rev)
        store.record_rollout_duration("shop/cart", 1, 5, now=1000)
        assert store.rollout_durations("shop/checkout") == [50, 60, 70, 80]
        assert store.rollout_durations("shop/checkout", limit=2) == [70, 80]
        assert store.rollout_durations("shop/none") == []


def test_notification_queue_retry_dead_letter_and_claims(tmp_path: Path) -> None:
    db = tmp_path / "q.db"
    with Store(db) as store:
        a = store.enqueue_notification("rollout_failed", "ops-slack", {"text": "bad"}, now=100,
                                       dedup_key="shop/a")
        b = store.enqueue_notification("rollout_failed", "ops-pager", {"text": "bad"}, now=100)
        assert [n.id for n in store.due_notifications(now=100)] == [a, b]
        n = store.mark_failed(a, "HTTP 500", next_attempt=105, now=100)
        assert (n.attempts, n.next_attempt, n.status, n.last_error) == (1, 105, "pending", "HTTP 500")
        assert [n.id for n in store.due_notifications(now=101)] == [b]
        store.mark_delivered(b, now=101)
        assert store.notification(b).status == "delivered"  # type: ignore[union-attr]
        dead = store.mark_failed(a, "HTTP 500 again", next_attempt=None, now=106)
        assert (dead.status, dead.attempts) == ("dead", 2)
        assert [d.id for d in store.dead_letters()] == [a]
        store.requeue_notification(a, now=200)
        assert [n.id for n in store.due_notifications(now=200)] == [a]
        # a claim hides the message from a second console until the lease runs out
        other = Store(db)
        assert [n.id for n in store.claim_due_notifications(now=200, lease_seconds=30)] == [a]
        assert other.claim_due_notifications(now=210) == []
        assert [n.id for n in other.claim_due_notifications(now=231)] == [a]
        other.close()


def test_alert_acks_expire(tmp_path: Path) -> None:
    with Store(tmp_path / "a.db") as store:
        store.ack_alert("rule:p95:prod/a", "bob@host", until=200, comment="deploying fix", now=100)
        store.ack_alert("rule:mem:prod/b", "bob@host", now=100)
        assert set(store.alert_acks(now=150)) == {"rule:p95:prod/a", "rule:mem:prod/b"}
        assert set(store.alert_acks(now=250)) == {"rule:mem:prod/b"}
        assert store.unack_alert("rule:mem:prod/b") is True
        assert store.unack_alert("rule:mem:prod/b") is False
        assert store.alert_acks(now=150)["rule:p95:prod/a"].comment == "deploying fix"


def test_incident_rows(tmp_path: Path) -> None:
    with Store(tmp_path / "i.db") as store:
        inc = store.create_incident("P2", title="checkout down", services=["prod/b", "prod/a"],
                                    opened_by="deploytui", now=10)
        assert inc.services == ("prod/a", "prod/b") and inc.is_open
        assert store.open_incident() == inc
        inc = store.update_incident(inc.id, severity="P1", services=["prod/a"])
        assert inc.severity == "P1"
        inc = store.update_incident(inc.id, close=True, closed_by="alice", close_reason="fixed",
                                    now=70)
        assert (inc.status, inc.closed_at, inc.duration()) == ("closed", 70, 60)
        assert store.open_incident() is None
        with pytest.raises(StoreError, match="no incident #99"):
            store.update_incident(99, severity="P3")
