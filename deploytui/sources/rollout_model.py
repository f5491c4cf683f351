"""The rollout model: compact records of Deployments / ReplicaSets / Pods, the phase rules of
``kubectl rollout status``, stall detection, ETA from past rollout durations, and the frozen
snapshot the rollouts pane shows.

Pure Python on JSON-shaped dicts: no ``kubernetes`` import, no ``textual`` import, no I/O
besides the journal calls of :class:`RolloutModel` (timeline events, rollout durations).
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from deploytui.config import ServiceSettings, Settings
from deploytui.model import TimelineEvent, utcnow

__all__ = [
    "CHANGE_CAUSE",
    "HASH_LABEL",
    "REVISION",
    "DeploymentInfo",
    "Eta",
    "Phase",
    "PodInfo",
    "ReplicaSetInfo",
    "RevisionInfo",
    "Rollout",
    "RolloutModel",
    "RolloutSnapshot",
    "ServiceIndex",
    "deployment_info",
    "format_duration",
    "parse_time",
    "pod_info",
    "replica_set_info",
    "rollout_status",
]

log = logging.getLogger(__name__)

REVISION = "deployment.kubernetes.io/revision"
CHANGE_CAUSE = "kubernetes.io/change-cause"
HASH_LABEL = "pod-template-hash"
TIMED_OUT = "ProgressDeadlineExceeded"

Phase = Literal["failed", "stalled", "progressing", "paused", "complete"]
#: worst first
PHASE_RANK: Mapping[str, int] = {"failed": 0, "stalled": 1, "progressing": 2, "paused": 3,
                                 "complete": 4}


def parse_time(value: Any) -> float | None:
    """RFC 3339 (``metav1.Time`` / ``MicroTime``) -> epoch seconds; None when absent or bad."""
    if not value or not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def format_duration(seconds: float) -> str:
    """``45s``, ``3m05s``, ``2h10m``, ``3d4h`` (negative values are shown as 0s)."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m}m{s:02d}s"
    h, m = divmod(m, 60)
    if h < 48:
        return f"{h}h{m:02d}m"
    d, h = divmod(h, 24)
    return f"{d}d{h}h"


def _images(pod_spec: Mapping[str, Any] | None) -> tuple[str, ...]:
    return tuple(str(c.get("image", "")) for c in (pod_spec or {}).get("containers") or ())


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _controller(meta: Mapping[str, Any]) -> Mapping[str, Any]:
    for ref in meta.get("ownerReferences") or ():
        if ref.get("controller"):
            return ref
    return {}


# --- compact records (built in the watch threads from raw API dicts) ------------------------


@dataclass(frozen=True, slots=True)
class Condition:
    type: str
    status: str
    reason: str
    message: str
    last_update: float | None


@dataclass(frozen=True, slots=True)
class DeploymentInfo:
    namespace: str
    name: str
    uid: str
    generation: int
    observed_generation: int
    replicas: int                    # spec.replicas (desired)
    paused: bool
    labels: Mapping[str, str]
    images: tuple[str, ...]
    revision: int
    change_cause: str
    status_replicas: int
    updated: int
    ready: int
    available: int
    conditions: tuple[Condition, ...]
    created: float | None
    resource_version: str

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def condition(self, kind: str) -> Condition | None:
        return next((c for c in self.conditions if c.type == kind), None)


def deployment_info(obj: Mapping[str, Any]) -> DeploymentInfo:
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    annotations = meta.get("annotations") or {}
    replicas = spec.get("replicas")
    return DeploymentInfo(
        namespace=meta.get("namespace", ""), name=meta.get("name", ""), uid=meta.get("uid", ""),
        generation=_int(meta.get("generation")),
        observed_generation=_int(status.get("observedGeneration")),
        replicas=1 if replicas is None else _int(replicas),
        paused=bool(spec.get("paused")),
        labels=dict(meta.get("labels") or {}),
        images=_images((spec.get("template") or {}).get("spec")),
        revision=_int(annotations.get(REVISION)),
        change_cause=str(annotations.get(CHANGE_CAUSE, "")),
        status_replicas=_int(status.get("replicas")), updated=_int(status.get("updatedReplicas")),
        ready=_int(status.get("readyReplicas")), available=_int(status.get("availableReplicas")),
        conditions=tuple(
            Condition(str(c.get("type", "")), str(c.get("status", "")), str(c.get("reason", "")),
                      str(c.get("message", "")), parse_time(c.get("lastUpdateTime")))
            for c in status.get("conditions") or ()),
        created=parse_time(meta.get("creationTimestamp")),
        resource_version=str(meta.get("resourceVersion", "")),
    )


