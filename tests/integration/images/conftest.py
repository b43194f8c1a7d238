"""Fixtures for the image tests: both images built once per session (scripts/build-images,
cached under ~/.cache/fleetdeck/images), containers removed after each test."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.infra.images import Container, ImageError, build_images, why_no_buildah
from tests.infra.require import missing_infra

RunImage = Callable[[str], Container]


@pytest.fixture(scope="session")
def built_images(
    pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """Each image's name and size, once both are built (or found in the cache)."""
    reason = why_no_buildah()
    if reason:
        missing_infra(reason)
    capture: Any = pytestconfig.pluginmanager.getplugin("capturemanager")

    def progress(message: str) -> None:
        with (
            capture.global_and_fixture_disabled()
            if capture is not None
            else contextlib.nullcontext()
        ):
            print(f"images: {message}", file=sys.stderr, flush=True)

    try:
        return build_images(tmp_path_factory.mktemp("images") / "build.log", progress)
    except ImageError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def run_image(built_images: dict[str, str]) -> Iterator[RunImage]:
    """Working containers of built images, removed (their processes killed) after the test."""
    containers: list[Container] = []

    def create(image: str) -> Container:
        assert image in built_images, f"{image} was not built: {built_images}"
        container = Container(image)
        containers.append(container)
        return container

    yield create
    for container in containers:
        container.remove()
