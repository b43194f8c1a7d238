"""Recording a benchmark's latest table in bench/README.md, between markers it owns."""

from __future__ import annotations

from pathlib import Path

README = Path(__file__).resolve().parent / "README.md"


def record(section: str, report: str, heading: str = "") -> None:
    """Replace the ``section`` block (or append it under ``heading``) with ``report``."""
    text = README.read_text() if README.exists() else "# Benchmarks\n"
    begin, end = f"<!-- {section}:begin -->", f"<!-- {section}:end -->"
    block = f"{begin}\n{report.rstrip()}\n{end}"
    if begin in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip() + "\n\n" + (f"{heading}\n\n" if heading else "") + block + "\n"
    README.write_text(text)
