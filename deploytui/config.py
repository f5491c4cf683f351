"""Configuration: TOML (read with ``tomllib``) into typed, immutable settings.

The schema is the dataclasses below; :func:`load_config` walks their type hints, so the loader,
the error messages (``services[3].health_url: not a valid http(s) URL``), the "did you mean"
suggestions and ``deploytui config check`` all come from one place. Every field carries its
documentation in ``metadata["doc"]``; ``config.example.toml`` documents the same keys for humans
and is validated by a test.
"""

from __future__ import annotations

import dataclasses
import difflib
import getpass
import math
import os
import re
import socket
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from platformdirs import user_config_path, user_state_path

from deploytui.errors import ConfigError

__all__ = [
    "AlertmanagerSettings",
    "ConsoleSettings",
    "GuardCriterion",
    "GuardSettings",
    "HealthSettings",
    "IncidentSettings",
    "KubernetesSettings",
    "Levels",
    "NotifyChannel",
    "NotifyRoute",
    "NotifySettings",
    "PortsSettings",
    "PostmortemSettings",
    "PrometheusSettings",
    "RulesSettings",
    "Secret",
    "ServiceSettings",
    "Settings",
    "StoreSettings",
    "default_config_path",
    "find_config_path",
    "load_config",
    "mask",
    "operator_identity",
]


