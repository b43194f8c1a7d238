"""The log view's ring buffer: bounded whatever arrives, numbered for good, searchable."""

from __future__ import annotations

import pytest

from console.views.log_buffer import (
    POD_PALETTE,
    LogBuffer,
    PodColours,
    SearchQuery,
    split_pod_prefix,
)


def numbered(start: int, stop: int) -> list[str]:
    return [f"line {i}" for i in range(start, stop)]


def test_a_buffer_keeps_only_the_newest_lines_up_to_its_capacity() -> None:
    buffer = LogBuffer(capacity=5)
    for start in range(0, 23, 3):  # batches smaller than the capacity wrap the ring
        buffer.extend(numbered(start, start + 3))
    assert len(buffer) == 5
    assert buffer.total == 24
    assert buffer.dropped == 19
    assert list(buffer.lines()) == numbered(19, 24)


def test_a_batch_larger_than_the_capacity_keeps_its_tail() -> None:
    buffer = LogBuffer(capacity=4)
    buffer.extend(numbered(0, 2))
    buffer.extend(numbered(2, 12))
    assert list(buffer.lines()) == numbered(8, 12)
    assert buffer.first == 8


def test_lines_are_numbered_from_the_first_line_ever_added() -> None:
    buffer = LogBuffer(capacity=3)
    buffer.extend(numbered(0, 7))
    assert buffer[6] == "line 6"
    assert buffer[4] == "line 4"
    with pytest.raises(IndexError, match=r"line 3 is not held \(held: 4..6\)"):
        buffer[3]
    assert list(buffer.lines(5, 100)) == ["line 5", "line 6"]


def test_memory_stays_bounded_whatever_the_rate() -> None:
    buffer = LogBuffer(capacity=1_000)
    for start in range(0, 200_000, 997):
        buffer.extend(numbered(start, start + 997))
    assert len(buffer) == 1_000
    assert buffer[buffer.total - 1] == f"line {buffer.total - 1}"


def test_search_finds_the_next_and_the_previous_match_and_wraps_around() -> None:
    buffer = LogBuffer(capacity=100)
    buffer.extend(["boot", "error: disk", "ok", "error: net", "ok"])
    query = SearchQuery.parse("error")
    assert buffer.find(query, 0) == 1
    assert buffer.find(query, 1) == 3
    assert buffer.find(query, 3) == 1  # wraps to the top
    assert buffer.find(query, 3, forward=False) == 1
    assert buffer.find(query, 1, forward=False) == 3  # wraps to the bottom
    assert buffer.count(query) == 2


def test_search_is_case_insensitive_unless_the_query_has_capitals() -> None:
    buffer = LogBuffer()
    buffer.extend(["Error one", "error two"])
    assert buffer.count(SearchQuery.parse("error")) == 2
    assert buffer.count(SearchQuery.parse("Error")) == 1


def test_a_query_that_is_not_a_regex_is_searched_as_text() -> None:
    query = SearchQuery.parse("loss[0")
    assert query.matches("loss[0] = 1.2")
    assert query.spans("a loss[0] b") == [(2, 8)]


def test_an_empty_search_is_refused_with_a_reason() -> None:
    with pytest.raises(ValueError, match="type what to look for"):
        SearchQuery.parse("")


def test_search_only_sees_lines_still_held() -> None:
    buffer = LogBuffer(capacity=2)
    buffer.extend(["needle", "hay", "hay"])
    assert buffer.find(SearchQuery.parse("needle"), 0) is None


def test_merged_lines_split_into_pod_and_text() -> None:
    assert split_pod_prefix("[digits-7d9f-abc] served 3") == ("digits-7d9f-abc", "served 3")
    assert split_pod_prefix("[not a prefix] x") == ("", "[not a prefix] x")
    assert split_pod_prefix("plain line") == ("", "plain line")


def test_known_pods_get_distinct_colours_in_name_order_on_every_run() -> None:
    colours = PodColours(["b-pod", "a-pod", "c-pod"])
    assert [colours(p) for p in ("a-pod", "b-pod", "c-pod")] == list(POD_PALETTE[:3])
    assert PodColours()("stranger") == PodColours()("stranger") in POD_PALETTE


def test_a_reset_starts_numbering_again_for_a_new_stream() -> None:
    buffer = LogBuffer(capacity=3)
    buffer.extend(numbered(0, 5))
    buffer.reset()
    buffer.extend(["again"])
    assert (buffer.total, buffer.first, buffer[0]) == (1, 0, "again")
