"""``deploytui demo``: the console against a simulated fleet, or (``--fleet-only``) just the fleet."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from deploytui.cli import add_console_options

__all__ = ["register", "run"]

EPILOG = """\
examples:
  deploytui demo                                   console + 12 simulated services
  deploytui demo --scenario bad-rollout            watch a crash-looping rollout, then roll back
  deploytui demo --fleet-only --workdir /tmp/fleet point kubectl or other consoles at it
  deploytui demo --list-scenarios

The fleet runs on 127.0.0.1 only. Steer a service while it runs:
  curl -X POST -d '{"error_rate": 0.3}' http://127.0.0.1:PORT/_sim/services/prod/cart
"""


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "demo",
        help="the console against a simulated fleet (no set-up)",
        description="Start a simulated fleet (services over HTTP, a Kubernetes API, a "
        "scenario) on 127.0.0.1, and the console against it.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--services", type=int, default=12, metavar="N",
                        help="number of simulated services, 1-5000 (default 12)")
    parser.add_argument("--scenario", default="steady", metavar="NAME",
                        help="what happens to the fleet (default steady; see --list-scenarios)")
    parser.add_argument("--seed", type=int, default=0, help="seed for every random choice")
    parser.add_argument("--list-scenarios", action="store_true",
                        help="print the scenarios and exit")
    parser.add_argument("--fleet-only", action="store_true",
                        help="run just the fleet; print its kubeconfig and config paths")
    parser.add_argument("--workdir", type=Path, metavar="DIR",
                        help="where to write the config, kubeconfig and port registry "
                        "(default: a temporary folder removed on exit)")
    parser.add_argument("--time-scale", type=float, default=1.0, metavar="X",
                        help="run the scenario X times faster (default 1)")
    parser.add_argument("--no-kubernetes", action="store_true",
                        help="do not start the simulated Kubernetes API")
    add_console_options(parser)
    # Unset options must not hide the same options given before "demo" (deploytui --wall demo).
    for action in parser._actions:
        if action.dest in ("read_only", "theme", "wall", "context", "namespaces"):
            action.default = argparse.SUPPRESS
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from deploytui.demo.scenarios import SCENARIOS, scenario_lines

    if args.list_scenarios:
        print("\n".join(scenario_lines()))
        return 0
    if args.scenario not in SCENARIOS:
        print(f"deploytui demo: unknown scenario {args.scenario!r}; choose one of: "
              f"{', '.join(SCENARIOS)}", file=sys.stderr)
        return 2
    if not 1 <= args.services <= 5000:
        print(f"deploytui demo: --services must be 1-5000, not {args.services}", file=sys.stderr)
        return 2
    if args.time_scale <= 0:
        print("deploytui demo: --time-scale must be > 0", file=sys.stderr)
        return 2

    from deploytui.demo.fleet import Fleet

    fleet = Fleet(services=args.services, scenario=args.scenario, seed=args.seed,
                  kubernetes=not args.no_kubernetes, time_scale=args.time_scale,
                  workdir=args.workdir)
    try:
        fleet.start()
    except (RuntimeError, OSError) as exc:
        print(f"deploytui demo: {exc}", file=sys.stderr)
        return 2
    try:
        if args.fleet_only:
            return _serve_fleet(fleet, args)
        from deploytui.cli.console_cmd import start_console

        return start_console(args, config_path=fleet.config_path, mode="demo")
    finally:
        fleet.stop()


def _serve_fleet(fleet: Any, args: argparse.Namespace) -> int:
    """Print where the fleet is, then run until SIGINT / SIGTERM."""
    kube = fleet.kube is not None
    lines = [
        f"deploytui demo: {len(fleet.services)} simulated services, scenario {args.scenario} "
        f"(seed {args.seed}, time scale {args.time_scale:g})",
        f"services: {fleet.base_url}  (/svc/<env>/<name>/health, /metrics; "
        f"steer: POST {fleet.base_url}/_sim/services/<env>/<name>)",
        f"metrics: {fleet.metrics_all_url}",
        f"kubeconfig: {fleet.kubeconfig_path}" if kube
        else "kubeconfig: none (the simulated Kubernetes API is not running)",
        f"config: {fleet.config_path}",
        f"registry: {fleet.registry_path}",
        "try:",
    ]
    if kube:
        lines.append(f"  kubectl --kubeconfig {fleet.kubeconfig_path} get deploy -A")
    lines += [f"  deploytui --config {fleet.config_path}",
              "Ctrl-C (or SIGTERM) stops the fleet."]
    print("\n".join(lines), flush=True)

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    shown = 0
    try:
        while not stop.wait(0.25):
            if not fleet.running:
                print("deploytui demo: the fleet stopped unexpectedly", file=sys.stderr)
                return 1
            events = list(fleet.events)
            for t, message in events[shown:]:
                print(f"[{t:7.1f}s] {message}", flush=True)
            shown = len(events)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("deploytui demo: stopping the fleet", flush=True)
    return 0
