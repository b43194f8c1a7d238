"""The Fleet table's columns by priority: what stays at 80 columns, what gives way first."""

from __future__ import annotations

from console.views.fleet_columns import fit_columns
from console.views.fleet_rows import COLUMN_KEYS, COLUMNS

# NAME, CLUSTER, NAMESPACE, MODEL, VER, READY, STATUS, REV, AGE, REQ/S, HIT%, P50, P99, ERR%
WIDTHS = (18, 8, 14, 10, 4, 6, 16, 4, 4, 6, 5, 7, 7, 5)
ONE_CLUSTER = tuple(k for k in COLUMN_KEYS if k != "cluster")
LATENCY = ("name", "ready", "status", "rps", "p99", "errors")


def keys(shown: tuple[int, ...]) -> tuple[str, ...]:
    return tuple(COLUMN_KEYS[i] for i in shown)


def test_at_80_columns_the_latency_columns_stay_and_name_comes_first() -> None:
    assert len(WIDTHS) == len(COLUMNS)
    fit = fit_columns(WIDTHS, 80, single_namespace=True, wide=False)
    assert fit.line_width <= 80
    assert set(LATENCY) <= set(keys(fit.shown))
    assert keys(fit.shown)[0] == "name"
    assert "namespace" not in keys(fit.shown)  # one namespace: it says nothing


def test_several_namespaces_keep_namespace_longer_than_the_model() -> None:
    fit = fit_columns(WIDTHS, 100, single_namespace=False, wide=False)
    shown = keys(fit.shown)
    assert "namespace" in shown
    assert "model" not in shown
    fit = fit_columns(WIDTHS, 100, single_namespace=True, wide=False)
    assert "namespace" not in keys(fit.shown)


def test_wide_and_a_wide_terminal_show_every_column_at_its_width() -> None:
    for fit in (
        fit_columns(WIDTHS, 80, single_namespace=True, wide=True),
        fit_columns(WIDTHS, 300, single_namespace=True, wide=False),
    ):
        assert keys(fit.shown) == ONE_CLUSTER
        assert fit.widths == tuple(
            w for w, k in zip(WIDTHS, COLUMN_KEYS, strict=True) if k != "cluster"
        )


def test_long_statuses_and_names_are_cut_to_fit_before_a_kept_column_scrolls_off() -> None:
    widths = (40, 8, 14, 10, 4, 6, 40, 4, 4, 6, 5, 7, 7, 5)
    fit = fit_columns(widths, 80, single_namespace=True, wide=False)
    assert set(LATENCY) <= set(keys(fit.shown))
    assert fit.line_width <= 80


def test_cluster_is_drawn_only_when_the_deck_spans_several_and_then_never_gives_way() -> None:
    assert "cluster" not in keys(fit_columns(WIDTHS, 300, single_namespace=False, wide=True).shown)
    several = fit_columns(WIDTHS, 80, single_namespace=False, wide=False, several_clusters=True)
    shown = keys(several.shown)
    assert shown[:2] == ("name", "cluster")
    assert set(LATENCY) <= set(shown)
    assert "namespace" not in shown  # gave way; the cluster did not
    assert several.line_width <= 80
