"""The rollouts source against the simulated Kubernetes API over HTTP: list+watch, rolling
updates step by step, stalls, failures, reconnects, re-lists, stale state and the snapshot."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from deploytui.config import KubernetesSettings, ServiceSettings, Settings
from deploytui.demo.kube import KubeSim, KubeSimThread
from deploytui.errors import SourceError
from deploytui.model import MemoryJournal
from deploytui.runtime import build_runtime
from deploytui.snapshot import collect, render_json
from deploytui.sources.kube import KubeSource, make_source, read_once, snapshot_section
from deploytui.sources.kube_watch import connect
from deploytui.sources.rollout_model import Rollout, RolloutSnapshot


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[KubeSim]:
    with KubeSimThread(controller_interval=0.03, bookmark_interval=0.3) as s:
        s.set_default_ready_seconds(0.2)
        s.write_kubeconfig(tmp_path / "kubeconfig", namespace="shop")
        yield s


def settings_for(sim: KubeSim, **kube: Any) -> Settings:
    values: dict[str, Any] = {"enabled": True, "kubeconfig": str(sim.kubeconfig),
                              "namespaces": ("shop",), "request_timeout": 2.0}
    values.update(kube)
    services = (ServiceSettings(name="checkout", env="prod", health_url="http://127.0.0.1:1/h",
                                deployment="shop/checkout"),
                ServiceSettings(name="cart", env="staging", health_url="http://127.0.0.1:1/h"))
    return Settings(kubernetes=KubernetesSettings(**values), services=services)


class Running:
    """A KubeSource running on this test's loop, collecting what it publishes."""

    def __init__(self, source: KubeSource) -> None:
        self.source = source
        self.snapshots: list[RolloutSnapshot] = []
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Running:
        self.task = asyncio.create_task(self.source.run(self.snapshots.append))
        await self.until(lambda s: s.loaded, what="the first full list")
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)

    @property
    def latest(self) -> RolloutSnapshot:
        return self.snapshots[-1]

    async def until(self, predicate: Callable[[RolloutSnapshot], Any], timeout: float = 15.0,
                    what: str = "condition") -> RolloutSnapshot:
        deadline = time.monotonic() + timeout
        seen = max(0, len(self.snapshots) - 1)
        while True:
            # every snapshot published meanwhile counts: a short-lived state is not missed
            for snap in self.snapshots[seen:]:
                if predicate(snap):
                    return snap
            seen = max(seen, len(self.snapshots) - 1)
            if self.task is not None and self.task.done():
                self.task.result()
            if time.monotonic() > deadline:
                last = self.snapshots[-1] if self.snapshots else None
                pytest.fail(f"timed out waiting for {what}; last snapshot: {last}")
            await asyncio.sleep(0.01)


def one(snap: RolloutSnapshot, key: str) -> Rollout:
    r = snap.find(key)
    assert r is not None, f"{key} not in {[x.key for x in snap.rollouts]}"
    return r


async def test_follows_a_rolling_update_step_by_step(sim: KubeSim) -> None:
    sim.add_deployment("shop", "checkout", image="app:1.4.1", replicas=4)
    journal = MemoryJournal()
    async with Running(KubeSource(settings_for(sim), journal, tick=0.2)) as run:
        first = one(run.latest, "shop/checkout")
        assert (first.phase, first.revision, first.images) == ("complete", 1, ("app:1.4.1",))
        assert (first.service, first.env) == ("prod/checkout", "prod")
        assert first.eta_text(time.time()) == ""
        sim.set_image("shop", "checkout", "app:1.4.2", change_cause="release 1.4.2")
        await run.until(lambda s: one(s, "shop/checkout").phase == "progressing",
                        what="progressing")
        assert one(run.latest, "shop/checkout").eta_text(time.time()) == "no history"
        done = await run.until(lambda s: one(s, "shop/checkout").phase == "complete"
                               and one(s, "shop/checkout").revision == 2, what="complete")
    steps = [(r.phase, r.updated, r.ready, r.available, r.message)
             for s in run.snapshots if (r := s.find("shop/checkout")) is not None]
    progressing = [s for s in steps if s[0] == "progressing" and "spec update" not in s[4]]
    # every step of the rolling update reached the snapshot, in order
    updated = [s[1] for s in progressing]
    assert updated == sorted(updated) and len(set(updated)) >= 3, steps
    assert any("of 4 new replicas updated" in s[4] for s in progressing)
    assert any("old replicas pending termination" in s[4] or "updated replicas available" in s[4]
               for s in progressing)
    final = one(done, "shop/checkout")
    assert final.images == ("app:1.4.2",) and final.version == "1.4.2"
    assert (final.desired, final.updated, final.ready, final.available) == (4, 4, 4, 4)
    assert [r.revision for r in final.revisions] == [2, 1]
    assert final.revisions[0].change_cause == "release 1.4.2" and final.revisions[0].current
    kinds = [e.kind for e in journal.events]
    assert kinds == ["rollout_started", "rollout_completed"]
    assert journal.events[1].service == "shop/checkout" and journal.events[1].env == "prod"
    assert journal.events[1].details["seconds"] > 0


