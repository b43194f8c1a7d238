"""Hostile manifests against real predictor processes, on a local store and on the real test HDFS.

The store is shared across teams, so a manifest is untrusted input. Each test plants one hostile
thing in a private copy of the trained tiny model's version and starts a real predictor on it: the
predictor stays live and never turns ready, ``GET /v2/health/ready`` names the file and the rule
it breaks, nothing outside the predictor's cache is created, truncated or read, and the cache holds
no file afterwards (nothing unverified, nothing half-written).
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from serving.store import ModelStore
from tests.infra.hdfs_fixtures import HdfsCluster
from tests.support.fixtures import StartPredictor
from tests.support.models import TinyModel
from tests.support.predictor import ROOT, PredictorProcess

SECRET = b"another team's secret: the predictor must never copy, truncate or serve this\n"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
Snapshot = dict[str, tuple[int, str]]


class HostileStore:
    """A private, writable copy of the tiny model's version 1; the test's hostile hand."""

    kind = ""
    uri = ""  # the model URI a predictor is given

    def read(self, relative: str) -> bytes:
        raise NotImplementedError

    def write(self, relative: str, data: bytes) -> None:
        """Write ``data`` at ``relative`` to the version folder ('..' walks up, as a store's
        owner could)."""
        raise NotImplementedError

    def snapshot(self) -> Snapshot:
        """Every file in and around the store: size and sha256."""
        raise NotImplementedError

    def manifest(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self.read("manifest.json"))
        return document

    def save_manifest(self, document: dict[str, Any]) -> None:
        self.write("manifest.json", json.dumps(document, indent=2).encode())

    def list_file(self, path: str, data: bytes) -> None:
        """List ``path`` in the manifest with the size and sha256 of ``data``."""
        document = self.manifest()
        document["files"][path] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
        self.save_manifest(document)


class LocalStore(HostileStore):
    kind = "local"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.version = root / "digits" / "1"
        self.uri = str(root / "digits")

    def read(self, relative: str) -> bytes:
        return (self.version / relative).read_bytes()

    def write(self, relative: str, data: bytes) -> None:
        path = Path(os.path.normpath(self.version / relative))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def snapshot(self) -> Snapshot:
        return {}  # the store is inside the test's folder, which every test snapshots whole


class HdfsStore(HostileStore):
    kind = "hdfs"

    def __init__(self, cluster: HdfsCluster, root: str) -> None:
        self.client = cluster.client()
        self.around = cluster.path(root)  # the test's own folder: the store and beside it
        self.version = f"{self.around}/store/digits/1"
        self.uri = f"{root}/store/digits"

    def read(self, relative: str) -> bytes:
        with self.client.read(posixpath.join(self.version, relative)) as stream:
            data: bytes = stream.read()
        return data

    def write(self, relative: str, data: bytes) -> None:
        path = posixpath.normpath(posixpath.join(self.version, relative))
        self.client.write(path, data=data, overwrite=True)

    def snapshot(self) -> Snapshot:
        files: Snapshot = {}
        for folder, _dirs, names in self.client.walk(self.around):
            for name in names:
                path = posixpath.join(folder, name)
                with self.client.read(path) as stream:
                    data = stream.read()
                files[f"hdfs:{path}"] = (len(data), hashlib.sha256(data).hexdigest())
        return files


@pytest.fixture(params=["local", "hdfs"])
def store(
    request: pytest.FixtureRequest, tiny_model: TinyModel, tmp_path: Path
) -> Iterator[HostileStore]:
    if request.param == "local":
        yield LocalStore(tiny_model.copy_store(tmp_path))
        return
    cluster: HdfsCluster = request.getfixturevalue("hdfs_cluster")
    root: str = request.getfixturevalue("hdfs_root")
    original = ModelStore(str(tiny_model.store_root)).manifest("digits", 1)
    files = tmp_path / "published-files"
    shutil.copytree(tiny_model.version_dir, files, ignore=shutil.ignore_patterns("manifest.json"))
    ModelStore(f"{root}/store").publish("digits", files, lambda number, entries: original)
    shutil.rmtree(files)
    yield HdfsStore(cluster, root)


@pytest.fixture
def local_store(tiny_model: TinyModel, tmp_path: Path) -> LocalStore:
    return LocalStore(tiny_model.copy_store(tmp_path))


def surroundings(folder: Path, store: HostileStore) -> Snapshot:
    """Size and sha256 of every file the test can see outside the predictor's cache."""
    files = {
        str(path.relative_to(folder)): (path.stat().st_size, sha256_of_file(path))
        for path in folder.rglob("*")
        if path.is_file()
        and not path.is_symlink()
        and "cache" not in path.relative_to(folder).parts
        and not path.name.startswith("predictor-")
    }
    return {**files, **store.snapshot()}


