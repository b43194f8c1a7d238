"""A local profile's ``[local]`` settings: the agent's rollout deadline and how many jobs run
at once, read from the profile and handed to the agent it starts."""

from __future__ import annotations

import re

import pytest

from console.local.__main__ import build_parser
from console.local.launch import agent_command
from console.local.paths import AgentPaths
from console.profile import LocalSettings, ProfileError, parse_profile


def test_a_local_profile_without_the_settings_takes_the_agents_defaults() -> None:
    profile = parse_profile("mine", {"backend": "local"}, source=None)
    assert profile.local == LocalSettings(
        gateway_port=8600, progress_deadline_seconds=300.0, training_parallel=2
    )


def test_the_deadline_and_parallelism_reach_the_agents_command_line() -> None:
    profile = parse_profile(
        "mine",
        {
            "backend": "local",
            "local": {"progress_deadline_seconds": 45, "training_parallel": 4},
        },
        source=None,
    )
    assert profile.local is not None
    assert profile.local.progress_deadline_seconds == 45.0  # TOML's 45 taken as seconds
    assert profile.local.training_parallel == 4
    command = agent_command(profile, AgentPaths.for_profile("mine"))
    parsed = build_parser().parse_args(command[4:])  # after python -P -m console.local
    assert parsed.progress_deadline == 45.0
    assert parsed.training_parallel == 4


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        pytest.param(
            {"training_parallel": 0},
            "local.training_parallel: expected an integer >= 1, got 0",
            id="no-job-at-once",
        ),
        pytest.param(
            {"progress_deadline_seconds": "5m"},
            'local.progress_deadline_seconds: expected a number >= 1, got "5m"',
            id="deadline-not-a-number",
        ),
        pytest.param(
            {"progress_deadline_seconds": 0.5},
            "local.progress_deadline_seconds: expected a number >= 1, got 0.5",
            id="deadline-too-short",
        ),
    ],
)
def test_a_bad_setting_names_the_key_and_what_it_expects(
    settings: dict[str, object], message: str
) -> None:
    with pytest.raises(ProfileError, match=re.escape(message)):
        parse_profile("mine", {"backend": "local", "local": settings}, source=None)


def test_the_settings_belong_to_local_profiles_only() -> None:
    data = {
        "backend": "kubernetes",
        "kubernetes": {"context": "prod"},
        "store": {"root": "hdfs://namenode:9870/models"},
        "local": {"training_parallel": 4},
    }
    with pytest.raises(ProfileError, match='local: only for backend = "local"'):
        parse_profile("prod", data, source=None)
