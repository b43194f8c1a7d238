"""The Fleet table's rows as pure data: cells, filters, sort orders, marks and the cursor.

Nothing here imports Textual: the screen hands these functions the backend's deployments and
a metrics snapshot, and the table widget draws what they return. Each row carries its cells as
text and a lowercase haystack built once, so a filter keystroke over 5,000 rows is a list
comprehension and a sort is one ``list.sort`` with precomputed keys.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from console.model import DeploymentState, ModelDeployment
from console.selectors import SelectorError, parse_selector
from console.views.format import age, printable

Key = tuple[str, str]  # (namespace, name), as ModelDeployment.key: one cluster's metrics key
# A row's identity: (cluster, namespace, name). The cluster is "" in a one-cluster deck; with
# several, the same namespace/name in two clusters is two rows.
RowKey = tuple[str, str, str]


@dataclass(frozen=True)
class RowMetrics:
    """One deployment's serving metrics; None shows as ``-``."""

    rps: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    error_percent: float | None = None
    # Precomputed-table hits / key lookups; None (``-``): no table, or no lookups in the window.
    hit_ratio: float | None = None


MetricsSnapshot = Mapping[Key, RowMetrics]
NO_METRICS = RowMetrics()


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    max_width: int  # cells longer than this are cut with an ellipsis
    numeric: bool = False  # right-aligned


COLUMNS: tuple[Column, ...] = (
    Column("name", "NAME", 40),
    Column("cluster", "CLUSTER", 24),  # shown only when the deck spans several clusters
    Column("namespace", "NAMESPACE", 24),
    Column("model", "MODEL", 20),
    Column("version", "VER", 6, numeric=True),
    Column("ready", "READY", 9, numeric=True),
    Column("status", "STATUS", 40),
    Column("revision", "REV", 5, numeric=True),
    Column("age", "AGE", 5, numeric=True),
    Column("rps", "REQ/S", 8, numeric=True),
    Column("hit", "HIT%", 5, numeric=True),
    Column("p50", "P50", 8, numeric=True),
    Column("p99", "P99", 8, numeric=True),
    Column("errors", "ERR%", 6, numeric=True),
)
COLUMN_KEYS = tuple(c.key for c in COLUMNS)
SortValue = tuple[int, float, str]  # (missing last, number, text)


@dataclass(frozen=True, slots=True)
class FleetRow:
    key: RowKey  # a field, not a property, as sorts and lookups read it often
    deployment: ModelDeployment
    metrics: RowMetrics
    cells: tuple[str, ...]  # one per COLUMNS entry
    sort_values: tuple[SortValue, ...]  # one per COLUMNS entry
    haystack: str  # name, namespace, model, cluster (a line each), lowercase: what text searches
    stale: bool = False  # its cluster is not answering: the row is what was last seen

    @property
    def state(self) -> DeploymentState:
        return self.deployment.state


def status_text(d: ModelDeployment) -> str:
    """``Available``, or the state with its reason: ``Failed: ProgressDeadlineExceeded``;
    printable (a reason quotes what a predictor or a stored row said)."""
    return printable(f"{d.state.value}: {d.reason}") if d.reason else d.state.value


