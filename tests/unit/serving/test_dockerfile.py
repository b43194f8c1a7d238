"""The predictor image runs the start command the tests exercise, as a non-root user."""

from __future__ import annotations

import json
from pathlib import Path

DOCKERFILE = Path(__file__).resolve().parents[3] / "serving" / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    lines = DOCKERFILE.read_text().replace("\\\n", " ").splitlines()
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1].strip())
        for line in lines
        if line.strip() and not line.lstrip().startswith("#")
    ]


def test_the_image_starts_python_m_serving_like_the_tests() -> None:
    commands = [arg for op, arg in instructions() if op == "CMD"]
    assert [json.loads(c) for c in commands] == [["python", "-m", "serving"]]


def test_the_image_runs_as_a_non_root_user_and_holds_no_model() -> None:
    ops = instructions()
    users = [arg for op, arg in ops if op == "USER"]
    assert users
    assert users[-1] not in ("root", "0")
    copied = [arg for op, arg in ops if op == "COPY"]
    assert all("store" not in c and ".tflite" not in c for c in copied)


def test_the_image_installs_only_the_serving_and_hdfs_extras() -> None:
    installs = [arg for op, arg in instructions() if op == "RUN" and "pip install" in arg]
    # The dependencies (the extras), then the code alone: a code change keeps the first layer.
    assert len(installs) == 2
    assert '".[serving,hdfs]"' in installs[0]
    assert installs[1].startswith("pip install --no-deps")


def test_both_images_take_their_base_as_a_build_argument() -> None:
    for dockerfile in (DOCKERFILE, DOCKERFILE.parents[1] / "training" / "Dockerfile"):
        lines = [line for line in dockerfile.read_text().splitlines() if line.strip()]
        code = [line for line in lines if not line.startswith("#")]
        assert code[0].startswith("ARG BASE=")
        assert code[1] == "FROM ${BASE}"
