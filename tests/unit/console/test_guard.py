"""The guard: one table of what each mutation needs, one refusal type, one text per refusal."""

from __future__ import annotations

import pytest

from console.batch.runner import ACTIONS
from console.core import guard
from console.core.guard import NEEDS, Guard, Need, Refusal

READ_ONLY_TEXT = (
    "read-only: profile 'prod' (or --readonly) allows no changes; nothing was sent "
    "(use a profile that is not read-only, without --readonly)"
)


class Reviews:
    """Answers access reviews from a set of (verb, resource, namespace) allowed; counts asks."""

    def __init__(self, allowed: set[tuple[str, str, str]] | None = None) -> None:
        self.allowed = allowed or set()
        self.asked: list[tuple[str, str, str | None]] = []

    def can(self, verb: str, resource: str, namespace: str | None = None) -> bool:
        self.asked.append((verb, resource, namespace))
        return (verb, resource, namespace or "") in self.allowed


class Unreachable:
    def can(self, verb: str, resource: str, namespace: str | None = None) -> bool:
        raise ConnectionError("the API server is away")


def test_the_table_says_what_each_mutation_needs() -> None:
    # Read the other way round: which mutations each permission opens.
    opened_by: dict[Need, set[str]] = {}
    for action, needs in NEEDS.items():
        for need in needs:
            opened_by.setdefault(need, set()).add(action)
    patching = {"pause", "restart", "resume", "rollback", "rollout", "scale"}
    assert opened_by == {
        Need("create", "deployments"): {"deploy"},
        Need("patch", "deployments"): patching,
        Need("delete", "deployments"): {"delete"},
        Need("create", "jobs"): {"train", "score"},
        Need("delete", "jobs"): {"cancel"},
        Need("create", "horizontalpodautoscalers"): {"autoscale"},
        Need("patch", "horizontalpodautoscalers"): {"autoscale"},
    }
    assert frozenset(NEEDS) == guard.MUTATIONS
    assert set(ACTIONS) <= guard.MUTATIONS  # every batch action is guarded
    assert guard.is_mutation("scale")
    assert not guard.is_mutation("ls")


@pytest.mark.parametrize("action", sorted(guard.MUTATIONS))
def test_a_read_only_profile_refuses_every_mutation_with_the_one_text(
    action: guard.Mutation,
) -> None:
    reviews = Reviews({(n.verb, n.resource, "models") for n in NEEDS[action]})
    read_only = Guard(reviews, read_only=True, profile="prod", user="alice")
    found = read_only.refusals(action, ["models"])
    assert [r.text for r in found] == [READ_ONLY_TEXT]
    assert found[0].read_only
    with pytest.raises(Refusal, match=r"^read-only: profile 'prod'"):
        read_only.check(action, ["models"])
    assert read_only.why_not(action, ["models"]) == READ_ONLY_TEXT
    assert reviews.asked == []  # read-only is decided without asking the server


def test_the_read_only_check_alone_raises_the_same_refusal() -> None:
    guard.check_read_only(read_only=False, profile="prod")
    with pytest.raises(Refusal) as raised:
        guard.check_read_only(read_only=True, profile="prod")
    assert str(raised.value) == READ_ONLY_TEXT
    assert guard.read_only_refusal("").text.startswith("read-only: this profile (or --readonly)")


@pytest.mark.parametrize("action", sorted(guard.MUTATIONS))
def test_a_viewer_gets_the_one_rbac_refusal_per_namespace(action: guard.Mutation) -> None:
    need = NEEDS[action][0]
    viewer = Guard(Reviews(), read_only=False, profile="kwok", user="kwok-viewer")
    found = viewer.refusals(action, ["b", "a", "a"])
    assert [r.text for r in found] == [
        f"forbidden: user 'kwok-viewer' may not {need.verb} {need.resource} in namespace "
        f"{namespace}; nothing was sent (ask for a role that allows it)"
        for namespace in ("a", "b")
    ]
    assert not any(r.read_only for r in found)
    with pytest.raises(Refusal, match="in namespace a;"):
        viewer.check(action, ["b", "a"])
    assert viewer.why_not(action, ["a"]) == found[0].text


def test_allowed_in_every_namespace_is_no_refusal_and_each_need_is_asked() -> None:
    allowed = {(n.verb, n.resource, ns) for n in NEEDS["autoscale"] for ns in ("a", "b")}
    reviews = Reviews(allowed)
    oncall = Guard(reviews, read_only=False, profile="kwok", user="u")
    assert oncall.refusals("autoscale", ["a", "b"]) == []
    assert reviews.asked == [
        ("create", "horizontalpodautoscalers", "a"),
        ("patch", "horizontalpodautoscalers", "a"),
        ("create", "horizontalpodautoscalers", "b"),
        ("patch", "horizontalpodautoscalers", "b"),
    ]
    oncall.check("autoscale", ["a"])
    assert oncall.why_not("autoscale", ["a"]) == ""


def test_a_second_need_refused_is_named() -> None:
    reviews = Reviews({("create", "horizontalpodautoscalers", "a")})
    (refused,) = guard.rbac_refusals(reviews, "autoscale", ["a"], user="bob")
    assert refused.text.startswith("forbidden: user 'bob' may not patch horizontalpodautoscalers")


def test_without_a_user_the_refusal_says_you() -> None:
    (refused,) = guard.rbac_refusals(Reviews(), "train", ["models"], user="")
    assert refused.text.startswith("forbidden: you may not create jobs in namespace models;")


def test_a_review_that_cannot_be_asked_is_offered_by_the_deck_and_raised_by_the_cli() -> None:
    unreachable = Guard(Unreachable(), read_only=False, profile="kwok", user="u")
    assert unreachable.why_not("rollout", ["a"]) == ""
    with pytest.raises(ConnectionError):
        unreachable.check("rollout", ["a"])