class Secret:
    """A secret string: never shown by ``str``/``repr``/f-strings. Use :meth:`reveal` to send it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __str__(self) -> str:
        return mask(self._value)

    __repr__ = __str__


def mask(value: str) -> str:
    """Mask a secret for display: URLs keep scheme and host (``https://hooks.slack.com/***``)."""
    if not value:
        return ""
    parts = urlsplit(value)
    if parts.scheme in ("http", "https") and parts.hostname:
        return f"{parts.scheme}://{parts.hostname}/***"
    return "***"


def _doc(text: str, **extra: Any) -> dict[str, Any]:
    return {"doc": text, **extra}


def _f(default: Any, doc: str, **extra: Any) -> Any:
    if isinstance(default, (list, dict, set)):
        raise TypeError("use tuples / MappingProxy defaults")
    return field(default=default, metadata=_doc(doc, **extra))


def _fm(doc: str, **extra: Any) -> Any:  # required field
    return field(metadata=_doc(doc, **extra))


def _fd(factory: Any, doc: str, **extra: Any) -> Any:
    return field(default_factory=factory, metadata=_doc(doc, **extra))


def _empty_map() -> Mapping[str, Any]:
    return types.MappingProxyType({})


# --- sections ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConsoleSettings:
    refresh_interval: float = _f(5.0, "Seconds between polls of every source.", min=0.2, max=3600)
    read_only: bool = _f(False, "Refuse every mutating action.")
    lock_read_only: bool = _f(False, "Read-only, and refuse switching it off at run time.")
    theme: str = _f("dark", "Theme name (a file themes/<name>.toml).")
    themes_dir: str = _f("", "Extra folder with theme files.")
    layout: Literal["auto", "grid", "stacked", "tabs"] = _f("auto", "Pane layout.")
    wall: bool = _f(False, "Wall-monitor mode; implies read_only.")
    wall_rotate_seconds: float = _f(0.0, "Rotate the zoomed pane every N seconds in wall mode.", min=0)
    stale_after_intervals: int = _f(3, "Intervals without a successful poll before 'stale'.", min=1)
    operator: str = _f("", "Operator identity; empty means user@host.")


@dataclass(frozen=True)
class HealthSettings:
    timeout: float = _f(2.0, "Per-request timeout, seconds.", min=0.05, max=120)
    concurrency: int = _f(100, "Requests in flight at once.", min=1, max=10000)
    max_body_bytes: int = _f(65536, "Bodies are cut at this size.", min=256)
    latency_target_ms: float = _f(500.0, "p95 latency target, ms.", min=0)
    latency_alert_ms: float = _f(1000.0, "p95 latency alert level, ms.", min=0)
    availability_target: float = _f(99.9, "Availability target, percent.", min=0, max=100)
    availability_alert: float = _f(99.5, "Availability alert level, percent.", min=0, max=100)
    window_seconds: float = _f(3600.0, "Window for availability and p95, seconds.", min=1)


@dataclass(frozen=True)
class ServiceSettings:
    name: str = _fm("Service name, unique per env.")
    health_url: str = _fm("Main health endpoint.", url=True)
    env: str = _f("prod", "Environment (dev, staging, prod, ...).")
    team: str = _f("", "Owning team.")
    live_url: str = _f("", "Liveness endpoint.", url=True)
    ready_url: str = _f("", "Readiness endpoint.", url=True)
    metrics_url: str = _f("", "Prometheus metrics endpoint.", url=True)
    expected_version: str = _f("", "Version this env should run.")
    tags: tuple[str, ...] = _f((), "Free-form tags.")
    critical_checks: tuple[str, ...] = _f((), "Checks whose failure means unhealthy (empty: all).")
    deployment: str = _f("", "Kubernetes Deployment 'namespace/name'.", pattern=r"^$|^[a-z0-9.-]+/[a-z0-9.-]+$")
    headers: Mapping[str, Secret] = _fd(_empty_map, "Extra request headers (secret values).")

    @property
    def key(self) -> str:
        """Unique id of the service: ``env/name``."""
        return f"{self.env}/{self.name}"


@dataclass(frozen=True)
class KubernetesSettings:
    enabled: bool = _f(False, "Read Deployments, ReplicaSets, Pods and Events.")
    kubeconfig: str = _f("", "Path to a kubeconfig (empty: $KUBECONFIG, ~/.kube/config).")
    context: str = _f("", "Context (empty: current context).")
    namespaces: tuple[str, ...] = _f((), "Namespaces to watch (empty: the context's namespace).")
    in_cluster: bool = _f(False, "Use the pod's service account.")
    stall_after_seconds: float = _f(600.0, "No progress for this long means stalled.", min=1)
    request_timeout: float = _f(10.0, "Timeout for one API request, seconds.", min=0.1)
    lease_duration_seconds: int = _f(15, "Lease held while acting, seconds.", min=1, max=3600)
    lease_namespace: str = _f("", "Namespace for Leases (empty: the deployment's).")


@dataclass(frozen=True)
class PrometheusSettings:
    url: str = _f("", "Prometheus base URL (empty: scrape metrics_url directly).", url=True)
    timeout: float = _f(5.0, "Timeout for one query, seconds.", min=0.1)
    service_label: str = _f("service", "Label naming the service in results.")
    token: Secret = _f(Secret(""), "Bearer token.")
    queries: Mapping[str, str] = _fd(_empty_map, "Fleet-wide queries by metric name.")


@dataclass(frozen=True)
class AlertmanagerSettings:
    url: str = _f("", "Alertmanager base URL (empty: disabled).", url=True)
    timeout: float = _f(5.0, "Timeout for one request, seconds.", min=0.1)
    ack_minutes: float = _f(60.0, "Default acknowledgement length, minutes.", min=1)
    ack_comment: str = _f("acknowledged in deploytui", "Default acknowledgement comment.")
    token: Secret = _f(Secret(""), "Bearer token.")


@dataclass(frozen=True)
class PortsSettings:
    registry: str = _f("", "Registry file (TOML or the runbook's JSON).")
    compose_files: tuple[str, ...] = _f((), "docker-compose files.")
    allowed: Mapping[str, str] = _fd(_empty_map, "Allowed range per env, 'start-end'.",
                                     value_pattern=r"^\d{1,5}-\d{1,5}$")
    allow_privileged: bool = _f(False, "Allow ports below 1024.")
    probe: bool = _f(True, "Probe declared ports with a TCP connect.")
    probe_host: str = _f("127.0.0.1", "Host probed when an allocation names none.")
    probe_timeout: float = _f(0.5, "TCP connect timeout, seconds.", min=0.01)
    allocations: Mapping[str, Any] = _fd(_empty_map, "Inline allocations [service.env].", raw=True)


@dataclass(frozen=True)
class Levels:
    warning: float = _fm("Warning level.")
    critical: float = _fm("Critical level.")
    rollback: float | None = _f(None, "Rollback level.")


def _levels(w: float, c: float, r: float | None = None) -> Any:
    return Levels(w, c, r)


@dataclass(frozen=True)
class RulesSettings:
    for_seconds: float = _f(60.0, "A level holds this long before it fires.", min=0)
    hysteresis: float = _f(0.1, "A level clears this fraction below its threshold.", min=0, max=0.9)
    error_rate_percent: Levels = _fd(lambda: _levels(1.0, 5.0, 10.0), "Error rate %.")
    p95_seconds: Levels = _fd(lambda: _levels(0.5, 2.0, 5.0), "p95 latency, seconds.")
    memory_percent: Levels = _fd(lambda: _levels(70.0, 90.0), "Memory % of limit.")
    restarts_per_minute: Levels = _fd(lambda: _levels(0.1, 0.5), "Container restarts per minute.")
    response_minutes: Mapping[str, float] = _fd(
        lambda: types.MappingProxyType({"P1": 15.0, "P2": 60.0, "P3": 240.0}),
        "Response time per priority, minutes.")


@dataclass(frozen=True)
class GuardCriterion:
    threshold: float = _fm("Value above which an evaluation fails.")
    for_seconds: float = _f(300.0, "How long the value must stay above.", min=0)
    limit: int = _f(3, "Failed evaluations per revision that trip the guard.", min=1)


def _crit(t: float, s: float, n: int = 3) -> Any:
    return lambda: GuardCriterion(t, s, n)


@dataclass(frozen=True)
class GuardSettings:
    mode: Literal["off", "propose", "auto"] = _f("propose", "off, propose or auto.")
    window_minutes: float = _f(30.0, "Watch window after a rollout starts, minutes.", min=1)
    interval_seconds: float = _f(30.0, "Seconds between evaluations.", min=0.1)
    countdown_seconds: float = _f(30.0, "Seconds to abort an automatic rollback.", min=0)
    cooldown_minutes: float = _f(60.0, "One automatic rollback per deployment per cooldown.", min=0)
    dry_run: bool = _f(False, "Log what would be done, do nothing.")
    error_rate_percent: GuardCriterion = _fd(_crit(10.0, 300), "Error rate %.")
    p95_seconds: GuardCriterion = _fd(_crit(5.0, 300), "p95 latency, seconds.")
    restarts_per_minute: GuardCriterion = _fd(_crit(0.5, 120), "Crash loop: restarts/min.")
    db_errors_per_minute: GuardCriterion = _fd(_crit(10.0, 120), "DB connection errors/min.")
    health_failures: GuardCriterion = _fd(_crit(1.0, 120), "Failing health checks.")


@dataclass(frozen=True)
class NotifyChannel:
    name: str = _fm("Channel name, used by routes.")
    kind: Literal["slack", "teams", "pagerduty", "webhook"] = _fm("Channel kind.")
    url: Secret = _f(Secret(""), "Webhook URL (secret).", url=True)
    routing_key: Secret = _f(Secret(""), "PagerDuty routing key (secret).")
    timeout: float = _f(10.0, "Delivery timeout, seconds.", min=0.1)


@dataclass(frozen=True)
class NotifyRoute:
    role: str = _fm("Role name (ops, dev, ...).")
    events: tuple[str, ...] = _f(("*",), "Event names, or '*'.")
    channels: tuple[str, ...] = _f((), "Channel names.")


@dataclass(frozen=True)
class NotifySettings:
    backoff_seconds: tuple[float, ...] = _f((5.0, 10.0, 20.0, 40.0, 80.0), "Retry schedule, seconds.")
    channels: tuple[NotifyChannel, ...] = _f((), "Channels.")
    routes: tuple[NotifyRoute, ...] = _f((), "Routes.")


@dataclass(frozen=True)
class IncidentSettings:
    open_on_critical_alert: bool = _f(True, "Open an incident when a critical alert fires.")
    open_on_prod_unhealthy: bool = _f(True, "Open one when a prod service goes unhealthy.")
    default_severity: Literal["P1", "P2", "P3", "P4"] = _f("P2", "Severity of automatic incidents.")
    auto_close_minutes: float = _f(15.0, "Close after everything is healthy this long.", min=0)


@dataclass(frozen=True)
class PostmortemSettings:
    output_dir: str = _f("./postmortems", "Folder for generated post-mortems.")


@dataclass(frozen=True)
class StoreSettings:
    path: str = _f("", "SQLite file (empty: the XDG state dir).")
    retention_days: float = _f(90.0, "Prune rows older than this, days.", min=1)


@dataclass(frozen=True)
class Settings:
    console: ConsoleSettings = _fd(ConsoleSettings, "Console.")
    health: HealthSettings = _fd(HealthSettings, "Health polling.")
    services: tuple[ServiceSettings, ...] = _f((), "Services.")
    kubernetes: KubernetesSettings = _fd(KubernetesSettings, "Kubernetes.")
    prometheus: PrometheusSettings = _fd(PrometheusSettings, "Prometheus.")
    alertmanager: AlertmanagerSettings = _fd(AlertmanagerSettings, "Alertmanager.")
    ports: PortsSettings = _fd(PortsSettings, "Ports.")
    rules: RulesSettings = _fd(RulesSettings, "Thresholds.")
    guard: GuardSettings = _fd(GuardSettings, "Auto-rollback guard.")
    notify: NotifySettings = _fd(NotifySettings, "Notifications.")
    incidents: IncidentSettings = _fd(IncidentSettings, "Incidents.")
    postmortem: PostmortemSettings = _fd(PostmortemSettings, "Post-mortems.")
    store: StoreSettings = _fd(StoreSettings, "Embedded store.")
    keymap: Mapping[str, str] = _fd(_empty_map, "Key remapping: action id = 'key[,key]'.")
    source_path: str = field(default="", metadata=_doc("File the settings came from.", internal=True))

    @property
    def read_only(self) -> bool:
        return self.console.read_only or self.console.wall or self.console.lock_read_only

    def with_changes(self, **sections: Any) -> Settings:
        """A copy with whole sections replaced (tests and CLI overrides)."""
        return dataclasses.replace(self, **sections)

    @property
    def base_dir(self) -> Path:
        """Relative paths in the file are relative to the file's folder."""
        return Path(self.source_path).parent if self.source_path else Path.cwd()

    def resolve_path(self, value: str) -> Path:
        p = Path(os.path.expanduser(value))
        return p if p.is_absolute() else (self.base_dir / p)

    @property
    def store_path(self) -> Path:
        if self.store.path:
            return self.resolve_path(self.store.path)
        return user_state_path("deploytui") / "deploytui.db"

    @property
    def postmortem_dir(self) -> Path:
        return self.resolve_path(self.postmortem.output_dir)

    def service(self, key_or_name: str) -> ServiceSettings | None:
        for s in self.services:
            if key_or_name in (s.key, s.name):
                return s
        return None


# --- loading -----------------------------------------------------------------------------------

_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def default_config_path() -> Path:
    return user_config_path("deploytui") / "config.toml"


def find_config_path(explicit: str | None = None) -> Path | None:
    """``--config``, then ``$DEPLOYTUI_CONFIG``, then the XDG config dir; None when none exists."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("DEPLOYTUI_CONFIG")
    if env:
        return Path(env)
    default = default_config_path()
    return default if default.exists() else None


def load_config(path: str | Path | None = None, *, environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate a config file; with no file, defaults (an empty fleet).

    Raises :class:`ConfigError` naming the file, the key path and the problem.
    """
    if path is None:
        return Settings()
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(p), "file not found (create one with `deploytui init`)") from None
    except OSError as exc:
        raise ConfigError(str(p), f"cannot read the file: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(str(p), f"not UTF-8 text (byte {exc.start}); TOML files must be "
                                  "UTF-8") from None
    return parse_config(text, source=str(p.resolve()), environ=environ)


