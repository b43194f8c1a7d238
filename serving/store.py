"""The model store: ``<root>/<model>/<version>/`` with a manifest of checksums.

Shared by the predictor (fetch and verify), training (publish) and the console (list, read).
Roots are local folders (plain paths or ``file://``) or ``hdfs://host:port/path`` (WebHDFS port).
Publishing is atomic: a version is written under ``<model>/.staging-<id>/``, verified, then
renamed to its number, so a reader never sees a half-written version.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import IO, Any

from serving.filesystems import (
    FileSystem,
    MissingFile,
    StoreError,
    join,
    open_inside,
    open_root,
)
from serving.manifest import (
    MANIFEST_NAME,
    PRECOMPUTED_DIR,
    PRECOMPUTED_KEY,
    FileEntry,
    Manifest,
    ManifestError,
    file_entries,
    safe_relative_path,
    sha256_of,
)

__all__ = ["FetchedVersion", "ModelRef", "ModelStore", "StoreError", "VerificationError"]

STAGING_PREFIX = ".staging-"
# A staging folder untouched this long was left by a killed publisher (publishing rewrites its
# folder as each file lands), and is removed by the next publish beside it.
STALE_STAGING_SECONDS = 24 * 3600
# Matched with fullmatch: "$" also passes a final "\n".
MODEL_NAME = re.compile(r"[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?")
PUBLISH_ATTEMPTS = 5
# A manifest lists files and a few facts; one past this size is not a manifest, and reading it
# whole would let a hostile store exhaust the reader's memory.
MAX_MANIFEST_BYTES = 16 << 20
COPY_CHUNK_BYTES = 1 << 20


class VerificationError(StoreError):
    """A version's files do not match its manifest: never load it."""


@dataclass(frozen=True)
class FetchedVersion:
    path: Path
    manifest: Manifest


@dataclass(frozen=True)
class ModelRef:
    """What a model URI names: a store root, and optionally a model and one of its versions."""

    root: str
    model: str | None
    version: int | None


def check_model_name(name: str) -> str:
    if not isinstance(name, str) or not MODEL_NAME.fullmatch(name):
        raise StoreError(
            f"invalid model name {name!r}: use lower-case letters, digits, '-', '.' or '_', "
            "starting and ending with a letter or digit, at most 63 characters"
        )
    return name


