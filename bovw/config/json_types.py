"""Strict checks of values read from JSON against the types a reader expects; free of Spark.

A file bovw wrote holds JSON numbers where it reads numbers. A value of another type (the
string "1" for an integer, true for a number) means the file was edited or made by
something else, and is reported as what it is rather than converted.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Mapping
from typing import Any

__all__ = ["describe", "expected", "matches", "problem", "settings_problem"]


def describe(value: Any) -> str:
    """A JSON value as a person reads it: 'the string "1"', 'the integer 1', 'a list'."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {json.dumps(value)}"
    if isinstance(value, str):
        return f"the string {json.dumps(value)[:60]}"
    if isinstance(value, int):
        return f"the integer {value}"
    if isinstance(value, float):
        return f"the number {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"


_EXPECTED = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
_PLURAL = {int: "integers", float: "numbers", bool: "booleans", str: "strings"}


def expected(hint: Any) -> str:
    """What a value of type `hint` is called in an error: 'an integer', 'a list of numbers'."""
    origin = typing.get_origin(hint)
    if origin is tuple or origin is list:
        return f"a list of {_PLURAL.get(typing.get_args(hint)[0], 'values')}"
    if origin in (Mapping, dict) or hint is Mapping:
        return "an object"
    if origin in (typing.Union, types.UnionType):
        kinds = [expected(arg) for arg in typing.get_args(hint) if arg is not type(None)]
        return " or ".join(kinds) + " or null"
    return _EXPECTED.get(hint, getattr(hint, "__name__", str(hint)))


def matches(value: Any, hint: Any) -> bool:
    """True when the JSON `value` has the type `hint` (int, float, bool, str, tuple[X, ...],
    Mapping, X | None); an integer is a number, a boolean is neither."""
    origin = typing.get_origin(hint)
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin is tuple or origin is list:
        item = typing.get_args(hint)[0]
        return isinstance(value, list) and all(matches(v, item) for v in value)
    if origin in (Mapping, dict) or hint is Mapping:
        return isinstance(value, dict)
    if origin in (typing.Union, types.UnionType):
        return value is None or any(matches(value, arg) for arg in typing.get_args(hint)
                                    if arg is not type(None))
    raise TypeError(f"no JSON type check for {hint!r}")


def problem(value: Any, hint: Any, name: str) -> str | None:
    """None when `value` has the type `hint`, else one phrase saying what is wrong, e.g.
    'format_version is the string "1" where an integer is expected'."""
    if matches(value, hint):
        return None
    if typing.get_origin(hint) in (tuple, list) and isinstance(value, list):
        item = typing.get_args(hint)[0]
        return next(found for i, v in enumerate(value)
                    if (found := problem(v, item, f"{name}[{i}]")))
    return f"{name} is {describe(value)} where {expected(hint)} is expected"


def settings_problem(table: Any, settings_class: type, name: str) -> str | None:
    """The first key of a JSON settings `table` whose value is not of its field's type in
    the dataclass `settings_class` (unknown keys are left to the settings' own parser)."""
    if not isinstance(table, dict):
        return f"{name} is {describe(table)} where an object is expected"
    hints = typing.get_type_hints(settings_class)
    for field in dataclasses.fields(settings_class):
        if field.name in table:
            found = problem(table[field.name], hints[field.name], f"{name}.{field.name}")
            if found:
                return found
    return None
