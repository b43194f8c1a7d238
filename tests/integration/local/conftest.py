"""Fixtures of the local runtime's tests: a temporary user (XDG folders, a ``local`` profile
on the trained store and a free gateway port) and its agent, stopped after each test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from console.backends.local import LocalBackend
from console.profile import Profile
from tests.integration.local.fixtures import (
    DigitsStore,
    digits_store,
    local_backend,
    slow_store,
    stop_every_agent,
    use_temporary_xdg,
    write_local_profile,
)

__all__ = ["digits_store", "slow_store"]


@pytest.fixture
def profile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, digits_store: DigitsStore
) -> Iterator[Profile]:
    use_temporary_xdg(tmp_path / "home", monkeypatch)
    profile = write_local_profile(digits_store.root)
    try:
        yield profile
    finally:
        stop_every_agent(profile)


@pytest.fixture
def backend(profile: Profile) -> Iterator[LocalBackend]:
    with local_backend(profile) as backend:
        yield backend
