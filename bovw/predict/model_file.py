"""The model file: an exported run as one versioned NumPy .npz archive (no Spark to use it).

`ExportedModel` holds everything prediction needs as plain arrays and settings;
`model_to_bytes` writes it with deterministic bytes, `model_from_bytes` reads it back and
checks that its arrays fit together. Free of Spark.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import json
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bovw.config import (
    ColourSettings,
    ConfigError,
    HistogramSettings,
    OrbSettings,
    ToneSettings,
    config_from_dict,
    current_orb_table,
    json_types,
)
from bovw.errors import ModelFileError, first_line
from bovw.image.encodings import DenseEncoding, dense_encoding, encoding_length
from bovw.image.fisher import BernoulliMixture
from bovw.image.words import SPACES, scoring_matrix, space_of
from bovw.predict.fruits import FruitInfo
from bovw.version import __version__

__all__ = ["KNOWN_FEATURE_BLOCKS", "MODEL_FILE_NAME", "MODEL_FORMAT", "MODEL_FORMAT_VERSION",
           "REEXPORT", "ExportedModel", "feature_blocks", "model_from_bytes", "model_to_bytes",
           "written_by_bovw"]

# What `bovw export` calls a run's model file by default (RUN_DIR/model.npz).
MODEL_FILE_NAME = "model.npz"
MODEL_FORMAT = "bovw-model"
MODEL_FORMAT_VERSION = 1
# The blocks of the vector PCA sees, in order. The colour block's settings are in the
# metadata, and its length is part of pc's rows.
KNOWN_FEATURE_BLOCKS = ("words", "tone", "colour")
# What to do about a model file that is damaged or was not written by bovw export.
REEXPORT = ("it was changed after bovw export wrote it, or not written by bovw: export the "
            "run again (bovw export RUN_DIR --out FILE)")
# Fixed member timestamps: the same model always gives byte-identical files.
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class ExportedModel:
    """Everything prediction needs, as plain arrays and settings.

    centers (k, 32) float32 visual words, or (k, 256) for a vocabulary of bits
    (vocabulary.space, bovw.image.words.SPACES); idf (d,) or None when TF-IDF is off, d being the
    histogram length (k times the pyramid cells); pc (d + c, p) principal axes, c the
    colour block's length (0 without); coefficients (C, p) and intercepts (C,) of the
    logistic regression; classes in the classifier's index order; the ORB and histogram
    settings of the run; training_size (width, height) of its Training images; `tone` and
    `colour` the tone and colour blocks' settings when the run had them (feature_blocks then
    lists them after "words", tone first); word_variance the sigma^2 of soft assignment
    (the vocabulary sample's mean squared distance to its nearest word), needed when
    histograms.assignment is "soft"; mixture_weights the (k,) weights of the Bernoulli
    mixture of histograms.encoding = "fisher", whose (k, 256) means are then the centers.
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
    mixture_weights: np.ndarray | None = None

    @functools.cached_property
    def scoring(self) -> np.ndarray:
        """scoring_matrix(centers), made once per model rather than once per photo."""
        return scoring_matrix(self.centers)

    @functools.cached_property
    def dense(self) -> DenseEncoding | None:
        """The VLAD or Fisher encoding of the model's histograms settings, None for words."""
        return dense_encoding(self.histograms, self.mixture_weights)

    def validate(self, source: str = "model", fix: str | None = None) -> ExportedModel:
        """Check that the arrays hold finite numbers and fit together; returns self.

        Raises ModelFileError naming `source`, the first problem and, when given, `fix`.
        """
        problems = self._value_problems()
        k = self.centers.shape[0] if self.centers.ndim == 2 else -1
        width = self.centers.shape[1] if self.centers.ndim == 2 else 0
        words = encoding_length((max(k, 0), width), self.histograms)
        length = words + sum(block.dimension for block in (self.tone, self.colour)
                             if block is not None)
        classes = len(self.classes)
        if self.centers.ndim != 2 or self.centers.shape[1] not in SPACES.values() or k < 1:
            problems.append(f"centers has shape {self.centers.shape}, expected (k, 32) (a "
                            "vocabulary of byte values) or (k, 256) (of bits)")
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
        fisher = self.histograms.encoding == "fisher"
        if fisher != (self.mixture_weights is not None):
            problems.append("mixture_weights must be present exactly when histograms.encoding "
                            "is \"fisher\"")
        elif fisher and not problems:
            problems.extend(BernoulliMixture(self.mixture_weights, self.centers).problems())
        if min(self.training_size) < 1:
            problems.append(f"training_size {self.training_size} must be positive")
        if problems:
            raise ModelFileError(f"{source} is not a usable bovw model: {problems[0]}"
                                 + (f"; {fix}" if fix else ""))
        return self

    def _value_problems(self) -> list[str]:
        """Arrays that are not real numbers, hold NaN or infinities (a prediction from them
        would be 'nan%'), or negative IDF weights; class names that are not unique."""
        problems = []
        arrays = {"centers": self.centers, "idf": self.idf, "pc": self.pc,
                  "coefficients": self.coefficients, "intercepts": self.intercepts,
                  "mixture_weights": self.mixture_weights}
        for name, array in arrays.items():
            if array is None:
                continue
            if not isinstance(array, np.ndarray) or array.dtype.kind not in "fiu":
                kind = array.dtype if isinstance(array, np.ndarray) else type(array).__name__
                problems.append(f"{name} holds {kind} values, expected numbers")
                continue
            bad = int(array.size - np.count_nonzero(np.isfinite(array)))
            if bad:
                problems.append(f"{name} holds NaN or infinite values ({bad} of {array.size})")
        if self.idf is not None and not problems and (self.idf < 0).any():
            problems.append("idf holds negative weights (IDF is log((n + 1) / (df + 1)) >= 0)")
        repeated = sorted({name for name in self.classes if self.classes.count(name) > 1})
        if repeated:
            problems.append(f"class {repeated[0]!r} is listed twice")
        return problems


def feature_blocks(tone: bool, colour: bool) -> tuple[str, ...]:
    """The blocks of a model's feature vector, in order, given which extra blocks it has."""
    return ("words",) + (("tone",) if tone else ()) + (("colour",) if colour else ())


def model_to_bytes(model: ExportedModel) -> bytes:
    """The model as a NumPy .npz archive (deterministic bytes).

    Members: centers, [idf], [mixture_weights], pc, coefficients, intercepts, classes
    (unicode array) and
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
    if model.mixture_weights is not None:
        arrays["mixture_weights"] = np.asarray(model.mixture_weights, dtype=np.float64)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, array in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asarray(array, order="C"), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, member.getvalue())
    return buffer.getvalue()


def written_by_bovw(data: bytes) -> bool:
    """Whether `data` is a model file that bovw wrote, of any format version: the only
    kind of file `bovw export` replaces."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            metadata = json.loads(str(archive["metadata"].reshape(-1)[0]))
    except (ValueError, OSError, EOFError, KeyError, IndexError, TypeError, AttributeError,
            zipfile.BadZipFile):
        return False
    return isinstance(metadata, dict) and metadata.get("format") == MODEL_FORMAT


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
        if not json_types.matches(version, int):
            found = ("has no format_version" if "format_version" not in metadata else
                     json_types.problem(version, int, "format_version"))
            raise ModelFileError(f"{source} is not a usable bovw model: its metadata {found}; "
                                 f"{REEXPORT}")
        if version != MODEL_FORMAT_VERSION:
            raise ModelFileError(
                f"{source} has model format version {version}; bovw {__version__} reads "
                f"version {MODEL_FORMAT_VERSION}: export the run again with this bovw, or use "
                f"the bovw that wrote it ({metadata.get('bovw_version')})")
        header = _header_problem(metadata)
        if header:
            raise ModelFileError(f"{source} is not a usable bovw model: its metadata {header}; "
                                 f"{REEXPORT}")
        missing = [name for name in ("classes", "centers", "pc", "coefficients", "intercepts")
                   if name not in archive.files]
        if missing:
            raise ModelFileError(f"{source} is not a usable bovw model: no {missing[0]!r} array")
        arrays = {}
        for name in archive.files:
            try:
                arrays[name] = archive[name]
            except ValueError:  # numpy refuses to unpickle an object array
                raise ModelFileError(
                    f"{source} is not a usable bovw model: its {name!r} array holds Python "
                    f"objects, which bovw does not load; {REEXPORT}") from None
        names = arrays["classes"]
        if names.ndim != 1 or names.dtype.kind != "U":
            raise ModelFileError(f"{source} is not a usable bovw model: classes is a "
                                 f"{names.ndim}-D array of {names.dtype}, expected a list of "
                                 f"names; {REEXPORT}")
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
                                         **_vocabulary_table(arrays["centers"]),
                                         **({"colour": colour} if colour else {}),
                                         **({"tone": tone} if tone else {})})
            variance = metadata.get("word_variance")
            fruits = {name: FruitInfo(**info) for name, info in metadata["fruits"].items()}
            width, height = (int(v) for v in metadata["training_size"])
            model = ExportedModel(
                classes=tuple(str(name) for name in names),
                centers=arrays["centers"],
                idf=arrays["idf"] if "idf" in arrays else None,
                mixture_weights=(arrays["mixture_weights"]
                                 if "mixture_weights" in arrays else None),
                pc=arrays["pc"],
                coefficients=arrays["coefficients"],
                intercepts=arrays["intercepts"],
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
                f"{source} is not a usable bovw model: bad metadata ({first_line(error)})"
            ) from None
    return model.validate(source, REEXPORT)


