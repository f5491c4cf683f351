"""The guard in the console: the proposal banner, the automatic-rollback countdown, the header
badge, and the controller that starts a guard for every rollout.

Wiring (the lead's console)::

    from deploytui.ui.guard_banner import install_guard
    controller = install_guard(runtime, app)   # runtime.extras["guard"], a snapshot listener,
                                               # runtime.extras["guard_badge"]
    # `g` -> deploytui.ui.flows.guard_arm -> runtime.extras["guard"].toggle_armed(screen)

When a rollouts snapshot shows a deployment progressing on a revision the controller has not
guarded yet, it runs a :class:`~deploytui.guard_runner.GuardRunner` for it as an app worker.
When the guard trips, :class:`GuardPromptScreen` opens:

* propose: the evidence and a countdown; ``y`` rolls back (through the door), ``n`` / ``esc``
  dismisses; when the countdown ends nothing is done;
* auto (armed): the evidence and "rolling back in N s"; ``esc`` aborts; at zero the rollback runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, ClassVar

from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label, Static

from deploytui.errors import ActionRefused
from deploytui.guard_runner import GuardOutcome, GuardRunner, Prompt
from deploytui.model import AuditRecord

__all__ = [
    "DeadLettersScreen",
    "GuardController",
    "GuardPromptScreen",
    "badge_text",
    "install_guard",
    "show_dead_letters",
]

ARMED_BADGE = "[b reverse] GUARD ARMED [/]"


def badge_text(mode: str, armed: bool, dead_letters: int = 0) -> str:
    """What the header shows: ``GUARD ARMED`` (auto, armed), ``guard: auto (disarmed)``,
    ``guard: propose``, or nothing (off); plus ``N dead letters`` when notifications gave up."""
    if mode == "off":
        text = ""
    elif mode == "auto":
        text = ARMED_BADGE if armed else "guard: auto (disarmed)"
    else:
        text = "guard: propose"
    if dead_letters:
        note = f"[b]{dead_letters} undelivered notification{'s' if dead_letters > 1 else ''}[/b]"
        text = f"{text}  {note}" if text else note
    return text


class GuardPromptScreen(ModalScreen[str]):
    """The banner: evidence, countdown, keys. Dismisses with ``confirm``, ``dismiss``,
    ``abort`` or ``timeout``."""

    DEFAULT_CSS = """
    GuardPromptScreen { align: center top; }
    GuardPromptScreen > Vertical {
        width: 100; max-width: 100%; height: auto; max-height: 100%;
        border: thick $error; background: $surface; padding: 0 1; margin-top: 2;
    }
    GuardPromptScreen .title { text-style: bold; color: $error; }
    GuardPromptScreen .evidence { color: $text; }
    GuardPromptScreen #countdown { text-style: bold; margin-top: 1; }
    GuardPromptScreen .hint { color: $text-muted; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "escape", "Abort / dismiss"),
        Binding("y", "confirm", "Roll back", show=False),
        Binding("n", "dismiss_prompt", "Dismiss", show=False),
    ]

    def __init__(self, prompt: Prompt, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.prompt = prompt
        self.clock = clock

    def compose(self) -> ComposeResult:
        p = self.prompt
        auto = p.kind == "countdown"
        title = (f"GUARD TRIPPED — automatic rollback of {p.deployment} (revision {p.revision})"
                 if auto else f"GUARD TRIPPED — roll back {p.deployment} (revision {p.revision})?")
        with Vertical():
            yield Label(title, classes="title", markup=False)
            yield Static(p.decision.reason, markup=False)
            for line in p.evidence:
                yield Static(f"  • {line}", classes="evidence", markup=False)
            yield Static(self._countdown_text(), id="countdown", markup=False)
            hint = ("esc aborts the rollback" if auto else
                    "y rolls back to the previous revision · n / esc dismisses")
            yield Static(hint, classes="hint", markup=False)

    def _countdown_text(self) -> str:
        left = self.prompt.remaining(self.clock())
        if self.prompt.kind == "countdown":
            return f"Rolling back in {left:.0f} s"
        return f"Proposal expires in {left:.0f} s"

    def on_mount(self) -> None:
        self.set_interval(0.2, self._tick)

    def _tick(self) -> None:
        self.query_one("#countdown", Static).update(self._countdown_text())
        if self.prompt.remaining(self.clock()) <= 0 and self.is_current:
            self.dismiss("timeout")

    def action_escape(self) -> None:
        if self.prompt.kind == "countdown":
            self.prompt.runner.abort()
            self.dismiss("abort")
        else:
            self.prompt.runner.dismiss()
            self.dismiss("dismiss")

    def action_confirm(self) -> None:
        if self.prompt.kind == "propose":
            self.prompt.runner.confirm()
            self.dismiss("confirm")

    def action_dismiss_prompt(self) -> None:
        if self.prompt.kind == "propose":
            self.prompt.runner.dismiss()
            self.dismiss("dismiss")


class GuardController:
    """One per console: arms/disarms, starts a guard per rollout, shows the prompts."""

    def __init__(self, runtime: Any, app: App[Any] | None = None, *,
                 clock: Callable[[], float] = time.time,
                 runner_options: dict[str, Any] | None = None) -> None:
        self.runtime = runtime
        self.app = app
        self.clock = clock
        self.mode = runtime.settings.guard.mode
        self.armed = False
        self.runner_options = dict(runner_options or {})
        self.runners: dict[str, GuardRunner] = {}
        self.outcomes: list[GuardOutcome] = []
        self._guarded: set[tuple[str, int]] = set()
        self._rollout_notes: Any = None
        self.dead_letters = 0
        self._dead_checked = 0.0
        self.update_badge()

    # --- wiring --------------------------------------------------------------------------------

    def attach(self, app: App[Any]) -> GuardController:
        self.app = app
        self.runtime.extras["guard"] = self
        listeners = getattr(app, "snapshot_listeners", None)
        if listeners is not None and self.on_snapshot not in listeners:
            listeners.append(self.on_snapshot)
        return self

    def update_badge(self) -> None:
        self.runtime.extras["guard_badge"] = badge_text(self.mode, self.armed, self.dead_letters)
        console = self._console()
        if console is not None and hasattr(console, "update_header"):
            try:
                console.update_header()
            except Exception:   # before the header is mounted
                pass

    def _console(self) -> Any:
        app = self.app
        if app is None:
            return None
        getter = getattr(app, "get_screen_console", None)
        return getter() if getter is not None else None

    # --- arming (`g`) --------------------------------------------------------------------------

    def toggle_armed(self, screen: Any) -> None:
        try:
            self.runtime.door.check_allowed("guard_arm")
        except ActionRefused as exc:
            screen.notify(str(exc), severity="error")
            return
        if self.mode != "auto":
            screen.notify(f"guard: mode is {self.mode!r}; arming applies to mode \"auto\" "
                          "([guard] mode)", severity="warning")
            return
        self.armed = not self.armed
        for runner in self.runners.values():
            runner.armed = self.armed
        state = "armed: a tripped guard rolls back after the countdown" if self.armed else \
            "disarmed: a tripped guard only proposes"
        try:
            self.runtime.journal.add_audit(AuditRecord(
                action="guard_arm", target="guard", status="ok", ts=self.clock(),
                deployer=self.runtime.operator, message=f"guard {state}",
                after={"armed": self.armed}))
        except Exception:
            pass
        self.update_badge()
        screen.notify(f"guard {state}", severity="warning" if self.armed else "information")

    # --- rollouts ------------------------------------------------------------------------------

    def refresh_dead_letters(self, force: bool = False) -> int:
        """Count the dead letters (at most every 5 s unless ``force``); updates the badge."""
        now = time.monotonic()
        if not force and now - self._dead_checked < 5.0:
            return self.dead_letters
        self._dead_checked = now
        dead = getattr(self.runtime.journal, "dead_letters", None)
        try:
            count = len(dead(limit=1000)) if callable(dead) else 0
        except Exception:
            count = self.dead_letters
        if count != self.dead_letters:
            self.dead_letters = count
            self.update_badge()
        return count

    def on_snapshot(self, name: str, snapshot: Any) -> None:
        self.refresh_dead_letters()
        if name != "rollouts":
            return
        notifier = self.runtime.extras.get("notifier")
        if notifier is not None:
            if self._rollout_notes is None:
                from deploytui.notify import RolloutNotifications

                self._rollout_notes = RolloutNotifications(notifier)
            self._rollout_notes.observe(snapshot)
        if self.mode == "off" or getattr(snapshot, "error", None):
            return
        for r in getattr(snapshot, "rollouts", ()):
            key = f"{r.namespace}/{r.name}"
            if r.phase in ("progressing", "stalled", "failed") and \
                    (key, r.revision) not in self._guarded and key not in self.runners:
                self._guarded.add((key, r.revision))
                self.watch(key)

    def watch(self, deployment: str, **options: Any) -> GuardRunner:
        """Start guarding ``deployment`` now (an app worker); returns the runner."""
        opts = {**self.runner_options, **options}
        runner = GuardRunner(self.runtime, deployment, mode=self.mode, armed=self.armed,
                             on_prompt=self.show_prompt, on_finish=self._finished, **opts)
        self.runners[deployment] = runner
        assert self.app is not None, "attach the controller to the app first"
        self.app.run_worker(runner.run(), name=f"guard:{deployment}", group="guard",
                            exit_on_error=False)
        return runner

    def show_prompt(self, prompt: Prompt) -> None:
        if self.app is not None:
            self.app.push_screen(GuardPromptScreen(prompt, clock=prompt.runner.clock))

    def _finished(self, outcome: GuardOutcome) -> None:
        self.outcomes.append(outcome)
        self.runners.pop(outcome.deployment, None)
        if outcome.status in ("healthy", "stopped") or self.app is None:
            return
        severity = "error" if outcome.status in ("blocked", "rollback_failed") else "warning"
        self.app.notify(f"guard: {outcome.message}", severity=severity, timeout=15)

    def stop_all(self) -> None:
        for runner in list(self.runners.values()):
            runner.stop()


class DeadLettersScreen(ModalScreen[None]):
    """Notifications that gave up after every attempt: ``r`` retries the selected one now,
    ``esc`` closes. Errors are already masked (no webhook URL or key is shown)."""

    DEFAULT_CSS = """
    DeadLettersScreen { align: center middle; }
    DeadLettersScreen > Vertical {
        width: 140; max-width: 100%; height: auto; max-height: 90%;
        border: thick $warning; background: $surface; padding: 0 1;
    }
    DeadLettersScreen .title { text-style: bold; }
    DeadLettersScreen .hint { color: $text-muted; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close"),
        Binding("r", "retry", "Retry now"),
    ]

    def __init__(self, runtime: Any) -> None:
        super().__init__()
        self.runtime = runtime
        self.ids: list[int] = []

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Undelivered notifications (dead letters)", classes="title")
            yield DataTable(cursor_type="row", zebra_stripes=True)
            yield Static("", id="status", markup=False)
            yield Static("r retries the selected message now · esc closes", classes="hint")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("id", "created (UTC)", "event", "channel", "target", "attempts",
                          "last error")
        self.reload()

    def reload(self) -> None:
        from datetime import UTC, datetime

        from deploytui.notify import channel_secrets, mask_text

        table = self.query_one(DataTable)
        table.clear()
        dead = getattr(self.runtime.journal, "dead_letters", None)
        rows = dead(limit=200) if callable(dead) else []
        secrets = channel_secrets(self.runtime.settings.notify)
        self.ids = []
        for n in rows:
            p = n.payload or {}
            target = str(p.get("deployment") or p.get("target") or p.get("service") or "")
            table.add_row(str(n.id), datetime.fromtimestamp(n.created_at, UTC).strftime(
                "%Y-%m-%d %H:%M:%S"), n.event, n.channel, target, str(n.attempts),
                mask_text(n.last_error, secrets))
            self.ids.append(n.id)
        self.query_one("#status", Static).update(
            f"{len(rows)} dead letter(s)" if rows else "no dead letters")

    def action_close(self) -> None:
        self.dismiss(None)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "retry" and self.runtime.read_only:
            return False  # re-sending pages people: not from a read-only console
        return True

    def action_retry(self) -> None:
        from deploytui.errors import ActionRefused

        try:
            self.runtime.door.check_allowed("notify_retry")
        except ActionRefused as exc:
            self.query_one("#status", Static).update(str(exc))
            return
        table = self.query_one(DataTable)
        if not self.ids or table.cursor_row is None or table.cursor_row >= len(self.ids):
            return
        self._retry(self.ids[table.cursor_row])

    def _retry(self, notification_id: int) -> None:
        from deploytui.notify import DeliveryWorker

        store = self.runtime.journal
        settings = self.runtime.settings.notify

        def work() -> str:
            store.requeue_notification(notification_id)
            result = DeliveryWorker(store, settings).deliver_one(notification_id)
            if result is None:
                return f"#{notification_id}: not found"
            if result.ok:
                return f"#{notification_id} delivered to {result.channel}"
            return f"#{notification_id} failed again ({result.error}); it is back in the queue"

        def done(message: str) -> None:
            self.query_one("#status", Static).update(message)
            self.reload()

        async def run() -> None:
            import asyncio

            done(await asyncio.to_thread(work))

        self.run_worker(run(), group="dead-letters", exit_on_error=False)


def show_dead_letters(screen: Any) -> None:
    """Open the dead-letter list (for a console key or the command palette)."""
    screen.app.push_screen(DeadLettersScreen(screen.runtime))


def install_guard(runtime: Any, app: App[Any], **options: Any) -> GuardController:
    """Create the console's guard: ``runtime.extras["guard"]`` (what ``g`` toggles), the header
    badge in ``runtime.extras["guard_badge"]``, and a listener on the rollouts snapshots."""
    return GuardController(runtime, app, **options).attach(app)
