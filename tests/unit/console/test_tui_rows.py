"""The Fleet table's rows: what each cell says, how filters read, how sorts order, where the
cursor and the marks go when the fleet changes."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from console.model import DeploymentState, ModelDeployment
from console.views.fleet_rows import (
    COLUMN_KEYS,
    RowMetrics,
    SortOrder,
    build_rows,
    column_widths,
    count_rows,
    cursor_index,
    live_marks,
    parse_filter,
    sort_rows,
    visible_rows,
)

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def deployment(name: str, **fields: object) -> ModelDeployment:
    base = ModelDeployment(
        name=name,
        namespace="models",
        model="digits",
        version="1",
        desired=2,
        ready=2,
        updated=2,
        available=2,
        state=DeploymentState.AVAILABLE,
        reason="",
        revision=1,
        created=NOW - timedelta(hours=1),
        labels={"app.kubernetes.io/name": name},
    )
    return dataclasses.replace(base, **fields)  # type: ignore[arg-type]


def names(rows: list) -> list[str]:  # type: ignore[type-arg]
    return [r.deployment.name for r in rows]


def cells(row: object) -> dict[str, str]:
    return dict(zip(COLUMN_KEYS, row.cells, strict=True))  # type: ignore[attr-defined]


def test_a_row_shows_readiness_status_with_reason_age_and_dashes_for_missing_metrics() -> None:
    failed = deployment(
        "iris",
        model="iris",
        version="3",
        ready=1,
        desired=3,
        state=DeploymentState.FAILED,
        reason="ProgressDeadlineExceeded",
        revision=4,
        created=NOW - timedelta(days=2),
    )
    shown = cells(build_rows([failed], now=NOW)[0])
    assert shown == {
        "name": "iris",
        "cluster": "",  # a one-cluster deck's rows name none
        "namespace": "models",
        "model": "iris",
        "version": "3",
        "ready": "1/3",
        "status": "Failed: ProgressDeadlineExceeded",
        "revision": "4",
        "age": "2d",
        "rps": "-",
        "hit": "-",
        "p50": "-",
        "p99": "-",
        "errors": "-",
    }


def test_metrics_from_the_snapshot_fill_the_metric_columns() -> None:
    d = deployment("digits-a")
    snapshot = {d.key: RowMetrics(rps=12.345, p50_ms=3.21, p99_ms=48.0, error_percent=0.5)}
    shown = cells(build_rows([d], snapshot, NOW)[0])
    assert (shown["rps"], shown["p50"], shown["p99"], shown["errors"]) == (
        "12.3",
        "3.2",
        "48.0",
        "0.50",
    )
    assert shown["hit"] == "-"  # no precomputed table: no hit ratio, not 0 %


def test_the_hit_column_shows_the_precomputed_hit_ratio_as_a_percentage() -> None:
    served, plain = deployment("digits-a"), deployment("digits-b")
    snapshot = {
        served.key: RowMetrics(rps=40.0, hit_ratio=0.875),
        plain.key: RowMetrics(rps=40.0),
    }
    rows = build_rows([served, plain], snapshot, NOW)
    assert [cells(r)["hit"] for r in rows] == ["88", "-"]
    ordered = sort_rows(rows, SortOrder("hit", descending=True))
    assert names(ordered) == ["digits-a", "digits-b"]  # no table sorts last


FLEET = [
    deployment("digits-a"),
    deployment("digits-b", namespace="models-staging"),
    deployment("iris-prod", model="iris", labels={"tier": "gold"}),
    deployment("sentiment", model="bert", state=DeploymentState.DEGRADED, reason="1 of 2"),
]


def test_a_plain_filter_matches_a_substring_of_name_namespace_or_model_ignoring_case() -> None:
    rows = build_rows(FLEET, now=NOW)
    assert names(visible_rows(rows, parse_filter("DIGITS"), SortOrder())) == [
        "digits-a",
        "digits-b",
    ]
    assert names(visible_rows(rows, parse_filter("staging"), SortOrder())) == ["digits-b"]
    assert names(visible_rows(rows, parse_filter("bert"), SortOrder())) == ["sentiment"]


def test_a_filter_with_regex_characters_is_a_regular_expression() -> None:
    rows = build_rows(FLEET, now=NOW)
    assert names(visible_rows(rows, parse_filter("^digits-[b-z]"), SortOrder())) == ["digits-b"]


def test_an_invalid_regex_is_matched_as_text_and_says_so() -> None:
    parsed = parse_filter("iris(")
    assert "not a regular expression" in parsed.error
    assert names(visible_rows(build_rows(FLEET, now=NOW), parsed, SortOrder())) == []


def test_label_selectors_and_short_field_names_filter_like_kubectl_l() -> None:
    rows = build_rows(FLEET, now=NOW)
    assert names(visible_rows(rows, parse_filter("tier=gold"), SortOrder())) == ["iris-prod"]
    assert names(visible_rows(rows, parse_filter("status=Degraded"), SortOrder())) == ["sentiment"]
    assert names(visible_rows(rows, parse_filter("model!=digits,!tier"), SortOrder())) == [
        "sentiment"
    ]


def test_several_terms_must_all_match() -> None:
    rows = build_rows(FLEET, now=NOW)
    assert names(visible_rows(rows, parse_filter("digits namespace=models"), SortOrder())) == [
        "digits-a"
    ]


def test_sorting_by_status_puts_the_worst_first_and_reversing_flips_it() -> None:
    rows = build_rows(FLEET, now=NOW)
    by_status = sort_rows(rows, SortOrder("status"))
    assert names(by_status)[0] == "sentiment"
    assert names(sort_rows(rows, SortOrder("status", descending=True)))[-1] == "sentiment"


def test_rows_without_a_value_stay_last_in_either_direction() -> None:
    a, b, c = deployment("a"), deployment("b"), deployment("c")
    snapshot = {a.key: RowMetrics(p99_ms=10.0), c.key: RowMetrics(p99_ms=90.0)}
    rows = build_rows([a, b, c], snapshot, NOW)
    assert names(sort_rows(rows, SortOrder("p99"))) == ["a", "c", "b"]
    assert names(sort_rows(rows, SortOrder("p99", descending=True))) == ["c", "a", "b"]


def test_age_sorts_youngest_first_and_versions_sort_as_numbers() -> None:
    old = deployment("old", created=NOW - timedelta(days=3), version="10")
    new = deployment("new", created=NOW - timedelta(minutes=3), version="9")
    rows = build_rows([old, new], now=NOW)
    assert names(sort_rows(rows, SortOrder("age"))) == ["new", "old"]
    assert names(sort_rows(rows, SortOrder("version"))) == ["new", "old"]


def test_equal_rows_keep_a_stable_order_by_namespace_and_name() -> None:
    rows = build_rows([deployment(n) for n in ("c", "a", "b")], now=NOW)
    assert names(sort_rows(rows, SortOrder("model"))) == ["a", "b", "c"]
    assert names(sort_rows(rows, SortOrder("model", descending=True))) == ["a", "b", "c"]


def test_sort_order_cycles_through_every_column() -> None:
    order = SortOrder()
    seen = []
    for _ in COLUMN_KEYS:
        seen.append(order.column)
        order = order.next_column()
    assert seen == list(COLUMN_KEYS)
    assert order.column == "name"


def test_the_cursor_stays_on_its_deployment_when_rows_move_and_keeps_its_place_when_it_goes() -> (
    None
):
    rows = build_rows(FLEET, now=NOW)
    view = sort_rows(rows, SortOrder("name", descending=True))
    assert cursor_index(view, ("", "models", "iris-prod"), 0) == names(view).index("iris-prod")
    assert cursor_index(view, ("", "models", "gone"), 2) == 2
    assert cursor_index(view, ("", "models", "gone"), 99) == len(view) - 1
    assert cursor_index([], None, 5) == 0


def test_marks_of_deleted_deployments_are_dropped() -> None:
    rows = build_rows(FLEET[:2], now=NOW)
    marks = {("", "models", "digits-a"), ("", "models", "deleted")}
    assert live_marks(marks, rows) == {("", "models", "digits-a")}


def test_counts_say_how_many_are_shown_degraded_failed_progressing_and_marked() -> None:
    fleet = [
        *FLEET,
        deployment("x", state=DeploymentState.FAILED, reason="ImagePullBackOff"),
        deployment("y", state=DeploymentState.PROGRESSING),
    ]
    counts = count_rows(build_rows(fleet, now=NOW), shown=3, marked=2)
    assert (counts.total, counts.shown, counts.degraded, counts.failed) == (6, 3, 1, 1)
    assert (counts.progressing, counts.marked) == (1, 2)


def test_columns_are_as_wide_as_their_widest_cell_up_to_a_maximum() -> None:
    long = deployment("n" * 80)
    widths = dict(zip(COLUMN_KEYS, column_widths(build_rows([long], now=NOW)), strict=True))
    assert widths["name"] == 40
    assert widths["ready"] == len("READY")
