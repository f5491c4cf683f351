"""Post-mortems from a scripted incident, read back with a real markdown parser."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from markdown_it.token import Token

from deploytui.config import Settings, parse_config
from deploytui.incidents import IncidentManager
from deploytui.model import AuditRecord, TimelineEvent
from deploytui.postmortem import (
    PostmortemWindow,
    compute_impact,
    generate_postmortem,
    parse_time,
    postmortem_filename,
    resolve_window,
    write_postmortem,
)
from deploytui.store import Store

SLACK = "https://hooks.slack.com/services/T0001/B0002/SLACKSECRET42"
TOKEN = "tok-SECRET-health-999"


def at(hhmm: str) -> float:
    h, m = map(int, hhmm.split(":"))
    return datetime(2026, 11, 23, h, m, tzinfo=UTC).timestamp()


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def settings(tmp_path: Path) -> Settings:
    return parse_config(f"""
[[services]]
name = "checkout"
env = "prod"
health_url = "http://127.0.0.1:1/health"
headers = {{ Authorization = "Bearer {TOKEN}" }}

[[services]]
name = "cart"
env = "prod"
health_url = "http://127.0.0.1:2/health"

[[notify.channels]]
name = "ops-slack"
kind = "slack"
url = "{SLACK}"

[postmortem]
output_dir = "{tmp_path / 'pm'}"

