"""``deploytui ports check`` and ``deploytui ports show``.

``check`` prints the allocation table and every conflict. With ``--ci`` it exits 1 when there is
a conflict and 0 when clean (a CI step or pre-commit hook); without it, it reports and exits 0.
``show`` prints the allocation table. Both exit 2 when a registry or compose file is invalid
(the message names the file and entry), Kubernetes could not be read, nothing is configured,
or ``--env`` names an env no allocation or ``[ports] allowed`` range has (a typo must not pass).

JSON (``--format json``, stable)::

    {"schema": 1, "taken_at": str, "config": str|null, "env": str|null, "ok": bool,
     "summary": {"allocations": n, "conflicts": n, "listening": n, "undeclared": n},
     "allocations": [{"service", "env", "range", "start", "end", "protocol", "host", "source",
                      "kind", "where", "description", "live", "live_detail", "pids",
                      "conflict", "suggestion", "error"}, ...],
     "conflicts": [{"kind", "title", "env", "message", "parties": [{"service", "env",
                    "range", "source", "where"}], "move": str|null, "suggestion": str|null}],
     "listeners": [{"port", "host", "protocol", "pid", "process"}], "errors": [str]}
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from deploytui.cli.common import load_settings

__all__ = ["conflict_marker", "register", "run", "snapshot_json"]

CONFLICT_GLYPH = "✗"
OK_GLYPH = "✓"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ports", help="port allocations: check for conflicts, show the table",
                       description="Port allocations from the registry, inline config tables, "
                       "compose files and Kubernetes: conflicts, live listeners.")
    psub = p.add_subparsers(dest="ports_command", metavar="SUBCOMMAND", required=True)
    chk = psub.add_parser(
        "check", help="print allocations and conflicts (--ci: exit 1 on any conflict)",
        description="Print the allocation table and every conflict. With --ci, exit 1 when "
        "there is a conflict and 0 when clean (also skips live probes, which do not change the "
        "result). Exit 2 when a registry or compose file is invalid or Kubernetes cannot be read.")
    chk.add_argument("--ci", action="store_true", help="exit 1 on any conflict; no live probes")
    shw = psub.add_parser("show", help="print the allocation table",
                          description="Print the allocation table with live state. Exit 2 when "
                          "a registry or compose file is invalid.")
    for sp in (chk, shw):
        sp.add_argument("--env", help="only this env (dev, staging, prod, ...)")
        sp.add_argument("--format", choices=("text", "json"), default="text")
        sp.add_argument("--no-probe", action="store_true", help="do not probe live listeners")
        sp.add_argument("--no-kube", action="store_true", help="do not read Kubernetes")
        sp.add_argument("-c", "--config", dest="sub_config", help="config file")
        sp.set_defaults(func=run)


def conflict_marker(kinds: list[str] | tuple[str, ...]) -> str:
    """Glyph and word, never colour alone: ``✗ duplicate_port`` or ``✓ ok``."""
    return f"{CONFLICT_GLYPH} {', '.join(kinds)}" if kinds else f"{OK_GLYPH} ok"


def snapshot_json(snap: Any, settings: Any, env: str | None) -> dict[str, Any]:
    def party(a: Any) -> dict[str, Any]:
        return {"service": a.service, "env": a.env, "range": a.range_text, "source": a.source,
                "where": a.where}

    return {
        "schema": 1,
        "taken_at": datetime.fromtimestamp(snap.taken_at, UTC).isoformat(),
        "config": settings.source_path or None,
        "env": env,
        "ok": snap.ok and not snap.errors,
        "summary": snap.summary(),
        "allocations": [r.to_json() for r in snap.rows],
        "conflicts": [{
            "kind": c.kind, "title": c.title, "env": c.env, "message": c.message,
            "parties": [party(p) for p in c.parties],
            "move": c.move.label if c.move else None,
            "suggestion": c.suggestion_text or None,
        } for c in snap.conflicts],
        "listeners": [{"port": x.port, "host": x.host, "protocol": x.protocol, "pid": x.pid,
                       "process": x.process} for x in snap.listeners],
        "errors": list(snap.errors),
    }


def _print_table(console: Console, snap: Any) -> None:
    table = Table(box=None, pad_edge=False, show_edge=False)
    for col in ("SERVICE", "ENV", "RANGE", "PROTO", "SOURCE", "LIVE", "CONFLICT", "DECLARED IN"):
        table.add_column(col)
    for r in snap.rows:
        a = r.allocation
        kinds = sorted({c.kind for c in r.conflicts})
        table.add_row(escape(a.service), escape(a.env), a.range_text, a.protocol, a.source,
                      escape(r.live.text), conflict_marker(kinds), escape(a.where))
    for x in snap.listeners:
        table.add_row("(undeclared)", "", str(x.port), x.protocol, "live",
                      escape(f"listening ({x.owner})"), "? undeclared", f"{x.host}:{x.port}")
    if snap.rows or snap.listeners:
        console.print(table)
    else:
        console.print("  (no allocations)")


def run(args: argparse.Namespace) -> int:
    from deploytui.sources import ports

    settings = load_settings(args)
    if not ports.is_configured(settings):
        # a CI step must not pass because it found no config: say so, and "could not run"
        where = settings.source_path or "no config file found"
        print(f"deploytui: no port allocations configured ({where}): set [ports] registry, "
              "compose_files or [ports.allocations], or enable [kubernetes]", file=sys.stderr)
        return 2
    check = args.ports_command == "check"
    ci = check and args.ci
    probe = False if (args.no_probe or ci) else None
    kube = False if args.no_kube else None
    full = asyncio.run(ports.collect(settings, probe=probe, kube=kube))
    snap = full.filtered(args.env)
    if args.env and not snap.rows:
        known = sorted({r.allocation.env for r in full.rows} | set(settings.ports.allowed))
        if args.env not in known:
            print(f"deploytui: no env {args.env!r} in the port allocations "
                  f"(envs: {', '.join(known) or 'none'})", file=sys.stderr)
            return 2
    if args.format == "json":
        sys.stdout.write(json.dumps(snapshot_json(snap, settings, args.env), indent=2) + "\n")
    else:
        console = Console(highlight=False, soft_wrap=False,
                          width=None if sys.stdout.isatty() else 200)
        s = snap.summary()
        where = f" in {args.env}" if args.env else ""
        console.print(f"PORTS{where}  {s['allocations']} allocations, {s['conflicts']} conflicts, "
                      f"{s['listening']} listening, {s['undeclared']} undeclared listeners")
        _print_table(console, snap)
        if check:
            console.print()
            if snap.conflicts:
                console.print(f"CONFLICTS ({len(snap.conflicts)})")
                for c in snap.conflicts:
                    first, *rest = c.explain().splitlines()
                    console.print(f"{CONFLICT_GLYPH} {escape(first)}")
                    for line in rest:
                        console.print(f"  {escape(line)}")
            else:
                console.print(f"{OK_GLYPH} no conflicts")
        for err in snap.errors:
            console.print(f"could not read: {escape(err)}")
    if snap.errors:
        for err in snap.errors:
            print(f"deploytui: {err}", file=sys.stderr)
        return 2
    if ci and snap.conflicts:
        return 1
    return 0
