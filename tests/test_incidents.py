"""Incidents over a real store file: automatic open, gathering, auto-close, manual changes."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from deploytui.config import Settings, parse_config
from deploytui.errors import ActionRefused
from deploytui.incidents import IncidentManager, attach_incidents
from deploytui.model import MemoryJournal, TimelineEvent
from deploytui.runtime import build_runtime
from deploytui.store import Store

CONFIG = """
[[services]]
name = "checkout"
env = "prod"
health_url = "http://127.0.0.1:1/health"

[[services]]
name = "cart"
env = "prod"
health_url = "http://127.0.0.1:2/health"

[[services]]
name = "checkout"
env = "staging"
health_url = "http://127.0.0.1:3/health"

[incidents]
default_severity = "P2"
auto_close_minutes = 15
"""

T0 = 1_800_000_000.0


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Recorder:
    """A Notifier that keeps what it was asked to send."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def notify(self, event: str, payload: Mapping[str, Any]) -> None:
        self.sent.append((event, dict(payload)))


def health(service: str, to: str, ts: float, env: str = "prod", frm: str = "healthy") -> TimelineEvent:
    return TimelineEvent(kind="health_changed", summary=f"{service}: {frm} -> {to}", ts=ts,
                         service=service, env=env, actor="deploytui",
                         details={"from": frm, "to": to})


def settings(extra: str = "") -> Settings:
    return parse_config(CONFIG + extra)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "incidents.db")
    yield s  # type: ignore[misc]
    s.close()


def test_prod_unhealthy_opens_gathers_and_auto_closes(store: Store) -> None:
    clock = Clock()
    notes = Recorder()
    mgr = IncidentManager(store, settings(), clock, notifier=notes)
    mgr.add_event(health("staging/checkout", "unhealthy", T0, env="staging"))
    assert mgr.current() is None  # staging does not open one

    mgr.add_event(health("prod/checkout", "unhealthy", T0 + 60))
    inc = mgr.current()
    assert inc is not None
    assert (inc.severity, inc.services, inc.opened_at) == ("P2", ("prod/checkout",), T0 + 60)
    mgr.add_event(health("prod/cart", "unreachable", T0 + 120))
    inc = mgr.current()
    assert inc is not None and inc.services == ("prod/cart", "prod/checkout")

    mgr.add_event(health("prod/checkout", "healthy", T0 + 600, frm="unhealthy"))
    mgr.add_event(health("prod/cart", "healthy", T0 + 900, frm="unreachable"))
    clock.now = T0 + 900 + 14 * 60
    assert mgr.tick() is None and mgr.current() is not None
    # a relapse stops the clock
    mgr.add_event(health("prod/cart", "unhealthy", T0 + 900 + 14 * 60))
    clock.now = T0 + 900 + 20 * 60
    assert mgr.tick() is None
    mgr.add_event(health("prod/cart", "healthy", T0 + 2000, frm="unhealthy"))
    clock.now = T0 + 2000 + 15 * 60
    closed = mgr.tick()
    assert closed is not None and closed.status == "closed"
    assert closed.close_reason == "everything healthy for 15 min"
    assert mgr.current() is None

    events = store.events(incident_id=inc.id)
    kinds = [(e.kind, e.details.get("action")) for e in events if e.kind == "incident"]
    assert kinds == [("incident", "opened"), ("incident", "service_added"), ("incident", "closed")]
    # the event that opened it comes first, tagged with it
    assert events[0].summary == "prod/checkout: healthy -> unhealthy"
    assert [n[0] for n in notes.sent] == ["incident_opened", "incident_closed"]


def test_critical_alert_opens_warning_does_not(store: Store) -> None:
    mgr = IncidentManager(store, settings(), Clock())
    mgr.add_event(TimelineEvent(kind="alert_firing", summary="HighLatency", severity="warning",
                                ts=T0, service="prod/cart", details={"alertname": "HighLatency"}))
    assert mgr.current() is None
    mgr.add_event(TimelineEvent(kind="alert_firing", summary="ErrorBudget", severity="critical",
                                ts=T0 + 5, service="prod/cart",
                                details={"alertname": "ErrorBudget", "fingerprint": "abc"}))
    inc = mgr.current()
    assert inc is not None and inc.title == "critical alert ErrorBudget on prod/cart"
    # resolved as the alerts source reports it (alertname, no fingerprint): the clock starts
    mgr.add_event(TimelineEvent(kind="alert_resolved", summary="ErrorBudget resolved",
                                ts=T0 + 60, service="prod/cart", details={"alertname": "ErrorBudget"}))
    closed = mgr.tick(now=T0 + 60 + 15 * 60)
    assert closed is not None and closed.id == inc.id


def test_automatic_opening_can_be_switched_off(store: Store) -> None:
    s = parse_config(CONFIG.replace("auto_close_minutes = 15",
                                    "auto_close_minutes = 15\nopen_on_prod_unhealthy = false\n"
                                    "open_on_critical_alert = false"))
    mgr = IncidentManager(store, s, Clock())
    mgr.add_event(health("prod/checkout", "unhealthy", T0))
    mgr.add_event(TimelineEvent(kind="alert_firing", summary="x", severity="critical", ts=T0))
    assert mgr.current() is None
    assert len(store.events()) == 2  # recorded all the same


