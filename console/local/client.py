"""The agent's API as its clients reach it: HTTP over the Unix socket in the profile's private
state folder, believed only once it is known who listens there.

Before a byte is sent: the state folder is ours and closed to others (0700), the socket in it is
ours, and the process listening on it (``SO_PEERCRED``) runs as our uid with the pid that
``agent.json`` names. A stale ``agent.json`` (the agent was killed) or someone else's socket is
never believed: that is :class:`AgentNotRunning`, and nothing was sent.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import stat
import urllib.parse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from console.local.paths import API_VERSION, AgentPaths
from console.local.peer import peer_credentials

PREFIX = f"/api/v{API_VERSION}"
Query = Mapping[str, object] | Sequence[tuple[str, object]]


class AgentUnavailable(Exception):
    """The agent cannot be reached, started or believed; the message says why and what to do."""


class AgentNotRunning(AgentUnavailable):
    """No agent of ours listens (or what listens is not it); nothing was sent."""


class AgentRefused(Exception):
    """The agent answered with an error status; ``message`` is its own words."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status} {message}")
        self.status = status
        self.message = message


def read_agent_file(paths: AgentPaths) -> dict[str, Any]:
    """``agent.json``, when it is ours and private; what it says is checked on the socket."""
    try:
        handle = os.open(paths.agent_file, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise AgentNotRunning(f"no agent file ({paths.agent_file}: {exc.strerror})") from None
    with os.fdopen(handle, "rb") as file:
        _check_ours(os.fstat(file.fileno()), paths.agent_file, "file")
        try:
            info = json.loads(file.read())
        except ValueError:
            info = None
    if not isinstance(info, dict) or not isinstance(info.get("pid"), int):
        raise AgentNotRunning(f"{paths.agent_file} is not an agent's file (no pid)")
    return info


def connect(paths: AgentPaths, pid: int, timeout: float | None) -> socket.socket:
    """A connection to the agent with process id ``pid``, after every check above."""
    try:
        folder = os.open(paths.root, os.O_PATH | os.O_DIRECTORY)
    except OSError as exc:
        raise AgentNotRunning(f"no agent runs ({paths.root}: {exc.strerror})") from None
    try:
        found = os.fstat(folder)
        _check_ours(found, paths.root, "folder")
        if stat.S_IMODE(found.st_mode) & 0o077:
            raise AgentNotRunning(
                f"the state folder {paths.root} is open to other users "
                f"(mode {stat.S_IMODE(found.st_mode):o}); the agent closes it (0700) when it "
                "starts: `fleetdeck agent stop`, then `fleetdeck agent start`"
            )
        name = paths.socket.name
        try:
            listening = os.stat(name, dir_fd=folder, follow_symlinks=False)
        except FileNotFoundError:
            raise AgentNotRunning(f"no agent listens ({paths.socket} does not exist)") from None
        if not stat.S_ISSOCK(listening.st_mode):
            raise AgentNotRunning(f"{paths.socket} is not a socket")
        _check_ours(listening, paths.socket, "socket")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            # Through the folder already checked (and short: a socket path is at most 107 bytes).
            sock.connect(f"/proc/self/fd/{folder}/{name}")
            _check_peer(sock, paths, pid)
        except BaseException:
            sock.close()
            raise
        return sock
    except ConnectionRefusedError:
        raise AgentNotRunning(f"no agent listens on {paths.socket} (a stale socket)") from None
    except FileNotFoundError:
        raise AgentNotRunning(f"no agent listens ({paths.socket} does not exist)") from None
    except OSError as exc:
        raise AgentNotRunning(f"cannot connect to {paths.socket}: {exc}") from None
    finally:
        os.close(folder)


def _check_peer(sock: socket.socket, paths: AgentPaths, pid: int) -> None:
    peer = peer_credentials(sock)
    if peer.uid != os.geteuid():
        raise AgentNotRunning(
            f"{paths.socket} is served by uid {peer.uid} (pid {peer.pid}), not by you "
            f"(uid {os.geteuid()}): refusing to talk to it"
        )
    if peer.pid != pid:
        raise AgentNotRunning(
            f"{paths.socket} is served by pid {peer.pid}, not by the agent {paths.agent_file} "
            f"names (pid {pid}): that file is stale"
        )


def _check_ours(found: os.stat_result, path: Path, what: str) -> None:
    if found.st_uid != os.geteuid():
        raise AgentNotRunning(
            f"the agent's {what} {path} belongs to uid {found.st_uid}, not to you "
            f"(uid {os.geteuid()}): refusing to use it"
        )


class _Connection(http.client.HTTPConnection):
    """HTTP on a socket already connected and checked."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__("localhost", timeout=sock.gettimeout())
        self.sock = sock

    def connect(self) -> None:  # connected already: never a second, unchecked, connection
        if self.sock is None:
            raise http.client.NotConnected("the agent's connection was closed")


class AgentClient:
    """Requests to one agent (the process ``pid``) of the profile whose folder is ``paths``."""

    def __init__(self, paths: AgentPaths, pid: int) -> None:
        self.paths = paths
        self.pid = pid

    def get(self, path: str, query: Query = (), *, timeout: float | None = 10.0) -> Any:
        return self._exchange("GET", path, query, None, timeout)

    def post(self, path: str, arguments: Mapping[str, object], *, timeout: float = 120.0) -> Any:
        return self._exchange("POST", path, (), json.dumps(arguments).encode(), timeout)

    def stream(self, path: str, query: Query = ()) -> http.client.HTTPResponse:
        """An answer to read as it comes (a followed log); the caller closes it."""
        response = self._send("GET", path, query, None, None)
        if response.status >= 400:
            with contextlib.closing(response):
                raise AgentRefused(response.status, _error_of(response.read()))
        return response

    def _exchange(
        self, method: str, path: str, query: Query, body: bytes | None, timeout: float | None
    ) -> Any:
        response = self._send(method, path, query, body, timeout)
        with contextlib.closing(response):
            try:
                raw = response.read()
            except (OSError, http.client.HTTPException) as exc:
                raise AgentUnavailable(f"lost the agent while it answered {path}: {exc}") from None
        if response.status >= 400:
            raise AgentRefused(response.status, _error_of(raw))
        try:
            return json.loads(raw)
        except ValueError:
            raise AgentUnavailable(
                f"the agent's answer to {path} is not JSON: {raw[:200]!r}"
            ) from None

    def _send(
        self, method: str, path: str, query: Query, body: bytes | None, timeout: float | None
    ) -> http.client.HTTPResponse:
        sock = connect(self.paths, self.pid, timeout)
        connection = _Connection(sock)
        # Connection: close hands the socket to the response: closing it closes the socket.
        headers = {"Connection": "close", "Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        target = f"{PREFIX}/{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
        try:
            connection.request(method, target, body=body, headers=headers)
            return connection.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            raise AgentUnavailable(f"lost the agent during {method} {path}: {exc}") from None


def _error_of(raw: bytes) -> str:
    """The agent's ``{"error": ...}``, or what it sent instead."""
    with contextlib.suppress(ValueError):
        answer = json.loads(raw)
        if isinstance(answer, dict) and "error" in answer:
            return str(answer["error"])
    return raw.decode("utf-8", errors="replace")[:300] or "(no message)"


def hello(paths: AgentPaths, timeout: float = 2.0) -> dict[str, Any]:
    """The agent's hello, once the process listening is the one ``agent.json`` names and says
    so itself; :class:`AgentNotRunning` otherwise."""
    pid = int(read_agent_file(paths)["pid"])
    try:
        answer = AgentClient(paths, pid).get("hello", timeout=timeout)
    except (AgentRefused, AgentUnavailable) as exc:
        if isinstance(exc, AgentNotRunning):
            raise
        raise AgentNotRunning(f"the agent (pid {pid}) did not answer hello: {exc}") from None
    if not isinstance(answer, dict) or answer.get("pid") != pid:
        raise AgentNotRunning(f"what listens on {paths.socket} is not the agent pid {pid}")
    return answer
