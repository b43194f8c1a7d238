"""The timeline: every source of changes joined into one list, newest first (pure; the reads
are in :mod:`console.changes.sources`).

- A deployment's revisions say what its template went through, fleetdeck's or not
  (``RevisionInfo.via_fleetdeck``): kubectl's changes appear only there.
- The audit log says who did what through fleetdeck, with the state before (so a scale or a
  pause can be undone), and which batch a line belongs to. A revision fleetdeck made and its
  audit line are one change.
- A batch journal is one change over all its targets; its revisions and audit lines fold into it.
- The store's versions are "published" changes; warning events are changes nobody made.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from console.audit import AuditEntry, TargetResult
from console.batch.journal import BatchState, Replay, TargetRecord
from console.batch.runner import ActionSpec
from console.changes.model import Affected, Change, Key, Kind, change_id
from console.model import EventInfo, RevisionInfo
from console.profile import DEFAULT_CLUSTER

# An audit line and the revision it made are one change when this close (the stamp is taken
# before the request, the line written after the answer).
MATCH_WITHIN = timedelta(seconds=60)
# Lines of one command over several deployments (``rollout a b c``) are one change.
GROUP_WITHIN = timedelta(seconds=5)

REVISION_ACTIONS = {"deploy", "rollout", "rollback", "restart"}
_KINDS = {kind.value: kind for kind in Kind}  # a dict: Kind(value) costs ~8 µs a call


def _millis(when: datetime) -> int:
    """A time in an id: whole milliseconds since the epoch (cheaper than ISO text)."""
    return int(when.timestamp() * 1000)


_CAUSE = re.compile(r"^(?P<what>.*) by (?P<who>.+) via fleetdeck$")


@dataclass(frozen=True)
class ClusterFacts:
    """What one cluster's backend says: revisions and warning events of its deployments."""

    cluster: str
    histories: Mapping[Key, Sequence[RevisionInfo]]
    warnings: Sequence[tuple[Key, EventInfo]] = ()


@dataclass(frozen=True)
class Published:
    """A model version in the store."""

    model: str
    version: int
    created: datetime
    by: str = ""  # the training job that made it, when the manifest says


@dataclass(frozen=True)
class Sources:
    clusters: Sequence[ClusterFacts]
    audit: Sequence[AuditEntry] = ()
    batches: Sequence[Replay] = ()
    published: Sequence[Published] = ()
    profile: str = ""  # audit lines and journals of other profiles are not this fleet's
    # On a profile of one cluster, its name (its facts are named "", as its rows are); ""
    # when the session spans several, each named.
    only_cluster: str = ""
    # Each cluster's kube context as its audit lines and journals name it (by the facts' name;
    # None for the local runtime): a line written on another context is another fleet's.
    contexts: Mapping[str, str | None] = field(default_factory=dict)


@dataclass
class _Built:
    """One deployment's revision changes, and what they were made from."""

    revisions: Sequence[RevisionInfo]
    lines: tuple[AuditEntry, ...]  # the audit lines its revisions could be joined to
    # Which of them other deployments had joined before it (one line can name several).
    taken: tuple[bool, ...]
    changes: list[Change]
    claimed: list[AuditEntry]  # the lines joined to them


@dataclass
class TimelineMemo:
    """What one timeline keeps for the next: each deployment's revision changes (made again
    only when its revisions or its audit lines changed) and each audit line's change. A
    rebuild after one rollout among 5,000 deployments then makes one deployment's changes,
    not 50,000 (only the joining, grouping and sorting run over all)."""

    deployments: dict[tuple[str, Key], _Built] = field(default_factory=dict)
    # By the line's identity (the audit follower keeps its lines): the line, kept alive so
    # its id is not re-used, and its change.
    lines: dict[int, tuple[AuditEntry, Change]] = field(default_factory=dict)


