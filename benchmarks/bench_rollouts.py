"""Benchmark: the rollouts source and pane against the simulated Kubernetes API at scale.

    python3 benchmarks/bench_rollouts.py [--deployments 2000] [--replicas 5] [--namespaces 20]
                                         [--events 20] [--only source|pane]

The simulated API runs in a child process (so its memory and CPU are not counted), populated
with settled deployments (default 2,000 deployments x 5 pods = 10,000 pods). Measured in this
process:

* start -> full model: from ``KubeSource.run`` until a snapshot holds every deployment
  (connect, list of Deployments / ReplicaSets / Pods, model build);
* RSS of this process once the model (and then the pane) is full;
* one watch event -> snapshot: a deployment is scaled through the API; the time until the
  source publishes a snapshot showing it, and the model build time of that batch;
* one watch event -> screen: the same with the console running headless, until the Rollouts
  pane's row shows it, and how long the pane's refresh took (target <= 50 ms, RSS <= 250 MB).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from deploytui.config import ConsoleSettings, KubernetesSettings, Settings
from deploytui.model import MemoryJournal


def _serve(conn: Any, deployments: int, replicas: int, namespaces: int, kubeconfig: str) -> None:
    from deploytui.demo.kube.thread import KubeSimThread

    with KubeSimThread(controller_interval=0.2, history_limit=200_000) as sim:
        sim.set_default_ready_seconds(0.2)
        started = time.perf_counter()
        for i in range(deployments):
            sim.add_deployment(f"team{i % namespaces:02d}", f"svc{i:05d}",
                               image=f"registry.local/svc{i:05d}:1.{i % 9}.0", replicas=replicas)
        populate = time.perf_counter() - started
        sim.write_kubeconfig(Path(kubeconfig), namespace="team00")
        conn.send(("ready", populate, sim.store.count("pods")))
        conn.recv()   # "stop"


def _settings(kubeconfig: str, namespaces: int) -> Settings:
    return Settings(
        console=ConsoleSettings(operator="bench@local"),
        kubernetes=KubernetesSettings(enabled=True, kubeconfig=kubeconfig, request_timeout=30.0,
                                      namespaces=tuple(f"team{n:02d}" for n in range(namespaces))))


def _rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


class Timed:
    """Wraps the source's apply+build step to record how long each batch took."""

    def __init__(self, source: Any) -> None:
        self.durations: list[float] = []
        inner = source._apply_build

        def timed(items: Any) -> Any:
            t = time.perf_counter()
            try:
                return inner(items)
            finally:
                self.durations.append(time.perf_counter() - t)

        source._apply_build = timed


def _scale(client: Any, key: str, replicas: int) -> None:
    ns, name = key.split("/")
    client.call("apps", "patch_namespaced_deployment_scale", name, ns,
                {"spec": {"replicas": replicas}}, _content_type="application/merge-patch+json")


async def bench_source(settings: Settings, deployments: int, events: int, replicas: int
                       ) -> dict[str, Any]:
    from deploytui.sources.kube import KubeSource
    from deploytui.sources.kube_watch import connect

    source = KubeSource(settings, MemoryJournal(), tick=1.0)
    timed = Timed(source)
    published: list[tuple[float, Any]] = []
    full = asyncio.Event()

    def publish(snap: Any) -> None:
        published.append((time.perf_counter(), snap))
        if snap.loaded and len(snap.rollouts) >= deployments:
            full.set()

    started = time.perf_counter()
    task = asyncio.create_task(source.run(publish))
    await asyncio.wait_for(full.wait(), timeout=600)
    to_full = time.perf_counter() - started
    full_build = max(timed.durations)
    rss = _rss_mb()
    client = await asyncio.to_thread(connect, settings)
    latencies, builds = [], []
    for i in range(events):
        key = published[-1][1].rollouts[(i * 97) % deployments].key
        want = replicas + 1 + (i % 3)
        mark = len(published)
        n_builds = len(timed.durations)
        sent = time.perf_counter()
        await asyncio.to_thread(_scale, client, key, want)
        while True:
            hit = next((t for t, s in published[mark:]
                        if (r := s.find(key)) is not None and r.desired == want), None)
            if hit is not None:
                break
            await asyncio.sleep(0.001)
        latencies.append(hit - sent)
        builds.extend(timed.durations[n_builds:n_builds + 1])
        await asyncio.sleep(0.3)   # let the rollout settle between samples
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    client.close()
    return {"to_full": to_full, "full_build": full_build, "rss": rss, "latencies": latencies,
            "builds": builds}


