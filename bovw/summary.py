"""summary.json: what one finished run, or comparison variant, produced, as typed data.

`RunSummary.to_json` is the only writer of summary.json (bovw.pipeline.run for a run,
bovw.experiments.compare for its CNN variant) and `RunSummary.from_json` the only reader
(the report, the sweep, the comparison and the CLI). The JSON keys are those bovw 0.2.0
wrote, so its files are read too: what it did not record reads as None. A summary.json
exists only once its folder is finished. Pure: no Spark.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bovw.config.json_types import matches

__all__ = ["SCORE_KEYS", "FeatureSettings", "HeadlineMetrics", "ImageCounts", "KeypointStats",
           "Reduction", "RunSummary", "VocabularyFit", "from_record", "listing_label"]

def listing_label(stage: str) -> str:
    """How tables name the listing's seconds ("ingest"): as the part of the `stage` after
    it that they are, "ingest (in descriptors)", so that the seconds shown add up to the
    total, which counts them once."""
    return f"ingest (in {stage})"


# The scores of a classifier on the Test images, as metrics.json holds them.
SCORE_KEYS = ("test_images", "accuracy", "macro_f1", "weighted_precision", "weighted_recall",
              "weighted_f1")


@dataclass(frozen=True)
class ImageCounts:
    """How many images a run read: `images` listed, `accepted` (described), `rejected`
    (unreadable, too large, outside the splits), accepted ones `per_split` ("Training",
    "Test"), distinct `classes`, and the classes with Test images only (None: not
    counted). A CNN variant adds the images without features and what its feature file or
    extractor gave (None elsewhere). When the images are of several sizes,
    `other_size_test` counts the Test images not of `training_size`, the Training images'
    median (width, height) (both None otherwise)."""

    images: int = 0
    accepted: int = 0
    rejected: int = 0
    per_split: Mapping[str, int] = field(default_factory=dict)
    classes: int = 0
    test_only_classes: tuple[str, ...] | None = None
    missing_features: int | None = None
    feature_rows: int | None = None
    unmatched_feature_rows: int | None = None
    label_mismatches: int | None = None
    extracted: int | None = None
    other_size_test: int | None = None
    training_size: tuple[int, int] | None = None

    def other_size_note(self) -> str | None:
        """What the Test images not of the Training size mean for `bovw predict`, or None
        when there are none."""
        if not self.other_size_test or not self.training_size:
            return None
        width, height = self.training_size
        return (f"{self.other_size_test} Test images are not {width}x{height} (the Training "
                f"median): described here as they are, framed to {width}x{height} by bovw "
                "predict (predict.fit), so its answers on them can differ")


@dataclass(frozen=True)
class KeypointStats:
    """Descriptors per accepted image (mean, min, median, max), the images without any,
    all of them (`total`) and, of the Training images' `training` descriptors, those
    `set_aside` for the vocabulary sample."""

    mean: float = 0.0
    min: int = 0
    median: int = 0
    max: int = 0
    images_without_keypoints: int = 0
    total: int | None = None
    training: int | None = None
    set_aside: int | None = None


@dataclass(frozen=True)
class VocabularyFit:
    """The KMeans vocabulary: `k` words fitted on `sample_descriptors` descriptors in
    `iterations` Lloyd iterations, to `training_cost` (sum of squared distances);
    `mean_squared_distance` = training_cost / sample_descriptors, unrounded: soft
    assignment's sigma^2 (bovw.image.words.soft_words; None before soft assignment).
    With histograms.encoding = "fisher", the Bernoulli mixture fitted from the words
    (bovw.pipeline.mixture): its EM rounds and mean log-likelihood per sampled descriptor
    in nats (None otherwise)."""

    k: int = 0
    sample_descriptors: int = 0
    iterations: int = 0
    training_cost: float | None = None
    mean_squared_distance: float | None = None
    mixture_iterations: int | None = None
    mixture_log_likelihood: float | None = None


@dataclass(frozen=True)
class Reduction:
    """The PCA: `components` kept (of `components_requested`; fewer when the Training
    features vary in fewer directions), the share of the Training variance each explains
    and all of them together; `input_dimension` is the length of the vectors it reduced
    (recorded for CNN features)."""

    components: int = 0
    components_requested: int | None = None
    input_dimension: int | None = None
    explained_variance_total: float = 0.0
    explained_variance: tuple[float, ...] = ()

    def components_text(self) -> str:
        """"K components", saying when fewer were kept than asked for, and why."""
        kept, asked = self.components, self.components_requested
        capped = (f" (pca.components={asked} capped: the Training features span only {kept} "
                  "dimensions)" if asked and kept and kept < asked else "")
        return f"{kept} components{capped}"


@dataclass(frozen=True)
class HeadlineMetrics:
    """The classifier's scores on the scored Test images (SCORE_KEYS), its LBFGS
    iterations, and the Test images of classes it could not learn (left out of the
    scores). metrics.json holds the rest (per class, the confusion matrix)."""

    test_images: int = 0
    accuracy: float | None = None
    macro_f1: float | None = None
    weighted_precision: float | None = None
    weighted_recall: float | None = None
    weighted_f1: float | None = None
    classifier_iterations: int | None = None
    test_only_classes: tuple[str, ...] | None = None
    test_only_images: int | None = None

    @classmethod
    def of(cls, metrics: Mapping[str, Any]) -> HeadlineMetrics:
        """The headline of a metrics.json dict (its other keys are left out)."""
        return from_record(cls, metrics)


@dataclass(frozen=True)
class FeatureSettings:
    """The settings that shaped an ORB run's features, read from its summary's "config"
    tables (Config.to_dict's). A setting a record lacks was added after the bovw that
    wrote it, and reads as what that bovw did: one pyramid level, no power (1.0), the
    descriptors' 32 byte values, visual words, no tone block, no colour bins. (A Config
    parsed from the record would fill those gaps with today's defaults instead: 3 levels,
    power 0.5, the tone block on.) `colour_bins` is the colour block's length whether or
    not the run enabled it; `sampling` is None when the [orb] table does not say."""

    space: str = "bytes"
    pyramid_levels: int = 1
    power: float = 1.0
    encoding: str = "words"
    tone_bins: int = 0
    colour_bins: int = 0
    sampling: str | None = None
    dense_step: int | None = None
    dense_scales: tuple[float, ...] = ()

    @classmethod
    def of(cls, config: Mapping[str, Any]) -> FeatureSettings:
        """The feature settings a summary's `config` records; a table that is not one, or
        a value of another type, reads as missing."""
        histograms, tone, colour, orb = (_table(config, name) for name in
                                         ("histograms", "tone", "colour", "orb"))
        return cls(
            space=_value(_table(config, "vocabulary"), "space", str, cls.space),
            pyramid_levels=_value(histograms, "pyramid_levels", int, cls.pyramid_levels),
            power=float(_value(histograms, "power", float, cls.power)),
            encoding=_value(histograms, "encoding", str, cls.encoding),
            tone_bins=_value(tone, "bins", int, 0) if tone.get("enabled") is True else 0,
            colour_bins=(_value(colour, "hue_bins", int, 0)
                         * _value(colour, "saturation_bins", int, 0)
                         * _value(colour, "value_bins", int, 0)),
            sampling=_value(orb, "sampling", str, None),
            dense_step=_value(orb, "dense_step", int, None),
            dense_scales=tuple(float(scale) for scale in
                               _value(orb, "dense_scales", tuple[float, ...], ())),
        )


def _table(config: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    table = config.get(name)
    return table if isinstance(table, Mapping) else {}


def _value(table: Mapping[str, Any], key: str, hint: Any, default: Any) -> Any:
    """table[key] when it has the JSON type `hint` (json_types.matches: an integer is a
    number, true and false are neither), else `default`."""
    value = table.get(key)
    return value if matches(value, hint) else default


@dataclass(frozen=True)
class RunSummary:
    """What summary.json says of a finished run folder (or comparison variant).

    `timings` are seconds per stage (JSON "timings_seconds"), in the order they ran;
    `config` the effective settings as Config.to_dict gives them (secrets masked);
    `features` names the features when they are not visual words (a CNN variant, which
    has no keypoints or vocabulary); `resumed_stages` the stages an earlier attempt had
    finished; `descriptors_reused` whether the run read the descriptors of another
    (`--descriptors-from`, a sweep point sharing them) instead of extracting its own:
    None when not recorded (bovw 0.2.0, a CNN variant), see `reused_descriptors`.
    """

    output: str
    counts: ImageCounts
    reduction: Reduction
    metrics: HeadlineMetrics
    timings: Mapping[str, float] = field(default_factory=dict)
    config: Mapping[str, Any] = field(default_factory=dict)
    keypoints: KeypointStats | None = None
    vocabulary: VocabularyFit | None = None
    features: str | None = None
    resumed_stages: tuple[str, ...] | None = None
    descriptors_reused: bool | None = None

    @property
    def reused_descriptors(self) -> bool:
        """Whether the descriptors were another run's. A bovw 0.2.0 summary does not say:
        a run that extracted its own timed their listing ("ingest"), one that reused them
        did not."""
        if self.descriptors_reused is not None:
            return self.descriptors_reused
        return "ingest" not in self.timings

    @property
    def feature_settings(self) -> FeatureSettings:
        """The settings that shaped the features, as `config` records them."""
        return FeatureSettings.of(self.config)

    @property
    def total_seconds(self) -> float:
        """The seconds of every stage together; the descriptors stage's time includes its
        listing ("ingest"), which is not counted twice."""
        return sum(seconds for stage, seconds in self.timings.items() if stage != "ingest")

    def stage_seconds(self) -> list[tuple[str, float]]:
        """(stage, seconds) in the order the stages ran, the listing named as the part of
        the stage after it that it is ("ingest (in descriptors)"): they add up to
        total_seconds."""
        stages = list(self.timings)
        return [(listing_label(stages[at + 1]) if stage == "ingest" and at + 1 < len(stages)
                 else stage, seconds) for at, (stage, seconds) in enumerate(self.timings.items())]

    @property
    def feature_seconds(self) -> float:
        """The seconds spent making the features: the descriptors stage (its listing
        included, as in total_seconds) or the CNN features stage."""
        return self.timings.get("descriptors", 0.0) + self.timings.get("cnn_features", 0.0)

    def to_json(self) -> str:
        """summary.json's text: to_dict as indented JSON."""
        return json.dumps(self.to_dict(), indent=2)

    def to_dict(self) -> dict[str, Any]:
        """The summary as summary.json's JSON object (keys in bovw 0.2.0's order; values
        not recorded left out; a CNN variant's keypoints and vocabulary as {})."""
        data: dict[str, Any] = {
            "output": self.output,
            "counts": _to_plain(self.counts),
            "keypoints": _to_plain(self.keypoints) if self.keypoints else {},
            "vocabulary": _to_plain(self.vocabulary) if self.vocabulary else {},
        }
        if self.features is not None:
            data["features"] = self.features
        data["reduction"] = _to_plain(self.reduction)
        data["metrics"] = _to_plain(self.metrics)
        data["timings_seconds"] = dict(self.timings)
        if self.resumed_stages is not None:
            data["resumed_stages"] = list(self.resumed_stages)
        if self.descriptors_reused is not None:
            data["descriptors_reused"] = self.descriptors_reused
        data["config"] = dict(self.config)
        return data

    @classmethod
    def from_json(cls, text: str) -> RunSummary:
        """Read summary.json's text, as any bovw wrote it; raises ValueError when it is not
        a JSON object."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("summary.json does not hold a JSON object")
        resumed = data.get("resumed_stages")
        return cls(
            output=str(data.get("output", "")),
            counts=from_record(ImageCounts, data.get("counts")),
            reduction=from_record(Reduction, data.get("reduction")),
            metrics=from_record(HeadlineMetrics, data.get("metrics")),
            timings=dict(data.get("timings_seconds") or {}),
            config=dict(data.get("config") or {}),
            keypoints=from_record(KeypointStats, data["keypoints"]) if data.get("keypoints")
            else None,
            vocabulary=from_record(VocabularyFit, data["vocabulary"]) if data.get("vocabulary")
            else None,
            features=data.get("features"),
            resumed_stages=tuple(resumed) if resumed is not None else None,
            descriptors_reused=data.get("descriptors_reused"),
        )


def _to_plain(value: Any) -> dict[str, Any]:
    """A section as JSON: its fields in order, None ones left out, tuples as lists."""
    plain = {}
    for item in dataclasses.fields(value):
        entry = getattr(value, item.name)
        if entry is None:
            continue
        plain[item.name] = (list(entry) if isinstance(entry, tuple)
                            else dict(entry) if isinstance(entry, Mapping) else entry)
    return plain


def from_record(cls: type, data: Any) -> Any:
    """A section (`cls`: ImageCounts, KeypointStats, ...) from its JSON object, as
    summary.json or a stage record holds it: known keys only (a newer bovw's extra keys
    are ignored), lists as tuples where the field is one, missing keys their defaults."""
    if not isinstance(data, Mapping):
        return cls()
    hints = typing.get_type_hints(cls)
    values = {}
    for item in dataclasses.fields(cls):
        if item.name in data:
            value = data[item.name]
            values[item.name] = (tuple(value) if isinstance(value, list)
                                 and _is_tuple(hints[item.name]) else value)
    return cls(**values)


def _is_tuple(hint: Any) -> bool:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return any(_is_tuple(arg) for arg in typing.get_args(hint))
    return typing.get_origin(hint) is tuple
