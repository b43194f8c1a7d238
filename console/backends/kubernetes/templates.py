"""Manifest templates: YAML files under ``profiles/templates/`` with ``${name}`` placeholders.

The YAML is parsed first and filled afterwards, value by value, so a filled value can never
change the document's structure (no text templating, no injection through a model name). A
string that is only a placeholder takes the value as it is (a mapping, a list, a number); a
placeholder inside a longer string is replaced by the value's text. A key whose value fills to
None is left out, which is how optional fields (an ingress class, a host) disappear.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from console.backends.base import BackendError
from console.profile import bundled_profiles_dir

PLACEHOLDER = re.compile(r"\$\{([a-z_][a-z0-9_]*)\}")


class TemplateError(BackendError):
    """A template that cannot be found, parsed or filled; the message names it."""


def templates_dir() -> Path:
    bundled = bundled_profiles_dir()
    if bundled is None or not (bundled / "templates").is_dir():
        raise TemplateError("the bundled manifest templates (profiles/templates/) are missing")
    return bundled / "templates"


@cache
def _load(name: str) -> Any:
    path = templates_dir() / f"{name}.yaml"
    try:
        return yaml.safe_load(path.read_text())
    except OSError as exc:
        raise TemplateError(f"{path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise TemplateError(f"{path}: not valid YAML: {exc}") from None


def render(name: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """The template ``name`` with every placeholder filled from ``values``."""
    filled = _fill(_load(name), values, name)
    if not isinstance(filled, dict):
        raise TemplateError(f"template {name}: not a YAML mapping")
    return filled


def _fill(node: Any, values: Mapping[str, Any], template: str) -> Any:
    if isinstance(node, str):
        whole = PLACEHOLDER.fullmatch(node)
        if whole:
            return _value(whole.group(1), values, template)
        return PLACEHOLDER.sub(lambda m: str(_value(m.group(1), values, template)), node)
    if isinstance(node, dict):
        filled = {key: _fill(value, values, template) for key, value in node.items()}
        return {key: value for key, value in filled.items() if value is not None}
    if isinstance(node, list):
        return [_fill(item, values, template) for item in node]
    return node


def _value(name: str, values: Mapping[str, Any], template: str) -> Any:
    if name not in values:
        raise TemplateError(f"template {template}: no value for ${{{name}}}")
    return values[name]
