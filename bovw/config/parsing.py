"""Reading setting values: TOML and command-line text to each field's declared type.

Generic over the settings dataclasses (bovw.config.settings): nothing here knows a
particular section. Every problem is a ConfigError of one line.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any

from bovw.errors import ConfigError

__all__ = ["coerce", "merge_overrides", "parse_assignment", "refuse_quoted_values", "require",
           "section_from_table", "to_plain"]


def require(condition: bool, message: str) -> None:
    """Raise ConfigError(message) unless `condition`."""
    if not condition:
        raise ConfigError(message)


def to_plain(value: Any) -> Any:
    """`value` (settings dataclasses, mappings, tuples, at any depth) as plain dicts and lists."""
    # Not dataclasses.asdict: it deep-copies values and cannot copy the read-only
    # MappingProxyType tables (spark.conf, emr.tags) that parsing produces.
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {key: to_plain(item) for key, item in value.items()}
    if isinstance(value, tuple | list):
        return [to_plain(item) for item in value]
    return value


def _resolved_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def coerce(value: Any, hint: Any, key: str) -> Any:
    """Convert a TOML or command-line value to the field's declared type."""
    origin = typing.get_origin(hint)
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ConfigError(f"{key} must be true or false (got {value!r})")
    if hint is int:
        if isinstance(value, bool):
            raise ConfigError(f"{key} must be an integer (got {value!r})")
        if isinstance(value, int):
            return value
        if isinstance(value, str):
            try:
                return int(value.replace("_", ""))
            except ValueError:
                pass
        raise ConfigError(f"{key} must be an integer (got {value!r})")
    if hint is float:
        number = _number(value)
        if number is None:
            raise ConfigError(f"{key} must be a number (got {value!r})")
        # TOML and float() both read inf and nan; no setting means either, and a weight of
        # inf turned every feature into nan, reported much later as "features do not vary".
        if not math.isfinite(number):
            raise ConfigError(f"{key} must be a finite number (got {value!r})")
        return number
    if hint is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key} must be a string (got {value!r})")
    if origin is tuple:
        (item_hint, *_rest) = typing.get_args(hint)
        items = _list_text(value, key) if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            raise ConfigError(f"{key} must be a list (got {value!r})")
        return tuple(_list_item(item.strip() if isinstance(item, str) else item, item_hint, key)
                     for item in items if not (isinstance(item, str) and not item.strip()))
    if origin in (Mapping, dict) or hint is Mapping:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key} must be a table of key = value (got {value!r})")
        for name, item in value.items():
            # A list or table would reach Spark as its Python text ("[1, 2]").
            if not isinstance(item, str | int | float):
                raise ConfigError(f"{key}.{name} must be a string, a number or true/false "
                                  f"(got {item!r})")
        return {str(k): str(v) for k, v in value.items()}
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.lower() in ("", "none", "null")):
            return None
        return coerce(value, args[0], key)
    raise ConfigError(f"{key}: unsupported setting type {hint!r}")


# What a list of each item type holds, as its messages say it.
_LIST_OF = {int: "whole numbers", float: "numbers", str: "texts"}


def _list_item(item: Any, hint: Any, key: str) -> Any:
    # "orb.dense_scales must be a number" left a user with "1.0;1.5" wondering which.
    try:
        return coerce(item, hint, key)
    except ConfigError:
        if hint not in _LIST_OF:
            raise
        toml, flag = ('["a", "b"]', "a,b") if hint is str else ("[1, 2]", "1,2")
        raise ConfigError(f"{key} must be a list of {_LIST_OF[hint]}, such as {toml} or "
                          f"{flag} on the command line (got {item!r} in it)") from None


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _list_text(text: str, key: str) -> list[Any]:
    """A list given on the command line: "1.0,1.5", or as in TOML, "[1.0, 1.5]" (and "[]").

    The TOML form was split at its commas before, so `--set ingest.extensions=[]` asked
    for files ending in ".[]" and `--set orb.dense_scales=[1.0,1.5]` failed on "[1.0".
    """
    if not text.strip().startswith("["):
        return text.split(",")
    try:
        items = tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{key} must be a list such as [1, 2] (got {text!r}: {error})"
                          ) from None
    if not isinstance(items, list):
        raise ConfigError(f"{key} must be a list (got {text!r})")
    return items


def section_from_table(cls: type, table: Mapping[str, Any], prefix: str) -> Any:
    """The settings dataclass `cls` from its TOML table, each value of its field's type; `prefix`
    ("orb.") names the keys in errors. Raises ConfigError on an unknown key or a bad value."""
    hints = _resolved_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(
            f"unknown config key '{prefix}{unknown[0]}'; known keys in [{prefix.rstrip('.')}]: "
            + ", ".join(sorted(known))
        )
    values = {name: coerce(raw, hints[name], f"{prefix}{name}") for name, raw in table.items()}
    return cls(**values)


def parse_assignment(text: str, flag: str = "--set", form: str = "section.key=value"
                     ) -> tuple[str, str]:
    """Split a command-line `section.key=value` into its key and raw value; the error
    names the `flag` it was given to and the `form` that flag takes."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"{flag} expects {form} (got {text!r})")
    return key.strip(), value.strip()


def merge_overrides(given: Iterable[tuple[str, str, object]], base: Mapping | None = None
                    ) -> dict:
    """The dotted-key overrides of `given` (flag, key, value) triples, in order, after
    those of `base`. Raises ConfigError for a key given twice with two values (--k 61 with
    --set vocabulary.k=60: neither order says which one is meant), naming both flags; the
    values are not repeated in the message: one may be a secret."""
    overrides = dict(base or {})
    said: dict[str, tuple[str, object]] = {}
    for flag, key, value in given:
        if key in said and str(said[key][1]) != str(value):
            raise ConfigError(f"{key} is given twice with two values, by {said[key][0]} and "
                              f"by {flag}; give it once")
        said[key] = (flag, value)
        overrides[key] = value
    return overrides


_TYPED = {bool: "true or false", int: "an integer", float: "a number"}


def refuse_quoted_values(cls: type, table: Mapping[str, Any], prefix: str = "") -> None:
    """Raise ConfigError for a value of the TOML `table` (the fields of the dataclass `cls`,
    a nested settings table checked within) written as text where the field holds true or
    false or a number, alone or in a list. TOML values have types: `k = "500"` is the text
    a command line gives (which coerce reads), not the number a config file writes.
    Unknown keys are left to section_from_table."""
    hints = _resolved_hints(cls)
    for name, value in table.items():
        hint = hints.get(name)
        key = f"{prefix}{name}"
        if hint is None:
            continue
        if dataclasses.is_dataclass(hint):
            if isinstance(value, Mapping):
                refuse_quoted_values(hint, value, f"{key}.")
            continue
        item_hint, items = hint, [value]
        if typing.get_origin(hint) is tuple:
            item_hint = typing.get_args(hint)[0]
            items = value if isinstance(value, list) else [value]
        wanted = _TYPED.get(item_hint)
        if wanted and any(isinstance(item, str) for item in items):
            raise ConfigError(f"{key} must be {wanted}, not text (got {value!r}); fix: write "
                              "it without quotes")