@dataclass(frozen=True, slots=True)
class ReplicaSetInfo:
    namespace: str
    name: str
    uid: str
    owner_uid: str                   # the controlling Deployment's uid ("" when none)
    owner_name: str
    revision: int
    images: tuple[str, ...]
    change_cause: str
    created: float | None
    replicas: int
    ready: int
    available: int

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


def replica_set_info(obj: Mapping[str, Any]) -> ReplicaSetInfo:
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    annotations = meta.get("annotations") or {}
    owner = _controller(meta)
    owner_is_deploy = owner.get("kind") == "Deployment"
    return ReplicaSetInfo(
        namespace=meta.get("namespace", ""), name=meta.get("name", ""), uid=meta.get("uid", ""),
        owner_uid=owner.get("uid", "") if owner_is_deploy else "",
        owner_name=owner.get("name", "") if owner_is_deploy else "",
        revision=_int(annotations.get(REVISION)),
        images=_images((spec.get("template") or {}).get("spec")),
        change_cause=str(annotations.get(CHANGE_CAUSE, "")),
        created=parse_time(meta.get("creationTimestamp")),
        replicas=_int(spec.get("replicas")), ready=_int(status.get("readyReplicas")),
        available=_int(status.get("availableReplicas")),
    )


@dataclass(frozen=True, slots=True)
class PodInfo:
    namespace: str
    name: str
    owner_rs: str                    # name of the controlling ReplicaSet ("" when none)
    restarts: int
    ready: bool
    crashlooping: bool

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


def pod_info(obj: Mapping[str, Any]) -> PodInfo:
    meta = obj.get("metadata") or {}
    status = obj.get("status") or {}
    owner = _controller(meta)
    restarts, crash = 0, False
    for cs in status.get("containerStatuses") or ():
        restarts += _int(cs.get("restartCount"))
        waiting = (cs.get("state") or {}).get("waiting") or {}
        crash = crash or waiting.get("reason") == "CrashLoopBackOff"
    ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                for c in status.get("conditions") or ())
    return PodInfo(namespace=meta.get("namespace", ""), name=meta.get("name", ""),
                   owner_rs=owner.get("name", "") if owner.get("kind") == "ReplicaSet" else "",
                   restarts=restarts, ready=ready, crashlooping=crash)


# --- kubectl rollout status ------------------------------------------------------------------


def rollout_status(d: DeploymentInfo) -> tuple[str, bool, str]:
    """``(state, done, message)`` following ``kubectl rollout status`` for a Deployment.

    ``state`` is ``failed``, ``progressing`` or ``complete``; ``paused`` and ``stalled`` are
    layered on top by :class:`RolloutModel` (kubectl reports neither).
    """
    if d.generation > d.observed_generation:
        return "progressing", False, "waiting for the spec update to be observed"
    cond = d.condition("Progressing")
    if cond is not None and cond.reason == TIMED_OUT:
        return "failed", False, f"exceeded its progress deadline ({cond.message})".replace(" ()", "")
    if d.updated < d.replicas:
        return "progressing", False, f"{d.updated} of {d.replicas} new replicas updated"
    if d.status_replicas > d.updated:
        return "progressing", False, f"{d.status_replicas - d.updated} old replicas pending termination"
    if d.available < d.updated:
        return "progressing", False, f"{d.available} of {d.updated} updated replicas available"
    return "complete", True, "successfully rolled out"


# --- services ---------------------------------------------------------------------------------


class ServiceIndex:
    """Maps deployments to configured services: ``ServiceSettings.deployment`` first, then a
    deployment whose ``app`` (or ``app.kubernetes.io/name``) label or name equals the service's."""

    def __init__(self, services: Iterable[ServiceSettings]) -> None:
        self.explicit: dict[str, ServiceSettings] = {}
        self.by_name: dict[str, list[ServiceSettings]] = {}
        for svc in services:
            if svc.deployment:
                self.explicit.setdefault(svc.deployment, svc)
            else:
                self.by_name.setdefault(svc.name, []).append(svc)

    def lookup(self, namespace: str, name: str, labels: Mapping[str, str] | None = None
               ) -> ServiceSettings | None:
        found = self.explicit.get(f"{namespace}/{name}")
        if found is not None:
            return found
        labels = labels or {}
        for candidate in (labels.get("app"), labels.get("app.kubernetes.io/name"), name):
            services = self.by_name.get(candidate or "")
            if services:
                # several envs share a name: prefer the env named like the namespace
                return next((s for s in services if s.env == namespace), services[0])
        return None

    def deployment_of(self, service: ServiceSettings) -> str:
        """The ``namespace/name`` a service's actions act on ("" when it cannot be told)."""
        return service.deployment


