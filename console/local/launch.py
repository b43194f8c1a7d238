"""Finding, starting and stopping a profile's agent from the console side.

The agent is started on demand, detached (its own session, so it outlives the CLI that
started it), by whichever client gets the profile's start lock first; the others wait for it to
answer on its socket. It runs as ``python -P -m console.local`` in its own state folder, so
nothing in the folder the CLI was started from is ever imported. Nothing here talks to the
agent beyond ``hello`` and ``shutdown`` (through ``console.local.client``).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from console.local.client import (
    AgentClient,
    AgentNotRunning,
    AgentRefused,
    AgentUnavailable,
    hello,
)
from console.local.paths import API_VERSION, PRIVATE_FILE, AgentPaths
from console.profile import LocalSettings, Profile

__all__ = [
    "AgentUnavailable",
    "ensure_agent",
    "find_agent",
    "paths_for",
    "running_agent",
    "stop_agent",
]

START_SECONDS = 60.0
STOP_SECONDS = 90.0


def paths_for(profile: Profile) -> AgentPaths:
    return AgentPaths.for_profile(profile.name)


def agent_command(profile: Profile, paths: AgentPaths) -> list[str]:
    local = profile.local or LocalSettings()
    predictor = profile.predictor
    store = profile.store.root
    if "://" not in store:  # the agent's working folder is not necessarily the CLI's
        store = str(Path(store).expanduser().resolve())
    return [
        sys.executable,
        "-P",  # the working folder never goes on sys.path (nor is it the agent's: see below)
        "-m",
        "console.local",
        "--profile",
        profile.name,
        "--state-dir",
        str(paths.root),
        "--store",
        store,
        "--gateway-port",
        str(local.gateway_port),
        "--replicas",
        str(predictor.replicas),
        "--drain-seconds",
        str(predictor.drain_seconds),
        "--max-batch-size",
        str(predictor.max_batch_size),
        "--batch-timeout-ms",
        str(predictor.batch_timeout_ms),
        "--progress-deadline",
        str(local.progress_deadline_seconds),
        "--training-parallel",
        str(local.training_parallel),
    ]


def running_agent(paths: AgentPaths) -> dict[str, Any] | None:
    """The agent's hello when our agent answers on the profile's socket; else None."""
    return find_agent(paths)[0]


def find_agent(paths: AgentPaths) -> tuple[dict[str, Any] | None, str]:
    """(the agent's hello, "") when our agent answers on the profile's socket; else (None,
    why not: no agent file, a stale one, a socket that is not ours...)."""
    try:
        answer = hello(paths)
    except AgentNotRunning as exc:
        return None, str(exc)
    if answer.get("api") != API_VERSION:
        raise AgentUnavailable(
            f"the agent (pid {answer.get('pid')}) speaks API v{answer.get('api')}, this console "
            f"v{API_VERSION}; stop it with `fleetdeck agent stop` and retry"
        )
    return answer, ""


def _open_private(path: Path, flags: int) -> int:
    """``path`` opened (created 0600), and made 0600 if an older version left it wider."""
    handle = os.open(path, flags | os.O_CREAT | os.O_NOFOLLOW, PRIVATE_FILE)
    os.fchmod(handle, PRIVATE_FILE)
    return handle


@contextlib.contextmanager
def _start_lock(paths: AgentPaths) -> Iterator[None]:
    paths.make_private()
    handle = _open_private(paths.start_lock, os.O_RDWR)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)


def ensure_agent(profile: Profile, timeout: float = START_SECONDS) -> dict[str, Any]:
    """The profile's running agent, started first when none is."""
    paths = paths_for(profile)
    found = running_agent(paths)
    if found is not None:
        return found
    with _start_lock(paths):
        found = running_agent(paths)
        if found is not None:
            return found
        with os.fdopen(_open_private(paths.agent_log, os.O_WRONLY | os.O_APPEND), "ab") as log:
            process = subprocess.Popen(
                agent_command(profile, paths),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=paths.root,  # its own folder, never the one the CLI runs in
                start_new_session=True,  # not stopped by the terminal's Ctrl-C or hang-up
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = running_agent(paths)
            if found is not None:
                return found
            if process.poll() is not None:
                raise AgentUnavailable(
                    f"the local agent for profile {profile.name!r} did not start: "
                    f"{_last_line(paths.agent_log)} (log: {paths.agent_log})"
                )
            time.sleep(0.1)
        process.terminate()
        raise AgentUnavailable(
            f"the local agent for profile {profile.name!r} did not answer within {timeout:.0f} s "
            f"(log: {paths.agent_log})"
        )


def stop_agent(profile: Profile, timeout: float = STOP_SECONDS) -> int | None:
    """Ask the agent to stop and wait until it has; returns its pid, None when none ran."""
    paths = paths_for(profile)
    found = running_agent(paths)
    if found is None:
        return None
    with contextlib.suppress(AgentUnavailable, AgentRefused):  # gone already: as good
        AgentClient(paths, int(found["pid"])).post("shutdown", {}, timeout=5)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not lock_held(paths.lock):
            return int(found["pid"])
        time.sleep(0.1)
    raise AgentUnavailable(
        f"the agent (pid {found['pid']}) did not stop within {timeout:.0f} s; see {paths.agent_log}"
    )


def lock_held(path: Path) -> bool:
    try:
        handle = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(handle)
    return False


def _last_line(path: Path) -> str:
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "no log"
    return lines[-1] if lines else "no output"
