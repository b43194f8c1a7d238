"""How a command fails: bad usage (exit 2), or an action that failed (exit 1)."""

from __future__ import annotations


class UsageError(Exception):
    """Bad usage (exit 2)."""


class ActionFailed(Exception):
    """The action failed (exit 1); the message says why."""
