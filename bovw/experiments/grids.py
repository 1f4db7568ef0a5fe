"""A sweep's grid: its parameters as given on the command line, its points, which
descriptors each point reads, and whether a new grid only adds to a recorded one."""

from __future__ import annotations

import itertools
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from bovw.config import Config, ConfigError, parse_assignment
from bovw.config.differences import RUN_KEYS, SESSION_KEYS, covered, setting_value
from bovw.pipeline.provenance import (
    DescriptorProvenance,
    DescriptorSettings,
    first_difference,
    refusal,
)
from bovw.spark import storage

__all__ = ["SweepPoint", "added_values", "changes_descriptors", "descriptor_sources",
           "grid_text", "parse_parameter", "sweep_points"]


@dataclass(frozen=True)
class SweepPoint:
    """One setting of the swept parameters: its folder name and config overrides."""

    name: str
    overrides: tuple[tuple[str, str], ...]

    @property
    def values(self) -> dict[str, str]:
        """The point's settings as a dict: dotted key -> value as given."""
        return dict(self.overrides)


def parse_parameter(text: str) -> tuple[str, list[str]]:
    """`section.key=v1,v2,...` -> (key, [values]). Raises ConfigError on a malformed value.

    A list setting takes one value per bracketed list: `orb.dense_scales=[1.0],[1.0,2.0]`
    -> ["1.0", "1.0,2.0"] (each value as `--set` takes a list).
    """
    key, values = parse_assignment(text, "--param", "section.key=v1,v2")
    items = [value.strip() for value in _split_values(key, values) if value.strip()]
    if not items:
        raise ConfigError(f"--param {key} needs at least one value, e.g. {key}=1,2")
    if len(set(items)) != len(items):
        raise ConfigError(f"--param {key} lists a value twice: {values}")
    return key, items


def _split_values(key: str, values: str) -> list[str]:
    if "[" not in values and "]" not in values:
        return values.split(",")
    lists = re.fullmatch(r"\s*\[[^\[\]]*\](\s*,\s*\[[^\[\]]*\])*\s*,?\s*", values)
    if lists is None:
        raise ConfigError(f"--param {key}: write each list in brackets, separated by commas, "
                          f"e.g. {key}=[1.0],[1.0,2.0] (got {values})")
    return [",".join(item.strip() for item in inner.split(",") if item.strip())
            for inner in re.findall(r"\[([^\[\]]*)\]", values)]


def sweep_points(config: Config, parameters: Sequence[tuple[str, Sequence[str]]],
                 planned: bool = True) -> list[SweepPoint]:
    """Every combination of the parameters' values (the first parameter varies slowest).

    Each combination is checked against `config` so a bad key or value stops the sweep
    before any work. A grid being `planned` (not read back from a sweep folder) must also
    vary settings each point applies (no spark.*, s3.*: one session runs the sweep; no
    cnn.*, predict.*, emr.*: a run does not use them), each value once after parsing (10
    and 010 are one k). Raises ConfigError.
    """
    if not parameters:
        raise ConfigError("a sweep needs at least one --param section.key=v1,v2 (or --k)")
    keys = [key for key, _values in parameters]
    if len(set(keys)) != len(keys):
        raise ConfigError("each swept setting may be given only once")
    redactor = config.redactor()
    for key, values in parameters:
        spark_property = key.removeprefix("spark.conf.")
        if redactor.secret_name(key) or (spark_property != key and any(
                redactor.secret_property(spark_property, value) for value in values)):
            raise ConfigError(f"--param {key} holds a secret, and a swept value names its "
                              "point's folder and table row; fix: set it once, in the config "
                              "or with --set")
    for key, values in parameters:
        if planned:
            _check_per_point(config, key, values)
    points = []
    for combination in itertools.product(*[values for _key, values in parameters]):
        overrides = tuple(zip(keys, combination, strict=True))
        config.replace(**dict(overrides))  # validates the key and the value
        points.append(SweepPoint(_folder_name(overrides), overrides))
    return points