def timeline(sources: Sources, memo: TimelineMemo | None = None) -> list[Change]:
    """Every change, newest first; with ``memo``, what did not change since the last call
    with it is not made again."""
    audit = _AuditIndex([e for e in sources.audit if _ours(e, sources)], sources)
    batches = {b.id: b for b in sources.batches if _our_batch(b, sources)}
    changes: list[Change] = []
    kept: dict[tuple[str, Key], _Built] = {}
    for facts in sources.clusters:
        named = facts.cluster or sources.only_cluster  # ids name the real cluster
        for key, revisions in facts.histories.items():
            lines = audit.lines_of(facts.cluster, key)
            taken = audit.taken(lines)
            built = memo.deployments.get((facts.cluster, key)) if memo is not None else None
            if (
                built is not None
                and built.taken == taken
                and _identical(built.lines, lines)
                and _same(built.revisions, revisions)
            ):
                audit.claim(built.claimed)
            else:
                claimed: list[AuditEntry] = []
                made = _revision_changes(facts.cluster, named, key, revisions, audit, claimed)
                built = _Built(revisions, lines, taken, made, claimed)
            kept[(facts.cluster, key)] = built
            changes.extend(built.changes)
    if memo is not None:
        memo.deployments = kept
    changes.extend(_audit_changes(audit, sources, memo))
    for facts in sources.clusters:
        changes.extend(_warnings(facts.cluster, facts.warnings))
    changes.extend(_published(p) for p in sources.published)
    changes = _fold_batches(changes, batches, sources)
    changes = _grouped(changes)  # oldest first
    changes.reverse()
    return changes


def _same(kept: Sequence[RevisionInfo], now: Sequence[RevisionInfo]) -> bool:
    """The backend's cache answers the same list while a deployment is unchanged."""
    return kept is now or kept == now


def _identical(kept: Sequence[AuditEntry], now: Sequence[AuditEntry]) -> bool:
    """The very line objects (the audit follower keeps them): a log read again from its start
    makes equal but new ones, which the index does not know."""
    return len(kept) == len(now) and all(a is b for a, b in zip(kept, now, strict=True))


def _ours(entry: AuditEntry, sources: Sources) -> bool:
    if entry.dry_run or not any(_changed(r) for r in entry.results):
        return False  # an attempt that changed nothing is no change
    if sources.profile and entry.profile != sources.profile:
        return False
    cluster = entry.cluster or DEFAULT_CLUSTER  # a cluster named so writes no name
    if sources.only_cluster:
        if cluster not in (DEFAULT_CLUSTER, sources.only_cluster):
            return False
    elif cluster not in {f.cluster for f in sources.clusters}:
        return False
    return _same_context(entry.context, _cluster_of(entry, sources), sources)


def _changed(result: TargetResult) -> bool:
    return result.ok and not result.message.startswith("skipped")


def _same_context(context: object, cluster: str, sources: Sources) -> bool:
    """A line or journal of this cluster's kube context (another context is another fleet,
    whatever the profile's name)."""
    if cluster not in sources.contexts:
        return True  # not told: the caller does not know its context
    return context == sources.contexts[cluster]


def _our_batch(state: Replay, sources: Sources) -> bool:
    if state.meta.get("profile") not in (None, sources.profile):
        return False
    cluster = "" if sources.only_cluster else (state.plan.cluster or DEFAULT_CLUSTER)
    if not sources.only_cluster and cluster not in {f.cluster for f in sources.clusters}:
        return False
    return _same_context(state.meta.get("context"), cluster, sources)


def _cluster_of(entry: AuditEntry, sources: Sources) -> str:
    """The cluster's name as the facts have it: "" on a profile of one cluster."""
    return "" if sources.only_cluster else entry.cluster or DEFAULT_CLUSTER


# -- revisions ------------------------------------------------------------------------------------
def _revision_changes(
    cluster: str,
    named: str,
    key: Key,
    revisions: Sequence[RevisionInfo],
    audit: _AuditIndex,
    claimed: list[AuditEntry],
) -> list[Change]:
    ordered = sorted(revisions, key=lambda r: r.number)
    last: datetime | None = None
    made = []
    for index, revision in enumerate(ordered):
        if revision.created is None:
            continue
        earlier = ordered[index - 1] if index else None
        change = _revision_change(cluster, named, key, revision, earlier, audit, claimed)
        # A revision is never older than the one before it: Kubernetes dates another client's
        # to the whole second, fleetdeck's own to the millisecond.
        if last is not None and change.time <= last:
            change = replace(change, time=last + timedelta(microseconds=1))
        last = change.time
        made.append(change)
    return made


