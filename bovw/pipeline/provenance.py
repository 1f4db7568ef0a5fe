"""What made a descriptors output, and whether a run may reuse it.

The descriptors stage writes, next to its Parquet files, `_bovw_descriptors.json` (Spark's
Parquet reader skips names starting with "_"): the input folder and every setting that
decides what the stage writes (DescriptorSettings). Whatever reuses descriptors (`bovw
run --descriptors-from`, sweep points sharing them, `bovw compare`) reads that record and
compares it with what its own configuration asks for before any work, and refuses a
contradiction with one line naming the first differing setting, both values and the fix.
Descriptors written by bovw 0.2.0 carry no record: for a run's own `RUN/descriptors` it is
rebuilt from the run's run.json.

`bovw.predict.contradiction` does the same for `bovw predict`: a model describes photos with the
settings it was trained with, so an explicit setting that contradicts them is refused.

The record types and comparisons are pure; only read_record/write_record touch storage.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bovw.config import (
    ColourSettings,
    Config,
    ConfigError,
    IngestSettings,
    OrbSettings,
    ToneSettings,
    config_from_dict,
    current_orb_table,
)
from bovw.config.blocks import BLOCK_SECTIONS, without_new_blocks
from bovw.config.differences import Difference, covered, show
from bovw.errors import InputError, ReuseError
from bovw.locations import location, within
from bovw.version import __version__

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = [
    "IMAGE_SET_KEYS", "RECORD_NAME", "DescriptorProvenance", "DescriptorSettings",
    "changed_since", "check_kept", "check_reuse", "first_difference",
    "read_record", "refusal", "refuse_changed_input", "refuse_changed_since", "write_record",
]

RECORD_NAME = "_bovw_descriptors.json"
RECORD_FORMAT = "bovw-descriptors"
RECORD_VERSION = 1
# The version of what the descriptors stage computes from given settings (bovw.image.orb,
# bovw.pipeline.descriptors, bovw.image.colour, bovw.image.tone). Bump it whenever the same
# settings start giving other descriptors, so that older ones are not reused as if they
# were the same. bovw 0.2.0: 1. 2: the set-aside vocabulary sample is drawn by the image's
# class folder and file name instead of its whole path.
EXTRACTION_VERSION = 2
_BLOCK_SWITCHES = tuple(f"{section}.enabled" for section in BLOCK_SECTIONS)
# What a descriptors output of bovw 0.2.0 (no record) is read from: its run's folder.
_RUN_SPEC, _MARKER = "run.json", "_stages/descriptors.json"
# The settings that decide which images a CNN comparison variant reads from descriptors.
IMAGE_SET_KEYS = ("input", "ingest.", "seed", "orb.max_pixels")


@dataclass(frozen=True)
class DescriptorSettings:
    """Every setting that changes what the descriptors stage writes.

    orb: how images are decoded and described; colour and tone: the colour and tone blocks
    (computed only when enabled; their weights are applied later and play no part here);
    ingest: which files are listed, rejected unread, and how a dataset without
    Training/Test folders is split; seed: that split and the per-image vocabulary
    sample; sample_per_image: the size of that sample (the `sample` column).
    """

    orb: OrbSettings
    colour: ColourSettings
    ingest: IngestSettings
    seed: int
    sample_per_image: int
    tone: ToneSettings = ToneSettings(enabled=False)

    @classmethod
    def of(cls, config: Config) -> DescriptorSettings:
        """The descriptor settings of `config`."""
        return cls(config.orb, config.colour, config.ingest, config.seed,
                   config.vocabulary.sample_per_image, config.tone)

    def items(self) -> Iterator[tuple[str, Any]]:
        """(dotted key, comparable value) pairs, in the order differences are reported.

        The orb settings the sampling does not use are left out; a disabled colour or
        tone block contributes only its `enabled`; the extensions
        compare as a set, in lower case, as the listing matches them.
        """
        unused = self.orb.unused()
        for name, value in _fields(self.orb):
            if name not in unused:
                yield f"orb.{name}", value
        for section in BLOCK_SECTIONS:
            block = getattr(self, section)
            yield f"{section}.enabled", block.enabled
            if block.enabled:
                for name, value in _fields(block):
                    if name not in ("enabled", "weight"):
                        yield f"{section}.{name}", value
        yield "ingest.extensions", tuple(sorted({ext.lower().lstrip(".")
                                                 for ext in self.ingest.extensions}))
        yield "ingest.test_fraction", self.ingest.test_fraction
        yield "ingest.max_file_bytes", self.ingest.max_file_bytes
        yield "seed", self.seed
        yield "vocabulary.sample_per_image", self.sample_per_image

    def key(self) -> tuple[tuple[str, Any], ...]:
        """A hashable identity: two settings with the same key write the same descriptors."""
        return tuple(self.items())

    def to_dict(self) -> dict[str, Any]:
        """The settings as a partial configuration (TOML/JSON-friendly)."""
        plain = Config(seed=self.seed, orb=self.orb, colour=self.colour, tone=self.tone,
                       ingest=self.ingest).to_dict()
        return {"seed": plain["seed"], "orb": plain["orb"], "colour": plain["colour"],
                "tone": plain["tone"], "ingest": plain["ingest"],
                "vocabulary": {"sample_per_image": self.sample_per_image}}

    @classmethod
    def from_dict(cls, data: Any) -> DescriptorSettings:
        """Inverse of to_dict (missing settings take their defaults, except a missing tone
        table: descriptors of a bovw before the tone block have none). Raises ConfigError."""
        if not isinstance(data, dict):
            raise ConfigError("settings must be a table")
        return cls.of(config_from_dict(without_new_blocks(data)))


@dataclass(frozen=True)
class DescriptorProvenance:
    """Where a descriptors output came from: the input folder (bovw.locations.location) and the
    settings; `origin` says where this record was read (for messages)."""

    input: str
    settings: DescriptorSettings
    extraction: int = EXTRACTION_VERSION
    bovw_version: str = __version__
    origin: str = RECORD_NAME
    # The digest of the input's listing when they were extracted (ingest.input_digest;
    # None in a record of an earlier bovw, which recorded none for S3 or HDFS).
    listing: str | None = None

    @classmethod
    def of(cls, config: Config, input_path: str, listing: str | None = None
           ) -> DescriptorProvenance:
        """What a run of `config` on `input_path` writes (or needs to read)."""
        return cls(location(input_path), DescriptorSettings.of(config),
                   listing=listing)

    def to_json(self) -> str:
        """The record as the JSON text of RECORD_NAME."""
        fields = {"format": RECORD_FORMAT, "format_version": RECORD_VERSION,
                  "bovw_version": self.bovw_version, "extraction": self.extraction,
                  "input": self.input, "settings": self.settings.to_dict()}
        if self.listing is not None:
            fields["listing"] = self.listing
        return json.dumps(fields, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, source: str) -> DescriptorProvenance:
        """Parse a record written by to_json. Raises ReuseError naming `source`."""
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or data.get("format") != RECORD_FORMAT:
                raise ValueError(f"not a {RECORD_FORMAT} record")
            if data.get("format_version") != RECORD_VERSION:
                raise ValueError(f"format_version {data.get('format_version')!r} (this bovw "
                                 f"reads {RECORD_VERSION}; upgrade bovw)")
            if not isinstance(data.get("input"), str):
                raise ValueError("no input folder")
            if not isinstance(data.get("extraction"), int):
                raise ValueError("no extraction version")
            settings = DescriptorSettings.from_dict(data.get("settings"))
        except (ValueError, ConfigError) as error:
            raise ReuseError(f"{source} is not a usable descriptors record: "
                             f"{str(error).splitlines()[0]}") from None
        listing = data.get("listing")
        return cls(data["input"], settings, data["extraction"],
                   str(data.get("bovw_version", "")), source,
                   listing if isinstance(listing, str) else None)

    @classmethod
    def from_run_spec(cls, text: str, source: str) -> DescriptorProvenance:
        """The record of a run's own descriptors, rebuilt from its run.json (bovw 0.2.0)."""
        try:
            spec = json.loads(text)
            input_path = spec["input"]
            tables = dict(spec["config"])
        except (ValueError, KeyError, TypeError) as error:
            raise ReuseError(f"{source} is not a readable run.json: "
                             f"{str(error).splitlines()[0]}") from None
        try:
            # A run.json without orb.descriptor_scheme was written before scheme 2.
            tables["orb"] = current_orb_table(tables.get("orb", {}))
        except ConfigError as error:
            raise ReuseError(f"{source}: {error}; extract the descriptors again with this "
                             "bovw (leave out --descriptors-from)") from None
        try:
            config = config_from_dict(without_new_blocks(tables))
        except (ValueError, TypeError, ConfigError) as error:
            raise ReuseError(f"{source} is not a readable run.json: "
                             f"{str(error).splitlines()[0]}") from None
        return cls(location(input_path), DescriptorSettings.of(config), 1, "", source)


