"""The agent API's JSON: ``console.model`` types out (``console.views.format.to_json``) and back."""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from datetime import datetime
from typing import Any, TypeVar

from console.views.format import to_json

__all__ = ["from_json", "to_json"]

T = TypeVar("T")


def from_json(cls: type[T], data: Any) -> T:
    """Rebuild a (frozen) dataclass of ``console.model`` from what ``to_json`` made of it."""
    hints = typing.get_type_hints(cls)
    values = {}
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        if field.name in data:
            values[field.name] = _value(hints[field.name], data[field.name])
    return cls(**values)


def _value(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        return _value(options[0], value) if len(options) == 1 else value
    if origin is tuple:
        items = typing.get_args(hint)
        if len(items) == 2 and items[1] is Ellipsis:  # tuple[X, ...]: each rebuilt as an X
            return tuple(_value(items[0], v) for v in value)
        return tuple(value)
    if hint is datetime:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint(value)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return from_json(hint, value)
    return value
