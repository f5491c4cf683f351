"""Fixtures and helpers for tests that run against the simulated fleet (``deploytui.demo``).

Use them from any test module::

    from tests.fleet_fixtures import fleet_fixture, services_server_fixture  # noqa: F401

(the imports register the fixtures ``fleet`` and ``services_server``).

``fleet`` is a running :class:`deploytui.demo.fleet.Fleet` (12 services, ``steady``, with the
simulated Kubernetes API when it is available); ``services_server`` runs bare simulated services
on the test's own event loop; ``parse_metrics`` reads Prometheus text exposition.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from deploytui.demo.fleet import ALLOWED_PORTS, Fleet
from deploytui.demo.services import ServiceSpec, ServicesServer

__all__ = ["Sample", "fleet_fixture", "parse_metrics", "sample_value", "services_server_fixture"]

Sample = tuple[str, frozenset[tuple[str, str]]]
_LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text: str) -> dict[Sample, float]:
    """Prometheus text exposition -> {(name, labels): value}. Raises ValueError on a bad line."""
    out: dict[Sample, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _LINE.match(line)
        if not m:
            raise ValueError(f"not an exposition line: {line!r}")
        labels = frozenset(_LABEL.findall(m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def sample_value(samples: dict[Sample, float], name: str, **labels: str) -> float:
    """Sum of the samples called ``name`` whose labels include ``labels``."""
    want = set(labels.items())
    return sum(v for (n, lab), v in samples.items() if n == name and want <= lab)


@pytest.fixture(name="fleet")
def fleet_fixture(tmp_path: Path) -> Iterator[Fleet]:
    """A running default fleet (12 services, steady), its files in tmp_path/fleet."""
    with Fleet(services=12, scenario="steady", seed=0, workdir=tmp_path / "fleet") as running:
        yield running


def _default_specs() -> list[ServiceSpec]:
    return [
        ServiceSpec("checkout", "prod", "payments", dedicated_port=True),
        ServiceSpec("cart", "prod", "shop"),
        ServiceSpec("payments", "prod", "payments", format="actuator"),
        ServiceSpec("search", "prod", "discovery", format="ietf"),
        ServiceSpec("recommendations", "dev", "discovery", format="plain"),
        ServiceSpec("legacy", "dev", "platform", format="status"),
    ]


@pytest.fixture(name="services_server")
async def services_server_fixture() -> AsyncIterator[ServicesServer]:
    """Six simulated services (every health format, one with a dedicated port) on this loop."""
    server = ServicesServer(_default_specs(), seed=1, port_ranges=ALLOWED_PORTS)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
