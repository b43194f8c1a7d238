"""Which Fleet columns fit the terminal, by priority (UI-free: the table asks on each show and
resize).

At 80 columns an on-call engineer came for the latency: READY, STATUS, REQ/S, P99 and ERR%
stay, and the others give way in :data:`GIVE_WAY` order (NAMESPACE first when only one is
shown, since it says nothing then). CLUSTER is drawn only when the deck spans several
clusters, and then it never gives way: it tells the same deployment in two clusters apart. NAME
never gives way and stays put while the rest scrolls sideways. Still too wide, STATUS then NAME
are cut (an ellipsis) down to a floor. The wide view (k9s' ``ctrl+w``) shows every column.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from console.views.fleet_rows import COLUMN_KEYS

GUTTER = 2  # the mark's cells before NAME
GAP = 2  # between columns

# The order in which columns give way when the terminal is narrow; NAMESPACE goes first when
# one namespace is shown and last when several are (then it tells deployments apart).
GIVE_WAY: tuple[str, ...] = ("hit", "revision", "age", "model", "p50", "version")
# Cut with an ellipsis down to these widths before anything kept scrolls off.
FLOORS: tuple[tuple[str, int], ...] = (("status", 12), ("name", 16))


@dataclass(frozen=True)
class ColumnFit:
    """The columns to draw (indexes into ``COLUMNS``, NAME first) and each one's width."""

    shown: tuple[int, ...]
    widths: tuple[int, ...]  # one per shown column

    @property
    def line_width(self) -> int:
        return GUTTER + sum(self.widths) + GAP * (len(self.widths) - 1)

    @property
    def pinned_width(self) -> int:
        """The cells that never scroll sideways: the gutter and NAME with its gap."""
        return GUTTER + self.widths[0] + GAP


def give_way_order(single_namespace: bool) -> tuple[str, ...]:
    if single_namespace:
        return ("namespace", *GIVE_WAY)
    return (*GIVE_WAY, "namespace")


CLUSTER = COLUMN_KEYS.index("cluster")


def fit_columns(
    widths: Sequence[int],
    available: int,
    *,
    single_namespace: bool,
    wide: bool,
    several_clusters: bool = False,
) -> ColumnFit:
    """The columns that fit ``available`` cells, given every column's natural width."""
    shown = [i for i in range(len(widths)) if several_clusters or i != CLUSTER]
    everything = ColumnFit(tuple(shown), tuple(widths[i] for i in shown))
    if wide or available <= 0 or everything.line_width <= available:
        return everything
    fit = everything
    for key in give_way_order(single_namespace):
        shown.remove(COLUMN_KEYS.index(key))
        fit = ColumnFit(tuple(shown), tuple(widths[i] for i in shown))
        if fit.line_width <= available:
            return fit
    cut = list(fit.widths)
    for key, floor in FLOORS:
        position = shown.index(COLUMN_KEYS.index(key))
        excess = GUTTER + sum(cut) + GAP * (len(cut) - 1) - available
        if excess <= 0:
            break
        cut[position] = max(min(floor, cut[position]), cut[position] - excess)
    return ColumnFit(tuple(shown), tuple(cut))