# --- output -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RevisionInfo:
    revision: int
    images: tuple[str, ...]
    change_cause: str
    created: float | None
    replicas: int
    replica_set: str
    current: bool


@dataclass(frozen=True, slots=True)
class Eta:
    """Expected rollout duration from this deployment's past rollouts: mean +-20 %."""

    mean: float
    samples: int

    @property
    def low(self) -> float:
        return self.mean * 0.8

    @property
    def high(self) -> float:
        return self.mean * 1.2

    def text(self, elapsed: float) -> str:
        remaining = self.mean - elapsed
        if remaining < -0.2 * self.mean:
            return f"overdue (usually {format_duration(self.mean)})"
        lo, hi = max(0.0, self.low - elapsed), max(0.0, self.high - elapsed)
        return f"{format_duration(max(0.0, remaining))} ({format_duration(lo)}-{format_duration(hi)})"


@dataclass(frozen=True, slots=True)
class Rollout:
    """One deployment as the rollouts pane shows it. Time-independent apart from ``phase``:
    ages are computed from ``started_at`` when drawn."""

    namespace: str
    name: str
    phase: Phase
    message: str
    images: tuple[str, ...]
    revision: int
    desired: int
    current: int
    updated: int
    ready: int
    available: int
    started_at: float | None = None       # when the current (or last) rollout began
    completed_at: float | None = None
    last_progress_at: float | None = None
    eta: Eta | None = None
    restarts: int = 0
    crashlooping: int = 0
    service: str = ""                     # "env/name" of the mapped service
    env: str = ""
    paused: bool = False
    uid: str = ""
    change_cause: str = ""
    revisions: tuple[RevisionInfo, ...] = ()
    key: str = field(init=False, compare=False, default="")   # "namespace/name"

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", f"{self.namespace}/{self.name}")

    @property
    def version(self) -> str:
        """The tag of the first image (``app:1.4.2`` -> ``1.4.2``)."""
        if not self.images:
            return ""
        tail = self.images[0].rsplit("/", 1)[-1]
        return tail.split("@", 1)[0].split(":", 1)[1] if ":" in tail.split("@", 1)[0] else tail

    @property
    def ok(self) -> bool:
        return self.phase in ("complete", "progressing", "paused")

    @property
    def rank(self) -> tuple[int, float, str]:
        ratio = self.available / self.desired if self.desired else 1.0
        return (PHASE_RANK[self.phase], ratio, self.key)

    def age(self, now: float) -> float | None:
        """Seconds since the current (or last) rollout began."""
        if self.started_at is None:
            return None
        return max(0.0, now - self.started_at)

    @property
    def took(self) -> float | None:
        """How long the last rollout took, when it was seen from start to end."""
        if self.phase != "complete" or self.completed_at is None or self.started_at is None:
            return None
        return max(0.0, self.completed_at - self.started_at)

    def eta_text(self, now: float) -> str:
        if self.phase == "complete":
            return ""
        if self.eta is None:
            return "no history"
        return self.eta.text(self.age(now) or 0.0)

    def row(self, now: float) -> dict[str, Any]:
        age = self.age(now)
        return {
            "namespace": self.namespace, "deployment": self.name, "service": self.service,
            "phase": self.phase, "revision": self.revision, "image": ",".join(self.images),
            "version": self.version, "desired": self.desired, "updated": self.updated,
            "ready": self.ready, "available": self.available, "restarts": self.restarts,
            "progress": f"{self.updated}/{self.ready}/{self.available} of {self.desired}",
            "age": format_duration(age) if age is not None else "",
            "eta": self.eta_text(now), "message": self.message,
        }


