"""Shared pytest configuration: tiers are marked by folder so every test carries its tier."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

TESTS = Path(__file__).parent

# Stores and predictors talk to the test HDFS as the same user the fixtures clean up with.
os.environ.setdefault("HADOOP_USER_NAME", "fleetdeck")

pytest_plugins = [
    "tests.infra.k8s_fixtures",
    "tests.infra.hdfs_fixtures",
    "tests.support.fixtures",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        tier = Path(str(item.fspath)).relative_to(TESTS).parts[0]
        if tier in ("unit", "integration", "e2e"):
            item.add_marker(getattr(pytest.mark, tier))
