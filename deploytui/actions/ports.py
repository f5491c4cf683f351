"""``port_reassign``: move a service's port allocation in the registry file.

Only the ``[ports] registry`` file is rewritten. Inline ``[ports.allocations]`` tables live in
the config file, which deploytui never rewrites (its comments are its documentation); compose
files and Kubernetes objects belong to other tools. Those are refused with where to edit instead.

The write keeps everything else in the file:

* TOML: the ``start``/``end`` numbers are edited in place on their lines, so comments and layout
  stay; when the entry is not written as a plain ``[service.env]`` table (inline tables, dotted
  keys) the file is re-serialised with ``tomli-w`` — all data kept, comments lost. Either way the
  result is parsed back and compared with the intended data before it replaces the file.
* JSON stays JSON, with its key order and indentation.

The file is replaced atomically (temp file + rename) and only if the entry still holds the
range the plan was made from.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import tomli_w

from deploytui.actions.door import ActionContext, ActionPlan, ActionResult
from deploytui.config import Settings
from deploytui.errors import ActionFailed, ActionRefused, ConfigError
from deploytui.sources.ports import PortRow, PortsSnapshot, read_registry_data
from deploytui.sources.ports_conflicts import PortAllocation, format_range, suggest_free

__all__ = [
    "PortReassignAction",
    "find_row",
    "make_port_reassign",
    "rewrite_refusal",
    "rewrite_registry",
    "row_key",
]


def rewrite_refusal(a: PortAllocation) -> str | None:
    """Why deploytui will not rewrite where ``a`` was declared (None: the registry, it will)."""
    if a.source == "registry":
        return None
    if a.source == "config":
        return (f"{a.label} is declared inline in the config ({a.where}); deploytui does not "
                "rewrite the config file — edit that table by hand, or move the allocation into "
                "the [ports] registry file so it can be reassigned here")
    if a.source == "compose":
        return f"{a.label} is published by a compose file ({a.where}); edit the compose file"
    if a.source == "kubernetes":
        return f"{a.label} comes from Kubernetes ({a.where}); change it with kubectl / your manifests"
    return f"{a.label} comes from {a.source} ({a.where}), which deploytui cannot rewrite"


def _entry(data: Any, a: PortAllocation) -> dict[str, Any] | None:
    envs = data.get(a.service) if isinstance(data, dict) else None
    entry = envs.get(a.env) if isinstance(envs, dict) else None
    return entry if isinstance(entry, dict) else None


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _current(entry: Mapping[str, Any]) -> tuple[int | None, int | None]:
    start = _as_int(entry.get("start", entry.get("port")))
    end = _as_int(entry["end"]) if "end" in entry else start
    return start, end


def _updated(entry: dict[str, Any], start: int, end: int) -> None:
    """Set the new range, keeping the entry's own keys and value types (str stays str)."""
    def typed(key: str, value: int) -> Any:
        return str(value) if isinstance(entry.get(key), str) else value

    key = "start" if "start" in entry or "port" not in entry else "port"
    entry[key] = typed(key, start)
    if "end" in entry or end != start:
        entry["end"] = typed("end", end)


def _toml_in_place(text: str, a: PortAllocation, entry: Mapping[str, Any]) -> str | None:
    """Edit the numbers on their lines inside ``[service.env]``; None when not written that way."""
    lines = text.splitlines(keepends=True)
    inside = False
    new_values = {k: entry[k] for k in ("start", "end", "port") if k in entry}
    done: set[str] = set()
    value_re = re.compile(r"^(\s*)(start|end|port)(\s*=\s*)(\"?)(\d+)(\"?)(\s*(?:#.*)?)$")
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("["):
            try:
                header = tomllib.loads(stripped if not stripped.startswith("[[") else "")
            except tomllib.TOMLDecodeError:
                header = {}
            inside = header == {a.service: {a.env: {}}}
            continue
        if not inside:
            continue
        body = line.rstrip("\r\n")
        m = value_re.match(body)
        if m and m.group(2) in new_values and m.group(2) not in done:
            lines[i] = (f"{m.group(1)}{m.group(2)}{m.group(3)}{m.group(4)}"
                        f"{new_values[m.group(2)]}{m.group(6)}{m.group(7)}{line[len(body):]}")
            done.add(m.group(2))
    if done != set(new_values):
        return None
    return "".join(lines)


def _json_indent(text: str) -> int | str | None:
    if "\n" not in text.strip():
        return None
    m = re.search(r"\n([ \t]+)\S", text)
    if not m:
        return None
    return "\t" if m.group(1).startswith("\t") else len(m.group(1))


def rewrite_registry(path: Path, shown: str, a: PortAllocation, expect: tuple[int, int],
                     new: tuple[int, int]) -> None:
    """Move ``a`` from ``expect`` to ``new`` in the registry file at ``path``, atomically.

    Raises ActionRefused when the entry changed since ``expect`` was read (nothing written),
    ActionFailed when the file cannot be written.
    """
    try:
        fmt, data, text = read_registry_data(path, shown)
    except ConfigError as exc:
        raise ActionRefused(f"cannot reassign {a.label}: {exc}", reason="invalid") from None
    entry = _entry(data, a)
    if entry is None:
        raise ActionRefused(f"{a.label} is no longer in {shown}; refresh and try again",
                            reason="changed")
    if _current(entry) != expect:
        start, end = _current(entry)
        now = format_range(start, end) if start is not None and end is not None else "malformed"
        raise ActionRefused(f"{a.label} changed in {shown} since it was read "
                            f"({format_range(*expect)} -> {now}); refresh and try again",
                            reason="changed")
    _updated(entry, *new)
    if fmt == "json":
        out = json.dumps(data, indent=_json_indent(text), ensure_ascii=False)
        out += "\n" if text.endswith("\n") else ""
    else:
        out = _toml_in_place(text, a, entry) or ""
        with contextlib.suppress(tomllib.TOMLDecodeError):
            if out and tomllib.loads(out) != data:
                out = ""
        if not out:
            out = tomli_w.dumps(data)
    _atomic_write(path, out)


