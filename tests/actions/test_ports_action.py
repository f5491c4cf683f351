"""``port_reassign`` through the action door: registry write-back (TOML and JSON) keeping
everything else, refusals (read-only, inline config, compose, Kubernetes, changed file)."""

from __future__ import annotations

import asyncio
import json
import tomllib
from pathlib import Path

import pytest

from deploytui.actions.door import ActionDoor
from deploytui.actions.ports import PortReassignAction
from deploytui.config import Settings, load_config
from deploytui.errors import ActionRefused
from deploytui.model import MemoryJournal
from deploytui.sources import ports
from deploytui.sources.ports_conflicts import PortAllocation

REGISTRY = """\
# Port registry — owned by the platform team. Ask in #ports before changing.

[checkout.prod]
start = 3050   # the public listener
end = 3050
description = "checkout HTTP"

[checkout.dev]
start = 3050
end = 3050

[cart.prod]
# cart shares nothing
start = 3051
end = 3051
owner = { team = "payments", pager = "P-12" }

[search.prod]
start = 3060
end = 3062
"""


def make(tmp_path: Path, registry_name: str, registry_text: str, extra: str = "") -> Settings:
    (tmp_path / registry_name).write_text(registry_text)
    cfg = tmp_path / "deploytui.toml"
    cfg.write_text(f'[ports]\nregistry = "{registry_name}"\nprobe = false\n'
                   f'allowed = {{ prod = "3000-3999", dev = "3000-3999" }}\n{extra}')
    return load_config(cfg)


def door(read_only: bool = False) -> tuple[ActionDoor, MemoryJournal]:
    journal = MemoryJournal()
    return ActionDoor(operator="ops@test", read_only=read_only, audit=journal,
                      timeline=journal), journal


def find(settings: Settings, label: str) -> PortAllocation:
    return next(a for a in ports.declared_allocations(settings) if a.label == label)


def test_plan_states_the_exact_change(tmp_path: Path) -> None:
    s = make(tmp_path, "ports.toml", REGISTRY)
    plan = door()[0].plan(PortReassignAction(s, find(s, "checkout@prod"), 3052))
    assert plan.action_id == "port_reassign" and plan.target == "checkout@prod"
    assert plan.changes == ("checkout@prod 3050 -> 3052 in ports.toml",)
    assert plan.confirm_text == "checkout"  # prod asks for the typed name
    assert dict(plan.before)["start"] == 3050 and dict(plan.after)["start"] == 3052
    dev = door()[0].plan(PortReassignAction(s, find(s, "checkout@dev"), 3040))
    assert dev.confirm_text == ""


def test_toml_write_back_keeps_comments_and_other_data(tmp_path: Path) -> None:
    s = make(tmp_path, "ports.toml", REGISTRY)
    d, journal = door()
    result = d.run(PortReassignAction(s, find(s, "checkout@prod"), 3052))
    assert result.ok, result.message
    assert result.message == "checkout@prod moved 3050 -> 3052 in ports.toml"
    text = (tmp_path / "ports.toml").read_text()
    assert text == REGISTRY.replace("start = 3050   # the public listener\nend = 3050",
                                    "start = 3052   # the public listener\nend = 3052")
    (record,) = journal.audit
    assert (record.action, record.status, record.target) == ("port_reassign", "ok", "checkout@prod")
    assert record.after["start"] == 3052 and record.before["start"] == 3050
    assert journal.events[0].details["changes"] == ["checkout@prod 3050 -> 3052 in ports.toml"]


def test_range_keeps_its_width(tmp_path: Path) -> None:
    s = make(tmp_path, "ports.toml", REGISTRY)
    action = PortReassignAction(s, find(s, "search@prod"), 3070)
    assert door()[0].plan(action).changes == ("search@prod 3060-3062 -> 3070-3072 in ports.toml",)
    assert door()[0].run(action).ok
    data = tomllib.loads((tmp_path / "ports.toml").read_text())
    assert data["search"]["prod"] == {"start": 3070, "end": 3072}


def test_toml_not_in_plain_tables_goes_through_tomli_w_keeping_all_data(tmp_path: Path) -> None:
    text = ('checkout = { prod = { start = 3050, end = 3050, description = "x" } }\n'
            'cart.prod.start = 3051\ncart.prod.end = 3051\n'
            '[search.prod]\nstart = 3060\nupdated = 2026-11-01T10:00:00Z\nlist = [1, 2, 3]\n')
    s = make(tmp_path, "ports.toml", text)
    before = tomllib.loads(text)
    assert door()[0].run(PortReassignAction(s, find(s, "checkout@prod"), 3052)).ok
    out = (tmp_path / "ports.toml").read_text()
    assert "[checkout.prod]" in out  # re-serialised by tomli-w: tables, not inline tables
    after = tomllib.loads(out)
    before["checkout"]["prod"].update(start=3052, end=3052)
    assert after == before


