"""The run configuration: a TOML file overridden by command-line values, parsed once into a
typed, frozen Config that is passed down to every stage.

    settings.py     one dataclass per section (spark, ingest, orb, vocabulary, ..., cnn)
    blocks.py       the tone and colour blocks appended to the word histograms
    cloud.py        the [s3] and [emr] sections
    parsing.py      TOML and command-line text to each field's type
    redaction.py    which settings hold secrets, and how they are masked
    log_masking.py  secret values and AWS tokens masked in every log record (botocore, py4j)
    differences.py  how two sets of settings differ, said as --set writes them
    json_types.py   strict checks of values read back from JSON files bovw wrote

This module holds Config (every section, and the seed), how it is loaded and overridden,
and current_orb_table (the [orb] table of an older run or model file).

The configuration is parsed and validated once, before any Spark work starts. No stage
reads files, environment variables or globals to configure itself.
"""

from __future__ import annotations

import dataclasses
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bovw.config.blocks import ColourSettings, ToneSettings
from bovw.config.cloud import EMR_FAILURE_ACTIONS, S3_COMMITTERS, EmrSettings, S3Settings
from bovw.config.cnn import CNN_BACKBONES, CNN_RUNTIMES, CnnSettings
from bovw.config.encoding import (
    ASSIGNMENTS,
    DENSE_ENCODINGS,
    ENCODINGS,
    VLAD_MAX_LENGTH,
    VOCABULARY_SPACES,
    VOCABULARY_WIDTHS,
    HistogramSettings,
    VocabularySettings,
    pyramid_cells,
)
from bovw.config.parsing import (
    coerce,
    merge_overrides,
    parse_assignment,
    refuse_quoted_values,
    require,
    section_from_table,
    to_plain,
)
from bovw.config.redaction import (
    Redactor,
    redacted_settings,
    redactor_for,
    refuse_url_credentials,
)
from bovw.config.settings import (
    DESCRIPTOR_SCHEME,
    FIT_POLICIES,
    ClassifierSettings,
    IngestSettings,
    OrbSettings,
    PcaSettings,
    PredictSettings,
    SparkSettings,
)
from bovw.errors import ConfigError

# The largest Java long: Spark ML takes its seeds as one.
MAX_SEED = 2**63 - 1

__all__ = [
    "ASSIGNMENTS", "CNN_BACKBONES", "CNN_RUNTIMES", "DENSE_ENCODINGS", "DESCRIPTOR_SCHEME",
    "EMR_FAILURE_ACTIONS",
    "ENCODINGS", "FIT_POLICIES", "MAX_SEED", "S3_COMMITTERS", "VLAD_MAX_LENGTH",
    "VOCABULARY_SPACES", "VOCABULARY_WIDTHS", "ClassifierSettings", "CnnSettings",
    "ColourSettings", "Config", "ConfigError", "EmrSettings", "HistogramSettings",
    "IngestSettings", "OrbSettings", "PcaSettings", "PredictSettings", "S3Settings",
    "SparkSettings", "ToneSettings", "VocabularySettings", "apply_overrides",
    "config_from_dict", "current_orb_table", "load_config", "merge_overrides",
    "parse_assignment",
    "pyramid_cells", "redacted_settings",
]


@dataclass(frozen=True)
class Config:
    """The whole run configuration. `seed` drives every random choice of a run."""

    seed: int = 42
    spark: SparkSettings = field(default_factory=SparkSettings)
    ingest: IngestSettings = field(default_factory=IngestSettings)
    orb: OrbSettings = field(default_factory=OrbSettings)
    vocabulary: VocabularySettings = field(default_factory=VocabularySettings)
    histograms: HistogramSettings = field(default_factory=HistogramSettings)
    pca: PcaSettings = field(default_factory=PcaSettings)
    classifier: ClassifierSettings = field(default_factory=ClassifierSettings)
    predict: PredictSettings = field(default_factory=PredictSettings)
    tone: ToneSettings = field(default_factory=ToneSettings)
    colour: ColourSettings = field(default_factory=ColourSettings)
    cnn: CnnSettings = field(default_factory=CnnSettings)
    s3: S3Settings = field(default_factory=S3Settings)
    emr: EmrSettings = field(default_factory=EmrSettings)

    def validate(self) -> Config:
        """Check every section; returns self so calls chain. Raises ConfigError."""
        # Spark takes seeds as a Java long, numpy's generators only unsigned ones: a
        # negative seed failed with a numpy traceback mid-run, a larger one with Java's.
        require(0 <= self.seed <= MAX_SEED, f"seed must be between 0 and {MAX_SEED} "
                f"(got {self.seed})")
        for section in _sections(self):
            getattr(self, section).validate()
        encoding = self.histograms.encoding
        if encoding == "fisher":
            require(self.vocabulary.space == "bits", "histograms.encoding = \"fisher\" needs "
                    "vocabulary.space = \"bits\": its Bernoulli mixture models the 256 bits "
                    "of a descriptor")
        if encoding in DENSE_ENCODINGS:
            cells = pyramid_cells(self.histograms.pyramid_levels)
            length = self.vocabulary.k * VOCABULARY_WIDTHS[self.vocabulary.space] * cells
            require(length <= VLAD_MAX_LENGTH,
                    f"histograms.encoding = \"{encoding}\" with vocabulary.k="
                    f"{self.vocabulary.k}, vocabulary.space={self.vocabulary.space} and {cells} "
                    f"pyramid cells makes {length} values per image, more than "
                    f"{VLAD_MAX_LENGTH}; lower vocabulary.k ({encoding} takes a few dozen "
                    "words) or histograms.pyramid_levels")
        # Whatever a setting is called, a URL's user:password@ would be saved and shown.
        refuse_url_credentials(to_plain(self))
        return self

    def to_dict(self) -> dict[str, Any]:
        """A JSON/TOML-friendly dict of every setting (the effective config), secrets masked.

        Everything bovw saves or shows takes the config from here (run.json, summary.json,
        sweep.json, compare.json, the reports), so no output can forget to mask one; see
        redacted_settings for the rules. Run specs compare these dicts when a run resumes:
        two runs that differ only in a secret's value (a rotated key, a renewed session
        token) are the same run.
        """
        return redacted_settings(to_plain(self))

    def redactor(self) -> Redactor:
        """The secret-masking rules of this configuration (bovw.config.redaction)."""
        return redactor_for(self.spark.conf)

    def replace(self, **changes: Any) -> Config:
        """Return a copy with dotted-key changes, e.g. replace(**{"vocabulary.k": 50})."""
        return apply_overrides(self, changes)


