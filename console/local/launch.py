"""Finding, starting and stopping a profile's agent from the console side.

The agent is started on demand, detached (its own session, so it outlives the CLI that
started it), by whichever client gets the profile's start lock first; the others wait for its
port file. Nothing here talks to the agent beyond ``hello`` and ``shutdown``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from console.local.paths import API_VERSION, AgentPaths
from console.profile import LocalSettings, Profile

START_SECONDS = 60.0
STOP_SECONDS = 90.0


class AgentUnavailable(Exception):
    """The agent cannot be reached or started; the message says why and what to do."""


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


def hello(api_url: str, timeout: float = 2.0) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"{api_url}/api/v{API_VERSION}/hello", timeout=timeout) as r:
            answer: dict[str, Any] = json.load(r)
            return answer
    except (OSError, ValueError):
        return None


def running_agent(paths: AgentPaths) -> dict[str, Any] | None:
    """The agent's hello when one answers on the port file's address; else None."""
    try:
        info = json.loads(paths.port_file.read_text())
    except (OSError, ValueError):
        return None
    answer = hello(str(info.get("api_url", "")))
    if answer is None:
        return None
    if answer.get("api") != API_VERSION:
        raise AgentUnavailable(
            f"the agent (pid {answer.get('pid')}) speaks API v{answer.get('api')}, this console "
            f"v{API_VERSION}; stop it with `fleetdeck agent stop` and retry"
        )
    return answer


@contextlib.contextmanager
def _start_lock(paths: AgentPaths) -> Iterator[None]:
    paths.root.mkdir(parents=True, exist_ok=True)
    handle = os.open(paths.start_lock, os.O_RDWR | os.O_CREAT, 0o600)
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
        with paths.agent_log.open("ab") as log:
            process = subprocess.Popen(
                agent_command(profile, paths),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
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
    request = urllib.request.Request(
        f"{found['api_url']}/api/v{API_VERSION}/shutdown", data=b"{}", method="POST"
    )
    with contextlib.suppress(OSError), urllib.request.urlopen(request, timeout=5):
        pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _lock_held(paths.lock):
            return int(found["pid"])
        time.sleep(0.1)
    raise AgentUnavailable(
        f"the agent (pid {found['pid']}) did not stop within {timeout:.0f} s; see {paths.agent_log}"
    )


def _lock_held(path: Path) -> bool:
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
