"""The ports source: registry (TOML and the runbook JSON), inline tables, live probes against
sockets this test opens on 127.0.0.1, undeclared listeners, the snapshot section, the loop."""

from __future__ import annotations

import asyncio
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploytui.config import Settings, load_config
from deploytui.errors import ConfigError
from deploytui.sources import ports
from deploytui.sources.ports import LiveState, PortsSnapshot
from tests.conftest import free_port


def write_config(tmp_path: Path, body: str) -> Settings:
    path = tmp_path / "deploytui.toml"
    path.write_text(body)
    return load_config(path)


REGISTRY_TOML = """\
# the team's port registry
[checkout.prod]
start = 5050
end = 5050
description = "checkout HTTP"
host = "10.0.0.5"

[checkout.dev]
start = 3050
end = 3052

[cart.prod]
start = 5050
protocol = "udp"
"""

RUNBOOK_JSON = {
    "checkout": {"dev": {"start": 3050, "end": 3050, "description": "checkout HTTP"},
                 "prod": {"start": 5050, "end": 5050, "description": "checkout HTTP"}},
    "cart": {"prod": {"start": "5051", "end": "5051", "description": "numbers as strings"}},
}


def test_registry_toml(tmp_path: Path) -> None:
    (tmp_path / "ports.toml").write_text(REGISTRY_TOML)
    s = write_config(tmp_path, '[ports]\nregistry = "ports.toml"\n')
    got = {(a.service, a.env): a for a in ports.load_registry(s)}
    assert set(got) == {("checkout", "prod"), ("checkout", "dev"), ("cart", "prod")}
    prod = got["checkout", "prod"]
    assert (prod.start, prod.end, prod.host, prod.description) == (5050, 5050, "10.0.0.5",
                                                                   "checkout HTTP")
    assert prod.where == "ports.toml: checkout.prod" and prod.source == "registry"
    assert (got["checkout", "dev"].start, got["checkout", "dev"].end) == (3050, 3052)
    assert got["cart", "prod"].protocol == "udp" and got["cart", "prod"].end == 5050


def test_registry_runbook_json(tmp_path: Path) -> None:
    (tmp_path / "ports.json").write_text(json.dumps(RUNBOOK_JSON, indent=2))
    s = write_config(tmp_path, '[ports]\nregistry = "ports.json"\n')
    got = {(a.service, a.env): (a.start, a.end, a.description) for a in ports.load_registry(s)}
    assert got == {("checkout", "dev"): (3050, 3050, "checkout HTTP"),
                   ("checkout", "prod"): (5050, 5050, "checkout HTTP"),
                   ("cart", "prod"): (5051, 5051, "numbers as strings")}


def test_runbook_json_without_extension_is_sniffed(tmp_path: Path) -> None:
    (tmp_path / "registry").write_text(json.dumps(RUNBOOK_JSON))
    s = write_config(tmp_path, '[ports]\nregistry = "registry"\n')
    assert len(ports.load_registry(s)) == 3


def test_inline_allocations(tmp_path: Path) -> None:
    s = write_config(tmp_path, """\
[ports.allocations.checkout.prod]
start = 5050
end = 5051
description = "checkout HTTP"
""")
    (a,) = ports.declared_allocations(s)
    assert (a.service, a.env, a.start, a.end, a.source) == ("checkout", "prod", 5050, 5051, "config")
    assert a.where == "deploytui.toml: ports.allocations.checkout.prod"


@pytest.mark.parametrize(("entry", "error"), [
    ("start = 3060\nend = 3050", "start 3060 is after end 3050"),
    ('start = "abc"', "start is not a number: 'abc'"),
    ("start = 3050\nend = 70000", "end 70000 is outside 1-65535"),
    ("start = 0", "start 0 is outside 1-65535"),
    ('description = "no start"', "start is missing"),
    ('start = 3050\nprotocol = "icmp"', "protocol 'icmp' is not tcp, udp or sctp"),
])
def test_malformed_entries_are_conflicts_not_crashes(tmp_path: Path, entry: str, error: str) -> None:
    (tmp_path / "ports.toml").write_text(f"[web.dev]\n{entry}\n\n[api.dev]\nstart = 3001\n")
    s = write_config(tmp_path, '[ports]\nregistry = "ports.toml"\nallowed = { dev = "3000-3999" }\n')
    snap = ports.build_snapshot(ports.declared_allocations(s), s)
    (c,) = snap.conflicts
    assert c.kind == "malformed" and error in c.message and "ports.toml: web.dev" in c.explain()
    assert snap.rows[0].allocation.error == error and snap.rows[0].allocation.range_text == "?"


