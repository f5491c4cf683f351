"""``deploytui init`` and ``deploytui config check``."""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from deploytui.config import default_config_path, find_config_path, load_config, mask
from deploytui.starter import starter_config_text

__all__ = ["register", "run_check", "run_init"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("init", help="write a commented starter config",
                       description="Write a commented starter config (default: the XDG config "
                       "path). Refuses to overwrite an existing file without --force.")
    p.add_argument("path", nargs="?", help="where to write it (default: where the console looks: "
                   f"--config, $DEPLOYTUI_CONFIG, then {default_config_path()})")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.set_defaults(func=run_init)

    c = sub.add_parser("config", help="configuration commands (check)")
    csub = c.add_subparsers(dest="config_command", metavar="SUBCOMMAND", required=True)
    chk = csub.add_parser("check", help="validate a config file and print a summary",
                          description="Validate a config file and print a summary: services per "
                          "env, sources configured; secrets are masked. Exit 2 when invalid.")
    chk.add_argument("path", nargs="?", help="config file (default: the lookup order)")
    chk.set_defaults(func=run_check)


def run_init(args: argparse.Namespace) -> int:
    # without PATH, write where the lookup will find it, so init and config check agree
    explicit = args.path or getattr(args, "config", None) or os.environ.get("DEPLOYTUI_CONFIG")
    path = Path(explicit) if explicit else default_config_path()
    if path.exists() and not args.force:
        print(f"deploytui: {path} already exists; use --force to overwrite it", file=sys.stderr)
        return 2
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(starter_config_text(), encoding="utf-8")
    except OSError as exc:
        print(f"deploytui: cannot write {path}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    print(f"next: edit it, then `deploytui config check {path}`")
    return 0


def _shown_url(url: str) -> str:
    """A URL for the summary: no user:password, no query string (either may carry a secret)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    hidden = "?***" if parts.query or parts.fragment else ""
    return urlunsplit((parts.scheme, netloc, parts.path, "", "")) + hidden


def run_check(args: argparse.Namespace) -> int:
    path = find_config_path(args.path or getattr(args, "config", None))
    if path is None:
        print(f"deploytui: no config file found (looked at --config, $DEPLOYTUI_CONFIG and "
              f"{default_config_path()}); create one with `deploytui init`", file=sys.stderr)
        return 2
    s = load_config(path)
    print(f"{path}: OK")
    envs = Counter(svc.env for svc in s.services)
    per_env = ", ".join(f"{env}: {n}" for env, n in sorted(envs.items())) or "none"
    print(f"  services: {len(s.services)} ({per_env})")
    k = s.kubernetes
    if k.enabled:
        where = "in-cluster" if k.in_cluster else (k.kubeconfig or "$KUBECONFIG / ~/.kube/config")
        ns = ", ".join(k.namespaces) or "the context's namespace"
        print(f"  kubernetes: {where}, context {k.context or '(current)'}, namespaces {ns}")
    else:
        print("  kubernetes: off")
    if s.prometheus.url:
        token = f", token {s.prometheus.token}" if s.prometheus.token else ""
        print(f"  prometheus: {_shown_url(s.prometheus.url)}{token}, "
              f"{len(s.prometheus.queries)} custom queries")
    else:
        print("  prometheus: off (metrics scraped from each service's metrics_url)")
    am_token = f", token {s.alertmanager.token}" if s.alertmanager.token else ""
    print(f"  alertmanager: {_shown_url(s.alertmanager.url) + am_token if s.alertmanager.url else 'off'}")
    p = s.ports
    n_alloc = sum(len(v) for v in p.allocations.values() if hasattr(v, '__len__'))
    print(f"  ports: registry {p.registry or 'none'}, {len(p.compose_files)} compose files, "
          f"{n_alloc} inline allocations")
    chans = ", ".join(f"{c.name} ({c.kind}, {mask(c.url.reveal()) or mask(c.routing_key.reveal()) or 'not set'})"
                      for c in s.notify.channels) or "none"
    print(f"  notify: {chans}")
    print(f"  guard: {s.guard.mode}{' (dry run)' if s.guard.dry_run else ''}")
    print(f"  store: {s.store_path}")
    print(f"  post-mortems: {s.postmortem_dir}")
    mode = "read-only" if s.read_only else "live"
    print(f"  console: {mode}, theme {s.console.theme}, refresh {s.console.refresh_interval:g}s")
    return 0
