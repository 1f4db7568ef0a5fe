"""How two sets of settings differ, said the way a user writes them after --set.

Pure: used where reused descriptors (bovw.pipeline.provenance) or a model
(bovw.predict.model_file) are compared with what a configuration asks for, and where a
command refuses a setting it does not use.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

__all__ = ["Difference", "covered", "show", "unused_setting"]


@dataclass(frozen=True)
class Difference:
    """The first setting in which reused outputs (`made`) and the config (`asked`) differ."""

    key: str
    made: Any
    asked: Any


def show(value: Any) -> str:
    """A setting's value as it is written after --set: true, 1.0,2.0, dense."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple | list):
        return ",".join(show(item) for item in value)
    return str(value)


def unused_setting(asked: Collection[str], used: Collection[str]) -> str | None:
    """The first explicitly given key (`asked`) that a command does not use (`used`: keys,
    or prefixes ending with "."), or None."""
    return next((key for key in sorted(asked) if not covered(key, used)), None)


def covered(key: str, keys: Collection[str]) -> bool:
    """True when `key` is one of `keys` or starts with one of them that ends with "."."""
    return any(key == k or (k.endswith(".") and key.startswith(k)) for k in keys)
