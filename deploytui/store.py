"""The embedded store: one SQLite file (stdlib ``sqlite3``, WAL) shared by every console on a
machine. It holds the timeline, the audit log, incidents, rollout durations (for ETAs), the
notification queue and acknowledgements of the console's own rule alerts.

Durability: every write is its own committed transaction, so a ``kill -9`` loses nothing the
console already showed. With WAL, ``synchronous=NORMAL`` (the default here) keeps that promise
for a crashed or killed process at ~0.2 ms per event; only an OS crash or power cut may lose the
last moments. ``Store(..., synchronous="FULL")`` fsyncs every commit (~2 ms or more per event). Several processes may share the file
(WAL + ``busy_timeout``); within a process one connection is shared under a lock, so the store
is safe to call from any thread.

Degrading instead of failing: :meth:`Store.add_event` and :meth:`Store.add_audit` — the calls
the UI and the action door make — never raise. When the file cannot be written (disk full,
read-only file system, locked for too long) they keep the record in memory, set
:attr:`Store.error` to an operator-readable message and write the backlog out on the next write
that succeeds; :meth:`Store.events` and :meth:`Store.audit` include the in-memory records, so
the timeline stays complete. Every other method raises :class:`~deploytui.errors.StoreError`.

Secrets: summaries, messages, details and payloads pass through :func:`scrub` before they are
stored (webhook URLs, bearer tokens, ``token=`` / ``password=`` / ``key=`` values, and every
``Secret`` of the configuration), so the file never holds one in clear.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from deploytui.config import Secret, Settings, mask
from deploytui.errors import StoreError
from deploytui.model import AuditRecord, TimelineEvent
from deploytui.store_schema import MIGRATIONS, SCHEMA_VERSION

__all__ = [
    "SCHEMA_VERSION",
    "AlertAck",
    "Incident",
    "Notification",
    "Store",
    "known_secrets",
    "open_store",
    "scrub",
    "scrub_value",
]

log = logging.getLogger(__name__)

BUSY_TIMEOUT_SECONDS = 5.0
_PRUNE_EVERY_SECONDS = 3600.0


# --- secrets -----------------------------------------------------------------------------------

_WEBHOOK_URL = re.compile(
    r"https?://[^\s/\"'<>]*(?:hooks\.slack\.com|webhook\.office\.com|outlook\.office\.com|"
    r"events\.pagerduty\.com|discord(?:app)?\.com/api/webhooks)[^\s\"'<>]*"
    r"|https?://[^\s/\"'<>]+/[^\s\"'<>]*(?:hook|webhook)[^\s\"'<>]*",
    re.IGNORECASE,
)
_URL_USERINFO = re.compile(r"(https?://)[^\s/@\"'<>]+@", re.IGNORECASE)
_AUTH_SCHEME = re.compile(r"\b(Bearer|Basic|Token)\s+[A-Za-z0-9._~+/=-]{6,}", re.IGNORECASE)
_SECRET_NAME = r"[\w.-]*(?:token|password|passwd|pwd|secret|api[_-]?key|routing[_-]?key|key)"
_ASSIGNMENT = re.compile(
    rf"(?i)\b({_SECRET_NAME})(\s*=\s*|[\"']?\s*:\s*[\"']?)([^\s&\"',;}}]+)"
)
_SECRET_KEY_NAME = re.compile(
    r"(?i)(token|password|passwd|pwd|secret|api[_-]?key|routing[_-]?key|authorization|webhook|^key$)"
)


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """Mask known secret patterns in free text.

    Replaces every value in ``secrets`` (the configuration's ``Secret`` values), webhook URLs
    (``https://hooks.slack.com/***``), user:password in URLs, ``Bearer <token>`` and
    ``token=`` / ``password=`` / ``key=`` style assignments.
    """
    if not text:
        return text
    for secret in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, mask(secret))
    text = _WEBHOOK_URL.sub(lambda m: mask(m.group(0)), text)
    text = _URL_USERINFO.sub(r"\1***@", text)
    text = _AUTH_SCHEME.sub(lambda m: f"{m.group(1)} ***", text)
    return _ASSIGNMENT.sub(lambda m: f"{m.group(1)}{m.group(2)}***", text)


def scrub_value(value: Any, secrets: Iterable[str] = ()) -> Any:
    """:func:`scrub` through JSON-like data; values under secret-looking keys are masked whole."""
    secrets = tuple(secrets)
    if isinstance(value, Secret):
        return str(value)
    if isinstance(value, str):
        return scrub(value, secrets)
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            key = str(k)
            if isinstance(v, str) and v and _SECRET_KEY_NAME.search(key):
                out[key] = mask(v)
            else:
                out[key] = scrub_value(v, secrets)
        return out
    if isinstance(value, (list, tuple, set, frozenset)):
        return [scrub_value(v, secrets) for v in value]
    return value


def known_secrets(settings: Settings) -> tuple[str, ...]:
    """Every non-empty :class:`Secret` value in the settings (tokens, header values, webhooks)."""
    found: list[str] = []

    def walk(obj: Any) -> None:
        if isinstance(obj, Secret):
            if obj:
                found.append(obj.reveal())
                # "Bearer abc" in a header: the bare token may appear on its own too
                parts = obj.reveal().split()
                if len(parts) == 2 and len(parts[1]) >= 4:
                    found.append(parts[1])
        elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            for f in dataclasses.fields(obj):
                walk(getattr(obj, f.name))
        elif isinstance(obj, Mapping):
            for v in obj.values():
                walk(v)
        elif isinstance(obj, (list, tuple)):
            for v in obj:
                walk(v)

    walk(settings)
    return tuple(dict.fromkeys(found))


# --- records -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Incident:
    id: int
    severity: str                    # P1 - P4
    status: str                      # open, closed
    opened_at: float
    title: str = ""
    closed_at: float | None = None
    services: tuple[str, ...] = ()
    opened_by: str = ""
    closed_by: str = ""
    close_reason: str = ""

    @property
    def is_open(self) -> bool:
        return self.status == "open"

    def duration(self, now: float | None = None) -> float:
        end = self.closed_at if self.closed_at is not None else (now if now is not None else time.time())
        return max(0.0, end - self.opened_at)


@dataclass(frozen=True)
class Notification:
    id: int
    event: str
    channel: str
    payload: Mapping[str, Any]
    status: str                      # pending, delivered, dead
    attempts: int
    next_attempt: float
    created_at: float
    last_error: str = ""
    delivered_at: float | None = None
    dedup_key: str = ""


@dataclass(frozen=True)
class AlertAck:
    alert_key: str
    acked_by: str
    acked_at: float
    expires_at: float | None = None
    comment: str = ""


@dataclass
class _Pending:
    events: list[tuple[TimelineEvent, int | None]] = field(default_factory=list)
    audit: list[AuditRecord] = field(default_factory=list)


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)


def _loads(text: str | None, default: Any) -> Any:
    if not text:
        return default
    try:
        return json.loads(text)
    except ValueError:
        return default


class Store:
    """The SQLite store. Implements ``EventSink`` and ``AuditSink``.

    ``path`` may be ``":memory:"`` (a private in-memory store). ``read_only=True`` opens an
    existing file with SQLite's read-only mode (``file:...?mode=ro``): readers such as exports
    never create, migrate or write it. ``max_bytes`` caps the file (SQLite ``max_page_count``):
    past it writes fail as on a full disk, and the store degrades the same way.
    """

    def __init__(self, path: str | Path, *, retention_days: float = 90.0,
                 secrets: Iterable[str] = (), clock: Callable[[], float] = time.time,
                 read_only: bool = False, max_bytes: int | None = None,
                 synchronous: Literal["NORMAL", "FULL"] = "NORMAL") -> None:
        self.path = str(path)
        self.synchronous = synchronous
        self.max_bytes = max_bytes
        self.retention_days = retention_days
        self.secrets = tuple(secrets)
        self.clock = clock
        self.read_only = read_only
        self.error: str | None = None
        self._pending = _Pending()
        self._lock = threading.RLock()
        self._last_prune = 0.0
        self._conn = self._connect()
        try:
            self._migrate()
            if not read_only:
                self.prune()
        except BaseException:
            self._conn.close()
            raise

    # --- connection and schema -----------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        try:
            if self.read_only:
                uri = f"file:{Path(self.path).as_posix()}?mode=ro"
                conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_SECONDS,
                                       isolation_level=None, check_same_thread=False)
            else:
                conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_SECONDS,
                                       isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_SECONDS * 1000)}")
            if not self.read_only and self.path != ":memory:":
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    log.warning("store %s: journal mode is %s, not wal", self.path, mode)
            conn.execute(f"PRAGMA synchronous = {'FULL' if self.synchronous == 'FULL' else 'NORMAL'}")
            conn.execute("PRAGMA foreign_keys = ON")
            if self.max_bytes is not None:
                page = int(conn.execute("PRAGMA page_size").fetchone()[0])
                conn.execute(f"PRAGMA max_page_count = {max(1, self.max_bytes // page)}")
        except sqlite3.Error as exc:
            raise self._error(exc, "open") from None
        return conn

    def _migrate(self) -> None:
        with self._lock:
            try:
                version = self._user_version()
                if version > SCHEMA_VERSION:
                    raise StoreError(
                        f"store {self.path} has schema version {version}, newer than this "
                        f"deploytui understands ({SCHEMA_VERSION}); upgrade deploytui or set "
                        f"[store] path to another file")
                if version == SCHEMA_VERSION:
                    return
                if self.read_only:
                    raise StoreError(
                        f"store {self.path} has schema version {version} (current: "
                        f"{SCHEMA_VERSION}); open it once with write access to migrate it")
                for target in range(version, SCHEMA_VERSION):
                    self._apply(target)
            except sqlite3.Error as exc:
                raise self._error(exc, "migrate") from None

    def _user_version(self) -> int:
        return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    def _apply(self, index: int) -> None:
        """Apply migration ``index`` (v{index} -> v{index+1}) unless another process did."""
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            if self._user_version() > index:
                conn.execute("COMMIT")
                return
            for statement in MIGRATIONS[index].split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {index + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        log.info("store %s migrated to schema v%d", self.path, index + 1)

    @property
    def schema_version(self) -> int:
        with self._lock:
            return self._user_version()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _error(self, exc: sqlite3.Error, doing: str) -> StoreError:
        text = str(exc)
        low = text.lower()
        where = f"store {self.path}"
        if "readonly" in low or "read-only" in low or "read only" in low:
            msg = (f"{where} is read-only ({text}); free it or point [store] path at a writable "
                   f"file")
        elif "full" in low:
            msg = f"{where}: the disk is full ({text}); free space, then the backlog is written"
        elif "locked" in low or "busy" in low:
            msg = (f"{where} stayed locked by another process for more than "
                   f"{BUSY_TIMEOUT_SECONDS:.0f} s ({text})")
        elif "unable to open" in low:
            msg = f"{where} cannot be opened ({text}); check the folder exists and is writable"
        elif "not a database" in low or "malformed" in low:
            msg = f"{where} is not a deploytui store or is damaged ({text}); move it aside"
        else:
            msg = f"{where}: could not {doing}: {text}"
        return StoreError(msg)

    def _write(self, sql: str, params: Sequence[Any] = ()) -> int:
        """One statement, committed on return (autocommit). Returns lastrowid."""
        with self._lock:
            try:
                cur = self._conn.execute(sql, params)
            except sqlite3.Error as exc:
                raise self._error(exc, "write") from None
            return int(cur.lastrowid or 0)

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                cur = self._conn.execute(sql, params)
                cur.row_factory = sqlite3.Row
                return list(cur.fetchall())
            except sqlite3.Error as exc:
                raise self._error(exc, "read") from None

    def _transaction(self, body: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run ``body`` in ``BEGIN IMMEDIATE`` (read-then-write without a race between processes)."""
        with self._lock:
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise self._error(exc, "write") from None
            try:
                result = body(conn)
                conn.execute("COMMIT")
                return result
            except sqlite3.Error as exc:
                conn.execute("ROLLBACK")
                raise self._error(exc, "write") from None
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def _now(self, now: float | None) -> float:
        return self.clock() if now is None else now

    # --- timeline ------------------------------------------------------------------------------

    def _clean_event(self, event: TimelineEvent) -> TimelineEvent:
        return dataclasses.replace(
            event, summary=scrub(event.summary, self.secrets),
            details=scrub_value(dict(event.details), self.secrets))

    def append_event(self, event: TimelineEvent, *, incident_id: int | None = None) -> int:
        """Write one event now; returns its row id. Raises StoreError (see :meth:`add_event`)."""
        e = self._clean_event(event)
        return self._insert_event(e, incident_id)

    def _insert_event(self, e: TimelineEvent, incident_id: int | None) -> int:
        return self._write(
            "INSERT INTO events (ts, kind, summary, service, env, severity, actor, correlation_id,"
            " details, incident_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (e.ts, e.kind, e.summary, e.service, e.env, e.severity, e.actor, e.correlation_id,
             _dumps(dict(e.details)), incident_id))

    def add_event(self, event: TimelineEvent, *, incident_id: int | None = None) -> None:
        """EventSink: write the event, or keep it in memory and set :attr:`error`. Never raises."""
        e = self._clean_event(event)
        with self._lock:
            try:
                self._flush_pending()
                self._insert_event(e, incident_id)
            except StoreError as exc:
                self._pending.events.append((e, incident_id))
                self._degrade(exc)
                return
            self._recovered()
            self._maybe_prune(e.ts)

    def _row_event(self, row: sqlite3.Row) -> TimelineEvent:
        return TimelineEvent(
            kind=row["kind"], summary=row["summary"], ts=row["ts"], service=row["service"],
            env=row["env"], severity=row["severity"], actor=row["actor"],
            correlation_id=row["correlation_id"], details=_loads(row["details"], {}))

    def events(self, since: float | None = None, until: float | None = None,
               incident_id: int | None = None, *, kinds: Iterable[str] | None = None,
               service: str | None = None, limit: int | None = None) -> list[TimelineEvent]:
        """Events in time order. ``incident_id``: the events tagged with that incident or inside
        its open..close window. ``limit`` keeps the most recent ones. Includes events kept in
        memory while the file could not be written."""
        where: list[str] = []
        params: list[Any] = []
        window: tuple[float, float] | None = None
        if incident_id is not None:
            inc = self.incident(incident_id)
            if inc is None:
                return []
            end = inc.closed_at if inc.closed_at is not None else math.inf
            window = (inc.opened_at, end)
            where.append("(incident_id = ? OR (ts >= ? AND ts <= ?))")
            params += [incident_id, inc.opened_at, end if end != math.inf else 1e300]
        if since is not None:
            where.append("ts >= ?")
            params.append(since)
        if until is not None:
            where.append("ts <= ?")
            params.append(until)
        kind_list = list(kinds) if kinds is not None else None
        if kind_list is not None:
            where.append(f"kind IN ({','.join('?' * len(kind_list))})" if kind_list else "0")
            params += kind_list
        if service is not None:
            where.append("service = ?")
            params.append(service)
        sql = "SELECT * FROM events"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY ts DESC, id DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._lock:
            try:
                rows = [self._row_event(r) for r in self._query(sql, params)]
            except StoreError as exc:
                self._degrade(exc)
                rows = []
            pending = [
                e for e, inc_id in self._pending.events
                if (since is None or e.ts >= since) and (until is None or e.ts <= until)
                and (kind_list is None or e.kind in kind_list)
                and (service is None or e.service == service)
                and (window is None or inc_id == incident_id or window[0] <= e.ts <= window[1])
            ]
        out = sorted(rows[::-1] + pending, key=lambda e: e.ts)  # rows came newest first
        if limit is not None:
            out = out[-int(limit):]
        return out

    # --- audit ---------------------------------------------------------------------------------

    def _clean_audit(self, r: AuditRecord) -> AuditRecord:
        s = self.secrets
        return dataclasses.replace(
            r, target=scrub(r.target, s), message=scrub(r.message, s),
            before=scrub_value(dict(r.before), s), after=scrub_value(dict(r.after), s))

    def _insert_audit(self, r: AuditRecord) -> int:
        return self._write(
            "INSERT INTO audit (ts, action, target, status, service, version, environment, ports,"
            " deployer, duration, correlation_id, before, after, message)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (r.ts, r.action, r.target, r.status, r.service, r.version, r.environment, r.ports,
             r.deployer, r.duration, r.correlation_id, _dumps(dict(r.before)),
             _dumps(dict(r.after)), r.message))

    def append_audit(self, record: AuditRecord) -> int:
        """Write one audit record now; returns its row id. Raises StoreError."""
        return self._insert_audit(self._clean_audit(record))

    def add_audit(self, record: AuditRecord) -> None:
        """AuditSink: write the record, or keep it in memory and set :attr:`error`. Never raises."""
        r = self._clean_audit(record)
        with self._lock:
            try:
                self._flush_pending()
                self._insert_audit(r)
            except StoreError as exc:
                self._pending.audit.append(r)
                self._degrade(exc)
                return
            self._recovered()

    def audit(self, since: float | None = None, until: float | None = None, *,
              action: str | None = None, limit: int | None = None) -> list[AuditRecord]:
        """Audit records in time order (``limit`` keeps the most recent), in-memory ones included."""
        where: list[str] = []
        params: list[Any] = []
        if since is not None:
            where.append("ts >= ?")
            params.append(since)
        if until is not None:
            where.append("ts <= ?")
            params.append(until)
        if action is not None:
            where.append("action = ?")
            params.append(action)
        sql = "SELECT * FROM audit" + (" WHERE " + " AND ".join(where) if where else "")
        sql += " ORDER BY ts DESC, id DESC" + (f" LIMIT {int(limit)}" if limit is not None else "")
        with self._lock:
            try:
                rows = [AuditRecord(
                    action=r["action"], target=r["target"], status=r["status"], ts=r["ts"],
                    service=r["service"], version=r["version"], environment=r["environment"],
                    ports=r["ports"], deployer=r["deployer"], duration=r["duration"],
                    correlation_id=r["correlation_id"], before=_loads(r["before"], {}),
                    after=_loads(r["after"], {}), message=r["message"],
                ) for r in self._query(sql, params)]
            except StoreError as exc:
                self._degrade(exc)
                rows = []
            pending = [r for r in self._pending.audit
                       if (since is None or r.ts >= since) and (until is None or r.ts <= until)
                       and (action is None or r.action == action)]
        out = sorted(rows[::-1] + pending, key=lambda r: r.ts)  # rows came newest first
        return out[-int(limit):] if limit is not None else out

    # --- degraded mode -------------------------------------------------------------------------

    @property
    def degraded(self) -> bool:
        """True while records are kept in memory because the file cannot be written."""
        return self.error is not None

    @property
    def pending_count(self) -> int:
        with self._lock:
            return len(self._pending.events) + len(self._pending.audit)

    def _degrade(self, exc: StoreError) -> None:
        message = f"{exc}; keeping events in memory"
        if self.error != message:
            log.warning("%s", message)
        self.error = message

    def _recovered(self) -> None:
        if self.error is not None:
            log.warning("store %s is writable again; the in-memory backlog was written", self.path)
            self.error = None

    def _flush_pending(self) -> None:
        """Write the in-memory backlog (oldest first). Raises StoreError when it still cannot."""
        while self._pending.events:
            e, inc_id = self._pending.events[0]
            self._insert_event(e, inc_id)
            self._pending.events.pop(0)
        while self._pending.audit:
            self._insert_audit(self._pending.audit[0])
            self._pending.audit.pop(0)

    def flush(self) -> bool:
        """Try to write the in-memory backlog now; True when nothing is left in memory."""
        with self._lock:
            try:
                self._flush_pending()
            except StoreError as exc:
                self._degrade(exc)
                return False
            self._recovered()
            return True

    # --- retention -----------------------------------------------------------------------------

    def prune(self, now: float | None = None) -> int:
        """Delete rows older than ``retention_days``; returns how many. Open incidents, pending
        notifications and live acknowledgements are kept whatever their age."""
        cutoff = self._now(now) - self.retention_days * 86400.0

        def body(conn: sqlite3.Connection) -> int:
            n = 0
            for sql in (
                "DELETE FROM events WHERE ts < ?",
                "DELETE FROM audit WHERE ts < ?",
                "DELETE FROM rollout_durations WHERE ts < ?",
                "DELETE FROM notifications WHERE status != 'pending' AND created_at < ?",
                "DELETE FROM incidents WHERE status = 'closed' AND closed_at < ?",
                "DELETE FROM alert_acks WHERE expires_at IS NOT NULL AND expires_at < ?",
            ):
                n += conn.execute(sql, (cutoff,)).rowcount
            return n

        removed = int(self._transaction(body))
        self._last_prune = self._now(now)
        return removed

    def _maybe_prune(self, now: float) -> None:
        if now - self._last_prune >= _PRUNE_EVERY_SECONDS:
            try:
                self.prune()
            except StoreError as exc:
                log.warning("pruning failed: %s", exc)

    # --- incidents -----------------------------------------------------------------------------

    @staticmethod
    def _row_incident(r: sqlite3.Row) -> Incident:
        return Incident(
            id=r["id"], severity=r["severity"], status=r["status"], opened_at=r["opened_at"],
            title=r["title"], closed_at=r["closed_at"],
            services=tuple(_loads(r["services"], [])), opened_by=r["opened_by"],
            closed_by=r["closed_by"], close_reason=r["close_reason"])

    def create_incident(self, severity: str, *, title: str = "", services: Iterable[str] = (),
                        opened_by: str = "", now: float | None = None) -> Incident:
        at = self._now(now)
        iid = self._write(
            "INSERT INTO incidents (title, severity, status, opened_at, services, opened_by)"
            " VALUES (?, ?, 'open', ?, ?, ?)",
            (scrub(title, self.secrets), severity, at, _dumps(sorted(set(services))), opened_by))
        found = self.incident(iid)
        assert found is not None
        return found

    def create_incident_unless_open(self, severity: str, *, title: str = "",
                                    services: Iterable[str] = (), opened_by: str = "",
                                    now: float | None = None) -> tuple[Incident, bool]:
        """The open incident, or a new one — atomically, so two consoles sharing the file that
        see the same failure open one incident, not two. Returns (incident, created)."""
        at = self._now(now)

        def body(conn: sqlite3.Connection) -> tuple[int, bool]:
            row = conn.execute("SELECT id FROM incidents WHERE status = 'open'"
                               " ORDER BY opened_at DESC, id DESC LIMIT 1").fetchone()
            if row is not None:
                return int(row[0]), False
            cur = conn.execute(
                "INSERT INTO incidents (title, severity, status, opened_at, services, opened_by)"
                " VALUES (?, ?, 'open', ?, ?, ?)",
                (scrub(title, self.secrets), severity, at, _dumps(sorted(set(services))),
                 opened_by))
            return int(cur.lastrowid or 0), True

        iid, created = self._transaction(body)
        found = self.incident(iid)
        assert found is not None
        return found, created

    def update_incident(self, incident_id: int, *, severity: str | None = None,
                        title: str | None = None, services: Iterable[str] | None = None,
                        close: bool = False, closed_by: str = "", close_reason: str = "",
                        now: float | None = None) -> Incident:
        """Change an incident; raises StoreError when there is no such incident."""
        sets: list[str] = []
        params: list[Any] = []
        if severity is not None:
            sets.append("severity = ?")
            params.append(severity)
        if title is not None:
            sets.append("title = ?")
            params.append(scrub(title, self.secrets))
        if services is not None:
            sets.append("services = ?")
            params.append(_dumps(sorted(set(services))))
        if close:
            sets += ["status = 'closed'", "closed_at = ?", "closed_by = ?", "close_reason = ?"]
            params += [self._now(now), closed_by, scrub(close_reason, self.secrets)]
        if sets:
            with self._lock:
                try:
                    cur = self._conn.execute(f"UPDATE incidents SET {', '.join(sets)} WHERE id = ?",
                                             (*params, incident_id))
                except sqlite3.Error as exc:
                    raise self._error(exc, "write") from None
                if cur.rowcount == 0:
                    raise StoreError(f"no incident #{incident_id} in store {self.path}")
        found = self.incident(incident_id)
        if found is None:
            raise StoreError(f"no incident #{incident_id} in store {self.path}")
        return found

    def incident(self, incident_id: int) -> Incident | None:
        rows = self._query("SELECT * FROM incidents WHERE id = ?", (incident_id,))
        return self._row_incident(rows[0]) if rows else None

    def incidents(self, *, since: float | None = None, status: str | None = None,
                  limit: int = 50) -> list[Incident]:
        """Most recent first. ``since``: opened at or after, or still open."""
        where: list[str] = []
        params: list[Any] = []
        if since is not None:
            where.append("(opened_at >= ? OR status = 'open')")
            params.append(since)
        if status is not None:
            where.append("status = ?")
            params.append(status)
        sql = "SELECT * FROM incidents" + (" WHERE " + " AND ".join(where) if where else "")
        rows = self._query(sql + f" ORDER BY opened_at DESC, id DESC LIMIT {int(limit)}", params)
        return [self._row_incident(r) for r in rows]

    def open_incident(self) -> Incident | None:
        """The most recently opened incident that is still open."""
        found = self.incidents(status="open", limit=1)
        return found[0] if found else None

    # --- rollout durations ---------------------------------------------------------------------

    def record_rollout_duration(self, deployment: str, revision: str | int, seconds: float,
                                now: float | None = None) -> None:
        self._write("INSERT INTO rollout_durations (ts, deployment, revision, seconds)"
                    " VALUES (?, ?, ?, ?)", (self._now(now), deployment, str(revision), seconds))

    def rollout_durations(self, deployment: str, limit: int = 20) -> list[float]:
        """Seconds of the last ``limit`` completed rollouts of ``deployment``, oldest first."""
        rows = self._query("SELECT seconds FROM rollout_durations WHERE deployment = ?"
                           " ORDER BY ts DESC, id DESC LIMIT ?", (deployment, int(limit)))
        return [float(r["seconds"]) for r in reversed(rows)]

    # --- notification queue --------------------------------------------------------------------

    @staticmethod
    def _row_notification(r: sqlite3.Row) -> Notification:
        return Notification(
            id=r["id"], event=r["event"], channel=r["channel"], payload=_loads(r["payload"], {}),
            status=r["status"], attempts=r["attempts"], next_attempt=r["next_attempt"],
            created_at=r["created_at"], last_error=r["last_error"],
            delivered_at=r["delivered_at"], dedup_key=r["dedup_key"])

    def enqueue_notification(self, event: str, channel: str, payload: Mapping[str, Any], *,
                             dedup_key: str = "", now: float | None = None,
                             not_before: float | None = None) -> int:
        """Queue one message for one channel (payload scrubbed); returns its id."""
        at = self._now(now)
        return self._write(
            "INSERT INTO notifications (created_at, event, channel, payload, status, attempts,"
            " next_attempt, dedup_key, updated_at) VALUES (?, ?, ?, ?, 'pending', 0, ?, ?, ?)",
            (at, event, channel, _dumps(scrub_value(dict(payload), self.secrets)),
             at if not_before is None else not_before, dedup_key, at))

    def notification(self, notification_id: int) -> Notification | None:
        rows = self._query("SELECT * FROM notifications WHERE id = ?", (notification_id,))
        return self._row_notification(rows[0]) if rows else None

    def due_notifications(self, now: float | None = None, limit: int = 100) -> list[Notification]:
        """Pending messages whose ``next_attempt`` has come, oldest first (no claim)."""
        rows = self._query("SELECT * FROM notifications WHERE status = 'pending' AND"
                           " next_attempt <= ? ORDER BY next_attempt, id LIMIT ?",
                           (self._now(now), int(limit)))
        return [self._row_notification(r) for r in rows]

    def claim_due_notifications(self, now: float | None = None, limit: int = 100,
                                lease_seconds: float = 60.0) -> list[Notification]:
        """Like :meth:`due_notifications`, and move their ``next_attempt`` ``lease_seconds``
        ahead in the same transaction, so another console sharing the file does not send them
        too. A sender that dies mid-delivery leaves them due again after the lease."""
        at = self._now(now)

        def body(conn: sqlite3.Connection) -> list[Notification]:
            cur = conn.execute("SELECT * FROM notifications WHERE status = 'pending' AND"
                               " next_attempt <= ? ORDER BY next_attempt, id LIMIT ?",
                               (at, int(limit)))
            cur.row_factory = sqlite3.Row
            rows = [self._row_notification(r) for r in cur.fetchall()]
            conn.executemany("UPDATE notifications SET next_attempt = ?, updated_at = ? WHERE id = ?",
                             [(at + lease_seconds, at, n.id) for n in rows])
            return rows

        return list(self._transaction(body))

    def mark_delivered(self, notification_id: int, now: float | None = None) -> None:
        at = self._now(now)
        self._write("UPDATE notifications SET status = 'delivered', delivered_at = ?,"
                    " attempts = attempts + 1, last_error = '', updated_at = ? WHERE id = ?",
                    (at, at, notification_id))

    def mark_failed(self, notification_id: int, error: str, next_attempt: float | None,
                    now: float | None = None) -> Notification:
        """Count a failed attempt. ``next_attempt=None`` dead-letters the message."""
        at = self._now(now)
        err = scrub(error, self.secrets)
        if next_attempt is None:
            self._write("UPDATE notifications SET status = 'dead', attempts = attempts + 1,"
                        " last_error = ?, updated_at = ? WHERE id = ?", (err, at, notification_id))
        else:
            self._write("UPDATE notifications SET attempts = attempts + 1, last_error = ?,"
                        " next_attempt = ?, updated_at = ? WHERE id = ?",
                        (err, next_attempt, at, notification_id))
        found = self.notification(notification_id)
        if found is None:
            raise StoreError(f"no notification #{notification_id} in store {self.path}")
        return found

    def requeue_notification(self, notification_id: int, now: float | None = None) -> None:
        """Give a dead letter a fresh start (attempts 0, due now)."""
        at = self._now(now)
        self._write("UPDATE notifications SET status = 'pending', attempts = 0, next_attempt = ?,"
                    " updated_at = ? WHERE id = ?", (at, at, notification_id))

    def dead_letters(self, limit: int = 100) -> list[Notification]:
        return self.notifications(status="dead", limit=limit)

    def notifications(self, status: str | None = None, limit: int = 100) -> list[Notification]:
        """Most recent first, optionally only ``pending`` / ``delivered`` / ``dead``."""
        if status is None:
            rows = self._query("SELECT * FROM notifications ORDER BY created_at DESC, id DESC"
                               " LIMIT ?", (int(limit),))
        else:
            rows = self._query("SELECT * FROM notifications WHERE status = ? ORDER BY"
                               " created_at DESC, id DESC LIMIT ?", (status, int(limit)))
        return [self._row_notification(r) for r in rows]

    # --- acknowledgements of the console's own rule alerts -------------------------------------

    def ack_alert(self, alert_key: str, acked_by: str, *, until: float | None = None,
                  comment: str = "", now: float | None = None) -> AlertAck:
        at = self._now(now)
        self._write("INSERT OR REPLACE INTO alert_acks (alert_key, acked_by, acked_at, expires_at,"
                    " comment) VALUES (?, ?, ?, ?, ?)",
                    (alert_key, acked_by, at, until, scrub(comment, self.secrets)))
        return AlertAck(alert_key, acked_by, at, until, scrub(comment, self.secrets))

    def unack_alert(self, alert_key: str) -> bool:
        with self._lock:
            try:
                cur = self._conn.execute("DELETE FROM alert_acks WHERE alert_key = ?", (alert_key,))
            except sqlite3.Error as exc:
                raise self._error(exc, "write") from None
            return cur.rowcount > 0

    def alert_acks(self, now: float | None = None) -> dict[str, AlertAck]:
        """Acknowledgements that have not expired, by alert key."""
        rows = self._query("SELECT * FROM alert_acks WHERE expires_at IS NULL OR expires_at > ?",
                           (self._now(now),))
        return {r["alert_key"]: AlertAck(r["alert_key"], r["acked_by"], r["acked_at"],
                                         r["expires_at"], r["comment"]) for r in rows}


def open_store(settings: Settings, *, clock: Callable[[], float] = time.time) -> Store:
    """Open (create, migrate) the store at ``settings.store_path``; creates its folder.

    Raises StoreError with the path and the reason when the folder or file cannot be used.
    """
    path = settings.store_path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the store folder {path.parent}: "
                         f"{exc.strerror or exc}; set [store] path to a writable place") from None
    return Store(path, retention_days=settings.store.retention_days,
                 secrets=known_secrets(settings), clock=clock)
