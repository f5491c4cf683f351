"""Port allocations declared by deployment tooling: docker-compose files and Kubernetes.

Kubernetes: Services' ``nodePort`` (cluster-wide) and ``port`` (on the Service's own cluster
IP, so it clashes with nothing else), and pods' ``hostPort`` (replicas of one workload are one
claim), read with the official client (imported lazily; blocking — run it in a thread).

docker-compose files:

Every ``ports:`` form compose accepts::

    - 3050                       container port only: published on an ephemeral host port
    - "3050:3000"                published:target
    - "127.0.0.1:3050:3000/udp"  host_ip:published:target/protocol
    - "3000-3005:3000-3005"      ranges (a host range onto one target port too: "8000-8010:80")
    - "[::1]:3050:3000"          IPv6 host address in brackets
    - "127.0.0.1::3000"          a host address with an ephemeral host port
    - {target: 3000, published: "3050", host_ip: 127.0.0.1, protocol: udp, mode: host}

YAML is read the way compose reads it (YAML 1.2 integers): an unquoted ``22:22`` is the string
``"22:22"``, not the base-60 integer PyYAML's YAML 1.1 would make of it. ``${VAR}``,
``${VAR:-default}`` and ``${VAR-default}`` are interpolated from the environment and the
``.env`` file beside the compose file, as compose does.

Compose files have no env; a file's env is its ``x-deploytui: {env: prod}`` extension field,
else an env name found in the file name (``docker-compose.staging.yml``), else ``dev``.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploytui.config import Settings
from deploytui.errors import ConfigError, SourceError
from deploytui.sources.ports_conflicts import PORT_MAX, PORT_MIN, PortAllocation

__all__ = ["ComposePort", "kube_allocations", "load_compose_file", "parse_port_spec"]

DEFAULT_ENV = "dev"
_PROTOCOLS = ("tcp", "udp", "sctp")


@dataclass(frozen=True)
class ComposePort:
    """One parsed ``ports:`` entry. ``published`` is None when compose picks an ephemeral port."""

    target: tuple[int, int]
    published: tuple[int, int] | None = None
    host_ip: str = ""
    protocol: str = "tcp"
    mode: str = "ingress"


@functools.cache
def _compose_loader() -> type:
    """SafeLoader with YAML 1.2 integers (no base-60), like compose's Go YAML parser.

    Built on first use so that importing this module (the ports pane does) costs no YAML import.
    """
    import yaml

    class ComposeLoader(yaml.SafeLoader):
        pass

    ComposeLoader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers
                if tag not in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    ComposeLoader.add_implicit_resolver(
        "tag:yaml.org,2002:int", re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"),
        list("-+0123456789"))
    ComposeLoader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
                   r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
        list("-+0123456789."))
    return ComposeLoader


def _port_range(text: str, what: str) -> tuple[int, int]:
    parts = text.split("-")
    if len(parts) not in (1, 2) or not all(p.isdigit() for p in parts):
        raise ValueError(f"{what} {text!r} is not a port or a range like 3000-3005")
    start, end = int(parts[0]), int(parts[-1])
    if start > end:
        raise ValueError(f"{what} range {text!r} starts after it ends")
    if start < PORT_MIN or end > PORT_MAX:
        raise ValueError(f"{what} {text!r} is outside 1-65535")
    return start, end


def _check_widths(target: tuple[int, int], published: tuple[int, int] | None) -> None:
    if published is None:
        return
    t_width, p_width = target[1] - target[0], published[1] - published[0]
    if t_width and t_width != p_width:
        raise ValueError(f"the published range has {p_width + 1} ports but the target range "
                         f"has {t_width + 1}")


def parse_port_spec(spec: Any) -> ComposePort:
    """Parse one ``ports:`` entry (short string or int, or the long-form mapping).

    Raises ValueError saying what is wrong with it.
    """
    if isinstance(spec, bool):
        raise ValueError(f"expected a port, got {spec!r}")
    if isinstance(spec, int):
        return ComposePort(target=_port_range(str(spec), "target port"))
    if isinstance(spec, Mapping):
        return _parse_long(spec)
    if not isinstance(spec, str):
        raise ValueError(f"expected a string, number or mapping, got {type(spec).__name__}")
    text = spec.strip()
    protocol = "tcp"
    if "/" in text:
        text, protocol = text.rsplit("/", 1)
        protocol = protocol.lower()
        if protocol not in _PROTOCOLS:
            raise ValueError(f"unknown protocol {protocol!r} (tcp, udp or sctp)")
    host_ip = ""
    if text.startswith("["):
        close = text.find("]")
        if close < 0 or text[close + 1:close + 2] != ":":
            raise ValueError(f"{spec!r}: an IPv6 address is written [addr]:published:target")
        host_ip, text = text[1:close], text[close + 2:]
        parts = text.split(":")
        if len(parts) != 2:
            raise ValueError(f"{spec!r}: expected [addr]:published:target")
        parts = ["", *parts]
    else:
        parts = text.split(":")
        if len(parts) > 3:
            raise ValueError(f"{spec!r}: too many ':' (write an IPv6 host address in brackets)")
        parts = [""] * (3 - len(parts)) + parts
        host_ip = host_ip or parts[0]
    published_text, target_text = parts[1], parts[2]
    target = _port_range(target_text, "target port")
    published = _port_range(published_text, "published port") if published_text else None
    _check_widths(target, published)
    return ComposePort(target=target, published=published, host_ip=host_ip, protocol=protocol)


def _parse_long(spec: Mapping[str, Any]) -> ComposePort:
    unknown = set(spec) - {"target", "published", "host_ip", "protocol", "mode", "name",
                           "app_protocol"}
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    if "target" not in spec:
        raise ValueError("the long form needs 'target'")
    raw_target = spec["target"]
    if isinstance(raw_target, bool) or not isinstance(raw_target, (int, str)):
        raise ValueError(f"target must be a port number, got {raw_target!r}")
    target = _port_range(str(raw_target).strip(), "target port")
    published = None
    raw = spec.get("published")
    if raw not in (None, ""):
        if isinstance(raw, bool) or not isinstance(raw, (int, str)):
            raise ValueError(f"published must be a port or a range string, got {raw!r}")
        published = _port_range(str(raw).strip(), "published port")
    _check_widths(target, published)
    protocol = str(spec.get("protocol") or "tcp").lower()
    if protocol not in _PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r} (tcp, udp or sctp)")
    mode = str(spec.get("mode") or "ingress")
    if mode not in ("ingress", "host"):
        raise ValueError(f"mode must be ingress or host, got {mode!r}")
    return ComposePort(target=target, published=published, host_ip=str(spec.get("host_ip") or ""),
                       protocol=protocol, mode=mode)


# --- interpolation -------------------------------------------------------------------------------

_VAR = re.compile(r"\$(?:\$|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?)-([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")


def _dotenv(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return values
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def _interpolate(value: Any, env: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        def sub(m: re.Match[str]) -> str:
            if m.group(0) == "$$":
                return "$"
            name = m.group(1) or m.group(4)
            colon, default = m.group(2), m.group(3)
            current = env.get(name)
            if default is not None and (current is None or (colon and current == "")):
                return default
            if current is None:
                raise ValueError(f"variable {name} is not set (set it, or write ${{{name}:-default}})")
            return current

        return _VAR.sub(sub, value)
    if isinstance(value, Mapping):
        return {k: _interpolate(v, env) for k, v in value.items()}
    return value


# --- files ---------------------------------------------------------------------------------------


def _file_env(path: Path, doc: Mapping[str, Any], known_envs: Iterable[str]) -> str:
    ext = doc.get("x-deploytui")
    if isinstance(ext, Mapping) and isinstance(ext.get("env"), str) and ext["env"]:
        return ext["env"]
    tokens = set(re.split(r"[^A-Za-z0-9]+", path.name.lower()))
    for env in sorted(known_envs):
        if env.lower() in tokens:
            return env
    return DEFAULT_ENV


def load_compose_file(path: Path, shown: str, *, known_envs: Iterable[str] = (),
                      environ: Mapping[str, str] | None = None) -> list[PortAllocation]:
    """Every ``ports:`` entry of one compose file as allocations (malformed ones included, with
    ``error`` set). ``shown`` is the name used in messages (the path as the config wrote it).

    Raises :class:`ConfigError` naming the file when it cannot be read or is not compose YAML.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(shown, "compose file not found ([ports] compose_files)") from None
    except OSError as exc:
        raise ConfigError(shown, f"cannot read the compose file: {exc.strerror or exc}") from None
    import yaml

    try:
        doc = yaml.load(text, Loader=_compose_loader())  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ConfigError(shown, f"not valid YAML: {exc}") from None
    if doc is None:
        return []
    if not isinstance(doc, Mapping):
        raise ConfigError(shown, "(top level): expected a mapping with 'services'")
    services = doc.get("services") or {}
    if not isinstance(services, Mapping):
        raise ConfigError(shown, "services: expected a mapping of service name -> service")
    env = _file_env(path, doc, known_envs)
    variables = {**_dotenv(path.parent / ".env"), **(os.environ if environ is None else environ)}
    out: list[PortAllocation] = []
    for name, service in services.items():
        if service is None:
            continue
        if not isinstance(service, Mapping):
            raise ConfigError(shown, f"services.{name}: expected a mapping")
        ports = service.get("ports")
        if ports is None:
            continue
        if not isinstance(ports, list):
            raise ConfigError(shown, f"services.{name}.ports: expected a list")
        for i, spec in enumerate(ports):
            key = f"services.{name}.ports[{i}]"
            base = {"service": str(name), "env": env, "source": "compose", "origin": shown,
                    "key": key, "kind": "published"}
            try:
                port = parse_port_spec(_interpolate(spec, variables))
            except ValueError as exc:
                out.append(PortAllocation(start=0, end=0, error=f"{spec!r}: {exc}", **base))
                continue
            if port.published is None:
                continue  # an ephemeral host port claims nothing
            t0, t1 = port.target
            out.append(PortAllocation(
                start=port.published[0], end=port.published[1], protocol=port.protocol,
                host=port.host_ip, target=str(t0) if t0 == t1 else f"{t0}-{t1}", **base))
    return out


