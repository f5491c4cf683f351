"""Conflict detection between port allocations, and the free-port suggestion."""

from __future__ import annotations

import pytest

from deploytui.sources.ports_conflicts import (
    PortAllocation,
    find_conflicts,
    parse_range,
    suggest_free,
)

ALLOWED = {"dev": "3000-3999", "staging": "4000-4999", "prod": "5000-5999"}


def alloc(service: str, env: str, start: int, end: int | None = None, **kw: object) -> PortAllocation:
    base: dict[str, object] = {"source": "registry", "origin": "ports.toml",
                               "key": f"{service}.{env}"}
    base.update(kw)
    return PortAllocation(service=service, env=env, start=start,
                          end=start if end is None else end, **base)  # type: ignore[arg-type]


def kinds(conflicts: tuple) -> list[str]:
    return [c.kind for c in conflicts]


def test_clean_fleet_has_no_conflicts() -> None:
    allocs = [alloc("checkout", "prod", 5050), alloc("cart", "prod", 5051),
              alloc("checkout", "dev", 3050), alloc("cart", "staging", 4050)]
    assert find_conflicts(allocs, ALLOWED) == ()


def test_same_port_two_services_names_both_parties_and_where() -> None:
    a, b = alloc("checkout", "prod", 5050), alloc("cart", "prod", 5050, source="config",
                                                     origin="config.toml",
                                                     key="ports.allocations.cart.prod")
    (c,) = find_conflicts([a, b], ALLOWED)
    assert c.kind == "duplicate_port" and c.env == "prod"
    assert set(c.parties) == {a, b}
    text = c.explain()
    assert "ports.toml: checkout.prod" in text
    assert "config.toml: ports.allocations.cart.prod" in text
    # the registry entry is the one deploytui can rewrite, so that is the one to move
    assert c.move == a and c.suggestion == (5051, 5051)
    assert "move checkout@prod to 5051" in text


def test_overlapping_ranges_within_one_env_only() -> None:
    a, b = alloc("search", "prod", 5040, 5055), alloc("index", "prod", 5050, 5060)
    other_env = alloc("index", "staging", 5050, 5060)
    (c,) = find_conflicts([a, b, other_env], {})
    assert c.kind == "overlap" and "5050-5055" in c.message
    assert {p.label for p in c.parties} == {"search@prod", "index@prod"}


def test_hosts_narrow_overlaps_when_both_name_one() -> None:
    a = alloc("a", "prod", 5050, host="10.0.0.1")
    b = alloc("b", "prod", 5050, host="10.0.0.2")
    wildcard = alloc("c", "prod", 5050, host="0.0.0.0")
    assert find_conflicts([a, b], ALLOWED) == ()
    got = find_conflicts([a, b, wildcard], ALLOWED)
    assert sorted(kinds(got)) == ["duplicate_port", "duplicate_port"]
    assert all(wildcard in c.parties for c in got)


def test_protocols_do_not_clash() -> None:
    assert find_conflicts([alloc("dns", "prod", 5053, protocol="udp"),
                           alloc("web", "prod", 5053)], ALLOWED) == ()


def test_one_service_declared_twice_is_one_claim() -> None:
    reg = alloc("checkout", "dev", 3050)
    compose = alloc("checkout", "dev", 3050, source="compose", origin="docker-compose.yml",
                    key="services.checkout.ports[0]")
    assert find_conflicts([reg, compose], ALLOWED) == ()


def test_compose_host_port_clash() -> None:
    web = alloc("web", "dev", 3050, source="compose", origin="docker-compose.yml",
                key="services.web.ports[0]")
    api = alloc("api", "dev", 3050, source="compose", origin="docker-compose.yml",
                key="services.api.ports[0]")
    (c,) = find_conflicts([web, api], ALLOWED)
    assert c.kind == "compose_clash"
    assert "docker-compose.yml: services.web.ports[0]" in c.explain()
    assert "docker-compose.yml: services.api.ports[0]" in c.explain()
    assert c.suggestion == (3051, 3051)


def test_compose_service_clashing_with_itself() -> None:
    one = alloc("web", "dev", 3050, source="compose", origin="dc.yml", key="services.web.ports[0]")
    two = alloc("web", "dev", 3050, source="compose", origin="dc.yml", key="services.web.ports[1]")
    assert kinds(find_conflicts([one, two], ALLOWED)) == ["compose_clash"]


def test_duplicate_nodeports_cluster_wide_across_envs() -> None:
    a = alloc("checkout", "prod", 30080, source="kubernetes", kind="nodePort",
              origin="Service shop/checkout", key="spec.ports[0].nodePort")
    b = alloc("cart", "staging", 30080, source="kubernetes", kind="nodePort",
              origin="Service staging/cart", key="spec.ports[0].nodePort")
    (c,) = find_conflicts([a, b], ALLOWED)
    assert c.kind == "duplicate_nodeport"
    assert "Service shop/checkout: spec.ports[0].nodePort" in c.explain()
    assert "Service staging/cart: spec.ports[0].nodePort" in c.explain()
    # nodePorts are not held to [ports] allowed, which is for the team's own allocations
    assert c.suggestion is not None and c.suggestion[0] != 30080


