"""``fleetdeck agent start|stop|status``: the local agent by hand (the console starts it on
demand anyway)."""

from __future__ import annotations

import json
from typing import Any

from console.local.launch import (
    AgentUnavailable,
    ensure_agent,
    find_agent,
    paths_for,
    running_agent,
    stop_agent,
)
from console.profile import Profile


class AgentCommandError(Exception):
    """The agent command failed (exit 1); the message says why."""


def agent_command(profile: Profile, action: str, as_json: bool = False) -> int:
    if profile.backend != "local":
        raise AgentCommandError(
            f"profile {profile.name!r} uses the {profile.backend} backend; the local agent "
            "serves local profiles only (e.g. --profile local)"
        )
    paths = paths_for(profile)
    try:
        if action == "start":
            found = running_agent(paths)
            info = ensure_agent(profile)
            verb = "already running" if found else "started"
            _show(info, f"agent for profile {profile.name!r} {verb}", as_json)
        elif action == "stop":
            pid = stop_agent(profile)
            message = f"stopped the agent (pid {pid})" if pid else "no agent was running"
            _show({"stopped": pid}, f"{message} for profile {profile.name!r}", as_json)
        else:
            found, why = find_agent(paths)
            if found is None:
                _show(
                    {"running": False, "reason": why},
                    f"no agent runs for profile {profile.name!r}",
                    as_json,
                )
                return 3  # as `systemctl status`: not running
            _show(
                {"running": True, **found}, f"agent for profile {profile.name!r} running", as_json
            )
    except AgentUnavailable as exc:
        raise AgentCommandError(str(exc)) from None
    return 0


def _show(info: dict[str, Any], headline: str, as_json: bool) -> None:
    if as_json:
        print(json.dumps(info, indent=2, sort_keys=True))
        return
    print(headline)
    for key in ("pid", "socket", "gateway_url", "store", "state", "reason"):
        if key in info:
            print(f"  {key.replace('_', ' ')}: {info[key]}")