# --- Kubernetes -----------------------------------------------------------------------------------

def _kube_env(settings: Settings, meta: Mapping[str, Any], name: str) -> str:
    """An ``env`` / ``environment`` label, else the env of the configured service whose
    ``deployment`` is ``namespace/name``, else the namespace."""
    labels = meta.get("labels") or {}
    for label in ("env", "environment", "app.kubernetes.io/environment"):
        if labels.get(label):
            return str(labels[label])
    ns = meta.get("namespace", "")
    for svc in settings.services:
        if svc.deployment == f"{ns}/{name}":
            return svc.env
    return str(ns)


def kube_allocations(settings: Settings) -> list[PortAllocation]:
    """Services' nodePorts and ports, and pods' hostPorts. Blocking (run it in a thread).

    Raises :class:`SourceError` when the API cannot be read.
    """
    from kubernetes import client, config  # lazy: a heavy import only Kubernetes users pay for
    from kubernetes.client.exceptions import ApiException

    k = settings.kubernetes
    try:
        if k.in_cluster:
            config.load_incluster_config()
            api_client = client.ApiClient()
        else:
            api_client = config.new_client_from_config(
                config_file=str(settings.resolve_path(k.kubeconfig)) if k.kubeconfig else None,
                context=k.context or None)
    except Exception as exc:  # the loader raises ConfigException, TypeError, OSError ...
        raise SourceError("kubernetes", f"cannot load the kubeconfig: {exc}", "auth") from None
    v1 = client.CoreV1Api(api_client)
    timeout = k.request_timeout

    def call(fn: Any, *args: Any) -> list[dict[str, Any]]:
        try:
            resp = fn(*args, _preload_content=False, _request_timeout=timeout)
            return list(json.loads(resp.data)["items"])
        except ApiException as exc:
            raise SourceError("kubernetes", f"HTTP {exc.status}: {exc.reason}", "http") from None
        except Exception as exc:  # urllib3 connection / timeout errors
            raise SourceError("kubernetes", f"{exc.__class__.__name__}: {exc}") from None

    def listed(all_ns: Any, per_ns: Any) -> list[dict[str, Any]]:
        if not k.namespaces:
            return call(all_ns)
        return [item for ns in k.namespaces for item in call(per_ns, ns)]

    try:
        try:  # nodePorts are cluster-wide: read Services from every namespace when allowed
            services = call(v1.list_service_for_all_namespaces)
        except SourceError:
            if not k.namespaces:
                raise
            services = listed(None, v1.list_namespaced_service)
        pods = listed(v1.list_pod_for_all_namespaces, v1.list_namespaced_pod)
    finally:
        api_client.close()
    return _from_objects(settings, services, pods)


