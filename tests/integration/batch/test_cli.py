"""``fleetdeck rollout --waves ...`` and ``fleetdeck batch ...`` as an operator runs them: a
killed batch resumed from its journal, refusals before anything is sent, dry runs."""

from __future__ import annotations

import json
import signal
from typing import Any

from console.batch.journal import Journal
from tests.infra.k8s_fixtures import poll_until
from tests.integration.batch.conftest import Fleet, Fleetdeck

SLOW = {"replicas": 5}  # one pod at a time: each wave takes several seconds, room to act
SELECTOR = ("-l", "fleetdeck.io/model=digits")


def journal_records(fleetdeck: Fleetdeck) -> list[dict[str, Any]]:
    journals = sorted(fleetdeck.batches.glob("*.jsonl")) if fleetdeck.batches.is_dir() else []
    if not journals:
        return []
    return Journal.open(journals[0].stem, fleetdeck.batches).records()


def test_a_batch_killed_mid_wave_is_finished_by_resume_from_its_journal(
    fleet: Fleet, fleetdeck: Fleetdeck
) -> None:
    fleet.create([f"digits-{i:02}" for i in range(12)], **SLOW)
    fleet.wait_available(12)
    process = fleetdeck.start(
        "rollout", *SELECTOR, "--version", "2", "--no-verify", "--yes",
        "--waves", "2,50%,100%", "--max-parallel", "3", "--bake", "0",
    )  # fmt: skip

    def second_wave_half_sent() -> bool:
        records = journal_records(fleetdeck)
        started = [r for r in records if r["kind"] == "wave" and r["wave"] == 1]
        results = [r for r in records if r["kind"] == "result" and r["purpose"] == "apply"]
        return bool(started) and len(results) >= 4

    poll_until("the second wave under way", second_wave_half_sent, timeout=120)
    process.send_signal(signal.SIGKILL)  # no chance to clean up: only the journal remains
    process.communicate(timeout=30)
    (batch_id,) = [p.stem for p in fleetdeck.batches.glob("*.jsonl")]
    versions = fleet.versions()
    assert set(versions.values()) == {"1", "2"}  # half done

    status = fleetdeck("batch", "status", batch_id)
    assert status.code == 0, status.err
    assert f"batch {batch_id}: running (no process: killed? resume or abort it)" in status.out
    listed = fleetdeck("batch", "list")
    assert batch_id in listed.out
    assert "running (no process)" in listed.out

    resumed = fleetdeck("batch", "resume", batch_id)
    assert resumed.code == 0, resumed.err + resumed.out
    assert f"batch {batch_id}: done" in resumed.out
    assert set(fleet.versions().values()) == {"2"}
    fleet.wait_available(12)
    final = json.loads(fleetdeck("batch", "status", batch_id, "--json").out)
    assert final["state"] == "done"
    assert {t["step"] for t in final["targets"].values()} == {"healthy"}
    again = fleetdeck("batch", "resume", batch_id)
    assert again.code == 1
    assert "is done; nothing to resume" in again.err


def test_a_viewer_cannot_start_a_batch_and_nothing_is_sent(
    fleet: Fleet, fleetdeck: Fleetdeck
) -> None:
    fleet.create(["digits-a", "digits-b"])
    fleet.wait_available(2)
    before = fleet.revisions()
    refused = fleetdeck(
        "--context", "kwok-viewer", "rollout", *SELECTOR, "--version", "2", "--no-verify",
        "--yes", "--waves", "1,100%",
    )  # fmt: skip
    assert refused.code == 1
    assert "forbidden" in refused.err
    assert "may not patch deployments" in refused.err
    assert fleet.revisions() == before
    assert not journal_records(fleetdeck)


def test_a_dry_run_of_a_plan_shows_its_waves_and_changes_nothing(
    fleet: Fleet, fleetdeck: Fleetdeck
) -> None:
    fleet.create([f"digits-{i}" for i in range(5)])
    fleet.wait_available(5)
    before = fleet.objects()
    dry = fleetdeck(
        "rollout", *SELECTOR, "--version", "2", "--no-verify", "--waves", "1,100%", "--dry-run"
    )
    assert dry.code == 0, dry.err
    assert "wave 1: " in dry.out
    assert "wave 2: " in dry.out
    assert dry.out.count(": ok: would roll") == 5
    assert "rollout to version 2 of 5 deployments in 2 waves (1, 4)" in dry.err
    after = fleet.objects()
    assert {n: d["metadata"]["resourceVersion"] for n, d in after.items()} == {
        n: d["metadata"]["resourceVersion"] for n, d in before.items()
    }
    assert not journal_records(fleetdeck)


def test_a_read_only_batch_command_is_refused(fleet: Fleet, fleetdeck: Fleetdeck) -> None:
    fleet.create(["digits-a"])
    refused = fleetdeck(
        "--readonly", "rollout", "digits-a", "--version", "2", "--no-verify", "--waves", "100%"
    )
    assert refused.code == 1
    assert "read-only" in refused.err
    missing = fleetdeck("batch", "status", "20990101-000000-beef")
    assert missing.code == 1
    assert "no batch '20990101-000000-beef'" in missing.err


def test_batch_abort_stops_the_running_batch_and_rolls_back_what_it_changed(
    fleet: Fleet, fleetdeck: Fleetdeck
) -> None:
    fleet.create([f"digits-{i}" for i in range(6)], **SLOW)
    fleet.wait_available(6)
    before = fleet.versions()
    process = fleetdeck.start(
        "rollout", *SELECTOR, "--version", "2", "--no-verify", "--yes",
        "--waves", "2,100%", "--bake", "0",
    )  # fmt: skip

    def first_wave_sent() -> bool:
        records = journal_records(fleetdeck)
        sent = [r for r in records if r["kind"] == "result" and r["purpose"] == "apply"]
        return len(sent) >= 2

    poll_until("the first wave sent", first_wave_sent, timeout=120)
    (batch_id,) = [p.stem for p in fleetdeck.batches.glob("*.jsonl")]
    aborted = fleetdeck("batch", "abort", batch_id)
    out, _ = process.communicate(timeout=120)
    assert aborted.code == 0, aborted.err + aborted.out
    assert f"batch {batch_id}: aborted" in aborted.out
    assert process.returncode == 1
    assert "aborted: " in out
    assert fleet.versions() == before
    status = json.loads(fleetdeck("batch", "status", batch_id, "--json").out)
    assert status["state"] == "aborted"
    assert {t["step"] for t in status["targets"].values()} <= {"rolled-back", "pending"}
