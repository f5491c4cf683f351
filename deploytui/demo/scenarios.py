"""Scenarios: what happens to the simulated fleet over time.

A scenario is a coroutine run on the fleet's event loop against a :class:`FleetControl`; it
works in *scenario seconds* (``ctl.sleep_until(15)``), which run ``time_scale`` times faster
than wall-clock seconds, and draws every random choice from ``ctl.rng`` (seeded with
``--seed``), so a run is repeatable. A scenario may also add entries to the port registry the
fleet writes (``port-clash``).
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from deploytui.demo.services import SimService

__all__ = [
    "SCENARIOS",
    "FleetControl",
    "RegistryPlan",
    "Scenario",
    "get_scenario",
    "scenario_lines",
]


class FleetControl(Protocol):
    """What a scenario may do to the fleet (implemented by :class:`deploytui.demo.fleet.Fleet`)."""

    services: list[SimService]
    rng: random.Random

    def steer(self, name: str, env: str | None = None, **knobs: Any) -> None: ...

    def scenario_clock(self) -> float: ...

    async def sleep_until(self, t: float) -> None: ...

    def note(self, message: str) -> None: ...

    def drift(self, name: str, env: str, drift_ms: float) -> None: ...

    async def roll_out(self, service: SimService, version: str, *, bad: bool,
                       change_cause: str) -> None: ...


@dataclass
class RegistryPlan:
    """The port registry the fleet is about to write, for a scenario to amend.

    ``allocations`` maps ``(service, env)`` to ``(start, end, description)``; ``free_port(env)``
    returns a free port of the env's allowed range not yet used; ``listen(port)`` asks the
    fleet to really open an (undeclared) listener on 127.0.0.1.
    """

    allocations: dict[tuple[str, str], tuple[int, int, str]]
    free_port: Callable[[str], int]
    listen: Callable[[int], None]


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    run: Callable[[FleetControl], Awaitable[None]]
    plan_registry: Callable[[RegistryPlan, list[SimService]], None] | None = None


def _pick(services: list[SimService], env: str, preferred: str,
          need_deployment: bool = False) -> SimService | None:
    """The preferred service in env, else the first one there, else the first one at all."""
    pool = [s for s in services if not need_deployment or s.deployment]
    for candidate in (
        [s for s in pool if s.env == env and s.name == preferred],
        [s for s in pool if s.env == env],
        pool,
    ):
        if candidate:
            return candidate[0]
    return None


async def _steady(ctl: FleetControl) -> None:
    """Latency of a few services drifts a little every 5 scenario seconds.

    The drift is the scenario's own, on top of the knobs: it never undoes a test's steering.
    """
    if not ctl.services:
        return
    t = 0.0
    while True:
        t += 5.0
        await ctl.sleep_until(t)
        for svc in ctl.rng.sample(ctl.services, k=min(3, len(ctl.services))):
            ctl.drift(svc.name, svc.env, round(ctl.rng.uniform(-2.0, 7.0), 1))


async def _bad_rollout(ctl: FleetControl) -> None:
    target = _pick(ctl.services, "prod", "checkout", need_deployment=True) or _pick(
        ctl.services, "prod", "checkout")
    if target is None:
        return
    await ctl.sleep_until(15.0)
    version = _bump_minor(target.version)
    ctl.note(f"bad-rollout: {target.env}/{target.name} {version} starts rolling out "
             "(its image crash-loops)")
    await ctl.roll_out(target, version, bad=True,
                       change_cause=f"deploy {target.name} {version} (demo: bad build)")
    await _steady(ctl)


async def _flapping(ctl: FleetControl) -> None:
    target = _pick(ctl.services, "prod", "cart") or _pick(ctl.services, "prod", "checkout")
    if target is None:
        return
    ctl.note(f"flapping: {target.env}/{target.name} alternates healthy/unhealthy every 4 s")
    t = 0.0
    bad = False
    while True:
        t += 4.0
        await ctl.sleep_until(t)
        bad = not bad
        if bad:
            ctl.steer(target.name, target.env, status="unhealthy",
                      checks={"database": "unhealthy"}, error_rate=0.3)
        else:
            ctl.steer(target.name, target.env, reset=True)


def _plan_port_clash(plan: RegistryPlan, services: list[SimService]) -> None:
    # 1. Two services claim one port in prod: a legacy job declares checkout's port.
    victim = _pick(services, "prod", "checkout")
    key = (victim.name, victim.env) if victim else None
    if key and key in plan.allocations:
        port = plan.allocations[key][0]
    else:
        port = plan.free_port("prod")
        plan.allocations[("reports-v2", "prod")] = (port, port, "reports v2 HTTP")
    plan.allocations[("legacy-reports", "prod")] = (port, port, "legacy reports HTTP (copied)")
    # 2. Two ranges overlap in staging.
    start = plan.free_port("staging")
    plan.allocations[("batch-workers", "staging")] = (start, start + 9, "batch worker pool")
    plan.allocations[("etl", "staging")] = (start + 5, start + 14, "ETL workers")
    # 3. A listener nobody declared, really open on 127.0.0.1.
    plan.listen(plan.free_port("dev"))


async def _port_clash(ctl: FleetControl) -> None:
    ctl.note("port-clash: the registry has a shared port (prod), an overlapping range "
             "(staging) and an undeclared listener (dev)")
    await _steady(ctl)


def _bump_minor(version: str) -> str:
    parts = version.split(".")
    if len(parts) >= 2 and parts[1].isdigit():
        return ".".join([parts[0], str(int(parts[1]) + 1), "0"])
    return version + "-next"


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("steady", "every service healthy; latency wanders a little", _steady),
        Scenario("bad-rollout",
                 "after ~15 s prod checkout rolls out a crash-looping build: errors > 10 %, "
                 "p95 > 5 s, alerts fire until it is rolled back", _bad_rollout),
        Scenario("port-clash",
                 "the port registry has a port claimed twice, an overlapping range and an "
                 "undeclared listener", _port_clash, _plan_port_clash),
        Scenario("flapping", "prod cart alternates healthy / unhealthy every 4 s", _flapping),
    )
}


def get_scenario(name: str) -> Scenario:
    """The scenario called ``name``; ValueError listing the known ones otherwise."""
    try:
        return SCENARIOS[name]
    except KeyError:
        known = ", ".join(SCENARIOS)
        raise ValueError(f"unknown scenario {name!r}; choose one of: {known}") from None


def scenario_lines() -> list[str]:
    """One line per scenario: name and description (``deploytui demo --list-scenarios``)."""
    width = max(len(n) for n in SCENARIOS)
    return [f"{s.name:<{width}}  {s.description}" for s in SCENARIOS.values()]