async def bench_pane(settings: Settings, deployments: int, events: int, replicas: int
                     ) -> dict[str, Any]:
    from deploytui.runtime import build_runtime
    from deploytui.sources.kube import make_source
    from deploytui.sources.kube_watch import connect
    from deploytui.ui.app import DeployApp
    from deploytui.ui.panes.rollouts import RolloutsPane

    runtime = build_runtime(settings, journal=MemoryJournal(), with_sources=False)
    source = make_source(runtime)
    assert source is not None
    runtime.sources["rollouts"] = source
    app = DeployApp(runtime)
    refreshes: list[tuple[float, float, Any]] = []   # (end time, duration, snapshot)
    started = time.perf_counter()
    async with app.run_test(headless=True, size=(200, 50)) as pilot:
        pane = app.query_one(RolloutsPane)
        inner = pane.update_snapshot

        def timed_update(snapshot: Any) -> None:
            t = time.perf_counter()
            inner(snapshot)
            end = time.perf_counter()
            refreshes.append((end, end - t, snapshot))

        pane.update_snapshot = timed_update  # type: ignore[method-assign]
        while pane.table.row_count < deployments or not getattr(pane.snapshot, "loaded", False):
            await pilot.pause(0.02)
            if time.perf_counter() - started > 600:
                raise SystemExit("the pane never filled")
        to_full = time.perf_counter() - started
        full_refresh = max(d for _, d, _ in refreshes)
        rss = _rss_mb()
        client = await asyncio.to_thread(connect, settings)
        latencies, durations = [], []
        for i in range(events):
            key = pane.table.rows[(i * 89) % deployments].key
            want = replicas + 4 + (i % 3)
            mark = len(refreshes)
            sent = time.perf_counter()
            await asyncio.to_thread(_scale, client, key, want)
            while True:
                hit = next(((end, d) for end, d, s in refreshes[mark:]
                            if (r := s.find(key)) is not None and r.desired == want), None)
                if hit is not None:
                    break
                await pilot.pause(0.001)
            latencies.append(hit[0] - sent)
            durations.append(hit[1])
            await pilot.pause(0.3)
        steady = [d for _, d, _ in refreshes[-50:]]
        client.close()
    return {"to_full": to_full, "full_refresh": full_refresh, "rss": rss,
            "latencies": latencies, "durations": durations, "steady": steady}


def _ms(values: list[float]) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return f"median {statistics.median(values) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deployments", type=int, default=2000)
    parser.add_argument("--replicas", type=int, default=5)
    parser.add_argument("--namespaces", type=int, default=20)
    parser.add_argument("--events", type=int, default=20)
    parser.add_argument("--only", choices=("source", "pane"), default=None,
                        help="run one part (each alone gives a clean RSS figure)")
    args = parser.parse_args()

    kubeconfig = str(Path(tempfile.mkdtemp(prefix="bench-rollouts-")) / "kubeconfig")
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_serve, args=(child, args.deployments, args.replicas,
                                            args.namespaces, kubeconfig), daemon=True)
    proc.start()
    _, populate, pods = parent.recv()
    settings = _settings(kubeconfig, args.namespaces)
    rss_start = _rss_mb()
    try:
        src = None if args.only == "pane" else asyncio.run(
            bench_source(settings, args.deployments, args.events, args.replicas))
        pane = None if args.only == "source" else asyncio.run(
            bench_pane(settings, args.deployments, args.events, args.replicas))
    finally:
        parent.send("stop")
        proc.join(timeout=20)

    rows = [
        ("fleet", f"{args.deployments} deployments, {pods} pods, {args.namespaces} namespaces "
                  f"(simulated API populated in {populate:.1f} s, separate process)"),
        ("RSS at start (this process)", f"{rss_start:.0f} MB"),
    ]
    if src is not None:
        rows += [
            ("start -> full model", f"{src['to_full']:.2f} s (largest build "
                                    f"{src['full_build'] * 1000:.0f} ms)"),
            ("RSS with full model", f"{src['rss']:.0f} MB"),
            ("watch event -> snapshot", _ms(src["latencies"])),
            ("  model build of that batch", _ms(src["builds"])),
        ]
    if pane is not None:
        rows += [
            ("console start -> full pane", f"{pane['to_full']:.2f} s (largest refresh "
                                           f"{pane['full_refresh'] * 1000:.0f} ms)"),
            ("RSS with console + full pane", f"{pane['rss']:.0f} MB"
                                             + ("" if args.only else " (after the source run)")),
            ("watch event -> pane row", _ms(pane["latencies"])),
            ("  pane refresh for that event", _ms(pane["durations"])),
            ("  pane refresh, last 50", _ms(pane["steady"])),
        ]
    width = max(len(k) for k, _ in rows)
    print(f"{'measure'.ljust(width)}  value")
    print(f"{'-' * width}  {'-' * 60}")
    for k, v in rows:
        print(f"{k.ljust(width)}  {v}")


if __name__ == "__main__":
    main()
