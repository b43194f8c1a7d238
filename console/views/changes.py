"""The Changes view model: one row per change with its cells and what the filter searches,
for the deck's Changes screen and ``fleetdeck changes`` alike (no Textual here)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from console.batch.gates import SloReading
from console.batch.plan import SloThresholds
from console.changes.effect import Effect, History, effect_of, next_changes
from console.changes.model import Change, Kind
from console.selectors import SelectorError, parse_selector
from console.views.format import printable

# The order an 80-column terminal cuts from the right: what and its effect before from → to
# (the selected row's detail says from → to in full).
HEADERS = ("ID", "TIME", "KIND", "WHO", "DEPLOYMENTS", "EFFECT", "WHAT", "FROM", "TO")
_REGEX_CHARS = set("^$*+?[](){}|\\")


@dataclass(frozen=True)
class ChangeRow:
    change: Change
    effect: Effect | None
    cells: tuple[str, ...]
    haystack: str  # what a plain filter term searches (lower case)
    fields: dict[str, str]  # what ``kind=rollout`` and the like match

    @property
    def regressed(self) -> bool:
        return self.effect is not None and self.effect.regressed

    def cell(self, header: str) -> str:
        return self.cells[HEADERS.index(header)]


def when_text(change: Change) -> str:
    """``12-04 16:03`` in UTC (the seconds are in the detail and the JSON); ``~`` before an
    estimate."""
    text = change.time.astimezone(UTC).strftime("%m-%d %H:%M")
    return f"~{text}" if change.approximate else text


def who_text(change: Change) -> str:
    if change.kind in (Kind.WARNING, Kind.PUBLISH) and not change.who:
        return "-"
    who = change.who or "?"
    return who if change.via_fleetdeck else f"{who} (not via fleetdeck)"


def effect_text(effect: Effect | None) -> str:
    """``p99 12→812 ms, err 0.0→4.2 % REGRESSION``; "" when the change is not measured."""
    if effect is None:
        return ""
    if effect.after is None:
        return "measuring" if effect.measuring else "no traffic after"
    before, after = effect.before, effect.after
    parts = []
    if before is not None and before.p99_ms is not None and after.p99_ms is not None:
        parts.append(f"p99 {_ms(before.p99_ms)}→{_ms(after.p99_ms)} ms")
    if after.error_percent is not None:
        was = before.error_percent if before is not None else None
        parts.append(f"err {_pct(was)}→{_pct(after.error_percent)} %")
    text = ", ".join(parts)
    return f"{text} REGRESSION" if effect.regressed else text


def _ms(value: float) -> str:
    return f"{value:.0f}" if value >= 10 else f"{value:.2g}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def build_row(change: Change, effect: Effect | None) -> ChangeRow:
    targets = change.targets
    cells = tuple(
        printable(cell)  # a warning's message, a name: nothing reaches the terminal raw
        for cell in (
            change.id,
            when_text(change),
            change.kind.value,
            who_text(change),
            targets,
            effect_text(effect),
            change.what,
            change.before,
            change.after,
        )
    )
    fields = {
        "id": change.id,
        "kind": change.kind.value,
        "who": change.who,
        "via": "fleetdeck" if change.via_fleetdeck else "other",
        "cluster": change.cluster,
        "batch": change.batch,
        "regression": "yes" if effect is not None and effect.regressed else "no",
    }
    names = " ".join(a.where for a in change.affected)
    haystack = " ".join((*cells, names)).lower()
    return ChangeRow(change, effect, cells, haystack, fields)


@dataclass(frozen=True)
class ChangeFilter:
    """A parsed ``/`` filter on the Changes screen; ``error`` says what was read otherwise."""

    text: str
    test: Callable[[ChangeRow], bool]
    error: str = ""

    @property
    def active(self) -> bool:
        return bool(self.text.strip())


def parse_change_filter(text: str) -> ChangeFilter:
    """Whitespace-separated terms, all of which must match:

    - ``digits``: text anywhere in the row (who, what, deployments, versions);
    - ``^roll.*v3``: a regular expression (a term with regex characters) on the same;
    - ``kind=rollout``, ``who=alice``, ``via=other``, ``regression=yes``, ``cluster=b``,
      ``kind!=warning``: a selector on the change's fields.
    """
    tests: list[Callable[[ChangeRow], bool]] = []
    errors: list[str] = []
    for term in text.split():
        test, error = _term(term)
        tests.append(test)
        if error:
            errors.append(error)
    return ChangeFilter(text, lambda row: all(t(row) for t in tests), "; ".join(errors))


def _term(term: str) -> tuple[Callable[[ChangeRow], bool], str]:
    if "=" in term or term.startswith("!"):
        try:
            matches = parse_selector(term)
        except SelectorError as exc:
            return (lambda row: False), str(exc)
        return (lambda row: matches(row.fields)), ""
    needle = term.lower()
    if _REGEX_CHARS.intersection(term):
        try:
            pattern = re.compile(term, re.IGNORECASE)
        except re.error as exc:
            return (lambda row: needle in row.haystack), f"not a regular expression ({exc})"
        return (lambda row: pattern.search(row.haystack) is not None), ""
    return (lambda row: needle in row.haystack), ""


def visible(
    rows: Sequence[ChangeRow], change_filter: ChangeFilter, limit: int | None = None
) -> list[ChangeRow]:
    """The rows the filter matches, newest first; with ``limit``, only the first ``limit``
    (a keystroke reads rows only until a screen's worth matched, not all of them)."""
    if not change_filter.active:
        return list(rows if limit is None else rows[:limit])
    found: list[ChangeRow] = []
    for row in rows:
        if change_filter.test(row):
            found.append(row)
            if limit is not None and len(found) >= limit:
                break
    return found


def as_json(row: ChangeRow) -> dict[str, object]:
    """``fleetdeck changes -o json``: one object per change."""
    change, effect = row.change, row.effect
    return {
        "id": change.id,
        "time": change.time.astimezone(UTC).isoformat(timespec="seconds"),
        "approximate": change.approximate,
        "kind": change.kind.value,
        "who": change.who,
        "via_fleetdeck": change.via_fleetdeck,
        "what": change.what,
        "cluster": change.cluster,
        "batch": change.batch or None,
        "undoes": change.undoes or None,
        "deployments": [
            {"deployment": a.where, "from": a.before, "to": a.after} for a in change.affected
        ],
        "effect": None
        if effect is None or effect.after is None
        else {
            "deployment": effect.where,
            "before": _numbers(effect.before),
            "after": _numbers(effect.after),
            "regression": effect.regression or None,
        },
        "undo": change.undo_refusal() or "possible",
    }


def _numbers(reading: SloReading | None) -> dict[str, float | None] | None:
    if reading is None:
        return None
    return {"p99_ms": reading.p99_ms, "error_percent": reading.error_percent}


def build_rows(
    changes: Sequence[Change],
    history: History | None,
    thresholds: SloThresholds,
    now: datetime,
    previous: Mapping[str, ChangeRow] | None = None,
) -> list[ChangeRow]:
    """Every change's row, each serving change next to its effect where the history has
    numbers from around it (``history`` None: no metrics, no effects). Rows of changes older
    than the history reaches are taken from ``previous`` when there: only the recent ones'
    effects move."""
    oldest = now - RECENT
    until = next_changes([c for c in changes if c.time >= oldest - RECENT])
    rows = []
    for change in changes:
        if change.time < oldest:
            kept = previous.get(change.id) if previous is not None else None
            # The same object when the timeline was not rebuilt: no field-by-field compare.
            same = kept is not None and (kept.change is change or kept.change == change)
            rows.append(kept if kept is not None and same else build_row(change, None))
            continue
        effect = (
            effect_of(change, history, thresholds, now=now, until=until.get(change.id))
            if history is not None
            else None
        )
        rows.append(build_row(change, effect))
    return rows


# The deck's history holds ten minutes and an effect looks five past the change: a change
# older than this has all the numbers it will ever have.
RECENT = timedelta(minutes=15)
