"""Prediction without Spark or a JVM: a trained run, exported to one small file, applied to
the bytes of a photo. This is the piece a mobile back end embeds.

    predictor = Predictor.load("model.npz")
    prediction = predictor.predict(photo_bytes)      # Prediction: top classes, notes
    prediction = predictor.predict("photo.jpg", top=3)   # or a file path; top >= 1
    prediction.label, prediction.probability, prediction.to_dict()

The arithmetic is the Spark pipeline's, step for step:
ORB (bovw.image.orb) -> nearest visual word, or the soft_neighbours nearest with their
shares (bovw.image.words) -> (spatial-pyramid) word counts -> times IDF (when
histograms.tfidf) -> to the power histograms.power -> L2-normalised (when histograms.l2; a
zero vector stays zero, as with Spark's Normalizer); or, with histograms.encoding =
"vlad" or "fisher", the VLAD or Fisher blocks of bovw.image.encodings -> L2-normalised
(when histograms.l2) ->
followed by weight * sqrt(tone
block) and weight * sqrt(colour block) when the model has them (bovw.image.tone,
bovw.image.colour) -> x @ pc (Spark's PCAModel does not center) -> softmax(W x + b)
(Spark's LogisticRegressionModel keeps its coefficients on the original feature scale).

Photos that are not the training size (a phone photo) are first made the training shape,
see bovw.image.framing. The model file is a versioned NumPy .npz, see bovw.predict.model_file.
This module must not import pyspark: `import bovw.predict.predictor` stays light.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from bovw.config import OrbSettings, PredictSettings
from bovw.errors import ModelFileError, first_line
from bovw.image.colour import colour_histogram
from bovw.image.decode import ImageRejected, decode_grey, open_image, to_rgb
from bovw.image.framing import fit_to_training_size, plan_framing
from bovw.image.orb import (
    EMPTY_DESCRIPTORS,
    EMPTY_POSITIONS,
    describe_keypoints,
    textured_patches,
)
from bovw.image.tone import tone_histogram
from bovw.image.weighting import block_values, weighted_values
from bovw.image.words import histogram_length, word_counts
from bovw.predict.fruits import FruitInfo
from bovw.predict.model_file import ExportedModel, model_from_bytes
from bovw.predict.results import ClassScore, Prediction

__all__ = ["Photo", "Predictor", "class_probabilities", "feature_vector", "photo_bytes",
           "weighted_histogram", "word_histogram"]


def word_histogram(descriptors: np.ndarray, positions: np.ndarray, centers: np.ndarray,
                   pyramid_levels: int = 1, scoring: np.ndarray | None = None,
                   neighbours: int = 1, variance: float = 0.0) -> np.ndarray:
    """Raw counts of each visual word among an image's descriptors, per spatial-pyramid
    cell when pyramid_levels > 1 (positions as stored by bovw.image.orb): a float64 array of
    histogram_length(k, pyramid_levels) bins. `scoring` is scoring_matrix(centers) when
    the caller keeps it; neighbours > 1 shares each descriptor among its nearest words
    (bovw.image.words.word_counts)."""
    histogram = np.zeros(histogram_length(len(centers), pyramid_levels))
    bins, counts = word_counts(descriptors, centers, positions, pyramid_levels, scoring,
                               neighbours, variance)
    histogram[bins] = counts
    return histogram


def weighted_histogram(histogram: np.ndarray, idf: np.ndarray | None, l2: bool,
                       power: float = 1.0) -> np.ndarray:
    """The histogram times `idf` (when given), to the `power`, then divided by its L2 norm
    (when `l2`): bovw.image.weighting.weighted_values of its non-zero bins, the very code
    the Spark reduction stage runs. A zero vector stays zero, like with Spark's Normalizer."""
    histogram = np.asarray(histogram, dtype=np.float64)
    present = np.flatnonzero(histogram)
    weighted = np.zeros(len(histogram))
    weighted[present] = weighted_values(histogram[present], present, [0, len(present)], idf,
                                        power, l2)
    return weighted


