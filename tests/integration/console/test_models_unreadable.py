"""``fleetdeck models`` over a shared store where another team left a hostile manifest: the
good version is listed as before, the hostile one as unreadable with the store's reason,
escaped; the command still succeeds."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from serving.store import ModelStore
from tests.support.cli import run_fleetdeck
from tests.support.versions import describe, make_version

ROOT = Path(__file__).resolve().parents[3]
HOSTILE_PATH = "../../x"


def store_with_a_hostile_version(root: Path, work: Path) -> ModelStore:
    """``digits`` version 1 published as usual; version 2 written by hand, as another team
    could, with a manifest that lists ``../../x`` (and an escape sequence in its run name)."""
    store = ModelStore(str(root))
    store.publish("digits", make_version(work / "good"), describe)
    good = root / "digits" / "1"
    hostile = root / "digits" / "2"
    shutil.copytree(good, hostile)
    manifest = json.loads((good / "manifest.json").read_text())
    manifest["version"] = 2
    manifest["training"] = {"run": "evil\x1b[2J"}
    manifest["files"][HOSTILE_PATH] = {"sha256": "0" * 64, "size": 1}
    (hostile / "manifest.json").write_text(json.dumps(manifest))
    return store


def fleetdeck(home: Path, store: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profiles = home / "config" / "fleetdeck" / "profiles"
    profiles.mkdir(parents=True, exist_ok=True)
    (profiles / "shared.toml").write_text(f'backend = "local"\n[store]\nroot = "{store}"\n')
    env = {
        **os.environ,
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_STATE_HOME": str(home / "state"),
        "FLEETDECK_PROFILE": "shared",
    }
    return run_fleetdeck(*args, env=env, timeout=120)


def test_models_lists_a_hostile_version_as_unreadable_with_its_reason_and_the_good_one_as_before(
    tmp_path: Path,
) -> None:
    store_with_a_hostile_version(tmp_path / "store", tmp_path)
    listed = fleetdeck(tmp_path / "home", tmp_path / "store", "models", "digits")
    assert listed.returncode == 0, listed.stderr
    assert "\x1b" not in listed.stdout
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["MODEL", "VERSION", "CREATED", "RUNTIME", "ACCURACY", "INT8"]
    assert lines[1].split() == ["digits", "1", "2026-11-26T00:00:00Z", "tflite", "-", "-"]
    assert lines[2].split() == ["digits", "2", "unreadable", "-", "-", "-"]
    reason = next(line for line in lines[3:] if line.startswith("digits v2: unreadable: "))
    assert HOSTILE_PATH in reason

    as_json = fleetdeck(tmp_path / "home", tmp_path / "store", "models", "digits", "--json")
    assert as_json.returncode == 0, as_json.stderr
    good, bad = json.loads(as_json.stdout)
    assert good["version"] == 1
    assert good["default_runtime"] == "tflite"
    assert good["labels"] == ["cat", "dog"]
    assert "error" not in good
    assert bad["model"] == "digits"
    assert bad["version"] == 2
    assert HOSTILE_PATH in bad["error"]