def _revision_change(
    cluster: str,
    named: str,
    key: Key,
    revision: RevisionInfo,
    earlier: RevisionInfo | None,
    audit: _AuditIndex,
    claimed: list[AuditEntry],
) -> Change:
    assert revision.created is not None
    cause = _CAUSE.match(revision.change_cause) if revision.via_fleetdeck else None
    what = cause["what"] if cause else ""
    action = what.split(" ", 1)[0] if what else ""
    entry = (
        audit.matching(cluster, key, action, revision.created)
        if action in REVISION_ACTIONS
        else None
    )
    if entry is not None:
        claimed.append(entry)
    if revision.via_fleetdeck and action in REVISION_ACTIONS:
        kind = _KINDS[action]
    elif earlier is None and revision.number == 1:
        kind = Kind.DEPLOY
    else:
        kind = Kind.EDIT
    if entry is not None and entry.parameters.get("undoes"):
        kind = Kind.UNDO
    after = _state(revision)
    if kind is Kind.DEPLOY and earlier is None:
        # Undone by deleting it: only what fleetdeck created and this audit log says so.
        ours = revision.number == 1 and entry is not None and entry.action == "deploy"
        affected = Affected(
            cluster,
            *key,
            before="(none)",
            after=after,
            undo=ActionSpec("delete") if ours else None,
            expect_revision=revision.number,
            why_not="" if ours else "not created through fleetdeck here: delete it by hand",
        )
    elif kind is Kind.RESTART:
        affected = Affected(
            cluster,
            *key,
            before=_state(earlier) if earlier else "",
            after=after,
            expect_revision=revision.number,
            why_not="a restart changed no version or setting: nothing to undo",
        )
    elif earlier is None:
        affected = Affected(
            cluster,
            *key,
            after=after,
            expect_revision=revision.number,
            why_not="the revision before it is no longer in the deployment's history",
        )
    else:
        affected = Affected(
            cluster,
            *key,
            before=_state(earlier),
            after=after,
            undo=ActionSpec("rollback", to_revision=earlier.number),
            expect_revision=revision.number,
        )
    if not what:
        what = "created" if kind is Kind.DEPLOY else "new revision"
        if earlier is not None and earlier.images != revision.images:
            what += f": image {', '.join(revision.images)}"
    parameters = entry.parameters if entry is not None else {}
    return Change(
        # The real cluster's name, and no estimated time: the same id in every view.
        id=change_id(
            "rev",
            named,
            *key,
            revision.number,
            revision.change_cause if revision.approximate else _millis(revision.created),
        ),
        time=entry.time if entry is not None else revision.created,
        kind=kind,
        who=entry.user if entry is not None else (cause["who"] if cause else ""),
        via_fleetdeck=revision.via_fleetdeck,
        what=what,
        affected=(affected,),
        cluster=cluster,
        approximate=revision.approximate and entry is None,
        batch=str(parameters.get("batch") or ""),
        undoes=str(parameters.get("undoes") or ""),
    )


def _state(revision: RevisionInfo) -> str:
    model = f"{revision.model} v{revision.model_version}" if revision.model else ""
    return f"{model} (rev {revision.number})".strip()


class _AuditIndex:
    """This fleet's audit lines, indexed by (cluster, action, target): a revision finds the
    line of the change that made it without a scan of the whole log."""

    def __init__(self, entries: list[AuditEntry], sources: Sources) -> None:
        self.entries = entries
        self.used: set[int] = set()
        self._by: dict[tuple[str, str, str], list[int]] = {}
        self._index = {id(entry): index for index, entry in enumerate(entries)}
        # Each deployment's lines of the actions that make revisions (what its revisions
        # can be joined to), in the log's order.
        self._of: dict[tuple[str, str], list[AuditEntry]] = {}
        for index, entry in enumerate(entries):
            cluster = _cluster_of(entry, sources)
            joinable = entry.action in REVISION_ACTIONS
            for target in entry.targets:
                self._by.setdefault((cluster, entry.action, target), []).append(index)
                if joinable:
                    self._of.setdefault((cluster, target), []).append(entry)

    def lines_of(self, cluster: str, key: Key) -> tuple[AuditEntry, ...]:
        return tuple(self._of.get((cluster, f"{key[0]}/{key[1]}"), ()))

    def taken(self, entries: Sequence[AuditEntry]) -> tuple[bool, ...]:
        return tuple(self._index[id(entry)] in self.used for entry in entries)

    def claim(self, entries: Iterable[AuditEntry]) -> None:
        """Lines joined to revisions in an earlier build: not changes of their own."""
        for entry in entries:
            self.used.add(self._index[id(entry)])

    def matching(self, cluster: str, key: Key, action: str, when: datetime) -> AuditEntry | None:
        """The line of ``action`` on the deployment closest to ``when`` (within
        :data:`MATCH_WITHIN`), not yet taken by another revision."""
        best: tuple[timedelta, int] | None = None
        for index in self._by.get((cluster, action, f"{key[0]}/{key[1]}"), ()):
            if index in self.used:
                continue
            gap = abs(self.entries[index].time - when)
            if gap <= MATCH_WITHIN and (best is None or gap < best[0]):
                best = (gap, index)
        if best is None:
            return None
        self.used.add(best[1])
        return self.entries[best[1]]


