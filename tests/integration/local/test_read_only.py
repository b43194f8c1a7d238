"""Read-only on the local runtime, through the real CLI and a real agent: a mutation is refused
with the guard's one text (the front-end's and the backend's last line alike) and nothing
changes: not the deployment, not its history, not the audit log."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from console.backends.local import LocalBackend
from console.core import guard
from console.model import DeploymentState, DeployRequest
from console.profile import Profile, load_profile
from tests.infra.k8s_fixtures import poll_until
from tests.integration.local.fixtures import local_backend
from tests.support.cli import run_fleetdeck


def fleetdeck(*args: str) -> subprocess.CompletedProcess[str]:
    return run_fleetdeck(*args)


def listed() -> list[dict[str, object]]:
    shown = fleetdeck("ls", "--json")
    assert shown.returncode == 0, shown.stderr
    rows: list[dict[str, object]] = json.loads(shown.stdout)
    return [{k: row[k] for k in ("name", "desired", "revision", "version")} for row in rows]


def test_a_read_only_profile_refuses_a_mutation_with_the_guards_text_and_changes_nothing(
    profile: Profile, backend: LocalBackend
) -> None:
    assert backend.deploy(DeployRequest("digits", "digits", 1, "default", 1)).ok
    poll_until(
        "digits available",
        lambda: (
            (row := backend.deployment("default", "digits")) is not None
            and row.state is DeploymentState.AVAILABLE
        ),
        timeout=120,
    )
    before = listed()
    history = backend.history("default", "digits")
    refusal = f"fleetdeck: {guard.read_only_refusal('local').text}\n"

    flagged = fleetdeck("--readonly", "scale", "digits", "--replicas", "2")
    assert (flagged.returncode, flagged.stderr) == (1, refusal)

    path = Path(os.environ["XDG_CONFIG_HOME"]) / "fleetdeck" / "profiles" / "local.toml"
    path.write_text(path.read_text().replace("read_only = false", "read_only = true"))
    assert load_profile("local").read_only
    for mutation in (
        ("scale", "digits", "--replicas", "2"),
        ("rollout", "digits", "--version", "2"),
        ("delete", "digits", "--yes"),
    ):
        refused = fleetdeck(*mutation)
        assert (refused.returncode, refused.stderr) == (1, refusal), mutation

    # The backend's last line, should a front-end not ask: the same refusal, nothing sent.
    with local_backend(load_profile("local")) as read_only:
        result = read_only.scale("default", "digits", 2)
    assert (result.ok, result.message) == (False, guard.read_only_refusal("local").text)

    assert listed() == before
    assert backend.history("default", "digits") == history
    assert json.loads(fleetdeck("audit", "--json").stdout) == []
