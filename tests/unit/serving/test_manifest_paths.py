"""Hostile manifests on a local store: every path is checked when the manifest is parsed, before
anything is opened; fetch never follows a link, never reads past a declared size, and leaves
nothing unverified in the cache."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from serving.filesystems import HdfsFileSystem, StoreError
from serving.manifest import FileEntry, ManifestError, UnsafePath, safe_relative_path
from serving.precomputed import TableError, open_for, write_table
from serving.store import ModelStore, VerificationError, resolve
from tests.support.versions import describe, make_version

SECRET = b"another team's secret\n"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


@pytest.fixture
def store(tmp_path: Path) -> ModelStore:
    store = ModelStore(str(tmp_path / "store"))
    store.publish("photos", make_version(tmp_path / "export"), describe)
    return store


@pytest.fixture
def version(store: ModelStore) -> Path:
    return Path(store.version_path("photos", 1))


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    path = tmp_path / "outside.txt"
    path.write_bytes(SECRET)
    return path


def edit_manifest(version: Path, change: Callable[[dict[str, Any]], None]) -> None:
    document = json.loads((version / "manifest.json").read_text())
    change(document)
    (version / "manifest.json").write_text(json.dumps(document))


def list_file(version: Path, path: str, data: bytes = SECRET) -> None:
    """Add an entry to the manifest, with the sha256 and size of ``data``."""
    entry = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    edit_manifest(version, lambda doc: doc["files"].update({path: entry}))


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if not p.is_dir())


UNSAFE_PATHS = [
    ("../../../outside.txt", "has a '..' component"),
    ("a/../../x", "has a '..' component"),
    ("saved_model/..", "has a '..' component"),
    ("/etc/passwd", "is an absolute path"),
    ("//server/share", "is an absolute path"),
    ("model\x00.tflite", "control character U+0000"),
    ("model\n.tflite", "control character U+000A"),
    ("model\r.tflite", "control character U+000D"),
    ("model\x1b[2J.tflite", "control character U+001B"),
    ("model\u2028.tflite", "control character U+2028"),
    ("model\u202e.tflite", "control character U+202E"),
    ("model\udc2e.tflite", "control character U+DC2E"),
    ("..\\..\\outside.txt", "contains a backslash"),
    ("", "is empty"),
    (".", "has an empty or '.' component"),
    ("./model.tflite", "has an empty or '.' component"),
    ("saved_model//saved_model.pb", "has an empty or '.' component"),
    ("saved_model/", "has an empty or '.' component"),
]


@pytest.mark.parametrize(("path", "rule"), UNSAFE_PATHS)
def test_a_manifest_listing_an_unsafe_path_is_refused_when_parsed_naming_path_and_rule(
    store: ModelStore, version: Path, path: str, rule: str
) -> None:
    list_file(version, path)
    with pytest.raises(UnsafePath) as refused:
        store.manifest("photos", 1)
    message = str(refused.value)
    assert message.startswith(f"{version / 'manifest.json'}: file {path!r}")
    assert rule in message


@pytest.mark.parametrize(
    "path",
    [
        "model.int8.tflite",
        "saved_model/variables/variables.data-00000-of-00001",
        "précomputed/ü b/keys.npy",
        "..hidden",
        "a..b",
    ],
)
def test_plain_relative_paths_are_accepted(path: str) -> None:
    assert str(safe_relative_path(path)) == path


def test_a_path_listed_as_both_file_and_folder_or_the_manifest_itself_is_refused(
    store: ModelStore, version: Path
) -> None:
    list_file(version, "model.tflite/inner")
    with pytest.raises(UnsafePath, match=r"'model\.tflite' is listed both as a file and a"):
        store.manifest("photos", 1)
    edit_manifest(version, lambda doc: doc["files"].pop("model.tflite/inner"))
    list_file(version, "manifest.json")
    with pytest.raises(UnsafePath, match=r"'manifest\.json' is the manifest itself"):
        store.manifest("photos", 1)


@pytest.mark.parametrize(
    ("document", "words"),
    [
        ([], "a manifest must be a JSON object, not a list"),
        ("files", "a manifest must be a JSON object, not a string"),
        (7, "a manifest must be a JSON object, not a number"),
        (None, "a manifest must be a JSON object, not null"),
    ],
)
def test_a_manifest_that_is_not_a_json_object_is_a_clear_error(
    store: ModelStore, version: Path, document: Any, words: str
) -> None:
    (version / "manifest.json").write_text(json.dumps(document))
    with pytest.raises(ManifestError, match=words):
        store.manifest("photos", 1)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"size": "11"}, r"files\['model.tflite'\]\.size must be a whole number"),
        ({"size": 11.0}, r"files\['model.tflite'\]\.size must be a whole number"),
        ({"size": True}, r"files\['model.tflite'\]\.size must be a whole number"),
        ({"size": -1}, r"files\['model.tflite'\]\.size must be a whole number"),
        ({"size": None}, r"files\['model.tflite'\]\.size must be a whole number"),
        ({"sha256": 5}, r"files\['model.tflite'\]\.sha256 must be 64 lower-case hex"),
        ({"sha256": "ab" * 31}, r"files\['model.tflite'\]\.sha256 must be 64 lower-case hex"),
        ({"sha256": "AB" * 32}, r"files\['model.tflite'\]\.sha256 must be 64 lower-case hex"),
    ],
)
def test_sizes_and_checksums_of_the_wrong_type_are_clear_errors(
    store: ModelStore, version: Path, change: dict[str, Any], words: str
) -> None:
    edit_manifest(version, lambda doc: doc["files"]["model.tflite"].update(change))
    with pytest.raises(ManifestError, match=words):
        store.manifest("photos", 1)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"files": ["model.tflite"]}, "'files' must be an object"),
        ({"files": {"model.tflite": "sha"}}, r"files\['model.tflite'\] must be an object"),
        ({"version": "1"}, "'version' must be a whole number"),
        ({"version": True}, "'version' must be a whole number"),
        ({"model": ["photos"]}, "'model' must be a string"),
        ({"labels": "cat"}, "'labels' must be a list"),
        ({"metrics": [1]}, "'metrics' must be an object"),
        ({"signature": "image"}, "signature: "),
        ({"signature": {"inputs": [5], "outputs": []}}, "signature: "),
        ({"precomputed": "precomputed/t"}, "'precomputed' entry must be an object"),
        ({"precomputed": {"path": "precomputed/t", "rows": "9"}}, "rows must be a whole"),
    ],
)
def test_fields_of_the_wrong_type_are_clear_errors_never_a_traceback(
    store: ModelStore, version: Path, change: dict[str, Any], words: str
) -> None:
    edit_manifest(version, lambda doc: doc.update(change))
    with pytest.raises(ManifestError, match=words):
        store.manifest("photos", 1)


def test_a_manifest_nested_without_end_or_too_large_is_a_clear_error(
    store: ModelStore, version: Path
) -> None:
    (version / "manifest.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ManifestError, match="nested too deeply"):
        store.manifest("photos", 1)
    with (version / "manifest.json").open("wb") as stream:
        stream.truncate(17 << 20)  # sparse: no disk used
    with pytest.raises(ManifestError, match="larger than 16,777,216 bytes"):
        store.manifest("photos", 1)


@pytest.mark.parametrize(
    ("path", "rule"),
    [
        ("precomputed/../../../outside", "has a '..' component"),
        ("/tmp/table", "is an absolute path"),
        ("saved_model", "is not a folder under precomputed/"),
        ("precomputed", "is not a folder under precomputed/"),
        ("precomputed/t\n", "control character U+000A"),
    ],
)
def test_a_tampered_precomputed_table_path_is_refused_when_parsed(
    store: ModelStore, version: Path, path: str, rule: str
) -> None:
    edit_manifest(version, lambda doc: doc.update(precomputed={"path": path, "rows": 1}))
    with pytest.raises(UnsafePath) as refused:
        store.manifest("photos", 1)
    assert f"precomputed table {path!r}" in str(refused.value)
    assert rule in str(refused.value)


def test_a_manifest_built_in_code_is_held_to_the_same_paths() -> None:
    with pytest.raises(UnsafePath, match=r"photos version 3: file '\.\./x' has a '\.\.' comp"):
        replace(describe(3, {}), model="photos", files={"../x": FileEntry(EMPTY_SHA256, 0)})


def test_fetching_an_absolute_path_leaves_the_file_it_names_untouched(
    store: ModelStore, version: Path, outside: Path, tmp_path: Path
) -> None:
    # The sha256 of an empty file: a fetch that opened the destination before checking would
    # truncate it to zero bytes and find it "verified".
    list_file(version, str(outside), b"")
    with pytest.raises(UnsafePath, match="is an absolute path"):
        store.fetch("photos", 1, tmp_path / "cache")
    assert outside.read_bytes() == SECRET
    assert files_under(tmp_path / "cache") == []


def test_a_symlink_in_the_version_folder_is_never_followed(
    store: ModelStore, version: Path, outside: Path, tmp_path: Path
) -> None:
    (version / "notes.txt").symlink_to(outside)
    list_file(version, "notes.txt")
    with pytest.raises(StoreError, match=r"notes\.txt: is a symbolic link"):
        store.fetch("photos", 1, tmp_path / "cache")
    assert files_under(tmp_path / "cache") == []


def test_a_symlinked_folder_in_the_version_folder_is_never_followed(
    store: ModelStore, version: Path, outside: Path, tmp_path: Path
) -> None:
    (version / "extra").symlink_to(outside.parent)
    list_file(version, "extra/outside.txt")
    with pytest.raises(StoreError, match=r"/extra: is a symbolic link"):
        store.fetch("photos", 1, tmp_path / "cache")
    assert files_under(tmp_path / "cache") == []


def test_a_symlinked_manifest_is_not_read(store: ModelStore, version: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.json"
    (version / "manifest.json").rename(elsewhere)
    (version / "manifest.json").symlink_to(elsewhere)
    with pytest.raises(StoreError, match=r"manifest\.json: is a symbolic link"):
        store.manifest("photos", 1)


def test_a_fifo_in_the_store_is_refused_instead_of_blocking_the_reader(
    store: ModelStore, version: Path, tmp_path: Path
) -> None:
    os.mkfifo(version / "pipe")
    list_file(version, "pipe")
    with pytest.raises(StoreError, match=r"pipe: not a regular file"):
        store.fetch("photos", 1, tmp_path / "cache")
    assert files_under(tmp_path / "cache") == []


def test_a_file_larger_than_its_declared_size_is_not_read_past_it_nor_kept(
    store: ModelStore, version: Path, tmp_path: Path
) -> None:
    with (version / "model.tflite").open("ab") as stream:
        stream.truncate(1 << 40)  # a sparse terabyte: reading it whole would never end here
    with pytest.raises(VerificationError, match=r"model\.tflite: larger than the 11 bytes"):
        store.fetch("photos", 1, tmp_path / "cache")
    assert files_under(tmp_path / "cache") == []


def test_a_mismatched_file_leaves_no_partial_copy_in_the_cache(
    store: ModelStore, version: Path, tmp_path: Path
) -> None:
    (version / "model.tflite").write_bytes(b"model-bytez")
    with pytest.raises(VerificationError, match=r"model\.tflite: sha256 mismatch"):
        store.fetch("photos", 1, tmp_path / "cache")
    assert files_under(tmp_path / "cache") == []


def test_publishing_a_file_whose_name_no_reader_would_accept_is_refused_before_upload(
    store: ModelStore, tmp_path: Path
) -> None:
    source = make_version(tmp_path / "export-2")
    (source / "notes\n.txt").write_bytes(b"x")
    with pytest.raises(UnsafePath, match=r"cannot publish file 'notes\\n\.txt' contains"):
        store.publish("photos", source, describe)
    assert store.versions("photos") == [1]
    assert sorted(os.listdir(Path(store.root, "photos"))) == ["1"]


def test_folders_that_are_not_model_names_or_versions_do_not_break_the_listing(
    store: ModelStore,
) -> None:
    root = Path(store.root)
    (root / "Not A Model").mkdir()
    (root / "photos" / "²").mkdir()  # str.isdigit() is true, int() refuses it
    (root / "photos" / "٣").mkdir()  # an Arabic-Indic three
    assert store.models() == ["photos"]
    assert store.versions("photos") == [1]


@pytest.mark.parametrize("path", ["/models/a/../../etc", "/models/digits/#LATEST"])
def test_hdfs_paths_the_webhdfs_client_would_rewrite_are_refused_before_any_request(
    path: str,
) -> None:
    fs = HdfsFileSystem("http://127.0.0.1:1")  # nothing listens: a request would fail otherwise
    with pytest.raises(StoreError, match="the WebHDFS client would rewrite this path"):
        fs.read_bytes(path)


def test_a_precomputed_table_whose_files_the_manifest_does_not_list_is_not_opened(
    store: ModelStore, version: Path, tmp_path: Path
) -> None:
    write_table(tmp_path / "table", ["a", "b"], [np.ones((2, 10), np.float32)])
    published = store.publish_table("photos", 1, tmp_path / "table", {"rows": 2})
    assert published.precomputed is not None
    keys = f"{published.precomputed.path}/keys.npy"
    # The table's keys stay in the store, but the manifest no longer vouches for them.
    edit_manifest(version, lambda doc: doc["files"].pop(keys))
    fetched = store.fetch("photos", 1, tmp_path / "cache")
    with pytest.raises(TableError, match=f"{keys}: the precomputed table's file is not listed"):
        open_for(fetched.path, fetched.manifest)


def test_a_version_folder_whose_manifest_names_another_model_does_not_redirect_the_reader(
    store: ModelStore, version: Path
) -> None:
    edit_manifest(version, lambda doc: doc.update(model="music", version=7))
    with pytest.raises(
        VerificationError, match="the manifest names 'music' version 7, but its folder is photos/1"
    ):
        resolve(str(version))