def _from_objects(settings: Settings, services: list[dict[str, Any]],
                  pods: list[dict[str, Any]]) -> list[PortAllocation]:
    out: list[PortAllocation] = []
    for svc in services:
        meta = svc.get("metadata") or {}
        ns, name = meta.get("namespace", ""), meta.get("name", "")
        env = _kube_env(settings, meta, name)
        for i, port in enumerate((svc.get("spec") or {}).get("ports") or []):
            proto = str(port.get("protocol") or "TCP").lower()
            target = str(port.get("targetPort") or port.get("port") or "")
            common = {"service": name, "env": env, "source": "kubernetes",
                      "origin": f"Service {ns}/{name}", "protocol": proto, "target": target}
            if port.get("nodePort"):
                out.append(PortAllocation(start=int(port["nodePort"]), end=int(port["nodePort"]),
                                          key=f"spec.ports[{i}].nodePort", kind="nodePort", **common))
            if port.get("port"):
                out.append(PortAllocation(start=int(port["port"]), end=int(port["port"]),
                                          key=f"spec.ports[{i}].port", kind="service port",
                                          scope=f"svc:{ns}/{name}", **common))
    seen: set[tuple[Any, ...]] = set()
    for pod in pods:
        meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
        labels = meta.get("labels") or {}
        owner = labels.get("app.kubernetes.io/name") or labels.get("app") or meta.get("name", "")
        env = _kube_env(settings, meta, owner)
        for ci, container in enumerate(spec.get("containers") or []):
            for pi, port in enumerate(container.get("ports") or []):
                if not port.get("hostPort"):
                    continue
                hp, proto = int(port["hostPort"]), str(port.get("protocol") or "TCP").lower()
                host = port.get("hostIP") or spec.get("nodeName") or ""
                ident = (owner, env, hp, proto, host)
                if ident in seen:  # replicas of one workload are one claim
                    continue
                seen.add(ident)
                out.append(PortAllocation(
                    service=owner, env=env, start=hp, end=hp, source="kubernetes",
                    origin=f"Pod {meta.get('namespace', '')}/{meta.get('name', '')}",
                    key=f"spec.containers[{ci}].ports[{pi}].hostPort", kind="hostPort",
                    protocol=proto, host=host, target=str(port.get("containerPort") or "")))
    return out
