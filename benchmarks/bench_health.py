"""Health polling and the health pane at fleet scale. Prints a table; asserts nothing.

    python3 benchmarks/bench_health.py [--services 5000] [--sweeps 3] [--skip-pane]

1. Starts the simulated fleet in a subprocess (``deploytui demo --fleet-only --services N
   --no-kubernetes``; about 5 ms latency per endpoint) and polls every service's health
   endpoint with each transport: CPU seconds per sweep (this process only; the fleet runs in its
   own) and sweep wall time, after one warm-up sweep that opens the pooled connections.
2. Runs the console headless with only the health pane fed: the longest UI stall while the first
   5,000 rows arrive, the pane refresh when 50 of 5,000 rows change, and the rows repainted when
   nothing changes.

Targets (issue 4): a sweep of 5,000 every 5 s at <= 25 % of one core; refresh <= 50 ms; no stall
over 100 ms; a steady fleet repaints nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from statistics import median
from typing import Any

from deploytui.config import ConsoleSettings, Settings, load_config
from deploytui.sources.health import HealthSnapshot, HealthSource

INTERVAL = 5.0


def start_fleet(services: int) -> tuple[subprocess.Popen[str], Path]:
    cmd = [sys.executable, "-m", "deploytui", "demo", "--fleet-only", "--services", str(services),
           "--no-kubernetes"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        m = re.match(r"config: (.+)$", line.strip())
        if m:
            return proc, Path(m.group(1))
    proc.kill()
    raise SystemExit("the simulated fleet did not start (no 'config:' line)")


def stop_fleet(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


def fleet_settings(config: Path) -> Settings:
    """The fleet's config, one endpoint per service (health only), polled every 5 s."""
    s = load_config(config)
    services = tuple(dataclasses.replace(x, live_url="", ready_url="") for x in s.services)
    return dataclasses.replace(s, services=services,
                               console=ConsoleSettings(refresh_interval=INTERVAL))


async def measure_transport(settings: Settings, transport: str, sweeps: int) -> dict[str, Any]:
    source = HealthSource(settings, transport=transport)
    try:
        await source.sweep()  # warm-up: opens the pool
        cpu, wall = [], []
        snap: HealthSnapshot | None = None
        snaps: list[HealthSnapshot] = []
        for _ in range(sweeps):
            c0, w0 = time.process_time(), time.perf_counter()
            snap = await source.sweep()
            snaps.append(snap)
            cpu.append(time.process_time() - c0)
            wall.append(time.perf_counter() - w0)
            await asyncio.sleep(0.5)
        assert snap is not None
        counts = snap.counts()
    finally:
        await source.aclose()
    best_cpu = median(cpu)
    return {"transport": transport, "cpu_s": best_cpu, "wall_s": median(wall),
            "core_pct": 100.0 * best_cpu / INTERVAL, "per_poll_ms": 1000 * best_cpu / len(snap.reports),
            "counts": counts, "snapshots": snaps}


def table(title: str, header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    print(f"\n{title}")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))


class GcMeter:
    """Longest garbage-collector pause (any generation) while it runs."""

    def __init__(self) -> None:
        self.worst = 0.0
        self._t0 = 0.0

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._t0 = time.perf_counter()
        else:
            self.worst = max(self.worst, time.perf_counter() - self._t0)

    def __enter__(self) -> GcMeter:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._callback)


class StallMeter:
    """Longest gap between ticks of a 5 ms timer on the UI loop (a stall blocks the ticks)."""

    def __init__(self) -> None:
        self.worst = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            self.worst = max(self.worst, now - last - 0.005)
            last = now

    def start(self) -> None:
        self.worst = 0.0
        self._task = asyncio.get_running_loop().create_task(self._tick())

    def stop(self) -> float:
        if self._task is not None:
            self._task.cancel()
        return self.worst


