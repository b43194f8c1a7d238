"""The real HDFS (tests/infra/hdfs) works as the model store needs it to.

Everything here runs against a real NameNode and DataNode over WebHDFS, through HdfsCLI (the
client the store uses) or plain HTTP where the protocol itself is the point.

Rename semantics, which atomic publish (stage in ``<model>/.staging-<id>/``, then rename to
``<model>/<version>/``) depends on:

* WebHDFS ``op=RENAME`` without ``renameoptions`` (what ``hdfs.Client.rename`` sends) is HDFS's
  legacy rename: onto an existing directory it moves the source *inside* it
  (``<version>/.staging-<id>``) and answers 200 ``{"boolean": true}``; onto an existing file, or
  into a missing parent, it answers 200 ``{"boolean": false}`` (HdfsCLI raises ``HdfsError``).
* With ``renameoptions=NONE`` the NameNode uses rename2 (``FileContext.rename`` semantics) and
  never nests: an existing destination is refused with HTTP 403 and nothing moves
  (``FileAlreadyExistsException`` for folder onto folder or file onto file; ``IOException``
  "must both be directories" for a folder onto a file); a missing parent is HTTP 404
  ``FileNotFoundException``; success is HTTP 200 with an empty body (no ``boolean``).
  ``renameoptions=OVERWRITE`` replaces an existing *empty* folder or a file but refuses a
  non-empty folder (HTTP 403, ``IOException``).
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest

from tests.infra import hdfs_cluster as infra
from tests.infra.hdfs_fixtures import DEFAULT_USER, HdfsCluster
from tests.infra.require import missing_infra

HDFS_COMMAND = Path(infra.__file__).with_name("hdfs")


def _webhdfs(
    cluster: HdfsCluster, method: str, path: str, body: bytes | None = None, **params: str
) -> tuple[int, dict[str, str], bytes]:
    """One raw WebHDFS request to the NameNode, redirects not followed."""
    query = urlencode({"user.name": DEFAULT_USER, **params})
    conn = http.client.HTTPConnection(cluster.host, cluster.port, timeout=30)
    try:
        conn.request(method, f"/webhdfs/v1{path}?{query}", body=body)
        res = conn.getresponse()
        return res.status, {k.lower(): v for k, v in res.getheaders()}, res.read()
    finally:
        conn.close()


def _follow(method: str, location: str, body: bytes | None = None) -> tuple[int, bytes]:
    parts = urlsplit(location)
    assert parts.hostname is not None
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request(method, f"{parts.path}?{parts.query}", body=body)
        res = conn.getresponse()
        return res.status, res.read()
    finally:
        conn.close()


def _remote_exception(body: bytes) -> str:
    parsed: Any = json.loads(body)
    return str(parsed["RemoteException"]["exception"])


@pytest.fixture
def root_path(hdfs_cluster: HdfsCluster, hdfs_root: str) -> str:
    return hdfs_cluster.path(hdfs_root)


# ---------------------------------------------------------------------------------------------
# The fixtures


def test_store_root_uri_names_the_webhdfs_port_and_starts_empty(
    hdfs_cluster: HdfsCluster, hdfs_root: str
) -> None:
    parts = urlsplit(hdfs_root)
    assert (parts.scheme, parts.hostname, parts.port) == ("hdfs", "127.0.0.1", hdfs_cluster.port)
    assert hdfs_cluster.url == f"http://127.0.0.1:{hdfs_cluster.port}"
    assert hdfs_cluster.client().list(parts.path) == []


# ---------------------------------------------------------------------------------------------
# Files through HdfsCLI


def test_written_bytes_read_back_identically(hdfs_cluster: HdfsCluster, root_path: str) -> None:
    client = hdfs_cluster.client()
    payload = os.urandom(3 * 1024 * 1024 + 17)
    with client.write(f"{root_path}/model.tflite") as writer:
        writer.write(payload)
    with client.read(f"{root_path}/model.tflite") as reader:
        assert reader.read() == payload
    status = client.status(f"{root_path}/model.tflite")
    assert (status["type"], status["length"], status["owner"]) == (
        "FILE",
        len(payload),
        "fleetdeck",
    )


def test_listing_shows_written_files_and_folders(hdfs_cluster: HdfsCluster, root_path: str) -> None:
    client = hdfs_cluster.client()
    client.makedirs(f"{root_path}/m/1/saved_model")
    client.write(f"{root_path}/m/1/manifest.json", data=b"{}")
    client.write(f"{root_path}/m/1/model.tflite", data=b"tflite")
    assert client.list(f"{root_path}/m/1") == ["manifest.json", "model.tflite", "saved_model"]
    kinds = {name: st["type"] for name, st in client.list(f"{root_path}/m/1", status=True)}
    assert kinds == {"manifest.json": "FILE", "model.tflite": "FILE", "saved_model": "DIRECTORY"}


def test_rename_moves_a_folder_to_a_free_name(hdfs_cluster: HdfsCluster, root_path: str) -> None:
    client = hdfs_cluster.client()
    client.write(f"{root_path}/m/.staging-a/manifest.json", data=b'{"version": 1}')
    client.rename(f"{root_path}/m/.staging-a", f"{root_path}/m/1")
    assert client.list(f"{root_path}/m") == ["1"]
    with client.read(f"{root_path}/m/1/manifest.json") as reader:
        assert reader.read() == b'{"version": 1}'


def test_delete_removes_a_folder_recursively(hdfs_cluster: HdfsCluster, root_path: str) -> None:
    client = hdfs_cluster.client()
    client.write(f"{root_path}/m/1/a", data=b"a")
    client.write(f"{root_path}/m/1/b/c", data=b"c")
    assert client.delete(f"{root_path}/m", recursive=True) is True
    assert client.status(f"{root_path}/m", strict=False) is None
    assert client.delete(f"{root_path}/m", recursive=True) is False  # already gone


# ---------------------------------------------------------------------------------------------
# WebHDFS redirects


def test_webhdfs_redirects_stay_on_loopback(hdfs_cluster: HdfsCluster, root_path: str) -> None:
    path = f"{root_path}/redirected.bin"
    status, headers, _ = _webhdfs(hdfs_cluster, "PUT", path, op="CREATE")
    assert status == 307
    create_at = urlsplit(headers["location"])
    assert create_at.hostname == "127.0.0.1"
    assert create_at.port != hdfs_cluster.port  # a DataNode, not the NameNode
    status, _ = _follow("PUT", headers["location"], b"through the datanode")
    assert status == 201

    status, headers, _ = _webhdfs(hdfs_cluster, "GET", path, op="OPEN")
    assert status == 307
    assert urlsplit(headers["location"]).hostname == "127.0.0.1"
    assert _follow("GET", headers["location"]) == (200, b"through the datanode")


# ---------------------------------------------------------------------------------------------
# Rename onto an existing destination (what atomic publish relies on)


def test_plain_rename_onto_an_existing_folder_nests_the_source_inside_it(
    hdfs_cluster: HdfsCluster, root_path: str
) -> None:
    client = hdfs_cluster.client()
    client.write(f"{root_path}/m/1/manifest.json", data=b"published")
    client.write(f"{root_path}/m/.staging-b/manifest.json", data=b"staged")

    client.rename(f"{root_path}/m/.staging-b", f"{root_path}/m/1")  # no error raised

    assert client.list(f"{root_path}/m") == ["1"]
    assert client.list(f"{root_path}/m/1") == [".staging-b", "manifest.json"]
    with client.read(f"{root_path}/m/1/manifest.json") as reader:
        assert reader.read() == b"published"


def test_plain_rename_answers_true_when_it_nests(hdfs_cluster: HdfsCluster, root_path: str) -> None:
    client = hdfs_cluster.client()
    client.makedirs(f"{root_path}/m/1")
    client.makedirs(f"{root_path}/m/.staging-c")
    status, _, body = _webhdfs(
        hdfs_cluster,
        "PUT",
        f"{root_path}/m/.staging-c",
        op="RENAME",
        destination=f"{root_path}/m/1",
    )
    assert (status, json.loads(body)) == (200, {"boolean": True})


def test_plain_rename_onto_an_existing_file_fails_and_moves_nothing(
    hdfs_cluster: HdfsCluster, root_path: str
) -> None:
    from hdfs import HdfsError

    client = hdfs_cluster.client()
    client.write(f"{root_path}/a", data=b"a")
    client.write(f"{root_path}/b", data=b"b")
    status, _, body = _webhdfs(
        hdfs_cluster, "PUT", f"{root_path}/a", op="RENAME", destination=f"{root_path}/b"
    )
    assert (status, json.loads(body)) == (200, {"boolean": False})
    with pytest.raises(HdfsError, match="Unable to rename"):
        client.rename(f"{root_path}/a", f"{root_path}/b")
    assert sorted(client.list(root_path)) == ["a", "b"]


def test_plain_rename_into_a_missing_parent_answers_false(
    hdfs_cluster: HdfsCluster, root_path: str
) -> None:
    hdfs_cluster.client().makedirs(f"{root_path}/src")
    status, _, body = _webhdfs(
        hdfs_cluster, "PUT", f"{root_path}/src", op="RENAME", destination=f"{root_path}/no/dst"
    )
    assert (status, json.loads(body)) == (200, {"boolean": False})
    assert hdfs_cluster.client().list(root_path) == ["src"]


def test_rename_with_options_none_refuses_an_existing_folder_and_moves_nothing(
    hdfs_cluster: HdfsCluster, root_path: str
) -> None:
    from hdfs import HdfsError

    client = hdfs_cluster.client()
    client.write(f"{root_path}/m/1/manifest.json", data=b"published")
    client.write(f"{root_path}/m/.staging-d/manifest.json", data=b"staged")
    src, dst = f"{root_path}/m/.staging-d", f"{root_path}/m/1"

    status, _, body = _webhdfs(
        hdfs_cluster, "PUT", src, op="RENAME", destination=dst, renameoptions="NONE"
    )
    assert status == 403
    assert _remote_exception(body) == "FileAlreadyExistsException"

    # The same through HdfsCLI's request method (``Client.rename`` sends no renameoptions).
    with pytest.raises(HdfsError) as raised:
        client._rename(src, destination=dst, renameoptions="NONE")
    assert raised.value.exception == "FileAlreadyExistsException"

    assert sorted(client.list(f"{root_path}/m")) == [".staging-d", "1"]
    assert client.list(dst) == ["manifest.json"]


def test_rename_with_options_none_refuses_an_existing_file_and_moves_nothing(
    hdfs_cluster: HdfsCluster, root_path: str
) -> None:
    client = hdfs_cluster.client()
    client.write(f"{root_path}/a", data=b"a")
    client.write(f"{root_path}/b", data=b"b")
    client.makedirs(f"{root_path}/d")
    status, _, body = _webhdfs(
        hdfs_cluster,
        "PUT",
        f"{root_path}/a",
        op="RENAME",
        destination=f"{root_path}/b",
        renameoptions="NONE",
    )
    assert (status, _remote_exception(body)) == (403, "FileAlreadyExistsException")
    status, _, body = _webhdfs(
        hdfs_cluster,
        "PUT",
        f"{root_path}/d",
        op="RENAME",
        destination=f"{root_path}/b",
        renameoptions="NONE",
    )
    assert (status, _remote_exception(body)) == (403, "IOException")
    assert sorted(client.list(root_path)) == ["a", "b", "d"]
    with client.read(f"{root_path}/b") as reader:
        assert reader.read() == b"b"


def test_rename_with_options_none_publishes_onto_a_free_name(
    hdfs_cluster: HdfsCluster, root_path: str
) -> None:
    client = hdfs_cluster.client()
    client.write(f"{root_path}/m/.staging-e/manifest.json", data=b"staged")
    res = client._rename(
        f"{root_path}/m/.staging-e", destination=f"{root_path}/m/2", renameoptions="NONE"
    )
    assert (res.status_code, res.content) == (200, b"")  # no {"boolean": ...} here
    assert client.list(f"{root_path}/m") == ["2"]
    assert client.list(f"{root_path}/m/2") == ["manifest.json"]


def test_rename_with_options_none_into_a_missing_parent_is_not_found(
    hdfs_cluster: HdfsCluster, root_path: str
) -> None:
    hdfs_cluster.client().makedirs(f"{root_path}/src")
    status, _, body = _webhdfs(
        hdfs_cluster,
        "PUT",
        f"{root_path}/src",
        op="RENAME",
        destination=f"{root_path}/missing/dst",
        renameoptions="NONE",
    )
    assert status == 404
    assert _remote_exception(body) == "FileNotFoundException"


def test_rename_with_overwrite_replaces_an_empty_folder_but_not_a_full_one(
    hdfs_cluster: HdfsCluster, root_path: str
) -> None:
    client = hdfs_cluster.client()
    client.makedirs(f"{root_path}/empty")
    client.write(f"{root_path}/full/x", data=b"x")
    client.write(f"{root_path}/src/y", data=b"y")

    status, _, body = _webhdfs(
        hdfs_cluster,
        "PUT",
        f"{root_path}/src",
        op="RENAME",
        destination=f"{root_path}/full",
        renameoptions="OVERWRITE",
    )
    assert status == 403
    assert _remote_exception(body) == "IOException"
    assert client.list(f"{root_path}/full") == ["x"]

    status, _, _ = _webhdfs(
        hdfs_cluster,
        "PUT",
        f"{root_path}/src",
        op="RENAME",
        destination=f"{root_path}/empty",
        renameoptions="OVERWRITE",
    )
    assert status == 200
    assert client.list(f"{root_path}/empty") == ["y"]
    assert sorted(client.list(root_path)) == ["empty", "full"]


# ---------------------------------------------------------------------------------------------
# The command


def _hdfs_command(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(HDFS_COMMAND), *args],
        env={**os.environ, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture
def managed_cluster(hdfs_cluster: HdfsCluster) -> infra.State:
    state = infra.status()
    if state is None or state.url != hdfs_cluster.url:
        missing_infra(f"{hdfs_cluster.url} was not started by tests/infra/hdfs")
    return state


def test_up_twice_keeps_the_same_cluster_serving(
    hdfs_cluster: HdfsCluster, managed_cluster: infra.State, root_path: str
) -> None:
    first = _hdfs_command("up")
    second = _hdfs_command("up")
    for run in (first, second):
        assert run.returncode == 0, run.stderr
        assert run.stdout == f"export FLEETDECK_HDFS_URL={hdfs_cluster.url}\n"
        assert "already running" in run.stderr
    after = infra.status()
    assert after is not None
    assert after.pid == managed_cluster.pid

    client = hdfs_cluster.client()
    client.write(f"{root_path}/after-up", data=b"still serving")
    with client.read(f"{root_path}/after-up") as reader:
        assert reader.read() == b"still serving"


def test_status_reports_the_running_cluster(
    hdfs_cluster: HdfsCluster, managed_cluster: infra.State
) -> None:
    run = _hdfs_command("status")
    assert run.returncode == 0, run.stderr
    assert f"export FLEETDECK_HDFS_URL={hdfs_cluster.url}" in run.stdout
    assert f"pid {managed_cluster.pid}" in run.stdout
    assert "(answers)" in run.stdout

    described = json.loads(_hdfs_command("status", "--json").stdout)
    assert described["url"] == hdfs_cluster.url
    assert described["pid"] == managed_cluster.pid
