"""Alertmanager API v2: alerts and silences (read), silences (create, expire).

Acknowledgements live in Alertmanager as silences, so every console and the Alertmanager UI
agree on who acknowledged what: :func:`ack_matchers` picks the alert's *identifying* labels
(alertname, service, env, namespace ... — not every label, so the silence keeps matching when a
pod or a value label changes), and :func:`acks_by_fingerprint` reads acknowledgements back from
the active silences that suppress each alert, with their author, start and end.

The client is blocking (``httpx.Client``); the alerts source calls it in a thread, the ack
action from the action door's worker thread.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

if TYPE_CHECKING:
    import httpx

from deploytui.config import AlertmanagerSettings
from deploytui.errors import SourceError

__all__ = [
    "IDENTIFYING_LABELS",
    "AlertmanagerClient",
    "AmAlert",
    "Matcher",
    "Silence",
    "ack_matchers",
    "acks_by_fingerprint",
    "format_ts",
    "parse_ts",
    "promql_of",
]

#: Labels that identify an alert for acknowledgement (when present on it).
IDENTIFYING_LABELS: tuple[str, ...] = (
    "alertname", "service", "env", "environment", "namespace", "deployment", "job", "cluster",
)


def parse_ts(text: str | None) -> float:
    """RFC 3339 (``2026-11-23T12:58:33.703Z``, nanoseconds allowed) -> epoch seconds; 0 if none."""
    if not text:
        return 0.0
    t = text.strip().replace("Z", "+00:00")
    m = re.match(r"^(.*T\d\d:\d\d:\d\d)(\.\d+)?(.*)$", t)
    if m and m.group(2) and len(m.group(2)) > 7:  # fromisoformat takes at most microseconds
        t = f"{m.group(1)}{m.group(2)[:7]}{m.group(3)}"
    try:
        dt = datetime.fromisoformat(t)
    except ValueError:
        return 0.0
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def format_ts(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def promql_of(generator_url: str) -> str:
    """The PromQL expression behind a Prometheus alert (``g0.expr`` of its generatorURL)."""
    if not generator_url:
        return ""
    try:
        query = parse_qs(urlsplit(generator_url).query)
    except ValueError:
        return ""
    exprs = query.get("g0.expr") or query.get("expr") or []
    return exprs[0] if exprs else ""


@dataclass(frozen=True, slots=True)
class Matcher:
    name: str
    value: str
    is_regex: bool = False
    is_equal: bool = True

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self.is_regex:
            try:
                hit = re.fullmatch(self.value, actual) is not None
            except re.error:
                hit = False
        else:
            hit = actual == self.value
        return hit if self.is_equal else not hit

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "isRegex": self.is_regex,
                "isEqual": self.is_equal}

    def __str__(self) -> str:
        op = ("=~" if self.is_regex else "=") if self.is_equal else ("!~" if self.is_regex else "!=")
        return f'{self.name}{op}"{self.value}"'


@dataclass(frozen=True, slots=True)
class Silence:
    """A silence; an active one that matches an alert is that alert's acknowledgement."""

    id: str
    matchers: tuple[Matcher, ...]
    starts_at: float
    ends_at: float
    created_by: str
    comment: str
    state: str                      # active, pending, expired
    updated_at: float = 0.0

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(m.matches(labels) for m in self.matchers)

    @property
    def active(self) -> bool:
        return self.state == "active"


@dataclass(frozen=True, slots=True)
class AmAlert:
    """One alert as Alertmanager reports it."""

    fingerprint: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: float
    ends_at: float
    updated_at: float
    state: str                      # active, suppressed, unprocessed
    silenced_by: tuple[str, ...] = ()
    inhibited_by: tuple[str, ...] = ()
    generator_url: str = ""
    receivers: tuple[str, ...] = ()

    @property
    def alertname(self) -> str:
        return self.labels.get("alertname", "")

    @property
    def severity(self) -> str:
        return self.labels.get("severity", "")

    @property
    def promql(self) -> str:
        return promql_of(self.generator_url)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> AmAlert:
        status = raw.get("status") or {}
        return cls(
            fingerprint=str(raw.get("fingerprint", "")),
            labels=MappingProxyType({str(k): str(v) for k, v in (raw.get("labels") or {}).items()}),
            annotations=MappingProxyType({str(k): str(v)
                                          for k, v in (raw.get("annotations") or {}).items()}),
            starts_at=parse_ts(raw.get("startsAt")),
            ends_at=parse_ts(raw.get("endsAt")),
            updated_at=parse_ts(raw.get("updatedAt")),
            state=str(status.get("state", "unprocessed")),
            silenced_by=tuple(str(s) for s in status.get("silencedBy") or ()),
            inhibited_by=tuple(str(s) for s in status.get("inhibitedBy") or ()),
            generator_url=str(raw.get("generatorURL", "")),
            receivers=tuple(str(r.get("name", "")) for r in raw.get("receivers") or ()
                            if isinstance(r, Mapping)),
        )


def _silence_from_json(raw: Mapping[str, Any]) -> Silence:
    matchers = tuple(
        Matcher(str(m.get("name", "")), str(m.get("value", "")), bool(m.get("isRegex", False)),
                bool(m.get("isEqual", True)))
        for m in raw.get("matchers") or ())
    return Silence(
        id=str(raw.get("id", "")), matchers=matchers, starts_at=parse_ts(raw.get("startsAt")),
        ends_at=parse_ts(raw.get("endsAt")), created_by=str(raw.get("createdBy", "")),
        comment=str(raw.get("comment", "")),
        state=str((raw.get("status") or {}).get("state", "")),
        updated_at=parse_ts(raw.get("updatedAt")))