async def test_eta_comes_from_past_rollout_durations(sim: KubeSim) -> None:
    class DurationJournal(MemoryJournal):
        def __init__(self) -> None:
            super().__init__()
            self.durations: dict[str, list[tuple[int, float]]] = {"shop/cart": [(1, 100.0)]}

        def record_rollout_duration(self, deployment: str, revision: int, seconds: float) -> None:
            self.durations.setdefault(deployment, []).append((revision, seconds))

        def rollout_durations(self, deployment: str) -> list[float]:
            return [s for _, s in self.durations.get(deployment, [])]

    journal = DurationJournal()
    sim.add_deployment("shop", "cart", image="cart:1", replicas=2)
    sim.set_image_behavior("cart:2", ready_seconds=1.0)
    async with Running(KubeSource(settings_for(sim), journal, tick=0.2)) as run:
        sim.set_image("shop", "cart", "cart:2")
        snap = await run.until(lambda s: one(s, "shop/cart").phase == "progressing",
                               what="progressing")
        r = one(snap, "shop/cart")
        assert r.eta is not None and (r.eta.mean, r.eta.low, r.eta.high) == (100.0, 80.0, 120.0)
        assert r.eta_text(r.started_at or 0.0) == "1m40s (1m20s-2m00s)"
        await run.until(lambda s: one(s, "shop/cart").phase == "complete", what="complete")
    assert [rev for rev, _ in journal.durations["shop/cart"]] == [1, 2]
    assert 0 < journal.durations["shop/cart"][1][1] < 30


async def test_stall_detection_and_progress_deadline(sim: KubeSim) -> None:
    sim.add_deployment("shop", "cart", image="cart:1", replicas=2)
    sim.add_deployment("shop", "search", image="search:1", replicas=2, progress_deadline_seconds=1)
    sim.set_image_behavior("cart:bad", crashloop=True, restart_seconds=0.3)
    sim.set_image_behavior("search:bad", crashloop=True, restart_seconds=0.3)
    journal = MemoryJournal()
    settings = settings_for(sim, stall_after_seconds=1.0)
    async with Running(KubeSource(settings, journal, tick=0.1)) as run:
        sim.set_image("shop", "cart", "cart:bad")
        sim.set_image("shop", "search", "search:bad")
        snap = await run.until(lambda s: one(s, "shop/cart").phase == "stalled",
                               what="cart stalled")
        cart = one(snap, "shop/cart")
        assert cart.message.startswith("no progress for")
        snap = await run.until(lambda s: one(s, "shop/search").phase == "failed",
                               what="search failed (ProgressDeadlineExceeded)")
        assert "exceeded its progress deadline" in one(snap, "shop/search").message
        snap = await run.until(lambda s: one(s, "shop/cart").crashlooping > 0
                               and one(s, "shop/cart").restarts > 0, what="restarts counted")
        # worst first: failed, then stalled
        assert [r.key for r in snap.rollouts][:2] == ["shop/search", "shop/cart"]
        assert not snap.ok
    kinds = {(e.kind, e.service) for e in journal.events}
    assert ("rollout_stalled", "shop/cart") in kinds
    assert ("rollout_failed", "shop/search") in kinds


async def test_watch_reconnects_after_the_server_drops_it(sim: KubeSim) -> None:
    sim.add_deployment("shop", "cart", image="cart:1", replicas=2)
    source = KubeSource(settings_for(sim), tick=0.2)
    async with Running(source) as run:
        for round_ in (2, 3):
            sim.drop_watches()
            await asyncio.sleep(0.3)
            sim.set_image("shop", "cart", f"cart:{round_}")
            await run.until(lambda s, n=round_: one(s, "shop/cart").images == (f"cart:{n}",)
                            and one(s, "shop/cart").phase == "complete", what=f"cart:{round_}")
    stats = source.stats()
    assert all(v["connects"] >= 3 for v in stats.values()), stats
    assert all(v["relists"] == 1 for v in stats.values()), stats   # resumed, no re-list


