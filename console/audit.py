"""The audit log: one JSON line per mutation in ``${XDG_STATE_HOME:-~/.local/state}/fleetdeck``.

A line is written with a single ``os.write`` on an ``O_APPEND`` descriptor while holding an
exclusive ``flock``: the kernel places each append at the end of the file, the lock keeps a long
line from interleaving with another process's, and a crash can at worst cut the last line short.
A writer that finds such a torn tail starts on a fresh line so the damage stays in one line, and
the reader skips lines that do not parse.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from console import paths

__all__ = [
    "AuditContext",
    "AuditEntry",
    "TargetResult",
    "append_audit",
    "audit_path",
    "current_user",
    "format_entry",
    "kube_context_user",
    "parse_since",
    "read_audit",
    "record",
]


@dataclass(frozen=True)
class TargetResult:
    target: str  # "namespace/name" for Kubernetes objects, the name for the local backend
    ok: bool
    message: str = ""


@dataclass(frozen=True)
class AuditEntry:
    time: datetime  # timezone-aware, UTC
    user: str
    profile: str
    context: str | None  # the kube context; None for the local backend
    action: str  # "deploy", "rollout", "rollback", "scale", ...
    targets: tuple[str, ...]
    parameters: Mapping[str, object] = field(default_factory=dict)
    dry_run: bool = False
    results: tuple[TargetResult, ...] = ()
    cluster: str | None = None  # the profile's cluster acted on, when it names several

    def to_json(self) -> dict[str, object]:
        """The stable JSON form of one line (also what ``fleetdeck audit --json`` prints)."""
        return {
            "time": self.time.astimezone(UTC).isoformat(timespec="milliseconds"),
            "user": self.user,
            "profile": self.profile,
            **({"cluster": self.cluster} if self.cluster else {}),
            "context": self.context,
            "action": self.action,
            "targets": list(self.targets),
            "parameters": dict(self.parameters),
            "dry_run": self.dry_run,
            "results": [
                {"target": r.target, "ok": r.ok, "message": r.message} for r in self.results
            ],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> AuditEntry:
        """Parse one line's object; raises ValueError, TypeError or KeyError if malformed."""
        time = datetime.fromisoformat(_str(data["time"]))
        if time.tzinfo is None:
            raise ValueError("time without a timezone")
        context = data.get("context")
        cluster = data.get("cluster")
        parameters = data.get("parameters") or {}
        results = data.get("results") or []
        if not isinstance(parameters, dict) or not isinstance(results, list):
            raise TypeError("parameters must be an object and results an array")
        return cls(
            time=time,
            user=_str(data["user"]),
            profile=_str(data["profile"]),
            context=None if context is None else _str(context),
            cluster=None if cluster is None else _str(cluster),
            action=_str(data["action"]),
            targets=tuple(_str(t) for t in _list(data["targets"])),
            parameters=parameters,
            dry_run=bool(data.get("dry_run", False)),
            results=tuple(
                TargetResult(_str(r["target"]), bool(r["ok"]), _str(r.get("message", "")))
                for r in results
                if isinstance(r, dict)
            ),
        )


def _str(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _list(value: object) -> list[object]:
    if not isinstance(value, list):
        raise TypeError(f"expected an array, got {type(value).__name__}")
    return value


def audit_path() -> Path:
    return paths.state_home() / "audit.jsonl"


def current_user(kube_user: str | None = None) -> str:
    """The kube context's user when there is one (who the cluster sees), else the OS user."""
    if kube_user:
        return kube_user
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers): the uid still identifies
        return f"uid:{os.getuid()}"


def kube_context_user(kubeconfig: Path, context: str | None) -> str | None:
    """The ``user`` of ``context`` (default: the current context) in ``kubeconfig``, or None."""
    import yaml  # the console extra; imported here so the local backend never needs it

    try:
        config = yaml.safe_load(kubeconfig.read_text())
    except (OSError, yaml.YAMLError):
        return None
    if not isinstance(config, dict):
        return None
    name = context or config.get("current-context")
    for item in config.get("contexts") or []:
        if isinstance(item, dict) and item.get("name") == name:
            user = (item.get("context") or {}).get("user")
            return user if isinstance(user, str) and user else None
    return None