def feature_vector(descriptors: np.ndarray, positions: np.ndarray, model: ExportedModel,
                   colour: np.ndarray | None = None, tone: np.ndarray | None = None
                   ) -> np.ndarray:
    """The vector the PCA sees for one image: its weighted word histogram (or its VLAD or
    Fisher vector, bovw.image.encodings, L2-normalised when histograms.l2), then, for each
    block the model has, weight * sqrt(`tone`) and weight * sqrt(`colour`)
    (bovw.image.weighting.block_values, as the reduction stage makes them: zeros when a
    block is missing or of another length)."""
    settings = model.histograms
    if model.dense is not None:
        # Its power is inside its blocks, and VLAD or Fisher has no IDF (HistogramSettings).
        encoded = model.dense.cells(descriptors, model.centers, positions,
                                    settings.pyramid_levels, model.scoring).ravel()
        blocks = [weighted_histogram(encoded, None, settings.l2)]
    else:
        counts = word_histogram(descriptors, positions, model.centers, settings.pyramid_levels,
                                model.scoring, settings.neighbours, model.word_variance or 0.0)
        blocks = [weighted_histogram(counts, model.idf, settings.l2, settings.power)]
    for block, values in ((model.tone, tone), (model.colour, colour)):
        if block is not None:
            usable = (values if values is not None and len(values) == block.dimension
                      else np.zeros(block.dimension))
            blocks.append(block_values(usable, block.weight))
    return np.concatenate(blocks)


def class_probabilities(features: np.ndarray, model: ExportedModel) -> np.ndarray:
    """Softmax of the logistic regression's margins on the PCA projection: a (C,) array."""
    present = np.flatnonzero(features)
    if len(present) < features.size // 4:
        # A word histogram is mostly zeros (about 900 of 21,064 values at 3 pyramid levels,
        # k=1000): the rows of pc they pick are all the product needs, where reading the
        # whole matrix (16 MB) took about 1 ms per photo.
        projected = features[present] @ model.pc[present]
    else:
        projected = features @ model.pc
    margins = model.coefficients @ projected + model.intercepts
    exponentials = np.exp(margins - margins.max())
    return exponentials / exponentials.sum()


@dataclass(frozen=True)
class _Described:
    descriptors: np.ndarray
    positions: np.ndarray = field(default_factory=lambda: EMPTY_POSITIONS)
    width: int = 0
    height: int = 0
    fitted: str | None = None
    reject_reason: str | None = None
    colour: np.ndarray | None = None
    detail: tuple[int, int] = (0, 0)  # textured_patches of the grey image described
    tone: np.ndarray | None = None


def _rgb(data: bytes, orb: OrbSettings) -> np.ndarray | None:
    """The photo as RGB, or None when it cannot be had: the colour block is then zeros, as
    in the pipeline (bovw.image.colour.image_colour), and the words are still used."""
    try:
        return to_rgb(open_image(data, orb)[0])
    except Exception:
        return None


Photo = bytes | bytearray | memoryview | str | os.PathLike