def test_manual_open_severity_close_and_audit(store: Store) -> None:
    clock = Clock()
    mgr = IncidentManager(store, settings(), clock)
    inc = mgr.open(severity="P3", title="customers report slow checkout", actor="alice@host",
                   services=["prod/checkout"])
    with pytest.raises(ActionRefused, match="already open"):
        mgr.open(actor="bob@host")
    with pytest.raises(ActionRefused, match="severity must be one of"):
        mgr.set_severity("P7", actor="alice@host")
    clock.now += 60
    assert mgr.set_severity("P1", actor="alice@host").severity == "P1"
    mgr.note("rolled back by hand", actor="alice@host", service="prod/checkout")
    # nothing failed that the console saw: no auto close however long it waits
    clock.now += 3600
    assert mgr.tick() is None
    clock.now += 60
    closed = mgr.close(actor="alice@host", reason="fixed by rollback")
    assert (closed.closed_by, closed.close_reason) == ("alice@host", "fixed by rollback")
    with pytest.raises(ActionRefused, match="not open"):
        mgr.close(actor="alice@host")
    actions = [(r.action, r.deployer) for r in store.audit()]
    assert actions == [("incident_open", "alice@host"), ("incident_severity", "alice@host"),
                       ("note", "alice@host"), ("incident_close", "alice@host")]
    summaries = [e.summary for e in store.events(incident_id=inc.id)]
    assert summaries[1] == "Incident #1 severity P3 -> P1"
    assert "rolled back by hand" in summaries


def test_restarted_console_still_auto_closes(tmp_path: Path) -> None:
    db = tmp_path / "restart.db"
    clock = Clock()
    first = IncidentManager(Store(db), settings(), clock)
    first.add_event(health("prod/checkout", "unhealthy", T0))
    first.add_event(health("prod/checkout", "healthy", T0 + 300, frm="unhealthy"))
    # a new console over the same file knows the incident recovered at T0+300
    second = IncidentManager(Store(db), settings(), clock)
    clock.now = T0 + 300 + 15 * 60
    closed = second.tick()
    assert closed is not None and closed.id == 1


def test_two_consoles_open_one_incident(tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    a = IncidentManager(Store(db), settings(), Clock())
    b = IncidentManager(Store(db), settings(), Clock())
    a.add_event(health("prod/checkout", "unhealthy", T0))
    b.add_event(health("prod/checkout", "unhealthy", T0 + 1))
    b.add_event(health("prod/cart", "unhealthy", T0 + 2))
    incidents = Store(db).incidents()
    assert len(incidents) == 1
    assert incidents[0].services == ("prod/cart", "prod/checkout")


def test_build_runtime_puts_the_incident_manager_before_the_sources(tmp_path: Path) -> None:
    s = parse_config(CONFIG + f'\n[store]\npath = "{tmp_path / "rt.db"}"\n')
    rt = build_runtime(s, with_sources=False)
    assert isinstance(rt.journal, IncidentManager)
    assert rt.extras["incidents"] is rt.journal and rt.door.timeline is rt.journal
    assert isinstance(rt.extras["store"], Store)


def test_attach_incidents_wires_runtime_and_door(tmp_path: Path) -> None:
    s = parse_config(CONFIG + f'\n[store]\npath = "{tmp_path / "rt.db"}"\n')
    rt = build_runtime(s, with_sources=False, with_incidents=False)
    assert isinstance(rt.journal, Store)
    mgr = attach_incidents(rt, start=False)
    assert rt.journal is mgr and rt.door.timeline is mgr and rt.door.audit is mgr
    assert rt.extras["incidents"] is mgr and attach_incidents(rt) is mgr
    notes = Recorder()
    rt.extras["notifier"] = notes  # set up after the incidents: still used
    rt.journal.add_event(health("prod/cart", "unreachable", T0))
    assert [n[0] for n in notes.sent] == ["incident_opened"]
    assert notes.sent[0][1]["services"] == ["prod/cart"]
    assert mgr.current() is not None and mgr.error is None
    # the journal still offers the store's API (notify.py queues through it)
    nid = rt.journal.enqueue_notification("incident_opened", "ops-slack", {"text": "x"}, now=T0)
    assert [n.id for n in rt.journal.due_notifications(now=T0)] == [nid]
    with pytest.raises(AttributeError):
        rt.journal._no_such_private  # noqa: B018


def test_attach_incidents_over_memory_journal_keeps_working() -> None:
    rt = build_runtime(settings(), journal=MemoryJournal(), with_sources=False)
    rt.journal.error = "store /x is read-only"  # type: ignore[attr-defined]
    rt.journal.add_event(TimelineEvent(kind="note", summary="early", ts=T0 - 10))
    mgr = attach_incidents(rt, start=False)
    assert mgr.error == "store /x is read-only"
    mgr.add_event(health("prod/cart", "unhealthy", T0))
    assert mgr.current() is not None
    assert mgr.store.events()[0].summary == "early"


def test_degraded_store_never_raises_from_add_event(tmp_path: Path) -> None:
    db = tmp_path / "ro.db"
    Store(db).close()
    store = Store(db, read_only=True)  # SQLite read-only mode: writes fail for root too
    mgr = IncidentManager(store, settings(), Clock())
    mgr.add_event(health("prod/checkout", "unhealthy", T0))
    assert mgr.error is not None and "read-only" in mgr.error
    assert [e.kind for e in store.events()] == ["health_changed"]
    store.close()