def append_audit(entry: AuditEntry, path: Path | None = None) -> None:
    """Append ``entry`` as one whole line that no other process's line can interleave with."""
    path = audit_path() if path is None else path
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # JSON escapes control characters: the line holds no raw newline whatever the parameters hold.
    line = json.dumps(entry.to_json(), separators=(",", ":"), default=str) + "\n"
    data = line.encode()
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        # Read-write only to peek at the last byte; O_APPEND still puts every write at the end.
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            # An earlier writer died mid-line: end its fragment so ours stays parseable.
            data = b"\n" + data
        written = os.write(fd, data)
        if written != len(data):  # only on a full disk; never leave a silent half line
            raise OSError(f"audit log: wrote {written} of {len(data)} bytes to {path}")
        os.fsync(fd)
    finally:
        os.close(fd)  # also releases the lock


def record(
    action: str,
    targets: Iterable[str],
    *,
    profile: str,
    context: str | None,
    results: Iterable[TargetResult],
    parameters: Mapping[str, object] | None = None,
    dry_run: bool = False,
    user: str | None = None,
    path: Path | None = None,
    now: datetime | None = None,
    cluster: str | None = None,
) -> AuditEntry:
    """Build the entry for a finished mutation (``user``: the kube user if known) and append it."""
    entry = AuditEntry(
        time=now or datetime.now(UTC),
        user=current_user(user),
        profile=profile,
        context=context,
        action=action,
        targets=tuple(targets),
        parameters=dict(parameters or {}),
        dry_run=dry_run,
        results=tuple(results),
        cluster=cluster,
    )
    append_audit(entry, path)
    return entry


@dataclass(frozen=True)
class AuditContext:
    """Who acts where: what every line of one session (or one batch) says besides the action.
    ``extra`` goes into every line's parameters (a batch's id)."""

    profile: str
    context: str | None  # the kube context; None for the local runtime
    user: str
    path: Path | None = None  # None: the default audit log (XDG state folder)
    extra: Mapping[str, object] = field(default_factory=dict)
    cluster: str | None = None  # the profile's cluster, when the profile names several

    def write(
        self,
        action: str,
        targets: Iterable[str],
        results: Iterable[TargetResult],
        parameters: Mapping[str, object],
        *,
        dry_run: bool = False,
    ) -> AuditEntry:
        """Append one line; raises OSError when it cannot be written."""
        return record(
            action,
            targets,
            profile=self.profile,
            context=self.context,
            results=results,
            parameters={**parameters, **self.extra},
            dry_run=dry_run,
            user=self.user or None,
            path=self.path,
            cluster=self.cluster,
        )


def read_audit(
    since: timedelta | None = None, *, path: Path | None = None, now: datetime | None = None
) -> list[AuditEntry]:
    """Entries oldest first, those newer than ``now - since`` when ``since`` is given.

    Lines that do not parse (a torn tail after a crash or power loss) are skipped: one lost
    line must not make the whole log unreadable.
    """
    path = audit_path() if path is None else path
    cutoff = None if since is None else (now or datetime.now(UTC)) - since
    entries: list[AuditEntry] = []
    with contextlib.suppress(FileNotFoundError), path.open("rb") as handle:
        for raw in handle:
            try:
                data = json.loads(raw)
                entry = AuditEntry.from_json(data)
            except (ValueError, TypeError, KeyError, AttributeError):
                continue
            if cutoff is None or entry.time >= cutoff:
                entries.append(entry)
    return entries


_SINCE = re.compile(r"(\d+)([smhd])")
_UNIT = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_since(text: str) -> timedelta:
    """``"30s"``, ``"10m"``, ``"1h"``, ``"2d"`` or combinations such as ``"1h30m"``."""
    compact = text.strip().lower()
    parts = _SINCE.findall(compact)
    if not compact or "".join(n + u for n, u in parts) != compact:
        raise ValueError(f"expected a duration such as 30s, 10m, 1h or 2d, got {text!r}")
    total = timedelta()
    for number, unit in parts:
        total += timedelta(**{_UNIT[unit]: int(number)})
    return total


def format_entry(entry: AuditEntry) -> str:
    """One human line: time, user, action, targets and outcome."""
    failed = [r.target for r in entry.results if not r.ok]
    outcome = f"{len(failed)} failed: {', '.join(failed)}" if failed else "ok"
    if not entry.results:
        outcome = "no result"
    when = entry.time.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    dry = " (dry run)" if entry.dry_run else ""
    where = f"{entry.profile}/{entry.context}" if entry.context else entry.profile
    if entry.cluster:
        where += f" (cluster {entry.cluster})"
    targets = ", ".join(entry.targets)
    return f"{when}  {entry.user}@{where}  {entry.action}{dry}  {targets}  {outcome}"
