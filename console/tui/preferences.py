"""What the deck keeps of the user's between runs: key bindings remapped in
``${XDG_CONFIG_HOME:-~/.config}/fleetdeck/keymap.toml`` (Textual's keymap, by binding id) and
the theme last chosen, in ``${XDG_STATE_HOME:-~/.local/state}/fleetdeck/deck.toml``.

keymap.toml maps a binding id to the keys that trigger it (comma-separated, Textual's key
names), e.g. ``"fleet.filter" = "f,slash"`` or ``"action.rollout" = "R"``; ``?`` in the deck shows
the keys in effect. A file that cannot be read, or a value that is not a string, is said once at
start and the defaults stay; an unknown id is said too (it would never match).
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from console import paths

KEYMAP_FILE = "keymap.toml"
STATE_FILE = "deck.toml"


def keymap_path() -> Path:
    return paths.config_home() / KEYMAP_FILE


def state_path() -> Path:
    return paths.state_home() / STATE_FILE


@dataclass(frozen=True)
class Keymap:
    keys: dict[str, str] = field(default_factory=dict)  # binding id -> keys
    problems: tuple[str, ...] = ()  # what to say about the file ("" problems: all taken)


def load_keymap(known_ids: Iterable[str], path: Path | None = None) -> Keymap:
    """The user's keymap (empty when there is no file); ``known_ids``: the deck's binding ids,
    to name one that is misspelt."""
    path = path or keymap_path()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Keymap()
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        return Keymap({}, (f"{path}: not read ({exc}); the default keys stay",))
    known = set(known_ids)
    keys: dict[str, str] = {}
    problems: list[str] = []
    for binding_id, value in data.items():
        if not isinstance(value, str) or not value.strip():
            problems.append(f'{path}: {binding_id}: expected keys such as "f" or "ctrl+f,f"')
        elif binding_id not in known:
            problems.append(f"{path}: {binding_id}: no such binding id (see the README)")
        else:
            keys[binding_id] = value.replace(" ", "")
    return Keymap(keys, tuple(problems))


def load_theme(path: Path | None = None) -> str | None:
    """The theme chosen last time, None when none was kept (or the file cannot be read)."""
    try:
        data = tomllib.loads((path or state_path()).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    theme = data.get("theme")
    return theme if isinstance(theme, str) and theme else None


def save_theme(theme: str, path: Path | None = None) -> str:
    """Keep ``theme`` for the next run; "" or why it could not be written (the deck goes on)."""
    path = path or state_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # A JSON string is a TOML basic string (same escapes for what a theme name holds).
        temporary = path.with_suffix(".tmp")
        temporary.write_text(f"theme = {json.dumps(theme)}\n", encoding="utf-8")
        temporary.replace(path)  # never a half-written file for the next run to read
    except OSError as exc:
        return f"could not keep the theme: {exc}"
    return ""