def ack_matchers(labels: Mapping[str, str]) -> tuple[Matcher, ...]:
    """Equality matchers on the alert's identifying labels (``alertname`` at least)."""
    out = tuple(Matcher(name, labels[name]) for name in IDENTIFYING_LABELS if labels.get(name))
    if not any(m.name == "alertname" for m in out):
        raise ValueError("an alert without an alertname label cannot be acknowledged")
    return out


def acks_by_fingerprint(alerts: Iterable[AmAlert], silences: Iterable[Silence]
                        ) -> dict[str, tuple[Silence, ...]]:
    """For each alert, the active silences that suppress it (Alertmanager's ``silencedBy``,
    or, for an alert Alertmanager has not processed yet, the active silences matching it)."""
    by_id = {s.id: s for s in silences if s.active}
    out: dict[str, tuple[Silence, ...]] = {}
    for a in alerts:
        found = tuple(by_id[i] for i in a.silenced_by if i in by_id)
        if not found and a.state != "suppressed":
            found = tuple(s for s in by_id.values() if s.matches(a.labels))
        if found:
            out[a.fingerprint] = found
    return out


@dataclass
class AlertmanagerClient:
    """Blocking API v2 client. Every failure is a :class:`SourceError` written for the operator."""

    settings: AlertmanagerSettings
    _client: httpx.Client | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return self.settings.url.rstrip("/")

    def _http(self) -> httpx.Client:
        import httpx

        if self._client is None:
            headers = {"Accept": "application/json"}
            if self.settings.token:
                headers["Authorization"] = f"Bearer {self.settings.token.reveal()}"
            self._client = httpx.Client(base_url=f"{self.url}/api/v2", headers=headers,
                                        timeout=self.settings.timeout)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        where = f"{self.url}/api/v2{path}"
        try:
            resp = self._http().request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise SourceError("alertmanager", f"{self.url} did not answer within "
                              f"{self.settings.timeout:g} s", "timeout") from None
        except httpx.ConnectError as exc:
            text = str(exc)
            if "Name or service not known" in text or "nodename nor servname" in text:
                raise SourceError("alertmanager", f"cannot resolve the host of {self.url}",
                                  "dns") from None
            raise SourceError("alertmanager", f"cannot connect to {self.url} (connection "
                              "refused) — is Alertmanager running?", "refused") from None
        except httpx.HTTPError as exc:
            raise SourceError("alertmanager", f"{where}: {exc.__class__.__name__}: {exc}",
                              "unavailable") from None
        if resp.status_code in (401, 403):
            raise SourceError("alertmanager", f"{self.url} refused the credentials (HTTP "
                              f"{resp.status_code}); check alertmanager.token", "auth")
        if resp.status_code >= 400:
            detail = resp.text.strip().replace("\n", " ")[:300]
            raise SourceError("alertmanager", f"{method} {where} answered HTTP "
                              f"{resp.status_code}: {detail}", "http")
        if not resp.content:
            return None
        try:
            return resp.json()
        except ValueError:
            raise SourceError("alertmanager", f"{where} did not answer with JSON",
                              "parse") from None

    # -- read ------------------------------------------------------------------------------
    def alerts(self) -> list[AmAlert]:
        """Active, silenced and inhibited alerts (``silenced``/``inhibited`` are included so an
        acknowledged alert stays in the feed, marked suppressed)."""
        raw = self._call("GET", "/alerts", params={"active": "true", "silenced": "true",
                                                   "inhibited": "true", "unprocessed": "true"})
        if not isinstance(raw, list):
            raise SourceError("alertmanager", "/api/v2/alerts did not return a list", "parse")
        return [AmAlert.from_json(a) for a in raw if isinstance(a, Mapping)]

    def silences(self) -> list[Silence]:
        raw = self._call("GET", "/silences")
        if not isinstance(raw, list):
            raise SourceError("alertmanager", "/api/v2/silences did not return a list", "parse")
        return [_silence_from_json(s) for s in raw if isinstance(s, Mapping)]

    def silence(self, silence_id: str) -> Silence:
        return _silence_from_json(self._call("GET", f"/silence/{silence_id}"))

    # -- write -----------------------------------------------------------------------------
    def create_silence(self, matchers: Sequence[Matcher], *, starts_at: float, ends_at: float,
                       created_by: str, comment: str) -> str:
        """POST /api/v2/silences; returns the new silence id."""
        body = {"matchers": [m.to_json() for m in matchers], "startsAt": format_ts(starts_at),
                "endsAt": format_ts(ends_at), "createdBy": created_by, "comment": comment}
        raw = self._call("POST", "/silences", json=body)
        sid = raw.get("silenceID") if isinstance(raw, Mapping) else None
        if not sid:
            raise SourceError("alertmanager", "creating the silence returned no silence id",
                              "parse")
        return str(sid)

    def expire_silence(self, silence_id: str) -> None:
        """DELETE /api/v2/silence/{id} (the silence is expired, not removed)."""
        self._call("DELETE", f"/silence/{silence_id}")
