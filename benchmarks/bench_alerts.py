"""How fast is the alert feed at scale?

Part 1 (in process): 1,000 active Alertmanager alerts (with silences) and 5,000 services'
metrics. Times the pieces of one feed refresh — merge + group, the threshold rules over 5,000
services, the pane's rows, and the pane update in a headless console — against the 50 ms budget.

Part 2 (real servers): the simulated fleet (``deploytui demo --fleet-only``, a subprocess) with
``--services`` services, a real Prometheus scraping its ``/metrics/all`` and a real Alertmanager
holding 1,000 posted alerts. Times one metrics query cycle (every fleet-wide query, concurrently)
and one full alerts poll (metrics + rules + Alertmanager alerts and silences + merge).

    python3 benchmarks/bench_alerts.py [--services 5000] [--alerts 1000] [--repeat 7]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from deploytui.config import (  # noqa: E402
    AlertmanagerSettings,
    ConsoleSettings,
    PrometheusSettings,
    RulesSettings,
    Settings,
)
from deploytui.model import MemoryJournal  # noqa: E402
from deploytui.rules import RuleEngine  # noqa: E402
from deploytui.sources.alertmanager import (  # noqa: E402
    AlertmanagerClient,
    AmAlert,
    Silence,
    format_ts,
)
from deploytui.sources.alerts import (  # noqa: E402
    AlertsSnapshot,
    AlertsSource,
    build_rows,
    merge_alerts,
)
from deploytui.sources.metrics import METRIC_NAMES  # noqa: E402
from deploytui.sources.prometheus import PrometheusMetrics  # noqa: E402

ENVS = ("prod", "staging", "dev")
BUDGET_MS = 50.0


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    """(median ms, max ms, last result)."""
    samples = []
    result = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        samples.append((time.perf_counter() - t0) * 1000.0)
    return statistics.median(samples), max(samples), result


def synthetic_alerts(n: int, services: int, now: float, rng: random.Random) -> list[dict[str, Any]]:
    names = ("HighErrorRate", "HighLatency", "PodCrashLooping", "DiskFilling", "CertExpiring",
             "QueueBacklog", "TargetDown", "MemoryPressure")
    out = []
    for i in range(n):
        svc = f"svc-{rng.randrange(services):04d}"
        out.append({
            "labels": {"alertname": names[i % len(names)], "service": svc,
                       "env": ENVS[i % 3], "severity": ("critical", "warning", "info")[i % 3],
                       "pod": f"{svc}-{i % 5}", "instance": f"10.0.{i // 250}.{i % 250}:8080"},
            "annotations": {"summary": f"{svc} is not well ({i})"},
            "startsAt": format_ts(now - rng.uniform(10, 20000)),
            "endsAt": format_ts(now + 3600),
            "generatorURL": "http://prom/graph?g0.expr=up+%3D%3D+0",
        })
    return out


def part_one(args: argparse.Namespace) -> list[tuple[str, str]]:
    rng = random.Random(1)
    now = time.time()
    raw = synthetic_alerts(args.alerts, args.services, now, rng)
    am_alerts = [AmAlert.from_json({**a, "fingerprint": f"{i:016x}",
                                    "status": {"state": "active", "silencedBy": [],
                                               "inhibitedBy": []}})
                 for i, a in enumerate(raw)]
    # every 10th alert acknowledged by a silence
    silences = []
    for i, a in enumerate(am_alerts[::10]):
        sid = f"sil-{i}"
        silences.append(Silence(sid, (), now - 100, now + 3600, "ops@host", "ack", "active"))
        am_alerts[i * 10] = AmAlert(a.fingerprint, a.labels, a.annotations, a.starts_at,
                                    a.ends_at, a.updated_at, "suppressed", (sid,))
    # 5,000 services' metrics as Prometheus would answer (one result per metric)
    settings = Settings(prometheus=PrometheusSettings(url="http://127.0.0.1:1"),
                        rules=RulesSettings(for_seconds=0))
    pm = PrometheusMetrics(settings)
    # a realistic fleet: 3 % of services above some threshold, the rest quiet
    typical = {"error_rate_pct": 0.5, "p95_s": 0.3, "memory_pct": 50.0, "restarts_per_min": 0.0}
    elevated = {"error_rate_pct": 12.0, "p95_s": 3.0, "memory_pct": 93.0, "restarts_per_min": 1.0}

    def value(m: str, i: int) -> str:
        hot = i % 33 == 0
        base = (elevated if hot else typical).get(m, 1.0)
        return str(base * rng.uniform(0.8, 1.1))

    results = {m: [{"metric": {"service": f"svc-{i:04d}", "env": ENVS[i % 3]},
                    "value": [now, value(m, i)]}
                   for i in range(args.services)] for m in pm.queries}
    build_ms, build_max, metrics = timed(lambda: pm.build(results), args.repeat)
    engine = RuleEngine.from_settings(settings.rules)
    rule_metrics = [r.metric for r in engine.rules]

    def observe() -> int:
        samples = ((sm.service, sm.env, {m: sm.value(m) for m in rule_metrics})
                   for sm in metrics.services.values())
        engine.observe(time.time(), samples)
        return len(engine.alerts())

    rules_ms, rules_max, n_rule_alerts = timed(observe, args.repeat)
    rule_alerts = engine.alerts()
    merge_ms, merge_max, feed = timed(
        lambda: merge_alerts(am_alerts, silences, rule_alerts, {}, now), args.repeat)
    am_only = merge_alerts(am_alerts, silences, [], {}, now)
    rows_ms, rows_max, _ = timed(lambda: build_rows(am_only, now, {"P1": 15, "P2": 60}),
                                 args.repeat)
    pane_ms, pane_max, pane_rows = asyncio.run(_pane_update(am_only, feed, metrics, args.repeat))
    return [
        ("synthetic: Alertmanager alerts", f"{len(am_alerts)} -> {len(am_only)} feed rows "
                                           f"({len(silences)} silenced)"),
        ("synthetic: services with metrics", f"{len(metrics.services)} x {len(METRIC_NAMES)} figures"),
        ("metrics snapshot from query results", f"{build_ms:.1f} ms (max {build_max:.1f})"),
        ("threshold rules over every service", f"{rules_ms:.1f} ms (max {rules_max:.1f}); "
                                               f"{n_rule_alerts} rule alerts"),
        ("merge + group + dedup (AM + rule alerts)", f"{merge_ms:.1f} ms (max {merge_max:.1f}); "
                                                     f"{len(feed)} rows"),
        ("feed rows (1,000 alerts)", f"{rows_ms:.1f} ms (max {rows_max:.1f})"),
        ("ONE FEED REFRESH: rows + pane update", f"{pane_ms:.1f} ms (max {pane_max:.1f}); "
                                                 f"{pane_rows} rows; budget {BUDGET_MS:.0f} ms "
                                                 f"{'OK' if pane_ms <= BUDGET_MS else 'OVER'}"),
    ]


async def _pane_update(alerts: Any, feed: Any, metrics: Any, repeat: int
                       ) -> tuple[float, float, int]:
    from deploytui.runtime import build_runtime
    from deploytui.ui.app import DeployApp
    from deploytui.ui.panes.alerts import AlertsPane

    settings = Settings(console=ConsoleSettings(refresh_interval=3600),
                        alertmanager=AlertmanagerSettings(url="http://127.0.0.1:1"))
    rt = build_runtime(settings, journal=MemoryJournal(), with_sources=False)
    rt.sources["alerts"] = object()
    app = DeployApp(rt, autostart_sources=False)
    samples: list[float] = []
    rows = 0
    async with app.run_test(size=(200, 50)) as pilot:
        console = app.get_screen_console()
        assert console is not None
        pane = console.panes["alerts"]
        assert isinstance(pane, AlertsPane)
        base = time.time()
        for i in range(repeat + 1):
            # every refresh is a new poll: ages move on, so every visible row changes
            snap = AlertsSnapshot(alerts=tuple(alerts), metrics=metrics, counts={"critical": 1},
                                  response_minutes={"P1": 15, "P2": 60}, taken_at=base + i)
            t0 = time.perf_counter()
            pane.update_snapshot(snap)
            elapsed = (time.perf_counter() - t0) * 1000.0
            await pilot.pause()
            if i:  # the first includes one-time layout work
                samples.append(elapsed)
            rows = pane.table.row_count
    return statistics.median(samples), max(samples), rows


def _read_until(proc: subprocess.Popen[str], prefix: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise SystemExit("the fleet exited early")
        if line.startswith(prefix):
            return line[len(prefix):].strip()
    raise SystemExit(f"no {prefix!r} line from the fleet within {timeout} s")


def part_two(args: argparse.Namespace) -> list[tuple[str, str]]:
    from tests.promstack import PromStack, alertmanager_api, wait_for

    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
    fleet = subprocess.Popen(
        [sys.executable, "-m", "deploytui", "demo", "--fleet-only", "--services",
         str(args.services), "--scenario", "steady"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, cwd=REPO,
        start_new_session=True)
    try:
        base = _read_until(fleet, "services:", 180).split()[0]
        config_path = Path(_read_until(fleet, "config:", 60))
        scrape_rows = _scrape_cycle(config_path, args.repeat)
        interval = max(1.0, args.services / 1000.0)
        with PromStack(targets=[f"{base}/metrics/all"], rules="",
                       scrape_interval=interval) as stack:
            now = time.time()
            raw = synthetic_alerts(args.alerts, args.services, now, random.Random(2))
            t0 = time.perf_counter()
            for i in range(0, len(raw), 200):
                alertmanager_api(stack.alertmanager_url, "/alerts", method="POST",
                                 body=raw[i:i + 200])
            post_s = time.perf_counter() - t0
            am = AlertmanagerClient(AlertmanagerSettings(url=stack.alertmanager_url, timeout=30))
            wait_for(lambda: len(am.alerts()) >= args.alerts, timeout=60, what="alerts in AM")
            settings = Settings(
                console=ConsoleSettings(refresh_interval=3600),
                prometheus=PrometheusSettings(url=stack.prometheus_url, timeout=60),
                alertmanager=AlertmanagerSettings(url=stack.alertmanager_url, timeout=30))
            pm = PrometheusMetrics(settings)
            wait_for(lambda: len(asyncio.run(pm.fetch()).services) >= args.services,
                     timeout=180, interval=1.0, what="every service in Prometheus")
            wait_for(lambda: _rates_ready(pm), timeout=180, interval=1.0,
                     what="two scrapes (rates)")
            cycle, cycle_max, snap = timed(lambda: asyncio.run(pm.fetch()), args.repeat)
            per_query = []
            for metric, expr in pm.queries.items():
                q_ms, _, _ = timed(lambda e=expr: pm.client.query(e), 3)
                per_query.append((metric, q_ms))
            source = AlertsSource(settings, metrics=pm, alertmanager=am)
            poll_ms, poll_max, feed = timed(lambda: asyncio.run(source.poll()), args.repeat)
            am_ms, am_max, _ = timed(am.alerts, args.repeat)
            states: dict[str, int] = {}
            for sm in snap.services.values():
                for v in sm.values.values():
                    states[v.state] = states.get(v.state, 0) + 1
            pm.close()
            am.close()
    finally:
        fleet.send_signal(signal.SIGINT)
        try:
            fleet.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(fleet.pid, signal.SIGKILL)
            fleet.wait()
    slowest = max(per_query, key=lambda x: x[1])
    return [*scrape_rows,
        ("real: fleet services / Prometheus scrape interval",
         f"{args.services} / {interval:g} s"),
        ("real: metrics query cycle (8 queries, concurrent)",
         f"{cycle:.0f} ms (max {cycle_max:.0f}); {len(snap.services)} services; "
         + ", ".join(f"{k} {v}" for k, v in sorted(states.items()))),
        ("real: slowest single query", f"{slowest[0]} {slowest[1]:.0f} ms"),
        ("real: Alertmanager GET /api/v2/alerts", f"{am_ms:.0f} ms (max {am_max:.0f}); "
                                                  f"{args.alerts} alerts posted in {post_s:.1f} s"),
        ("real: full alerts poll (metrics+rules+AM+merge)",
         f"{poll_ms:.0f} ms (max {poll_max:.0f}); {len(feed.alerts)} feed rows"),
    ]


def _scrape_cycle(config_path: Path, repeat: int) -> list[tuple[str, str]]:
    """The direct scrape (no Prometheus) of every service's own metrics_url."""
    from deploytui.config import load_config
    from deploytui.sources.scrape import ScrapeMetrics

    settings = load_config(config_path)
    scraper = ScrapeMetrics(settings)

    async def cycles() -> tuple[list[float], Any]:
        samples = []
        snap = None
        try:
            for _ in range(max(2, min(repeat, 4))):
                t0 = time.perf_counter()
                snap = await scraper.fetch()
                samples.append((time.perf_counter() - t0) * 1000.0)
        finally:
            await scraper.aclose()
        return samples, snap

    samples, snap = asyncio.run(cycles())
    ok = sum(1 for sm in snap.services.values() if sm.get("error_rate_pct").state in ("ok", "nan"))
    return [("real: direct scrape cycle (no Prometheus)",
             f"{statistics.median(samples[1:]):.0f} ms (first {samples[0]:.0f}); "
             f"{len(scraper.targets)} URLs, {ok} services with rates")]


def _rates_ready(pm: PrometheusMetrics) -> bool:
    snap = asyncio.run(pm.fetch())
    ok = sum(1 for sm in snap.services.values() if sm.get("error_rate_pct").state in ("ok", "nan"))
    return ok >= len(snap.services) * 0.9


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=5000)
    parser.add_argument("--alerts", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--no-servers", action="store_true", help="only the in-process part")
    args = parser.parse_args()
    rows = part_one(args)
    if not args.no_servers:
        rows += part_two(args)
    width = max(len(k) for k, _ in rows)
    print(f"{'measure':<{width}}  value")
    print(f"{'-' * width}  {'-' * 40}")
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
