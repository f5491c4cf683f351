"""Every mutation goes through one door: :class:`deploytui.actions.door.ActionDoor`.

The door checks read-only mode first (whatever the entry path: key, command palette, guard,
programmatic), then plans, locks, executes, audits, records the timeline and notifies.
"""

from deploytui.actions.door import (
    MUTATING_ACTIONS,
    Action,
    ActionContext,
    ActionDoor,
    ActionPlan,
    ActionResult,
    Locker,
)

__all__ = [
    "MUTATING_ACTIONS",
    "Action",
    "ActionContext",
    "ActionDoor",
    "ActionPlan",
    "ActionResult",
    "Locker",
]
