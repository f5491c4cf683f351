"""The simulated fleet: services + simulated Kubernetes + a scenario, on one background loop.

    with Fleet(services=12, scenario="bad-rollout", time_scale=10) as fleet:
        fleet.config_path      # a deploytui config describing the fleet
        fleet.kubeconfig_path  # kubectl --kubeconfig <this> get deploy -A
        fleet.steer("checkout", "prod", error_rate=0.2)

Everything runs on one asyncio loop in a daemon thread named ``deploytui-fleet``; ``stop()``
ends every task, closes every socket and joins the thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import random
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import tomli_w

from deploytui.demo.scenarios import RegistryPlan, Scenario, get_scenario
from deploytui.demo.services import KubeEffect, ServiceSpec, ServicesServer, SimService

__all__ = ["ALLOWED_PORTS", "DEFAULT_SERVICES", "NAMESPACES", "Fleet", "build_specs"]

log = logging.getLogger(__name__)

#: Allowed port range per env (the runbook's: dev 3000s, staging 4000s, prod 5000s).
ALLOWED_PORTS: dict[str, tuple[int, int]] = {
    "dev": (3000, 3999), "staging": (4000, 4999), "prod": (5000, 5999)}
#: Kubernetes namespace per env.
NAMESPACES: dict[str, str] = {"prod": "shop", "staging": "shop-staging", "dev": "shop-dev"}
_REPLICAS = {"prod": 4, "staging": 2, "dev": 1}
IMAGE_REPO = "registry.demo.local/shop"
DEMO_PROGRESS_DEADLINE = 90
#: Services with their own port (and a registry entry) while the fleet is at most this big.
DEDICATED_PORTS_UP_TO = 64
#: At most this many services get a Kubernetes Deployment (the first ones).
DEPLOYMENTS_UP_TO = 200

#: The default dozen: (name, env, team, health format, version).
DEFAULT_SERVICES: tuple[tuple[str, str, str, str, str], ...] = (
    ("checkout", "prod", "payments", "seed", "1.4.2"),
    ("payments", "prod", "payments", "actuator", "2.3.0"),
    ("cart", "prod", "shop", "seed", "1.9.1"),
    ("catalog", "prod", "catalog", "seed", "3.0.4"),
    ("search", "prod", "discovery", "ietf", "0.12.0"),
    ("auth", "prod", "identity", "seed", "5.1.0"),
    ("checkout", "staging", "payments", "seed", "1.4.2"),
    ("payments", "staging", "payments", "actuator", "2.3.0"),
    ("inventory", "staging", "catalog", "seed", "1.2.7"),
    ("checkout", "dev", "payments", "seed", "1.4.2"),
    ("recommendations", "dev", "discovery", "plain", "0.3.1"),
    ("notifications", "dev", "platform", "seed", "2.0.0"),
)
_WORDS = ("orders", "billing", "shipping", "pricing", "reviews", "profile", "gateway",
          "ledger", "media", "wishlist", "coupons", "tax", "fraud", "email", "sms", "geo",
          "quotes", "stock", "returns", "loyalty")
_TEAMS = ("payments", "shop", "catalog", "discovery", "identity", "platform", "growth")
_FORMATS = ("seed", "seed", "seed", "seed", "actuator", "ietf", "plain", "seed")
_ENVS = ("prod", "staging", "dev")


def build_specs(count: int, *, seed: int = 0, kubernetes: bool = True) -> list[ServiceSpec]:
    """The services of a fleet of ``count``: the default dozen first, then generated ones."""
    if not 1 <= count <= 5000:
        raise ValueError(f"a fleet has 1 to 5000 services, not {count}")
    rng = random.Random(seed)
    rows = list(DEFAULT_SERVICES[:count])
    i = 0
    while len(rows) < count:
        word = _WORDS[i % len(_WORDS)]
        env = _ENVS[(i // len(_WORDS)) % len(_ENVS)]
        name = f"{word}-{i // (len(_WORDS) * len(_ENVS)) + 1:04d}"
        rows.append((name, env, rng.choice(_TEAMS), rng.choice(_FORMATS),
                     f"1.{rng.randrange(10)}.{rng.randrange(10)}"))
        i += 1
    dedicated = count <= DEDICATED_PORTS_UP_TO
    return [
        ServiceSpec(name=name, env=env, team=team, format=fmt, version=version,
                    deployment=f"{NAMESPACES[env]}/{name}"
                    if kubernetes and n < DEPLOYMENTS_UP_TO else None,
                    dedicated_port=dedicated)
        for n, (name, env, team, fmt, version) in enumerate(rows)
    ]


_NO_PODS = KubeEffect(available=False)


def _ready(pod: dict[str, Any]) -> bool:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return bool(cond.get("status") == "True")
    return False


def _version_of(image: str) -> str | None:
    tag = image.rsplit("/", 1)[-1]
    return tag.split(":", 1)[1] if ":" in tag else None


class Fleet:
    """Simulated services, simulated Kubernetes and a scenario, run in a background thread."""

    def __init__(self, *, services: int = 12, scenario: str = "steady", seed: int = 0,
                 host: str = "127.0.0.1", kubernetes: bool = True, time_scale: float = 1.0,
                 workdir: Path | None = None) -> None:
        if time_scale <= 0:
            raise ValueError(f"time_scale must be > 0, not {time_scale}")
        self.scenario: Scenario = get_scenario(scenario)
        self.seed = seed
        self.host = host
        self.time_scale = float(time_scale)
        self.rng = random.Random(f"scenario:{seed}")
        self._specs = build_specs(services, seed=seed, kubernetes=kubernetes)
        self._kubernetes = kubernetes
        self._own_workdir = workdir is None
        self._workdir_arg = Path(workdir) if workdir is not None else None
        self.workdir = Path()
        self.services: list[SimService] = []
        self.kube: Any = None
        self.server: ServicesServer | None = None
        self.base_url = ""
        self.metrics_all_url = ""
        self.kubeconfig_path = Path()
        self.config_path = Path()
        self.registry_path = Path()
        self.undeclared_ports: list[int] = []
        self.events: list[tuple[float, str]] = []
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._t0 = time.monotonic()
        self._tasks: list[asyncio.Task[Any]] = []
        self._listeners: list[asyncio.Server] = []
        self._kube_thread: Any = None

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> Fleet:
        """Start everything in a background thread; returns once every socket listens."""
        if self._thread is not None:
            raise RuntimeError("this fleet is already started")
        self._ready.clear()
        self._error = None
        self.kube = None
        self.undeclared_ports = []
        self.events = []
        if self._workdir_arg is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="deploytui-demo-"))
        else:
            self.workdir = self._workdir_arg.resolve()
            self.workdir.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._thread_main, name="deploytui-fleet",
                                        daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout=60):
            self.stop()
            raise RuntimeError("the simulated fleet did not start within 60 s")
        if self._error is not None:
            error = self._error
            self.stop()
            raise RuntimeError(f"the simulated fleet failed to start: {error}") from error
        return self

    def stop(self) -> None:
        """Stop every task and socket, join the thread, remove a temporary workdir."""
        thread, loop, stop_event = self._thread, self._loop, self._stop_event
        if thread is None:
            return
        if loop is not None and stop_event is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop_event.set)
        thread.join(timeout=30)
        self._thread = None
        if self._own_workdir and self.workdir != Path():
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Fleet:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @property
    def kube_url(self) -> str:
        """Base URL of the simulated Kubernetes API ("" without Kubernetes)."""
        return str(self.kube.url) if self.kube is not None else ""

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _thread_main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        except BaseException as exc:
            self._error = self._error or exc
            log.exception("the simulated fleet stopped with an error")
        finally:
            loop.close()
            self._ready.set()

    async def _main(self) -> None:
        self._stop_event = asyncio.Event()
        try:
            await self._start_async()
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            await self._stop_async()
            return
        self._ready.set()
        try:
            await self._stop_event.wait()
        finally:
            await self._stop_async()

    async def _start_async(self) -> None:
        self.server = ServicesServer(self._specs, host=self.host, seed=self.seed,
                                     port_ranges=ALLOWED_PORTS)
        await self.server.start()
        self.services = list(self.server.services)
        self.base_url = self.server.base_url
        self.metrics_all_url = f"{self.base_url}/metrics/all"
        self.kubeconfig_path = self.workdir / "kubeconfig"
        if self._kubernetes:
            await self._start_kube()
        self._write_files()
        self._t0 = time.monotonic()
        self._spawn(self._run_scenario(), "scenario")
        if self.kube is not None:
            self._spawn(self._kube_sync_loop(), "kube-sync")

    async def _stop_async(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        for listener in self._listeners:
            listener.close()
            with contextlib.suppress(Exception):
                await listener.wait_closed()
        self._listeners.clear()
        if self.kube is not None:
            with contextlib.suppress(Exception):
                await self._stop_kube()
        if self.server is not None:
            await self.server.stop()
        # Anything still pending (a listener change in flight...) ends here, not at loop.close().
        current = asyncio.current_task()
        rest = [t for t in asyncio.all_tasks() if t is not current]
        for task in rest:
            task.cancel()
        await asyncio.gather(*rest, return_exceptions=True)

    def _spawn(self, coro: Any, name: str) -> None:
        self._tasks.append(asyncio.get_running_loop().create_task(coro, name=f"fleet:{name}"))

    # -- Kubernetes -----------------------------------------------------------------------
    async def _start_kube(self) -> None:
        try:
            from deploytui.demo.kube import KubeSim
        except ImportError as exc:
            self.note(f"simulated Kubernetes is not available ({exc}); running without it")
            return
        scale, t0 = self.time_scale, time.time()

        def clock() -> float:
            return t0 + (time.time() - t0) * scale

        kube = KubeSim(host=self.host, clock=clock if scale != 1.0 else time.time,
                       controller_interval=max(0.05, 0.5 / scale))
        for spec in self._specs:
            if spec.deployment:
                ns, name = spec.deployment.split("/", 1)
                kube.add_deployment(ns, name, image=f"{IMAGE_REPO}/{name}:{spec.version}",
                                    replicas=_REPLICAS.get(spec.env, 2),
                                    labels={"app": name},
                                    # short enough that a bad rollout turns "failed"
                                    # (ProgressDeadlineExceeded) while the demo is watched
                                    progress_deadline_seconds=DEMO_PROGRESS_DEADLINE,
                                    change_cause=f"initial release of {name} {spec.version}")
        await kube.start()
        self.kube = kube
        kube.write_kubeconfig(self.kubeconfig_path, namespace=NAMESPACES["prod"])

    async def _stop_kube(self) -> None:
        await self.kube.stop()

    def _kube_effects(self) -> dict[str, KubeEffect]:
        """Per deployment ("ns/name"): the share of its pods on a crash-looping image, the
        version most ready pods run, and container restarts."""
        kube = self.kube
        crashing = kube.controller.pods.behavior
        out: dict[str, KubeEffect] = {}
        for ns in sorted({s.deployment.split("/", 1)[0] for s in self.services if s.deployment}):
            pods: dict[str, list[dict[str, Any]]] = {}
            for pod in kube.list_objects("pods", ns):
                meta = pod["metadata"]
                if meta.get("deletionTimestamp"):
                    continue
                app = (meta.get("labels") or {}).get("app")
                if app:
                    pods.setdefault(app, []).append(pod)
            for app, group in pods.items():
                bad = good_ready = restarts = 0
                versions: dict[str, int] = {}
                for pod in group:
                    images = [c.get("image", "") for c in pod["spec"].get("containers") or []]
                    statuses = (pod.get("status") or {}).get("containerStatuses") or []
                    restarts += sum(int(c.get("restartCount") or 0) for c in statuses)
                    if any(crashing(image).crashloop for image in images):
                        bad += 1
                    elif _ready(pod):
                        good_ready += 1
                        version = _version_of(images[0]) if images else None
                        if version:
                            versions[version] = versions.get(version, 0) + 1
                total = bad + good_ready
                out[f"{ns}/{app}"] = KubeEffect(
                    bad_fraction=bad / total if total else 0.0,
                    version=max(versions, key=lambda v: versions[v]) if versions else None,
                    restarts=restarts)
        return out

    async def _kube_sync_loop(self) -> None:
        assert self.server is not None
        while True:
            try:
                effects = self._kube_effects()
            except Exception:
                log.exception("cannot read the simulated Kubernetes state")
                effects = {}
            for svc in self.services:
                if svc.deployment:
                    effect = effects.get(svc.deployment, _NO_PODS) if effects else None
                    self.server.set_kube_effect(svc.name, svc.env, effect)
            await asyncio.sleep(max(0.1, 0.5 / self.time_scale))

    # -- scenario API (see deploytui.demo.scenarios.FleetControl) -------------------------
    def scenario_clock(self) -> float:
        """Scenario seconds since the scenario started (wall seconds x time_scale)."""
        return (time.monotonic() - self._t0) * self.time_scale

    async def sleep_until(self, t: float) -> None:
        delay = (t - self.scenario_clock()) / self.time_scale
        if delay > 0:
            await asyncio.sleep(delay)

    def note(self, message: str) -> None:
        self.events.append((round(self.scenario_clock(), 1), message))
        log.info("%s", message)

    async def roll_out(self, service: SimService, version: str, *, bad: bool,
                       change_cause: str) -> None:
        """Start rolling ``service`` out at ``version``: through Kubernetes when the service
        has a deployment, else by emulating the pods' effect on its traffic."""
        assert self.server is not None
        if self.kube is not None and service.deployment:
            ns, name = service.deployment.split("/", 1)
            image = f"{IMAGE_REPO}/{name}:{version}"
            if bad:
                self.kube.set_image_behavior(image, crashloop=True)
            self.kube.set_image(ns, name, image, change_cause=change_cause)
            return
        start = self.scenario_clock()
        for step in range(1, 5):
            await self.sleep_until(start + 5.0 * step)
            fraction = 0.25 * step if bad else 0.0
            self.server.set_kube_effect(service.name, service.env, KubeEffect(
                bad_fraction=fraction, version=version if step >= 2 else None))

    async def _run_scenario(self) -> None:
        try:
            await self.scenario.run(self)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("scenario %s failed", self.scenario.name)

    # -- steering -------------------------------------------------------------------------
    def steer(self, name: str, env: str | None = None, **knobs: Any) -> None:
        """Change knobs of one service (thread-safe); see :data:`services.KNOB_NAMES`."""
        if self.server is None:
            raise RuntimeError("start the fleet before steering it")
        self.server.steer(name, env, **knobs)

    def drift(self, name: str, env: str, drift_ms: float) -> None:
        """Scenario-owned latency drift of one service (ms), on top of its knobs."""
        if self.server is None:
            raise RuntimeError("start the fleet before steering it")
        self.server.set_drift(name, env, drift_ms)

    def set_kube_effect(self, name: str, env: str, effect: KubeEffect | None) -> None:
        if self.server is None:
            raise RuntimeError("start the fleet before steering it")
        self.server.set_kube_effect(name, env, effect)

    def service(self, name: str, env: str | None = None) -> SimService:
        found = [s for s in self.services if s.name == name and env in (None, s.env)]
        if len(found) != 1:
            raise KeyError(f"no single simulated service {name!r} (env {env!r})")
        return found[0]

    # -- files ----------------------------------------------------------------------------
    def _free_ports(self, env: str, used: set[int]) -> Iterator[int]:
        lo, hi = ALLOWED_PORTS[env]
        offset = random.Random(f"{self.seed}:{env}:registry").randrange(hi - lo + 1)
        for i in range(hi - lo + 1):
            port = lo + (offset + i * 13) % (hi - lo + 1)
            if port in used or not _port_free(self.host, port):
                continue
            used.add(port)
            yield port
        raise RuntimeError(f"no free port left in the {env} range {lo}-{hi}")

    def _write_files(self) -> None:
        allocations: dict[tuple[str, str], tuple[int, int, str]] = {}
        for svc in self.services:
            if svc.port:
                allocations[(svc.name, svc.env)] = (svc.port, svc.port, f"{svc.name} HTTP")
        used = {a[0] for a in allocations.values()}
        generators = {env: self._free_ports(env, used) for env in ALLOWED_PORTS}
        to_listen: list[int] = []
        plan = RegistryPlan(allocations=allocations,
                            free_port=lambda env: next(generators[env]),
                            listen=to_listen.append)
        if self.scenario.plan_registry is not None:
            self.scenario.plan_registry(plan, self.services)
        for port in to_listen:
            self._open_undeclared(port)
        registry: dict[str, dict[str, Any]] = {}
        for (name, env), (start, end, description) in allocations.items():
            registry.setdefault(name, {})[env] = {
                "start": start, "end": end, "description": description}
        self.registry_path = self.workdir / "ports.toml"
        self.registry_path.write_text(
            "# Port registry of the simulated fleet (written by deploytui demo).\n"
            + tomli_w.dumps(registry), encoding="utf-8")
        self.config_path = self.workdir / "deploytui-demo.toml"
        self.config_path.write_text(
            "# deploytui config for the simulated fleet (written by deploytui demo).\n"
            + tomli_w.dumps(self._config()), encoding="utf-8")

    def _open_undeclared(self, port: int) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, port))
        sock.listen(16)
        sock.setblocking(False)

        async def serve() -> None:
            def close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                writer.close()

            self._listeners.append(await asyncio.start_server(close, sock=sock))

        self._spawn(serve(), f"undeclared:{port}")
        self.undeclared_ports.append(port)

    def _config(self) -> dict[str, Any]:
        services = []
        for svc in self.services:
            entry: dict[str, Any] = {
                "name": svc.name, "env": svc.env, "team": svc.team,
                "health_url": svc.health_url, "live_url": svc.live_url,
                "ready_url": svc.ready_url, "metrics_url": svc.metrics_url,
                "expected_version": svc.version,
                "tags": ["demo", svc.format] + (["tier-1"] if svc.env == "prod" else []),
                "critical_checks": ["database"],
            }
            if svc.deployment:
                entry["deployment"] = svc.deployment
            services.append(entry)
        namespaces = sorted({s.deployment.split("/", 1)[0] for s in self.services
                             if s.deployment})
        return {
            "console": {"refresh_interval": 1.0 if len(self.services) <= 500 else 2.0,
                        "theme": "dark"},
            "services": services,
            "kubernetes": {"enabled": self.kube is not None,
                           "kubeconfig": str(self.kubeconfig_path) if self.kube else "",
                           "namespaces": namespaces if self.kube else []},
            "prometheus": {"url": ""},
            "alertmanager": {"url": ""},
            "ports": {"registry": str(self.registry_path),
                      "allowed": {env: f"{lo}-{hi}" for env, (lo, hi) in ALLOWED_PORTS.items()},
                      "probe": True, "probe_host": self.host},
            "rules": {"for_seconds": 10.0},
            "guard": {"interval_seconds": 5.0,
                      "error_rate_percent": {"threshold": 10.0, "for_seconds": 30.0},
                      "p95_seconds": {"threshold": 5.0, "for_seconds": 30.0}},
            "store": {"path": str(self.workdir / "deploytui.db")},
            "postmortem": {"output_dir": str(self.workdir / "postmortems")},
        }


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True
