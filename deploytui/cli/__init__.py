"""Command line entry point.

Each subcommand lives in its own module with two functions:

    register(sub: argparse._SubParsersAction) -> None   # adds its parser, sets func=run
    run(args: argparse.Namespace) -> int                 # returns the exit code

Exit codes (stable, scripts depend on them): 0 ok / healthy, 1 something is not healthy or a
check found problems, 2 could not run (bad config, unreachable source, bad arguments); 130
interrupted, 141 the output pipe was closed (``| head``), as for a C tool killed by SIGPIPE.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import sys
from collections.abc import Sequence

from deploytui import __version__
from deploytui.errors import ConfigError, DeploytuiError

__all__ = ["build_parser", "main"]

# Subcommand modules, in the order --help lists them.
SUBCOMMANDS = (
    "demo_cmd",
    "snapshot_cmd",
    "config_cmd",
    "ports_cmd",
    "guard_cmd",
    "postmortem_cmd",
    "audit_cmd",
    "notify_cmd",
    "serve_cmd",
)
# module -> the command words it registers (so the console's start-up imports none of them)
COMMAND_WORDS = {
    "demo_cmd": ("demo",), "snapshot_cmd": ("snapshot",), "config_cmd": ("init", "config"),
    "ports_cmd": ("ports",), "guard_cmd": ("guard",), "postmortem_cmd": ("postmortem",),
    "audit_cmd": ("audit",), "notify_cmd": ("notify",), "serve_cmd": ("serve",),
}

EPILOG = """\
examples:
  deploytui demo                          the whole console against a simulated fleet
  deploytui demo --fleet-only             just the fleet; prints its kubeconfig and config paths
  deploytui --config ops.toml --read-only the console, read-only (wall monitors, incident calls)
  deploytui init && deploytui config check
  deploytui snapshot --format json | jq '.health.rows[] | select(.state != "healthy")'
  deploytui ports check --ci              exit 1 on any port conflict (CI step, pre-commit hook)
  deploytui guard --deployment shop/checkout --timeout 30m --auto-rollback
  deploytui postmortem --since 2h -o incident.md
  deploytui audit --since 24h --format jsonl

exit codes: 0 ok, 1 not healthy / problems found, 2 could not run (bad config, bad arguments)
"""


def add_console_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by the console and the commands that start it (demo).

    Defaults are SUPPRESS so a subcommand's copy never overwrites a value given before it.
    """
    parser.add_argument("--read-only", action="store_true", default=argparse.SUPPRESS,
                        help="refuse every mutating action (also DEPLOYTUI_READ_ONLY=1)")
    parser.add_argument("--theme", default=argparse.SUPPRESS, help="theme name (dark, light, high-contrast, colorblind, ...)")
    parser.add_argument("--wall", action="store_true", default=argparse.SUPPRESS,
                        help="wall-monitor mode: no cursor, large glyphs, implies --read-only")
    parser.add_argument("--lock-read-only", action="store_true", default=argparse.SUPPRESS,
                        help="with --read-only: refuse switching read-only off at run time")
    parser.add_argument("--context", default=argparse.SUPPRESS, help="Kubernetes context (overrides the config)")
    parser.add_argument("-n", "--namespace", action="append", dest="namespaces", default=argparse.SUPPRESS,
                        help="Kubernetes namespace to watch (repeatable; overrides the config)")


def _wanted(argv: Sequence[str] | None) -> set[str]:
    """Subcommand modules the arguments can reach: all of them for --help or no argv."""
    if argv is None or any(a in ("-h", "--help") for a in argv):
        return set(SUBCOMMANDS)
    words = set(argv)
    wanted = {m for m, names in COMMAND_WORDS.items() if words & set(names)}
    takes_value = {"-c", "--config", "--theme", "--context", "-n", "--namespace"}
    unknown = [a for i, a in enumerate(argv)
               if not a.startswith("-") and (i == 0 or argv[i - 1] not in takes_value)]
    if unknown and not wanted:
        # a positional that is not a command (a typo, or an option's value): load all so that
        # argparse can name the choices, or parse the value
        return set(SUBCOMMANDS)
    return wanted


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; with ``argv``, only the subcommand modules those arguments name are imported."""
    parser = argparse.ArgumentParser(
        prog="deploytui",
        description="A terminal console for on-call engineers: health, rollouts, ports and "
        "alerts on one screen; rollback, scale, restart, acknowledge and post-mortems.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"deploytui {__version__}")
    parser.add_argument("-c", "--config", help="config file (default: $DEPLOYTUI_CONFIG, then "
                        "$XDG_CONFIG_HOME/deploytui/config.toml)")
    add_console_options(parser)
    parser.set_defaults(func=None)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = _wanted(argv)
    for name in SUBCOMMANDS:
        if name not in wanted:
            continue
        module = f"deploytui.cli.{name}"
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:  # a real import error inside the module: surface it
                raise
            continue  # a subcommand not built yet in this checkout
        mod.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # Start-up allocates objects that live as long as the process, and the collector walks them
    # over and over (about 165 collections, 75 ms before the console's first frame). Collect
    # nothing until then: the console turns the collector back on after its first frame
    # (see DeployApp.on_mount); every other command gets it back once its arguments are parsed.
    gc.disable()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser(argv)
        args = parser.parse_args(argv)
    except BaseException:
        gc.enable()
        raise
    try:
        if args.func is None:
            from deploytui.cli.console_cmd import run as run_console

            try:
                return run_console(args)
            finally:
                gc.enable()  # a bad config ends the console before its first frame
        gc.enable()
        code = int(args.func(args))
        sys.stdout.flush()  # a closed pipe shows up here, not at interpreter exit
        return code
    except BrokenPipeError:
        # `deploytui snapshot | head -1`: the reader left; stop quietly, like a C tool on SIGPIPE
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except ConfigError as exc:
        print(f"deploytui: configuration error in {exc}", file=sys.stderr)
        return 2
    except DeploytuiError as exc:
        print(f"deploytui: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