@pytest.mark.parametrize(("name", "text", "says"), [
    ("ports.toml", "[checkout\n", "ports.toml: not valid TOML"),
    ("ports.json", '{"checkout": {"dev": {"start": 1,}}}', "ports.json: not valid JSON"),
    ("ports.toml", "checkout = 5050\n", "ports.toml: checkout: expected a table of envs"),
    ("ports.toml", "[checkout]\nprod = 5050\n", "ports.toml: checkout.prod: expected a table with start and end"),
    ("ports.json", "[1, 2]", "ports.json: (top level): expected a table of services"),
])
def test_bad_registry_files_name_file_and_entry(tmp_path: Path, name: str, text: str, says: str) -> None:
    (tmp_path / name).write_text(text)
    s = write_config(tmp_path, f'[ports]\nregistry = "{name}"\n')
    with pytest.raises(ConfigError) as info:
        asyncio.run(ports.collect(s, probe=False))
    assert says in str(info.value)


def test_missing_registry(tmp_path: Path) -> None:
    s = write_config(tmp_path, '[ports]\nregistry = "nowhere.toml"\n')
    with pytest.raises(ConfigError, match=r"nowhere\.toml: registry file not found"):
        ports.load_registry(s)


# --- live -----------------------------------------------------------------------------------------

@pytest.fixture
def listener() -> Iterator[socket.socket]:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(128)
    yield s
    s.close()


def _two_free_consecutive() -> tuple[socket.socket, int]:
    """A listener on port p, with p+1 free right now."""
    for _ in range(50):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.bind(("127.0.0.1", port + 1))
        except OSError:
            s.close()
            continue
        s.listen(8)
        return s, port
    pytest.fail("no two consecutive free ports on 127.0.0.1")


