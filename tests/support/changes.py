"""Reading ``fleetdeck changes -o json`` in tests: the list, and one kind of change in it."""

from __future__ import annotations

from typing import Any

from tests.support.cli import Fleetdeck


def listed_changes(fleetdeck: Fleetdeck, *args: str) -> list[dict[str, Any]]:
    """``fleetdeck changes ARGS -o json``, newest first (the command must succeed)."""
    done = fleetdeck("changes", *args, "-o", "json")
    assert done.code == 0, done.err
    listed: list[dict[str, Any]] = done.json()
    return listed


def of_deployments(listed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The changes that touched a deployment (not the store's published versions)."""
    return [c for c in listed if c["deployments"]]


def the(kind: str, listed: list[dict[str, Any]]) -> dict[str, Any]:
    """The newest change of ``kind``; fails naming what there is instead."""
    found = [c for c in listed if c["kind"] == kind]
    assert found, f"no {kind} in {[c['kind'] + ' ' + c['what'] for c in listed]}"
    return found[0]