class ModelStore:
    def __init__(self, root: str) -> None:
        self.root_uri = root.rstrip("/") or root
        self.fs: FileSystem
        self.fs, self.root = open_root(root)

    def __repr__(self) -> str:
        return f"ModelStore({self.root_uri!r})"

    # -- reading ------------------------------------------------------------------------------
    def models(self) -> list[str]:
        """Models with at least one published version."""
        # A folder some other team named badly is not a model, and must not break the listing.
        return [
            name
            for name in self.fs.list_dir(self.root)
            if MODEL_NAME.fullmatch(name) and self._published_versions(name)
        ]

    def versions(self, model: str) -> list[int]:
        """Published versions of ``model``, oldest first."""
        if not self.fs.is_dir(self._model_path(model)):
            raise StoreError(f"model {model!r} not found in store {self.root_uri}")
        return self._published_versions(model)

    def _published_versions(self, model: str) -> list[int]:
        path = self._model_path(model)
        if not self.fs.is_dir(path):
            return []
        numbers = _numbers(self.fs.list_dir(path))
        return sorted(n for n in numbers if self.fs.exists(join(path, str(n), MANIFEST_NAME)))

    def latest_version(self, model: str) -> int:
        versions = self.versions(model)
        if not versions:
            raise StoreError(f"model {model!r} has no published version in store {self.root_uri}")
        return versions[-1]

    def manifest(self, model: str, version: int) -> Manifest:
        return self._manifest_document(model, version)[1]

    def _manifest_document(self, model: str, version: int) -> tuple[bytes, Manifest]:
        """The manifest's bytes as read, and what they say (the bytes go into the cache as they
        were checked, not as a second read might find them)."""
        path = join(self.version_path(model, version), MANIFEST_NAME)
        if not self.fs.exists(path):
            if not self.fs.is_dir(self._model_path(model)):
                raise StoreError(f"model {model!r} not found in store {self.root_uri}")
            raise StoreError(
                f"version {version} of model {model!r} not found in store {self.root_uri} "
                f"(published: {', '.join(map(str, self._published_versions(model))) or 'none'})"
            )
        data = read_manifest_bytes(self.fs, self.version_path(model, version))
        return data, _parse_manifest(data, source=self.fs.url(path))

    def version_uri(self, model: str, version: int) -> str:
        return self.fs.url(self.version_path(model, version))

    def version_path(self, model: str, version: int) -> str:
        return join(self._model_path(model), str(version))

    def _model_path(self, model: str) -> str:
        return join(self.root, check_model_name(model))

    # -- fetching -----------------------------------------------------------------------------
    def fetch(self, model: str, version: int, cache_dir: Path) -> FetchedVersion:
        """Copy a version into ``cache_dir/<model>/<version>`` and verify every file.

        A cached copy is re-verified rather than trusted: the predictor never loads a file whose
        checksum it has not just computed.
        """
        document, manifest = self._manifest_document(model, version)
        if manifest.model != model or manifest.version != version:
            raise VerificationError(
                f"{self.version_uri(model, version)}: manifest names {manifest.model!r} version "
                f"{manifest.version}, not {model!r} version {version}"
            )
        target = cache_dir / model / str(version)
        if target.is_dir():
            try:
                verify_folder(target, manifest)
                return FetchedVersion(target, manifest)
            except StoreError:
                shutil.rmtree(target, ignore_errors=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_fetches(target.parent)
        # Everything lands in a fresh folder of our own in the cache, each file checked against
        # its size and sha256 as it is copied; the folder becomes the version only once all
        # match, and on any failure it is removed: the cache never holds an unverified file.
        staging = Path(tempfile.mkdtemp(prefix=f".fetch-{version}-", dir=target.parent))
        try:
            base = self.version_path(model, version)
            for relative, expected in manifest.files.items():
                self._download(base, relative, expected, staging)
            with (staging / MANIFEST_NAME).open("xb") as sink:
                sink.write(document)
            try:
                staging.rename(target)
            except OSError:  # another process fetched it meanwhile: use theirs, after checking
                verify_folder(target, manifest)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return FetchedVersion(target, manifest)

    def _download(self, base: str, relative: str, expected: FileEntry, into: Path) -> None:
        path = safe_relative_path(relative)  # checked when parsed; a path is never opened unchecked
        local = into.joinpath(*path.parts)
        local.parent.mkdir(parents=True, exist_ok=True)
        try:
            # length: at most one byte past the declared size is ever read ("x": the name is new)
            with (
                self.fs.open_in(base, path, length=expected.size + 1) as source,
                local.open("xb") as sink,
            ):
                copy_verified(source, sink, expected, name=self.fs.url(join(base, relative)))
        except MissingFile:
            raise VerificationError(
                f"{self.fs.url(join(base, relative))}: listed in the manifest but missing from "
                "the store"
            ) from None

    # -- publishing ---------------------------------------------------------------------------
    def publish(
        self,
        model: str,
        source: Path,
        describe: Callable[[int, Mapping[str, FileEntry]], Manifest],
    ) -> Manifest:
        """Publish the files in ``source`` as the next version of ``model``, atomically.

        ``describe(version, files)`` builds the manifest once the version number is known.
        The version appears complete or not at all; on any failure the staging folder is removed.
        """
        model_path = self._model_path(model)
        self.fs.makedirs(model_path)
        files = file_entries(source)
        if not files:
            raise StoreError(f"{source}: nothing to publish (the folder is empty)")
        self.remove_stale_staging(model)
        staging = join(model_path, f"{STAGING_PREFIX}{uuid.uuid4().hex[:12]}")
        try:
            for relative in files:
                self.fs.upload_file(source / relative, join(staging, relative))
            self._verify_remote(staging, files)
            for _attempt in range(PUBLISH_ATTEMPTS):
                version = (
                    max(self._published_versions(model) + self._numbered(model), default=0) + 1
                )
                manifest = describe(version, files)
                manifest = replace(manifest, model=model, version=version, files=files)
                document = json.dumps(manifest.to_json(), indent=2, sort_keys=True).encode()
                self.fs.write_bytes(join(staging, MANIFEST_NAME), document)
                target = self.version_path(model, version)
                try:
                    self.fs.rename(staging, target)
                except FileExistsError:
                    continue  # a concurrent publisher took this number; take the next
                if not self.fs.exists(join(target, MANIFEST_NAME)):
                    raise StoreError(f"{self.fs.url(target)}: rename did not produce the version")
                return manifest
            raise StoreError(
                f"could not claim a version number for {model!r} after {PUBLISH_ATTEMPTS} tries"
            )
        finally:
            if self.fs.exists(staging):
                self.fs.delete(staging)

    def publish_table(
        self,
        model: str,
        version: int,
        source: Path,
        details: Mapping[str, Any],
        checkpoint: Callable[[], None] = lambda: None,
    ) -> Manifest:
        """Add the table in ``source`` to a published version, atomically.

        The files are staged under ``precomputed/.staging-<id>/``, verified, renamed to
        ``precomputed/<id>/``, and only then does a new manifest listing them (with their
        sha256) replace the old one in a single rename: a reader sees the version without the
        table or with all of it. ``checkpoint`` is called between steps and may raise to
        abandon the publish (a stop signal); until the manifest is replaced, abandoning leaves
        the version as it was. The table it replaces is kept one generation (for readers of
        the old manifest); older ones are removed.
        """
        manifest = self.manifest(model, version)
        files = file_entries(source)
        if not files:
            raise StoreError(f"{source}: no table to publish (the folder is empty)")
        base = self.version_path(model, version)
        self.remove_stale_staging(model, version)
        table_id = uuid.uuid4().hex[:12]
        staging = join(base, PRECOMPUTED_DIR, f"{STAGING_PREFIX}{table_id}")
        final = join(base, PRECOMPUTED_DIR, table_id)
        pending_manifest = join(base, f".{MANIFEST_NAME}.{table_id}")
        replaced = False
        try:
            for relative in files:
                checkpoint()
                self.fs.upload_file(source / relative, join(staging, relative))
            self._verify_remote(staging, files)
            checkpoint()
            self.fs.rename(staging, final)
            relative_final = f"{PRECOMPUTED_DIR}/{table_id}"
            kept = {
                path: entry
                for path, entry in manifest.files.items()
                if not path.startswith(PRECOMPUTED_DIR + "/")
            }
            kept.update({f"{relative_final}/{path}": entry for path, entry in files.items()})
            extra = dict(manifest.extra)
            extra[PRECOMPUTED_KEY] = {**details, "path": relative_final}
            updated = replace(manifest, files=kept, extra=extra)
            document = json.dumps(updated.to_json(), indent=2, sort_keys=True).encode()
            self.fs.write_bytes(pending_manifest, document)
            checkpoint()
            if self.manifest(model, version) != manifest:
                # Not a lock (stores have none), but it turns the common race, two jobs
                # scoring one version, into an error instead of a silently lost table.
                raise StoreError(
                    f"{self.version_uri(model, version)}: the manifest changed while this "
                    "table was made (another scoring job published?); run the job again"
                )
            self.fs.replace(pending_manifest, join(base, MANIFEST_NAME))
            replaced = True
        finally:
            for leftover in (staging, pending_manifest, *(() if replaced else (final,))):
                if self.fs.exists(leftover):
                    self.fs.delete(leftover)
        # The table just replaced stays for one generation: a predictor that read the old
        # manifest a moment ago may be fetching it now. Older ones go (staging folders are
        # other jobs' work in progress, left alone).
        previous = manifest.precomputed
        keep = {table_id, previous.path.split("/")[-1] if previous is not None else table_id}
        tables = join(base, PRECOMPUTED_DIR)
        for name in self.fs.list_dir(tables):
            if name not in keep and not name.startswith(STAGING_PREFIX):
                self.fs.delete(join(tables, name))
        return updated

    def _numbered(self, model: str) -> list[int]:
        """Every numbered folder, complete or not: a number is never reused."""
        return _numbers(self.fs.list_dir(self._model_path(model)))

    def _verify_remote(self, folder: str, files: Mapping[str, FileEntry]) -> None:
        for relative, expected in files.items():
            path = join(folder, relative)
            with self.fs.open_read(path) as stream:
                digest, size = sha256_of(stream)
            if (digest, size) != (expected.sha256, expected.size):
                raise VerificationError(
                    f"{self.fs.url(path)}: the staged copy differs from the source"
                )

    def remove_stale_staging(
        self,
        model: str,
        version: int | None = None,
        *,
        older_than: float = STALE_STAGING_SECONDS,
    ) -> list[str]:
        """Delete the staging folders that publishers killed mid-way left beside a model's
        versions (or in a version's tables), untouched for ``older_than`` seconds; a live
        publisher's are left alone. Returns the names removed."""
        folder = (
            self._model_path(model)
            if version is None
            else join(self.version_path(model, version), PRECOMPUTED_DIR)
        )
        if not self.fs.is_dir(folder):
            return []
        now = time.time()
        removed = []
        for name in self.fs.list_dir(folder):
            if not name.startswith(STAGING_PREFIX):
                continue
            modified = self.fs.modified(join(folder, name))
            if modified is not None and now - modified > older_than:
                self.fs.delete(join(folder, name))
                removed.append(name)
        return removed


def verify_folder(folder: Path, manifest: Manifest) -> None:
    """Check every file the manifest lists: present, same size, same sha256."""
    for relative, expected in manifest.files.items():
        try:
            fd = open_inside(folder, safe_relative_path(relative))
        except MissingFile:
            raise VerificationError(f"{relative}: listed in the manifest but missing") from None
        with os.fdopen(fd, "rb") as stream:
            copy_verified(stream, None, expected, name=relative)


def copy_verified(
    source: IO[bytes], sink: IO[bytes] | None, expected: FileEntry, *, name: str
) -> None:
    """Read ``source`` (into ``sink``, if given) checking its size and sha256 against the
    manifest's; never reads more than one byte past the declared size, so one entry cannot
    fill a disk or hold a reader forever."""
    digest = hashlib.sha256()
    size = 0
    while chunk := source.read(min(COPY_CHUNK_BYTES, expected.size + 1 - size)):
        size += len(chunk)
        if size > expected.size:
            raise VerificationError(
                f"{name}: larger than the {expected.size:,} bytes the manifest lists; a file is "
                "never read past its declared size"
            )
        digest.update(chunk)
        if sink is not None:
            sink.write(chunk)
    if digest.hexdigest() != expected.sha256 or size != expected.size:
        raise VerificationError(
            f"{name}: sha256 mismatch (manifest {expected.sha256[:12]}… {expected.size} B, "
            f"file {digest.hexdigest()[:12]}… {size} B): the file is corrupt "
            "or was changed after publishing"
        )


def read_manifest_bytes(fs: FileSystem, folder: str) -> bytes:
    """A version folder's manifest, read like any file in it (never through a link) and at
    most ``MAX_MANIFEST_BYTES``."""
    try:
        with fs.open_in(
            folder, PurePosixPath(MANIFEST_NAME), length=MAX_MANIFEST_BYTES + 1
        ) as stream:
            data: bytes = stream.read(MAX_MANIFEST_BYTES + 1)
    except MissingFile:
        raise ManifestError(f"{fs.url(join(folder, MANIFEST_NAME))}: missing") from None
    if len(data) > MAX_MANIFEST_BYTES:
        raise ManifestError(
            f"{fs.url(join(folder, MANIFEST_NAME))}: larger than {MAX_MANIFEST_BYTES:,} bytes, "
            "which no manifest is"
        )
    return data


def _remove_stale_fetches(folder: Path, older_than: float = STALE_STAGING_SECONDS) -> None:
    """Remove what fetchers killed mid-way left in the cache (a live one's folder is fresh)."""
    now = time.time()
    for leftover in folder.glob(".fetch-*"):
        try:
            if now - leftover.lstat().st_mtime > older_than:
                shutil.rmtree(leftover, ignore_errors=True)
        except OSError:
            continue  # another fetcher removed or renamed it meanwhile


def _numbers(names: list[str]) -> list[int]:
    # ASCII digits only: str.isdigit() also accepts '²', which int() refuses.
    return [int(n) for n in names if n.isascii() and n.isdigit()]


def resolve(uri: str, *, model: str | None = None, version: int | None = None) -> ModelRef:
    """Work out what a model URI names: a version folder, a model folder or a store root."""
    store_fs, path = open_root(uri)
    trimmed = uri.rstrip("/")
    if store_fs.exists(join(path, MANIFEST_NAME)):
        manifest = _parse_manifest(
            read_manifest_bytes(store_fs, path), source=store_fs.url(join(path, MANIFEST_NAME))
        )
        # The folder, not the manifest, says what was asked for: a manifest naming another model
        # or version must not send the reader there.
        named = PurePosixPath(path).parts[-2:]
        if named != (manifest.model, str(manifest.version)):
            raise VerificationError(
                f"{store_fs.url(join(path, MANIFEST_NAME))}: the manifest names "
                f"{manifest.model!r} version {manifest.version}, but its folder is "
                f"{'/'.join(named)}"
            )
        root = trimmed.rsplit("/", 2)[0]
        if version is not None and version != manifest.version:
            raise StoreError(
                f"{uri} is version {manifest.version}, but version {version} was asked"
            )
        return ModelRef(root, manifest.model, manifest.version)
    if not store_fs.is_dir(path):
        raise StoreError(f"{uri}: no such store, model or version folder")
    children = store_fs.list_dir(path)
    if any(store_fs.exists(join(path, str(n), MANIFEST_NAME)) for n in _numbers(children)):
        root, folder_model = trimmed.rsplit("/", 1)
        return ModelRef(root, folder_model, version)
    if model is None:
        raise StoreError(
            f"{uri} is a store root (or an empty model folder): name the model with --model-name"
        )
    return ModelRef(trimmed, model, version)


def _parse_manifest(data: bytes, *, source: str) -> Manifest:
    try:
        raw: Any = json.loads(data)
    except ValueError as exc:
        raise ManifestError(f"{source}: manifest is not valid JSON ({exc})") from None
    except RecursionError:
        raise ManifestError(f"{source}: manifest is nested too deeply to be one") from None
    return Manifest.from_json(raw, source=source)


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
