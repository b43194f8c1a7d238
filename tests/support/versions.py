"""Hand-made model versions for store tests: small real files and a plain manifest."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from serving.manifest import FileEntry, Manifest
from serving.tensors import Signature, TensorSpec

SIGNATURE = Signature(
    (TensorSpec("image", "float32", (-1, 8, 8, 1)),), (TensorSpec("scores", "float32", (-1, 10)),)
)


def describe(version: int, files: Mapping[str, FileEntry]) -> Manifest:
    return Manifest(
        model="",
        version=version,
        created="2026-11-26T00:00:00Z",
        signature=SIGNATURE,
        files=files,
        default_runtime="tflite",
        labels=("cat", "dog"),
        training={"run": "r1"},
    )


def make_version(folder: Path, payload: bytes = b"model-bytes") -> Path:
    (folder / "saved_model" / "variables").mkdir(parents=True)
    (folder / "saved_model" / "saved_model.pb").write_bytes(b"graph")
    (folder / "saved_model" / "variables" / "variables.index").write_bytes(b"index")
    (folder / "model.tflite").write_bytes(payload)
    return folder