def _atomic_write(path: Path, text: str) -> None:
    path = path.resolve()  # a symlinked registry (e.g. into a repo checkout) stays a symlink
    try:
        mode = path.stat().st_mode & 0o7777
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, mode)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError as exc:
        raise ActionFailed(f"cannot write {path}: {exc.strerror or exc}; the file was left "
                           "as it was") from None


class PortReassignAction:
    """Move ``allocation`` to ``new_start`` (keeping its width) in the registry file.

    Build it from the pane's selected row: ``PortReassignAction(settings, row.allocation,
    row.suggestion[0])``.
    """

    id: ClassVar[str] = "port_reassign"

    def __init__(self, settings: Settings, allocation: PortAllocation,
                 new_start: int | None, *, on_written: Callable[[], None] | None = None) -> None:
        self.settings = settings
        self.allocation = allocation
        self.new_start = new_start
        self.on_written = on_written  # e.g. PortsSource.poke: show the new state at once

    @property
    def new_range(self) -> tuple[int, int] | None:
        if self.new_start is None:
            return None
        a = self.allocation
        return self.new_start, self.new_start + max(1, a.width if a.valid else 1) - 1

    def plan(self) -> ActionPlan:
        a = self.allocation
        reason = rewrite_refusal(a)
        if reason:
            raise ActionRefused(f"cannot reassign {reason}", reason="not_rewritable")
        if not a.valid:
            raise ActionRefused(f"{a.label} is malformed in {a.where} ({a.error}); fix the "
                                "entry by hand first", reason="invalid")
        new = self.new_range
        if new is None:
            raise ActionRefused(f"no free port is left in {a.env} for {a.label}; widen "
                                f"[ports] allowed.{a.env} or free a range", reason="invalid")
        if not (1 <= new[0] and new[1] <= 65535):
            raise ActionRefused(f"{format_range(*new)} is outside 1-65535", reason="invalid")
        if (a.start, a.end) == new:
            raise ActionRefused(f"{a.label} already uses {a.range_text}; nothing to do",
                                reason="nothing_to_do")
        shown = a.origin
        old = a.range_text
        return ActionPlan(
            action_id=self.id, target=a.label, title=f"Reassign the port of {a.label}",
            changes=(f"{a.label} {old} -> {format_range(*new)} in {shown}",),
            env=a.env, service=a.service, confirm_text=a.service if a.env == "prod" else "",
            before={"start": a.start, "end": a.end, "file": shown, "key": a.key},
            after={"start": new[0], "end": new[1], "file": shown, "key": a.key},
            params={"path": str(self.settings.resolve_path(self.settings.ports.registry)),
                    "shown": shown},
        )

    def execute(self, plan: ActionPlan, ctx: ActionContext) -> ActionResult:
        a = self.allocation
        new = (int(plan.after["start"]), int(plan.after["end"]))
        rewrite_registry(Path(plan.params["path"]), str(plan.params["shown"]), a,
                         (int(plan.before["start"]), int(plan.before["end"])), new)
        if self.on_written is not None:
            self.on_written()
        return ActionResult(True, f"{a.label} moved {a.range_text} -> {format_range(*new)} "
                                  f"in {plan.params['shown']}", after=dict(plan.after))


def row_key(allocation: PortAllocation) -> str:
    """The id a pane puts in ``Target.port_service``: ``checkout@prod|ports.toml: checkout.prod``."""
    return f"{allocation.label}|{allocation.where}"


def find_row(snapshot: PortsSnapshot | None, port_service: str) -> PortRow | None:
    """The row ``port_service`` names: a :func:`row_key`, or just ``service@env`` (then the
    registry's entry, the one that can be rewritten, is preferred)."""
    if snapshot is None or not port_service:
        return None
    rows = snapshot.rows
    for row in rows:
        if row_key(row.allocation) == port_service:
            return row
    label = port_service.split("|", 1)[0]
    matches = [r for r in rows if r.allocation.label == label]
    matches.sort(key=lambda r: r.allocation.source != "registry")
    return matches[0] if matches else None


def make_port_reassign(runtime: Any, port_service: str) -> PortReassignAction:
    """The ``p`` key: move the selected allocation to its suggested free port.

    The snapshot is the one the Ports pane shows (``runtime.extras["ports_snapshot"]``), else
    the ports source's latest. A row without a conflict gets the nearest free port too.
    """
    source = runtime.sources.get("ports")
    snapshot = runtime.extras.get("ports_snapshot") or getattr(source, "last", None)
    row = find_row(snapshot, port_service)
    if row is None:
        raise ActionRefused(f"reassign port: {port_service.split('|', 1)[0] or 'the selection'} "
                            "is not in the current port table; wait for the next poll",
                            reason="invalid")
    settings: Settings = runtime.settings
    suggestion = row.suggestion
    if suggestion is None and snapshot is not None:
        p = settings.ports
        suggestion = suggest_free(row.allocation, [r.allocation for r in snapshot.rows],
                                  p.allowed, allow_privileged=p.allow_privileged,
                                  busy=[x.port for x in snapshot.listeners])
    poke = getattr(source, "poke", None)
    return PortReassignAction(settings, row.allocation, suggestion[0] if suggestion else None,
                              on_written=poke if callable(poke) else None)