async def test_relists_after_410_gone(sim: KubeSim) -> None:
    sim.add_deployment("shop", "cart", image="cart:1", replicas=1)
    sim.add_deployment("shop", "gone", image="gone:1", replicas=1)
    source = KubeSource(settings_for(sim), tick=0.2)
    client = connect(settings_for(sim))
    async with Running(source) as run:
        assert run.latest.find("shop/gone") is not None
        # keep the watches away while things change and the history is compacted, so their
        # resourceVersions are too old to resume from
        sim.inject_fault("GET", r"[?&]watch=", status=503, times=9)
        sim.drop_watches()
        await run.until(lambda s: s.stale_since is not None, what="stale")
        sim.set_image("shop", "cart", "cart:2")
        client.call("apps", "delete_namespaced_deployment", "gone", "shop")
        sim.compact_history()
        snap = await run.until(lambda s: s.find("shop/gone") is None
                               and one(s, "shop/cart").images == ("cart:2",)
                               and s.stale_since is None, timeout=30, what="re-listed state")
        assert one(snap, "shop/cart").images == ("cart:2",)
    assert all(w.relists >= 2 for w in source.watchers), source.stats()
    client.close()


async def test_stale_since_while_the_api_is_unreachable(sim: KubeSim) -> None:
    sim.add_deployment("shop", "cart", image="cart:1", replicas=1)
    source = KubeSource(settings_for(sim), tick=0.1)
    async with Running(source) as run:
        assert run.latest.stale_since is None
        sim.inject_fault("GET", r"/deployments", status=503, times=3)
        sim.drop_watches()
        snap = await run.until(lambda s: s.stale_since is not None, what="stale")
        assert snap.error is not None and "503" in snap.error
        assert one(snap, "shop/cart").images == ("cart:1",)        # rows keep their last state
        await run.until(lambda s: s.stale_since is None, timeout=20, what="recovered")


async def test_unreachable_api_from_the_start(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kc"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "x",
        "clusters": [{"name": "x", "cluster": {"server": "http://127.0.0.1:9"}}],
        "users": [{"name": "x", "user": {"token": "t"}}],
        "contexts": [{"name": "x", "context": {"cluster": "x", "user": "x"}}]}))
    settings = Settings(kubernetes=KubernetesSettings(enabled=True, kubeconfig=str(kubeconfig),
                                                      request_timeout=0.5))
    source = KubeSource(settings, tick=0.1)
    snaps: list[RolloutSnapshot] = []
    task = asyncio.create_task(source.run(snaps.append))
    deadline = time.monotonic() + 10
    while not (snaps and snaps[-1].error) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert snaps and snaps[-1].stale_since is not None
    assert "cannot reach the API server" in (snaps[-1].error or "")
    assert snaps[-1].namespaces == ("default",)     # the context names none


def test_context_and_namespaces_from_the_kubeconfig(sim: KubeSim) -> None:
    client = connect(settings_for(sim, namespaces=()))
    assert (client.context, client.namespaces) == ("deploytui-demo", ("shop",))
    client.close()
    with pytest.raises(SourceError, match=r"context 'nope' is not in the kubeconfig \(contexts: "
                                          r"deploytui-demo\)"):
        connect(settings_for(sim, context="nope"))


def test_many_namespaces_share_one_watch_per_kind(sim: KubeSim) -> None:
    for n in range(10):
        sim.add_deployment(f"team{n}", "api", image="api:1", replicas=1)
    sim.add_deployment("other", "api", image="api:1", replicas=1)
    settings = settings_for(sim, namespaces=tuple(f"team{n}" for n in range(10)))
    snap = read_once(settings)
    assert sorted(r.namespace for r in snap.rollouts) == [f"team{n}" for n in range(10)]
    assert read_once(settings_for(sim, namespaces=("*",))).find("other/api") is not None


async def test_snapshot_section_text_and_json(sim: KubeSim) -> None:
    sim.add_deployment("shop", "checkout", image="app:1.4.2", replicas=2)
    sim.add_deployment("shop", "cart", image="cart:1", replicas=1)
    settings = settings_for(sim)
    section = await snapshot_section(settings)
    assert section.configured and section.ok and section.error is None
    assert section.columns[:3] == ("namespace", "deployment", "phase")
    rows = {r["deployment"]: r for r in section.rows}
    assert rows["checkout"]["service"] == "prod/checkout" and rows["cart"]["service"] == "staging/cart"
    assert (rows["checkout"]["phase"], rows["checkout"]["version"], rows["checkout"]["ready"],
            rows["checkout"]["progress"]) == ("complete", "1.4.2", 2, "2/2/2 of 2")
    assert section.summary["deployments"] == 2 and section.summary["complete"] == 2
    doc = json.loads(render_json(await collect(settings), settings))
    assert doc["rollouts"]["rows"][0]["namespace"] == "shop"
    disabled = await snapshot_section(Settings())
    assert not disabled.configured


def test_make_source_only_when_enabled(sim: KubeSim) -> None:
    assert make_source(build_runtime(Settings(), journal=MemoryJournal(), with_sources=False)) is None
    rt = build_runtime(settings_for(sim), journal=MemoryJournal())
    assert isinstance(rt.sources["rollouts"], KubeSource)
    assert rt.extras["kube"] is rt.sources["rollouts"].handle
