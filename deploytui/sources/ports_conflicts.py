"""Port allocations and the conflicts between them (pure: no I/O, no clock).

An allocation is one declared claim on a host port range, with where it was declared
(``ports.toml: checkout.prod``). :func:`find_conflicts` returns every conflict the issue names:

==================== =========================================================================
kind                 meaning
==================== =========================================================================
``overlap``          two services' ranges overlap in one env (and host, where both name one)
``duplicate_port``   the same single port claimed by two services in one env
``compose_clash``    two compose port mappings publish the same host port
``duplicate_nodeport`` two Kubernetes Services use the same nodePort (cluster-wide)
``outside_range``    the range is outside the env's ``[ports] allowed`` range
``privileged``       a port below 1024 where ``allow_privileged`` is false
``malformed``        start > end, not a number, outside 1-65535, missing start
==================== =========================================================================

Each conflict names its parties with where each was declared and suggests the nearest free
port (or range of the same width) in that env for the party to move (:func:`suggest_free`).
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "CONFLICT_KINDS",
    "Conflict",
    "FreeIndex",
    "PortAllocation",
    "Suggester",
    "env_bounds",
    "find_conflicts",
    "format_range",
    "parse_range",
    "suggest_bounds",
    "suggest_free",
]

PORT_MIN, PORT_MAX = 1, 65535
PRIVILEGED_BELOW = 1024

CONFLICT_KINDS: Mapping[str, str] = {
    "overlap": "overlapping ranges",
    "duplicate_port": "same port, two services",
    "compose_clash": "compose host-port clash",
    "duplicate_nodeport": "duplicate NodePort",
    "outside_range": "outside the env's allowed range",
    "privileged": "privileged port",
    "malformed": "malformed entry",
}

_WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::", "[::]", "*"})


@dataclass(frozen=True)
class PortAllocation:
    """One declared claim on ports ``start``..``end`` (inclusive) for ``service`` in ``env``.

    ``source`` is where the claim comes from: ``registry`` (the ``[ports] registry`` file),
    ``config`` (inline ``[ports.allocations]``), ``compose`` or ``kubernetes``; ``origin`` the
    file (or Kubernetes object) and ``key`` the key path inside it. ``scope`` is ``""`` for the
    host port space, or a private space (a Service's cluster IP) that only clashes with itself.
    ``error`` is set for a malformed entry (its start/end are then 0 and it claims nothing).
    """

    service: str
    env: str
    start: int
    end: int
    source: str
    origin: str
    key: str
    protocol: str = "tcp"
    host: str = ""
    description: str = ""
    kind: str = "port"          # port, nodePort, hostPort, service port, published
    target: str = ""            # container / target port, for compose and Kubernetes
    scope: str = ""
    error: str = ""

    @property
    def valid(self) -> bool:
        return not self.error

    @property
    def where(self) -> str:
        """``ports.toml: checkout.prod`` — the file (or object) and key that declared it."""
        return f"{self.origin}: {self.key}" if self.key else self.origin

    @property
    def label(self) -> str:
        """``checkout@prod``."""
        return f"{self.service}@{self.env}" if self.env else self.service

    @property
    def range_text(self) -> str:
        return "?" if self.error else format_range(self.start, self.end)

    @property
    def width(self) -> int:
        return self.end - self.start + 1

    @property
    def wildcard_host(self) -> bool:
        return self.host in _WILDCARD_HOSTS

    def describe(self) -> str:
        """``checkout@prod 5050 (ports.toml: checkout.prod)``."""
        proto = "" if self.protocol == "tcp" else f"/{self.protocol}"
        host = "" if self.wildcard_host else f" on {self.host}"
        return f"{self.label} {self.range_text}{proto}{host} ({self.where})"


@dataclass(frozen=True)
class Conflict:
    """A problem with one allocation, or between two. ``parties`` has one or two entries;
    ``move`` is the party the suggestion is for, ``suggestion`` the nearest free
    ``(start, end)`` in that env (None when the env has no free range that wide)."""

    kind: str
    env: str
    message: str
    parties: tuple[PortAllocation, ...]
    move: PortAllocation | None = None
    suggestion: tuple[int, int] | None = None

    @property
    def title(self) -> str:
        return CONFLICT_KINDS.get(self.kind, self.kind)

    @property
    def suggestion_text(self) -> str:
        if self.move is None:
            return ""
        if self.suggestion is None:
            return f"no free range of {self.move.width} port(s) left in {self.env or 'this env'}"
        free = format_range(*self.suggestion)
        if not self.move.valid:
            return f"fix the entry; {free} is free in {self.env or 'this env'}"
        return f"move {self.move.label} to {free}"

    def explain(self) -> str:
        """Several lines for the operator: what, who (and where declared), what to do."""
        lines = [f"{self.title} in {self.env or '(no env)'}: {self.message}"]
        for p in self.parties:
            lines.append(f"  - {p.describe()}")
        if self.suggestion_text:
            lines.append(f"  suggestion: {self.suggestion_text}")
        return "\n".join(lines)


def format_range(start: int, end: int) -> str:
    return str(start) if start == end else f"{start}-{end}"


def parse_range(text: str) -> tuple[int, int]:
    """``"3000-3999"`` or ``"3050"`` -> (start, end). Raises ValueError with a clear message."""
    parts = str(text).strip().split("-")
    if len(parts) not in (1, 2) or not all(p.strip().isdigit() for p in parts):
        raise ValueError(f"not a port or port range: {text!r} (examples: 3050, 3000-3999)")
    start, end = int(parts[0]), int(parts[-1])
    if start > end:
        raise ValueError(f"range {text!r} starts after it ends")
    if start < PORT_MIN or end > PORT_MAX:
        raise ValueError(f"range {text!r} is outside 1-65535")
    return start, end


def _hosts_clash(a: PortAllocation, b: PortAllocation) -> bool:
    return a.wildcard_host or b.wildcard_host or a.host == b.host


def _pair_kind(a: PortAllocation, b: PortAllocation) -> str:
    if a.source == "compose" and b.source == "compose":
        return "compose_clash"
    if a.start == a.end == b.start == b.end:
        return "duplicate_port"
    return "overlap"


def _same_claim(a: PortAllocation, b: PortAllocation) -> bool:
    """One service declared in two places (registry and compose, or replicas of a pod) is one
    claim, not a conflict; a service clashing with itself inside one compose file is."""
    if a.service != b.service:
        return False
    return not (a.source == b.source == "compose" and a.origin == b.origin and a.key != b.key
                and a.start <= b.end and b.start <= a.end)


def _mover(a: PortAllocation, b: PortAllocation) -> PortAllocation:
    """The party to suggest a move for: one deploytui can rewrite (registry) if any, else the
    one declared later in sort order (higher start, then name)."""
    if (a.source == "registry") != (b.source == "registry"):
        return a if a.source == "registry" else b
    return max(a, b, key=lambda x: (x.start, x.service, x.where))


def env_bounds(env: str, allowed: Mapping[str, str], allow_privileged: bool) -> tuple[int, int]:
    """The range suggestions are drawn from: the env's allowed range, else the whole space."""
    text = allowed.get(env)
    if text:
        try:
            return parse_range(text)
        except ValueError:
            pass
    return (PORT_MIN if allow_privileged else PRIVILEGED_BELOW), PORT_MAX


def _merge(intervals: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted intervals -> disjoint blocks (adjacent ones joined)."""
    merged: list[tuple[int, int]] = []
    for s, e in intervals:
        if merged and s <= merged[-1][1] + 1:
            if e > merged[-1][1]:
                merged[-1] = (merged[-1][0], e)
        else:
            merged.append((s, e))
    return merged


class FreeIndex:
    """The claimed ports of one env, for many suggestions in one pass (built once, queried in
    about O(log n) per suggestion instead of a sort of every allocation each time)."""

    def __init__(self, env: str, allocations: Iterable[PortAllocation], lo: int, hi: int, *,
                 nodeports: bool, busy: Iterable[int] = ()) -> None:
        self.lo, self.hi = lo, hi
        self.counts: Counter[PortAllocation] = Counter(
            a for a in allocations
            if a.valid and a.env == env and not a.scope and (a.kind != "nodePort" or nodeports))
        self.taken = sorted([(a.start, a.end) for a in self.counts.elements()]
                            + [(p, p) for p in busy])
        self.blocks = _merge(self.taken)
        self.starts = [s for s, _ in self.blocks]

    def _without(self, alloc: PortAllocation) -> tuple[list[tuple[int, int]], list[int]]:
        """The blocks with ``alloc`` (every copy of it) taken out: only its own block changes."""
        k = self.counts.get(alloc, 0)
        if not k:
            return self.blocks, self.starts
        bi = bisect.bisect_right(self.starts, alloc.start) - 1
        bs, be = self.blocks[bi]
        i0 = bisect.bisect_left(self.taken, (bs, -1))
        i1 = bisect.bisect_right(self.taken, (be, PORT_MAX + 1))
        inside = list(self.taken[i0:i1])
        for _ in range(k):
            inside.remove((alloc.start, alloc.end))
        sub = _merge(inside)
        blocks = self.blocks[:bi] + sub + self.blocks[bi + 1:]
        starts = self.starts[:bi] + [s for s, _ in sub] + self.starts[bi + 1:]
        return blocks, starts

    def suggest(self, alloc: PortAllocation) -> tuple[int, int] | None:
        width = max(1, alloc.width) if alloc.valid else 1
        lo, hi = self.lo, self.hi
        want = alloc.start if alloc.valid else lo
        blocks, starts = self._without(alloc)
        m = len(blocks)
        best: tuple[int, int] | None = None
        best_key: tuple[int, int] | None = None

        def gap(i: int) -> tuple[int, int]:  # the free ports between block i-1 and block i
            lower = lo if i == 0 else max(lo, blocks[i - 1][1] + 1)
            upper = hi if i == m else min(hi, blocks[i][0] - 1)
            return lower, upper

        def consider(lower: int, upper: int) -> None:
            nonlocal best, best_key
            if upper - lower + 1 >= width:
                start = min(max(want, lower), upper - width + 1)
                key = (abs(start - want), -start)
                if best_key is None or key < best_key:
                    best, best_key = (start, start + width - 1), key

        j = bisect.bisect_right(starts, want)  # gap j follows the block holding (or before) want
        for i in range(j, m + 1):  # outward to the right
            lower, upper = gap(i)
            if lower > hi or (best_key is not None and lower - want > best_key[0]):
                break
            consider(lower, upper)
        for i in range(j - 1, -1, -1):  # outward to the left
            lower, upper = gap(i)
            if upper < lo or (best_key is not None and want - (upper - width + 1) > best_key[0]):
                break
            consider(lower, upper)
        return best


def suggest_bounds(env: str, allowed: Mapping[str, str], allow_privileged: bool) -> tuple[int, int]:
    lo, hi = env_bounds(env, allowed, allow_privileged)
    return (lo if allow_privileged else max(lo, PRIVILEGED_BELOW)), hi


def suggest_free(
    alloc: PortAllocation,
    allocations: Iterable[PortAllocation],
    allowed: Mapping[str, str],
    *,
    allow_privileged: bool = False,
    busy: Iterable[int] = (),
) -> tuple[int, int] | None:
    """The free ``(start, end)`` of ``alloc``'s width nearest to ``alloc.start`` in its env.

    Free means: inside the env's allowed range (and >= 1024 unless privileged ports are
    allowed), not claimed by any other valid host-level allocation of that env, and not in
    ``busy`` (ports seen listening). Ties go to the higher port. None when nothing fits.
    """
    lo, hi = suggest_bounds(alloc.env, allowed, allow_privileged)
    index = FreeIndex(alloc.env, allocations, lo, hi, nodeports=alloc.kind == "nodePort",
                      busy=busy)
    return index.suggest(alloc)


class Suggester:
    """:func:`suggest_free` for many allocations of one fleet: one :class:`FreeIndex` per env."""

    def __init__(self, allocations: Sequence[PortAllocation], allowed: Mapping[str, str], *,
                 allow_privileged: bool = False, busy: Iterable[int] = ()) -> None:
        self.allocations = allocations
        self.allowed = allowed
        self.allow_privileged = allow_privileged
        self.busy = frozenset(busy)
        self._indexes: dict[tuple[str, bool], FreeIndex] = {}

    def suggest(self, move: PortAllocation) -> tuple[int, int] | None:
        key = (move.env, move.kind == "nodePort")
        index = self._indexes.get(key)
        if index is None:
            lo, hi = suggest_bounds(move.env, self.allowed, self.allow_privileged)
            index = self._indexes[key] = FreeIndex(move.env, self.allocations, lo, hi,
                                                   nodeports=key[1], busy=self.busy)
        return index.suggest(move)


class _Finder:
    def __init__(self, allocations: Sequence[PortAllocation], allowed: Mapping[str, str],
                 allow_privileged: bool, busy: Iterable[int]) -> None:
        self.allowed = allowed
        self.allow_privileged = allow_privileged
        self.out: list[Conflict] = []
        self.suggester = Suggester(allocations, allowed, allow_privileged=allow_privileged,
                                   busy=busy)

    def suggest(self, move: PortAllocation) -> tuple[int, int] | None:
        return self.suggester.suggest(move)

    def add(self, kind: str, env: str, message: str, parties: tuple[PortAllocation, ...],
            move: PortAllocation | None) -> None:
        suggestion = self.suggest(move) if move is not None else None
        self.out.append(Conflict(kind, env, message, parties, move, suggestion))

    def single(self, a: PortAllocation) -> None:
        if not a.valid:
            self.add("malformed", a.env, f"{a.label}: {a.error}", (a,), a)
            return
        if a.kind in ("nodePort", "service port"):
            return  # Kubernetes assigns these from its own range; [ports] allowed is not theirs
        if a.start < PRIVILEGED_BELOW and not self.allow_privileged:
            self.add("privileged", a.env, f"{a.label} uses {a.range_text}, below 1024, and "
                     "[ports] allow_privileged is false", (a,), a)
        text = self.allowed.get(a.env)
        if text:
            lo, hi = parse_range(text)
            if a.start < lo or a.end > hi:
                self.add("outside_range", a.env, f"{a.label} uses {a.range_text}, outside "
                         f"{a.env}'s allowed range {text}", (a,), a)

    def pairs(self, group: list[PortAllocation], cluster_wide: bool = False) -> None:
        group = sorted(group, key=lambda x: (x.start, x.end, x.service, x.where))
        active: list[PortAllocation] = []  # sweep: earlier allocations still open at b.start
        for b in group:
            active = [a for a in active if a.end >= b.start]
            for a in active:
                if a.protocol != b.protocol or a.scope != b.scope:
                    continue
                if not cluster_wide and not _hosts_clash(a, b):
                    continue
                if _same_claim(a, b):
                    continue
                if cluster_wide:
                    kind = "duplicate_nodeport"
                else:
                    kind = _pair_kind(a, b)
                    if a.kind == "nodePort" and b.kind == "nodePort":
                        continue  # reported cluster-wide instead
                shared = format_range(max(a.start, b.start), min(a.end, b.end))
                proto = "" if a.protocol == "tcp" else f"/{a.protocol}"
                msg = f"{a.label} and {b.label} both claim {shared}{proto}"
                self.add(kind, b.env if cluster_wide else a.env, msg, (a, b), _mover(a, b))
            active.append(b)


def find_conflicts(
    allocations: Sequence[PortAllocation],
    allowed: Mapping[str, str],
    *,
    allow_privileged: bool = False,
    busy: Iterable[int] = (),
) -> tuple[Conflict, ...]:
    """Every conflict among ``allocations`` (see the module docstring), in a stable order:
    by env, then kind, then the first party's start."""
    finder = _Finder(allocations, allowed, allow_privileged, busy)
    by_env: dict[str, list[PortAllocation]] = {}
    nodeports: list[PortAllocation] = []
    for a in allocations:
        finder.single(a)
        if not a.valid:
            continue
        by_env.setdefault(a.env, []).append(a)
        if a.kind == "nodePort":
            nodeports.append(a)
    for group in by_env.values():
        finder.pairs(group)
    finder.pairs(nodeports, cluster_wide=True)
    order = list(CONFLICT_KINDS)
    return tuple(sorted(finder.out, key=lambda c: (
        c.env, order.index(c.kind) if c.kind in order else 99,
        c.parties[0].start, c.parties[0].service)))