async def bench_pane(settings: Settings, snapshots: list[HealthSnapshot]) -> list[list[str]]:
    from deploytui.ui.app import make_app
    from deploytui.ui.panes.health import HealthPane

    first = snapshots[-1]
    n = len(first.reports)
    # 50 services change state (they move to the top: worst first).
    changed = dataclasses.replace(first, reports=tuple(
        dataclasses.replace(r, state="degraded", reason="bench: slow") if i % (n // 50) == 0
        else r for i, r in enumerate(first.reports)))
    n_changed = sum(1 for a, b in zip(first.reports, changed.reports, strict=True) if a != b)
    # A steady fleet: everything a poll moves (last latency, uptime, history), nothing shown.
    steady = dataclasses.replace(changed, reports=tuple(
        dataclasses.replace(r, latency_ms=(r.latency_ms or 0) + 0.7, uptime_s=(r.uptime_s or 0) + 5,
                            latency_history=(*r.latency_history[1:], 5.0))
        for r in changed.reports))
    app = make_app(settings, autostart_sources=False, with_sources=False)
    rows: list[list[str]] = []
    async with app.run_test(size=(200, 50)) as pilot:
        await pilot.pause()
        pane = app.screen.query_one(HealthPane)
        gc.freeze()  # as the console does once its sources are built (DeployApp._sources_ready)
        meter = StallMeter()
        meter.start()
        with GcMeter() as gcm:
            t0, c0 = time.perf_counter(), time.process_time()
            app.publish("health", first)
            while pane.table.row_count < n:
                await asyncio.sleep(0.001)
            first_arrival, first_cpu = time.perf_counter() - t0, time.process_time() - c0
            await pilot.pause(0.3)
        stall = meter.stop()
        rows.append([f"first {n} rows arrive: longest UI stall",
                     f"{stall * 1000:.1f} ms (longest GC pause {gcm.worst * 1000:.1f} ms)",
                     "<= 100 ms"])
        rows.append([f"first {n} rows arrive: until all are in the table",
                     f"{first_arrival * 1000:.1f} ms (cpu {first_cpu * 1000:.1f})", ""])

        times, cpus, paints = [], [], []
        for snap in (changed, first) * 5:
            repaints = pane.table.repaints
            t0, c0 = time.perf_counter(), time.process_time()
            pane.update_snapshot(snap)
            times.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
            await pilot.pause()
            paints.append(time.perf_counter() - t0)
            assert pane.table.repaints > repaints
        rows.append([f"refresh, {n_changed} of {n} rows changed: update_snapshot",
                     f"{median(times) * 1000:.1f} ms (cpu {median(cpus) * 1000:.1f}, "
                     f"max {max(times) * 1000:.1f})", "<= 50 ms"])
        rows.append([f"refresh, {n_changed} of {n} rows changed: update + next frame",
                     f"{median(paints) * 1000:.1f} ms", ""])

        pane.update_snapshot(changed)
        await pilot.pause()
        repaints, builds = pane.table.repaints, pane.row_builds
        c0 = time.process_time()
        pane.update_snapshot(steady)
        steady_time = time.process_time() - c0
        await pilot.pause()
        rows.append(["steady fleet: rows repainted / rebuilt",
                     f"{pane.table.repaints - repaints} / {pane.row_builds - builds} "
                     f"(cpu {steady_time * 1000:.1f} ms)", "0"])
        if len(snapshots) >= 2:
            a, b = snapshots[-2], snapshots[-1]
            pane.update_snapshot(a)
            await pilot.pause()
            repaints, builds = pane.table.repaints, pane.row_builds
            pane.update_snapshot(b)
            await pilot.pause()
            rows.append(["two real sweeps of the steady fleet: rows repainted / rebuilt",
                         f"{pane.table.repaints - repaints} / {pane.row_builds - builds}",
                         "(p95 moving)"])
    return rows


def measure_in_process(args: argparse.Namespace) -> int:
    """Child process: one transport (and, with --pane, the pane); prints one JSON line."""
    settings = fleet_settings(Path(args.config))
    result = asyncio.run(measure_transport(settings, args.measure, args.sweeps))
    out = {k: v for k, v in result.items() if k != "snapshots"}
    if args.pane:
        snapshots = result["snapshots"][-2:]
        del result
        gc.collect()
        out["pane"] = asyncio.run(bench_pane(settings, snapshots))
    print("RESULT " + json.dumps(out), flush=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=5000)
    parser.add_argument("--sweeps", type=int, default=3)
    parser.add_argument("--transports", default="httpx,aiohttp")
    parser.add_argument("--skip-pane", action="store_true")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    parser.add_argument("--pane", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        return measure_in_process(args)

    proc, config = start_fleet(args.services)
    transports = args.transports.split(",")
    results = []
    try:
        fleet = load_config(config)
        n, concurrency = len(fleet.services), fleet.health.concurrency
        for transport in transports:
            # Each transport in a fresh process: objects left by one must not slow the other.
            cmd = [sys.executable, __file__, "--measure", transport, "--config", str(config),
                   "--sweeps", str(args.sweeps)]
            # The pane is measured with the default transport's sweeps (all healthy there).
            pane_transport = "aiohttp" if "aiohttp" in transports else transports[-1]
            if transport == pane_transport and not args.skip_pane:
                cmd.append("--pane")
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
            lines = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
            if not lines:
                print(done.stdout, done.stderr, file=sys.stderr)
                raise SystemExit(f"measuring {transport} failed")
            results.append(json.loads(lines[-1][len("RESULT "):]))
    finally:
        stop_fleet(proc)
    rows = [[r["transport"], f"{n}", f"{r['cpu_s']:.3f}", f"{r['wall_s']:.3f}",
             f"{r['per_poll_ms']:.3f}", f"{r['core_pct']:.1f} %",
             " ".join(f"{k}={v}" for k, v in r["counts"].items())] for r in results]
    table(f"Health sweep against the simulated fleet (median of {args.sweeps}, concurrency "
          f"{concurrency}, "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f})",
          ["transport", "endpoints", "cpu s/sweep", "sweep s", "cpu ms/poll",
           "core @5s", "states"], rows)
    for r in results:
        if "pane" in r:
            table(f"Health pane, headless at 200x50 (sweeps of the {r['transport']} transport)",
                  ["measure", "value", "target"], r["pane"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
