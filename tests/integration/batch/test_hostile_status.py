"""``fleetdeck batch status`` of a batch whose journal quotes a hostile answer (a server's or a
webhook's refusal holding an escape sequence and a newline): shown escaped, on one line."""

from __future__ import annotations

from console.batch.journal import Journal
from console.batch.plan import make_plan
from console.batch.runner import ActionSpec
from console.profile import BatchSettings, Quota
from console.profile_reader import parse_waves
from tests.integration.batch.conftest import Fleetdeck

HOSTILE = "refused\x1b[2J\nby [b]webhook[/b]\x9b31m"


def test_batch_status_shows_a_hostile_failure_message_escaped_on_one_line(
    fleetdeck: Fleetdeck, k8s_namespace: str
) -> None:
    targets = [(k8s_namespace, "digits-a"), (k8s_namespace, "digits-b")]
    settings = BatchSettings(waves=parse_waves("1,100%"), halt_after=Quota(count=1))
    plan = make_plan(ActionSpec("rollout", version=2), targets, settings)
    journal = Journal.create(plan, {"user": "alice", "profile": "test"}, fleetdeck.batches)
    journal.send("apply", "rollout", targets[:1])
    journal.append("result", purpose="apply", target=list(targets[0]), ok=False, message=HOSTILE)

    status = fleetdeck("batch", "status", journal.id)
    assert status.code == 0, status.err
    assert "\x1b" not in status.out
    assert "\x9b" not in status.out
    failed = [line for line in status.out.splitlines() if "digits-a" in line]
    assert failed == [
        f"  {k8s_namespace}/digits-a: failed: refused\\x1b[2J\\nby [b]webhook[/b]\\x9b31m"
    ]
