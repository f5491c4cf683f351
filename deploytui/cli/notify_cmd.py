"""``deploytui notify``: the notification queue from the command line.

    deploytui notify dead-letters [--format table|jsonl]   messages that gave up after 5 attempts
    deploytui notify retry ID                              requeue one and try it right now
    deploytui notify test CHANNEL                          send a test message to a channel

Webhook URLs and routing keys never appear in the output (masked: ``https://hooks.slack.com/***``).
Exit codes: 0 ok; 1 the delivery failed (retry, test); 2 could not run (unknown id or channel,
bad config).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

from deploytui.cli.common import load_settings

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("notify", help="notification queue: dead letters, retry, test",
                       description="Inspect and retry the notification queue, or send a test "
                       "message. Secrets are masked.")
    p.add_argument("-c", "--config", dest="sub_config", help="config file")
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    dead = verbs.add_parser("dead-letters", help="list messages that were given up on")
    dead.add_argument("--format", choices=("table", "jsonl"), default="table")
    dead.add_argument("--limit", type=int, default=100)
    dead.add_argument("-c", "--config", dest="sub_config", default=argparse.SUPPRESS)
    retry = verbs.add_parser("retry", help="requeue one message and try to deliver it now")
    retry.add_argument("id", type=int)
    retry.add_argument("-c", "--config", dest="sub_config", default=argparse.SUPPRESS)
    test = verbs.add_parser("test", help="send a test message to one channel")
    test.add_argument("channel", help="channel name from [[notify.channels]]")
    test.add_argument("-c", "--config", dest="sub_config", default=argparse.SUPPRESS)
    p.set_defaults(func=run)


def _when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S") if ts else ""


def _row(n: Any, secrets: tuple[str, ...]) -> dict[str, Any]:
    from deploytui.notify import mask_text

    payload = n.payload or {}
    target = str(payload.get("deployment") or payload.get("target") or payload.get("service")
                 or (f"incident #{payload['incident_id']}" if payload.get("incident_id") else ""))
    return {"id": n.id, "created": datetime.fromtimestamp(n.created_at, UTC).isoformat(),
            "event": n.event, "channel": n.channel, "attempts": n.attempts, "target": target,
            "dedup_key": n.dedup_key, "last_error": mask_text(n.last_error, secrets)}


def run(args: argparse.Namespace) -> int:
    from deploytui.notify import channel_secrets
    from deploytui.store import open_store

    settings = load_settings(args)
    secrets = channel_secrets(settings.notify)
    if args.verb == "test":
        return _test(settings, args.channel, secrets)
    with open_store(settings) as store:
        if args.verb == "dead-letters":
            return _dead_letters(store, args, secrets)
        return _retry(store, settings, args.id, secrets)


def _dead_letters(store: Any, args: argparse.Namespace, secrets: tuple[str, ...]) -> int:
    rows = [_row(n, secrets) for n in store.dead_letters(limit=max(1, args.limit))]
    if args.format == "jsonl":
        for row in rows:
            sys.stdout.write(json.dumps(row) + "\n")
        return 0
    if not rows:
        print("no dead letters")
        return 0
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("id", "created (UTC)", "event", "channel", "target", "attempts", "last error"):
        table.add_column(column, no_wrap=column != "last error", overflow="fold")
    for r in rows:
        table.add_row(*(Text(str(c)) for c in (
            r["id"], r["created"][:19].replace("T", " "), r["event"], r["channel"], r["target"],
            r["attempts"], r["last_error"])))
    Console(highlight=False, soft_wrap=False,
            width=None if sys.stdout.isatty() else 240).print(table)
    print(f"{len(rows)} dead letter(s); `deploytui notify retry ID` sends one again")
    return 0


def _retry(store: Any, settings: Any, notification_id: int, secrets: tuple[str, ...]) -> int:
    from deploytui.notify import DeliveryWorker, mask_text

    found = store.notification(notification_id)
    if found is None:
        print(f"deploytui notify: no notification #{notification_id} in {store.path}",
              file=sys.stderr)
        return 2
    if found.status == "delivered":
        print(f"notification #{notification_id} ({found.event} to {found.channel}) was already "
              f"delivered at {_when(found.delivered_at)} UTC")
        return 0
    store.requeue_notification(notification_id)
    result = DeliveryWorker(store, settings.notify).deliver_one(notification_id)
    assert result is not None
    if result.ok:
        print(f"notification #{notification_id} ({result.event}) delivered to {result.channel}")
        return 0
    state = ("dead-lettered again" if result.status == "dead" else
             f"queued; next attempt at {_when(result.next_attempt)} UTC")
    print(f"notification #{notification_id} ({result.event}) to {result.channel} failed: "
          f"{mask_text(result.error, secrets)} — {state}")
    return 1


def _test(settings: Any, name: str, secrets: tuple[str, ...]) -> int:
    from deploytui.config import operator_identity
    from deploytui.notify import describe_channel, mask_text, send_now

    channel = next((c for c in settings.notify.channels if c.name == name), None)
    if channel is None:
        known = ", ".join(c.name for c in settings.notify.channels) or "none configured"
        print(f"deploytui notify: no channel {name!r} (channels: {known})", file=sys.stderr)
        return 2
    who = operator_identity(settings)
    payload = {"target": "deploytui notify test", "operator": who,
               "message": f"Test message from deploytui ({who}); nothing is wrong.",
               "dedup_key": f"deploytui/test/{who}"}
    error = send_now(channel, "rollout_started", payload, secrets=secrets)
    if not error and channel.kind == "pagerduty":   # do not leave a test incident open
        error = send_now(channel, "rollout_completed", payload, secrets=secrets)
    if error:
        print(f"test message to {describe_channel(channel)} failed: {mask_text(error, secrets)}")
        return 1
    print(f"test message delivered to {describe_channel(channel)}")
    return 0
