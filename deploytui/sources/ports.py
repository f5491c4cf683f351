"""Port allocations: the registry, compose files and Kubernetes; conflicts; live probes.

Declared allocations come from

* the registry file (``[ports] registry``): TOML ``[<service>.<env>] start/end/description/
  host/protocol``, or the runbook's JSON ``{"svc": {"dev": {"start": 3050, "end": 3050}}}``;
* inline ``[ports.allocations.<service>.<env>]`` tables in the config;
* docker-compose files (``[ports] compose_files``, see :mod:`.ports_compose`);
* Kubernetes Services (``nodePort``, ``port``) and pod ``hostPort``s when
  ``[kubernetes] enabled``.

A file deploytui cannot read as a registry (bad TOML/JSON, an entry that is not a table) raises
:class:`ConfigError` naming the file and the entry. An entry with bad values (start > end, not a
number, outside 1-65535) is kept as a *malformed* allocation, reported as a conflict.

:func:`collect` polls once and returns a frozen :class:`PortsSnapshot`; :class:`PortsSource`
loops it for the console; :func:`snapshot_section` feeds ``deploytui snapshot``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import json
import logging
import time
import tomllib
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deploytui.config import Settings
from deploytui.errors import ConfigError, DeploytuiError, SourceError
from deploytui.model import Section, utcnow
from deploytui.sources import wake_from_any_thread
from deploytui.sources.ports_compose import kube_allocations, load_compose_file
from deploytui.sources.ports_conflicts import (
    Conflict,
    PortAllocation,
    Suggester,
    find_conflicts,
)

__all__ = [
    "Listener",
    "LiveState",
    "PortRow",
    "PortsSnapshot",
    "PortsSource",
    "build_snapshot",
    "collect",
    "declared_allocations",
    "is_configured",
    "kube_allocations",
    "load_registry",
    "local_listeners",
    "make_source",
    "parse_entries",
    "probe_allocations",
    "read_registry_data",
    "registry_format",
    "snapshot_section",
    "to_section",
    "undeclared",
]

log = logging.getLogger(__name__)

PROBE_CONCURRENCY = 64      # TCP connects in flight at once
KUBE_TTL = 30.0             # seconds between Kubernetes reads in the console
MAX_PROBES_PER_RANGE = 64   # a wide range is sampled from its start, not probed whole
_LOCAL_NAMES = frozenset({"", "localhost", "127.0.0.1", "::1", "0.0.0.0", "::", "*"})


# --- registry and inline allocations --------------------------------------------------------------

def _entry(service: str, env: str, raw: Any, *, source: str, origin: str, key: str,
           file: str) -> PortAllocation:
    if not isinstance(raw, Mapping):
        raise ConfigError(file, f"{key}: expected a table with start and end "
                                f"(e.g. {{start = 3050, end = 3050}}), got {type(raw).__name__} {raw!r}")
    base: dict[str, Any] = {
        "service": service, "env": env, "source": source, "origin": origin, "key": key,
        "description": str(raw.get("description") or ""), "host": str(raw.get("host") or ""),
        "protocol": str(raw.get("protocol") or "tcp").lower(),
    }

    def number(name: str) -> int:
        value = raw[name]
        if isinstance(value, str) and value.strip().isdigit():
            return int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name} is not a number: {value!r}")
        return value

    try:
        first = "start" if "start" in raw else "port" if "port" in raw else None
        if first is None:
            raise ValueError("start is missing")
        start = number(first)
        end = number("end") if "end" in raw else start
        if start > end:
            raise ValueError(f"start {start} is after end {end}")
        for name, value in (("start", start), ("end", end)):
            if not 1 <= value <= 65535:
                raise ValueError(f"{name} {value} is outside 1-65535")
        if base["protocol"] not in ("tcp", "udp", "sctp"):
            raise ValueError(f"protocol {base['protocol']!r} is not tcp, udp or sctp")
    except ValueError as exc:
        return PortAllocation(start=0, end=0, error=str(exc), **base)
    return PortAllocation(start=start, end=end, **base)


def parse_entries(data: Any, *, source: str, origin: str, file: str,
                  prefix: str = "") -> list[PortAllocation]:
    """``{service: {env: {start, end, ...}}}`` (TOML or JSON) -> allocations.

    ``origin`` is the name shown in messages, ``file`` the one a :class:`ConfigError` names,
    ``prefix`` the key path above the services (``ports.allocations`` for inline tables).
    """
    where = prefix or "(top level)"
    if not isinstance(data, Mapping):
        raise ConfigError(file, f"{where}: expected a table of services, got {type(data).__name__}")
    out: list[PortAllocation] = []
    for service, envs in data.items():
        skey = f"{prefix}.{service}" if prefix else str(service)
        if not isinstance(envs, Mapping):
            raise ConfigError(file, f"{skey}: expected a table of envs (e.g. [{service}.prod]), "
                                    f"got {type(envs).__name__} {envs!r}")
        for env, raw in envs.items():
            out.append(_entry(str(service), str(env), raw, source=source, origin=origin,
                              key=f"{skey}.{env}", file=file))
    return out


def registry_format(path: Path, text: str) -> str:
    """``json`` or ``toml``: by extension, else by content (TOML never starts with ``{``)."""
    if path.suffix.lower() == ".json":
        return "json"
    if path.suffix.lower() == ".toml":
        return "toml"
    return "json" if text.lstrip().startswith("{") else "toml"


def read_registry_data(path: Path, shown: str) -> tuple[str, Any, str]:
    """(format, parsed data, raw text) of a registry file; ConfigError when it cannot be read."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(shown, "registry file not found ([ports] registry)") from None
    except OSError as exc:
        raise ConfigError(shown, f"cannot read the registry: {exc.strerror or exc}") from None
    fmt = registry_format(path, text)
    try:
        data = json.loads(text) if fmt == "json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(shown, f"not valid {fmt.upper()}: {exc}") from None
    return fmt, data, text


def load_registry(settings: Settings) -> list[PortAllocation]:
    """The ``[ports] registry`` file's allocations ([] when none is configured)."""
    shown = settings.ports.registry
    if not shown:
        return []
    _, data, _ = read_registry_data(settings.resolve_path(shown), shown)
    return parse_entries(data, source="registry", origin=shown, file=shown)


def _config_name(settings: Settings) -> str:
    return Path(settings.source_path).name if settings.source_path else "config"


def _known_envs(settings: Settings) -> set[str]:
    return set(settings.ports.allowed) | {s.env for s in settings.services}


def declared_allocations(settings: Settings) -> list[PortAllocation]:
    """Registry, inline and compose allocations (no Kubernetes, no I/O beyond reading files)."""
    out = load_registry(settings)
    name = _config_name(settings)
    out += parse_entries(settings.ports.allocations, source="config", origin=name,
                         file=settings.source_path or name, prefix="ports.allocations")
    for shown in settings.ports.compose_files:
        out += load_compose_file(settings.resolve_path(shown), shown,
                                 known_envs=_known_envs(settings))
    return out


def is_configured(settings: Settings) -> bool:
    p = settings.ports
    return bool(p.registry or p.compose_files or p.allocations or settings.kubernetes.enabled)


# --- live probes ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Listener:
    """A local socket listening on ``port`` (``pid``/``process`` when this user may see them)."""

    port: int
    host: str
    protocol: str = "tcp"
    pid: int | None = None
    process: str = ""

    @property
    def owner(self) -> str:
        if self.pid is None:
            return "owner unknown"
        return f"pid {self.pid} {self.process}".rstrip()


@dataclass(frozen=True)
class LiveState:
    """``state``: listening, partial (some of a range), closed, timeout, error, not probed."""

    state: str
    detail: str = ""
    open_ports: tuple[int, ...] = ()
    owners: tuple[Listener, ...] = ()

    @property
    def text(self) -> str:
        return f"{self.state} ({self.detail})" if self.detail else self.state


NOT_PROBED = LiveState("not probed")


def local_listeners() -> tuple[Listener, ...]:
    import psutil  # here, not at import: the ports pane is on the path to the first frame

    """Every local TCP listener and bound UDP socket, with its owning process when visible."""
    try:
        conns = psutil.net_connections(kind="inet")
    except (psutil.AccessDenied, OSError) as exc:
        log.info("cannot list local sockets: %s", exc)
        return ()
    names: dict[int, str] = {}
    out: set[Listener] = set()
    for c in conns:
        is_tcp = c.type == 1  # SOCK_STREAM
        if (is_tcp and c.status != psutil.CONN_LISTEN) or not c.laddr:
            continue
        if not is_tcp and c.raddr:
            continue  # a connected UDP socket is a client, not a server
        if c.pid is not None and c.pid not in names:
            try:
                names[c.pid] = psutil.Process(c.pid).name()
            except (psutil.Error, OSError):  # gone, or another user's
                names[c.pid] = ""
        name = names.get(c.pid, "") if c.pid is not None else ""
        out.add(Listener(c.laddr.port, c.laddr.ip, "tcp" if is_tcp else "udp", c.pid, name))
    return tuple(sorted(out, key=lambda x: (x.port, x.protocol, x.host)))


def _local_addresses() -> set[str]:
    import psutil

    addrs = set(_LOCAL_NAMES)
    with contextlib.suppress(OSError):
        for entries in psutil.net_if_addrs().values():
            addrs.update(e.address.split("%")[0] for e in entries)
    return addrs


def _matches_host(listener_host: str, host: str) -> bool:
    if listener_host in ("0.0.0.0", "::", "") or host in ("", "localhost", "0.0.0.0", "::"):
        return True
    with contextlib.suppress(ValueError):
        return ipaddress.ip_address(listener_host) == ipaddress.ip_address(host)
    return listener_host == host


async def _connect(host: str, port: int, timeout: float, sem: asyncio.Semaphore) -> str:
    async with sem:
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        except TimeoutError:
            return "timeout"
        except ConnectionRefusedError:
            return "closed"
        except OSError as exc:
            return f"error: {exc.strerror or exc.__class__.__name__}"
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return "open"


async def _probe_one(a: PortAllocation, host: str, local: bool, table: tuple[Listener, ...],
                     timeout: float, sem: asyncio.Semaphore) -> LiveState:
    ports = list(range(a.start, a.end + 1))[:MAX_PROBES_PER_RANGE]
    sampled = "" if a.width <= MAX_PROBES_PER_RANGE else f", first {MAX_PROBES_PER_RANGE} probed"
    if a.protocol == "tcp":
        results = await asyncio.gather(*(_connect(host, p, timeout, sem) for p in ports))
    elif local:
        bound = {x.port for x in table if x.protocol == a.protocol and _matches_host(x.host, host)}
        results = ["open" if p in bound else "closed" for p in ports]
    else:
        return LiveState("not probed", f"{a.protocol} cannot be probed remotely")
    open_ports = tuple(p for p, r in zip(ports, results, strict=True) if r == "open")
    owners = tuple(x for x in table if x.port in open_ports and x.protocol == a.protocol
                   and _matches_host(x.host, host)) if local else ()
    owner_text = ", ".join(sorted({x.owner for x in owners})) if owners else ""
    if len(open_ports) == len(ports):
        return LiveState("listening", (owner_text or "") + sampled, open_ports, owners)
    if open_ports:
        return LiveState("partial", f"{len(open_ports)}/{len(ports)} open{sampled}",
                         open_ports, owners)
    worst = next((r for r in results if r.startswith("error")), None) or (
        "timeout" if "timeout" in results else "closed")
    if worst.startswith("error"):
        return LiveState("error", worst.removeprefix("error: "))
    return LiveState(worst)


async def probe_allocations(allocations: Iterable[PortAllocation], *, probe_host: str,
                            timeout: float, concurrency: int = PROBE_CONCURRENCY,
                            table: tuple[Listener, ...] = ()) -> dict[PortAllocation, LiveState]:
    """TCP-connect every valid host-level allocation (Kubernetes ones are not probed).

    ``table`` is :func:`local_listeners` (owners of local ports, UDP state)."""
    sem = asyncio.Semaphore(max(1, concurrency))
    local_addrs = _local_addresses()
    todo = [a for a in allocations if a.valid and not a.scope and a.source != "kubernetes"]
    states = await asyncio.gather(*(
        _probe_one(a, h, h in local_addrs, table, timeout, sem)
        for a in todo for h in [a.host if not a.wildcard_host else probe_host]))
    return dict(zip(todo, states, strict=True))


def undeclared(table: Iterable[Listener], allocations: Iterable[PortAllocation],
               allowed: Mapping[str, str]) -> tuple[Listener, ...]:
    """Local TCP listeners no allocation covers; only inside the allowed ranges, if any."""
    claimed = [(a.start, a.end) for a in allocations if a.valid and not a.scope and a.protocol == "tcp"]
    ranges = []
    for text in allowed.values():
        lo, _, hi = text.partition("-")
        ranges.append((int(lo), int(hi or lo)))
    out: dict[int, Listener] = {}
    for x in table:
        if x.protocol != "tcp" or x.port in out:
            continue
        if ranges and not any(lo <= x.port <= hi for lo, hi in ranges):
            continue
        if not any(lo <= x.port <= hi for lo, hi in claimed):
            out[x.port] = x
    return tuple(out.values())


# --- snapshot ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PortRow:
    """One allocation as the pane shows it; ``suggestion`` is where to move it, if conflicted."""

    allocation: PortAllocation
    live: LiveState = NOT_PROBED
    conflicts: tuple[Conflict, ...] = ()
    suggestion: tuple[int, int] | None = None

    @property
    def conflicted(self) -> bool:
        return bool(self.conflicts)

    def to_json(self) -> dict[str, Any]:
        a = self.allocation
        return {
            "service": a.service, "env": a.env, "range": a.range_text, "start": a.start or None,
            "end": a.end or None, "protocol": a.protocol, "host": a.host, "source": a.source,
            "kind": a.kind, "where": a.where, "description": a.description,
            "live": self.live.state, "live_detail": self.live.detail,
            "pids": sorted({x.pid for x in self.live.owners if x.pid is not None}),
            "conflict": ",".join(sorted({c.kind for c in self.conflicts})) or "",
            "suggestion": None if self.suggestion is None else
            (f"{self.suggestion[0]}" if self.suggestion[0] == self.suggestion[1]
             else f"{self.suggestion[0]}-{self.suggestion[1]}"),
            "error": a.error,
        }


@dataclass(frozen=True)
class PortsSnapshot:
    """One poll: rows (conflicts first), every conflict, undeclared local listeners, errors."""

    rows: tuple[PortRow, ...] = ()
    conflicts: tuple[Conflict, ...] = ()
    listeners: tuple[Listener, ...] = ()
    errors: tuple[str, ...] = ()
    stale: bool = False
    probed: bool = False
    taken_at: float = field(default_factory=utcnow)

    @property
    def ok(self) -> bool:
        return not self.conflicts

    def filtered(self, env: str | None) -> PortsSnapshot:
        """Only ``env``'s rows and conflicts (a cluster-wide NodePort clash shows in the env of
        either party; local listeners have no env and are dropped)."""
        if not env:
            return self
        return dataclasses.replace(
            self, rows=tuple(r for r in self.rows if r.allocation.env == env),
            conflicts=tuple(c for c in self.conflicts
                            if c.env == env or any(p.env == env for p in c.parties)),
            listeners=())

    def summary(self) -> dict[str, Any]:
        return {"allocations": len(self.rows), "conflicts": len(self.conflicts),
                "listening": sum(1 for r in self.rows if r.live.state == "listening"),
                "undeclared": len(self.listeners)}


def build_snapshot(allocations: list[PortAllocation], settings: Settings, *,
                   live: Mapping[PortAllocation, LiveState] | None = None,
                   listeners: tuple[Listener, ...] = (), errors: tuple[str, ...] = (),
                   probed: bool = False) -> PortsSnapshot:
    p = settings.ports
    busy = {x.port for x in listeners}
    conflicts = find_conflicts(allocations, p.allowed, allow_privileged=p.allow_privileged,
                               busy=busy)
    suggester = Suggester(allocations, p.allowed, allow_privileged=p.allow_privileged, busy=busy)
    by_alloc: dict[PortAllocation, list[Conflict]] = {}
    for c in conflicts:
        for party in c.parties:
            by_alloc.setdefault(party, []).append(c)
    rows = []
    for a in allocations:
        mine = tuple(by_alloc.get(a, ()))
        suggestion = None
        if mine:
            own = next((c for c in mine if c.move == a), None)
            suggestion = own.suggestion if own else suggester.suggest(a)
        rows.append(PortRow(a, (live or {}).get(a, NOT_PROBED), mine, suggestion))
    rows.sort(key=lambda r: (not r.conflicted, r.allocation.env, r.allocation.service,
                             r.allocation.start, r.allocation.where))
    return PortsSnapshot(tuple(rows), conflicts, listeners, errors, probed=probed)


async def collect(settings: Settings, *, probe: bool | None = None, kube: bool | None = None,
                  kube_reader: Callable[[], Awaitable[list[PortAllocation]]] | None = None,
                  ) -> PortsSnapshot:
    """Read every declared allocation, probe them and find conflicts (one poll).

    Raises :class:`ConfigError` for a registry or compose file that cannot be read; a Kubernetes
    failure is reported in ``errors`` (the other sources still show). ``kube_reader`` replaces
    the Kubernetes read (the console's source caches it between polls).
    """
    # file reading, YAML parsing and conflict search run in threads: the console's loop stays free
    allocations = await asyncio.to_thread(declared_allocations, settings)
    errors: list[str] = []
    if settings.kubernetes.enabled if kube is None else kube:
        try:
            if kube_reader is not None:
                allocations += await kube_reader()
            else:
                allocations += await asyncio.to_thread(kube_allocations, settings)
        except SourceError as exc:
            errors.append(str(exc))
    probe = settings.ports.probe if probe is None else probe
    live: dict[PortAllocation, LiveState] = {}
    listeners: tuple[Listener, ...] = ()
    if probe:
        table = await asyncio.to_thread(local_listeners)
        live = await probe_allocations(allocations, probe_host=settings.ports.probe_host,
                                       timeout=settings.ports.probe_timeout, table=table)
        if settings.ports.probe_host in _LOCAL_NAMES:
            listeners = undeclared(table, allocations, settings.ports.allowed)
    return await asyncio.to_thread(build_snapshot, allocations, settings, live=live,
                                   listeners=listeners, errors=tuple(errors), probed=probe)


MIN_INTERVAL = 10.0


class PortsSource:
    """Polls :func:`collect` every ``refresh_interval`` but not more often than every
    ``MIN_INTERVAL`` seconds (reading the machine's socket table is the console's single
    biggest CPU cost at a 1 s refresh, and allocations change rarely); publishes a stale copy
    on failure.

    Kubernetes Services and pods are re-read at most every ``kube_ttl`` seconds (listing every
    pod of a cluster each refresh would load the API server for ports that rarely change);
    :meth:`poke` re-reads everything at once.
    """

    name = "ports"

    def __init__(self, settings: Settings, interval: float | None = None,
                 kube_ttl: float = KUBE_TTL) -> None:
        self.settings = settings
        self.interval = interval if interval is not None else max(
            settings.console.refresh_interval, MIN_INTERVAL)
        self.kube_ttl = kube_ttl
        self._kube_cache: tuple[float, list[PortAllocation]] | None = None
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.last: PortsSnapshot | None = None

    def poke(self) -> None:
        """Poll again now (after a reassign wrote the registry). Safe from any thread."""
        self._kube_cache = None
        wake_from_any_thread(self._loop, self._wake)

    async def _read_kube(self) -> list[PortAllocation]:
        cached, now = self._kube_cache, time.monotonic()
        if cached is not None and now - cached[0] < self.kube_ttl:
            return list(cached[1])
        found = await asyncio.to_thread(kube_allocations, self.settings)
        self._kube_cache = (now, found)
        return list(found)

    async def poll(self) -> PortsSnapshot:
        try:
            snap = await collect(self.settings, kube_reader=self._read_kube)
        except (DeploytuiError, OSError) as exc:
            prev = self.last or PortsSnapshot()
            snap = dataclasses.replace(prev, errors=(str(exc),), stale=True, taken_at=utcnow())
        self.last = snap
        return snap

    async def run(self, publish: Any) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        while True:
            publish(await self.poll())
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)


def make_source(runtime: Any) -> PortsSource | None:
    settings: Settings = runtime.settings
    return PortsSource(settings) if is_configured(settings) else None


COLUMNS = ("service", "env", "range", "source", "live", "conflict")


def to_section(snap: PortsSnapshot, configured: bool = True) -> Section:
    rows = [r.to_json() for r in snap.rows]
    rows += [{"service": "(undeclared)", "env": "", "range": str(x.port), "source": "live",
              "live": "listening", "live_detail": x.owner, "conflict": "",
              "pids": [x.pid] if x.pid is not None else [], "where": f"{x.host}:{x.port}"}
             for x in snap.listeners]
    return Section(name="ports", configured=configured, ok=snap.ok and not snap.stale,
                   error="; ".join(snap.errors) or None, columns=COLUMNS, rows=tuple(rows),
                   summary=snap.summary(), taken_at=snap.taken_at)


async def snapshot_section(settings: Settings) -> Section:
    """The ports pane for ``deploytui snapshot``: ok=False when there is any conflict."""
    if not is_configured(settings):
        return Section(name="ports", configured=False)
    return to_section(await collect(settings))
