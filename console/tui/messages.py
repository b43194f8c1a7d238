"""Navigation: a screen asks the deck to open another screen by posting one of these; the app
(the router) handles them. No screen imports another screen."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

from textual.message import Message

from console.backends.base import LogRequest
from console.batch.lifecycle import BatchRun
from console.batch.runner import Action
from console.model import ModelDeployment
from console.tui.context import DeckContext


class OpenDeployment(Message):
    """The Deployment screen of ``namespace/name`` in ``cluster`` ("": a one-cluster deck's)."""

    def __init__(self, namespace: str, name: str, cluster: str = "") -> None:
        super().__init__()
        self.key = (namespace, name)  # (Message.namespace is Textual's own)
        self.cluster = cluster


class OpenDeploymentLogs(Message):
    """The Logs screen on every pod of the deployment ``namespace/name`` in ``cluster``."""

    def __init__(self, namespace: str, name: str, cluster: str = "") -> None:
        super().__init__()
        self.key = (namespace, name)  # (Message.namespace is Textual's own)
        self.cluster = cluster


class LogSource(Protocol):
    """What the Logs screen needs of a backend (every ``Backend`` is one)."""

    def logs(self, request: LogRequest) -> Iterator[str]: ...


class OpenLogs(Message):
    """The Logs screen on the pods ``request`` names (a job's, a sweep's), read from ``source``
    (``deck``: the cluster they are in, which the screen's where line names)."""

    def __init__(
        self, source: LogSource, request: LogRequest, title: str, deck: DeckContext | None = None
    ) -> None:
        super().__init__()
        self.source, self.request, self.title = source, request, title
        self.deck = deck


class OpenOverview(Message):
    """The fleet overview (of ``cluster`` in a deck over several)."""

    def __init__(self, cluster: str = "") -> None:
        super().__init__()
        self.cluster = cluster


class OpenActionDialog(Message):
    """The dialog that plans, confirms and runs ``action`` on ``targets`` (all in one cluster:
    the one their ``cluster`` names)."""

    def __init__(self, action: Action, targets: Sequence[ModelDeployment]) -> None:
        super().__init__()
        self.action, self.targets = action, list(targets)


class OpenBatch(Message):
    """The Batch screen following ``run`` (just started from the action dialog)."""

    def __init__(self, run: BatchRun) -> None:
        super().__init__()
        self.run = run


class OpenChanges(Message):
    """The Changes screen: what changed in every cluster of the deck."""


class AbortBatch(Message):
    """The Batch screen of ``batch_id``, asking to abort it (the undo of a batch's change)."""

    def __init__(self, batch_id: str) -> None:
        super().__init__()
        self.batch_id = batch_id