def first_difference(made: DescriptorProvenance, asked: DescriptorProvenance,
                     keys: Collection[str] | None = None) -> Difference | None:
    """The first way `made` cannot stand for what `asked` needs, or None when it can.

    The extraction versions and input folders must be the same, and every setting of
    asked.settings.items() equal, except that descriptors with a colour or tone block serve
    a run without one (the column is then ignored). `keys` (prefixes, e.g. IMAGE_SET_KEYS)
    limits the comparison of input and settings.
    """
    def wanted(key: str) -> bool:
        return keys is None or covered(key, keys)

    if made.extraction != asked.extraction:
        return Difference("extraction", made.extraction, asked.extraction)
    if wanted("input") and made.input != asked.input:
        return Difference("input", made.input, asked.input)
    produced = dict(made.settings.items())
    for key, value in asked.settings.items():
        if key in _BLOCK_SWITCHES and not value:
            continue  # a block that is not asked for is never read
        if wanted(key) and produced.get(key) != value:
            return Difference(key, produced.get(key), value)
    return None


def refusal(source: str, difference: Difference, asker: str = "this run",
            fix: str = "drop --descriptors-from or use the same setting") -> ReuseError:
    """The one-line error for reused descriptors `source` that differ by `difference`."""
    if difference.key == "extraction":
        return ReuseError(f"--descriptors-from {source} was made by another version of the "
                          f"descriptor extraction ({difference.made}; this bovw makes "
                          f"{difference.asked}): drop --descriptors-from to extract them again")
    if difference.key == "input":
        return ReuseError(f"--descriptors-from {source} was made from the images under "
                          f"{difference.made}, {asker} reads {difference.asked}: drop "
                          "--descriptors-from or give the same --input")
    if difference.key in _BLOCK_SWITCHES and difference.asked:
        fix = (f"give descriptors made with {difference.key}=true (they serve runs with and "
               "without the block), or drop --descriptors-from")
    made = "(not set)" if difference.made is None else show(difference.made)
    return ReuseError(f"--descriptors-from {source} was made with {difference.key}={made}, "
                      f"{asker} asks for {show(difference.asked)}: {fix}")


