"""``--request-timeout`` cuts off a cluster that never answers (issue 17).

The API server here is one that accepts connections and reads what it is sent but never
answers: what a stopped, overloaded or partitioned API server looks like from the client. The
kubeconfig is the test cluster's (its contexts, users, tokens and CA) with every cluster's
server moved to that address, so everything but the server's silence is as real as the rest of
the suite. The user sees one plain line that says the cluster did not answer and within what,
and the command ends (the subprocess timeout is only a safety net: no test here measures time).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.infra.k8s_fixtures import K8sCluster
from tests.support.cli import Fleetdeck, kubernetes_fleetdeck
from tests.support.clusters import kubeconfig_moved

SAFETY_NET = 60.0  # seconds before a command that never ends fails the test


class SilentServer:
    """A TCP server on 127.0.0.1 that accepts every connection, reads, and never answers."""

    def __init__(self) -> None:
        self._listening = socket.create_server(("127.0.0.1", 0))
        self._listening.settimeout(0.2)
        self._accepted: list[socket.socket] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._listening.getsockname()[:2]
        return f"https://{host}:{port}"

    @property
    def connections(self) -> int:
        """How many connections it accepted (and left unanswered)."""
        return len(self._accepted)

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                connection, _ = self._listening.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._accepted.append(connection)
            threading.Thread(target=self._read, args=(connection,), daemon=True).start()

    @staticmethod
    def _read(connection: socket.socket) -> None:
        try:
            while connection.recv(65536):
                pass
        except OSError:
            pass

    def close(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)
        self._listening.close()
        for connection in self._accepted:
            connection.close()


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()


@pytest.fixture
def fleetdeck(k8s_cluster: K8sCluster, silent_server: SilentServer, tmp_path: Path) -> Fleetdeck:
    """The CLI on a profile whose kubeconfig is the test cluster's, its server the silent one."""
    silent = kubeconfig_moved(k8s_cluster, tmp_path / "silent.kubeconfig", silent_server.url)
    return kubernetes_fleetdeck(
        tmp_path / "home", kubeconfig=silent, namespace="models", store=str(tmp_path / "store")
    )


@pytest.mark.parametrize(
    "command",
    [["ls"], ["describe", "digits"], ["scale", "digits", "--replicas", "2"]],
    ids=["ls", "describe", "scale"],
)
@pytest.mark.parametrize(
    ("timeout", "shown"), [("2s", "2s"), ("3", "3s")], ids=["duration", "seconds"]
)
def test_a_request_timeout_cuts_off_a_server_that_never_answers(
    fleetdeck: Fleetdeck,
    silent_server: SilentServer,
    command: list[str],
    timeout: str,
    shown: str,
) -> None:
    done = fleetdeck(*command, "--request-timeout", timeout, timeout=SAFETY_NET)
    assert done.code == 1, done.err
    assert done.out == ""
    assert done.err == (
        f"fleetdeck: profile 'test': the cluster did not answer within the request timeout "
        f"({shown})\n"
    )
    assert silent_server.connections > 0  # it was that server that did not answer


@pytest.mark.parametrize(
    "limit", [[], ["--request-timeout", "0"]], ids=["no request timeout", "0 (no limit)"]
)
def test_without_a_request_timeout_the_cli_still_gives_up_on_a_server_that_never_answers(
    fleetdeck: Fleetdeck, silent_server: SilentServer, limit: list[str]
) -> None:
    # No limit on each request, but the probe beside the watches (two timed-out /readyz) tells
    # a hung server from a slow one, and the CLI gives up on it.
    done = fleetdeck("ls", *limit, timeout=SAFETY_NET)
    assert done.code == 1, done.err
    assert done.out == ""
    assert (
        "fleetdeck: profile 'test': the cluster did not answer (the API server does not answer)"
    ) in done.err.splitlines()
    assert "Traceback" not in done.err
    assert silent_server.connections > 0