[store]
path = "{tmp_path / 'store.db'}"
""")


def health(service: str, to: str, hhmm: str, frm: str = "healthy") -> TimelineEvent:
    return TimelineEvent(kind="health_changed", summary=f"{service}: {frm} -> {to}", ts=at(hhmm),
                         service=service, env="prod", actor="deploytui",
                         details={"from": frm, "to": to})


def script_incident(store: Store, s: Settings) -> int:
    """13:00 checkout down ... 13:30 closed by hand. Returns the incident id."""
    clock = Clock(at("12:50"))
    mgr = IncidentManager(store, s, clock)
    mgr.add_event(TimelineEvent(kind="rollout_started", summary="shop/checkout revision 7 started",
                                ts=at("12:55"), service="shop/checkout",
                                details={"deployment": "shop/checkout"}))
    mgr.add_event(health("prod/checkout", "unhealthy", "13:00"))
    clock.now = at("13:01")
    mgr.set_severity("P1", actor="alice@host")
    mgr.add_event(TimelineEvent(kind="alert_firing", summary="HighErrorRate on checkout",
                                severity="warning", ts=at("13:02"), service="prod/checkout",
                                details={"alertname": "HighErrorRate", "error_rate": 12.5}))
    mgr.add_event(health("prod/cart", "unreachable", "13:03"))
    mgr.add_event(TimelineEvent(kind="rollout_stalled", summary="shop/checkout rollout stalled",
                                ts=at("13:05"), service="shop/checkout",
                                details={"deployment": "shop/checkout"}))
    mgr.add_event(health("prod/cart", "healthy", "13:08", frm="unreachable"))
    store.add_audit(AuditRecord(action="rollback", target="shop/checkout", status="ok",
                                ts=at("13:10"), service="checkout", environment="prod",
                                deployer="alice@host", duration=42, correlation_id="c-1",
                                message=f"revision 7 -> 6 (sent with Bearer {TOKEN})"))
    mgr.add_event(TimelineEvent(kind="action", summary="Roll back shop/checkout: ok",
                                ts=at("13:10"), service="shop/checkout", actor="alice@host",
                                correlation_id="c-1", details={"action": "rollback", "status": "ok"}))
    mgr.add_event(health("prod/checkout", "healthy", "13:12", frm="unhealthy"))
    clock.now = at("13:14")
    mgr.note(f"posted in #ops via {SLACK}", actor="bob@host")
    mgr.add_event(TimelineEvent(kind="ack", summary="HighErrorRate acknowledged", ts=at("13:20"),
                                actor="bob@host"))
    clock.now = at("13:30")
    closed = mgr.close(actor="alice@host", reason="rolled back, error rate normal")
    # after the incident: not part of it
    store.add_event(TimelineEvent(kind="note", summary="unrelated later note", ts=at("14:30")))
    return closed.id


def plain(inline: Token) -> str:
    """The text a reader sees (markup and escapes removed)."""
    return "".join(c.content if c.type in ("text", "code_inline") else " " if c.type == "softbreak"
                   else "" for c in inline.children or [])


def sections(tokens: list[Token]) -> dict[str, list[str]]:
    """h2 heading -> the rendered text of each list item under it, in order."""
    out: dict[str, list[str]] = {}
    current = ""
    for i, tok in enumerate(tokens):
        if tok.type == "heading_open" and tok.tag == "h2":
            current = plain(tokens[i + 1])
            out[current] = []
        elif tok.type == "list_item_open" and current:
            out[current].append(plain(tokens[i + 2]))
    return out


def test_postmortem_from_scripted_incident(tmp_path: Path) -> None:
    s = settings(tmp_path)
    store = Store(s.store_path)
    iid = script_incident(store, s)
    path = generate_postmortem(store, s, incident_id=iid, now=at("15:00"))
    assert path == tmp_path / "pm" / f"2026-11-23-incident-{iid}.md"
    text = path.read_text()

    for secret in ("SLACKSECRET42", TOKEN, "T0001/B0002"):
        assert secret not in text

    tokens = MarkdownIt("commonmark").parse(text)
    h1 = [plain(tokens[i + 1]) for i, t in enumerate(tokens) if t.type == "heading_open" and t.tag == "h1"]
    assert h1 == [f"Post-mortem: incident #{iid} — prod/checkout unhealthy"]
    sec = sections(tokens)
    assert list(sec) == ["Summary", "Timeline", "Root Cause", "Impact", "Resolution",
                         "Action Items", "Lessons Learned"]

    summary = "\n".join(sec["Summary"])
    assert "Date: 2026-11-23" in summary
    assert "Duration: 30 min" in summary
    assert "Severity: P1" in summary
    assert "Services: prod/cart, prod/checkout" in summary

    rows = sec["Timeline"]
    times = [r.split(" — ")[0] for r in rows]
    assert times == sorted(times) and times[0] == "12:55" and times[-1] == "13:30"
    # the change that preceded it, marked as such (not counted in the impact)
    assert rows[0] == "12:55 — shop/checkout revision 7 started (before the incident)"
    assert rows[1] == "13:00 — prod/checkout: healthy -> unhealthy"
    assert rows[2].startswith("13:00 — Incident #1 opened (P2)")
    assert "13:01 — Incident #1 severity P2 -> P1 (by alice@host)" in rows
    assert "13:05 — shop/checkout rollout stalled" in rows
    assert not any("unrelated later note" in r for r in rows)

    impact = sec["Impact"]
    assert impact[0] == ("prod/cart: unreachable or unhealthy for 5 min; availability 83.33 % "
                         "(target 99.9 % missed)").replace("unreachable or unhealthy",
                                                          "unhealthy or unreachable")
    assert impact[1] == ("prod/checkout: unhealthy or unreachable for 12 min; availability 60.00 % "
                         "(target 99.9 % missed)")
    assert impact[2] == "Peak error rate: 12.50 % (prod/checkout)"

    resolution = sec["Resolution"]
    assert resolution[1].startswith("13:10 — rollback shop/checkout by alice@host: ok in 42 s")
    assert not any("Roll back shop/checkout: ok" in r for r in resolution)  # deduped by cid
    assert resolution[-1].startswith("13:30 — incident close incident #1 by alice@host: ok")

    items = "\n".join(sec["Action Items"])
    assert "[ ] Add a stall alert for shop/checkout" in items
    assert "[ ] Add a canary / auto-rollback guard for shop/checkout" in items
    assert "[ ] Find out why prod/cart was unreachable" in items
    assert "[ ] Review escalation: first acknowledgement after 20 min (P1 target 15 min)" in items
    assert sec["Root Cause"] and sec["Lessons Learned"]
    store.close()


def test_never_overwrites(tmp_path: Path) -> None:
    s = settings(tmp_path)
    store = Store(s.store_path)
    iid = script_incident(store, s)
    first = generate_postmortem(store, s, incident_id=iid, now=at("15:00"))
    second = generate_postmortem(store, s, incident_id=iid, now=at("15:00"))
    third = generate_postmortem(store, s, incident_id=iid, now=at("15:00"))
    assert [p.name for p in (first, second, third)] == [
        "2026-11-23-incident-1.md", "2026-11-23-incident-1-2.md", "2026-11-23-incident-1-3.md"]
    own = tmp_path / "mine.md"
    own.write_text("keep me")
    assert write_postmortem("new", own) == tmp_path / "mine-2.md"
    assert own.read_text() == "keep me"
    store.close()


def test_window_report_and_baseline(tmp_path: Path) -> None:
    s = settings(tmp_path)
    with Store(s.store_path) as store:
        # already unhealthy before the window opened: counts from the window start
        store.add_event(health("prod/cart", "unhealthy", "12:00"))
        store.add_event(health("prod/cart", "healthy", "13:15", frm="unhealthy"))
        store.add_event(TimelineEvent(kind="guard", summary="guard evaluation", ts=at("13:05"),
                                      details={"metric": "error_rate", "value": "7.5%"}))
        store.add_event(TimelineEvent(kind="alert_firing", summary="HighErrorRate firing",
                                      ts=at("13:06"), severity="warning",
                                      details={"alertname": "HighErrorRate", "value": 6.0}))
        store.add_event(TimelineEvent(kind="alert_firing", summary="HighLatencyP95 firing",
                                      ts=at("13:07"), severity="warning",
                                      details={"alertname": "HighLatencyP95", "value": 9.0}))
        path = generate_postmortem(store, s, since=at("13:00"), until=at("14:00"), now=at("15:00"))
    assert path.name == "2026-11-23-window-1300-1400.md"
    sec = sections(MarkdownIt("commonmark").parse(path.read_text()))
    assert "Severity: not an incident — a time-window report" in sec["Summary"]
    assert sec["Impact"][0] == ("prod/cart: unhealthy or unreachable for 15 min; availability "
                                "75.00 % (target 99.9 % missed)")
    assert sec["Impact"][1] == "Peak error rate: 7.50 %"


def test_resolve_window_errors(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        with pytest.raises(ValueError, match="no incident recorded"):
            resolve_window(store)
        with pytest.raises(ValueError, match="no incident #4"):
            resolve_window(store, incident_id=4)
        with pytest.raises(ValueError, match="window is empty"):
            resolve_window(store, since=100, until=50)
        inc = store.create_incident("P3", now=100)
        w = resolve_window(store, now=400)
        assert (w.start, w.end, w.incident) == (100, 400, inc)


def test_parse_time() -> None:
    now = at("15:00")
    assert parse_time("2h", now) == at("13:00")
    assert parse_time("90m", now) == at("13:30")
    assert parse_time("2026-11-23T13:00", now) == at("13:00")
    assert parse_time("2026-11-23T14:00+01:00", now) == at("13:00")
    with pytest.raises(ValueError, match="not a time"):
        parse_time("yesterday-ish", now)


def test_impact_clips_to_window() -> None:
    w = PostmortemWindow(at("13:00"), at("13:10"))
    impact = compute_impact([health("prod/a", "unhealthy", "13:05")], w)
    assert impact.bad_minutes == {"prod/a": 5.0}
    assert impact.availability["prod/a"] == pytest.approx(50.0)
    assert postmortem_filename(w) == "2026-11-23-window-1300-1310.md"
