"""Reading the agent's stamped log files as ``kubectl logs`` shows them."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from console.local.logfiles import LogQuery, read_logs


def _lines(query: LogQuery, alive: bool = False) -> list[str]:
    async def collect() -> list[str]:
        return [line async for line in read_logs(query, lambda pod: alive)]

    return asyncio.run(collect())


def _write(path: Path, *lines: str) -> Path:
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


def test_lines_are_shown_without_their_stamp_unless_timestamps_are_asked(tmp_path: Path) -> None:
    log = _write(
        tmp_path / "a.log", "2026-11-26T20:00:00.000000Z hello", "2026-11-26T20:00:01.000000Z bye"
    )
    plain = LogQuery([("a", log)], follow=False, tail=None, since=None, timestamps=False)
    assert _lines(plain) == ["hello", "bye"]
    stamped = LogQuery([("a", log)], follow=False, tail=1, since=None, timestamps=True)
    assert _lines(stamped) == ["2026-11-26T20:00:01.000000Z bye"]


def test_several_pods_are_prefixed_and_since_drops_older_lines(tmp_path: Path) -> None:
    old = _write(tmp_path / "a.log", "2000-01-01T00:00:00.000000Z ancient")
    new = _write(tmp_path / "b.log", "2999-01-01T00:00:00.000000Z future")
    query = LogQuery(
        [("a", old), ("b", new)],
        follow=False,
        tail=None,
        since=timedelta(hours=1),
        timestamps=False,
    )
    assert _lines(query) == ["[b] future"]


def test_a_half_written_last_line_waits_until_it_is_complete(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_text("2026-11-26T20:00:00.000000Z done\n2026-11-26T20:00:01.000000Z half")
    query = LogQuery([("a", log)], follow=True, tail=None, since=None, timestamps=False)
    assert _lines(query, alive=False) == ["done"]


def test_a_tail_of_zero_shows_no_earlier_line(tmp_path: Path) -> None:
    log = _write(tmp_path / "a.log", "2026-11-26T20:00:00.000000Z old")
    query = LogQuery([("a", log)], follow=False, tail=0, since=None, timestamps=False)
    assert _lines(query) == []


def test_a_followed_log_replaced_by_a_restart_is_read_from_the_top_even_at_the_same_size(
    tmp_path: Path,
) -> None:
    log = _write(tmp_path / "p.log", "2026-11-26T20:00:00.000000Z first run")
    query = LogQuery([("p", log)], follow=True, tail=None, since=None, timestamps=False)

    async def follow() -> list[str]:
        seen: list[str] = []
        alive = True

        async def restart() -> None:
            nonlocal alive
            await asyncio.sleep(0.1)
            log.replace(tmp_path / "p.previous.log")  # as the supervisor does on a restart
            _write(log, "2026-11-26T20:00:09.000000Z again run")  # the same size as before
            await asyncio.sleep(0.5)
            alive = False

        task = asyncio.create_task(restart())
        async for line in read_logs(query, lambda pod: alive):
            seen.append(line)
        await task
        return seen

    assert asyncio.run(follow()) == ["first run", "again run"]
