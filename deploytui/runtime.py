"""Wiring: one :class:`Runtime` holds what the console and the headless commands share.

Sources are found by pane name in :data:`SOURCE_MODULES`; each module offers
``make_source(runtime) -> Source | None`` (None when that source is not configured), so the
UI never constructs a source itself and tests can inject their own.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from deploytui.actions.door import ActionDoor
from deploytui.config import Settings, operator_identity
from deploytui.model import MemoryJournal

__all__ = ["SOURCE_MODULES", "Runtime", "add_sources", "build_runtime"]

log = logging.getLogger(__name__)

#: pane name -> module offering ``make_source(runtime)``
SOURCE_MODULES: Mapping[str, str] = {
    "health": "deploytui.sources.health",
    "rollouts": "deploytui.sources.kube",
    "ports": "deploytui.sources.ports",
    "alerts": "deploytui.sources.alerts",
}


@dataclass
class Runtime:
    settings: Settings
    mode: str                      # "live" or "demo"
    operator: str
    journal: Any                   # EventSink + AuditSink: the Store, or a MemoryJournal
    door: ActionDoor
    read_only_locked: bool = False
    sources: dict[str, Any] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)   # notifier, kube client, incidents ...

    @property
    def read_only(self) -> bool:
        return bool(self.extras.get("read_only", self.settings.read_only))

    def set_read_only(self, value: bool) -> bool:
        """Switch read-only at run time; refused (returns False) when locked."""
        if not value and (self.read_only_locked or self.settings.console.wall):
            return False
        self.extras["read_only"] = value
        return True


def _open_journal(settings: Settings) -> Any:
    try:
        store_mod = importlib.import_module("deploytui.store")
    except ModuleNotFoundError:
        return MemoryJournal()
    try:
        return store_mod.open_store(settings)
    except Exception as exc:  # a broken disk must not stop the console; say so instead
        log.warning("store unavailable, keeping events in memory: %s", exc)
        journal = MemoryJournal()
        journal.error = str(exc)  # type: ignore[attr-defined]
        return journal


def build_runtime(settings: Settings, *, mode: str = "live", journal: Any = None,
                  with_sources: bool = True, with_incidents: bool | None = None) -> Runtime:
    """Build the runtime. ``journal``: inject a sink (tests); by default the store is opened and
    an incident manager put in front of it (``with_incidents`` defaults to "no journal given")."""
    if with_incidents is None:
        with_incidents = journal is None
    journal = journal if journal is not None else _open_journal(settings)
    operator = operator_identity(settings)
    rt = Runtime(settings=settings, mode=mode, operator=operator, journal=journal,
                 door=None,  # type: ignore[arg-type]
                 read_only_locked=settings.console.lock_read_only or settings.console.wall)
    rt.door = ActionDoor(operator=operator, read_only=lambda: rt.read_only, audit=journal,
                         timeline=journal)
    if with_incidents:
        # Before the sources: they keep a reference to runtime.journal, and every event must
        # pass the incident manager (auto-open on a critical alert / a prod service down).
        from deploytui.incidents import attach_incidents

        attach_incidents(rt, start=False)
    if with_sources:
        add_sources(rt)
    return rt


def add_sources(rt: Runtime) -> dict[str, Any]:
    """Build every configured source (imports their modules: httpx, aiohttp, kubernetes...).

    The console calls this in a thread after its first frame, so start-up stays fast.
    """
    for name, module in SOURCE_MODULES.items():
        if name in rt.sources:
            continue
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue
        factory = getattr(mod, "make_source", None)
        if factory is not None:
            source = factory(rt)
            if source is not None:
                rt.sources[name] = source
    return rt.sources
