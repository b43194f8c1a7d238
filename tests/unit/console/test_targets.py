"""What a user types for a deployment: NAME, NAMESPACE/NAME, CLUSTER/NAMESPACE/NAME, each also
after ``deployment/``; every part checked by Kubernetes' naming rules before anything is sent."""

from __future__ import annotations

import re

import pytest

from console.core.clusters import cluster_order, names_clusters
from console.core.targets import Target, TargetName, parse_target
from console.names import InvalidName
from console.profile import ProfileError


@pytest.mark.parametrize(
    ("typed", "parsed"),
    [
        ("digits", TargetName("digits")),
        ("models/digits", TargetName("digits", "models")),
        ("eu-west/models/digits", TargetName("digits", "models", "eu-west")),
        ("deployment/digits", TargetName("digits")),
        ("deploy/eu-west/models/digits", TargetName("digits", "models", "eu-west")),
    ],
)
def test_each_form_is_parsed_into_the_parts_it_gives(typed: str, parsed: TargetName) -> None:
    assert parse_target(typed) == parsed
    assert str(parse_target(typed)) == typed.removeprefix("deployment/").removeprefix("deploy/")


@pytest.mark.parametrize(
    ("typed", "said"),
    [
        ("a/b/c/d", "give NAME, NAMESPACE/NAME or CLUSTER/NAMESPACE/NAME"),
        ("Digits", "deployment name"),
        ("eu_west/models/digits", "cluster name"),
        ("../digits", "namespace"),
        ("models/", "deployment name"),
        ("x" * 64, "deployment name"),
        ("models/digits\n", "deployment name"),
    ],
)
def test_a_part_that_breaks_the_naming_rules_is_refused_naming_the_part(
    typed: str, said: str
) -> None:
    with pytest.raises(InvalidName, match=said):
        parse_target(typed)


def test_a_whole_identity_reads_cluster_namespace_name_and_sorts_by_them() -> None:
    found = sorted([Target("b", "models", "digits"), Target("a", "models", "digits")])
    assert [str(t) for t in found] == ["a/models/digits", "b/models/digits"]


CLUSTERS = ["canary", "eu-west", "us-east"]


@pytest.mark.parametrize(
    ("waves", "order"),
    [
        ("canary,eu-west,*", ["canary", "eu-west", "us-east"]),
        ("us-east,*", ["us-east", "canary", "eu-west"]),
        ("canary,*,eu-west", ["canary", "us-east", "eu-west"]),
        ("eu-west,canary", ["eu-west", "canary"]),
        ("*", CLUSTERS),
    ],
)
def test_waves_naming_clusters_give_their_order_and_star_the_rest_in_the_profiles(
    waves: str, order: list[str]
) -> None:
    assert names_clusters(waves)
    assert cluster_order(waves, CLUSTERS) == order


def test_wave_sizes_are_not_cluster_names() -> None:
    assert not names_clusters("1,10%,100%")
    assert not names_clusters(None)


@pytest.mark.parametrize(
    ("waves", "said"),
    [
        ("canary,10%,*", "mixes wave sizes (10%) with cluster names"),
        ("canary,eu-wset", "'eu-wset', not a cluster of the profile (canary, eu-west, us-east)"),
        ("canary,*,canary", "names canary more than once"),
        ("*,*", "names * more than once"),
    ],
)
def test_a_wave_list_naming_clusters_wrongly_is_refused_saying_what_to_fix(
    waves: str, said: str
) -> None:
    with pytest.raises(ProfileError, match=re.escape(said)):
        cluster_order(waves, CLUSTERS)


def test_a_cluster_name_starting_with_a_digit_is_a_name_not_a_size() -> None:
    assert names_clusters("2nd-dc,*")
    assert cluster_order("2nd-dc,*", ["canary", "2nd-dc"]) == ["2nd-dc", "canary"]
    assert names_clusters("canary,10%")  # refused by cluster_order, saying it mixes both
