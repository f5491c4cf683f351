"""Benchmark of the simulated Kubernetes API at fleet scale.

Starts a KubeSim with 2,000 deployments / 10,000 pods (settled), then measures with the official
``kubernetes`` client: listing every deployment and every pod, a kubectl-style Table list, one
controller pass over the whole fleet, the process RSS, and watch event rates (the initial state
of a watch, and live changes fanned out across threads). Prints a table.

    python3 benchmarks/bench_kube_api.py [--deployments 2000] [--pods-per-deployment 5]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import psutil
from kubernetes import client, config, watch

from deploytui.demo.kube import KubeSimThread
from deploytui.demo.kube.objects import new_event


def _timed(fn: Callable[[], object], repeat: int = 3) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deployments", type=int, default=2000)
    parser.add_argument("--pods-per-deployment", type=int, default=5)
    parser.add_argument("--live-events", type=int, default=5000)
    args = parser.parse_args()
    process = psutil.Process()
    rss_before = process.memory_info().rss
    rows: list[tuple[str, str]] = []

    with KubeSimThread(controller_interval=0.5) as sim, tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        namespaces = [f"team-{n}" for n in range(20)]
        for n in range(args.deployments):
            sim.add_deployment(namespaces[n % len(namespaces)], f"svc-{n:05d}", image=f"svc-{n}:1.0", replicas=args.pods_per_deployment)
        rows.append(("set-up (settled deployments + pods)", f"{time.perf_counter() - start:.2f} s"))
        pods_total = len(sim.list_objects("Pod"))
        rows.append(("objects", f"{args.deployments} deployments, {pods_total} pods"))
        rows.append(("RSS after set-up", f"{process.memory_info().rss / 2**20:.0f} MiB (+{(process.memory_info().rss - rss_before) / 2**20:.0f} MiB)"))

        api_client = config.new_client_from_config(config_file=str(sim.write_kubeconfig(Path(tmp) / "kubeconfig")))
        apps, core = client.AppsV1Api(api_client), client.CoreV1Api(api_client)
        seconds, result = _timed(apps.list_deployment_for_all_namespaces)
        rows.append((f"list all deployments ({len(result.items)}), official client", f"{seconds * 1000:.0f} ms"))  # type: ignore[attr-defined]
        seconds, result = _timed(core.list_pod_for_all_namespaces)
        rows.append((f"list all pods ({len(result.items)}), official client", f"{seconds * 1000:.0f} ms"))  # type: ignore[attr-defined]

        def raw(path: str, accept: str = "application/json") -> int:
            request = urllib.request.Request(f"{sim.url}{path}", headers={"Accept": accept})
            with urllib.request.urlopen(request, timeout=60) as response:  # loopback test server
                return len(response.read())

        seconds, size = _timed(lambda: raw("/api/v1/pods"))
        rows.append(("list all pods, raw JSON (server + transfer)", f"{seconds * 1000:.0f} ms, {size / 2**20:.1f} MiB"))
        seconds, size = _timed(lambda: raw("/api/v1/pods", "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"))
        rows.append(("list all pods as Table (kubectl get pods -A)", f"{seconds * 1000:.0f} ms, {size / 2**20:.1f} MiB"))
        seconds, _ = _timed(lambda: sim.call(sim.controller.tick), repeat=3)
        rows.append(("one controller pass over the fleet (steady)", f"{seconds * 1000:.0f} ms"))

        # Watch: the initial state of all pods streamed as ADDED events, decoded by the client.
        start = time.perf_counter()
        count = 0
        w = watch.Watch()
        for _ in w.stream(core.list_pod_for_all_namespaces, timeout_seconds=120):
            count += 1
            if count == pods_total:
                w.stop()
        seconds = time.perf_counter() - start
        rows.append((f"watch initial state ({count} pods), official client", f"{count / seconds:,.0f} events/s"))

        def raw_watch() -> int:
            lines = 0
            url = f"{sim.url}/api/v1/pods?watch=true&timeoutSeconds=120"
            with urllib.request.urlopen(url, timeout=120) as response:  # loopback test server
                for _ in response:
                    lines += 1
                    if lines == pods_total:
                        return lines
            return lines

        seconds, count = _timed(raw_watch, repeat=1)
        rows.append((f"watch initial state ({count} pods), raw lines", f"{count / seconds:,.0f} events/s"))  # type: ignore[operator]

        kubectl = shutil.which("kubectl")
        if kubectl:
            cmd = [kubectl, "--kubeconfig", str(sim.kubeconfig), "--cache-dir", str(Path(tmp) / "cache"), "get", "pods", "-A"]
            subprocess.run([*cmd[:5], "version"], capture_output=True, check=False, timeout=60)  # warm the discovery cache
            seconds, result = _timed(lambda: subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=120), repeat=1)
            lines = len(result.stdout.splitlines()) - 1  # type: ignore[attr-defined]
            rows.append((f"kubectl get pods -A ({lines} rows)", f"{seconds * 1000:.0f} ms"))

        # Live fan-out: events created from this thread, received by a raw watch connection.
        rv = core.list_namespaced_event("team-0", limit=1).metadata.resource_version
        received = threading.Event()
        got = 0

        def reader() -> None:
            nonlocal got
            url = f"{sim.url}/api/v1/namespaces/team-0/events?watch=true&resourceVersion={rv}&timeoutSeconds=120"
            with urllib.request.urlopen(url, timeout=120) as response:  # loopback test server
                for line in response:
                    if json.loads(line)["type"] == "ADDED":
                        got += 1
                        if got == args.live_events:
                            received.set()
                            return

        thread = threading.Thread(target=reader, daemon=True)
        thread.start()
        time.sleep(0.5)
        d = sim.get_object("Deployment", "team-0", "svc-00000")
        assert d is not None
        start = time.perf_counter()
        for n in range(args.live_events):
            event = new_event(d, reason="Bench", message=f"event {n}", type="Normal", component="bench", now=time.time())
            sim.store.create("events", "events", event)
        received.wait(120)
        seconds = time.perf_counter() - start
        rows.append((f"watch live changes ({got} events, cross-thread)", f"{got / seconds:,.0f} events/s"))
        rows.append(("RSS at the end", f"{process.memory_info().rss / 2**20:.0f} MiB"))
        api_client.close()

    width = max(len(name) for name, _ in rows)
    print(f"{'measure':<{width}}  value")
    print(f"{'-' * width}  {'-' * 30}")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