def parse_config(text: str, *, source: str = "", environ: Mapping[str, str] | None = None) -> Settings:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source or None, f"not valid TOML: {exc}") from None
    loader = _Loader(os.environ if environ is None else environ)
    settings = loader.build(Settings, data, "")
    loader.check_settings(settings)
    if loader.problems:
        raise ConfigError(source or None, loader.problems)
    return dataclasses.replace(settings, source_path=source)


class _Loader:
    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.problems: list[str] = []

    def problem(self, path: str, text: str) -> None:
        self.problems.append(f"{path or '(top level)'}: {text}")

    # strings: ${VAR} interpolation
    def interpolate(self, value: str, path: str) -> str:
        def sub(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if default is not None and not self.environ.get(name):
                return default  # like the shell: ${X:-d} is d when X is unset or empty
            if name in self.environ:
                return self.environ[name]
            self.problem(path, f"environment variable {name} is not set "
                               f"(set it, or write ${{{name}:-default}})")
            return ""

        return _ENV_RE.sub(sub, value)

    def build(self, cls: type, data: Any, path: str) -> Any:
        if not isinstance(data, dict):
            self.problem(path, f"expected a table, got {_tname(data)}")
            return _BAD
        hints = typing.get_type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            sub = _join(path, key)
            if key not in fields:
                close = difflib.get_close_matches(key, list(fields), n=1, cutoff=0.6)
                hint = f" — did you mean {close[0]!r}?" if close else f" (known keys: {', '.join(sorted(fields))})"
                self.problem(sub, f"unknown key{hint}")
                continue
            f = fields[key]
            kwargs[key] = self.convert(hints[key], value, sub, dict(f.metadata))
        missing = [n for n, f in fields.items()
                   if n not in kwargs and f.default is dataclasses.MISSING
                   and f.default_factory is dataclasses.MISSING]
        for name in missing:
            self.problem(_join(path, name), "required key is missing")
        if missing or any(v is _BAD for v in kwargs.values()):
            return _BAD
        return cls(**kwargs)

    def convert(self, tp: Any, value: Any, path: str, meta: dict[str, Any]) -> Any:
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if meta.get("raw"):
            return _freeze(self.interpolate_tree(value, path))
        if origin in (types.UnionType, typing.Union):
            inner = [a for a in args if a is not type(None)]
            return self.convert(inner[0], value, path, meta)
        if origin is Literal:
            if isinstance(value, str):
                value = self.interpolate(value, path)
            if value not in args:
                close = difflib.get_close_matches(str(value), [str(a) for a in args], n=1)
                hint = f" — did you mean {close[0]!r}?" if close else ""
                self.problem(path, f"must be one of {', '.join(map(repr, args))}, got {value!r}{hint}")
                return _BAD
            return value
        if tp is bool:
            if not isinstance(value, bool):
                self.problem(path, f"expected true or false, got {_tname(value)} {value!r}")
                return _BAD
            return value
        if tp in (int, float):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or (
                tp is int and isinstance(value, float)
            ):
                self.problem(path, f"expected {'an integer' if tp is int else 'a number'}, "
                                   f"got {_tname(value)} {value!r}")
                return _BAD
            value = tp(value)
            if not math.isfinite(value):  # nan would pass every bound below
                self.problem(path, f"must be a finite number, got {value}")
                return _BAD
            lo, hi = meta.get("min"), meta.get("max")
            if lo is not None and value < lo:
                self.problem(path, f"must be at least {lo}, got {value}")
                return _BAD
            if hi is not None and value > hi:
                self.problem(path, f"must be at most {hi}, got {value}")
                return _BAD
            return value
        if tp is str or tp is Secret:
            if not isinstance(value, str):
                shown = "" if tp is Secret else f" {value!r}"  # a secret is never echoed
                self.problem(path, f"expected a string, got {_tname(value)}{shown}")
                return _BAD
            value = self.interpolate(value, path)
            if meta.get("url") and value and not _is_url(value):
                shown = mask(value) if tp is Secret else repr(value)
                self.problem(path, f"not a valid http(s) URL: {shown}")
                return _BAD
            pattern = meta.get("pattern")
            if pattern and not re.match(pattern, value):
                self.problem(path, f"{value!r} does not have the expected form ({meta.get('doc', '')})")
                return _BAD
            return Secret(value) if tp is Secret else value
        if origin is tuple:
            if not isinstance(value, list):
                self.problem(path, f"expected a list, got {_tname(value)} {value!r}")
                return _BAD
            item_t = args[0]
            items = [self.convert_item(item_t, v, f"{path}[{i}]", meta) for i, v in enumerate(value)]
            return _BAD if any(i is _BAD for i in items) else tuple(items)
        if origin in (Mapping, dict, typing.Mapping):
            if not isinstance(value, dict):
                self.problem(path, f"expected a table, got {_tname(value)} {value!r}")
                return _BAD
            val_t = args[1]
            out = {}
            for k, v in value.items():
                sub_meta = {"pattern": meta["value_pattern"]} if "value_pattern" in meta else {}
                out[k] = self.convert_item(val_t, v, _join(path, k), sub_meta)
            if any(v is _BAD for v in out.values()):
                return _BAD
            return types.MappingProxyType(out)
        if dataclasses.is_dataclass(tp):
            return self.build(tp, value, path)  # type: ignore[arg-type]
        raise TypeError(f"unsupported config type {tp!r} at {path}")

    def convert_item(self, tp: Any, value: Any, path: str, meta: dict[str, Any]) -> Any:
        item_meta = {k: v for k, v in meta.items() if k in ("url", "pattern")}
        return self.convert(tp, value, path, item_meta)

    def interpolate_tree(self, value: Any, path: str) -> Any:
        if isinstance(value, str):
            return self.interpolate(value, path)
        if isinstance(value, dict):
            return {k: self.interpolate_tree(v, _join(path, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [self.interpolate_tree(v, f"{path}[{i}]") for i, v in enumerate(value)]
        return value

    def check_settings(self, s: Any) -> None:
        """Checks across fields (after every field was read)."""
        if s is _BAD:
            return
        seen: dict[str, int] = {}
        for i, svc in enumerate(s.services):
            if svc is _BAD:
                continue
            if svc.key in seen:
                self.problem(f"services[{i}].name", f"{svc.name!r} in env {svc.env!r} is already "
                                                   f"defined by services[{seen[svc.key]}]")
            seen.setdefault(svc.key, i)
        first_channel: dict[str, int] = {}
        for i, ch in enumerate(s.notify.channels):
            if ch.name in first_channel:
                self.problem(f"notify.channels[{i}].name", f"{ch.name!r} is already defined by "
                                                           f"notify.channels[{first_channel[ch.name]}]")
            first_channel.setdefault(ch.name, i)
        names = set(first_channel)
        for i, route in enumerate(s.notify.routes):
            if route is _BAD:
                continue
            for j, ch in enumerate(route.channels):
                if ch not in names:
                    close = difflib.get_close_matches(ch, sorted(names), n=1)
                    hint = f" — did you mean {close[0]!r}?" if close else ""
                    self.problem(f"notify.routes[{i}].channels[{j}]", f"no channel named {ch!r}{hint}")
        for name, levels in (("error_rate_percent", s.rules.error_rate_percent),
                             ("p95_seconds", s.rules.p95_seconds),
                             ("memory_percent", s.rules.memory_percent),
                             ("restarts_per_minute", s.rules.restarts_per_minute)):
            if levels is _BAD:
                continue
            if levels.critical < levels.warning:
                self.problem(f"rules.{name}", f"critical ({levels.critical}) is below warning ({levels.warning})")
            if levels.rollback is not None and levels.rollback < levels.critical:
                self.problem(f"rules.{name}", f"rollback ({levels.rollback}) is below critical ({levels.critical})")
        for env, text in s.ports.allowed.items():
            start, end = (int(n) for n in text.split("-"))
            if not 1 <= start <= end <= 65535:
                self.problem(_join("ports.allowed", env), f"{text!r} is not a port range "
                                                          "(start-end, 1 <= start <= end <= 65535)")
        if s.health.latency_alert_ms < s.health.latency_target_ms:
            self.problem("health.latency_alert_ms", "is below health.latency_target_ms")
        if s.health.availability_alert > s.health.availability_target:
            self.problem("health.availability_alert", "is above health.availability_target")


class _Bad:
    def __repr__(self) -> str:
        return "<invalid>"


_BAD: Any = _Bad()


def _join(path: str, key: str) -> str:
    if not path:
        return key
    if re.fullmatch(r"[A-Za-z0-9_-]+", key):
        return f"{path}.{key}"
    return f"{path}.{key!r}"


def _tname(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "a list", dict: "a table"}.get(type(value), type(value).__name__)


def _is_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
        _ = parts.port  # raises ValueError on a bad port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return types.MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def operator_identity(settings: Settings | None = None) -> str:
    """``user@host`` (or ``[console] operator``): the holder of locks, author of silences."""
    if settings is not None and settings.console.operator:
        return settings.console.operator
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"
