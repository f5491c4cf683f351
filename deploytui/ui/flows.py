"""What each action key does in the console: resolve the target from the selection, ask what
must be asked (replica count, comment), then hand the action to the confirm-and-run flow of
:class:`~deploytui.ui.console_screen.ConsoleScreen`. Every mutation goes through the door.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from deploytui.model import Target

if TYPE_CHECKING:
    from deploytui.ui.console_screen import ConsoleScreen

__all__ = [
    "ack",
    "deployment_for",
    "guard_arm",
    "incident_open",
    "note",
    "port_reassign",
    "postmortem",
    "restart",
    "rollback",
    "scale",
    "timeline",
    "unack",
]


def deployment_for(screen: ConsoleScreen, target: Target) -> str:
    """The Deployment behind the selection: the target's own, or its service's (config), or a
    deployment named like the service in the watched namespaces."""
    if target.deployment:
        return target.deployment
    settings = screen.runtime.settings
    if target.service:
        svc = settings.service(target.service)
        if svc is not None and svc.deployment:
            return svc.deployment
        name = target.service.split("/")[-1]
        finder = getattr(screen.runtime.sources.get("rollouts"), "find_deployment", None)
        if callable(finder):
            found = finder(name, target.env)
            if found:
                return str(found)
    return ""


def _need_deployment(screen: ConsoleScreen, target: Target, verb: str) -> str:
    deployment = deployment_for(screen, target)
    if not deployment:
        what = target.service or "the selection"
        screen.notify(f"{verb}: no Kubernetes Deployment known for {what} — select a rollout, "
                      f"or set `deployment` for the service in the config", severity="warning")
    return deployment


def rollback(screen: ConsoleScreen, target: Target, to_revision: int | None = None) -> None:
    deployment = _need_deployment(screen, target, "rollback")
    if deployment:
        from deploytui.actions.kube import make_rollback

        screen.run_confirmed_action(lambda: make_rollback(screen.runtime, deployment, to_revision))


def scale(screen: ConsoleScreen, target: Target) -> None:
    deployment = _need_deployment(screen, target, "scale")
    if not deployment:
        return
    from deploytui.actions.kube import make_scale
    from deploytui.ui.screens.scale import ScaleScreen

    def chosen(replicas: int | None) -> None:
        if replicas is not None:
            screen.run_confirmed_action(lambda: make_scale(screen.runtime, deployment, replicas))

    rollouts = screen.runtime.sources.get("rollouts")
    latest = getattr(rollouts, "latest", None)
    rollout = latest.find(deployment) if latest is not None else None
    screen.app.push_screen(ScaleScreen(deployment, rollout), chosen)


def restart(screen: ConsoleScreen, target: Target) -> None:
    deployment = _need_deployment(screen, target, "restart")
    if deployment:
        from deploytui.actions.kube import make_restart

        screen.run_confirmed_action(lambda: make_restart(screen.runtime, deployment))


def _alert(screen: ConsoleScreen, target: Target, verb: str) -> str:
    if not target.alert_fingerprint:
        screen.notify(f"{verb}: select an alert in the Alerts pane (4)", severity="warning")
    return target.alert_fingerprint


def ack(screen: ConsoleScreen, target: Target) -> None:
    """Comment, then duration (default from [alertmanager]), then confirm: a silence for everyone."""
    fingerprint = _alert(screen, target, "acknowledge")
    if not fingerprint:
        return
    from deploytui.actions.ack import make_ack
    from deploytui.cli.common import parse_duration
    from deploytui.ui.screens.confirm import PromptScreen

    settings = screen.runtime.settings.alertmanager

    def valid_duration(value: str) -> str | None:
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            return str(exc)
        if not 60 <= seconds <= 14 * 86400:
            return "between 1m and 14d"
        return None

    def chosen_comment(comment: str | None) -> None:
        if comment is None:
            return

        def chosen_duration(duration: str | None) -> None:
            if duration is None:
                return
            minutes = parse_duration(duration) / 60
            screen.run_confirmed_action(
                lambda: make_ack(screen.runtime, fingerprint,
                                 comment=comment or settings.ack_comment, minutes=minutes))

        screen.app.push_screen(PromptScreen("Acknowledge alert", prompt="For how long?",
                                            value=f"{settings.ack_minutes:g}m",
                                            validate=valid_duration,
                                            hint="e.g. 30m, 2h, 1d"), chosen_duration)

    screen.app.push_screen(PromptScreen("Acknowledge alert", prompt="Comment:",
                                        value=settings.ack_comment,
                                        hint="Creates a silence every operator sees."),
                           chosen_comment)


def unack(screen: ConsoleScreen, target: Target) -> None:
    fingerprint = _alert(screen, target, "un-acknowledge")
    if fingerprint:
        from deploytui.actions.ack import make_unack

        screen.run_confirmed_action(lambda: make_unack(screen.runtime, fingerprint))


def port_reassign(screen: ConsoleScreen, target: Target) -> None:
    if not target.port_service:
        screen.notify("reassign port: select an allocation in the Ports pane (3)", severity="warning")
        return
    from deploytui.actions.ports import make_port_reassign

    screen.run_confirmed_action(lambda: make_port_reassign(screen.runtime, target.port_service))


def guard_arm(screen: ConsoleScreen, target: Target) -> None:
    guard = screen.runtime.extras.get("guard")
    if guard is None:
        screen.notify("guard: not running (set [guard] mode and configure Kubernetes)", severity="warning")
        return
    guard.toggle_armed(screen)


def _incidents(screen: ConsoleScreen) -> Any:
    manager = screen.runtime.extras.get("incidents")
    if manager is None:
        screen.notify("incidents: the store is not available", severity="warning")
    return manager


def incident_open(screen: ConsoleScreen, target: Target) -> None:
    from deploytui.ui.screens.timeline import open_incident_flow

    open_incident_flow(screen, target)


def note(screen: ConsoleScreen, target: Target) -> None:
    from deploytui.ui.screens.timeline import note_flow

    note_flow(screen, target)


def postmortem(screen: ConsoleScreen, target: Target) -> None:
    from deploytui.ui.screens.timeline import postmortem_flow

    postmortem_flow(screen, target)


def timeline(screen: ConsoleScreen, target: Target) -> None:
    from deploytui.ui.screens.timeline import TimelineScreen

    screen.app.push_screen(TimelineScreen(screen.runtime))