def photo_bytes(photo: Photo) -> bytes:
    """The bytes of an image file given as bytes (bytearray, memoryview) or as its path (str
    or os.PathLike, read here). Raises TypeError for anything else, OSError (e.g.
    FileNotFoundError) when the file cannot be read."""
    if isinstance(photo, bytes | bytearray | memoryview):
        return bytes(photo)
    if isinstance(photo, str | os.PathLike):
        return Path(photo).read_bytes()
    raise TypeError(f"a photo is the bytes of an image file or its path (str or "
                    f"os.PathLike), not {type(photo).__name__}")


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
        """The class names, in the order of `probabilities`."""
        return self.model.classes

    def describe(self, photo: Photo) -> _Described:
        """ORB descriptors of the photo made the training size. Raises only what
        `photo_bytes` raises (TypeError, OSError); an unreadable image is a reject reason."""
        data = photo_bytes(photo)
        orb = self.model.orb
        try:
            # The grey image of bovw.image.orb.extract_descriptors, as in the pipeline.
            grey, (width, height) = decode_grey(data, orb)
        except ImageRejected as rejected:
            return _Described(EMPTY_DESCRIPTORS, reject_reason=str(rejected))
        except Exception as error:  # a decoder bug must not take the service down
            return _Described(EMPTY_DESCRIPTORS,
                              reject_reason=f"decoder failed: {first_line(error)}")
        decoded_width, decoded_height = grey.shape[1], grey.shape[0]
        rgb = _rgb(data, orb) if self.model.colour is not None else None
        colour = None
        if rgb is None:
            grey, steps = fit_to_training_size(grey, self.model.training_size, self.settings.fit)
        else:
            # One framing for both blocks, planned on the colour photo, so words and
            # colours describe the same pixels; the words' grey image stays the one the
            # pipeline describes (libjpeg's luminance, not the decoded RGB made grey again).
            if grey.shape != rgb.shape[:2]:  # both are decoded alike (bovw.image.decode)
                return _Described(EMPTY_DESCRIPTORS, reject_reason=(
                    f"decoder failed: a {grey.shape[1]}x{grey.shape[0]} grey image and a "
                    f"{rgb.shape[1]}x{rgb.shape[0]} colour image of one photo"))
            framing = plan_framing(rgb, self.model.training_size, self.settings.fit)
            steps = None
            if framing is not None:
                steps, grey, rgb = framing.note, framing.apply(grey), framing.apply(rgb)
            colour = colour_histogram(rgb, self.model.colour)
        fitted = None
        if steps:
            # The box and crop sizes in `steps` refer to the decoded image, which open_image
            # may have shrunk (orb.max_side); the photo's size is as shown (EXIF turned).
            decoded = "" if (decoded_width, decoded_height) == (width, height) else (
                f" (decoded at {decoded_width}x{decoded_height})")
            fitted = f"{width}x{height} photo{decoded} {steps}"
        try:
            descriptors, positions = describe_keypoints(grey, orb)
        except cv2.error as error:
            return _Described(EMPTY_DESCRIPTORS, EMPTY_POSITIONS, width, height, fitted,
                              f"OpenCV failed: {first_line(error)}")
        # From the grey image ORB describes, as bovw.image.orb.extract_descriptors does.
        tone = tone_histogram(grey, self.model.tone) if self.model.tone is not None else None
        return _Described(descriptors, positions, width, height, fitted, colour=colour,
                          detail=textured_patches(grey, orb), tone=tone)

    def probabilities(self, photo: Photo) -> np.ndarray | None:
        """Every class's probability, in `classes` order; None for an unreadable image.
        `photo`: bytes, or a file path (see `photo_bytes`)."""
        described = self.describe(photo)
        if described.reject_reason is not None:
            return None
        return self._probabilities(described)

    def predict(self, photo: Photo, top: int | None = None) -> Prediction:
        """The `top` (default settings.top, at most the number of classes) most probable
        classes for `photo`: the bytes of an image file, or its path (str or os.PathLike,
        read here). Raises ValueError when `top` is below 1, TypeError for any other kind of
        `photo` and OSError when its file cannot be read; an unreadable image is an answer
        without classes, its reason in `notes`."""
        whole = isinstance(top, numbers.Integral) and not isinstance(top, bool)
        if top is not None and not (whole and top >= 1):
            raise ValueError(f"top must be a whole number >= 1 (got {top!r})")
        described = self.describe(photo)
        n_keypoints = int(described.descriptors.shape[0])
        if described.reject_reason is not None:
            return Prediction.unreadable(described.reject_reason, described.width,
                                         described.height)
        too_small = self._too_small(described)
        flagged = too_small or self._too_flat(described)
        if flagged is not None:
            # A photo refused for its size is not looked at: how it was framed says nothing
            # ("5x5 photo ... resized to 100x100" read as if it had been described).
            fitted = None if too_small else described.fitted
            return Prediction((), n_keypoints, True, (f"not answered: {flagged}",), fitted,
                              described.width, described.height, flagged=flagged)
        probabilities = self._probabilities(described)
        count = min(self.settings.top if top is None else top, len(self.classes))
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

    # A photo too small or too flat to describe gets no class: one named for it would only
    # reflect how common each class was in training.

    def _too_small(self, described: _Described) -> str | None:
        """Why the photo, as it came, is too small to describe, or None."""
        width, height, side = described.width, described.height, self.settings.min_side
        if min(width, height) < side:
            return (f"the photo is {width}x{height} px, below predict.min_side={side} px: too "
                    "small to describe")
        return None

    def _too_flat(self, described: _Described) -> str | None:
        """Why the photo, made the training size, shows too little detail, or None."""
        textured, patches = described.detail
        least = self.settings.min_textured_patches
        if textured < least:
            return (f"only {textured} of its {patches} patches show any detail (fewer than "
                    f"predict.min_textured_patches={least}): the photo is too small, flat "
                    "or blurred to describe")
        return None

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
