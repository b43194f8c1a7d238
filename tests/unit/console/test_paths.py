"""The XDG base folders, computed in one place, and the places below them."""

from __future__ import annotations

from pathlib import Path

import pytest

from console import paths
from console.audit import audit_path
from console.batch.journal import batches_dir
from console.local.paths import AgentPaths
from console.profile import user_profiles_dir

VARIABLES = ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME")


def test_without_xdg_variables_the_folders_are_below_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in (*VARIABLES, "XDG_RUNTIME_DIR"):
        monkeypatch.delenv(name, raising=False)
    assert paths.config_home() == tmp_path / ".config/fleetdeck"
    assert paths.state_home() == tmp_path / ".local/state/fleetdeck"
    assert paths.data_home() == tmp_path / ".local/share/fleetdeck"
    assert paths.cache_home() == tmp_path / ".cache/fleetdeck"
    assert paths.runtime_dir() is None


def test_xdg_variables_move_them_and_everything_below_follows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in VARIABLES:
        monkeypatch.setenv(name, str(tmp_path / name.lower()))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    assert paths.config_home() == tmp_path / "xdg_config_home/fleetdeck"
    assert paths.data_home() == tmp_path / "xdg_data_home/fleetdeck"
    assert paths.cache_home() == tmp_path / "xdg_cache_home/fleetdeck"
    assert paths.runtime_dir() == tmp_path / "run/fleetdeck"
    state = tmp_path / "xdg_state_home/fleetdeck"
    assert paths.state_home() == state
    assert user_profiles_dir() == tmp_path / "xdg_config_home/fleetdeck/profiles"
    assert audit_path() == state / "audit.jsonl"
    assert batches_dir() == state / "batches"
    assert AgentPaths.for_profile("local").root == state / "local/local"


def test_an_empty_variable_means_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_STATE_HOME", "")
    assert paths.state_home() == tmp_path / ".local/state/fleetdeck"