def _fields(settings: Any) -> Iterator[tuple[str, Any]]:
    for field in dataclasses.fields(settings):
        yield field.name, getattr(settings, field.name)


# ---------------------------------------------------------------- storage

def write_record(spark: SparkSession, folder: str, provenance: DescriptorProvenance) -> None:
    """Write `provenance` as folder/_bovw_descriptors.json (after the Parquet files)."""
    from bovw.spark import storage

    storage.write_text(spark, storage.join(folder, RECORD_NAME), provenance.to_json())


def read_record(spark: SparkSession, folder: str) -> DescriptorProvenance:
    """The record of the descriptors at `folder`; no Spark job runs.

    Descriptors of bovw 0.2.0 have none: when `folder` is RUN/descriptors of a run that
    extracted them and finished its descriptors stage, it is rebuilt from RUN/run.json.
    Raises ReuseError (an OutputError) when the folder is missing or has no usable record.
    """
    from bovw.spark import storage

    folder = folder.rstrip("/")
    if not storage.exists(spark, folder):
        raise ReuseError(f"--descriptors-from {folder} does not exist")
    record = storage.join(folder, RECORD_NAME)
    if storage.exists(spark, record):
        return DescriptorProvenance.from_json(storage.read_text(spark, record), record)
    parent, _slash, name = folder.rpartition("/")
    spec, marker = storage.join(parent, _RUN_SPEC), storage.join(parent, _MARKER)
    # A run that extracted its own descriptors (run.json without descriptors_from), and
    # finished that stage, made RUN/descriptors with its run.json's settings, even if the
    # run folder has been moved since.
    if name == "descriptors" and parent and storage.exists(spark, spec) and storage.exists(
            spark, marker):
        text = storage.read_text(spark, spec)
        if not _spec_field(text, "descriptors_from"):
            return DescriptorProvenance.from_run_spec(text, spec)
    raise ReuseError(f"--descriptors-from {folder} has no record of the settings that made it "
                     f"({RECORD_NAME}) and is not the descriptors folder of a finished bovw "
                     "run: give RUN/descriptors of a run made with these settings, or drop "
                     "--descriptors-from")


