"""``deploytui guard``: the auto-rollback guard without the UI — a CI step after a deploy.

    deploytui guard --deployment shop/checkout --timeout 30m --auto-rollback

Watches the deployment for ``--timeout`` (default ``[guard] window_minutes``), evaluating the
``[guard]`` criteria every ``interval_seconds`` and printing one progress line per evaluation.
Exit codes: 0 healthy for the whole window, 1 rolled back (``--auto-rollback``) or would roll back
(without it, or with ``--dry-run``; also when a rollback was due but blocked: lock, cooldown,
read-only, no previous revision), 2 could not evaluate (metrics, health or Kubernetes
unreadable, bad arguments). Every evaluation lands in the audit log like in the console.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time
from datetime import UTC, datetime

from deploytui.cli.common import load_settings, parse_duration
from deploytui.guard import CRITERION_LABELS, Decision
from deploytui.guard_runner import GuardOutcome, GuardRunner, Prompt

__all__ = ["register", "run"]

_DEPLOYMENT = re.compile(r"^[a-z0-9.-]+/[a-z0-9.-]+$")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "guard", help="watch a rollout and roll it back on bad metrics (CI step)",
        description="Run the auto-rollback guard on one deployment without the UI. Exit 0: "
        "healthy; 1: rolled back or would roll back; 2: could not evaluate.")
    p.add_argument("--deployment", required=True, metavar="NS/NAME",
                   help="the Kubernetes Deployment, namespace/name")
    p.add_argument("--timeout", metavar="DURATION",
                   help="how long to watch (90s, 30m, 1h; default [guard] window_minutes)")
    p.add_argument("--auto-rollback", action="store_true",
                   help="roll back when the guard trips (after [guard] countdown_seconds; "
                   "Ctrl-C aborts); without it the guard only reports")
    p.add_argument("--dry-run", action="store_true",
                   help="never roll back; say what would be done")
    p.add_argument("--interval", metavar="DURATION",
                   help="time between evaluations (default [guard] interval_seconds)")
    p.add_argument("-c", "--config", dest="sub_config", help="config file")
    p.set_defaults(func=run)


def _clock_text(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%S")


def progress_line(d: Decision) -> str:
    """``12:01:30 shop/checkout rev 2 failing | error rate % 42 > 10 (1/3) | p95 ... ok``."""
    parts = []
    for r in d.results:
        label = CRITERION_LABELS.get(r.criterion, r.criterion)
        if r.status == "inconclusive":
            parts.append(f"{label}: no data")
        elif r.status == "pass":
            parts.append(f"{label} ok")
        else:
            parts.append(f"{label} {r.value:.3g} > {r.threshold:g} ({r.failures}/{r.limit})")
    head = f"{_clock_text(d.ts)} {d.deployment} rev {d.revision or '?'} {d.verdict}"
    if d.action != "none":
        head += f" -> {d.action}"
    return head + " | " + " | ".join(parts)


def run(args: argparse.Namespace) -> int:
    out = sys.stdout
    if not _DEPLOYMENT.match(args.deployment):
        print(f"deploytui guard: --deployment must be namespace/name, got {args.deployment!r}",
              file=sys.stderr)
        return 2
    try:
        window = parse_duration(args.timeout) if args.timeout else None
        interval = parse_duration(args.interval) if args.interval else None
    except ValueError as exc:
        print(f"deploytui guard: {exc}", file=sys.stderr)
        return 2
    settings = load_settings(args)
    from deploytui.notify import install_notifier
    from deploytui.runtime import build_runtime

    rt = build_runtime(settings, with_sources=False)
    install_notifier(rt)
    mode = "auto" if args.auto_rollback else "propose"

    def on_prompt(prompt: Prompt) -> None:
        if prompt.kind == "countdown":
            print(f"guard tripped: rolling back {prompt.deployment} in "
                  f"{prompt.remaining(time.time()):.0f} s (Ctrl-C aborts)", file=out, flush=True)
            for line in prompt.evidence:
                print(f"  {line}", file=out, flush=True)

    runner = GuardRunner(rt, args.deployment, mode=mode, armed=args.auto_rollback,
                         dry_run=True if args.dry_run else None, window_seconds=window,
                         interval_seconds=interval,
                         on_prompt=on_prompt if args.auto_rollback else None,  # no one to ask
                         on_decision=lambda d: print(progress_line(d), file=out, flush=True))
    watch = runner.guard_settings.window_minutes * 60
    print(f"guarding {args.deployment} for {watch:g} s every {runner.interval:g} s "
          f"({'auto-rollback' if args.auto_rollback else 'report only'}"
          f"{', dry run' if runner.guard_settings.dry_run else ''})", file=out, flush=True)
    if runner.service is None:
        print(f"note: no [[services]] entry has deployment = {args.deployment!r}; metrics and "
              "health cannot be read", file=out, flush=True)
    try:
        outcome: GuardOutcome = asyncio.run(runner.run())
    finally:
        worker = rt.extras.get("notify_worker")
        if worker is not None:
            worker.stop()
            try:
                worker.deliver_due()     # one last attempt; what fails stays queued
            except Exception as exc:
                print(f"note: notifications not delivered yet: {exc}", file=sys.stderr)
        store = getattr(rt.journal, "store", rt.journal)
        close = getattr(store, "close", None)
        if close is not None:
            close()
    if outcome.last is not None and outcome.last.tripped:
        for line in outcome.last.evidence():
            print(f"  {line}", file=out)
    print(f"result: {outcome.status.replace('_', ' ')} — {outcome.message}", file=out)
    return outcome.exit_code
