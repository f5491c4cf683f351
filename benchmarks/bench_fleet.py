"""How fast does the simulated fleet serve 5,000 services from one process?

Starts ``deploytui demo --fleet-only --services 5000 --scenario steady`` in a subprocess, then
hits random services' ``/health`` from a separate client process (aiohttp, bounded
concurrency) for ``--duration`` seconds, and prints requests/s, latency percentiles and the
fleet's CPU use. Also times one ``/metrics/all`` scrape of the whole fleet.

    python3 benchmarks/bench_fleet.py [--services 5000] [--duration 10] [--concurrency 64]
                                      [--clients 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent


async def _client(urls: list[str], duration: float, concurrency: int, seed: int) -> dict[str, float]:
    import aiohttp

    rng = random.Random(seed)
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + duration
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                url = rng.choice(urls)
                t0 = time.perf_counter()
                try:
                    async with session.get(url) as resp:
                        await resp.read()
                        if resp.status >= 400:
                            errors += 1
                except (TimeoutError, aiohttp.ClientError):
                    errors += 1
                latencies.append(time.perf_counter() - t0)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000.0

    return {"requests": len(latencies), "errors": errors, "elapsed": elapsed,
            "p50_ms": pct(0.50), "p95_ms": pct(0.95), "p99_ms": pct(0.99)}


def client_main(url_file: str, duration: float, concurrency: int) -> None:
    urls = json.loads(Path(url_file).read_text())
    print(json.dumps(asyncio.run(_client(urls, duration, concurrency, seed=1))))


def _read_until(proc: subprocess.Popen[str], prefix: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise SystemExit(f"the fleet exited early: {proc.stderr.read() if proc.stderr else ''}")
        if line.startswith(prefix):
            return line[len(prefix):].strip()
    raise SystemExit(f"no {prefix!r} line from the fleet within {timeout} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=5000)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=64, help="per client process")
    parser.add_argument("--clients", type=int, default=1, help="client processes")
    parser.add_argument("--client", metavar="URL_FILE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        client_main(args.client, args.duration, args.concurrency)
        return 0

    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
    t0 = time.perf_counter()
    fleet = subprocess.Popen(
        [sys.executable, "-m", "deploytui", "demo", "--fleet-only", "--services",
         str(args.services), "--scenario", "steady"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO,
        start_new_session=True)
    try:
        base = _read_until(fleet, "services:", 120).split()[0]
        config = Path(_read_until(fleet, "config:", 30))
        startup = time.perf_counter() - t0
        services = tomllib.loads(config.read_text())["services"]
        urls = [s["health_url"] for s in services]
        url_file = config.parent / "bench-urls.json"
        url_file.write_text(json.dumps(urls))
        ports = {u.split("/")[2] for u in urls}

        import httpx

        t1 = time.perf_counter()
        scrape = httpx.get(f"{base}/metrics/all", timeout=60)
        scrape_s = time.perf_counter() - t1

        proc = psutil.Process(fleet.pid)
        cpu0 = proc.cpu_times()
        w0 = time.perf_counter()
        clients = [subprocess.Popen(
            [sys.executable, __file__, "--client", str(url_file), "--duration",
             str(args.duration), "--concurrency", str(args.concurrency)],
            stdout=subprocess.PIPE, text=True, env=env) for _ in range(args.clients)]
        outputs = [json.loads(c.communicate()[0]) for c in clients]
        wall = time.perf_counter() - w0
        cpu1 = proc.cpu_times()
        rss_mb = proc.memory_info().rss / 1e6
        result = {
            "requests": sum(o["requests"] for o in outputs),
            "errors": sum(o["errors"] for o in outputs),
            "elapsed": max(o["elapsed"] for o in outputs),
            # percentiles of the first client (each samples the same distribution)
            **{k: outputs[0][k] for k in ("p50_ms", "p95_ms", "p99_ms")},
        }
        fleet_cpu = (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / wall * 100.0
    finally:
        fleet.send_signal(signal.SIGINT)
        try:
            code = fleet.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(fleet.pid, signal.SIGKILL)
            code = fleet.wait()

    rows = [
        ("services", f"{len(urls)}"),
        ("listening sockets for them", f"{len(ports)}"),
        ("fleet start-up (to config written)", f"{startup:.2f} s"),
        ("fleet RSS", f"{rss_mb:.0f} MB"),
        ("/metrics/all scrape", f"{scrape_s * 1000:.0f} ms, {len(scrape.content) / 1e6:.1f} MB"),
        ("client processes x concurrency", f"{args.clients} x {args.concurrency}"),
        ("requests", f"{result['requests']} ({result['errors']} errors)"),
        ("requests/s", f"{result['requests'] / result['elapsed']:.0f}"),
        ("latency p50", f"{result['p50_ms']:.1f} ms"),
        ("latency p95", f"{result['p95_ms']:.1f} ms"),
        ("latency p99", f"{result['p99_ms']:.1f} ms"),
        ("fleet CPU during load", f"{fleet_cpu:.0f} % of one core"),
        ("fleet CPU per request",
         f"{fleet_cpu / 100.0 * result['elapsed'] / max(result['requests'], 1) * 1e6:.0f} us"),
        ("fleet exit code after SIGINT", f"{code}"),
    ]
    width = max(len(k) for k, _ in rows)
    print(f"{'measure':<{width}}  value")
    print(f"{'-' * width}  {'-' * 24}")
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
