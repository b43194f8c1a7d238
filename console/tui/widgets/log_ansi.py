"""A pod's log line as the deck draws it: its SGR colours (``ESC [ ... m``) decoded by Rich's
ANSI decoder, every other control character shown as an escape (``\\x1b[2J``, never sent to
the terminal, where it could move the cursor or clear the screen), and no colours at all when
``NO_COLOR`` is set. The Logs view turns the segments into strips (Rich is UI: this lives
beside it, not in ``console/views``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from rich.console import Console
from rich.segment import Segment
from rich.text import Text

from console.views.format import printable, printable_log_line

# Rendering a Text needs a console; this one is used only for its style arithmetic (never
# printed to), wide enough that no line is wrapped.
_CONSOLE = Console(force_terminal=True, color_system="truecolor", width=1_000_000)


def colours_wanted(environ: Mapping[str, str] = os.environ) -> bool:
    """The convention of no-color.org, as the CLI follows it: ``NO_COLOR`` set, no colours."""
    return "NO_COLOR" not in environ


def log_segments(line: str, *, colours: bool) -> tuple[str, list[Segment]]:
    """The line's text as shown (what a search matches) and its segments, each with the pod's
    own style (None where it wrote none)."""
    line = line.expandtabs()
    if "\x1b" not in line:  # the common case: one plain segment
        plain = printable(line)
        return plain, [Segment(plain)]
    kept = printable_log_line(line, colours=colours)  # the CLI's rule, written once
    if not colours:
        return kept, [Segment(kept)]
    text = Text.from_ansi(kept, end="")
    return text.plain, [s for s in text.render(_CONSOLE) if s.text]
