"""pytest fixtures for the real HDFS (``tests/infra/hdfs``; NameNode + DataNode with WebHDFS).

* ``hdfs_cluster`` (session): uses the cluster named by ``FLEETDECK_HDFS_URL``, else the one
  ``tests/infra/hdfs up`` left running, else builds (first run) and starts one, which it stops at
  the end of the session. Only a cluster this session started is stopped.
* ``hdfs_root`` (function): a fresh, empty folder per test as an ``hdfs://`` store root, removed
  afterwards.

Without Java 17 or Maven, or when the build or start fails, the fixtures call
``missing_infra``: a skip on a developer's machine, a failure under ``FLEETDECK_REQUIRE_INFRA=1``.
The ``hdfs`` package (HdfsCLI) is imported only inside the fixtures.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import sys
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest

from tests.infra import hdfs_cluster as infra
from tests.infra.require import missing_infra

if TYPE_CHECKING:
    from hdfs import InsecureClient

TEST_ROOT = "/fleetdeck-tests"
DEFAULT_USER = "fleetdeck"


@dataclasses.dataclass(frozen=True)
class HdfsCluster:
    """A running HDFS reachable over WebHDFS at ``url`` (``http://127.0.0.1:PORT``)."""

    url: str
    started_here: bool = False

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or infra.HOST

    @property
    def port(self) -> int:
        """The NameNode's HTTP (WebHDFS) port: the port of ``hdfs://`` store roots."""
        port = urlsplit(self.url).port
        if port is None:
            raise ValueError(f"{self.url} names no port")
        return port

    def client(self, user: str = DEFAULT_USER) -> InsecureClient:
        """An HdfsCLI client acting as ``user`` (simple authentication, as on the test cluster)."""
        from hdfs import InsecureClient

        return InsecureClient(self.url, user=user)

    def uri(self, path: str = "/") -> str:
        """``hdfs://127.0.0.1:PORT/path``: the store-root form of ``path`` on this cluster."""
        return f"hdfs://{self.host}:{self.port}/{path.lstrip('/')}"

    def path(self, uri: str) -> str:
        """The absolute HDFS path of an ``hdfs://`` URI on this cluster (``uri``'s inverse)."""
        parts = urlsplit(uri)
        if parts.scheme != "hdfs" or (parts.hostname, parts.port) != (self.host, self.port):
            raise ValueError(f"{uri} is not on this cluster ({self.uri()})")
        return parts.path or "/"


def _progress_for(config: pytest.Config) -> infra.Progress:
    """Progress lines shown past pytest's output capture: a first run builds for a while."""
    capture: Any = config.pluginmanager.getplugin("capturemanager")

    def progress(message: str) -> None:
        with (
            capture.global_and_fixture_disabled()
            if capture is not None
            else contextlib.nullcontext()
        ):
            print(f"hdfs: {message}", file=sys.stderr, flush=True)

    return progress


@pytest.fixture(scope="session")
def hdfs_cluster(pytestconfig: pytest.Config) -> Iterator[HdfsCluster]:
    try:
        import hdfs  # noqa: F401
    except ImportError:
        missing_infra(
            "the `hdfs` Python package (HdfsCLI) is not installed: pip install -e .[hdfs]"
        )

    url = os.environ.get("FLEETDECK_HDFS_URL", "").strip()
    if url:
        if not infra.webhdfs_answers(url, timeout=10):
            missing_infra(f"FLEETDECK_HDFS_URL={url} does not answer WebHDFS")
        yield HdfsCluster(url.rstrip("/"))
        return

    progress = _progress_for(pytestconfig)
    try:
        state, started = infra.up(progress=progress)
    except infra.InfraError as exc:
        missing_infra(f"real HDFS: {exc}")
    cluster = HdfsCluster(state.url, started_here=started)
    try:
        yield cluster
    finally:
        if started:
            infra.down(progress=progress)


@pytest.fixture
def hdfs_root(hdfs_cluster: HdfsCluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, empty folder on the real HDFS, as ``hdfs://127.0.0.1:PORT/fleetdeck-tests/...``."""
    client = hdfs_cluster.client()
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name).strip("-")[:80] or "test"
    path = f"{TEST_ROOT}/{name}-{uuid.uuid4().hex[:8]}"
    client.makedirs(path)
    yield hdfs_cluster.uri(path)
    client.delete(path, recursive=True)
