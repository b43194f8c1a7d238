"""The manifest of one model version: what it is, how to serve it, and every file's checksum."""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from serving.filesystems import StoreError
from serving.tensors import Signature

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = 1

# Runtime name -> the file or folder it loads, relative to the version folder.
RUNTIME_PATHS: dict[str, str] = {
    "savedmodel": "saved_model",
    "tflite": "model.tflite",
    "tflite-int8": "model.int8.tflite",
}
RUNTIMES = tuple(RUNTIME_PATHS)
# Where a version's precomputed tables live, and the manifest entry that names the current one.
PRECOMPUTED_DIR = "precomputed"
PRECOMPUTED_KEY = "precomputed"


class ManifestError(StoreError):
    """A manifest that is missing, unreadable or says something impossible."""


class UnsafePath(ManifestError):
    """A path in a manifest that is not a plain relative path inside its version folder."""


# Unicode categories refused in a path: control characters (C0, DEL, C1: newline, NUL, escape
# sequences), format characters (invisible, e.g. right-to-left overrides), line and paragraph
# separators, and lone surrogates (which the filesystem encoding turns into raw bytes).
_REFUSED_CATEGORIES = frozenset(("Cc", "Cf", "Cs", "Zl", "Zp"))
SHA256_HEX_DIGITS = 64


def safe_relative_path(path: object, *, what: str = "file") -> PurePosixPath:
    """``path`` as a plain relative path inside a version folder, or ``UnsafePath`` naming the
    path and the rule it breaks.

    The store is shared across teams, so a manifest is untrusted input: every path in it is
    checked by this one function before anything is opened, on local roots and HDFS alike.
    """
    if not isinstance(path, str):
        raise UnsafePath(f"{what} path {path!r} is not a string")
    if not path:
        raise UnsafePath(f"{what} {path!r} is empty: name a file inside the version folder")
    for character in path:
        if unicodedata.category(character) in _REFUSED_CATEGORIES:
            raise UnsafePath(
                f"{what} {path!r} contains the control character U+{ord(character):04X}: "
                "paths in a manifest are plain names"
            )
    if "\\" in path:
        raise UnsafePath(
            f"{what} {path!r} contains a backslash: paths in a manifest use '/' and nothing else"
        )
    pure = PurePosixPath(path)
    if pure.is_absolute():
        raise UnsafePath(
            f"{what} {path!r} is an absolute path: paths in a manifest are relative to the "
            "version folder"
        )
    if ".." in pure.parts:
        raise UnsafePath(
            f"{what} {path!r} has a '..' component: paths in a manifest stay inside the version "
            "folder"
        )
    # PurePosixPath drops empty and '.' components; a path that does not survive the round trip
    # unchanged had some (a leading './', '//', a trailing '/').
    if str(pure) != path or not pure.parts:
        raise UnsafePath(
            f"{what} {path!r} has an empty or '.' component: paths in a manifest are written "
            "plainly (a/b, not a//b, ./a or a/)"
        )
    return pure


def check_file_paths(paths: Iterable[str]) -> None:
    """Every path safe, none both a file and a folder, and none the manifest itself."""
    listed = set(paths)
    folders: set[str] = set()
    for path in listed:
        pure = safe_relative_path(path)
        folders.update(str(parent) for parent in pure.parents if parent.parts)
    if MANIFEST_NAME in listed:
        raise UnsafePath(f"file {MANIFEST_NAME!r} is the manifest itself, not one of its files")
    clash = sorted(listed & folders)
    if clash:
        raise UnsafePath(f"file {clash[0]!r} is listed both as a file and as a folder")


