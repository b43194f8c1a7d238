"""One watcher thread per kind × namespace: list, then watch from the list's resourceVersion.

The client is blocking, so each scope gets a thread. A watch that ends normally (the server's
``timeoutSeconds``) resumes from the last resourceVersion seen (bookmarks keep it fresh); 410
Gone, or a watch ending with an ERROR event, means that version is no longer served: relist.
A lost connection is retried with backoff, resuming the watch where it stopped (the server
answers 410 if it cannot, and then we relist).
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from console.backends.kubernetes.connection import Backoff, ConnectionTracker
from console.backends.kubernetes.kinds import Kind, ListCall
from console.backends.kubernetes.notify import Notifier
from console.backends.kubernetes.store import Obj, Store, resource_version

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WatchSettings:
    # Server-side watch length, randomized up to twice this (as client-go does) so the
    # watchers of a fleet of consoles do not all reconnect at once.
    watch_timeout: float = 300.0
    connect_timeout: float = 5.0
    # A list of thousands of objects can take a while; a dead server is found by this.
    list_read_timeout: float = 60.0
    page_size: int = 500
    backoff: Callable[[], Backoff] = Backoff


class Expired(Exception):
    """The watch ended with an ERROR event (410 Gone: the resourceVersion is no longer served).

    Either way the cache may have missed events: relist.
    """

    def __init__(self, code: object, message: str) -> None:
        super().__init__(f"watch error {code}: {message}")
        self.code = code


class ScopeWatcher:
    def __init__(
        self,
        kind: Kind,
        namespace: str | None,
        call: ListCall,
        store: Store,
        tracker: ConnectionTracker,
        notifier: Notifier,
        stopping: threading.Event,
        settings: WatchSettings,
    ) -> None:
        self.kind = kind
        self.namespace = namespace
        self.name = f"{kind}@{namespace or '*'}"
        self._call = call
        self._store = store
        self._tracker = tracker
        self._notifier = notifier
        self._stopping = stopping
        self._settings = settings
        self._backoff = settings.backoff()
        self._response: Any = None
        self._response_lock = threading.Lock()
        # Set to cut a backoff wait short (the server answers again, or the cache stops).
        self._wake = threading.Event()
        # Set when the watch is cut on purpose to resume on a fresh connection: not a failure.
        self._resuming = threading.Event()
        self.synced = threading.Event()
        self.relists = 0  # lists after the first one
        self.reconnects = 0  # connection failures retried
        self.events = 0
        self._seen_version: str | None = None  # the last resourceVersion the watch delivered
        self.thread = threading.Thread(
            target=self._run, name=f"fleet-cache-{self.name}", daemon=True
        )

    # ----- lifecycle ---------------------------------------------------------------------

    def interrupt(self) -> None:
        """Make a blocked read return. Closing the response from this thread could deadlock on
        the buffer lock the reading thread holds; shutting the socket down does not."""
        with self._response_lock:
            response = self._response
        sock = getattr(getattr(response, "connection", None), "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):  # already closed: nothing to unblock
                sock.shutdown(socket.SHUT_RDWR)

    def wake(self) -> None:
        """End a backoff wait now (the cache is stopping)."""
        self._wake.set()

    def resume(self, jitter: float) -> None:
        """The server answers again: retry after ``jitter`` seconds instead of the rest of the
        backoff, and move a watch held through the outage to a fresh connection (resuming
        from its last version: no relist)."""
        self._jitter = jitter
        self._backoff.reset()
        self._resuming.set()
        self._wake.set()
        self.interrupt()

    _jitter = 0.0

    def _pause(self, delay: float) -> None:
        """Wait ``delay`` (a backoff), or until woken; a wake-up waits its jitter first."""
        if self._wake.wait(delay):
            self._wake.clear()
            self._resuming.clear()
            self._stopping.wait(self._jitter)

    def _run(self) -> None:
        resume_from: str | None = None
        while not self._stopping.is_set():
            try:
                if resume_from is None:
                    resume_from = self._relist()
                resume_from = self._watch(resume_from)
            except Expired as expired:
                log.info("%s: %s; relisting", self.name, expired)
                resume_from = None
                if expired.code != 410:  # a server error, not an old version: do not spin
                    self._pause(self._backoff.next())
            except Exception as error:
                if self._stopping.is_set():
                    break
                if getattr(error, "status", None) == 410:
                    resume_from = None
                    continue
                if resume_from is not None:  # resume after the last event seen, not before
                    resume_from = self._seen_version or resume_from
                if self._resuming.is_set():  # cut on purpose by resume(): go again
                    self._pause(0.0)
                    continue
                self.reconnects += 1
                self._tracker.failed(self.name, reason_of(error), detail_of(error))
                log.warning("%s: %s; retrying", self.name, detail_of(error))
                self._pause(self._backoff.next())

    def _connected(self) -> None:
        self._backoff.reset()
        self._tracker.recovered(self.name)

    # ----- list --------------------------------------------------------------------------

    def _relist(self) -> str:
        items: list[Obj] = []
        page: dict[str, Any] = {}
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {
                "limit": self._settings.page_size,
                "_preload_content": False,
                "_request_timeout": (
                    self._settings.connect_timeout,
                    self._settings.list_read_timeout,
                ),
            }
            if token:
                kwargs["_continue"] = token
            try:
                page = json.loads(self._read_all(self._call(**kwargs)))
            except Exception as error:
                if token and getattr(error, "status", None) == 410:
                    # The continue token outlived its snapshot (compaction): start over.
                    items, token = [], None
                    continue
                raise
            # List items come without kind and apiVersion; watch events carry them: fill them
            # in so readers see the same shape whichever way an object arrived.
            kind, api_version = (
                str(page.get("kind", "")).removesuffix("List"),
                page.get("apiVersion"),
            )
            for item in page.get("items") or []:
                item.setdefault("kind", kind)
                item.setdefault("apiVersion", api_version)
                items.append(item)
            token = page.get("metadata", {}).get("continue") or None
            if not token:
                break
        version = str(page["metadata"]["resourceVersion"])
        changed = self._store.replace(self.kind, self.namespace, items)
        self._notifier.changed(self.kind, changed)
        if self.synced.is_set():
            self.relists += 1
        self._connected()
        self.synced.set()
        return version

    def _read_all(self, response: Any) -> bytes:
        self._hold(response)
        try:
            data: bytes = response.read()
        except BaseException:
            self._release(response, reuse=False)
            raise
        self._release(response, reuse=True)
        return data

    # ----- watch -------------------------------------------------------------------------

    def _watch(self, version: str) -> str:
        """Watch from ``version`` until the server ends the watch; return where to resume."""
        timeout = int(self._settings.watch_timeout * (1 + random.random()))
        response = self._call(
            watch=True,
            resource_version=version,
            allow_watch_bookmarks=True,
            timeout_seconds=timeout,
            # The read timeout outlasts the server's own, so a healthy quiet watch is ended by
            # the server, and only a dead connection by us.
            _request_timeout=(self._settings.connect_timeout, timeout + 30),
            _preload_content=False,
        )
        self._hold(response)
        self._seen_version = version
        try:
            self._connected()
            for line in _lines(response):
                event = json.loads(line)
                kind, obj = event.get("type"), event.get("object") or {}
                if kind in ("ADDED", "MODIFIED", "DELETED"):
                    key = self._store.apply(self.kind, kind, obj)
                    self._notifier.changed(self.kind, (key,))
                    self.events += 1
                    version = self._seen_version = resource_version(obj) or version
                elif kind == "BOOKMARK":
                    version = self._seen_version = resource_version(obj) or version
                elif kind == "ERROR":
                    raise Expired(obj.get("code"), f"{obj.get('reason')}: {obj.get('message')}")
                if self._stopping.is_set():
                    break
            return version
        finally:
            self._release(response, reuse=False)

    def _hold(self, response: Any) -> None:
        with self._response_lock:
            self._response = response
        if self._stopping.is_set():  # stop() may have looked before the response was held
            self.interrupt()

    def _release(self, response: Any, reuse: bool) -> None:
        with self._response_lock:
            self._response = None
        try:
            if not reuse:
                response.close()
            response.release_conn()
        except Exception:  # a connection we cut: nothing left to release
            log.debug("%s: releasing the connection failed", self.name, exc_info=True)


def _lines(response: Any) -> Iterator[bytes]:
    """The watch stream's newline-delimited JSON events, as each chunk arrives."""
    buffer = bytearray()
    for chunk in response.stream(65536):
        buffer += chunk
        start = 0
        while (end := buffer.find(b"\n", start)) >= 0:
            if end > start:
                yield bytes(buffer[start:end])
            start = end + 1
        del buffer[:start]


def reason_of(error: BaseException) -> str:
    """A short reason for the UI ("connection refused", "HTTP 403 Forbidden")."""
    status = getattr(error, "status", None)
    if status:
        return f"HTTP {status} {getattr(error, 'reason', '')}".strip()
    cause = getattr(error, "reason", None)  # urllib3's MaxRetryError wraps the real error
    text = str(cause if isinstance(cause, BaseException) else error)
    for marker, reason in (
        ("Connection refused", "connection refused"),
        ("Read timed out", "read timed out"),
        ("Connection broken", "connection lost"),
        ("ended prematurely", "connection lost"),
        ("Connection aborted", "connection lost"),
        ("Connection reset", "connection lost"),
        ("timed out", "connect timed out"),
    ):
        if marker in text:
            return reason
    return type(error).__name__


def detail_of(error: BaseException) -> str:
    """One line for the log and ``last_error``: an API error's message, not its headers."""
    status = getattr(error, "status", None)
    if status:
        try:
            message = json.loads(getattr(error, "body", None) or "{}").get("message", "")
        except (ValueError, AttributeError):
            message = ""
        return f"HTTP {status} {getattr(error, 'reason', '')}: {message}"[:500]
    return f"{type(error).__name__}: {error}"[:500]