@dataclass(frozen=True)
class RolloutSnapshot:
    """What the rollouts pane shows: rollouts worst first, with the source's health."""

    rollouts: tuple[Rollout, ...] = ()
    taken_at: float = field(default_factory=utcnow)
    loaded: bool = False                  # the first full list has arrived
    stale_since: float | None = None      # the API has been unreachable since then
    error: str | None = None
    namespaces: tuple[str, ...] = ()
    context: str = ""

    def find(self, key: str) -> Rollout | None:
        return next((r for r in self.rollouts if r.key == key), None)

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(PHASE_RANK, 0)
        for r in self.rollouts:
            out[r.phase] += 1
        return out

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rollouts)

    def same_content(self, other: RolloutSnapshot | None) -> bool:
        return (other is not None and other.rollouts == self.rollouts
                and other.stale_since == self.stale_since and other.error == self.error
                and other.loaded == self.loaded)


# --- the stateful model -----------------------------------------------------------------------


@dataclass
class _Track:
    sig: tuple[int, ...]
    state: str                            # kubectl's view: progressing / failed / complete
    phase: str                            # what the pane shows ("" before the first build)
    revision: int
    started_at: float | None
    last_progress_at: float
    start_revision: int = 0
    completed_at: float | None = None
    observed_start: bool = False          # the start was seen live (durations only then)
    announced: bool = False               # rollout_started was emitted (a new revision)


class _Durations:
    """Past rollout durations: through the journal when it offers them, else in memory."""

    def __init__(self, journal: Any) -> None:
        self.journal = journal
        self.use_journal = journal is not None and callable(
            getattr(journal, "record_rollout_duration", None)) and callable(
            getattr(journal, "rollout_durations", None))
        self._cache: dict[str, list[float]] = {}

    def get(self, key: str) -> list[float]:
        if key not in self._cache:
            found: list[float] = []
            if self.use_journal:
                try:
                    found = [float(v) for v in self.journal.rollout_durations(key)]
                except Exception as exc:  # a broken store must not stop the rollouts pane
                    log.warning("cannot read rollout durations for %s: %s", key, exc)
            self._cache[key] = found
        return self._cache[key]

    def record(self, key: str, revision: int, seconds: float) -> None:
        self.get(key).append(seconds)
        if self.use_journal:
            try:
                self.journal.record_rollout_duration(key, revision, seconds)
            except Exception as exc:
                log.warning("cannot store rollout duration for %s: %s", key, exc)

    def eta(self, key: str) -> Eta | None:
        values = self.get(key)
        return Eta(statistics.fmean(values), len(values)) if values else None