def _spec_field(text: str, name: str) -> Any:
    try:
        return json.loads(text).get(name)
    except (ValueError, AttributeError):
        return None


def check_reuse(spark: SparkSession, source: str, config: Config, input_path: str, *,
                asker: str = "this run", keys: Collection[str] | None = None,
                output: str | None = None, overwrite: bool = False) -> DescriptorProvenance:
    """Refuse, before any work, descriptors at `source` that cannot stand for those a run
    of `config` on `input_path` would write (see first_difference; `keys` limits the
    comparison). With `overwrite`, descriptors inside `output` (which is deleted first)
    are refused too. Returns the record read. Raises ReuseError."""
    if overwrite and output is not None:
        check_kept(source, output)
    made = read_record(spark, source)
    difference = first_difference(made, DescriptorProvenance.of(config, input_path), keys)
    if difference is not None:
        raise refusal(source, difference, asker)
    if keys is None or covered("input", keys):
        refuse_changed_since(spark, source, made, input_path, config)
    return made


def refuse_changed_since(spark: SparkSession, source: str, made: DescriptorProvenance,
                         input_path: str, config: Config) -> None:
    """Raise ReuseError when `input_path` has changed since the descriptors at `source`
    (their record: `made`) were extracted from it (changed_since)."""
    if changed_since(spark, made, input_path, config):
        raise ReuseError(f"--descriptors-from {source}: the images under {input_path} have "
                         "changed since these descriptors were extracted from them (files "
                         "added, removed or rewritten), and a run on them would score images "
                         "the folder no longer holds; fix: drop --descriptors-from to extract "
                         "them again (a sweep: run it into a new --output)")


def refuse_changed_input(spark: SparkSession, descriptors: str, input_path: str,
                         config: Config) -> None:
    """Raise InputError when `input_path` has changed since a run extracted its
    `descriptors` from it: resumed, the run would score images the folder no longer holds."""
    if changed_since(spark, read_record(spark, descriptors), input_path, config):
        raise InputError(f"the images under {input_path} have changed since this run "
                         f"extracted their descriptors into {descriptors} (files added, "
                         "removed or rewritten): resumed, it would score images the folder no "
                         "longer holds; fix: run again with --overwrite, or into a new --output")


def changed_since(spark: SparkSession, made: DescriptorProvenance, input_path: str,
                  config: Config) -> bool:
    """Whether `input_path` no longer holds the image files `made` recorded (local or not:
    bovw.pipeline.ingest.input_digest); False when `made` recorded none."""
    # Here, not at the top: the ingest module loads pyspark, and this module loads
    # without it (it names SparkSession for type checking only).
    from bovw.pipeline.ingest import input_digest

    return made.listing is not None and input_digest(spark, input_path,
                                                     config.ingest) != made.listing


def check_kept(source: str, output: str) -> None:
    """Refuse reusing descriptors inside an `output` that --overwrite replaces: the old
    run, descriptors included, is deleted once the new one is complete, and the new run
    would name descriptors that no longer exist. Local folders are compared where their
    symbolic links lead. Raises ReuseError."""
    if within(source, output):
        raise ReuseError(f"--descriptors-from {source} lies inside --output {output}, which "
                         "--overwrite replaces, deleting them once the new run is "
                         "complete: choose another --output, or copy the descriptors out "
                         "first")
