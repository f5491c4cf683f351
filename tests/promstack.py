"""Real Prometheus and Alertmanager for tests (and the benchmark).

    with PromStack(targets=[fleet.metrics_all_url], rules=TEST_RULES) as stack:
        stack.prometheus.url, stack.alertmanager.url
        stack.wait_for(lambda: ..., timeout=30, what="the rule to fire")

Each process listens on 127.0.0.1 on a free port, keeps its data in a temp dir, runs with
``--cluster.listen-address=`` (no gossip), a 1 s scrape and evaluation interval and
``--rules.alert.resend-delay=1s``; Prometheus sends its alerts to the stack's Alertmanager.
Readiness is awaited on ``/-/ready`` with a deadline; ``stop()`` terminates (then kills) both
and checks that no process is left. Test modules wrap a stack in a module-scoped fixture.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import urlsplit

from tests.conftest import free_port, require_binary

__all__ = [
    "ALERTMANAGER_BIN",
    "PROMETHEUS_BIN",
    "TEST_RULES",
    "PromProcess",
    "PromStack",
    "alertmanager_api",
    "start_alertmanager",
    "start_prometheus",
    "wait_for",
]

PROMETHEUS_BIN = "/usr/bin/prometheus"
ALERTMANAGER_BIN = "/usr/bin/prometheus-alertmanager"

T = TypeVar("T")

#: Prometheus alerting rules over the simulated fleet's metrics (short windows: tests are short).
TEST_RULES = """
groups:
  - name: deploytui-tests
    rules:
      - alert: ServiceErrorRateHigh
        expr: >
          sum by (service, env) (rate(http_requests_total{status=~"5.."}[15s]))
          / sum by (service, env) (rate(http_requests_total[15s])) * 100 > 20
        for: 0s
        labels:
          severity: critical
          team: tests
        annotations:
          summary: "{{ $labels.service }} in {{ $labels.env }} answers {{ $value | printf \\"%.0f\\" }} % errors"
          runbook: "https://runbooks.example/error-rate"
      - alert: AlwaysFiringWarning
        expr: sum by (service, env) (process_resident_memory_bytes{service="cart"}) > 0
        for: 0s
        labels:
          severity: warning
        annotations:
          summary: "cart memory is being watched"
"""

_AM_CONFIG = """
route:
  receiver: "null"
  group_by: ["alertname", "service", "env"]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: "null"
"""


def wait_for(check: Callable[[], T], *, timeout: float = 30.0, interval: float = 0.2,
             what: str = "the condition") -> T:
    """Poll ``check`` until it returns something truthy, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while True:
        try:
            value = check()
        except Exception as exc:  # keep polling; report the last failure at the deadline
            last_exc, value = exc, None
        if value:
            return value
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_exc!r})" if last_exc else ""
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}{detail}")
        time.sleep(interval)


class PromProcess:
    """One running Prometheus or Alertmanager."""

    def __init__(self, name: str, proc: subprocess.Popen[bytes], url: str, workdir: Path,
                 log_path: Path) -> None:
        self.name = name
        self.proc = proc
        self.url = url
        self.workdir = workdir
        self.log_path = log_path

    @property
    def port(self) -> int:
        return int(urlsplit(self.url).port or 0)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n"
                                   f"{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} not ready on {self.url} within {timeout:g} s:\n"
                           f"{self.log_tail()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        assert self.proc.poll() is not None, f"{self.name} (pid {self.proc.pid}) is still running"

    @property
    def running(self) -> bool:
        return self.proc.poll() is None


def _spawn(name: str, argv: Sequence[str], workdir: Path, url: str) -> PromProcess:
    log_path = workdir / f"{name}.log"
    log = log_path.open("wb")
    try:
        proc = subprocess.Popen(list(argv), stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd=workdir)
    finally:
        log.close()
    return PromProcess(name, proc, url, workdir, log_path)


def start_alertmanager(workdir: Path, *, binary: str | None = None,
                       timeout: float = 30.0) -> PromProcess:
    binary = binary or require_binary(ALERTMANAGER_BIN, "prometheus-alertmanager", "alertmanager")
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "alertmanager.yml").write_text(_AM_CONFIG)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    p = _spawn("alertmanager", [
        binary, f"--config.file={workdir / 'alertmanager.yml'}",
        f"--storage.path={workdir / 'am-data'}", f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=", "--log.level=warn",
    ], workdir, url)
    p.wait_ready(timeout)
    return p