def _sections(config: Config) -> list[str]:
    return [f.name for f in dataclasses.fields(config)
            if dataclasses.is_dataclass(getattr(config, f.name))]


def config_from_dict(data: Mapping[str, Any]) -> Config:
    """Build a validated Config from a nested dict (a parsed TOML document)."""
    hints = typing.get_type_hints(Config)
    known = {f.name for f in dataclasses.fields(Config)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(
            f"unknown config key {unknown[0]!r}; known top-level keys: " + ", ".join(sorted(known))
        )
    values: dict[str, Any] = {}
    for name, raw in data.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            if not isinstance(raw, Mapping):
                raise ConfigError(f"[{name}] must be a table")
            values[name] = section_from_table(hint, raw, f"{name}.")
        else:
            values[name] = coerce(raw, hint, name)
    return Config(**values).validate()


def load_config(path: str | Path | None = None,
                overrides: Mapping[str, Any] | None = None) -> Config:
    """Read a TOML file (or the built-in defaults when path is None) and apply overrides.

    `overrides` maps dotted keys ("vocabulary.k", "seed") to values, typically strings
    from the command line. Returns a validated Config; raises ConfigError.
    """
    data: dict[str, Any] = {}
    if path is not None:
        data = _read_toml(Path(path))
        refuse_quoted_values(Config, data)
    config = config_from_dict(data)
    return apply_overrides(config, overrides or {})


def _read_toml(path: Path) -> dict[str, Any]:
    """The TOML document at `path`; raises ConfigError saying what is wrong with the file."""
    if path.is_dir():
        raise ConfigError(f"config file {path} is a folder; fix: name a TOML file, e.g. "
                          "conf/local.toml")
    if not path.exists():
        raise ConfigError(f"config file not found: {path}")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"config file {path} is not UTF-8 text (byte 0x{error.object[error.start]:02x} "
            f"at offset {error.start}); fix: save it as UTF-8") from None
    except OSError as error:
        raise ConfigError(f"cannot read config file {path}: {error.strerror or error}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"config file {path} is not valid TOML: {error}") from None


def apply_overrides(config: Config, overrides: Mapping[str, Any]) -> Config:
    """Return a validated copy of `config` with dotted-key overrides applied."""
    data = to_plain(config)
    for dotted, value in overrides.items():
        parts = dotted.split(".")
        if len(parts) == 1:
            if parts[0] not in data or isinstance(data[parts[0]], dict):
                raise ConfigError(f"unknown config key {dotted!r}")
            data[parts[0]] = value
            continue
        section, *rest = parts
        if section not in data or not isinstance(data[section], dict):
            raise ConfigError(f"unknown config section in {dotted!r}")
        target = data[section]
        if rest[0] == "conf" and section == "spark" and len(rest) > 1:
            target["conf"] = {**target["conf"], ".".join(rest[1:]): value}
            continue
        if len(rest) != 1 or rest[0] not in target:
            raise ConfigError(
                f"unknown config key {dotted!r}; known keys in [{section}]: "
                + ", ".join(sorted(target))
            )
        target[rest[0]] = value
    return config_from_dict(data)


def current_orb_table(orb: Mapping[str, Any]) -> dict[str, Any]:
    """The [orb] table of a run or model file written by any bovw, as this bovw reads it.

    A table without descriptor_scheme was written before scheme 2; its descriptors equal
    this bovw's unless it sampled densely at a scale other than 1.0, which raises
    ConfigError saying so. Returns the table with the current scheme.
    """
    table = dict(orb)
    if "descriptor_scheme" in table:
        return table
    scales = [float(scale) for scale in table.get("dense_scales", OrbSettings.dense_scales)]
    if table.get("sampling", OrbSettings.sampling) == "dense" and scales != [1.0]:
        raise ConfigError(
            f"its descriptors come from a bovw before descriptor scheme {DESCRIPTOR_SCHEME}, "
            f"whose orb.dense_scales {scales} all described patches of orb.patch_size px; "
            "this bovw describes scale s with patches of patch_size * s px")
    table["descriptor_scheme"] = DESCRIPTOR_SCHEME
    return table
