"""Pod logs through the API server: tail, since, timestamps, previous, container, follow.

Several pods are merged line by line, each line prefixed with its pod. Each pod is read by a
thread into one bounded queue: when the reader (a terminal, the TUI) is slower than the pods,
the threads block and the API server's stream waits, so memory stays bounded whatever the rate.
A followed stream that breaks while its pod lives is resumed with backoff, from the last
timestamp seen, dropping what was already shown.
"""

from __future__ import annotations

import contextlib
import queue
import random
import socket
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

QUEUE_LINES = 10_000
_DONE = object()


@dataclass(frozen=True)
class LogOptions:
    container: str | None = None
    tail: int | None = None
    since_seconds: int | None = None
    timestamps: bool = False
    previous: bool = False
    follow: bool = False


class LogError(Exception):
    """A pod's log could not be read at all; the message names the pod and says why."""


def stream_logs(
    core: Any,
    namespace: str,
    pods: Sequence[str],
    options: LogOptions,
    stop: threading.Event | None = None,
    *,
    containers: Mapping[str, Sequence[str]] | None = None,
) -> Iterator[str]:
    """Lines of ``pods`` as they come, merged; ends when every stream has ended (or ``stop``).
    With ``containers`` (pod → its containers: ``--all-containers``) each container of a pod
    is a stream of its own, prefixed ``[pod/container]``; a pod with none listed is read as
    ``options`` say."""
    stop = stop or threading.Event()
    lines: queue.Queue[object] = queue.Queue(maxsize=QUEUE_LINES)
    listed: Mapping[str, Sequence[str | None]] = containers or {}
    streams = [
        (pod, container) for pod in pods for container in (listed.get(pod) or [options.container])
    ]
    readers = [
        _PodReader(
            core,
            namespace,
            pod,
            replace(options, container=container),
            lines,
            stop,
            prefix=_prefix(pod, container if containers else None) if len(streams) > 1 else "",
        )
        for pod, container in streams
    ]
    for reader in readers:
        reader.thread.start()
    running = len(readers)
    try:
        while running and not stop.is_set():
            try:
                item = lines.get(timeout=0.5)
            except queue.Empty:
                continue
            if item is _DONE:
                running -= 1
            elif isinstance(item, LogError):
                raise item
            else:
                yield str(item)
    finally:
        stop.set()
        for reader in readers:
            reader.interrupt()


def _prefix(pod: str, container: str | None) -> str:
    return f"[{pod}/{container}] " if container else f"[{pod}] "


class _PodReader:
    def __init__(
        self,
        core: Any,
        namespace: str,
        pod: str,
        options: LogOptions,
        sink: queue.Queue[object],
        stop: threading.Event,
        prefix: str,
    ) -> None:
        self.core, self.namespace, self.pod, self.options = core, namespace, pod, options
        self.sink, self.stop, self.prefix = sink, stop, prefix
        self.response: Any = None
        self.thread = threading.Thread(target=self.run, name=f"logs-{pod}", daemon=True)

    def _put(self, item: object) -> bool:
        while not self.stop.is_set():
            try:
                self.sink.put(item, timeout=0.5)  # blocks while the reader is behind
                return True
            except queue.Full:
                continue
        return False

    def run(self) -> None:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        last_seen: str | None = None  # the last line's timestamp, to resume without repeats
        delay, first = 0.5, True
        try:
            while not self.stop.is_set():
                try:
                    last_seen = self._read_once(last_seen, first)
                    if not self.options.follow:
                        return
                    first = False
                except ApiException as exc:
                    if first or exc.status in (400, 404):  # no such pod/container: say so, once
                        if first:
                            from console.backends.kubernetes.actions import api_error

                            self._put(
                                LogError(f"logs of {self.namespace}/{self.pod}: {api_error(exc)}")
                            )
                        return
                except (HTTPError, OSError, ValueError):
                    if self.stop.is_set() or not self.options.follow:
                        return
                if not self._pod_alive():
                    return
                time.sleep(delay + random.uniform(0, delay))  # the stream broke: back off
                delay = min(delay * 2, 10.0)
        finally:
            self._put(_DONE)

    def _read_once(self, last_seen: str | None, first: bool) -> str | None:
        options = self.options
        since = options.since_seconds
        if last_seen is not None:
            seen = datetime.fromisoformat(last_seen.replace("Z", "+00:00"))
            since = max(1, int((datetime.now(UTC) - seen).total_seconds()) + 1)
        self.response = self.core.read_namespaced_pod_log(
            self.pod,
            self.namespace,
            container=options.container,
            follow=options.follow,
            tail_lines=options.tail if first else None,
            since_seconds=since,
            timestamps=True,
            previous=options.previous,
            _preload_content=False,
        )
        resumed_after = last_seen  # lines up to here were shown before the stream broke
        buffer = b""
        for chunk in self.response.stream(8192):
            buffer += chunk
            *complete, buffer = buffer.split(b"\n")
            for raw in complete:
                last_seen, delivered = self._emit(raw, last_seen, resumed_after)
                if not delivered:
                    return last_seen
        if buffer:  # the last line of a finished stream may lack its newline
            last_seen, _ = self._emit(buffer, last_seen, resumed_after)
        return last_seen

    def _emit(
        self, raw: bytes, last_seen: str | None, resumed_after: str | None
    ) -> tuple[str | None, bool]:
        """Queue one line (unless shown before a resume); False when stopped."""
        stamp, _, text = raw.decode(errors="replace").partition(" ")
        if resumed_after is not None and stamp <= resumed_after:
            return last_seen, True
        shown = f"{stamp} {text}" if self.options.timestamps else text
        return stamp, self._put(self.prefix + shown)

    def _pod_alive(self) -> bool:
        try:
            pod = self.core.read_namespaced_pod(self.pod, self.namespace)
        except Exception:
            return False
        return pod.status.phase in ("Pending", "Running")

    def interrupt(self) -> None:
        """Make a blocked read return (closing it from here would deadlock on its lock)."""
        response = self.response
        sock = getattr(getattr(response, "connection", None), "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