@pytest.mark.parametrize("indent", [2, 4, "\t"])
def test_json_stays_json_with_its_indentation(tmp_path: Path, indent: int | str) -> None:
    data = {"zeta": {"dev": {"start": 3000, "end": 3000, "description": "first key stays first"}},
            "checkout": {"prod": {"start": 3050, "end": 3050, "description": "checkout HTTP",
                                  "notes": ["ünïcode kept", None, True]}},
            "cart": {"prod": {"start": "3051", "end": "3051"}}}
    text = json.dumps(data, indent=indent, ensure_ascii=False) + "\n"
    s = make(tmp_path, "ports.json", text)
    assert door()[0].run(PortReassignAction(s, find(s, "cart@prod"), 3055)).ok
    out = (tmp_path / "ports.json").read_text()
    data["cart"]["prod"] = {"start": "3055", "end": "3055"}  # strings stay strings
    assert out == json.dumps(data, indent=indent, ensure_ascii=False) + "\n"
    assert list(json.loads(out)) == ["zeta", "checkout", "cart"]


def test_compact_json_stays_compact(tmp_path: Path) -> None:
    s = make(tmp_path, "ports.json", '{"checkout": {"prod": {"start": 3050, "end": 3050}}}')
    assert door()[0].run(PortReassignAction(s, find(s, "checkout@prod"), 3052)).ok
    assert (tmp_path / "ports.json").read_text() == \
        '{"checkout": {"prod": {"start": 3052, "end": 3052}}}'


def test_read_only_refuses_at_the_door_and_writes_nothing(tmp_path: Path) -> None:
    s = make(tmp_path, "ports.toml", REGISTRY)
    d, journal = door(read_only=True)
    action = PortReassignAction(s, find(s, "checkout@prod"), 3052)
    with pytest.raises(ActionRefused, match="read-only"):
        d.plan(action)
    result = d.run(action)
    assert not result.ok and "read-only" in result.message
    assert (tmp_path / "ports.toml").read_text() == REGISTRY
    assert [r.status for r in journal.audit] == ["refused"]


def test_inline_config_allocations_cannot_be_rewritten(tmp_path: Path) -> None:
    s = make(tmp_path, "ports.toml", REGISTRY,
             "[ports.allocations.billing.prod]\nstart = 3050\n")
    config_before = (tmp_path / "deploytui.toml").read_text()
    with pytest.raises(ActionRefused) as info:
        door()[0].plan(PortReassignAction(s, find(s, "billing@prod"), 3052))
    message = str(info.value)
    assert "declared inline in the config" in message
    assert "deploytui.toml: ports.allocations.billing.prod" in message
    assert "does not rewrite the config file" in message
    assert (tmp_path / "deploytui.toml").read_text() == config_before


@pytest.mark.parametrize(("source", "says"), [("compose", "edit the compose file"),
                                              ("kubernetes", "kubectl")])
def test_compose_and_kubernetes_are_refused_with_where_to_edit(tmp_path: Path, source: str,
                                                                says: str) -> None:
    s = make(tmp_path, "ports.toml", REGISTRY)
    a = PortAllocation("web", "dev", 3050, 3050, source, "docker-compose.yml",
                       "services.web.ports[0]")
    result = door()[0].run(PortReassignAction(s, a, 3052))
    assert not result.ok and says in result.message


def test_refused_when_the_entry_changed_since_it_was_read(tmp_path: Path) -> None:
    s = make(tmp_path, "ports.toml", REGISTRY)
    action = PortReassignAction(s, find(s, "checkout@prod"), 3052)
    d, journal = door()
    plan = d.plan(action)
    changed = REGISTRY.replace("start = 3050   #", "start = 3049   #")
    (tmp_path / "ports.toml").write_text(changed)
    result = d.run(action, plan)
    assert not result.ok and "changed in ports.toml since it was read" in result.message
    assert (tmp_path / "ports.toml").read_text() == changed
    assert journal.audit[-1].status == "refused"


def test_nothing_to_do_and_no_free_port(tmp_path: Path) -> None:
    s = make(tmp_path, "ports.toml", REGISTRY)
    with pytest.raises(ActionRefused, match="nothing to do"):
        PortReassignAction(s, find(s, "checkout@prod"), 3050).plan()
    with pytest.raises(ActionRefused, match="no free port"):
        PortReassignAction(s, find(s, "checkout@prod"), None).plan()


def test_suggestion_then_reassign_clears_the_conflict(tmp_path: Path) -> None:
    s = make(tmp_path, "ports.toml", REGISTRY.replace("start = 3051\nend = 3051",
                                                      "start = 3050\nend = 3050"))
    snap = asyncio.run(ports.collect(s))
    (conflict,) = snap.conflicts
    assert conflict.kind == "duplicate_port"
    row = next(r for r in snap.rows if r.allocation == conflict.move)
    assert row.suggestion == (3051, 3051)
    result = door()[0].run(PortReassignAction(s, row.allocation, row.suggestion[0]))
    assert result.ok, result.message
    assert asyncio.run(ports.collect(s)).conflicts == ()


def test_a_symlinked_registry_stays_a_symlink(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "ports.toml").write_text(REGISTRY)
    s = make(tmp_path, "ports.toml", "")
    (tmp_path / "ports.toml").unlink()
    (tmp_path / "ports.toml").symlink_to(repo / "ports.toml")
    assert door()[0].run(PortReassignAction(s, find(s, "cart@prod"), 3055)).ok
    assert (tmp_path / "ports.toml").is_symlink()
    assert tomllib.loads((repo / "ports.toml").read_text())["cart"]["prod"]["start"] == 3055
