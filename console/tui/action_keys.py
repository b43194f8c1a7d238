"""The keys of the deployment actions, shared by every screen that acts on deployments (the
Fleet and the Deployment screens), and the one way such a screen answers a key it does not offer.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TypeGuard

from textual import events
from textual.app import App
from textual.binding import Binding

from console.batch.runner import ACTIONS, Action
from console.tui.context import PaletteCommand
from console.tui.permissions import ACTION_LABELS, ACTION_TITLES
from console.views.format import printable

ACTION_KEYS: dict[str, Action] = {
    "u": "rollout",
    "b": "rollback",
    "r": "restart",
    "s": "scale",
    "p": "pause",
    "P": "resume",
    "ctrl+d": "delete",
}

WhyNot = Callable[[Action], str]  # why an action is not offered ("" when it is)


def action_bindings() -> list[Binding]:
    return [
        Binding(key, f"act('{action}')", ACTION_LABELS[action], id=f"action.{action}")
        for key, action in ACTION_KEYS.items()
    ]


def is_action(value: object) -> TypeGuard[Action]:
    return isinstance(value, str) and value in ACTIONS


def offered(action: str, parameters: tuple[object, ...], why_not: WhyNot) -> bool:
    """A screen's ``check_action`` for the action keys: hidden from the footer when refused."""
    if action == "act" and parameters and is_action(parameters[0]):
        return not why_not(parameters[0])
    return True


def say_refused(app: App[object], action: str, reason: str) -> None:
    # A refusal quotes the server: printable, and never markup.
    app.notify(printable(f"{action}: {reason}"), severity="warning", timeout=5, markup=False)


def chosen_action(app: App[object], action: str, why_not: WhyNot) -> Action | None:
    """``action`` when it is one the screen offers now; None (and the refusal said) if not."""
    if not is_action(action):
        return None
    reason = why_not(action)
    if reason:
        say_refused(app, action, reason)
        return None
    return action


def refuse_key(event: events.Key, app: App[object], why_not: WhyNot) -> None:
    """A key of an action that is not offered still says why instead of doing nothing."""
    action = ACTION_KEYS.get(event.key)
    reason = why_not(action) if action else ""
    if reason:
        event.stop()
        say_refused(app, event.key if action is None else action, reason)


def action_commands(
    app: App[object], why_not: WhyNot, act: Callable[[Action], None], targets: str
) -> list[PaletteCommand]:
    """The command palette's entry for each action on ``targets``: an offered one acts, one
    that is not says why."""
    commands: list[PaletteCommand] = []
    for action in ACTIONS:
        reason = why_not(action)
        title = f"{ACTION_TITLES[action]} {targets}"
        if reason:
            say = partial(say_refused, app, action, reason)
            commands.append((title, f"not offered: {reason}", say))
        else:
            commands.append((title, f"{action} {targets}", partial(act, action)))
    return commands
