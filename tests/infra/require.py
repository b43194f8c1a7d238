"""What a test does when real infrastructure is missing.

On a developer's laptop without Go or Java the integration tier skips with one line saying
what is missing; in CI (``FLEETDECK_REQUIRE_INFRA=1``) the same situation is a failure.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def infra_required() -> bool:
    return os.environ.get("FLEETDECK_REQUIRE_INFRA", "") not in ("", "0", "false", "no")


def missing_infra(what: str) -> NoReturn:
    """Skip (developer machine) or fail (CI) because ``what`` is not available."""
    if infra_required():
        pytest.fail(f"required infrastructure unavailable: {what}", pytrace=False)
    pytest.skip(f"infrastructure unavailable: {what}")
