"""Prediction without Spark or a JVM: a trained run, exported to one small file, applied to
the bytes of a photo. This is the piece a mobile back end embeds.

    predictor = Predictor.load("model.npz")
    prediction = predictor.predict(photo_bytes)      # Prediction: top classes, notes
    prediction.label, prediction.probability, prediction.to_dict()

The arithmetic is the Spark pipeline's, step for step:
ORB (bovw.features) -> nearest visual word, or the soft_neighbours nearest with their
shares (bovw.words) -> (spatial-pyramid) word counts -> times IDF (when histograms.tfidf)
-> to the power histograms.power -> L2-normalised (when histograms.l2; a zero vector stays
zero, as with Spark's Normalizer) -> followed by weight * sqrt(tone block) and weight *
sqrt(colour block) when the model has them (bovw.tone, bovw.colour) -> x @ pc (Spark's
PCAModel does not center) -> softmax(W x + b) (Spark's LogisticRegressionModel keeps its
coefficients on the original feature scale).

Photos that are not the training size (a phone photo) are first made the training shape,
see `fit_to_training_size`. The model file is a versioned NumPy .npz, see `model_to_bytes`.
This module must not import pyspark: `import bovw.predictor` stays light.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import json
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from bovw import __version__
from bovw.colour import colour_histogram, to_rgb
from bovw.config import (
    FIT_POLICIES,
    ColourSettings,
    ConfigError,
    HistogramSettings,
    OrbSettings,
    PredictSettings,
    ToneSettings,
    config_from_dict,
    current_orb_table,
)
from bovw.features import (
    DESCRIPTOR_BYTES,
    EMPTY_DESCRIPTORS,
    EMPTY_POSITIONS,
    ImageRejected,
    describe_keypoints,
    open_image,
    to_grey,
)
from bovw.fruits import FruitInfo
from bovw.tone import tone_histogram
from bovw.words import histogram_length, scoring_matrix, word_counts

MODEL_FORMAT = "bovw-model"
MODEL_FORMAT_VERSION = 1
# The blocks of the vector PCA sees, in order. The tone and colour blocks' settings are in
# the metadata, and their lengths are part of pc's rows.
KNOWN_FEATURE_BLOCKS = ("words", "tone", "colour")
# Fixed member timestamps: the same model always gives byte-identical files.
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


class ModelFileError(ValueError):
    """A model file that cannot be used; the message says what to do."""


@dataclass(frozen=True)
class ExportedModel:
    """Everything prediction needs, as plain arrays and settings.

    centers (k, 32) float32 visual words; idf (d,) or None when TF-IDF is off, d being the
    histogram length (k times the pyramid cells); pc (d + c, p) principal axes, c the
    colour block's length (0 without); coefficients (C, p) and intercepts (C,) of the
    logistic regression; classes in the classifier's index order; the ORB and histogram
    settings of the run; training_size (width, height) of its Training images; `tone` and
    `colour` the tone and colour blocks' settings when the run had them (feature_blocks then
    lists them after "words", tone first); word_variance the sigma^2 of soft assignment
    (the vocabulary sample's mean squared distance to its nearest word), needed when
    histograms.assignment is "soft".
    """

    classes: tuple[str, ...]
    centers: np.ndarray
    idf: np.ndarray | None
    pc: np.ndarray
    coefficients: np.ndarray
    intercepts: np.ndarray
    orb: OrbSettings
    histograms: HistogramSettings
    training_size: tuple[int, int]
    feature_blocks: tuple[str, ...] = ("words",)
    fruits: Mapping[str, FruitInfo] = field(default_factory=dict)
    source: Mapping[str, Any] = field(default_factory=dict)
    colour: ColourSettings | None = None
    tone: ToneSettings | None = None
    word_variance: float | None = None

    @functools.cached_property
    def scoring(self) -> np.ndarray:
        """scoring_matrix(centers), made once per model rather than once per photo."""
        return scoring_matrix(self.centers)

    def validate(self, source: str = "model") -> ExportedModel:
        """Check that the arrays fit together; returns self. Raises ModelFileError."""
        k = self.centers.shape[0] if self.centers.ndim == 2 else -1
        words = histogram_length(max(k, 0), self.histograms.pyramid_levels)
        length = words + sum(block.dimension for block in (self.tone, self.colour)
                             if block is not None)
        classes = len(self.classes)
        problems = []
        if self.centers.ndim != 2 or self.centers.shape[1] != DESCRIPTOR_BYTES or k < 1:
            problems.append(f"centers has shape {self.centers.shape}, expected (k, 32)")
        if self.histograms.tfidf != (self.idf is not None):
            problems.append("idf must be present exactly when histograms.tfidf is true")
        if self.idf is not None and self.idf.shape != (words,):
            problems.append(f"idf has shape {self.idf.shape}, expected ({words},)")
        if self.pc.ndim != 2 or self.pc.shape[0] != length:
            problems.append(f"pc has shape {self.pc.shape}, expected ({length}, components)")
        components = self.pc.shape[1] if self.pc.ndim == 2 else -1
        if self.coefficients.shape != (classes, components):
            problems.append(f"coefficients have shape {self.coefficients.shape}, "
                            f"expected ({classes}, {components})")
        if self.intercepts.shape != (classes,):
            problems.append(f"intercepts have shape {self.intercepts.shape}, "
                            f"expected ({classes},)")
        if classes < 2:
            problems.append("a model needs at least 2 classes")
        unknown = [block for block in self.feature_blocks if block not in KNOWN_FEATURE_BLOCKS]
        if unknown:
            problems.append(f"feature block {unknown[0]!r} is unknown to bovw {__version__}; "
                            "upgrade bovw")
        expected = feature_blocks(self.tone is not None, self.colour is not None)
        if not unknown and self.feature_blocks != expected:
            problems.append(f"feature_blocks {list(self.feature_blocks)} do not fit the model: "
                            f"expected {list(expected)}")
        if self.histograms.neighbours > 1 and (self.word_variance is None
                                               or not self.word_variance >= 0.0):
            problems.append(f"soft assignment needs a word_variance >= 0 "
                            f"(got {self.word_variance})")
        if min(self.training_size) < 1:
            problems.append(f"training_size {self.training_size} must be positive")
        if problems:
            raise ModelFileError(f"{source} is not a usable bovw model: {problems[0]}")
        return self


def feature_blocks(tone: bool, colour: bool) -> tuple[str, ...]:
    """The blocks of a model's feature vector, in order, given which extra blocks it has."""
    return ("words",) + (("tone",) if tone else ()) + (("colour",) if colour else ())


# ---------------------------------------------------------------------------- the arithmetic

def word_histogram(descriptors: np.ndarray, positions: np.ndarray, centers: np.ndarray,
                   pyramid_levels: int = 1, scoring: np.ndarray | None = None,
                   neighbours: int = 1, variance: float = 0.0) -> np.ndarray:
    """Raw counts of each visual word among an image's descriptors, per spatial-pyramid
    cell when pyramid_levels > 1 (positions as stored by bovw.features): a float64 array of
    histogram_length(k, pyramid_levels) bins. `scoring` is scoring_matrix(centers) when
    the caller keeps it; neighbours > 1 shares each descriptor among its nearest words
    (bovw.words.word_counts)."""
    histogram = np.zeros(histogram_length(len(centers), pyramid_levels))
    bins, counts = word_counts(descriptors, centers, positions, pyramid_levels, scoring,
                               neighbours, variance)
    histogram[bins] = counts
    return histogram


def weighted_histogram(histogram: np.ndarray, idf: np.ndarray | None, l2: bool,
                       power: float = 1.0) -> np.ndarray:
    """The histogram times `idf` (when given), to the `power`, then divided by its L2 norm
    (when `l2`). A zero vector stays zero, like with Spark's Normalizer."""
    weighted = histogram * idf if idf is not None else histogram.copy()
    if power != 1.0:
        weighted = np.power(weighted, power)
    if l2:
        norm = float(np.sqrt(np.dot(weighted, weighted)))
        if norm > 0.0:
            weighted = weighted / norm
    return weighted


def feature_vector(descriptors: np.ndarray, positions: np.ndarray, model: ExportedModel,
                   colour: np.ndarray | None = None, tone: np.ndarray | None = None
                   ) -> np.ndarray:
    """The vector the PCA sees for one image: its weighted word histogram, then, for each
    block the model has, weight * sqrt(`tone`) and weight * sqrt(`colour`) as
    bovw.colour.append_blocks makes them (zeros when a block is missing or of another
    length, as in the pipeline)."""
    settings = model.histograms
    counts = word_histogram(descriptors, positions, model.centers, settings.pyramid_levels,
                            model.scoring, settings.neighbours, model.word_variance or 0.0)
    blocks = [weighted_histogram(counts, model.idf, settings.l2, settings.power)]
    for block, values in ((model.tone, tone), (model.colour, colour)):
        if block is not None:
            # float32 as stored in the descriptors Parquet, then double as Spark's sqrt.
            usable = (np.asarray(values, dtype=np.float32).astype(np.float64)
                      if values is not None and len(values) == block.dimension
                      else np.zeros(block.dimension))
            blocks.append(np.sqrt(usable) * block.weight)
    return np.concatenate(blocks)


def class_probabilities(features: np.ndarray, model: ExportedModel) -> np.ndarray:
    """Softmax of the logistic regression's margins on the PCA projection: a (C,) array."""
    projected = features @ model.pc
    margins = model.coefficients @ projected + model.intercepts
    exponentials = np.exp(margins - margins.max())
    return exponentials / exponentials.sum()


# ------------------------------------------------------------------- the photo, made trainable

# A pixel whose every channel is at least this bright counts as background: Fruits-360
# photos show the fruit on white, touching the frame on its longer side.
BACKGROUND_LEVEL = 230


def object_box(pixels: np.ndarray) -> tuple[int, int, int, int] | None:
    """(left, top, right, bottom) of the non-background pixels of a grey or colour array, or
    None when there are none or they reach every edge (no light background to trim).

    A row or column counts only when at least 1% of its pixels (and 2) are foreground, so
    JPEG noise on the background does not widen the box.
    """
    darkest = pixels if pixels.ndim == 2 else pixels.min(axis=2)
    foreground = darkest < BACKGROUND_LEVEL
    height, width = foreground.shape
    columns = np.flatnonzero(foreground.sum(axis=0) >= max(2, height // 100))
    rows = np.flatnonzero(foreground.sum(axis=1) >= max(2, width // 100))
    if len(columns) == 0 or len(rows) == 0:
        return None
    box = (int(columns[0]), int(rows[0]), int(columns[-1]) + 1, int(rows[-1]) + 1)
    return None if box == (0, 0, width, height) else box


def _centre_crop(pixels: np.ndarray, ratio_w: int, ratio_h: int) -> np.ndarray:
    height, width = pixels.shape[:2]
    if width * ratio_h > height * ratio_w:  # too wide: cut the sides
        keep = max(1, round(height * ratio_w / ratio_h))
        left = (width - keep) // 2
        return pixels[:, left:left + keep]
    if width * ratio_h < height * ratio_w:  # too tall: cut top and bottom
        keep = max(1, round(width * ratio_h / ratio_w))
        top = (height - keep) // 2
        return pixels[top:top + keep]
    return pixels


def _pad_white(pixels: np.ndarray, ratio_w: int, ratio_h: int) -> np.ndarray:
    height, width = pixels.shape[:2]
    rows, columns = height, width
    if width * ratio_h > height * ratio_w:
        rows = round(width * ratio_h / ratio_w)
    elif width * ratio_h < height * ratio_w:
        columns = round(height * ratio_w / ratio_h)
    if (rows, columns) == (height, width):
        return pixels
    top, left = (rows - height) // 2, (columns - width) // 2
    white = (255,) * (pixels.shape[2] if pixels.ndim == 3 else 1)
    return cv2.copyMakeBorder(pixels, top, rows - height - top, left, columns - width - left,
                              cv2.BORDER_CONSTANT, value=white)


def fit_to_training_size(pixels: np.ndarray, size: tuple[int, int], policy: str
                         ) -> tuple[np.ndarray, str | None]:
    """Make an image array (grey or colour) the training images' shape.

    `size` is the training (width, height). An image already that size is returned
    untouched (it is then described exactly as the Spark pipeline describes it). Otherwise:
    "trim" crops to the fruit's box on a light background and pads it with white to the
    training aspect ratio (framed like a Fruits-360 photo: the fruit touches the frame on
    its longer side), or, without such a background, does what "crop" does; "crop" keeps the
    largest centred region of the training aspect ratio; "pad" adds white borders around the
    whole photo; "none" leaves it as it is. The result is then resized to `size` (area
    averaging when shrinking). Returns the array and a note saying what was done, e.g.
    "centre-cropped to 300x300, resized to 100x100" (None when nothing was).
    """
    if policy not in FIT_POLICIES:
        raise ValueError(f"fit policy must be one of {', '.join(FIT_POLICIES)} (got {policy!r})")
    height, width = pixels.shape[:2]
    target_width, target_height = size
    if (width, height) == (target_width, target_height) or policy == "none":
        return pixels, None
    steps = []
    box = object_box(pixels) if policy == "trim" else None
    if box is not None:
        left, top, right, bottom = box
        pixels = _pad_white(pixels[top:bottom, left:right], target_width, target_height)
        steps.append(f"trimmed to the fruit ({right - left}x{bottom - top} at {left},{top})")
    elif policy in ("crop", "trim"):
        pixels = _centre_crop(pixels, target_width, target_height)
        if pixels.shape[:2] != (height, width):
            steps.append(f"centre-cropped to {pixels.shape[1]}x{pixels.shape[0]}")
    else:
        pixels = _pad_white(pixels, target_width, target_height)
        if pixels.shape[:2] != (height, width):
            steps.append(f"padded with white to {pixels.shape[1]}x{pixels.shape[0]}")
    shrinking = pixels.shape[1] >= target_width and pixels.shape[0] >= target_height
    pixels = cv2.resize(pixels, (target_width, target_height),
                        interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    steps.append(f"resized to {target_width}x{target_height}")
    return pixels, ", ".join(steps)


# ------------------------------------------------------------------------------- predictions

@dataclass(frozen=True)
class ClassScore:
    """One candidate class, its probability and what the catalogue says about it."""

    label: str
    probability: float
    info: FruitInfo | None = None

    def to_dict(self) -> dict[str, Any]:
        info = self.info.to_dict() if self.info else {}
        return {"label": self.label, "probability": self.probability, **info}


@dataclass(frozen=True)
class Prediction:
    """The answer for one photo.

    `top` holds the best classes, most probable first (empty when the bytes were
    rejected, with `reject_reason` saying why). `low_confidence` is set, and `notes` say
    why, when the photo gave few keypoints or no class is probable enough. `fitted` says
    how a photo of another size was made the training size. width and height are the
    photo's own.
    """

    top: tuple[ClassScore, ...]
    n_keypoints: int
    low_confidence: bool
    notes: tuple[str, ...] = ()
    fitted: str | None = None
    width: int = 0
    height: int = 0
    reject_reason: str | None = None

    @property
    def label(self) -> str | None:
        return self.top[0].label if self.top else None

    @property
    def probability(self) -> float | None:
        return self.top[0].probability if self.top else None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict of the prediction."""
        return {
            "label": self.label,
            "probability": self.probability,
            "top": [score.to_dict() for score in self.top],
            "n_keypoints": self.n_keypoints,
            "low_confidence": self.low_confidence,
            "notes": list(self.notes),
            "fitted": self.fitted,
            "width": self.width,
            "height": self.height,
            "reject_reason": self.reject_reason,
        }


@dataclass(frozen=True)
class _Described:
    descriptors: np.ndarray
    positions: np.ndarray = field(default_factory=lambda: EMPTY_POSITIONS)
    width: int = 0
    height: int = 0
    fitted: str | None = None
    reject_reason: str | None = None
    colour: np.ndarray | None = None
    tone: np.ndarray | None = None


def _rgb(image) -> np.ndarray | None:
    """The photo as RGB, or None when it cannot be had: the colour block is then zeros, as
    in the pipeline (bovw.colour.image_colour), and the words are still used."""
    try:
        return to_rgb(image)
    except Exception:
        return None


class Predictor:
    """Predicts the class of photo bytes with an exported model; numpy, OpenCV and Pillow only."""

    def __init__(self, model: ExportedModel, settings: PredictSettings | None = None,
                 fruits: Mapping[str, FruitInfo] | None = None):
        """`settings` default to PredictSettings(); `fruits` replaces the model's catalogue."""
        self.model = model.validate()
        self.settings = settings or PredictSettings()
        self.settings.validate()
        self.fruits = dict(model.fruits if fruits is None else fruits)

    @classmethod
    def load(cls, path: str | Path, settings: PredictSettings | None = None,
             fruits: Mapping[str, FruitInfo] | None = None) -> Predictor:
        """A Predictor from a model file written by `bovw export`. Raises ModelFileError."""
        try:
            data = Path(path).read_bytes()
        except FileNotFoundError:
            raise ModelFileError(
                f"model file not found: {path}; create one with bovw export RUN_DIR --out {path}"
            ) from None
        except IsADirectoryError:
            raise ModelFileError(f"model path {path} is a folder, not a model file") from None
        return cls(model_from_bytes(data, str(path)), settings, fruits)

    @classmethod
    def from_bytes(cls, data: bytes, settings: PredictSettings | None = None,
                   fruits: Mapping[str, FruitInfo] | None = None, source: str = "model"
                   ) -> Predictor:
        """A Predictor from the bytes of a model file. Raises ModelFileError."""
        return cls(model_from_bytes(data, source), settings, fruits)

    @property
    def classes(self) -> tuple[str, ...]:
        return self.model.classes

    def describe(self, data: bytes) -> _Described:
        """ORB descriptors of the photo made the training size; never raises."""
        orb = self.model.orb
        try:
            image, (width, height) = open_image(data, orb)
            grey = to_grey(image)
        except ImageRejected as rejected:
            return _Described(EMPTY_DESCRIPTORS, reject_reason=str(rejected))
        except Exception as error:  # a decoder bug must not take the service down
            return _Described(EMPTY_DESCRIPTORS, reject_reason=f"decoder failed: {_line(error)}")
        rgb = _rgb(image) if self.model.colour is not None else None
        colour = None
        if rgb is None:
            grey, steps = fit_to_training_size(grey, self.model.training_size, self.settings.fit)
        else:
            # One framing for both blocks: the colour photo is fitted, and its grey image
            # taken from it, so words and colours describe the same pixels.
            rgb, steps = fit_to_training_size(rgb, self.model.training_size, self.settings.fit)
            if steps:
                grey = to_grey(Image.fromarray(rgb))
            colour = colour_histogram(rgb, self.model.colour)
        fitted = None
        if steps:
            # The box and crop sizes in `steps` refer to the decoded image, which open_image
            # may have rotated (EXIF) or shrunk (orb.max_side).
            decoded = "" if image.size == (width, height) else (
                f" (decoded at {image.width}x{image.height})")
            fitted = f"{width}x{height} photo{decoded} {steps}"
        try:
            descriptors, positions = describe_keypoints(grey, orb)
        except cv2.error as error:
            return _Described(EMPTY_DESCRIPTORS, EMPTY_POSITIONS, width, height, fitted,
                              f"OpenCV failed: {_line(error)}")
        # From the grey image ORB describes, as bovw.features.extract_descriptors does.
        tone = tone_histogram(grey, self.model.tone) if self.model.tone is not None else None
        return _Described(descriptors, positions, width, height, fitted, colour=colour,
                          tone=tone)

    def probabilities(self, data: bytes) -> np.ndarray | None:
        """Every class's probability, in `classes` order; None for unreadable bytes."""
        described = self.describe(data)
        if described.reject_reason is not None:
            return None
        return self._probabilities(described)

    def predict(self, data: bytes, top: int | None = None) -> Prediction:
        """The `top` (default settings.top) most probable classes for the photo `data`."""
        described = self.describe(data)
        n_keypoints = int(described.descriptors.shape[0])
        if described.reject_reason is not None:
            return Prediction((), 0, True, (f"cannot read the photo: {described.reject_reason}",),
                              None, described.width, described.height, described.reject_reason)
        probabilities = self._probabilities(described)
        count = min(top or self.settings.top, len(self.classes))
        # Stable sort: equal probabilities keep class order, like argmax in Spark.
        order = np.argsort(-probabilities, kind="stable")[:count]
        scores = tuple(ClassScore(self.classes[i], float(probabilities[i]),
                                  self.fruits.get(self.classes[i])) for i in order)
        # A dense grid describes plain areas too (all-zero descriptors): only descriptors
        # with some texture say anything about the fruit.
        textured = int(np.count_nonzero(described.descriptors.any(axis=1)))
        notes = self._confidence_notes(textured, scores[0].probability)
        return Prediction(scores, n_keypoints, bool(notes), notes, described.fitted,
                          described.width, described.height)

    def _probabilities(self, described: _Described) -> np.ndarray:
        features = feature_vector(described.descriptors, described.positions, self.model,
                                  described.colour, described.tone)
        return class_probabilities(features, self.model)

    def _confidence_notes(self, n_keypoints: int, probability: float) -> tuple[str, ...]:
        """Why an answer is low-confidence; `n_keypoints` counts textured descriptors."""
        settings, notes = self.settings, []
        if n_keypoints == 0:
            notes.append("no keypoints found (a plain, blurred or tiny photo): the answer only "
                         "reflects how common each class was in training")
        elif n_keypoints < settings.min_keypoints:
            notes.append(f"only {n_keypoints} keypoints (fewer than predict.min_keypoints="
                         f"{settings.min_keypoints}): the photo may be blurred, dark or plain")
        if probability < settings.min_probability:
            notes.append(f"top probability {probability:.2f} is below predict.min_probability="
                         f"{settings.min_probability}")
        return tuple(notes)


# ------------------------------------------------------------------------------ the model file

def model_to_bytes(model: ExportedModel) -> bytes:
    """The model as a NumPy .npz archive (deterministic bytes).

    Members: centers, [idf], pc, coefficients, intercepts, classes (unicode array) and
    metadata (a JSON string: format, format_version, bovw_version, orb and histogram
    settings, training_size, feature_blocks, tone and colour settings or null,
    word_variance or null, fruits, source).
    `np.load(..., allow_pickle=False)` reads it.
    """
    model.validate()
    metadata = {
        "format": MODEL_FORMAT,
        "format_version": MODEL_FORMAT_VERSION,
        "bovw_version": __version__,
        "orb": _plain(model.orb),
        "histograms": _plain(model.histograms),
        "training_size": list(model.training_size),
        "feature_blocks": list(model.feature_blocks),
        "colour": _plain(model.colour) if model.colour is not None else None,
        "tone": _plain(model.tone) if model.tone is not None else None,
        "word_variance": model.word_variance,
        "fruits": {name: info.to_dict() for name, info in sorted(model.fruits.items())},
        "source": dict(model.source),
    }
    arrays = {
        "metadata": np.array(json.dumps(metadata, sort_keys=True)),
        "classes": np.array(model.classes, dtype=str),
        "centers": np.asarray(model.centers, dtype=np.float32),
        "pc": np.asarray(model.pc, dtype=np.float64),
        "coefficients": np.asarray(model.coefficients, dtype=np.float64),
        "intercepts": np.asarray(model.intercepts, dtype=np.float64),
    }
    if model.idf is not None:
        arrays["idf"] = np.asarray(model.idf, dtype=np.float64)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, array in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asarray(array, order="C"), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, member.getvalue())
    return buffer.getvalue()


def model_from_bytes(data: bytes, source: str = "model") -> ExportedModel:
    """Read a model written by `model_to_bytes`; `source` names it in errors.

    Raises ModelFileError for anything that is not a bovw model of a format version this
    bovw reads, or whose arrays do not fit together.
    """
    try:
        archive = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile):
        archive = None
    if not isinstance(archive, np.lib.npyio.NpzFile) or "metadata" not in archive.files:
        raise ModelFileError(
            f"{source} is not a bovw model file (.npz); create one with bovw export RUN_DIR")
    with archive:
        try:
            metadata = json.loads(str(archive["metadata"].reshape(-1)[0]))
        except (ValueError, IndexError):
            raise ModelFileError(f"{source}: the model's metadata is not valid JSON") from None
        if not isinstance(metadata, dict) or metadata.get("format") != MODEL_FORMAT:
            raise ModelFileError(f"{source} is not a bovw model file (format is not "
                                 f"{MODEL_FORMAT!r})")
        version = metadata.get("format_version")
        if version != MODEL_FORMAT_VERSION:
            raise ModelFileError(
                f"{source} has model format version {version}; bovw {__version__} reads "
                f"version {MODEL_FORMAT_VERSION}: export the run again with this bovw, or use "
                f"the bovw that wrote it ({metadata.get('bovw_version')})")
        missing = [name for name in ("classes", "centers", "pc", "coefficients", "intercepts")
                   if name not in archive.files]
        if missing:
            raise ModelFileError(f"{source} is not a usable bovw model: no {missing[0]!r} array")
        if isinstance(metadata.get("orb"), dict):
            try:
                metadata["orb"] = current_orb_table(metadata["orb"])
            except ConfigError as error:
                raise ModelFileError(
                    f"{source} was trained on other descriptors than bovw {__version__} "
                    f"computes: {error}. Run the pipeline again with this bovw and export "
                    "that run") from None
        try:
            colour, tone = metadata.get("colour"), metadata.get("tone")
            settings = config_from_dict({"orb": metadata["orb"],
                                         "histograms": metadata["histograms"],
                                         **({"colour": colour} if colour else {}),
                                         **({"tone": tone} if tone else {})})
            variance = metadata.get("word_variance")
            fruits = {name: FruitInfo(**info) for name, info in metadata["fruits"].items()}
            width, height = (int(v) for v in metadata["training_size"])
            model = ExportedModel(
                classes=tuple(str(name) for name in archive["classes"]),
                centers=archive["centers"],
                idf=archive["idf"] if "idf" in archive.files else None,
                pc=archive["pc"],
                coefficients=archive["coefficients"],
                intercepts=archive["intercepts"],
                orb=settings.orb,
                histograms=settings.histograms,
                training_size=(width, height),
                feature_blocks=tuple(metadata["feature_blocks"]),
                fruits=fruits,
                source=metadata.get("source", {}),
                colour=settings.colour if colour else None,
                tone=settings.tone if tone else None,
                word_variance=None if variance is None else float(variance),
            )
        except (KeyError, TypeError, ValueError, ConfigError) as error:
            raise ModelFileError(
                f"{source} is not a usable bovw model: bad metadata ({_line(error)})") from None
    return model.validate(source)


def _plain(settings: Any) -> dict[str, Any]:
    return {f.name: (list(value) if isinstance(value := getattr(settings, f.name), tuple)
                     else value) for f in dataclasses.fields(settings)}


def _line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0][:200]
