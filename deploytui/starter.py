"""The commented starter config written by ``deploytui init``.

The data is written with ``tomli_w``; each key then gets its documentation (from the schema's
field metadata) as a comment above it, so the starter and the schema cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import tomli_w

from deploytui.config import Settings

__all__ = ["STARTER_DATA", "starter_config_text"]

STARTER_DATA: dict[str, Any] = {
    "console": {"refresh_interval": 5.0, "read_only": False, "theme": "dark", "layout": "auto"},
    "services": [
        {
            "name": "checkout",
            "env": "prod",
            "team": "payments",
            "health_url": "http://127.0.0.1:8080/health",
            "metrics_url": "http://127.0.0.1:8080/metrics",
            "expected_version": "",
            "tags": ["tier-1"],
            "deployment": "default/checkout",
        }
    ],
    "kubernetes": {"enabled": False, "kubeconfig": "", "context": "", "namespaces": ["default"]},
    "prometheus": {"url": "", "service_label": "service"},
    "alertmanager": {"url": "", "ack_minutes": 60.0},
    "ports": {"registry": "", "allowed": {"dev": "3000-3999", "staging": "4000-4999",
                                          "prod": "5000-5999"}},
    "guard": {"mode": "propose", "window_minutes": 30.0},
    "postmortem": {"output_dir": "./postmortems"},
    "store": {"path": "", "retention_days": 90.0},
}

HEADER = """\
# deploytui configuration (written by `deploytui init`).
# Check it with `deploytui config check`; every key is described in config.example.toml.
# Strings may use ${ENV_VAR} or ${ENV_VAR:-default}; keep secrets in the environment.
"""


def _docs() -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for f in dataclasses.fields(Settings):
        sec_type = f.type if isinstance(f.type, type) else None
        section_cls = {
            "services": "ServiceSettings",
        }.get(f.name)
        import deploytui.config as cfg

        cls = getattr(cfg, section_cls) if section_cls else None
        if cls is None:
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else None  # type: ignore[misc]
            cls = type(default) if dataclasses.is_dataclass(default) else sec_type
        if cls is not None and dataclasses.is_dataclass(cls):
            out[f.name] = {g.name: g.metadata.get("doc", "") for g in dataclasses.fields(cls)}
        out.setdefault("", {})[f.name] = f.metadata.get("doc", "")
    return out


def starter_config_text() -> str:
    docs = _docs()
    body = tomli_w.dumps(STARTER_DATA)
    lines: list[str] = []
    section = ""
    for line in body.splitlines():
        header = re.match(r"^\[\[?([A-Za-z0-9_.]+)\]\]?$", line)
        if header:
            names = header.group(1).split(".")
            section = names[0]
            doc = docs[""].get(section, section)
            if len(names) > 1:  # a sub-table such as [ports.allowed]: the field's own doc
                doc = docs.get(section, {}).get(names[1]) or doc
            if lines and lines[-1] != "":
                lines.append("")
            lines.append(f"# {doc}")
            lines.append(line)
            continue
        key = re.match(r"^([A-Za-z0-9_]+) = ", line)
        if key and docs.get(section, {}).get(key.group(1)):
            lines.append(f"# {docs[section][key.group(1)]}")
        lines.append(line)
    return HEADER + "\n" + "\n".join(lines).strip() + "\n"
