"""``fleetdeck changes`` and ``fleetdeck undo`` on the local runtime, with real predictors: the
timeline says who changed what from what to what, and undo puts a deployment back through the
usual path, its audit line naming the change; an undo that would throw away a later change is
refused."""

from __future__ import annotations

import json
from typing import Any

from console.audit import read_audit
from console.backends.local import LocalBackend
from console.model import DeploymentState
from tests.infra.k8s_fixtures import poll_until
from tests.integration.local.fixtures import DigitsStore
from tests.integration.local.test_local_runtime import deploy, fleetdeck, wait_state
from tests.support.changes import of_deployments, the


def changes() -> list[dict[str, Any]]:
    done = fleetdeck("--profile", "local", "changes", "-o", "json")
    assert done.returncode == 0, done.stderr
    listed: list[dict[str, Any]] = json.loads(done.stdout)
    return listed


def test_changes_lists_who_changed_what_and_undo_puts_it_back_naming_the_change(
    backend: LocalBackend, digits_store: DigitsStore
) -> None:
    deploy(backend, "digits-a")
    rolled = fleetdeck("--profile", "local", "rollout", "digits-a", "--version", "2")
    assert rolled.returncode == 0, rolled.stderr
    wait_state(backend, "digits-a", DeploymentState.AVAILABLE, version="2")
    scaled = fleetdeck("--profile", "local", "scale", "digits-a", "--replicas", "2")
    assert scaled.returncode == 0, scaled.stderr

    listed = changes()
    kinds = [c["kind"] for c in of_deployments(listed)]  # the store's versions aside
    assert kinds[:3] == ["scale", "rollout", "deploy"], kinds  # newest first
    rollout, scale = the("rollout", listed), the("scale", listed)
    assert rollout["via_fleetdeck"]
    assert rollout["who"]
    assert rollout["deployments"] == [
        {"deployment": "default/digits-a", "from": "digits v1 (rev 1)", "to": "digits v2 (rev 2)"}
    ]
    assert scale["deployments"][0]["from"] == "1 replicas"
    assert scale["deployments"][0]["to"] == "2 replicas"
    published = {c["what"] for c in listed if c["kind"] == "publish"}
    assert {  # the session's store (other tests publish copies into it too)
        "digits v1 published to the store",
        "digits v2 published to the store",
    } <= published
    table = fleetdeck("--profile", "local", "changes", "--since", "1h")
    assert table.stdout.splitlines()[0].split()[:5] == ["ID", "TIME", "KIND", "WHO", "DEPLOYMENTS"]
    assert rollout["id"] in table.stdout

    # Undo the scale: back to one replica, the audit line naming the change.
    preview = fleetdeck("--profile", "local", "undo", scale["id"], "--dry-run")
    assert preview.returncode == 0, preview.stderr
    assert "scale back to 1 replicas" in preview.stderr
    assert backend.deployment("default", "digits-a").desired == 2  # type: ignore[union-attr]
    asked = fleetdeck("--profile", "local", "undo", scale["id"])
    assert asked.returncode == 2
    assert "needs confirmation: add --yes" in asked.stderr
    undone = fleetdeck("--profile", "local", "undo", scale["id"], "--yes")
    assert undone.returncode == 0, undone.stdout + undone.stderr
    poll_until(
        "one replica again",
        lambda: backend.deployment("default", "digits-a").desired == 1,  # type: ignore[union-attr]
        timeout=60,
    )
    lines = [e for e in read_audit() if e.parameters.get("undoes") == scale["id"] and not e.dry_run]
    assert [(e.action, e.targets, e.parameters["replicas"]) for e in lines] == [
        ("scale", ("default/digits-a",), 1)
    ]

    # Undo the rollout: version 1 serves again.
    undone = fleetdeck("--profile", "local", "undo", rollout["id"], "--yes")
    assert undone.returncode == 0, undone.stdout + undone.stderr
    wait_state(backend, "digits-a", DeploymentState.AVAILABLE, version="1")
    lines = [e for e in read_audit() if e.parameters.get("undoes") == rollout["id"]]
    assert [(e.action, e.parameters["to_revision"]) for e in lines] == [("rollback", 1)]
    assert the("undo", changes())["deployments"][0]["to"] == "digits v1 (rev 3)"

    # The rollout again: it was undone since, and an undo never throws away a later change.
    again = fleetdeck("--profile", "local", "undo", rollout["id"], "--yes")
    assert again.returncode == 1
    assert "changed since: it is at revision 3, this change left revision 2" in again.stderr
    assert "undo the newer change first" in again.stderr
    assert backend.deployment("default", "digits-a").revision == 3  # type: ignore[union-attr]


def test_undo_refuses_what_is_not_a_change_id_and_what_cannot_be_undone(
    backend: LocalBackend,
) -> None:
    deploy(backend, "digits-b")
    for hostile in ("../../etc/passwd", "zz", "$(reboot)"):
        done = fleetdeck("--profile", "local", "undo", hostile, "--yes")
        assert done.returncode == 1, done.stderr
        assert "is not a change id: 4 to 7 hex digits" in done.stderr
    missing = fleetdeck("--profile", "local", "undo", "0000000", "--yes")
    assert missing.returncode == 1
    assert "no change 0000000 in the timeline" in missing.stderr
    published = the("publish", changes())
    refused = fleetdeck("--profile", "local", "undo", published["id"], "--yes")
    assert refused.returncode == 1
    assert "a published version is not undone" in refused.stderr
    row = backend.deployment("default", "digits-b")
    assert row is not None
    assert (row.revision, row.desired) == (1, 1)
