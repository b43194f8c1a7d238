"""Reading what the timeline joins: each cluster's revisions and warnings (from the backends'
caches), the audit log (read on from where the last read stopped), the batch journals and the
store's versions (each manifest read once: a published version never changes).

Blocking: the deck calls these from a worker, the CLI once.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from console.audit import AuditEntry, audit_path
from console.backends.base import Backend, error_line
from console.batch.journal import JournalError, Replay, batches_dir, list_journals
from console.changes.model import Change
from console.changes.timeline import ClusterFacts, Published, Sources, TimelineMemo, timeline
from serving.filesystems import StoreError

if TYPE_CHECKING:
    from serving.store import ModelStore


def cluster_facts(cluster: str, backend: Backend) -> ClusterFacts:
    return ClusterFacts(cluster, backend.histories(), backend.warnings())


class AuditFollower:
    """The audit log's entries, read on from the last offset at each call: a 50,000-line log
    is parsed once, then only what was appended."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or audit_path()
        self._offset = 0
        self._entries: list[AuditEntry] = []
        self._lock = threading.Lock()

    def entries(self) -> list[AuditEntry]:
        with self._lock:
            try:
                with self.path.open("rb") as handle:
                    if handle.seek(0, 2) < self._offset:  # rotated or cut: read it again
                        self._offset, self._entries = 0, []
                    handle.seek(self._offset)
                    data = handle.read()
            except FileNotFoundError:
                return list(self._entries)
            end = data.rfind(b"\n") + 1  # a line still being written waits for next time
            for raw in data[:end].splitlines():
                try:
                    self._entries.append(AuditEntry.from_json(json.loads(raw)))
                except (ValueError, TypeError, KeyError, AttributeError):
                    continue  # a torn line (a crash mid-write) is skipped, as read_audit does
            self._offset += end
            return list(self._entries)


def read_batches(folder: Path | None = None) -> list[Replay]:
    """Every batch journal that can be read (one that cannot is left out)."""
    found = []
    for journal in list_journals(folder):
        try:
            found.append(journal.replay())
        except (JournalError, OSError, ValueError, KeyError, TypeError):
            continue
    return found


@dataclass
class StoreVersions:
    """The store's published versions with their times; each manifest is read once."""

    root: str
    _known: dict[tuple[str, int], Published | None] = field(default_factory=dict)

    def read(self) -> list[Published]:
        """Raises ``StoreError`` when the store cannot be listed."""
        from serving.store import ModelStore  # numpy with it: not at the CLI's start-up

        store = ModelStore(self.root)
        found: list[Published] = []
        for model in store.models():
            for version in store.versions(model):
                key = (model, version)
                if key not in self._known:
                    self._known[key] = _published(store, model, version)
                published = self._known[key]
                if published is not None:
                    found.append(published)
        return found


def _published(store: ModelStore, model: str, version: int) -> Published | None:
    try:
        manifest = store.manifest(model, version)
    except (StoreError, OSError, ValueError):
        return None  # a version whose manifest does not read is not shown as published
    try:
        created = datetime.fromisoformat(manifest.created.replace("Z", "+00:00"))
    except ValueError:
        return None
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    job = manifest.training.get("job")
    return Published(model, version, created, str(job) if isinstance(job, str) else "")