# -- the audit log --------------------------------------------------------------------------------
def _audit_changes(
    audit: _AuditIndex, sources: Sources, memo: TimelineMemo | None
) -> Iterable[Change]:
    kept = memo.lines if memo is not None else {}
    made: dict[int, tuple[AuditEntry, Change]] = {}
    for index, entry in enumerate(audit.entries):
        if index in audit.used:
            continue
        cluster = _cluster_of(entry, sources)
        old = kept.get(id(entry))
        if old is not None and old[0] is entry and old[1].cluster == cluster:
            change = old[1]
        else:
            change = _audit_change(entry, cluster)
        made[id(entry)] = (entry, change)
        yield change
    if memo is not None:
        memo.lines = made


def _audit_change(entry: AuditEntry, cluster: str) -> Change:
    kind = _KINDS.get(entry.action, Kind.EDIT)
    if entry.parameters.get("undoes"):
        kind = Kind.UNDO
    ok = [r.target for r in entry.results if _changed(r)]
    before = entry.parameters.get("before")
    before = before if isinstance(before, dict) else {}
    affected: tuple[Affected, ...] = ()
    if entry.action in ("scale", "pause", "resume", "delete", *REVISION_ACTIONS):
        affected = tuple(_audited(entry, cluster, target, before) for target in ok)
    return Change(
        id=change_id("audit", _millis(entry.time), entry.action, *entry.targets),
        time=entry.time,
        kind=kind,
        who=entry.user,
        via_fleetdeck=True,
        what=_audit_what(entry),
        affected=affected,
        cluster=cluster,
        batch=str(entry.parameters.get("batch") or ""),
        undoes=str(entry.parameters.get("undoes") or ""),
        why_not="" if affected else f"a {entry.action} is not undone from here",
    )


def _audited(
    entry: AuditEntry, cluster: str, target: str, before: Mapping[str, object]
) -> Affected:
    namespace, _, name = target.rpartition("/")
    replicas = _count(before.get("replicas"))
    paused = before.get("paused")
    now = _count(entry.parameters.get("replicas"))
    if entry.action == "scale" and replicas is not None and now is not None:
        return Affected(
            cluster,
            namespace,
            name,
            before=f"{replicas} replicas",
            after=f"{now} replicas",
            undo=ActionSpec("scale", replicas=replicas),
            expect_replicas=now,
        )
    if entry.action in ("pause", "resume") and isinstance(paused, bool):
        was = "paused" if paused else "running"
        undo = (
            None
            if paused == (entry.action == "pause")
            else ActionSpec("pause" if paused else "resume")
        )
        return Affected(
            cluster,
            namespace,
            name,
            before=was,
            after="paused" if entry.action == "pause" else "running",
            undo=undo,
            expect_paused=entry.action == "pause",
            why_not="" if undo else f"it was already {was}",
        )
    if entry.action == "delete":
        why = "a deleted Deployment cannot be rolled back; deploy it again (fleetdeck deploy)"
    elif entry.action in REVISION_ACTIONS:
        why = "the revision it made is no longer in the deployment's history"
    else:
        why = "what it was before is not in the audit line (written by an older fleetdeck)"
    return Affected(cluster, namespace, name, why_not=why)


