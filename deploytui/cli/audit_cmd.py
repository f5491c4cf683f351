"""``deploytui audit``: export the audit log as JSON lines or a table."""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from typing import Any

from deploytui.cli.common import load_settings
from deploytui.model import AuditRecord

__all__ = ["audit_to_json", "register", "run"]

#: the runbook's deployment-log fields first, then what deploytui adds
FIELDS = ("timestamp", "service", "version", "environment", "ports", "deployer", "status",
          "duration", "action", "target", "correlation_id", "before", "after", "message")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("audit", help="export the audit log (jsonl or a table)",
                       description="Print the audit log: every action, acknowledgement, guard "
                       "evaluation and incident change, oldest first. Secrets are masked.")
    p.add_argument("--since", metavar="T",
                   help="only records since T: ISO time or a duration meaning 'ago' (24h)")
    p.add_argument("--until", metavar="T", help="only records until T")
    p.add_argument("--format", choices=("jsonl", "table"), default="table")
    p.add_argument("-c", "--config", dest="sub_config", metavar="FILE", help="config file")
    p.set_defaults(func=run)


def audit_to_json(record: AuditRecord) -> dict[str, Any]:
    """One record with the runbook's field names and an ISO timestamp (UTC)."""
    return {
        "timestamp": datetime.fromtimestamp(record.ts, UTC).isoformat(),
        "service": record.service, "version": record.version,
        "environment": record.environment, "ports": record.ports, "deployer": record.deployer,
        "status": record.status, "duration": round(record.duration, 3), "action": record.action,
        "target": record.target, "correlation_id": record.correlation_id,
        "before": dict(record.before), "after": dict(record.after), "message": record.message,
    }


def run(args: argparse.Namespace) -> int:
    from deploytui.postmortem import parse_time
    from deploytui.store import open_store

    now = time.time()
    try:
        since = parse_time(args.since, now) if args.since else None
        until = parse_time(args.until, now) if args.until else None
    except ValueError as exc:
        print(f"deploytui audit: {exc}", file=sys.stderr)
        return 2
    settings = load_settings(args)
    with open_store(settings) as store:
        records = store.audit(since=since, until=until)
    if args.format == "jsonl":
        for r in records:
            sys.stdout.write(json.dumps(audit_to_json(r), sort_keys=False, default=str) + "\n")
        return 0
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("time (UTC)", "action", "target", "status", "deployer", "service",
                   "version", "env", "duration", "correlation id", "message"):
        table.add_column(column, no_wrap=column != "message", overflow="fold")
    for r in records:
        cells = (datetime.fromtimestamp(r.ts, UTC).strftime("%Y-%m-%d %H:%M:%S"), r.action,
                 r.target, r.status, r.deployer, r.service, r.version, r.environment,
                 f"{r.duration:.1f}s", r.correlation_id, r.message)
        table.add_row(*(Text(c) for c in cells))  # text, never markup
    # a pipe or a file gets full lines, not an 80-column fold
    console = Console(highlight=False, soft_wrap=False,
                      width=None if sys.stdout.isatty() else 240)
    if records:
        console.print(table)
    else:
        console.print("no audit records" + (" in that window" if since or until else ""))
    return 0
