"""Read-only cannot be bypassed: every mutating action id x every entry path, against real systems.

The world every test looks at (module-scoped, real):

* the simulated Kubernetes API over HTTP (``KubeSimThread``): ``shop/checkout`` at revision 2
  (so rollback has somewhere to go), 2 replicas;
* a real Alertmanager with two firing alerts: ``ReadOnlyA`` (not acknowledged) and
  ``ReadOnlyB`` (acknowledged by another operator: an active silence);

and per test, on disk: the port registry (``checkout.prod`` and ``cart.prod`` clash on 3050), the
SQLite store, the post-mortem folder, the config file.

:meth:`World.state` reads all of it back. In read-only mode it must not change: same deployment
generation / revision / replicas / annotations / template, no Lease, no ``Deploytui*`` Event,
the same silences, the same registry bytes, no audit record with status ``ok`` (a ``refused``
one is fine), the same incidents and notes, no post-mortem file.

Entry paths (``tests/ui/test_read_only_ui.py`` drives the console with the Pilot):

* programmatic, here: each real action object through ``runtime.door.plan`` (ActionRefused) and
  ``runtime.door.run`` (a refused result), also with a plan made while the console was live;
  ``door.check_allowed`` for every id of ``MUTATING_ACTIONS``; the incident / note /
  post-mortem / guard flows that do not go through an action object;
* the three ways to turn read-only on (``--read-only`` through ``apply_console_overrides``,
  ``[console] read_only = true``, ``DEPLOYTUI_READ_ONLY=1``), ``--wall`` implying it,
  ``--lock-read-only``; and one positive control (the same actions in a live console DO
  change the world), so none of this passes by accident.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import importlib
import inspect
import pkgutil
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import deploytui.actions
from deploytui.actions.ack import make_ack, make_unack
from deploytui.actions.door import MUTATING_ACTIONS, ActionDoor
from deploytui.actions.kube import make_restart, make_rollback, make_scale
from deploytui.actions.ports import make_port_reassign
from deploytui.cli.common import apply_console_overrides
from deploytui.config import Settings, load_config
from deploytui.demo.kube import KubeSim, KubeSimThread
from deploytui.errors import ActionRefused
from deploytui.runtime import Runtime, build_runtime
from deploytui.sources.alertmanager import format_ts
from deploytui.store import Store
from tests.promstack import PromStack, alertmanager_api

pytestmark = pytest.mark.slow

NAMESPACE = "shop"
DEPLOYMENT = "shop/checkout"
ALERT_OPEN = "ReadOnlyA"      # firing, not acknowledged
ALERT_ACKED = "ReadOnlyB"     # firing, acknowledged by another operator (an active silence)
PORT_ROW = "checkout@prod"    # clashes with cart@prod on 3050 in the registry

REGISTRY = """\
# Port registry — owned by the platform team.

[checkout.prod]
start = 3050   # the public listener
end = 3050
description = "checkout HTTP"

