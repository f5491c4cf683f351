"""``deploytui postmortem``: write a post-mortem for an incident or a time window; print its path."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from deploytui.cli.common import load_settings

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "postmortem", help="write a post-mortem (markdown) for an incident or a time window",
        description="Write a post-mortem following the runbook's template from the store's "
        "timeline and audit log, and print the file's path. With no option: the most recent "
        "incident. Times are ISO (2026-11-23T13:00, UTC unless a zone is given) or a duration "
        "meaning 'ago' (90m, 2h, 1d). Never overwrites: an existing name gets -2, -3, ...")
    p.add_argument("--incident", type=int, metavar="ID", help="incident id (see the timeline, t)")
    p.add_argument("--since", metavar="T", help="window start: ISO time or duration ago (2h)")
    p.add_argument("--until", metavar="T", help="window end (default: now)")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="file to write (default: [postmortem] output_dir / date-and-id name)")
    p.add_argument("-c", "--config", dest="sub_config", metavar="FILE", help="config file")
    p.set_defaults(func=run)


def _fail(message: str) -> int:
    print(f"deploytui postmortem: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    from deploytui.postmortem import generate_postmortem, parse_time
    from deploytui.store import open_store

    if args.incident is not None and (args.since or args.until):
        return _fail("use either --incident or --since/--until, not both")
    now = time.time()
    try:
        since = parse_time(args.since, now) if args.since else None
        until = parse_time(args.until, now) if args.until else None
    except ValueError as exc:
        return _fail(str(exc))
    settings = load_settings(args)
    store = open_store(settings)
    try:
        path = generate_postmortem(store, settings, incident_id=args.incident, since=since,
                                   until=until, now=now,
                                   output=Path(args.output) if args.output else None)
    except ValueError as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(f"cannot write the post-mortem: {exc.strerror or exc} "
                     f"({getattr(exc, 'filename', '') or ''})")
    finally:
        store.close()
    print(path)
    return 0