def _number(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _percent(ratio: float | None) -> str:
    return "-" if ratio is None else f"{100.0 * ratio:.0f}"


def _sortable_number(value: float | None) -> SortValue:
    return (1, 0.0, "") if value is None else (0, float(value), "")


def _sortable_text(text: str) -> SortValue:
    return (0 if text else 1, 0.0, text.lower())


def _version_value(version: str) -> SortValue:
    try:
        return (0, float(int(version)), version)
    except ValueError:
        return _sortable_text(version)


STALE_MARK = " (stale)"  # after the cluster's name: words, not only a colour (NO_COLOR)


def build_row(
    d: ModelDeployment, metrics: RowMetrics, now: datetime, *, stale: bool = False
) -> FleetRow:
    # Names come from a cluster or a stored row: a newline or an escape sequence in one is shown
    # escaped, never sent to the terminal (Textual strips only a few control codes).
    cells = (
        printable(d.name),
        printable(d.cluster) + (STALE_MARK if stale and d.cluster else ""),
        printable(d.namespace),
        printable(d.model) or "-",
        printable(d.version) or "-",
        f"{d.ready}/{d.desired}",
        status_text(d),
        "-" if d.revision is None else str(d.revision),
        age(d.created, now),
        _number(metrics.rps, 1),
        _percent(metrics.hit_ratio),
        _number(metrics.p50_ms, 1),
        _number(metrics.p99_ms, 1),
        _number(metrics.error_percent, 2),
    )
    created = d.created.timestamp() if d.created else None
    sort_values = (
        _sortable_text(d.name),
        _sortable_text(d.cluster),
        _sortable_text(d.namespace),
        _sortable_text(d.model),
        _version_value(d.version),
        # Fewest ready (relative to desired) first: the rows that need attention.
        (0, d.ready / d.desired if d.desired else 1.0, f"{d.desired:09d}"),
        (0, float(_STATE_ORDER[d.state]), d.reason.lower()),
        _sortable_number(d.revision),
        # Youngest first, as kubectl's AGE reads ascending.
        (1, 0.0, "") if created is None else (0, -created, ""),
        _sortable_number(metrics.rps),
        _sortable_number(metrics.hit_ratio),
        _sortable_number(metrics.p50_ms),
        _sortable_number(metrics.p99_ms),
        _sortable_number(metrics.error_percent),
    )
    # One line per field: a regex's ^ and $ anchor to a field (re.MULTILINE), not the whole.
    haystack = f"{d.name}\n{d.namespace}\n{d.model}\n{d.cluster}".lower()
    key = (d.cluster, d.namespace, d.name)
    return FleetRow(key, d, metrics, cells, sort_values, haystack, stale)


# Worst first when sorting by status ascending.
_STATE_ORDER = {
    DeploymentState.FAILED: 0,
    DeploymentState.DEGRADED: 1,
    DeploymentState.PROGRESSING: 2,
    DeploymentState.PAUSED: 3,
    DeploymentState.AVAILABLE: 4,
}


def build_rows(
    deployments: Iterable[ModelDeployment],
    metrics: MetricsSnapshot | None = None,
    now: datetime | None = None,
    *,
    stale: bool = False,
) -> list[FleetRow]:
    """One cluster's rows in (namespace, name) order, the order every sort starts from
    (``metrics``: that cluster's, by namespace and name; ``stale``: it is not answering)."""
    now = now or datetime.now(UTC)
    metrics = metrics or {}
    rows = [build_row(d, metrics.get(d.key, NO_METRICS), now, stale=stale) for d in deployments]
    rows.sort(key=lambda r: r.key)  # already sorted when the backend returns it so: ~free
    return rows


# -- filtering --------------------------------------------------------------------------------

_REGEX_CHARS = frozenset("^$*+?[](){}|\\.")
_FIELDS: Mapping[str, Callable[[ModelDeployment], str]] = {
    "name": lambda d: d.name,
    "namespace": lambda d: d.namespace,
    "cluster": lambda d: d.cluster,
    "model": lambda d: d.model,
    "version": lambda d: d.version,
    "status": lambda d: d.state.value,
}


@dataclass(frozen=True)
class RowFilter:
    """A parsed ``/`` filter; ``error`` says why part of it was read differently."""

    text: str
    test: Callable[[FleetRow], bool]
    error: str = ""

    @property
    def active(self) -> bool:
        return bool(self.text.strip())


def _labels_of(d: ModelDeployment) -> dict[str, str]:
    # Short names (model=, status=, ...) work too; a real label of the same name wins.
    return {name: read(d) for name, read in _FIELDS.items()} | dict(d.labels)


def _term_test(term: str) -> tuple[Callable[[FleetRow], bool], str]:
    if "=" in term or term.startswith("!"):
        try:
            matches = parse_selector(term)
        except SelectorError as exc:
            return (lambda row: False), str(exc)
        return (lambda row: matches(_labels_of(row.deployment))), ""
    needle = term.lower()
    if _REGEX_CHARS.intersection(term):
        try:
            pattern = re.compile(term, re.IGNORECASE | re.MULTILINE)
        except re.error as exc:
            error = f"not a regular expression ({exc}); matching it as text"
            return (lambda row: needle in row.haystack), error
        return (lambda row: pattern.search(row.haystack) is not None), ""
    return (lambda row: needle in row.haystack), ""


def parse_filter(text: str) -> RowFilter:
    """Whitespace-separated terms, all of which must match a row:

    - ``digits``: a substring of name, namespace or model (case-insensitive);
    - ``^dig.*-a$``: a regular expression (any term with regex characters) on the same;
    - ``app=web``, ``tier!=canary``, ``!legacy``, ``model=digits,status=Failed``: a label
      selector as ``kubectl -l`` takes it, where name, namespace, cluster, model, version and
      status also work as labels (``cluster=eu-west``, ``cluster!=canary``).
    """
    terms = text.split()
    if not terms:
        return RowFilter(text, lambda row: True)
    tests, errors = [], []
    for term in terms:
        test, error = _term_test(term)
        tests.append(test)
        if error:
            errors.append(error)
    if len(tests) == 1:
        return RowFilter(text, tests[0], "; ".join(errors))
    return RowFilter(text, lambda row: all(t(row) for t in tests), "; ".join(errors))


# -- the visible list -------------------------------------------------------------------------


@dataclass(frozen=True)
class SortOrder:
    column: str = "name"
    descending: bool = False

    def next_column(self, step: int = 1, hidden: frozenset[str] = frozenset()) -> SortOrder:
        """The next column (``step``: which way) that is not ``hidden`` (not drawn)."""
        index = COLUMN_KEYS.index(self.column)
        for _ in COLUMN_KEYS:
            index = (index + step) % len(COLUMN_KEYS)
            if COLUMN_KEYS[index] not in hidden:
                break
        return SortOrder(COLUMN_KEYS[index], self.descending)

    def reversed(self) -> SortOrder:
        return SortOrder(self.column, not self.descending)


def sort_rows(rows: Iterable[FleetRow], order: SortOrder) -> list[FleetRow]:
    """Sorted by ``order``; rows without a value (``-``) stay last either way; ties keep the
    input's (cluster, namespace, name) order (``build_rows`` gives it; the sort is stable, reversed
    included) so equal rows never swap places between refreshes."""
    index = COLUMN_KEYS.index(order.column)
    present = [r for r in rows if r.sort_values[index][0] == 0]
    missing = [r for r in rows if r.sort_values[index][0] != 0]
    present.sort(key=lambda r: r.sort_values[index], reverse=order.descending)
    return present + missing


def visible_rows(
    rows: Sequence[FleetRow], row_filter: RowFilter, order: SortOrder
) -> list[FleetRow]:
    """What the table shows: the filter's matches in the sort order."""
    return sort_rows([r for r in rows if row_filter.test(r)] if row_filter.active else rows, order)


def cursor_index(view: Sequence[FleetRow], key: RowKey | None, previous_index: int) -> int:
    """Where the cursor goes after the list changed: on the same deployment when it is still
    shown, else at the same position (clamped), so a refresh never makes it jump."""
    if key is not None:
        for i, row in enumerate(view):
            if row.key == key:
                return i
    return max(0, min(previous_index, len(view) - 1))


def live_marks(marks: Iterable[RowKey], rows: Iterable[FleetRow]) -> set[RowKey]:
    """Marks of deployments that still exist (a deleted one cannot stay marked)."""
    keys = {r.key for r in rows}
    return {m for m in marks if m in keys}


@dataclass(frozen=True)
class FleetCounts:
    total: int = 0
    shown: int = 0
    degraded: int = 0
    failed: int = 0
    progressing: int = 0
    marked: int = 0


def count_rows(rows: Sequence[FleetRow], shown: int | None = None, marked: int = 0) -> FleetCounts:
    """Counts of the whole fleet (once per refresh); ``shown`` defaults to all of them."""
    states = Counter(r.deployment.state for r in rows)
    return FleetCounts(
        total=len(rows),
        shown=len(rows) if shown is None else shown,
        degraded=states[DeploymentState.DEGRADED],
        failed=states[DeploymentState.FAILED],
        progressing=states[DeploymentState.PROGRESSING],
        marked=marked,
    )


def column_widths(rows: Sequence[FleetRow]) -> tuple[int, ...]:
    """Each column as wide as its widest cell or title, up to the column's maximum."""
    widths = [len(c.title) for c in COLUMNS]
    for row in rows:
        for i, cell in enumerate(row.cells):
            if len(cell) > widths[i]:
                widths[i] = len(cell)
    return tuple(min(w, c.max_width) for w, c in zip(widths, COLUMNS, strict=True))
