"""Recording a benchmark's latest table in bench/README.md, between markers it owns."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

README = Path(__file__).resolve().parent / "README.md"


def record(section: str, report: str, heading: str = "", after: Sequence[str] = ()) -> None:
    """Replace the ``section`` block with ``report``; a new one goes right after the first of
    the ``after`` sections found, else at the end under ``heading``."""
    text = README.read_text() if README.exists() else "# Benchmarks\n"
    begin, end = f"<!-- {section}:begin -->", f"<!-- {section}:end -->"
    block = f"{begin}\n{report.rstrip()}\n{end}"
    if begin in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end) :]
    else:
        for before in after:
            marker = f"<!-- {before}:end -->"
            if marker in text:
                at = text.index(marker) + len(marker)
                README.write_text(text[:at] + "\n\n" + block + text[at:])
                return
        text = text.rstrip() + "\n\n" + (f"{heading}\n\n" if heading else "") + block + "\n"
    README.write_text(text)