@dataclass
class Reader:
    """Everything one timeline needs, read again at each call; problems are said, not raised:
    a cluster or the store that cannot be read leaves its changes out."""

    profile: str
    only_cluster: str
    store: StoreVersions | None
    audit: AuditFollower = field(default_factory=AuditFollower)
    batches_folder: Path | None = None
    # Each cluster's kube context as its audit lines name it (by the facts' cluster name).
    contexts: Mapping[str, str | None] = field(default_factory=dict)

    def read_one(self, cluster: str, backend: Backend, key: tuple[str, str]) -> Sources:
        """What one deployment's latest change needs: its revisions and the audit log (no
        store, no journals: a batch's own lines still say which batch)."""
        facts = ClusterFacts(cluster, {key: backend.history(*key)})
        return Sources(
            clusters=[facts],
            audit=self.audit.entries(),
            profile=self.profile,
            only_cluster=self.only_cluster,
            contexts=self.contexts,
        )

    def read(
        self, backends: Mapping[str, Backend], *, with_store: bool = True
    ) -> tuple[Sources, list[str]]:
        """``backends`` by cluster name; one named "" on a profile of one cluster. Without
        ``with_store`` the store is not read (no published versions)."""
        problems: list[str] = []
        clusters = []
        for cluster, backend in backends.items():
            try:
                clusters.append(cluster_facts(cluster, backend))
            except Exception as exc:  # a backend's read of its cache; said, not fatal
                problems.append(f"{cluster or 'cluster'}: {error_line(exc)}")
        published: list[Published] = []
        if self.store is not None and with_store:
            try:
                published = self.store.read()
            except (StoreError, OSError) as exc:
                problems.append(f"store {self.store.root}: {exc}")
        try:
            audit = self.audit.entries()
        except OSError as exc:
            audit = []
            problems.append(f"audit log {self.audit.path}: {exc}")
        sources = Sources(
            clusters=clusters,
            audit=audit,
            batches=read_batches(self.batches_folder),
            published=published,
            profile=self.profile,
            only_cluster=self.only_cluster,
            contexts=self.contexts,
        )
        return sources, problems


def journals_fingerprint(folder: Path | None = None) -> tuple[tuple[str, int, int], ...]:
    """Each journal's name, size and mtime: whether a batch was started or moved on."""
    folder = folder or batches_dir()
    try:
        found = []
        for entry in os.scandir(folder):
            if entry.name.endswith(".jsonl"):
                stat = entry.stat()
                found.append((entry.name, stat.st_size, stat.st_mtime_ns))
    except OSError:
        return ()
    return tuple(sorted(found))


class LiveTimeline:
    """The timeline kept between reads, for a screen that reads it again and again: it is
    rebuilt only when a source changed (a cluster said so through :meth:`changed`, the audit
    log grew, a journal was written, or the store is due: every ``store_every`` seconds).
    Otherwise a read costs a few ``stat`` calls; a rebuild makes again only the deployments
    and lines that changed (:class:`TimelineMemo`). One read at a time (the deck's warm-up
    and the screen's first read may meet): the second finds the first's work done."""

    def __init__(self, reader: Reader, *, store_every: float = 60.0) -> None:
        self.reader = reader
        self.store_every = store_every
        self.rebuilds = 0
        self.memo = TimelineMemo()
        self._lock = threading.Lock()
        self._dirty = True
        self._changes: list[Change] = []
        self._problems: list[str] = []
        self._seen: tuple[object, ...] = ()
        self._store_at = 0.0
        self._published: list[Published] = []
        self._store_problems: list[str] = []

    def changed(self) -> None:
        """A cluster's deployments changed (called from any thread)."""
        self._dirty = True

    def read(self, backends: Mapping[str, Backend]) -> tuple[list[Change], list[str]]:
        with self._lock:
            return self._read(backends)

    def _read(self, backends: Mapping[str, Backend]) -> tuple[list[Change], list[str]]:
        now = time.monotonic()
        store_due = self.reader.store is not None and now - self._store_at >= self.store_every
        try:
            audit_size = self.reader.audit.path.stat().st_size
        except OSError:
            audit_size = -1
        seen = (audit_size, journals_fingerprint(self.reader.batches_folder))
        if not (self._dirty or store_due or seen != self._seen):
            return self._changes, self._problems
        dirty, self._dirty = self._dirty, False  # a change while reading marks it again
        try:
            sources, problems = self.reader.read(backends, with_store=store_due)
            changes = timeline(
                sources if store_due else replace(sources, published=self._published),
                self.memo,
            )
        except BaseException:
            self._dirty = self._dirty or dirty  # read again next time
            raise
        self._seen = seen
        if store_due:
            self._store_at = now
            self._published = list(sources.published)
            self._store_problems = [p for p in problems if p.startswith("store ")]
        else:
            problems = [*problems, *self._store_problems]
        self._changes, self._problems = changes, problems
        self.rebuilds += 1
        return self._changes, self._problems
