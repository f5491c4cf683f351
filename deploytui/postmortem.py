"""Post-mortems: an incident's (or a time window's) timeline and audit log -> a markdown file
following the runbook's template:

    # Post-mortem: ...
    ## Summary          date, duration, severity, services
    ## Timeline         "HH:MM — event", in order (UTC)
    ## Root Cause       prompts to fill
    ## Impact           computed: minutes each service was unhealthy / unreachable, peak error
                        rate, availability in the window against the target (99.9 %)
    ## Resolution       the actions taken, by whom, with outcomes
    ## Action Items     a checklist seeded from what happened
    ## Lessons Learned  prompts to fill

:func:`render_postmortem` is pure (events in, text out); :func:`generate_postmortem` reads the
store, renders and writes the file without ever overwriting one. Every secret is masked.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from deploytui.cli.common import parse_duration
from deploytui.config import Settings
from deploytui.incidents import BAD_STATES
from deploytui.model import AuditRecord, TimelineEvent
from deploytui.store import Incident, Store, known_secrets, scrub

__all__ = [
    "LEAD_IN_KINDS",
    "LEAD_IN_SECONDS",
    "Impact",
    "PostmortemWindow",
    "compute_impact",
    "generate_postmortem",
    "parse_time",
    "postmortem_filename",
    "render_postmortem",
    "resolve_window",
    "write_postmortem",
]

_PROMPTS_ROOT_CAUSE = (
    "What failed first, and what did the first signal look like?",
    "Why did it fail? (ask why until the answer is a process or a design, not a person)",
    "Why was it not caught earlier — in review, tests, canary or alerting?",
    "Which change, deploy or dependency triggered it? Link it.",
)
_PROMPTS_LESSONS = (
    "What went well?",
    "What went wrong?",
    "Where did we get lucky?",
    "What would have shortened the time to detect, to acknowledge and to recover?",
)


# --- time window -------------------------------------------------------------------------------


def parse_time(text: str, now: float | None = None) -> float:
    """An ISO time (``2026-11-23T13:00``, UTC when no zone is given) or a duration meaning
    "that long ago" (``2h``, ``30m``, ``1d``). Raises ValueError with a clear message."""
    now = time.time() if now is None else now
    value = text.strip()
    try:
        return now - parse_duration(value)
    except ValueError:
        pass
    try:
        stamp = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"not a time: {text!r} (use an ISO time like 2026-11-23T13:00 or a "
                         f"duration like 2h, meaning 2 hours ago)") from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.timestamp()


@dataclass(frozen=True)
class PostmortemWindow:
    start: float
    end: float
    incident: Incident | None = None

    @property
    def minutes(self) -> float:
        return max(0.0, self.end - self.start) / 60.0


def resolve_window(store: Store, *, incident_id: int | None = None, since: float | None = None,
                   until: float | None = None, now: float | None = None) -> PostmortemWindow:
    """The incident's open..close window (now while it is open), or since..until (until
    defaults to now), or — with neither — the most recent incident. Raises ValueError."""
    now = time.time() if now is None else now
    if incident_id is not None:
        incident = store.incident(incident_id)
        if incident is None:
            raise ValueError(f"no incident #{incident_id} in {store.path} "
                             f"(`deploytui postmortem --since 2h` covers a time window instead)")
        end = incident.closed_at if incident.closed_at is not None else now
        return PostmortemWindow(incident.opened_at, end, incident)
    if since is None:
        if until is not None:
            raise ValueError("--until needs --since")
        latest = store.incidents(limit=1)
        if not latest:
            raise ValueError(f"no incident recorded in {store.path}; pass --since (e.g. 2h) "
                             f"for a time window")
        return resolve_window(store, incident_id=latest[0].id, now=now)
    end = now if until is None else until
    if end <= since:
        raise ValueError("the window is empty: --until must be later than --since")
    return PostmortemWindow(since, end, None)


# --- impact ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Impact:
    window_minutes: float
    bad_minutes: Mapping[str, float]              # service -> minutes unhealthy or unreachable
    availability: Mapping[str, float]             # service -> percent over the window
    target: float                                 # percent, e.g. 99.9
    peak_error_rate: float | None = None          # percent
    peak_error_service: str = ""
    unreachable: tuple[str, ...] = ()             # services that were unreachable at some point


def _state(event: TimelineEvent) -> str:
    return str(event.details.get("to") or event.details.get("state") or "").lower()


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*%?\s*", value)
        return float(m.group(1)) if m else None
    return None


def _error_rates(data: Mapping[str, Any]) -> Iterable[float]:
    for key in ("error_rate", "error_rate_percent"):
        n = _number(data.get(key))
        if n is not None:
            yield n
    metric = str(data.get("metric") or data.get("criterion") or data.get("alertname") or "")
    if metric.lower().replace("_", "").replace("high", "").startswith("errorrate"):
        n = _number(data.get("value"))
        if n is not None:
            yield n


def compute_impact(events: Sequence[TimelineEvent], window: PostmortemWindow, *,
                   baseline: Mapping[str, str] | None = None, services: Iterable[str] = (),
                   audit: Sequence[AuditRecord] = (), target: float = 99.9) -> Impact:
    """Minutes each service spent unhealthy or unreachable inside the window (from
    ``health_changed`` events; ``baseline`` is each service's state when the window opened),
    the peak error rate seen in event details / audit values, and availability per service."""
    start, end = window.start, window.end
    span = max(end - start, 1e-9)
    state: dict[str, str] = {k: v.lower() for k, v in (baseline or {}).items()}
    since: dict[str, float] = {s: start for s, st in state.items() if st in BAD_STATES}
    bad: dict[str, float] = {s: 0.0 for s in services}
    bad.update({s: 0.0 for s in state if s not in bad})
    unreachable = {s for s, st in state.items() if st == "unreachable"}
    peak: tuple[float, str] | None = None
    for e in sorted(events, key=lambda e: e.ts):
        for rate in _error_rates(e.details):
            if peak is None or rate > peak[0]:
                peak = (rate, e.service)
        if e.kind != "health_changed" or not e.service:
            continue
        ts = min(max(e.ts, start), end)
        to = _state(e)
        bad.setdefault(e.service, 0.0)
        was_bad = e.service in since
        if to in BAD_STATES and not was_bad:
            since[e.service] = ts
        elif to not in BAD_STATES and was_bad:
            bad[e.service] += ts - since.pop(e.service)
        if to == "unreachable":
            unreachable.add(e.service)
        state[e.service] = to
    for service, began in since.items():
        bad[service] = bad.get(service, 0.0) + (end - began)
    for r in audit:
        for data in (r.after, r.before):
            for rate in _error_rates(data):
                if peak is None or rate > peak[0]:
                    peak = (rate, r.service or r.target)
    minutes = {s: round(v / 60.0, 1) for s, v in sorted(bad.items())}
    availability = {s: max(0.0, 100.0 * (1.0 - bad[s] / span)) for s in sorted(bad)}
    return Impact(window_minutes=span / 60.0, bad_minutes=minutes, availability=availability,
                  target=target, peak_error_rate=peak[0] if peak else None,
                  peak_error_service=peak[1] if peak else "",
                  unreachable=tuple(sorted(unreachable)))


# --- rendering ---------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<|])")


def _md(text: str) -> str:
    """Escape inline markdown so event text shows as written (one line)."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _clock(ts: float, multi_day: bool) -> str:
    return _utc(ts).strftime("%m-%d %H:%M" if multi_day else "%H:%M")


def _minutes(value: float) -> str:
    return f"{value:.0f} min" if value >= 10 or value == int(value) else f"{value:.1f} min"


def _first(items: Iterable[float]) -> float | None:
    return min(items, default=None)


#: changes in this long before an incident opened are shown as its lead-in (what changed?)
LEAD_IN_SECONDS = 30 * 60
LEAD_IN_KINDS = ("rollout_started", "rollout_completed", "rollout_failed", "rollout_stalled",
                 "action", "guard")


def render_postmortem(*, events: Sequence[TimelineEvent], audit: Sequence[AuditRecord],
                      window: PostmortemWindow, settings: Settings,
                      baseline: Mapping[str, str] | None = None,
                      lead_in: Sequence[TimelineEvent] = (),
                      generated_at: float | None = None) -> str:
    """The post-mortem markdown (secrets masked). Pure: no store, no clock unless defaulted.

    ``lead_in``: changes shortly before the window (rollouts, actions), listed first in the
    timeline and marked "before"; they do not count in the impact."""
    generated_at = time.time() if generated_at is None else generated_at
    incident = window.incident
    events = sorted((e for e in events if window.start <= e.ts <= window.end), key=lambda e: e.ts)
    audit = sorted((r for r in audit if window.start <= r.ts <= window.end), key=lambda r: r.ts)
    multi_day = _utc(window.start).date() != _utc(window.end).date()
    services = sorted(set(incident.services if incident else ()) | {
        e.service for e in events if e.kind == "health_changed" and e.service})
    impact = compute_impact(events, window, baseline=baseline, services=services, audit=audit,
                            target=settings.health.availability_target)
    affected = sorted(s for s, m in impact.bad_minutes.items() if m > 0) or services

    lines: list[str] = []
    add = lines.append
    start_s, end_s = _utc(window.start), _utc(window.end)
    if incident:
        title = f"Post-mortem: incident #{incident.id}"
        if incident.title:
            title += f" — {_md(incident.title)}"
    else:
        title = f"Post-mortem: {start_s:%Y-%m-%d %H:%M} to {end_s:%H:%M} UTC"
    add(f"# {title}")
    add("")
    add("## Summary")
    add("")
    add(f"- **Date:** {start_s:%Y-%m-%d} (times in UTC)")
    add(f"- **Window:** {start_s:%Y-%m-%d %H:%M} – {end_s:%Y-%m-%d %H:%M}")
    add(f"- **Duration:** {_minutes(window.minutes)}")
    if incident:
        add(f"- **Severity:** {incident.severity}")
        state = ("open (still ongoing)" if incident.is_open else
                 f"closed by {_md(incident.closed_by or 'unknown')}: {_md(incident.close_reason)}")
        add(f"- **Incident:** #{incident.id}, opened by {_md(incident.opened_by or 'unknown')}; {state}")
    else:
        add("- **Severity:** not an incident — a time-window report")
    add(f"- **Services:** {', '.join(_md(s) for s in affected) if affected else 'none recorded'}")
    add(f"- **Generated:** {_utc(generated_at):%Y-%m-%d %H:%M} UTC by deploytui")
    add("")

    add("## Timeline")
    add("")
    lead = sorted((e for e in lead_in if e.ts < window.start), key=lambda e: e.ts)
    multi_day = multi_day or (bool(lead) and _utc(lead[0].ts).date() != _utc(window.end).date())
    for e in lead:
        where = f"{_md(e.service)}: " if e.service and e.service not in e.summary else ""
        add(f"- {_clock(e.ts, multi_day)} — {where}{_md(e.summary)} (before the incident)")
    if events:
        for e in events:
            who = f" (by {_md(e.actor)})" if e.actor and e.actor != "deploytui" else ""
            where = f"{_md(e.service)}: " if e.service and e.service not in e.summary else ""
            add(f"- {_clock(e.ts, multi_day)} — {where}{_md(e.summary)}{who}")
    else:
        add("No events were recorded in this window.")
    add("")

    add("## Root Cause")
    add("")
    for prompt in _PROMPTS_ROOT_CAUSE:
        add(f"- _{prompt}_")
    add("")

    add("## Impact")
    add("")
    add(f"Window: {_minutes(impact.window_minutes)}; availability target "
        f"{impact.target:g} %.")
    add("")
    if impact.bad_minutes:
        for service, minutes in impact.bad_minutes.items():
            avail = impact.availability[service]
            verdict = "met" if avail >= impact.target else "missed"
            add(f"- {_md(service)}: unhealthy or unreachable for {_minutes(minutes)}; "
                f"availability {avail:.2f} % (target {impact.target:g} % {verdict})")
    else:
        add("- No service changed health in this window.")
    if impact.peak_error_rate is not None:
        where = f" ({_md(impact.peak_error_service)})" if impact.peak_error_service else ""
        add(f"- Peak error rate: {impact.peak_error_rate:.2f} %{where}")
    else:
        add("- Peak error rate: not recorded")
    add("")

    add("## Resolution")
    add("")
    resolution = _resolution(events, audit, multi_day)
    lines.extend(resolution or ["No actions were recorded in this window."])
    add("")

    add("## Action Items")
    add("")
    for item in _action_items(events, audit, window, impact, settings):
        add(f"- [ ] {item}")
    add("")

    add("## Lessons Learned")
    add("")
    for prompt in _PROMPTS_LESSONS:
        add(f"- _{prompt}_")
    add("")
    return scrub("\n".join(lines), known_secrets(settings))


_NOT_ACTIONS = frozenset({"guard_eval", "note"})


def _resolution(events: Sequence[TimelineEvent], audit: Sequence[AuditRecord],
                multi_day: bool) -> list[str]:
    rows: list[tuple[float, str]] = []
    seen: set[str] = set()
    for r in audit:
        if r.action in _NOT_ACTIONS or r.status == "evaluated":
            continue
        if r.correlation_id:
            seen.add(r.correlation_id)
        took = f" in {r.duration:.0f} s" if r.duration >= 1 else ""
        who = _md(r.deployer or "unknown")
        text = f"{_md(r.action.replace('_', ' '))} {_md(r.target)} by {who}: **{_md(r.status)}**{took}"
        if r.message:
            text += f" — {_md(r.message)}"
        rows.append((r.ts, text))
    for e in events:
        if e.kind != "action" or (e.correlation_id and e.correlation_id in seen):
            continue
        who = _md(e.actor or "unknown")
        status = e.details.get("status", "")
        text = f"{_md(e.summary)} by {who}" + (f": **{_md(str(status))}**" if status else "")
        rows.append((e.ts, text))
    return [f"- {_clock(ts, multi_day)} — {text}" for ts, text in sorted(rows, key=lambda r: r[0])]


def _deployment_of(e: TimelineEvent) -> str:
    return str(e.details.get("deployment") or e.service or "the deployment")


def _action_items(events: Sequence[TimelineEvent], audit: Sequence[AuditRecord],
                  window: PostmortemWindow, impact: Impact, settings: Settings) -> list[str]:
    items: list[str] = []

    def once(text: str) -> None:
        if text not in items:
            items.append(text)

    for e in events:
        if e.kind == "rollout_stalled":
            once(f"Add a stall alert for {_md(_deployment_of(e))} (its rollout stalled at "
                 f"{_clock(e.ts, False)} UTC)")
        elif e.kind == "rollout_failed":
            once(f"Find why the rollout of {_md(_deployment_of(e))} failed and add a check that "
                 f"catches it before deploy")
    rolled_back: list[str] = []
    for r in audit:
        if r.action in ("rollback", "guard_rollback") and r.status in ("ok", "dry_run"):
            rolled_back.append(r.target)
    for e in events:
        action = str(e.details.get("action", ""))
        if e.kind == "action" and action in ("rollback", "guard_rollback") and \
                e.details.get("status") == "ok":
            rolled_back.append(e.service)
        if e.kind == "guard" and str(e.details.get("decision", "")).startswith(("trip", "rollback")):
            rolled_back.append(_deployment_of(e))
    for target in dict.fromkeys(t for t in rolled_back if t):
        once(f"Add a canary / auto-rollback guard for {_md(target)}: a bad version reached "
             f"production and had to be rolled back")
    for service in impact.unreachable:
        once(f"Find out why {_md(service)} was unreachable (crash, network, capacity) and alert "
             f"on it before users do")
    for service, avail in impact.availability.items():
        if avail < impact.target:
            once(f"Review the error budget of {_md(service)}: availability {avail:.2f} % against "
                 f"{impact.target:g} %")
    incident = window.incident
    if incident is not None:
        target_min = settings.rules.response_minutes.get(incident.severity)
        acks = [e.ts for e in events if e.kind == "ack" and e.ts >= incident.opened_at]
        acks += [r.ts for r in audit if r.action == "ack" and r.status == "ok"
                 and r.ts >= incident.opened_at]
        first_ack = _first(acks)
        if target_min is not None:
            lasted = (window.end - incident.opened_at) / 60.0
            if first_ack is None and lasted > target_min:
                once(f"Review escalation: nobody acknowledged within the {incident.severity} "
                     f"response time of {target_min:g} min")
            elif first_ack is not None and (first_ack - incident.opened_at) / 60.0 > target_min:
                late = (first_ack - incident.opened_at) / 60.0
                once(f"Review escalation: first acknowledgement after {late:.0f} min "
                     f"({incident.severity} target {target_min:g} min)")
    for e in events:
        if e.kind == "notification" and str(e.details.get("status", "")) in ("dead", "dead_letter"):
            channel = e.details.get("channel", "a channel")
            once(f"Fix notification channel {_md(str(channel))}: messages were dead-lettered")
    once("Fill in the root cause and link the fix (ticket or pull request)")
    return items


# --- files -------------------------------------------------------------------------------------


def postmortem_filename(window: PostmortemWindow) -> str:
    """``YYYY-MM-DD-incident-<id>.md``, or ``YYYY-MM-DD-window-HHMM-HHMM.md`` for a window."""
    start = _utc(window.start)
    if window.incident is not None:
        return f"{start:%Y-%m-%d}-incident-{window.incident.id}.md"
    return f"{start:%Y-%m-%d}-window-{start:%H%M}-{_utc(window.end):%H%M}.md"


def write_postmortem(text: str, path: Path) -> Path:
    """Write ``text`` to ``path``, or ``<stem>-2``, ``-3``... if taken; never overwrites.
    Creates the folder. Returns the path written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    candidate = path
    n = 1
    while True:
        try:
            with candidate.open("x", encoding="utf-8") as fh:
                fh.write(text)
            return candidate
        except FileExistsError:
            n += 1
            candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")


def _baseline(store: Store, start: float) -> dict[str, str]:
    """Each service's health state when the window opened (its last change before)."""
    state: dict[str, str] = {}
    for e in store.events(until=start - 1e-6, kinds=["health_changed"], limit=5000):
        if _state(e):
            state[e.service] = _state(e)
    return state


def generate_postmortem(store: Store, settings: Settings, *, incident_id: int | None = None,
                        since: float | None = None, until: float | None = None,
                        output: Path | None = None, now: float | None = None) -> Path:
    """Read the store, render, write (to ``output`` or ``settings.postmortem_dir``); returns the
    path. Raises ValueError for an unknown incident or an empty window."""
    now = time.time() if now is None else now
    window = resolve_window(store, incident_id=incident_id, since=since, until=until, now=now)
    lead_in: list[TimelineEvent] = []
    if window.incident is not None:
        events = store.events(incident_id=window.incident.id)
        events = [e for e in events if e.ts <= window.end]
        lead_in = store.events(since=window.start - LEAD_IN_SECONDS, until=window.start,
                               kinds=LEAD_IN_KINDS)
    else:
        events = store.events(since=window.start, until=window.end)
    audit = store.audit(since=window.start, until=window.end)
    text = render_postmortem(events=events, audit=audit, window=window, settings=settings,
                             baseline=_baseline(store, window.start), lead_in=lead_in,
                             generated_at=now)
    path = output if output is not None else settings.postmortem_dir / postmortem_filename(window)
    return write_postmortem(text, path)