def _count(value: object) -> int | None:
    """A replica count from an audit line (a line is data anyone's fleetdeck wrote: a bool,
    a negative or a string is not one)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def _audit_what(entry: AuditEntry) -> str:
    """What the line did, without the deployments (the change's targets say which)."""
    p = entry.parameters
    if entry.action == "scale":
        return f"scale to {p.get('replicas')}"
    if entry.action == "rollout":
        return f"rollout to v{p.get('version')}"
    if entry.action == "rollback":
        return f"rollback to revision {p.get('to_revision') or 'previous'}"
    if entry.action in ("deploy", "score"):
        return f"{entry.action} {p.get('model')} v{p.get('version')}"
    if entry.action in ("train", "cancel", "autoscale"):
        jobs = ", ".join(t.rpartition("/")[2] for t in entry.targets)
        return f"{entry.action} {jobs}"
    return entry.action


# -- batches --------------------------------------------------------------------------------------
def _fold_batches(
    changes: list[Change], batches: Mapping[str, Replay], sources: Sources
) -> list[Change]:
    """A batch's own revisions and audit lines become its one change."""
    members: dict[str, list[Change]] = {}
    rest: list[Change] = []
    for change in changes:
        if change.batch and change.batch in batches:
            members.setdefault(change.batch, []).append(change)
        else:
            rest.append(change)
    for batch_id, state in batches.items():
        rest.append(_batch_change(state, members.get(batch_id, []), sources))
    return rest


def _batch_change(state: Replay, members: Sequence[Change], sources: Sources) -> Change:
    meta = state.meta
    cluster = "" if sources.only_cluster else (state.plan.cluster or DEFAULT_CLUSTER)
    made = {a.key: a for m in members for a in m.affected}
    abortable = state.state in (BatchState.RUNNING, BatchState.HALTED)
    affected = []
    for target in state.plan.targets:
        record = state.targets.get(target) or TargetRecord()
        member = made.get(target)
        before = member.before if member else ""
        if not before and record.revision is not None:
            before = f"rev {record.revision}"
        # A finished batch is undone target by target, each as its own revision says.
        own = member if member is not None and not abortable else None
        affected.append(
            Affected(
                cluster,
                *target,
                before=before,
                after=member.after if member else record.step.value,
                undo=own.undo if own else None,
                expect_revision=own.expect_revision if own else None,
                why_not=(own.why_not if own else "") or "the batch never changed it",
            )
        )
    when = _time(meta.get("created")) or min((m.time for m in members), default=None)
    why_not = ""
    if state.state is BatchState.ABORTED:
        why_not = "the batch was aborted already: what it changed was rolled back"
    outcome = state.state.value + (f": {state.reason}" if state.reason else "")
    return Change(
        id=change_id("batch", state.id),
        time=when or datetime.fromtimestamp(0).astimezone(),
        kind=Kind.BATCH,
        who=str(meta.get("user") or ""),
        via_fleetdeck=True,
        what=f"batch {state.id}: {state.plan.spec.describe()} in "
        f"{len(state.plan.waves)} waves, {outcome}",
        affected=tuple(affected),
        cluster=cluster,
        batch=state.id,
        why_not=why_not,
        abortable=abortable,
        members=tuple(m.id for m in members),
    )


def _time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.astimezone()


# -- the store and the events ---------------------------------------------------------------------
def _published(version: Published) -> Change:
    return Change(
        id=change_id("publish", version.model, version.version),
        time=version.created,
        kind=Kind.PUBLISH,
        who=version.by,
        via_fleetdeck=True,
        what=f"{version.model} v{version.version} published to the store",
        why_not="a published version is not undone: roll back the deployments that use it",
    )


def _warnings(cluster: str, warnings: Sequence[tuple[Key, EventInfo]]) -> Iterable[Change]:
    for key, event in warnings:
        if event.time is None:
            continue
        count = f" (x{event.count})" if event.count > 1 else ""
        yield Change(
            id=change_id("warning", cluster, *key, event.object, event.reason),
            time=event.time,
            kind=Kind.WARNING,
            who="",
            via_fleetdeck=False,
            what=f"{event.reason}: {event.object}: {event.message}{count}",
            affected=(Affected(cluster, *key),),
            cluster=cluster,
            why_not="a warning is what happened, not a change to undo",
        )


# -- one command over several deployments ---------------------------------------------------------
_UNGROUPED = frozenset({Kind.BATCH, Kind.WARNING, Kind.PUBLISH})


def _order(change: Change) -> tuple[datetime, str]:
    return (change.time, change.id)


def _grouped(changes: list[Change]) -> list[Change]:
    """Changes of one command (same kind, who and words, within seconds) as one; oldest
    first."""
    out: list[Change] = []
    parts: dict[int, list[Change]] = {}  # a group's first change (its index in out): the rest
    open_groups: dict[tuple[Kind, str, str, str, str], int] = {}
    for change in sorted(changes, key=_order):
        if change.kind in _UNGROUPED or not change.affected:
            out.append(change)
            continue
        key = (change.kind, change.who, change.cluster, change.what, change.undoes)
        at = open_groups.get(key)
        if at is not None and change.time - out[at].time <= GROUP_WITHIN:
            parts.setdefault(at, []).append(change)
            continue
        open_groups[key] = len(out)
        out.append(change)
    for at, rest in parts.items():  # each group built once: a command over 500 is no 500²
        first = out[at]
        out[at] = replace(
            first,
            affected=first.affected + tuple(a for c in rest for a in c.affected),
            members=(first.id, *(c.id for c in rest)),
        )
    return out


def latest_on(changes: Sequence[Change], cluster: str, key: Key) -> Change | None:
    """The most recent change made to one deployment (warnings are not changes made)."""
    for change in changes:  # newest first
        if change.kind is Kind.WARNING:
            continue
        if any(a.cluster == cluster and a.key == key for a in change.affected):
            return change
    return None