def sha256_of_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def cached_files(cache: Path) -> list[str]:
    """Every file (or link) the predictor left in its cache."""
    return sorted(str(p.relative_to(cache)) for p in cache.rglob("*") if not p.is_dir())


def refusal(predictor: PredictorProcess) -> str:
    """Wait for the load to fail; check the predictor is live and not ready; the reason."""
    predictor.wait_until(
        lambda: predictor.get("/v2/health/ready").json().get("phase") == "failed",
        what="the load to fail",
    )
    ready = predictor.get("/v2/health/ready")
    assert ready.status_code == 503
    assert ready.json()["ready"] is False
    assert predictor.get("/v2/health/live").status_code == 200
    answer = predictor.post("/v1/models/digits:predict", {"instances": [[[[0.0]] * 8] * 8]})
    assert answer.status_code == 503
    reason: str = ready.json()["reason"]
    return reason


def assert_refused_and_untouched(
    start_predictor: StartPredictor,
    store: HostileStore,
    tmp_path: Path,
    *words: str,
) -> str:
    """Start a predictor on the hostile version: refused for a reason with ``words``, nothing
    around it changed, nothing in its cache."""
    before = surroundings(tmp_path, store)
    predictor = start_predictor("--model-uri", store.uri)
    reason = refusal(predictor)
    for word in words:
        assert word in reason
    assert surroundings(tmp_path, store) == before
    assert cached_files(tmp_path / "cache") == []
    assert SECRET.decode() not in predictor.log()
    return reason


def test_a_manifest_climbing_out_with_dotdot_is_refused_and_the_file_there_untouched(
    store: HostileStore, start_predictor: StartPredictor, tmp_path: Path
) -> None:
    # From the version folder (local: <tmp>/store/digits/1) three levels up is the test's folder,
    # which is also three levels up from the predictor's download folder in its cache: an
    # unchecked fetch reads the file and writes it back over itself, truncating it first.
    (tmp_path / "outside.txt").write_bytes(SECRET)
    store.write("../../../outside.txt", SECRET)
    store.list_file("../../../outside.txt", SECRET)
    assert_refused_and_untouched(
        start_predictor, store, tmp_path, "'../../../outside.txt'", "has a '..' component"
    )
    assert (tmp_path / "outside.txt").read_bytes() == SECRET