def start_prometheus(workdir: Path, *, targets: Sequence[str] = (), rules: str = "",
                     alertmanager_url: str = "", binary: str | None = None,
                     timeout: float = 30.0, scrape_interval: float = 1.0) -> PromProcess:
    """Prometheus scraping ``targets`` (full URLs, e.g. a fleet's ``/metrics/all``) every
    ``scrape_interval`` seconds (1 s in tests; the benchmark's 5,000-service page needs more)."""
    binary = binary or require_binary(PROMETHEUS_BIN, "prometheus")
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    scrape_configs: list[dict[str, Any]] = []
    for i, target in enumerate(targets):
        parts = urlsplit(target)
        scrape_configs.append({
            "job_name": f"target-{i}", "honor_labels": True, "scheme": parts.scheme or "http",
            "metrics_path": parts.path or "/metrics", "scrape_interval": f"{scrape_interval:g}s",
            "scrape_timeout": f"{scrape_interval:g}s",
            "static_configs": [{"targets": [parts.netloc]}],
        })
    config: dict[str, Any] = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
        "scrape_configs": scrape_configs,
    }
    if rules:
        (workdir / "rules.yml").write_text(rules)
        config["rule_files"] = [str(workdir / "rules.yml")]
    if alertmanager_url:
        config["alerting"] = {"alertmanagers": [
            {"static_configs": [{"targets": [urlsplit(alertmanager_url).netloc]}],
             "api_version": "v2", "timeout": "2s"}]}
    # JSON is YAML: no YAML writer needed.
    (workdir / "prometheus.yml").write_text(json.dumps(config, indent=2))
    p = _spawn("prometheus", [
        binary, f"--config.file={workdir / 'prometheus.yml'}",
        f"--storage.tsdb.path={workdir / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}",
        "--rules.alert.resend-delay=1s", "--web.enable-lifecycle", "--log.level=warn",
        "--storage.tsdb.retention.time=1h",
    ], workdir, url)
    p.wait_ready(timeout)
    return p


def alertmanager_api(base_url: str, path: str, *, method: str = "GET",
                     body: Any = None) -> Any:
    """Talk to Alertmanager's own API v2 directly (what another operator or its UI would do)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"{base_url}/api/v2{path}", data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else None


class PromStack:
    """Alertmanager + Prometheus (alerting to it), with their own temp dir."""

    def __init__(self, *, targets: Sequence[str] = (), rules: str = TEST_RULES,
                 with_prometheus: bool = True, scrape_interval: float = 1.0) -> None:
        self.targets = list(targets)
        self.scrape_interval = scrape_interval
        self.rules = rules
        self.with_prometheus = with_prometheus
        self.workdir = Path()
        self.alertmanager: PromProcess | None = None
        self.prometheus: PromProcess | None = None

    def start(self) -> PromStack:
        self.workdir = Path(tempfile.mkdtemp(prefix="deploytui-promstack-"))
        try:
            self.alertmanager = start_alertmanager(self.workdir / "alertmanager")
            if self.with_prometheus:
                self.prometheus = start_prometheus(self.workdir / "prometheus",
                                                   targets=self.targets, rules=self.rules,
                                                   alertmanager_url=self.alertmanager.url,
                                                   scrape_interval=self.scrape_interval)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for p in (self.prometheus, self.alertmanager):
            if p is not None:
                with contextlib.suppress(Exception):
                    p.stop()
        left = [p for p in (self.prometheus, self.alertmanager) if p is not None and p.running]
        if self.workdir != Path():
            shutil.rmtree(self.workdir, ignore_errors=True)
        assert not left, f"processes left running: {[p.proc.pid for p in left]}"

    def __enter__(self) -> PromStack:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @property
    def prometheus_url(self) -> str:
        assert self.prometheus is not None
        return self.prometheus.url

    @property
    def alertmanager_url(self) -> str:
        assert self.alertmanager is not None
        return self.alertmanager.url

    def wait_for(self, check: Callable[[], T], *, timeout: float = 30.0,
                 what: str = "the condition") -> T:
        return wait_for(check, timeout=timeout, what=what)

    def prom_query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query straight to Prometheus' HTTP API (for test set-up and checks)."""
        from urllib.parse import urlencode

        with urllib.request.urlopen(f"{self.prometheus_url}/api/v1/query?"
                                    f"{urlencode({'query': expr})}", timeout=5) as resp:
            return list(json.loads(resp.read())["data"]["result"])