# Every header field the loader reads, with the JSON type bovw export writes it as; the
# settings tables (orb, histograms, tone, colour) are checked key by key against their fields.
_HEADER_TYPES: dict[str, Any] = {
    "bovw_version": str,
    "training_size": tuple[int, ...],
    "feature_blocks": tuple[str, ...],
    "fruits": Mapping[str, Any],
    "source": Mapping[str, Any],
    "word_variance": float | None,
}
_REQUIRED_HEADER = ("orb", "histograms", "training_size", "feature_blocks", "fruits")


def _header_problem(metadata: dict[str, Any]) -> str | None:
    """The first header field of a model's metadata that is missing or of the wrong JSON
    type (format and format_version are checked before), as a phrase; None when all fit."""
    for name in _REQUIRED_HEADER:
        if name not in metadata:
            return f"has no {name}"
    for name, hint in _HEADER_TYPES.items():
        if name in metadata and (found := json_types.problem(metadata[name], hint, name)):
            return found
    if len(metadata["training_size"]) != 2:
        return f"training_size has {len(metadata['training_size'])} values, expected 2"
    for name, settings in (("orb", OrbSettings), ("histograms", HistogramSettings)):
        if found := json_types.settings_problem(metadata[name], settings, name):
            return found
    for name, settings in (("tone", ToneSettings), ("colour", ColourSettings)):
        if metadata.get(name) is not None and (
                found := json_types.settings_problem(metadata[name], settings, name)):
            return found
    for name, info in metadata["fruits"].items():
        if found := json_types.settings_problem(info, FruitInfo, f"fruits[{name!r}]"):
            return found
    return None


def _vocabulary_table(centers: np.ndarray) -> dict[str, Any]:
    """The [vocabulary] the centers imply, for the settings that depend on it (a VLAD
    vector's length); nothing for centers that validate() will refuse."""
    if centers.ndim != 2 or centers.shape[0] < 2 or centers.shape[1] not in SPACES.values():
        return {}
    return {"vocabulary": {"k": int(centers.shape[0]), "space": space_of(centers.shape[1])}}


def _plain(settings: Any) -> dict[str, Any]:
    return {f.name: (list(value) if isinstance(value := getattr(settings, f.name), tuple)
                     else value) for f in dataclasses.fields(settings)}