def test_live_listening_closed_partial_and_owner(tmp_path: Path, listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    closed = free_port()
    ranged, start = _two_free_consecutive()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    try:
        udp_port = udp.getsockname()[1]
        s = write_config(tmp_path, f"""\
[ports]
probe_host = "127.0.0.1"
probe_timeout = 1.0
[ports.allocations.up.dev]
start = {port}
[ports.allocations.down.dev]
start = {closed}
[ports.allocations.half.dev]
start = {start}
end = {start + 1}
[ports.allocations.dns.dev]
start = {udp_port}
protocol = "udp"
""")
        snap = asyncio.run(ports.collect(s))
    finally:
        ranged.close()
        udp.close()
    live = {r.allocation.service: r.live for r in snap.rows}
    assert live["up"].state == "listening"
    assert {x.pid for x in live["up"].owners} == {os.getpid()}
    assert f"pid {os.getpid()}" in live["up"].detail
    assert live["down"].state == "closed" and live["down"].open_ports == ()
    assert live["half"].state == "partial" and live["half"].open_ports == (start,)
    assert live["half"].detail == "1/2 open"
    assert live["dns"].state == "listening"  # a bound UDP socket, read from the socket table
    assert {x.pid for x in live["dns"].owners} == {os.getpid()}
    assert snap.probed and snap.summary()["listening"] == 2


def test_undeclared_local_listeners(tmp_path: Path, listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    declared = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    declared.bind(("127.0.0.1", 0))
    declared.listen(1)
    try:
        dport = declared.getsockname()[1]
        s = write_config(tmp_path, f"""\
[ports]
allowed = {{ dev = "1024-65535" }}
[ports.allocations.known.dev]
start = {dport}
""")
        snap = asyncio.run(ports.collect(s))
    finally:
        declared.close()
    found = {x.port: x for x in snap.listeners}
    assert port in found and dport not in found
    assert found[port].pid == os.getpid() and found[port].host == "127.0.0.1"
    # the suggestion for a move never lands on a port seen listening
    assert snap.summary()["undeclared"] == len(snap.listeners) >= 1


def test_undeclared_only_inside_allowed_ranges(tmp_path: Path, listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    s = write_config(tmp_path, '[ports]\nallowed = { dev = "3000-3001" }\n'
                               '[ports.allocations.x.dev]\nstart = 3000\n')
    snap = asyncio.run(ports.collect(s))
    assert port not in {x.port for x in snap.listeners}


async def test_probes_under_a_concurrency_limit() -> None:
    accepted: list[int] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    allocs = [ports.PortAllocation(f"s{i}", "dev", port, port, "config", "c", f"s{i}.dev")
              for i in range(20)]
    states = await ports.probe_allocations(allocs, probe_host="127.0.0.1", timeout=1.0,
                                           concurrency=2)
    for _ in range(500):  # the server accepts on this loop after the connects completed
        if len(accepted) == 20:
            break
        await asyncio.sleep(0.01)
    server.close()
    await server.wait_closed()
    assert {s.state for s in states.values()} == {"listening"} and len(states) == 20
    assert len(accepted) == 20


async def test_kubernetes_allocations_are_not_probed(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    k = ports.PortAllocation("svc", "prod", port, port, "kubernetes", "Service a/b",
                             "spec.ports[0].nodePort", kind="nodePort")
    assert await ports.probe_allocations([k], probe_host="127.0.0.1", timeout=1.0) == {}


# --- snapshot, section, loop ----------------------------------------------------------------------

CONFLICTING = """\
[ports]
registry = "ports.toml"
probe = false
allowed = { dev = "3000-3999", prod = "5000-5999" }
[ports.allocations.cart.prod]
start = 5050
"""


def test_snapshot_rows_conflicts_first_and_section(tmp_path: Path) -> None:
    (tmp_path / "ports.toml").write_text(REGISTRY_TOML.replace('host = "10.0.0.5"\n', ""))
    s = write_config(tmp_path, CONFLICTING)
    snap = asyncio.run(ports.collect(s))
    assert isinstance(snap, PortsSnapshot) and not snap.ok
    first = snap.rows[0]
    assert first.conflicted and first.allocation.label in {"checkout@prod", "cart@prod"}
    assert not snap.rows[-1].conflicted
    checkout = next(r for r in snap.rows if r.allocation.label == "checkout@prod")
    assert checkout.suggestion == (5051, 5051)
    section = asyncio.run(ports.snapshot_section(s))
    assert section.name == "ports" and section.configured and section.ok is False
    assert section.columns == ("service", "env", "range", "source", "live", "conflict")
    row = next(r for r in section.rows if r["service"] == "checkout" and r["env"] == "prod")
    assert row["range"] == "5050" and row["source"] == "registry"
    assert row["conflict"] == "duplicate_port" and row["live"] == "not probed"
    assert row["where"] == "ports.toml: checkout.prod" and row["suggestion"] == "5051"
    assert section.summary["conflicts"] == 1
    json.dumps(section.to_json())  # serialisable as is


def test_snapshot_filtered_by_env(tmp_path: Path) -> None:
    (tmp_path / "ports.toml").write_text(REGISTRY_TOML)
    s = write_config(tmp_path, CONFLICTING)
    snap = asyncio.run(ports.collect(s)).filtered("dev")
    assert {r.allocation.env for r in snap.rows} == {"dev"} and snap.conflicts == ()


async def test_not_configured(tmp_path: Path) -> None:
    s = write_config(tmp_path, "")
    section = await ports.snapshot_section(s)
    assert section.configured is False
    assert ports.make_source(type("R", (), {"settings": s})()) is None


async def test_source_publishes_and_goes_stale_on_a_broken_registry(tmp_path: Path) -> None:
    registry = tmp_path / "ports.toml"
    registry.write_text(REGISTRY_TOML)
    s = write_config(tmp_path, CONFLICTING)
    source = ports.make_source(type("R", (), {"settings": s})())
    assert source is not None and source.name == "ports"
    source.interval = 30.0
    got: list[PortsSnapshot] = []
    task = asyncio.create_task(source.run(got.append))
    try:
        while not got:
            await asyncio.sleep(0.01)
        assert not got[0].stale and len(got[0].rows) == 4
        registry.write_text("[broken\n")
        source.poke()  # poll now instead of in 30 s
        while len(got) < 2:
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
    assert got[1].stale and "not valid TOML" in got[1].errors[0]
    assert got[1].rows == got[0].rows  # the last good rows stay, marked stale
    assert got[1].taken_at >= got[0].taken_at
    assert LiveState("closed").text == "closed"