@dataclass(frozen=True)
class FileEntry:
    sha256: str
    size: int

    @classmethod
    def from_json(cls, raw: Any, *, path: str) -> FileEntry:
        """One ``files`` entry, its types checked: the size bounds every read of the file."""
        if not isinstance(raw, dict):
            raise ManifestError(f"files[{path!r}] must be an object with sha256 and size")
        sha256, size = raw.get("sha256"), raw.get("size")
        if (
            not isinstance(sha256, str)
            or len(sha256) != SHA256_HEX_DIGITS
            or not all(c in "0123456789abcdef" for c in sha256)
        ):
            raise ManifestError(
                f"files[{path!r}].sha256 must be {SHA256_HEX_DIGITS} lower-case hex digits, "
                f"got {sha256!r}"
            )
        # bool is an int in Python, and JSON's true must not pass for a size of 1
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ManifestError(
                f"files[{path!r}].size must be a whole number of bytes (0 or more), got {size!r}"
            )
        return cls(sha256, size)


@dataclass(frozen=True)
class TableInfo:
    """The manifest's ``precomputed`` entry: the version's table of outputs by key."""

    path: str  # the table's folder, relative to the version folder
    rows: int
    details: Mapping[str, Any]  # how it was made: runtime, source, created, job, ...

    @classmethod
    def from_json(cls, raw: Any, *, source: str) -> TableInfo:
        if not isinstance(raw, dict):
            raise ManifestError(
                f"{source}: the 'precomputed' entry must be an object with a path and a row count"
            )
        path, rows = raw.get("path"), raw.get("rows")
        if not isinstance(rows, int) or isinstance(rows, bool) or rows < 0:
            raise ManifestError(
                f"{source}: the 'precomputed' entry's rows must be a whole number, got {rows!r}"
            )
        return cls(check_table_path(path, source=source), rows, dict(raw))


def check_table_path(path: object, *, source: str) -> str:
    """The precomputed table's folder: a safe path to a folder under ``precomputed/``."""
    try:
        pure = safe_relative_path(path, what="precomputed table")
    except UnsafePath as exc:
        raise UnsafePath(f"{source}: {exc}") from None
    if len(pure.parts) < 2 or pure.parts[0] != PRECOMPUTED_DIR:
        raise UnsafePath(
            f"{source}: precomputed table {path!r} is not a folder under {PRECOMPUTED_DIR}/"
        )
    return str(pure)


