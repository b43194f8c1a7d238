"""What the agent refuses as the client's fault: the API answers these with 400 and the message."""

from __future__ import annotations


class BadArgument(ValueError):
    """An action's argument that can never be right (a wrong type, a negative count); the
    message says what to send instead. Names that break the naming rule raise
    :class:`console.names.InvalidName`, which the API answers the same way."""
