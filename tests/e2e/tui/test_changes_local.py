"""On call in the deck, on the real local runtime under real load: a rollout to a version that
really answers slowly (a much larger model of the same digits) breaks the SLO; the banner says
so and names the change; the Changes screen shows the rollout marked as followed by a
regression with its numbers before and after; one key undoes it, with a preview and a
confirmation, and version 1 serves again with no request failed and the audit line naming the
change."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from console.audit import read_audit
from console.backends.local import LocalBackend
from console.metrics import MetricsCollector, direct_source
from console.model import DeploymentState, DeployRequest
from console.profile import SloSettings
from console.tui.app import DeckApp
from tests.e2e.tui.deck_pilot import (
    open_changes_until_regressed,
    run,
    undo_selected_change,
    wait_for,
    wait_for_undo_row,
)
from tests.e2e.tui.test_fleet_local import act
from tests.infra.k8s_fixtures import poll_until
from tests.integration.local.fixtures import (
    local_backend,
    slow_store,
    stop_every_agent,
    use_temporary_xdg,
    write_local_profile,
)
from tests.support.gateway_load import LoadGenerator
from tests.support.models import TinyModel

__all__ = ["slow_store"]

NAME = "digits-a"
KEY = ("default", NAME)
PROBE = ("default", "digits-probe")  # version 2 measured before the test, then deleted


@pytest.fixture
def backend(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, slow_store: TinyModel
) -> Iterator[LocalBackend]:
    use_temporary_xdg(tmp_path / "home", monkeypatch)
    profile = write_local_profile(slow_store.store_root)
    try:
        with local_backend(profile) as backend:
            yield backend
    finally:
        stop_every_agent(profile)


def serving(backend: LocalBackend, version: str) -> bool:
    row = backend.deployment(*KEY)
    return row is not None and row.state is DeploymentState.AVAILABLE and row.version == version


def p99s(collector: MetricsCollector, key: tuple[str, str]) -> list[float]:
    return [m.p99_ms for m in collector.history(key) if m.p99_ms is not None]


def slo_between_the_versions(
    backend: LocalBackend, collector: MetricsCollector, images: Any
) -> float:
    """A p99 limit that version 1 meets and version 2 breaks on this machine now: both
    measured under the same load (version 2 as another deployment, deleted afterwards)."""
    assert backend.deploy(DeployRequest(PROBE[1], "digits", 2, "default", 1)).ok
    poll_until("version 2 serving", lambda: backend.deployment(*PROBE).ready == 1, 120)  # type: ignore[union-attr]
    with LoadGenerator(backend, PROBE[1], images, threads=1):
        poll_until("both measured", lambda: len(p99s(collector, PROBE)) >= 8, 60)
    fast, slow = max(p99s(collector, KEY)[-8:]), min(p99s(collector, PROBE)[-8:])
    assert slow > 2 * fast, f"version 2 is not slow enough here: p99 {slow} vs {fast} ms"
    assert backend.delete(*PROBE).ok
    poll_until("the probe gone", lambda: backend.deployment(*PROBE) is None, 60)
    return float((fast * slow) ** 0.5)


def test_a_slow_rollout_is_marked_in_changes_named_in_the_banner_and_undone_with_one_key(
    backend: LocalBackend, slow_store: TinyModel, tmp_path: Path
) -> None:
    assert backend.deploy(DeployRequest(NAME, "digits", 1, "default", 1)).ok
    poll_until("version 1 serving", lambda: serving(backend, "1"), 120)
    audit_path = tmp_path / "audit.jsonl"
    collector = MetricsCollector(direct_source(backend), 3.0, interval_s=0.5)
    load = LoadGenerator(backend, NAME, slow_store.images, threads=1)
    found: dict[str, Any] = {}
    collector.start()
    load.__enter__()
    try:
        limit = slo_between_the_versions(backend, collector, slow_store.images)
    except BaseException:
        load.__exit__(None, None, None)
        collector.stop()
        raise
    profile = dataclasses.replace(backend.profile, slo=SloSettings(p99_ms=limit))

    async def scenario() -> None:
        app = DeckApp(backend, profile, user="alice", audit_path=audit_path, metrics=collector)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(
                pilot,
                "version 1 measured for a while",
                lambda: len([m for m in collector.history(KEY) if m.p99_ms]) >= 8,
                within=60,
            )
            assert app.breach_text == ""
            await act(pilot, app, "u", "2")  # the on-call engineer's rollout, from the deck
            await wait_for(pilot, "version 2 serving", lambda: serving(backend, "2"), within=120)
            await wait_for(
                pilot,
                "the banner with the change",
                lambda: "last change" in app.breach_text,
                within=60,
            )
            found["banner"] = app.breach_text

            screen = await open_changes_until_regressed(pilot, app, within=60)
            top = screen.shown_rows[0]
            found["row"] = top
            found["title"] = str(screen.query_one("#changes-title").render())

            found["preview"] = await undo_selected_change(pilot, app)
            await wait_for(pilot, "version 1 back", lambda: serving(backend, "1"), within=120)
            found["undo"] = await wait_for_undo_row(pilot, screen, within=30)

    try:
        run(scenario)
    finally:
        load.__exit__(None, None, None)
        collector.stop()

    row = found["row"]
    change = row.change
    assert (change.kind.value, change.who, change.what) == ("rollout", "alice", "rollout digits v2")
    assert change.affected[0].before == "digits v1 (rev 1)"
    assert change.affected[0].after == "digits v2 (rev 2)"
    assert row.effect.regression.startswith("p99 ")  # ... ms > 1.5 × baseline ... ms
    assert row.cell("EFFECT").endswith("REGRESSION")
    assert "1 followed by a regression" in found["title"]
    assert f"1 breaching SLO; worst default/{NAME}: p99" in found["banner"]
    assert f"last change {change.id}: rollout digits v2 by alice" in found["banner"]
    assert found["preview"][0] == f"undo {change.id}: rollout digits v2"
    assert found["preview"][1].startswith(
        f"  default/{NAME}: roll back to revision 1 (digits v1 (rev 1)); now digits v2 (rev 2)"
    )
    undone = found["undo"].change
    assert (undone.who, undone.undoes) == ("alice", change.id)
    lines = [e for e in read_audit(path=audit_path) if e.parameters.get("undoes") == change.id]
    assert [(e.action, e.targets, e.user, e.dry_run) for e in lines] == [
        ("rollback", (f"default/{NAME}",), "alice", False)
    ]
    assert load.sent > 0
    assert load.failures == []  # neither the slow version nor the undo failed a request