def test_outside_the_allowed_range() -> None:
    a = alloc("checkout", "prod", 4050)
    (c,) = find_conflicts([a], ALLOWED)
    assert c.kind == "outside_range" and "5000-5999" in c.message
    assert c.parties == (a,) and c.suggestion == (5000, 5000)


def test_privileged_ports_unless_allowed() -> None:
    a = alloc("web", "edge", 443)
    (c,) = find_conflicts([a], {})
    assert c.kind == "privileged" and c.suggestion == (1024, 1024)
    assert find_conflicts([a], {}, allow_privileged=True) == ()


@pytest.mark.parametrize("error", ["start 3060 is after end 3050", "start is not a number: 'x'",
                                   "end 70000 is outside 1-65535"])
def test_malformed_entries(error: str) -> None:
    bad = PortAllocation("web", "dev", 0, 0, "registry", "ports.toml", "web.dev", error=error)
    (c,) = find_conflicts([bad, alloc("api", "dev", 3000)], ALLOWED)
    assert c.kind == "malformed" and error in c.message
    assert "ports.toml: web.dev" in c.explain()
    assert c.suggestion == (3001, 3001)
    assert "fix the entry" in c.suggestion_text


def test_suggestion_is_nearest_free_range_of_the_same_width() -> None:
    taken = [alloc("a", "dev", 3050, 3051), alloc("b", "dev", 3053), alloc("c", "dev", 3044, 3048)]
    mover = alloc("m", "dev", 3050, 3052)
    # free around 3050: 3049 (1 wide), 3052 (1), 3054+ ; 3 wide nearest: 3054-3056 (distance 4)
    # below: 3041-3043 (distance 9)
    assert suggest_free(mover, [*taken, mover], ALLOWED) == (3054, 3056)
    single = alloc("s", "dev", 3050)
    assert suggest_free(single, taken, ALLOWED) == (3049, 3049)
    assert suggest_free(alloc("s", "dev", 3051), taken, ALLOWED) == (3052, 3052)
    # equally near below and above: the higher one
    assert suggest_free(alloc("t", "dev", 3060), [alloc("u", "dev", 3060)], ALLOWED) == (3061, 3061)


def test_suggestion_avoids_busy_ports_and_respects_bounds() -> None:
    a = alloc("a", "dev", 3999)
    assert suggest_free(alloc("b", "dev", 3999), [a], ALLOWED) == (3998, 3998)
    assert suggest_free(alloc("b", "dev", 3999), [a], ALLOWED, busy=[3998]) == (3997, 3997)
    full = [alloc("x", "tiny", 6000, 6001)]
    assert suggest_free(alloc("y", "tiny", 6000), full, {"tiny": "6000-6001"}) is None


def test_parse_range() -> None:
    assert parse_range("3000-3999") == (3000, 3999)
    assert parse_range("5050") == (5050, 5050)
    for bad in ("x", "10-1", "0-10", "1-70000", "1-2-3"):
        with pytest.raises(ValueError):
            parse_range(bad)


def _reference_suggestion(alloc: PortAllocation, allocations: list[PortAllocation], lo: int,
                          hi: int, busy: set[int]) -> tuple[int, int] | None:
    """The obvious version: try every start, nearest first, ties to the higher port."""
    width = alloc.width if alloc.valid else 1
    want = alloc.start if alloc.valid else lo
    taken = set(busy)
    for a in allocations:
        if a.valid and a.env == alloc.env and not a.scope and a != alloc and (
                a.kind != "nodePort" or alloc.kind == "nodePort"):
            taken.update(range(a.start, a.end + 1))
    candidates = [s for s in range(lo, hi - width + 2)
                  if not any(p in taken for p in range(s, s + width))]
    if not candidates:
        return None
    best = min(candidates, key=lambda s: (abs(s - want), -s))
    return best, best + width - 1


def test_suggestions_match_the_obvious_search_on_random_fleets() -> None:
    import random

    rnd = random.Random(7)
    bounds = {"dev": "3000-3199"}
    for _ in range(300):
        allocs = []
        for i in range(rnd.randrange(1, 40)):
            start = rnd.randrange(2990, 3210)
            allocs.append(alloc(f"s{i}", "dev", start, start + rnd.choice([0, 0, 0, 1, 4, 15])))
        if rnd.random() < 0.3:
            allocs.append(allocs[0])  # an exact duplicate: every copy of the mover is left out
        busy = {rnd.randrange(3000, 3200) for _ in range(rnd.randrange(0, 5))}
        mover = rnd.choice(allocs)
        got = suggest_free(mover, allocs, bounds, busy=busy)
        assert got == _reference_suggestion(mover, allocs, 3000, 3199, busy), (mover, allocs, busy)
        # and the same through find_conflicts' shared index
        for c in find_conflicts(allocs, bounds, busy=busy):
            if c.move is not None:
                assert c.suggestion == _reference_suggestion(c.move, allocs, 3000, 3199, busy)