@dataclass(frozen=True)
class Manifest:
    model: str
    version: int
    created: str
    signature: Signature
    files: Mapping[str, FileEntry]
    default_runtime: str
    labels: tuple[str, ...] = ()
    metrics: Mapping[str, Any] = field(default_factory=dict)
    training: Mapping[str, Any] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # However a manifest is made (parsed, built by a publisher, replaced with new files), its
        # paths are checked here, before any reader can open one.
        where = f"{self.model} version {self.version}"
        try:
            check_file_paths(self.files)
        except UnsafePath as exc:
            raise UnsafePath(f"{where}: {exc}") from None
        table = self.extra.get(PRECOMPUTED_KEY)
        if isinstance(table, Mapping):
            check_table_path(table.get("path"), source=where)

    def runtimes(self) -> list[str]:
        """Runtimes whose files this version carries."""
        return [name for name, path in RUNTIME_PATHS.items() if self.has_path(path)]

    @property
    def precomputed(self) -> TableInfo | None:
        """The version's precomputed table, if it carries one."""
        raw = self.extra.get(PRECOMPUTED_KEY)
        if raw is None:
            return None
        return TableInfo.from_json(raw, source=f"{self.model} version {self.version}")

    def has_path(self, path: str) -> bool:
        return path in self.files or any(f.startswith(path + "/") for f in self.files)

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = dict(self.extra)
        doc.update(
            {
                "format": MANIFEST_FORMAT,
                "model": self.model,
                "version": self.version,
                "created": self.created,
                "signature": self.signature.to_json(),
                "default_runtime": self.default_runtime,
                "labels": list(self.labels),
                "metrics": dict(self.metrics),
                "training": dict(self.training),
                "files": {
                    p: {"sha256": e.sha256, "size": e.size} for p, e in sorted(self.files.items())
                },
            }
        )
        return doc

    @classmethod
    def from_json(cls, raw: Any, *, source: str) -> Manifest:
        """Parse a manifest document; ``source`` names it in every error."""
        if not isinstance(raw, dict):
            raise ManifestError(
                f"{source}: a manifest must be a JSON object, not {_json_type(raw)}"
            )
        try:
            raw_files = raw["files"]
            if not isinstance(raw_files, dict):
                raise ManifestError(
                    f"'files' must be an object of path: {{sha256, size}}, not "
                    f"{_json_type(raw_files)}"
                )
            # Paths first: an unsafe one is named for what it is, whatever its entry says.
            check_file_paths(raw_files)
            files = {path: FileEntry.from_json(e, path=path) for path, e in raw_files.items()}
            model, version = raw["model"], raw["version"]
            if not isinstance(model, str):
                raise ManifestError(f"'model' must be a string, got {model!r}")
            if not isinstance(version, int) or isinstance(version, bool):
                raise ManifestError(f"'version' must be a whole number, got {version!r}")
            for name in ("metrics", "training"):
                if not isinstance(raw.get(name, {}), dict):
                    raise ManifestError(f"{name!r} must be an object, got {raw[name]!r}")
            labels = raw.get("labels", [])
            if not isinstance(labels, list):
                raise ManifestError(f"'labels' must be a list, got {labels!r}")
            signature = Signature.from_json(raw["signature"])
        except KeyError as exc:
            raise ManifestError(f"{source}: missing field {exc.args[0]!r}") from None
        except ManifestError as exc:
            raise type(exc)(f"{source}: {exc}") from None
        except (TypeError, ValueError, AttributeError) as exc:
            # A signature of the wrong shape: still a clear error naming the manifest.
            raise ManifestError(f"{source}: signature: {exc}") from None
        extra = {k: v for k, v in raw.items() if k not in _KNOWN_KEYS}
        if extra.get(PRECOMPUTED_KEY) is not None:
            TableInfo.from_json(extra[PRECOMPUTED_KEY], source=source)
        default_runtime = str(raw.get("default_runtime", ""))
        if default_runtime and default_runtime not in RUNTIME_PATHS:
            raise ManifestError(
                f"{source}: default_runtime {default_runtime!r} is not one of {', '.join(RUNTIMES)}"
            )
        return cls(
            model=model,
            version=version,
            created=str(raw.get("created", "")),
            signature=signature,
            files=files,
            default_runtime=default_runtime,
            labels=tuple(str(x) for x in labels),
            metrics=dict(raw.get("metrics", {})),
            training=dict(raw.get("training", {})),
            extra=extra,
        )


_KNOWN_KEYS = frozenset(
    (
        "format",
        "model",
        "version",
        "created",
        "signature",
        "default_runtime",
        "labels",
        "metrics",
        "training",
        "files",
    )
)


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), "a number")


def sha256_of(stream: BinaryIO, chunk_size: int = 1 << 20) -> tuple[str, int]:
    """The hex sha256 and size of everything left in ``stream``."""
    digest = hashlib.sha256()
    size = 0
    while chunk := stream.read(chunk_size):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def file_entries(folder: Path, skip: Iterable[str] = (MANIFEST_NAME,)) -> dict[str, FileEntry]:
    """Checksums of every file under ``folder``, keyed by POSIX path relative to it.

    A name no reader would accept (a newline, a backslash, ...) fails here, before publishing.
    """
    skipped = set(skip)
    entries: dict[str, FileEntry] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = path.relative_to(folder).as_posix()
        if relative in skipped:
            continue
        try:
            safe_relative_path(relative)
        except UnsafePath as exc:
            raise UnsafePath(f"{folder}: cannot publish {exc}") from None
        with path.open("rb") as stream:
            digest, size = sha256_of(stream)
        entries[relative] = FileEntry(digest, size)
    return entries