def test_an_absolute_path_in_a_manifest_leaves_the_file_it_names_untouched(
    store: HostileStore,
    start_predictor: StartPredictor,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    # The sha256 and size of an empty file: a fetch that opened the destination before checking
    # would truncate the file to zero bytes, find it "verified", and turn ready.
    owned = tmp_path / "owned.txt"
    owned.write_bytes(SECRET)
    if isinstance(store, HdfsStore):  # the same path on the shared HDFS, planted by its owner
        store.client.write(str(owned), data=b"", overwrite=True)
        request.addfinalizer(lambda: store.client.delete(str(tmp_path), recursive=True))
    store.list_file(str(owned), b"")
    assert_refused_and_untouched(
        start_predictor, store, tmp_path, f"'{owned}'", "is an absolute path"
    )
    assert owned.read_bytes() == SECRET


def test_a_dotdot_hidden_inside_a_path_is_refused(
    store: HostileStore, start_predictor: StartPredictor, tmp_path: Path
) -> None:
    store.write("a/keep", b"")  # the folder a path walks through
    store.write("a/../../x", SECRET)  # <store>/digits/x: another version's neighbour
    store.list_file("a/../../x", SECRET)
    assert_refused_and_untouched(
        start_predictor, store, tmp_path, "'a/../../x'", "has a '..' component"
    )


@pytest.mark.parametrize(
    ("name", "shown"),
    [("model\n.tflite", r"'model\n.tflite'"), ("model\x00.tflite", r"'model\x00.tflite'")],
    ids=["newline", "nul"],
)
def test_a_path_with_a_control_character_is_refused(
    store: HostileStore, start_predictor: StartPredictor, tmp_path: Path, name: str, shown: str
) -> None:
    if "\x00" not in name:
        store.write(name, SECRET)  # a newline is a legal file name, on disk and on HDFS
    store.list_file(name, SECRET)
    reason = assert_refused_and_untouched(
        start_predictor, store, tmp_path, shown, "contains the control character"
    )
    assert "\n" not in reason  # shown escaped: the reason and the log stay one line


def test_a_file_larger_than_its_declared_size_is_refused_and_nothing_is_kept(
    store: HostileStore, start_predictor: StartPredictor, tmp_path: Path
) -> None:
    declared = SECRET[:10]
    store.write("notes.txt", SECRET * 50_000)  # 4 MB where the manifest says 10 bytes
    store.list_file("notes.txt", declared)
    assert_refused_and_untouched(
        start_predictor, store, tmp_path, "notes.txt: larger than the 10 bytes the manifest lists"
    )


def test_a_tampered_precomputed_table_path_is_refused_before_anything_is_fetched(
    store: HostileStore, start_predictor: StartPredictor, tmp_path: Path
) -> None:
    document = store.manifest()
    document["precomputed"] = {"path": "precomputed/../../../outside", "rows": 1}
    store.save_manifest(document)
    assert_refused_and_untouched(
        start_predictor,
        store,
        tmp_path,
        "precomputed table 'precomputed/../../../outside'",
        "has a '..' component",
    )


def test_a_size_of_the_wrong_type_is_a_clear_reason(
    store: HostileStore, start_predictor: StartPredictor, tmp_path: Path
) -> None:
    document = store.manifest()
    entry = document["files"]["model.int8.tflite"]
    entry["size"] = str(entry["size"])  # "1234": a string where a number of bytes belongs
    store.save_manifest(document)
    assert_refused_and_untouched(
        start_predictor,
        store,
        tmp_path,
        "files['model.int8.tflite'].size must be a whole number of bytes",
    )


@pytest.mark.parametrize("link", ["file", "folder"])
def test_a_symlink_in_a_local_version_folder_pointing_outside_is_never_followed(
    local_store: LocalStore, start_predictor: StartPredictor, tmp_path: Path, link: str
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "secret.txt").write_bytes(SECRET)
    if link == "file":
        (local_store.version / "notes.txt").symlink_to(elsewhere / "secret.txt")
        local_store.list_file("notes.txt", SECRET)
        shown = "notes.txt: is a symbolic link"
    else:
        (local_store.version / "extra").symlink_to(elsewhere, target_is_directory=True)
        local_store.list_file("extra/secret.txt", SECRET)
        shown = "extra: is a symbolic link"
    assert_refused_and_untouched(start_predictor, local_store, tmp_path, shown)


def test_scoring_refuses_to_publish_into_a_version_whose_manifest_is_hostile(
    local_store: LocalStore, tiny_model: TinyModel, tmp_path: Path
) -> None:
    (tmp_path / "outside.txt").write_bytes(SECRET)
    local_store.list_file("../../../outside.txt", SECRET)
    manifest_before = local_store.read("manifest.json")
    before = surroundings(tmp_path, local_store)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "training.score",
            *("--model", "digits", "--version", "1", "--store", str(local_store.root)),
            *("--input", str(tiny_model.store_root.parent / "digits-data")),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    failed = json.loads(done.stdout.strip().splitlines()[-1])
    assert failed["event"] == "failed"
    assert "'../../../outside.txt' has a '..' component" in failed["error"]
    assert local_store.read("manifest.json") == manifest_before
    assert not (local_store.version / "precomputed").exists()
    assert surroundings(tmp_path, local_store) == before
