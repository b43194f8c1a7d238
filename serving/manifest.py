"""The manifest of one model version: what it is, how to serve it, and every file's checksum."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
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


@dataclass(frozen=True)
class FileEntry:
    sha256: str
    size: int


@dataclass(frozen=True)
class TableInfo:
    """The manifest's ``precomputed`` entry: the version's table of outputs by key."""

    path: str  # the table's folder, relative to the version folder
    rows: int
    details: Mapping[str, Any]  # how it was made: runtime, source, created, job, ...

    @classmethod
    def from_json(cls, raw: Any, *, source: str) -> TableInfo:
        try:
            path, rows = str(raw["path"]), int(raw["rows"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ManifestError(
                f"{source}: the 'precomputed' entry needs a path and a row count ({exc})"
            ) from None
        if not path.startswith(PRECOMPUTED_DIR + "/") or ".." in path.split("/"):
            raise ManifestError(f"{source}: precomputed path {path!r} is not under precomputed/")
        return cls(path, rows, dict(raw))


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
            raise ManifestError(f"{source}: a manifest must be a JSON object")
        try:
            files = {
                str(path): FileEntry(str(entry["sha256"]), int(entry["size"]))
                for path, entry in dict(raw["files"]).items()
            }
            default_runtime = str(raw.get("default_runtime", ""))
            manifest = cls(
                model=str(raw["model"]),
                version=int(raw["version"]),
                created=str(raw.get("created", "")),
                signature=Signature.from_json(raw["signature"]),
                files=files,
                default_runtime=default_runtime,
                labels=tuple(str(x) for x in raw.get("labels", ())),
                metrics=dict(raw.get("metrics", {})),
                training=dict(raw.get("training", {})),
                extra={k: v for k, v in raw.items() if k not in _KNOWN_KEYS},
            )
        except KeyError as exc:
            raise ManifestError(f"{source}: missing field {exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:
            raise ManifestError(f"{source}: {exc}") from None
        if default_runtime and default_runtime not in RUNTIME_PATHS:
            raise ManifestError(
                f"{source}: default_runtime {default_runtime!r} is not one of {', '.join(RUNTIMES)}"
            )
        return manifest


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


def sha256_of(stream: BinaryIO, chunk_size: int = 1 << 20) -> tuple[str, int]:
    """The hex sha256 and size of everything left in ``stream``."""
    digest = hashlib.sha256()
    size = 0
    while chunk := stream.read(chunk_size):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def file_entries(folder: Path, skip: Iterable[str] = (MANIFEST_NAME,)) -> dict[str, FileEntry]:
    """Checksums of every file under ``folder``, keyed by POSIX path relative to it."""
    skipped = set(skip)
    entries: dict[str, FileEntry] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = path.relative_to(folder).as_posix()
        if relative in skipped:
            continue
        with path.open("rb") as stream:
            digest, size = sha256_of(stream)
        entries[relative] = FileEntry(digest, size)
    return entries