[cart.prod]
start = 3050
end = 3050
"""

#: every way of turning read-only on: name -> (argparse namespace, [console] lines, environment)
WAYS: dict[str, tuple[dict[str, Any], str, dict[str, str]]] = {
    "flag --read-only": ({"read_only": True}, "", {}),
    "config [console] read_only": ({}, "read_only = true\n", {}),
    "env DEPLOYTUI_READ_ONLY=1": ({}, "", {"DEPLOYTUI_READ_ONLY": "1"}),
    "flag --wall": ({"wall": True}, "", {}),
    "config [console] wall": ({}, "wall = true\n", {}),
    "flag --lock-read-only": ({"read_only": True, "lock_read_only": True}, "", {}),
    "env DEPLOYTUI_READ_ONLY_LOCK=1": ({}, "", {"DEPLOYTUI_READ_ONLY_LOCK": "1"}),
    "config [console] lock_read_only": ({}, "read_only = true\nlock_read_only = true\n", {}),
}
LOCKED_WAYS = {"flag --wall", "config [console] wall", "flag --lock-read-only",
               "env DEPLOYTUI_READ_ONLY_LOCK=1", "config [console] lock_read_only"}

#: the ids whose action has no Action object: their flows ask the door (check_allowed) first
FLOW_ONLY_IDS = frozenset({"guard_arm", "guard_rollback", "incident_open", "incident_close",
                           "incident_severity", "note", "postmortem", "notify_retry"})
#: switching read-only itself: refused by the lock (Runtime.set_read_only), not by read-only
TOGGLE = "toggle_read_only"
#: the ids with a real Action object (built by ``ACTION_BUILDERS``)
OBJECT_IDS = frozenset({"rollback", "scale", "restart", "ack", "unack", "port_reassign"})


# --- the real systems ----------------------------------------------------------------------------


def _wait(check: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeSim]:
    """The simulated Kubernetes API with ``shop/checkout`` at revision 2 (2 replicas)."""
    with KubeSimThread(controller_interval=0.05, bookmark_interval=0.3) as sim:
        sim.set_default_ready_seconds(0.05)
        sim.write_kubeconfig(tmp_path_factory.mktemp("kube") / "kubeconfig", namespace=NAMESPACE)
        sim.add_deployment(NAMESPACE, "checkout", image="app:1.4.1", replicas=2,
                           change_cause="first")
        sim.set_image(NAMESPACE, "checkout", "app:1.4.2", change_cause="release 1.4.2")

        def settled() -> bool:
            v = sim.deployment_view(NAMESPACE, "checkout")
            return v.complete and v.revision == 2

        _wait(settled, "shop/checkout to settle at revision 2")
        yield sim


@pytest.fixture(scope="module")
def alertmanager() -> Iterator[str]:
    """A real Alertmanager with ReadOnlyA firing and ReadOnlyB firing and silenced."""
    with PromStack(with_prometheus=False) as stack:
        url = stack.alertmanager_url
        now = time.time()
        alertmanager_api(url, "/alerts", method="POST", body=[{
            "labels": {"alertname": name, "service": "checkout", "env": "prod",
                       "severity": "warning"},
            "annotations": {"summary": f"{name} for the read-only matrix"},
            "startsAt": format_ts(now - 60), "endsAt": format_ts(now + 3 * 3600)}
            for name in (ALERT_OPEN, ALERT_ACKED)])
        alertmanager_api(url, "/silences", method="POST", body={
            "matchers": [{"name": "alertname", "value": ALERT_ACKED, "isRegex": False,
                          "isEqual": True}],
            "startsAt": format_ts(now), "endsAt": format_ts(now + 3 * 3600),
            "createdBy": "someone-else@ops", "comment": "another operator is on it"})

        def both_firing() -> bool:
            alerts = alertmanager_api(url, "/alerts")
            names = {a["labels"]["alertname"]: a["status"]["state"] for a in alerts}
            return names.get(ALERT_OPEN) == "active" and names.get(ALERT_ACKED) == "suppressed"

        stack.wait_for(both_firing, timeout=30, what="both alerts in Alertmanager")
        yield url


@dataclass
class World:
    """The systems an action could change, and the files of one console."""

    sim: KubeSim
    am_url: str
    dir: Path

    @property
    def config(self) -> Path:
        return self.dir / "deploytui.toml"

    @property
    def registry(self) -> Path:
        return self.dir / "ports.toml"

    @property
    def store_path(self) -> Path:
        return self.dir / "state" / "deploytui.db"

    @property
    def postmortems(self) -> Path:
        return self.dir / "postmortems"

    def write_config(self, console: str = "") -> Path:
        self.config.write_text(f"""\
[console]
operator = "matrix@ops"
refresh_interval = 0.5
{console}
[kubernetes]
enabled = true
kubeconfig = "{self.sim.kubeconfig}"
namespaces = ["{NAMESPACE}"]
request_timeout = 5.0
lease_duration_seconds = 15

[alertmanager]
url = "{self.am_url}"
ack_minutes = 30

[ports]
registry = "ports.toml"
probe = false
allowed = {{ prod = "3000-3999" }}

