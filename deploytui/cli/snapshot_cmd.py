"""``deploytui snapshot``: every pane once, as text or JSON, then exit 0 / 1 / 2."""

from __future__ import annotations

import argparse
import asyncio
import sys

from rich.console import Console

from deploytui.cli.common import load_settings

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("snapshot", help="poll every source once and print what each pane shows",
                       description="Poll every configured source once and print what each pane "
                       "would show. Exit 0 when everything is healthy, 1 when anything is not, "
                       "2 when a source could not be read.")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("-c", "--config", dest="sub_config", help="config file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from deploytui import snapshot

    settings = load_settings(args)
    sections = asyncio.run(snapshot.collect(settings))
    if args.format == "json":
        sys.stdout.write(snapshot.render_json(sections, settings) + "\n")
    else:
        console = Console(no_color=None, highlight=False, soft_wrap=False)
        snapshot.render_text(sections, console)
    return snapshot.exit_code(sections)