class RolloutModel:
    """Holds the compact records and turns them into :class:`RolloutSnapshot`s.

    Not thread-safe: one caller at a time (the source applies batches and builds in one worker).
    """

    def __init__(self, settings: Settings, journal: Any = None) -> None:
        self.settings = settings
        self.stall_after = settings.kubernetes.stall_after_seconds
        self.journal = journal
        self.services = ServiceIndex(settings.services)
        self.durations = _Durations(journal)
        self.deployments: dict[str, DeploymentInfo] = {}
        self.replica_sets: dict[str, ReplicaSetInfo] = {}
        self.rs_by_owner: dict[str, set[str]] = {}          # deployment uid -> rs keys
        self.pods_by_rs: dict[str, dict[str, PodInfo]] = {}  # "ns/rs" -> pod key -> info
        self.pod_rs: dict[str, str] = {}                     # pod key -> "ns/rs"
        self.tracks: dict[str, _Track] = {}
        self.rollouts: dict[str, Rollout] = {}
        self.dirty: set[str] = set()
        self.loaded_kinds: set[str] = set()
        self.events: list[TimelineEvent] = []               # emitted by the last build

    # applying changes ---------------------------------------------------------------------

    def apply(self, kind: str, kind_event: str, info: Any) -> None:
        """Apply one ADDED / MODIFIED / DELETED record of ``kind`` (deployments, replicasets, pods)."""
        deleted = kind_event == "DELETED"
        if kind == "deployments":
            self._apply_deployment(info, deleted)
        elif kind == "replicasets":
            self._apply_rs(info, deleted)
        elif kind == "pods":
            self._apply_pod(info, deleted)

    def replace_all(self, kind: str, namespace: str | None, infos: Iterable[Any]) -> None:
        """A fresh list of ``kind`` in ``namespace`` (None: all): drop what is no longer there."""
        infos = list(infos)
        keep = {i.key for i in infos}
        current: Iterable[str] = {"deployments": self.deployments, "replicasets": self.replica_sets,
                                  "pods": self.pod_rs}[kind]
        for key in [k for k in current if namespace is None or k.split("/", 1)[0] == namespace]:
            if key not in keep:
                self._remove(kind, key)
        for info in infos:
            self.apply(kind, "ADDED", info)
        self.loaded_kinds.add(kind)

    def _remove(self, kind: str, key: str) -> None:
        if kind == "deployments":
            self._apply_deployment(self.deployments[key], True)
        elif kind == "replicasets":
            self._apply_rs(self.replica_sets[key], True)
        else:
            rs_key = self.pod_rs[key]
            self._apply_pod(self.pods_by_rs[rs_key][key], True)

    def _apply_deployment(self, d: DeploymentInfo, deleted: bool) -> None:
        if deleted:
            self.deployments.pop(d.key, None)
            self.tracks.pop(d.key, None)
            self.rollouts.pop(d.key, None)
        else:
            self.deployments[d.key] = d
        self.dirty.add(d.key)

    def _apply_rs(self, rs: ReplicaSetInfo, deleted: bool) -> None:
        old = self.replica_sets.pop(rs.key, None)
        if old is not None and old.owner_uid:
            self.rs_by_owner.get(old.owner_uid, set()).discard(rs.key)
        if not deleted:
            self.replica_sets[rs.key] = rs
            if rs.owner_uid:
                self.rs_by_owner.setdefault(rs.owner_uid, set()).add(rs.key)
        if rs.owner_name:
            self.dirty.add(f"{rs.namespace}/{rs.owner_name}")

    def _apply_pod(self, pod: PodInfo, deleted: bool) -> None:
        old_rs = self.pod_rs.pop(pod.key, None)
        if old_rs is not None:
            self.pods_by_rs.get(old_rs, {}).pop(pod.key, None)
            self._dirty_rs(old_rs)
        if not deleted and pod.owner_rs:
            rs_key = f"{pod.namespace}/{pod.owner_rs}"
            self.pods_by_rs.setdefault(rs_key, {})[pod.key] = pod
            self.pod_rs[pod.key] = rs_key
            self._dirty_rs(rs_key)

    def _dirty_rs(self, rs_key: str) -> None:
        rs = self.replica_sets.get(rs_key)
        if rs is not None and rs.owner_name:
            self.dirty.add(f"{rs.namespace}/{rs.owner_name}")

    # building -----------------------------------------------------------------------------

    def build(self, now: float, *, stale_since: float | None = None, error: str | None = None,
              namespaces: tuple[str, ...] = (), context: str = "", loaded: bool = True
              ) -> RolloutSnapshot:
        """Recompute changed (and time-dependent) rollouts; timeline events go to the journal."""
        self.events = []
        todo = set(self.dirty)
        todo.update(k for k, r in self.rollouts.items() if r.phase == "progressing")
        self.dirty.clear()
        for key in todo:
            d = self.deployments.get(key)
            if d is None:
                self.rollouts.pop(key, None)
                continue
            self.rollouts[key] = self._rollout(d, now)
        if self.journal is not None and self.events:
            for ev in self.events:
                try:
                    self.journal.add_event(ev)
                except Exception as exc:
                    log.warning("cannot record timeline event: %s", exc)
        ordered = tuple(sorted(self.rollouts.values(), key=lambda r: r.rank))
        return RolloutSnapshot(rollouts=ordered, taken_at=now, loaded=loaded,
                               stale_since=stale_since, error=error, namespaces=namespaces,
                               context=context)

    def revisions(self, d: DeploymentInfo) -> tuple[RevisionInfo, ...]:
        rss = [self.replica_sets[k] for k in self.rs_by_owner.get(d.uid, ()) if k in self.replica_sets]
        out = [RevisionInfo(rs.revision, rs.images, rs.change_cause, rs.created, rs.replicas,
                            rs.name, rs.revision == d.revision) for rs in rss]
        return tuple(sorted(out, key=lambda r: -r.revision))

    def _pods(self, d: DeploymentInfo) -> tuple[int, int]:
        restarts = crash = 0
        for rs_key in self.rs_by_owner.get(d.uid, ()):
            for pod in self.pods_by_rs.get(rs_key, {}).values():
                restarts += pod.restarts
                crash += pod.crashlooping
        return restarts, crash

    def _rollout(self, d: DeploymentInfo, now: float) -> Rollout:
        state, done, message = rollout_status(d)
        revisions = self.revisions(d)
        sig = (d.observed_generation, d.status_replicas, d.updated, d.ready, d.available)
        track = self.tracks.get(d.key)
        if track is None:
            track = self._first_track(d, state, sig, revisions, now)
            self.tracks[d.key] = track
        else:
            self._advance(track, d, state, sig, now)
        phase: str = state
        if d.paused and not done:
            phase = "paused"
            message = f"paused ({message})"
        elif state == "progressing" and now - track.last_progress_at >= self.stall_after:
            phase = "stalled"
            message = f"no progress for {format_duration(now - track.last_progress_at)}: {message}"
        self._transition(d, track, phase, message, now)
        restarts, crash = self._pods(d)
        if crash and phase != "complete":
            message = f"{message}; {crash} pod(s) in CrashLoopBackOff"
        svc = self.services.lookup(d.namespace, d.name, d.labels)
        return Rollout(
            namespace=d.namespace, name=d.name, phase=phase, message=message,  # type: ignore[arg-type]
            images=d.images, revision=d.revision, desired=d.replicas, current=d.status_replicas,
            updated=d.updated, ready=d.ready, available=d.available, started_at=track.started_at,
            completed_at=track.completed_at, last_progress_at=track.last_progress_at,
            eta=None if done else self.durations.eta(d.key), restarts=restarts, crashlooping=crash,
            service=svc.key if svc else "", env=svc.env if svc else "", paused=d.paused,
            uid=d.uid, change_cause=d.change_cause, revisions=revisions)

    @staticmethod
    def _first_track(d: DeploymentInfo, state: str, sig: tuple[int, ...],
                     revisions: tuple[RevisionInfo, ...], now: float) -> _Track:
        """First sight (console start): the rollout began when its ReplicaSet was created; the
        last progress is the Progressing condition's lastUpdateTime when there is one."""
        current = next((r for r in revisions if r.current), None)
        started = current.created if current and current.created else d.created
        progress = now
        cond = d.condition("Progressing")
        if state != "complete" and cond is not None and cond.last_update is not None:
            progress = min(now, cond.last_update)
        return _Track(sig=sig, state=state, phase="", revision=d.revision, started_at=started,
                      last_progress_at=progress, start_revision=d.revision)

    def _advance(self, track: _Track, d: DeploymentInfo, state: str, sig: tuple[int, ...],
                 now: float) -> None:
        if sig != track.sig:
            track.last_progress_at = now
        if track.state == "complete" and state != "complete":
            track.started_at = now
            track.completed_at = None
            track.last_progress_at = now
            track.start_revision = track.revision
            track.observed_start = True
            track.announced = False
        if track.observed_start and not track.announced and d.revision != track.start_revision:
            # a new template (image change, restart, rollback), not just a scale
            track.announced = True
            svc = self.services.lookup(d.namespace, d.name, d.labels)
            self.events.append(TimelineEvent(
                kind="rollout_started", ts=now, service=d.key, env=svc.env if svc else "",
                actor="deploytui",
                summary=f"{d.key}: rollout of revision {d.revision} started ({', '.join(d.images)})",
                details={"revision": d.revision, "images": list(d.images)}))
        track.sig, track.state, track.revision = sig, state, d.revision

    def _transition(self, d: DeploymentInfo, track: _Track, phase: str, message: str,
                    now: float) -> None:
        previous = track.phase
        track.phase = phase
        if previous == phase or not previous:
            return
        svc = self.services.lookup(d.namespace, d.name, d.labels)
        base: dict[str, Any] = {"ts": now, "service": d.key, "env": svc.env if svc else "",
                                "actor": "deploytui"}
        details: dict[str, Any] = {"revision": d.revision, "images": list(d.images),
                                   "from": previous, "to": phase}
        if phase == "complete":
            took = now - track.started_at if track.started_at is not None else None
            track.completed_at = now
            announced, track.observed_start, track.announced = track.announced, False, False
            if not announced:
                return      # a scale, or a rollout whose start we did not see: no event
            if took is not None:
                self.durations.record(d.key, d.revision, took)
                details["seconds"] = round(took, 3)
            self.events.append(TimelineEvent(
                kind="rollout_completed",
                summary=f"{d.key}: revision {d.revision} rolled out"
                + (f" in {format_duration(took)}" if took is not None else ""),
                details=details, **base))
        elif phase == "stalled":
            self.events.append(TimelineEvent(
                kind="rollout_stalled", severity="warning",
                summary=f"{d.key}: rollout of revision {d.revision} stalled — {message}",
                details=details, **base))
        elif phase == "failed":
            self.events.append(TimelineEvent(
                kind="rollout_failed", severity="critical",
                summary=f"{d.key}: rollout of revision {d.revision} failed — {message}",
                details=details, **base))