[store]
path = "{self.store_path}"

[postmortem]
output_dir = "{self.postmortems}"

[incidents]
open_on_critical_alert = false
open_on_prod_unhealthy = false

[guard]
mode = "auto"

[[services]]
name = "checkout"
env = "prod"
health_url = "http://127.0.0.1:9/health"
deployment = "{DEPLOYMENT}"
""")
        return self.config

    # --- reading everything back ------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        d = self.sim.get_object("deployments", NAMESPACE, "checkout")
        assert d is not None
        meta = d["metadata"]
        store = Store(self.store_path, read_only=True) if self.store_path.exists() else None
        try:
            audit_ok = ([(r.action, r.target) for r in store.audit() if r.status == "ok"]
                        if store else [])
            incidents = ([(i.id, i.severity, i.is_open, i.title) for i in store.incidents()]
                         if store else [])
            notes = [e.summary for e in store.events() if e.kind == "note"] if store else []
        finally:
            if store is not None:
                store.close()
        silences = alertmanager_api(self.am_url, "/silences")
        return {
            "deployment": {
                "generation": meta["generation"],
                "revision": (meta.get("annotations") or {}).get(
                    "deployment.kubernetes.io/revision"),
                "annotations": meta.get("annotations"),
                "replicas": d["spec"]["replicas"],
                "template": d["spec"]["template"],
                "paused": d["spec"].get("paused", False),
            },
            "leases": [f"{o['metadata']['namespace']}/{o['metadata']['name']}"
                       for o in self.sim.list_objects("leases")],
            "deploytui_events": [e["reason"] for e in self.sim.list_objects("events")
                                 if str(e.get("reason", "")).startswith("Deploytui")],
            "silences": sorted((s["id"], s["status"]["state"], s["endsAt"]) for s in silences),
            "registry": self.registry.read_bytes(),
            "audit_ok": audit_ok,
            "incidents": incidents,
            "notes": notes,
            "postmortems": sorted(p.name for p in self.postmortems.iterdir())
            if self.postmortems.exists() else [],
        }

    def audit(self) -> list[tuple[str, str]]:
        """(action, status) of every audit record on disk."""
        if not self.store_path.exists():
            return []
        store = Store(self.store_path, read_only=True)
        try:
            return [(r.action, r.status) for r in store.audit()]
        finally:
            store.close()

    def assert_unchanged(self, before: dict[str, Any], what: str) -> None:
        after = self.state()
        changed = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
        assert not changed, f"{what} changed the world in read-only mode: {changed}"


@pytest.fixture
def world(kube: KubeSim, alertmanager: str, tmp_path: Path) -> World:
    w = World(kube, alertmanager, tmp_path)
    w.registry.write_text(REGISTRY)
    w.write_config()
    _wait(lambda: not w.state()["leases"], "no Lease left by an earlier test")
    return w


def settings_for(world: World, way: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings as the CLI builds them (load_config + apply_console_overrides) for ``way``."""
    args, console, env = WAYS[way]
    for name in ("DEPLOYTUI_READ_ONLY", "DEPLOYTUI_READ_ONLY_LOCK"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    world.write_config(console)
    return apply_console_overrides(load_config(world.config), argparse.Namespace(**args))


def live_settings(world: World, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name in ("DEPLOYTUI_READ_ONLY", "DEPLOYTUI_READ_ONLY_LOCK"):
        monkeypatch.delenv(name, raising=False)
    world.write_config()
    return apply_console_overrides(load_config(world.config), argparse.Namespace())


def polled_runtime(settings: Settings) -> Runtime:
    """The console's runtime (store, incident manager, sources, Lease locker), with the alerts
    and ports sources polled once so the actions find the rows an operator would select."""
    rt = build_runtime(settings)
    for name in ("alerts", "ports"):
        source = rt.sources[name]
        asyncio.run(source.poll())
    return rt


def close_runtime(rt: Runtime) -> None:
    incidents = rt.extras.get("incidents")
    if incidents is not None:
        incidents.stop()
    store = rt.extras.get("store")
    if store is not None:
        store.close()


def fingerprint(rt: Runtime, alertname: str) -> str:
    snap = rt.sources["alerts"].last
    found = [a for a in snap.alerts if a.alertname == alertname]
    assert found, f"{alertname} is not in the alerts feed: {[a.alertname for a in snap.alerts]}"
    return str(found[0].fingerprint)


#: action id -> builds the real action object the console's key would build, for the selection
ACTION_BUILDERS: dict[str, Callable[[Runtime], Any]] = {
    "rollback": lambda rt: make_rollback(rt, DEPLOYMENT),
    "scale": lambda rt: make_scale(rt, DEPLOYMENT, 5),
    "restart": lambda rt: make_restart(rt, DEPLOYMENT),
    "ack": lambda rt: make_ack(rt, fingerprint(rt, ALERT_OPEN), comment="matrix"),
    "unack": lambda rt: make_unack(rt, fingerprint(rt, ALERT_ACKED)),
    "port_reassign": lambda rt: make_port_reassign(rt, PORT_ROW),
}
#: extra variants of the same ids (another code path inside the action)
EXTRA_BUILDERS: dict[str, Callable[[Runtime], Any]] = {
    "rollback to revision 1": lambda rt: make_rollback(rt, DEPLOYMENT, 1),
    "scale to 0": lambda rt: make_scale(rt, DEPLOYMENT, 0),
}


# --- the enumeration itself is complete ------------------------------------------------------------


def _action_classes() -> list[type]:
    """Every class in deploytui.actions.* that is an Action (an ``id`` and an ``execute``)."""
    found: list[type] = []
    for info in pkgutil.iter_modules(deploytui.actions.__path__):
        module = importlib.import_module(f"deploytui.actions.{info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == module.__name__ and isinstance(getattr(cls, "id", None), str) \
                    and callable(getattr(cls, "execute", None)):
                found.append(cls)
    return found


def test_every_action_class_and_builder_is_in_the_matrix() -> None:
    classes = _action_classes()
    ids = {cls.id for cls in classes}  # type: ignore[attr-defined]
    assert ids, "no action class found: the enumeration is broken"
    # an Action whose id is not in MUTATING_ACTIONS would pass the door in read-only mode
    assert ids <= MUTATING_ACTIONS, f"action ids the door does not refuse: {ids - MUTATING_ACTIONS}"
    assert ids == OBJECT_IDS == set(ACTION_BUILDERS)
    assert OBJECT_IDS | FLOW_ONLY_IDS == MUTATING_ACTIONS - {TOGGLE}
    assert not OBJECT_IDS & FLOW_ONLY_IDS


# --- the three ways (and wall, and the lock) turn read-only on ---------------------------------------


@pytest.mark.parametrize("way", list(WAYS))
def test_each_way_turns_read_only_on(world: World, monkeypatch: pytest.MonkeyPatch,
                                     way: str) -> None:
    settings = settings_for(world, way, monkeypatch)
    assert settings.read_only, way
    rt = build_runtime(settings, with_sources=False)
    try:
        assert rt.read_only and rt.door.read_only
        assert rt.read_only_locked is (way in LOCKED_WAYS)
        # switching off at run time: refused when locked, allowed otherwise
        assert rt.set_read_only(False) is (way not in LOCKED_WAYS)
        assert rt.read_only is (way in LOCKED_WAYS)
        assert rt.door.read_only is rt.read_only
    finally:
        close_runtime(rt)


def test_without_any_of_them_the_console_is_live(world: World,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    settings = live_settings(world, monkeypatch)
    assert not settings.read_only
    rt = build_runtime(settings, with_sources=False)
    try:
        assert not rt.read_only and not rt.door.read_only and not rt.read_only_locked
        for action_id in MUTATING_ACTIONS:
            rt.door.check_allowed(action_id)   # no refusal
    finally:
        close_runtime(rt)


@pytest.mark.parametrize(("value", "on"), [("1", True), ("true", True), ("TRUE", True),
                                           ("yes", True), ("on", True), (" 1 ", True),
                                           ("0", False), ("false", False), ("", False)])
def test_deploytui_read_only_values(world: World, monkeypatch: pytest.MonkeyPatch, value: str,
                                    on: bool) -> None:
    monkeypatch.setenv("DEPLOYTUI_READ_ONLY", value)
    settings = apply_console_overrides(load_config(world.config), argparse.Namespace())
    assert settings.read_only is on


def test_the_cli_parser_reaches_apply_console_overrides(world: World,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """``deploytui --read-only`` / ``--wall`` / ``--lock-read-only`` as typed, through the parser
    and ``load_settings`` (the code path of the console command)."""
    from deploytui.cli import build_parser
    from deploytui.cli.common import load_settings

    monkeypatch.delenv("DEPLOYTUI_READ_ONLY", raising=False)
    monkeypatch.delenv("DEPLOYTUI_READ_ONLY_LOCK", raising=False)
    parser = build_parser()
    cfg = str(world.config)
    cases = {("--read-only",): (True, False), ("--wall",): (True, True),
             ("--read-only", "--lock-read-only"): (True, True), ("--lock-read-only",): (True, True),
             (): (False, False)}
    for argv, (read_only, locked) in cases.items():
        settings = load_settings(parser.parse_args(["--config", cfg, *argv]))
        assert settings.read_only is read_only, argv
        rt = build_runtime(settings, with_sources=False)
        try:
            assert rt.read_only is read_only and rt.read_only_locked is locked, argv
        finally:
            close_runtime(rt)


# --- programmatic: every action object through the door ----------------------------------------------


@pytest.mark.parametrize("way", list(WAYS))
def test_door_refuses_every_action_object(world: World, monkeypatch: pytest.MonkeyPatch,
                                          way: str) -> None:
    rt = polled_runtime(settings_for(world, way, monkeypatch))
    try:
        assert rt.door.locker is not None, "the Lease locker is wired (a lock would be visible)"
        before = world.state()
        builders = {**ACTION_BUILDERS, **EXTRA_BUILDERS}
        for name, build in builders.items():
            action = build(rt)
            assert action.id in MUTATING_ACTIONS
            with pytest.raises(ActionRefused, match="read-only") as refused:
                rt.door.plan(action)
            assert refused.value.reason == "read_only", name
            result = rt.door.run(action)
            assert not result.ok and "read-only" in result.message, (name, result)
            # a plan made elsewhere (the action's own, no door) does not open the door either
            plan = action.plan()
            result = rt.door.run(action, plan)
            assert not result.ok and "read-only" in result.message, (name, result)
        world.assert_unchanged(before, f"door.run of {sorted(builders)} ({way})")
        audit = world.audit()
        assert audit and {status for _, status in audit} == {"refused"}, audit
        assert {action for action, _ in audit} == OBJECT_IDS
        assert len(audit) == 2 * len(builders)
    finally:
        close_runtime(rt)


@pytest.mark.parametrize("way", list(WAYS))
def test_door_refuses_every_mutating_id(world: World, monkeypatch: pytest.MonkeyPatch,
                                        way: str) -> None:
    rt = build_runtime(settings_for(world, way, monkeypatch), with_sources=False)
    try:
        for action_id in sorted(MUTATING_ACTIONS):
            with pytest.raises(ActionRefused, match="read-only"):
                rt.door.check_allowed(action_id)
        with pytest.raises(ActionRefused):  # an action without an id is never let through
            rt.door.check_allowed("")
    finally:
        close_runtime(rt)


def test_a_plan_made_while_live_is_refused_once_read_only(world: World,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Plan in a live console, switch read-only on (ctrl+r), confirm: the run is refused."""
    rt = polled_runtime(live_settings(world, monkeypatch))
    try:
        planned = [(build(rt), None) for build in ACTION_BUILDERS.values()]
        planned = [(action, rt.door.plan(action)) for action, _ in planned]
        before = world.state()
        assert rt.set_read_only(True)
        for action, plan in planned:
            result = rt.door.run(action, plan)
            assert not result.ok and "read-only" in result.message, (action.id, result)
        world.assert_unchanged(before, "runs of plans made while live")
    finally:
        close_runtime(rt)


def test_a_door_built_read_only_refuses_whatever_the_action_says() -> None:
    """An action that is not one of ours but claims a mutating id: refused before plan/execute."""
    calls: list[str] = []

    class Probe:
        id = "rollback"

        def plan(self) -> Any:
            calls.append("plan")
            raise AssertionError("plan must not be called in read-only mode")

        def execute(self, plan: Any, ctx: Any) -> Any:
            calls.append("execute")
            raise AssertionError("execute must not be called in read-only mode")

    door = ActionDoor(operator="x", read_only=True)
    with pytest.raises(ActionRefused):
        door.plan(Probe())
    assert not door.run(Probe()).ok
    assert calls == []


# --- programmatic: the flows without an action object ----------------------------------------------


class _Notes:
    """What a screen needs from the flows (``runtime``, ``notify``, ``app``), the app part
    failing loudly: a refused flow must not open a dialog or start a worker."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.messages: list[str] = []

    def notify(self, message: str, **_: Any) -> None:
        self.messages.append(message)

    @property
    def app(self) -> Any:
        raise AssertionError("a refused flow must not reach the app (dialog, worker)")


def _open_incident(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """An incident opened by another, live, console on the same store."""
    from deploytui.incidents import attach_incidents

    rt = build_runtime(live_settings(world, monkeypatch), with_sources=False)
    try:
        manager = attach_incidents(rt, start=False)
        manager.open(severity="P3", title="opened elsewhere", actor="someone-else@ops")
    finally:
        close_runtime(rt)


@pytest.mark.parametrize("incident_open", [False, True], ids=["no incident", "incident open"])
@pytest.mark.parametrize("way", ["flag --read-only", "config [console] read_only",
                                 "env DEPLOYTUI_READ_ONLY=1", "flag --wall"])
def test_incident_note_postmortem_flows_are_refused(world: World, monkeypatch: pytest.MonkeyPatch,
                                                    way: str, incident_open: bool) -> None:
    from deploytui.model import Target
    from deploytui.ui.screens import timeline

    if incident_open:
        _open_incident(world, monkeypatch)
    rt = build_runtime(settings_for(world, way, monkeypatch), with_sources=False)
    try:
        before = world.state()
        assert bool(before["incidents"]) is incident_open
        screen = _Notes(rt)
        target = Target(service="prod/checkout", env="prod", deployment=DEPLOYMENT)
        flows: dict[str, Callable[[], None]] = {
            "incident_open": lambda: timeline.open_incident_flow(screen, target),
            "incident_severity": lambda: timeline.severity_flow(screen),
            "incident_close": lambda: timeline.close_flow(screen),
            "note": lambda: timeline.note_flow(screen, target),
            "postmortem": lambda: timeline.postmortem_flow(screen, target),
        }
        for action_id, flow in flows.items():
            screen.messages.clear()
            flow()
            assert screen.messages and "read-only" in screen.messages[-1], (action_id,
                                                                           screen.messages)
        world.assert_unchanged(before, f"the incident / note / post-mortem flows ({way})")
    finally:
        close_runtime(rt)


def test_guard_arm_is_refused(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from deploytui.ui.guard_banner import GuardController

    rt = build_runtime(settings_for(world, "flag --read-only", monkeypatch), with_sources=False)
    try:
        controller = GuardController(rt)
        assert controller.mode == "auto"
        screen = _Notes(rt)
        before = world.state()
        controller.toggle_armed(screen)
        assert controller.armed is False
        assert screen.messages and "read-only" in screen.messages[-1]
        world.assert_unchanged(before, "guard arm")
        # the same controller arms once the console is live again (so the refusal was real)
        assert rt.set_read_only(False)
        controller.toggle_armed(screen)
        assert controller.armed is True
        assert ("guard_arm", "ok") in world.audit()
    finally:
        close_runtime(rt)


def test_guard_rollback_is_blocked_and_its_rollback_refused(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """The guard decides ``blocked`` on a trip in read-only mode, and its rollback (what a
    confirmed proposal or the end of a countdown runs) is refused by the door."""
    from deploytui.guard import Guard, Observation, Reading
    from deploytui.guard_runner import GuardRunner

    settings = settings_for(world, "flag --read-only", monkeypatch)
    settings = dataclasses.replace(settings, guard=dataclasses.replace(
        settings.guard, mode="auto", interval_seconds=0.1, countdown_seconds=0,
        health_failures=dataclasses.replace(settings.guard.health_failures, for_seconds=0,
                                            limit=1)))
    rt = build_runtime(settings)
    try:
        before = world.state()
        guard = Guard(settings.guard, DEPLOYMENT, started_at=time.time(), mode="auto")
        now = time.time()
        decision = guard.evaluate(Observation(
            ts=now, revision=2, readings=(Reading("health_failures", 3.0),), has_previous=True,
            read_only=rt.read_only, lock_holder="", armed=True, last_auto_rollback=None,
            phase="progressing"))
        assert decision.tripped and decision.action == "blocked", decision
        assert "read-only" in decision.reason
        runner = GuardRunner(rt, DEPLOYMENT, mode="auto", armed=True)
        outcome = asyncio.run(runner._act(decision))
        assert outcome.status == "blocked"
        # even a decision taken while live (a countdown running when read-only came on)
        live = dataclasses.replace(decision, action="rollback")
        outcome = asyncio.run(runner._act(live))
        assert outcome.status in ("blocked", "rollback_failed"), outcome
        outcome = asyncio.run(runner._rollback(live))
        assert outcome.status == "rollback_failed" and "read-only" in outcome.message, outcome
        world.assert_unchanged(before, "the guard's rollback")
        statuses = {(a, s) for a, s in world.audit() if a in ("rollback", "guard_rollback")}
        assert ("rollback", "refused") in statuses
        assert not {s for _, s in statuses} - {"refused", "failed"}, statuses
    finally:
        close_runtime(rt)


# --- the positive control: live, the same objects change the world ----------------------------------


def test_positive_control_live_console_changes_every_system(world: World,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The same builders in a live console: each action goes through and the world shows it.
    Without this, an action that failed for another reason would pass the matrix above."""
    rt = polled_runtime(live_settings(world, monkeypatch))
    try:
        before = world.state()
        for action_id in ("scale", "ack", "port_reassign"):
            result = rt.door.run(ACTION_BUILDERS[action_id](rt))
            assert result.ok, (action_id, result.message)
        after = world.state()
        assert after["deployment"]["replicas"] == 5 != before["deployment"]["replicas"]
        assert (Counter(after["deploytui_events"]) - Counter(before["deploytui_events"])
                == Counter(["DeploytuiScale"]))
        assert len(after["silences"]) == len(before["silences"]) + 1
        assert after["registry"] != before["registry"]
        assert {a for a, _ in after["audit_ok"]} == {"scale", "ack", "port_reassign"}
        # put the shared systems back for the next tests
        rt.door.run(make_scale(rt, DEPLOYMENT, 2))
        asyncio.run(rt.sources["alerts"].poll())
        assert rt.door.run(make_unack(rt, fingerprint(rt, ALERT_OPEN))).ok
    finally:
        close_runtime(rt)


def test_state_snapshot_sees_each_kind_of_change(world: World) -> None:
    """The checker itself: each field of World.state moves when its system changes."""
    before = world.state()
    world.registry.write_text(REGISTRY + "\n# touched\n")
    world.postmortems.mkdir(exist_ok=True)
    (world.postmortems / "x.md").write_text("x")
    after = world.state()
    assert after["registry"] != before["registry"] and after["postmortems"] == ["x.md"]
    world.registry.write_text(REGISTRY)
    assert world.state()["registry"] == before["registry"]