def _check_per_point(config: Config, key: str, values: Sequence[str]) -> None:
    """Refuse a setting no point would apply, and values that are the same setting."""
    # The one Spark session (and its S3 access) is made from the base config for the whole
    # sweep, and a point is a bovw run, which uses no cnn.*, predict.* or emr.* setting.
    if covered(key, SESSION_KEYS):
        raise ConfigError(f"--param {key}: a sweep runs every point in one Spark session, "
                          "set once for the whole sweep; fix: give it once, with --set, "
                          "--master or the config")
    if not covered(key, RUN_KEYS):
        raise ConfigError(f"--param {key}: the points of a sweep are bovw runs, which do not "
                          "use it; drop it")
    parsed: dict[str, str] = {}
    for value in values:
        setting = repr(setting_value(config.replace(**{key: value}), key))
        if setting in parsed:
            raise ConfigError(f"--param {key} gives the same value twice ({parsed[setting]} "
                              f"and {value}); list each value once")
        parsed[setting] = value


def _folder_name(overrides: tuple[tuple[str, str], ...]) -> str:
    # Hadoop globbing treats {}[]*?, and commas as syntax: keep names to safe characters.
    parts = [f"{key}={value}" for key, value in overrides]
    return re.sub(r"[^A-Za-z0-9._=+-]", "_", "__".join(parts))


def changes_descriptors(config: Config, point: SweepPoint) -> bool:
    """True when the point's settings change the descriptors `config` makes."""
    return (DescriptorSettings.of(config.replace(**point.values)).key()
            != DescriptorSettings.of(config).key())


def descriptor_sources(config: Config, points: Sequence[SweepPoint], input_path: str,
                       root: str, descriptors_from: str | None = None,
                       reused: DescriptorProvenance | None = None,
                       extractors: Collection[str] = ()) -> list[str | None]:
    """Which descriptors each point reads: `descriptors_from` when its record `reused`
    matches the point's settings, else those of the point of `extractors` (the names of
    points that started extracting their own) with the same descriptor settings, else
    those of the first earlier point with them (OUTPUT/points/<name>/descriptors, or what
    that point read), else None (the point extracts its own).

    Raises ReuseError when `descriptors_from` is given but serves no point: it would be
    silently unused.
    """
    sources: list[str | None] = []
    first: dict[tuple, str] = {}
    for point in points:
        if point.name in extractors:
            group = DescriptorSettings.of(config.replace(**point.values)).key()
            first.setdefault(group, storage.join(root, "points", point.name, "descriptors"))
    refusals = []
    for point in points:
        point_config = config.replace(**point.values)
        group = DescriptorSettings.of(point_config).key()
        source = first.get(group)
        if point.name in extractors:
            source = None
        if source is None and reused is not None:
            difference = first_difference(
                reused, DescriptorProvenance.of(point_config, input_path))
            if difference is None:
                source = descriptors_from
            else:
                refusals.append((point, difference))
        sources.append(source)
        first.setdefault(group, source or storage.join(root, "points", point.name,
                                                       "descriptors"))
    if descriptors_from and refusals and descriptors_from not in sources:
        point, difference = refusals[0]
        asker = (f"sweep point {point.name}" if changes_descriptors(config, point)
                 else "this sweep")
        raise refusal(descriptors_from, difference, asker)
    return sources


def added_values(recorded: Any, asked: Any) -> str | None:
    """What the grid `asked` adds to the `recorded` one (both as sweep.json holds them:
    [[key, [values]], ...]), e.g. "vocabulary.k 10, 200"; None unless it holds the same
    keys in the same order, each with every value it had and at least one more."""
    if not (isinstance(recorded, list) and isinstance(asked, list)) or (
            [key for key, _values in recorded] != [key for key, _values in asked]):
        return None
    added = []
    for (key, had), (_key, has) in zip(recorded, asked, strict=True):
        if not set(had) <= set(has):
            return None
        if new := [value for value in has if value not in had]:
            added.append(f"{key} {', '.join(new)}")
    return "; ".join(added) or None


def grid_text(parameters: Any) -> str:
    """A grid as sweep.json holds it ([[key, [values]], ...]) written as `--param` takes
    it, e.g. "vocabulary.k=10,20; orb.dense_scales=[1.0],[1.0,1.5]"."""
    if not isinstance(parameters, list):
        return str(parameters)
    return "; ".join(f"{key}=" + ",".join(_value_text(key, value) for value in values)
                     for key, values in parameters)


def _value_text(key: str, value: str) -> str:
    # A list setting's value is written in brackets, as parse_parameter reads it.
    try:
        listed = isinstance(setting_value(Config(), key), tuple | list)
    except AttributeError:  # a key an older bovw recorded that this one does not know
        listed = False
    return f"[{value}]" if listed else value
