"""Prediction without Spark: the arithmetic, the photo policy, the model file, and agreement
with the Spark model on a generated dataset (one pipeline run for the whole module)."""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import re
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from bovw.config import (
    ColourSettings,
    ConfigError,
    HistogramSettings,
    OrbSettings,
    PredictSettings,
    ToneSettings,
    load_config,
)
from bovw.errors import ModelFileError
from bovw.image.decode import decode_grey, open_image, to_rgb
from bovw.image.framing import fit_to_training_size, object_box, plan_framing
from bovw.image.orb import describe_keypoints, textured_patches
from bovw.image.synthetic import encode_jpeg, render_fruit
from bovw.image.tone import tone_histogram
from bovw.predict.fruits import FruitInfo, load_catalogue
from bovw.predict.model_file import ExportedModel, model_from_bytes, model_to_bytes
from bovw.predict.predictor import (
    Predictor,
    class_probabilities,
    feature_vector,
    weighted_histogram,
    word_histogram,
)
from bovw.spark import storage
from tests import imagefiles
from tests.conftest import TEST_SPARK

REPO = Path(__file__).resolve().parent.parent


def spark_flags() -> list[str]:
    return [flag for key, value in TEST_SPARK.items() for flag in ("--set", f"{key}={value}")]


def tiny_model(**changes) -> ExportedModel:
    """k=3 words, identity PCA, two classes: hand-checkable."""
    values = dict(
        classes=("Banana", "Orange"),
        centers=np.array([[0] * 32, [128] * 32, [255] * 32], dtype=np.float32),
        idf=np.array([1.0, 2.0, 1.0]),
        pc=np.eye(3),
        coefficients=np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]),
        intercepts=np.array([0.0, 0.0]),
        orb=OrbSettings(sampling="detect"),
        histograms=HistogramSettings(tfidf=True, l2=True, pyramid_levels=1, power=1.0),
        training_size=(100, 100),
        fruits={"Banana": FruitInfo("Banana", "A long berry.", "Musaceae", "yellow")},
        source={"run": "test"},
    )
    values.update(changes)
    return ExportedModel(**values)


def white_png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "white").save(buffer, format="PNG")
    return buffer.getvalue()


def phone_photo(class_name: str, seed: int = 7) -> bytes:
    """A generated fruit scaled 4x and centred in a 600x400 white 'phone photo'."""
    fruit = render_fruit(class_name, np.random.default_rng(seed))
    large = cv2.resize(fruit, (400, 400), interpolation=cv2.INTER_LINEAR)
    photo = np.full((400, 600, 3), 255, np.uint8)
    photo[:, 100:500] = large
    return encode_jpeg(photo)


# ------------------------------------------------------------------ arithmetic and photo policy

def test_weighted_histogram_is_idf_then_l2_and_zero_stays_zero():
    weighted = weighted_histogram(np.array([3.0, 0.0, 2.0]), np.array([1.0, 5.0, 2.0]), l2=True)
    assert weighted.tolist() == [0.6, 0.0, 0.8]
    assert weighted_histogram(np.array([3.0, 4.0]), None, l2=False).tolist() == [3.0, 4.0]
    assert weighted_histogram(np.zeros(3), np.ones(3), l2=True).tolist() == [0.0, 0.0, 0.0]
    # power after IDF, before L2: sqrt([9, 0, 16] * 1) = [3, 0, 4]
    assert weighted_histogram(np.array([9.0, 0.0, 16.0]), np.ones(3), l2=True,
                              power=0.5).tolist() == [0.6, 0.0, 0.8]


def test_word_histogram_counts_words_per_pyramid_cell():
    centers = np.array([[0] * 32, [255] * 32], dtype=np.float32)
    descriptors = np.array([[1] * 32, [250] * 32, [3] * 32], dtype=np.uint8)  # words 0, 1, 0
    positions = np.array([[0, 0], [200, 10], [130, 200]], dtype=np.uint8)  # cells 0, 1, 3
    assert word_histogram(descriptors, positions, centers).tolist() == [2, 1]
    assert word_histogram(descriptors, positions, centers, pyramid_levels=2).tolist() == [
        2, 1,  # whole image
        1, 0,  0, 1,  0, 0,  1, 0,  # 2x2 cells, row-major, 2 words each
    ]
    assert word_histogram(descriptors[:0], positions[:0], centers, 2).tolist() == [0] * 10


def test_class_probabilities_are_the_softmax_of_the_margins():
    model = tiny_model(intercepts=np.array([0.0, 0.5]))
    probabilities = class_probabilities(np.array([0.6, 0.0, 0.8]), model)
    # margins: 0.6 and 0.8 + 0.5
    expected_first = 1.0 / (1.0 + math.exp(1.3 - 0.6))
    assert probabilities == pytest.approx([expected_first, 1.0 - expected_first], abs=1e-15)


def test_a_mostly_zero_vector_is_projected_from_the_rows_of_pc_it_uses():
    rng = np.random.default_rng(3)
    pc, coefficients = rng.standard_normal((40, 6)), rng.standard_normal((3, 6))
    model = tiny_model(pc=pc, coefficients=coefficients, intercepts=np.array([0.1, 0.0, -0.2]),
                       classes=("Banana", "Orange", "Lemon"))
    features = np.zeros(40)
    features[[2, 17, 31]] = [0.5, 0.25, 0.75]  # 3 of 40 values: the rows 2, 17 and 31 of pc
    margins = coefficients @ (0.5 * pc[2] + 0.25 * pc[17] + 0.75 * pc[31]) + [0.1, 0.0, -0.2]
    expected = np.exp(margins) / np.exp(margins).sum()
    assert class_probabilities(features, model) == pytest.approx(expected, abs=1e-14)
    # A dense vector (VLAD, Fisher) takes the whole product, with the same result.
    dense = rng.random(40)
    margins = coefficients @ (dense @ pc) + [0.1, 0.0, -0.2]
    assert class_probabilities(dense, model) == pytest.approx(
        np.exp(margins) / np.exp(margins).sum(), abs=1e-14)


def test_a_photo_of_the_training_size_is_left_untouched():
    pixels = np.arange(100 * 100, dtype=np.uint8).reshape(100, 100)
    fitted, note = fit_to_training_size(pixels, (100, 100), "crop")
    assert fitted is pixels and note is None


def test_crop_keeps_the_centred_square():
    pixels = np.zeros((2, 6), np.uint8)
    pixels[:, 2:4] = 200  # the centre 2x2
    fitted, note = fit_to_training_size(pixels, (2, 2), "crop")
    assert fitted.tolist() == [[200, 200], [200, 200]]
    assert note == "centre-cropped to 2x2, resized to 2x2"
    tall, note = fit_to_training_size(np.zeros((8, 4), np.uint8), (2, 2), "crop")
    assert tall.shape == (2, 2) and note == "centre-cropped to 4x4, resized to 2x2"


def test_trim_frames_the_fruit_like_a_fruits360_photo():
    photo = np.full((40, 60), 255, np.uint8)
    photo[10:30, 5:15] = 0  # a dark 10x20 'fruit' off-centre on white
    assert object_box(photo) == (5, 10, 15, 30)
    fitted, note = fit_to_training_size(photo, (4, 4), "trim")
    # cropped to the box, padded white to 20x20 (5 columns each side), resized to 4x4
    assert fitted.tolist() == [[255, 0, 0, 255]] * 4
    assert note == "trimmed to the fruit (10x20 at 5,10), resized to 4x4"


def test_trim_without_a_light_background_crops_the_centre():
    dark = np.full((2, 6), 100, np.uint8)
    assert object_box(dark) is None and object_box(np.full((5, 5), 255, np.uint8)) is None
    fitted, note = fit_to_training_size(dark, (2, 2), "trim")
    assert fitted.shape == (2, 2) and note == "centre-cropped to 2x2, resized to 2x2"


def test_pad_adds_white_around_the_whole_photo():
    fitted, note = fit_to_training_size(np.zeros((2, 4), np.uint8), (4, 4), "pad")
    assert fitted.tolist() == [[255] * 4, [0] * 4, [0] * 4, [255] * 4]
    assert note == "padded with white to 4x4, resized to 4x4"
    colour, _note = fit_to_training_size(np.zeros((2, 4, 3), np.uint8), (4, 4), "pad")
    assert colour[0].tolist() == [[255, 255, 255]] * 4 and colour[1].tolist() == [[0, 0, 0]] * 4


def test_one_framing_frames_every_plane_of_a_photo_alike():
    colour = np.full((2, 6, 3), 255, np.uint8)
    colour[:, 2:4] = (10, 20, 30)  # the centre 2x2
    framing = plan_framing(colour, (2, 2), "crop")
    assert (framing.box, framing.padding) == ((2, 0, 4, 2), (0, 0, 0, 0))
    assert framing.note == "centre-cropped to 2x2, resized to 2x2"
    grey = np.arange(12, dtype=np.uint8).reshape(2, 6)
    assert framing.apply(grey).tolist() == [[2, 3], [8, 9]]
    assert framing.apply(colour).tolist() == [[[10, 20, 30]] * 2] * 2
    padded = plan_framing(np.zeros((2, 4), np.uint8), (4, 4), "pad")
    assert padded.padding == (1, 1, 0, 0)
    assert padded.apply(np.full((2, 4, 3), 7, np.uint8))[:, 0].tolist() == [
        [255] * 3, [7] * 3, [7] * 3, [255] * 3]
    with pytest.raises(ValueError, match="a framing planned for 6x2 pixels, given 4x2"):
        framing.apply(np.zeros((2, 4), np.uint8))
    assert plan_framing(grey, (6, 2), "crop") is None and plan_framing(grey, (2, 2), "none") is None


def test_policy_none_keeps_any_size():
    pixels = np.zeros((30, 50), np.uint8)
    fitted, note = fit_to_training_size(pixels, (100, 100), "none")
    assert fitted is pixels and note is None


def test_predict_settings_are_validated():
    with pytest.raises(ConfigError, match=r"^predict.fit must be one of trim, crop, pad, none "
                                          r"\(got 'stretch'\)$"):
        load_config(None, {"predict.fit": "stretch"})
    with pytest.raises(ConfigError, match=r"^predict.min_probability must be in \[0, 1\]$"):
        load_config(None, {"predict.min_probability": "1.5"})


# ----------------------------------------------------------------------------- the model file

def test_model_file_round_trip_is_exact_and_deterministic():
    model = tiny_model()
    data = model_to_bytes(model)
    assert model_to_bytes(model) == data
    loaded = model_from_bytes(data)
    assert loaded.classes == model.classes
    for name in ("centers", "idf", "pc", "coefficients", "intercepts"):
        assert np.array_equal(getattr(loaded, name), getattr(model, name)), name
    assert loaded.centers.dtype == np.float32
    assert (loaded.orb, loaded.histograms) == (model.orb, model.histograms)
    assert loaded.training_size == (100, 100) and loaded.fruits == model.fruits
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:  # plain NumPy reads it
        metadata = json.loads(str(archive["metadata"]))
    assert metadata["format"] == "bovw-model" and metadata["format_version"] == 1


def test_model_without_tfidf_has_no_idf_array():
    data = model_to_bytes(tiny_model(idf=None, histograms=HistogramSettings(tfidf=False,
                                                                           pyramid_levels=1)))
    assert "idf.npy" not in zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert model_from_bytes(data).idf is None


def _rewrite_metadata(data: bytes, change) -> bytes:
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    metadata = json.loads(str(arrays["metadata"]))
    change(metadata)
    arrays["metadata"] = np.array(json.dumps(metadata))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def test_a_newer_format_version_is_refused_with_the_fix():
    newer = _rewrite_metadata(model_to_bytes(tiny_model()),
                              lambda m: m.update(format_version=2, bovw_version="9.9"))
    with pytest.raises(ModelFileError) as error:
        model_from_bytes(newer, "m.npz")
    assert str(error.value) == (
        "m.npz has model format version 2; bovw 0.2.0 reads version 1: export the run again "
        "with this bovw, or use the bovw that wrote it (9.9)")


REEXPORT = ("it was changed after bovw export wrote it, or not written by bovw: export the "
            "run again (bovw export RUN_DIR --out FILE)")


@pytest.mark.parametrize(("change", "found"), [
    (lambda m: m.update(format_version="1"),
     'format_version is the string "1" where an integer is expected'),
    (lambda m: m.update(format_version=True),
     "format_version is the boolean true where an integer is expected"),
    (lambda m: m.update(format_version=1.0),
     "format_version is the number 1.0 where an integer is expected"),
    (lambda m: m.pop("format_version"), "has no format_version"),
    (lambda m: m.update(training_size=["100", 100]),
     'training_size[0] is the string "100" where an integer is expected'),
    (lambda m: m.update(training_size=[100]), "training_size has 1 values, expected 2"),
    (lambda m: m.update(feature_blocks="words"),
     'feature_blocks is the string "words" where a list of strings is expected'),
    (lambda m: m["orb"].update(patch_size="8"),
     'orb.patch_size is the string "8" where an integer is expected'),
    (lambda m: m["orb"].update(dense_scales=[1, "2"]),
     'orb.dense_scales[1] is the string "2" where a number is expected'),
    (lambda m: m["histograms"].update(tfidf=1),
     "histograms.tfidf is the integer 1 where true or false is expected"),
    (lambda m: m.update(histograms=None), "histograms is null where an object is expected"),
    (lambda m: m["fruits"]["Banana"].update(name=["Banana"]),
     "fruits['Banana'].name is a list where a string is expected"),
    (lambda m: m.update(source="run"),
     'source is the string "run" where an object is expected'),
    (lambda m: m.update(bovw_version=0.2),
     "bovw_version is the number 0.2 where a string is expected"),
])
def test_a_header_field_of_the_wrong_type_is_named_as_such(change, found):
    # Issue 16.10: the string "1" was reported as "format version 1; bovw reads version 1".
    data = _rewrite_metadata(model_to_bytes(tiny_model()), change)
    with pytest.raises(ModelFileError) as error:
        model_from_bytes(data, "m.npz")
    assert str(error.value) == f"m.npz is not a usable bovw model: its metadata {found}; " \
                               + REEXPORT


def _rewrite_array(data: bytes, name: str, array) -> bytes:
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        arrays = {member: archive[member] for member in archive.files}
    arrays[name] = array
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


@pytest.mark.parametrize(("name", "array", "found"), [
    ("coefficients", np.array([[np.nan, 0.0, 0.0], [0.0, 0.0, 1.0]]),
     "coefficients holds NaN or infinite values (1 of 6)"),
    ("intercepts", np.array([np.inf, -np.inf]), "intercepts holds NaN or infinite values (2 of 2)"),
    ("pc", np.full((3, 3), np.nan), "pc holds NaN or infinite values (9 of 9)"),
    ("centers", np.full((3, 32), np.inf, np.float32),
     "centers holds NaN or infinite values (96 of 96)"),
    ("idf", np.array([1.0, np.nan, 1.0]), "idf holds NaN or infinite values (1 of 3)"),
    ("idf", np.array([1.0, -2.0, 1.0]),
     "idf holds negative weights (IDF is log((n + 1) / (df + 1)) >= 0)"),
    ("coefficients", np.array([["a", "b", "c"], ["d", "e", "f"]]),
     "coefficients holds <U1 values, expected numbers"),
    ("intercepts", np.zeros(3), "intercepts have shape (3,), expected (2,)"),
    ("classes", np.array(["Banana", "Banana"]), "class 'Banana' is listed twice"),
    ("classes", np.array([1, 2]),
     "classes is a 1-D array of int64, expected a list of names"),
    # A traceback ("Object arrays cannot be loaded when allow_pickle=False"; review 3).
    ("classes", np.array(["a", 1, None], dtype=object),
     "its 'classes' array holds Python objects, which bovw does not load"),
    ("pc", np.array([[1.0, "x"]], dtype=object),
     "its 'pc' array holds Python objects, which bovw does not load"),
])
def test_a_model_with_unusable_values_is_refused_naming_the_file_and_the_fix(name, array,
                                                                             found):
    # Issue 16.8: NaN coefficients predicted "Apricot (nan%)" with exit 0.
    data = _rewrite_array(model_to_bytes(tiny_model()), name, array)
    with pytest.raises(ModelFileError) as error:
        model_from_bytes(data, "m.npz")
    assert str(error.value) == f"m.npz is not a usable bovw model: {found}; {REEXPORT}"


def test_cli_refuses_a_nan_model_in_one_line(tmp_path, capsys):
    from bovw.cli import main

    model = tmp_path / "nan.npz"
    model.write_bytes(_rewrite_array(model_to_bytes(tiny_model()), "coefficients",
                                     np.full((2, 3), np.nan)))
    photo = tmp_path / "photo.png"
    photo.write_bytes(white_png(100, 100))
    assert main(["predict", "--model", str(model), str(photo)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (f"bovw: error: {model} is not a usable bovw model: coefficients holds NaN "
                   f"or infinite values (6 of 6); {REEXPORT}\n")


def test_an_unknown_feature_block_is_refused():
    newer = _rewrite_metadata(model_to_bytes(tiny_model()),
                              lambda m: m.update(feature_blocks=["words", "sift"]))
    with pytest.raises(ModelFileError, match="feature block 'sift' is unknown to bovw 0.2.0"):
        model_from_bytes(newer, "m.npz")


def test_a_model_of_the_old_dense_scales_is_refused_with_the_fix():
    # Written before orb.descriptor_scheme: its 2.0 grid was described by 8 px patches.
    def old(metadata):
        del metadata["orb"]["descriptor_scheme"]
    data = model_to_bytes(tiny_model(orb=OrbSettings(sampling="dense", dense_scales=(1.0, 2.0))))
    with pytest.raises(ModelFileError) as error:
        model_from_bytes(_rewrite_metadata(data, old), "m.npz")
    assert str(error.value) == (
        "m.npz was trained on other descriptors than bovw 0.2.0 computes: its descriptors come "
        "from a bovw before descriptor scheme 2, whose orb.dense_scales [1.0, 2.0] all "
        "described patches of orb.patch_size px; this bovw describes scale s with patches of "
        "patch_size * s px. Run the pipeline again with this bovw and export that run")
    assert model_from_bytes(data).orb.descriptor_scheme == 2


@pytest.mark.parametrize("orb", [OrbSettings(sampling="dense", dense_scales=(1.0,)),
                                 OrbSettings(sampling="detect", dense_scales=(1.0, 2.0))])
def test_an_old_model_whose_descriptors_are_unchanged_still_loads(orb):
    def old(metadata):
        del metadata["orb"]["descriptor_scheme"]
    loaded = model_from_bytes(_rewrite_metadata(model_to_bytes(tiny_model(orb=orb)), old))
    assert loaded.orb == orb


def colour_model() -> ExportedModel:
    """tiny_model plus a 2-bin colour block (hue only, weight 2): pc is 5 x 5."""
    return tiny_model(colour=ColourSettings(enabled=True, hue_bins=2, saturation_bins=1,
                                            value_bins=1, weight=2.0),
                      feature_blocks=("words", "colour"), pc=np.eye(5),
                      coefficients=np.zeros((2, 5)))


def test_colour_block_is_weight_times_its_square_root():
    model = colour_model()
    no_words = np.zeros((0, 32), np.uint8)
    vector = feature_vector(no_words, np.zeros((0, 2), np.uint8), model,
                            np.array([0.25, 0.75], np.float32))
    assert vector.tolist() == [0.0, 0.0, 0.0, 1.0, 2.0 * math.sqrt(0.75)]
    # A block that could not be computed is zeros, as in the pipeline.
    assert feature_vector(no_words, np.zeros((0, 2), np.uint8), model).tolist() == [0.0] * 5


def test_colour_model_round_trip_and_consistency():
    model = colour_model()
    loaded = model_from_bytes(model_to_bytes(model))
    assert loaded.colour == model.colour and loaded.feature_blocks == ("words", "colour")
    assert model_from_bytes(model_to_bytes(tiny_model())).colour is None
    with pytest.raises(ModelFileError, match=r"feature_blocks \['words', 'colour'\] do not "
                                              r"fit the model: expected \['words'\]"):
        dataclasses.replace(model, colour=None, pc=np.eye(3),
                            coefficients=np.zeros((2, 3))).validate()
    with pytest.raises(ModelFileError, match=r"expected \['words', 'colour'\]"):
        dataclasses.replace(model, feature_blocks=("colour", "words")).validate()
    with pytest.raises(ModelFileError, match=r"pc has shape \(3, 3\), expected \(5, comp"):
        dataclasses.replace(model, pc=np.eye(3), coefficients=np.zeros((2, 3))).validate()


def tone_colour_model(**changes) -> ExportedModel:
    """colour_model with a 2-bin tone block (weight 0.5) before the colour block: pc 7 x 7."""
    values = dict(tone=ToneSettings(enabled=True, bins=2, weight=0.5),
                  feature_blocks=("words", "tone", "colour"), pc=np.eye(7),
                  coefficients=np.zeros((2, 7)))
    return dataclasses.replace(colour_model(), **{**values, **changes})


def test_tone_block_comes_before_the_colour_block():
    vector = feature_vector(np.zeros((0, 32), np.uint8), np.zeros((0, 2), np.uint8),
                            tone_colour_model(), np.array([0.25, 0.75], np.float32),
                            np.array([0.36, 0.64], np.float32))
    assert vector.tolist() == pytest.approx([0, 0, 0, 0.3, 0.4, 1.0, 2.0 * math.sqrt(0.75)])
    assert feature_vector(np.zeros((0, 32), np.uint8), np.zeros((0, 2), np.uint8),
                          tone_colour_model()).tolist() == [0.0] * 7


def test_soft_assignment_shares_each_descriptor_among_its_nearest_words():
    model = tiny_model(histograms=HistogramSettings(tfidf=False, l2=False, pyramid_levels=1,
                                                    power=1.0, assignment="soft",
                                                    soft_neighbours=2),
                       idf=None, word_variance=1000.0)
    # Halfway between words 0 and 128 (squared distance 32 * 64^2 to both).
    descriptors = np.full((1, 32), 64, np.uint8)
    vector = feature_vector(descriptors, np.zeros((1, 2), np.uint8), model)
    assert vector.tolist() == [0.5, 0.5, 0.0]
    hard = dataclasses.replace(model, histograms=HistogramSettings(tfidf=False, l2=False,
                                                                   pyramid_levels=1, power=1.0))
    assert feature_vector(descriptors, np.zeros((1, 2), np.uint8), hard).tolist() == [1, 0, 0]


def test_a_bits_vocabulary_model_round_trips_and_counts_words_by_hamming_distance():
    # Word 0 = the bits of 0x7F in the first byte, word 1 = all zero bits, word 2 = all one.
    first = np.zeros((3, 32), np.uint8)
    first[0, 0], first[2] = 0x7F, 0xFF
    words = np.unpackbits(first, axis=1).astype(np.float32)
    model = tiny_model(centers=words, idf=None,
                       histograms=HistogramSettings(tfidf=False, l2=False, pyramid_levels=1))
    loaded = model_from_bytes(model_to_bytes(model))
    assert np.array_equal(loaded.centers, words) and loaded.centers.shape == (3, 256)
    descriptors = np.zeros((2, 32), np.uint8)
    descriptors[0, 0] = 0x80  # 1 bit from word 1, 8 from word 0
    descriptors[1] = 0xFE  # 32 bits from word 2, 224 from word 1
    vector = feature_vector(descriptors, np.zeros((2, 2), np.uint8), loaded)
    assert vector.tolist() == [0.0, 1.0, 1.0]
    with pytest.raises(ModelFileError, match=r"centers has shape \(3, 100\), expected "
                                             r"\(k, 32\) \(a vocabulary of byte values\) or "
                                             r"\(k, 256\)"):
        dataclasses.replace(model, centers=np.zeros((3, 100), np.float32)).validate()


def test_tone_and_soft_model_round_trip_and_consistency():
    model = tone_colour_model(histograms=HistogramSettings(assignment="soft", pyramid_levels=1),
                              word_variance=1234.5)
    loaded = model_from_bytes(model_to_bytes(model))
    assert loaded.tone == model.tone and loaded.colour == model.colour
    assert loaded.feature_blocks == ("words", "tone", "colour")
    assert loaded.histograms.assignment == "soft" and loaded.word_variance == 1234.5
    assert model_from_bytes(model_to_bytes(tiny_model())).tone is None
    with pytest.raises(ModelFileError, match=r"expected \['words', 'tone', 'colour'\]"):
        dataclasses.replace(model, feature_blocks=("words", "colour", "tone")).validate()
    with pytest.raises(ModelFileError, match="soft assignment needs a word_variance >= 0 "
                                             r"\(got None\)"):
        dataclasses.replace(model, word_variance=None).validate()


def test_not_a_model_file(tmp_path):
    for data in (b"", b"hello", imagefiles.jpeg(size=20)):
        with pytest.raises(ModelFileError) as error:
            model_from_bytes(data, "x.npz")
        assert str(error.value) == ("x.npz is not a bovw model file (.npz); create one with "
                                    "bovw export RUN_DIR")
    with pytest.raises(ModelFileError, match=r"^model file not found: .*nothing.npz; create one"):
        Predictor.load(tmp_path / "nothing.npz")


def test_inconsistent_arrays_are_refused():
    with pytest.raises(ModelFileError, match=r"coefficients have shape \(2, 2\), expected"):
        tiny_model(coefficients=np.zeros((2, 2))).validate()


def test_predictor_module_does_not_import_pyspark():
    code = ("import sys, bovw, bovw.predict.predictor; bovw.Predictor; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pyspark', 'py4j')))")
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                               cwd=REPO, check=True)
    assert completed.stdout.strip() == "[]"


def test_bovw_predictor_is_the_predictor_class():
    import bovw

    assert bovw.Predictor is Predictor


# ---------------------------------------------------------------- predictions, no Spark needed

def test_unreadable_bytes_are_a_reject_not_an_exception():
    prediction = Predictor(tiny_model()).predict(b"not a photo")
    assert prediction.reject_reason == "not an image (unrecognised format)"
    assert prediction.top == () and prediction.low_confidence and prediction.label is None


@pytest.mark.parametrize("top", [0, -1, 1.5, True])
def test_top_below_one_or_not_a_whole_number_is_refused(top):
    predictor = Predictor(tiny_model(), PredictSettings(min_textured_patches=0))
    with pytest.raises(ValueError, match=rf"top must be a whole number >= 1 \(got {top!r}\)"):
        predictor.predict(white_png(100, 100), top=top)


def test_top_gives_at_most_that_many_classes():
    predictor = Predictor(tiny_model(), PredictSettings(min_textured_patches=0, top=2))
    photo = white_png(100, 100)
    assert len(predictor.predict(photo, top=1).top) == 1
    assert len(predictor.predict(photo).top) == 2
    assert len(predictor.predict(photo, top=np.int64(5)).top) == 2  # the model's 2 classes


def test_a_photo_path_is_read_like_its_bytes(tmp_path):
    predictor = Predictor(tiny_model(), PredictSettings(min_textured_patches=0))
    photo = tmp_path / "photo.png"
    photo.write_bytes(white_png(300, 200))
    from_bytes = predictor.predict(photo.read_bytes()).to_dict()
    assert predictor.predict(photo).to_dict() == from_bytes
    assert predictor.predict(str(photo)).to_dict() == from_bytes
    assert predictor.predict(bytearray(photo.read_bytes())).to_dict() == from_bytes
    with pytest.raises(FileNotFoundError):
        predictor.predict(tmp_path / "missing.jpg")
    with pytest.raises(TypeError, match=r"a photo is the bytes of an image file or its path "
                                        r"\(str or os.PathLike\), not int"):
        predictor.predict(42)


def test_open_image_refuses_what_is_not_bytes():
    from bovw.image.decode import open_image

    with pytest.raises(TypeError, match="open_image takes the bytes of an image file, not str"):
        open_image("/path/photo.jpg", OrbSettings())


def test_cli_refuses_overwrite_for_photo_files(tmp_path, capsys):
    from bovw.cli import main

    photo = tmp_path / "photo.png"
    photo.write_bytes(white_png(100, 100))
    code = main(["predict", "--model", str(tmp_path / "model.npz"), str(photo), "--overwrite"])
    assert code == 1
    assert capsys.readouterr().err == (
        "bovw: error: --output, --overwrite and --labelled are for a folder or s3a:// prefix "
        "input; for photo files the predictions are printed\n")


def test_a_blank_phone_photo_is_fitted_and_flagged():
    # Without the detail check (below), to reach the answer a blank photo would get.
    predictor = Predictor(tiny_model(), PredictSettings(min_probability=0.0,
                                                        min_textured_patches=0))
    prediction = predictor.predict(white_png(300, 200))
    assert prediction.n_keypoints == 0 and prediction.low_confidence
    assert prediction.fitted == "300x200 photo centre-cropped to 200x200, resized to 100x100"
    assert prediction.notes == ("no keypoints found (a plain, blurred or tiny photo): the answer "
                                "only reflects how common each class was in training",)
    # A zero histogram leaves only the intercepts: both 0 here, so a tie, resolved in class order.
    assert [s.label for s in prediction.top] == ["Banana", "Orange"]
    assert [s.probability for s in prediction.top] == [0.5, 0.5]
    assert prediction.top[0].info.family == "Musaceae" and prediction.top[1].info is None
    assert (prediction.width, prediction.height) == (300, 200)


def test_low_probability_is_flagged():
    predictor = Predictor(tiny_model(), PredictSettings(min_probability=0.6,
                                                        min_textured_patches=0))
    prediction = predictor.predict(white_png(100, 100))
    assert prediction.fitted is None
    assert prediction.notes[1] == "top probability 0.50 is below predict.min_probability=0.6"
    answered = Predictor(tiny_model(), PredictSettings(min_textured_patches=0))
    assert answered.predict(white_png(100, 100)).notes[1:] == ()


# Issue 16.9: with dense sampling every 100x100 photo has 289 descriptors, so
# predict.min_keypoints never fired and a 5x5 photo, enlarged, was answered "Mango (94.1%)".

def tiny_photo(side: int = 5, enlarged_to: int | None = None, seed: int = 3) -> bytes:
    """A generated Orange shrunk to side x side px, enlarged back (Pillow's default bicubic)
    when `enlarged_to` is given."""
    fruit = Image.fromarray(render_fruit("Orange", np.random.default_rng(seed)))
    small = fruit.resize((side, side), Image.Resampling.BOX)
    if enlarged_to:
        small = small.resize((enlarged_to, enlarged_to))
    buffer = io.BytesIO()
    small.save(buffer, format="PNG")
    return buffer.getvalue()


def dense_model() -> ExportedModel:
    return tiny_model(orb=OrbSettings())


def test_textured_patches_counts_the_patches_of_the_grid_that_show_detail():

    orb = OrbSettings()
    # 17 x 17 patches on a 100x100 image: grid points 10, 15, ..., 90 on each axis.
    assert textured_patches(np.full((100, 100), 200, np.uint8), orb) == (0, 289)
    checkers = (np.indices((100, 100)).sum(axis=0) % 2 * 255).astype(np.uint8)
    assert textured_patches(checkers, orb) == (289, 289)
    # Detail in columns 0-49 only: the 8 px patch at x covers columns x-4 to x+3, so the
    # grid columns x = 10, 15, ..., 50 (9 of 17) see checkers, x = 55 only flat grey.
    half = checkers.copy()
    half[:, 50:] = 128
    assert textured_patches(half, orb) == (9 * 17, 289)
    smooth = np.tile(np.linspace(0, 255, 100).astype(np.uint8), (100, 1))  # a ramp
    assert textured_patches(smooth, orb) == (0, 289)
    assert textured_patches(np.zeros((12, 12), np.uint8), orb) == (0, 0)


def test_a_flat_black_area_gives_no_numpy_warning():
    # The box filter left a flat black area a rounding error below 0, and bovw predict
    # printed "RuntimeWarning: invalid value encountered in sqrt" (review 3).
    picture = np.zeros((100, 100), np.uint8)
    picture[30:70, 30:70] = np.random.default_rng(0).integers(0, 256, (40, 40))
    orb = dense_model().orb
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        textured, patches = textured_patches(picture, orb)
    # The grid points within 4 px of the noise (the 8 px patch) see it; the others do not.
    assert (textured, patches) == (9 * 9, 289)


def test_a_tiny_photo_is_not_answered():
    prediction = Predictor(dense_model()).predict(tiny_photo(5))
    reason = "the photo is 5x5 px, below predict.min_side=32 px: too small to describe"
    assert prediction.flagged == reason
    assert prediction.top == () and prediction.label is None and prediction.low_confidence
    assert prediction.notes == (f"not answered: {reason}",)
    assert prediction.to_dict()["flagged"] == reason
    assert (prediction.width, prediction.height) == (5, 5)
    # Refused for its size, it was not described: no note of how it was framed.
    assert prediction.fitted is None


def test_a_tiny_photo_enlarged_is_not_answered():
    prediction = Predictor(dense_model()).predict(tiny_photo(5, enlarged_to=100))
    assert (prediction.width, prediction.height) == (100, 100)
    assert prediction.flagged == (
        "only 0 of its 289 patches show any detail (fewer than "
        "predict.min_textured_patches=20): the photo is too small, flat or blurred to describe")
    assert prediction.top == ()
    # Judged as made the training size, so how it was is said.
    larger = Predictor(dense_model()).predict(tiny_photo(5, enlarged_to=200))
    assert larger.flagged == prediction.flagged
    assert larger.fitted == "200x200 photo resized to 100x100"


def test_a_flat_photo_is_not_answered():
    prediction = Predictor(dense_model()).predict(imagefiles.encode(
        np.full((100, 100, 3), (240, 160, 40), np.uint8)))
    assert prediction.flagged.startswith("only 0 of its 289 patches show any detail")


def test_generated_fruits_are_answered():
    predictor = Predictor(dense_model())
    for name in ("Apple Red 1", "Banana", "Orange", "Kiwi", "Lemon"):
        for seed in range(5):
            prediction = predictor.predict(encode_jpeg(render_fruit(name,
                                                                    np.random.default_rng(seed))))
            assert prediction.flagged is None, (name, seed)
            assert prediction.label in ("Banana", "Orange")


@pytest.mark.parametrize("fit", ["crop", "pad", "trim"])
def test_a_colour_model_describes_a_framed_photo_from_the_grey_image_the_pipeline_uses(fit):
    # The words' grey image of a photo of another size was once the framed colour photo
    # made grey again (PIL's weights), not libjpeg's luminance as the pipeline decodes it:
    # a grey level apart on some pixels, and other descriptors and tone than a grey model's.
    photo = phone_photo("Banana")
    tone = ToneSettings(enabled=True, bins=32, weight=0.5)
    grey_only = tiny_model(orb=OrbSettings(), tone=tone, feature_blocks=("words", "tone"),
                           pc=np.eye(35), coefficients=np.zeros((2, 35)))
    with_colour = dataclasses.replace(grey_only, colour=colour_model().colour,
                                      feature_blocks=("words", "tone", "colour"),
                                      pc=np.eye(37), coefficients=np.zeros((2, 37)))
    settings = PredictSettings(fit=fit)
    plain, coloured = (Predictor(model, settings).describe(photo)
                       for model in (grey_only, with_colour))
    # The colour photo plans the framing ("trim" finds the fruit on it), which then frames
    # libjpeg's grey image.
    framing = plan_framing(to_rgb(open_image(photo, with_colour.orb)[0]), (100, 100), fit)
    grey = framing.apply(decode_grey(photo, with_colour.orb)[0])
    assert coloured.fitted.endswith(framing.note)
    assert np.array_equal(coloured.descriptors, describe_keypoints(grey, with_colour.orb)[0])
    assert np.array_equal(coloured.tone, tone_histogram(grey, tone))
    assert coloured.colour is not None and plain.colour is None
    if fit != "trim":  # the same framing whichever plane plans it: a grey model's words
        assert coloured.fitted == plain.fitted
        assert np.array_equal(coloured.descriptors, plain.descriptors)
        assert np.array_equal(coloured.positions, plain.positions)
        assert np.array_equal(coloured.tone, plain.tone) and coloured.detail == plain.detail


def test_grey_and_colour_images_of_different_sizes_are_a_reject(monkeypatch):
    import bovw.predict.predictor as predictor_module

    monkeypatch.setattr(predictor_module, "_rgb", lambda data, orb: np.zeros((40, 60, 3),
                                                                             np.uint8))
    described = Predictor(colour_model()).describe(phone_photo("Banana"))
    assert described.reject_reason == ("decoder failed: a 600x400 grey image and a 60x40 "
                                       "colour image of one photo")
    assert len(described.descriptors) == 0


def test_the_thresholds_are_settings():
    photo = tiny_photo(5)
    lenient = Predictor(dense_model(), PredictSettings(min_side=5, min_textured_patches=0))
    assert lenient.predict(photo).flagged is None and lenient.predict(photo).label is not None
    strict = Predictor(dense_model(), PredictSettings(min_side=5))
    assert strict.predict(photo).flagged.startswith("only 0 of its 289 patches")
    for key in ("min_side", "min_textured_patches"):
        with pytest.raises(ConfigError, match=f"predict.{key} must be >= 0"):
            load_config(None, {f"predict.{key}": -1})
        assert getattr(load_config(REPO / "conf" / "local.toml").predict, key) == \
            getattr(PredictSettings(), key)


# ------------------------------------------------------------- agreement with the Spark model

def _train_and_export(spark, config, root):
    """Run the pipeline with `config` on 3 generated classes under `root`, export it, and
    collect Spark's Test predictions."""
    from bovw.image.synthetic import generate_dataset
    from bovw.pipeline.run import run_pipeline
    from bovw.predict.export import export_model

    generate_dataset(root / "data", classes=3, train_per_class=10, test_per_class=4, seed=0)
    run_pipeline(spark, config, str(root / "data"), str(root / "run"), log=lambda _: None)
    model, written = export_model(spark, str(root / "run"), str(root / "model.npz"),
                                  load_catalogue(REPO / "bovw" / "predict" / "fruits.toml"))
    test_rows = (storage.read_parquet(spark, str(root / "run" / "features"))
                 .filter("split = 'Test'").select("path", "prediction", "probability").collect())
    spark_results = {row["path"].removeprefix("file:"): (row["prediction"],
                                                         row["probability"].toArray())
                     for row in test_rows}
    return {"root": root, "run": root / "run", "model": Path(written), "exported": model,
            "spark": spark_results, "spark_session": spark}


@pytest.fixture(scope="module")
def trained(spark, test_config, tmp_path_factory):
    """One pipeline run (k=12, 2-level pyramid, 5 PCA components) on 3 generated classes,
    and its export."""
    # A 2-level spatial pyramid and square-root weighting exercise every step of the
    # arithmetic the Predictor repeats; two dense scales, one of them non-integer, every
    # step of the description.
    config = test_config.replace(**{"vocabulary.k": 12, "pca.components": 5,
                                    "histograms.pyramid_levels": 2, "histograms.power": 0.5,
                                    "orb.dense_scales": "1.0,1.5"})
    return _train_and_export(spark, config, tmp_path_factory.mktemp("predict"))


def test_export_holds_the_run_settings(trained):
    model = Predictor.load(trained["model"]).model
    assert model.classes == ("Apple Red 1", "Banana", "Orange")
    assert model.centers.shape == (12, 32) and model.pc.shape == (12 * 5 + 32, 5)  # + tone
    assert model.coefficients.shape == (3, 5) and model.idf.shape == (12 * 5,)
    assert model.training_size == (100, 100)
    assert model.orb == OrbSettings(dense_scales=(1.0, 1.5))
    assert model.histograms == HistogramSettings(pyramid_levels=2, power=0.5)
    assert sorted(model.fruits) == ["Apple Red 1", "Banana", "Orange"]
    assert model.source["vocabulary_k"] == 12 and model.source["test_images"] == 12


def test_predictor_agrees_with_spark_on_every_test_image(trained):
    predictor = Predictor.load(trained["model"])
    assert len(trained["spark"]) == 12
    for path, (spark_label, spark_probabilities) in trained["spark"].items():
        data = Path(path).read_bytes()
        assert predictor.predict(data).label == spark_label, path
        assert np.abs(predictor.probabilities(data) - spark_probabilities).max() < 1e-9, path


def test_predictor_describes_like_spark_at_every_scale(trained):
    # The run's own descriptors and positions (written by the Spark UDF) are exactly the
    # Predictor's for each Test image, at every configured scale.
    from bovw.image.orb import unpack, unpack_positions

    predictor = Predictor.load(trained["model"])
    scales = predictor.model.orb.dense_scales
    assert predictor.model.orb.sampling == "dense" and len(scales) > 1
    rows = (storage.read_parquet(trained["spark_session"], str(trained["run"] / "descriptors"))
            .filter("split = 'Test'").select("path", "descriptors", "positions").collect())
    assert len(rows) == 12
    for row in rows:
        described = predictor.describe(Path(row["path"].removeprefix("file:")).read_bytes())
        assert np.array_equal(described.descriptors, unpack(row["descriptors"])), row["path"]
        assert np.array_equal(described.positions, unpack_positions(row["positions"]))
    # Each scale adds its own grid: 289 + 100 (scale 1.5) points on a 100 x 100 image.
    assert scales == (1.0, 1.5) and len(described.descriptors) == 289 + 100


def test_export_refuses_a_run_made_with_the_old_dense_scales(spark, trained, tmp_path):
    import shutil

    from bovw.errors import ExportError
    from bovw.predict.export import build_model

    run = tmp_path / "run"
    shutil.copytree(trained["run"], run)
    spec = json.loads((run / "run.json").read_text())
    del spec["config"]["orb"]["descriptor_scheme"]
    (run / "run.json").write_text(json.dumps(spec))
    with pytest.raises(ExportError) as error:
        build_model(spark, str(run))
    scales = list(spec["config"]["orb"]["dense_scales"])
    assert str(error.value) == (
        f"run {run} cannot be exported for this bovw: its descriptors come from a bovw before "
        f"descriptor scheme 2, whose orb.dense_scales {scales} all described patches of "
        "orb.patch_size px; this bovw describes scale s with patches of patch_size * s px. "
        "Run the pipeline again with this bovw (a new --output), then export that run")


def test_predictor_with_the_colour_block_agrees_with_spark(spark, test_config, tmp_path):
    config = test_config.replace(**{"vocabulary.k": 12, "pca.components": 5,
                                    "colour.enabled": True})
    trained = _train_and_export(spark, config, tmp_path)
    predictor = Predictor.load(trained["model"])
    assert predictor.model.colour == config.colour
    # 12 words x 21 pyramid cells (3 levels), then the tone and colour blocks.
    assert predictor.model.pc.shape == (12 * 21 + 32 + config.colour.dimension, 5)
    for path, (spark_label, spark_probabilities) in trained["spark"].items():
        data = Path(path).read_bytes()
        assert predictor.predict(data).label == spark_label, path
        assert np.abs(predictor.probabilities(data) - spark_probabilities).max() < 1e-9, path
    # A phone photo is framed once, and both blocks describe the framed fruit.
    prediction = predictor.predict(phone_photo("Banana"))
    assert prediction.fitted.startswith("600x400 photo trimmed to the fruit")
    assert prediction.label == "Banana"


def test_predictor_with_a_bits_vocabulary_agrees_with_spark(spark, test_config, tmp_path):
    config = test_config.replace(**{"vocabulary.k": 12, "pca.components": 5,
                                    "vocabulary.space": "bits"})
    trained = _train_and_export(spark, config, tmp_path)
    predictor = Predictor.load(trained["model"])
    assert predictor.model.centers.shape == (12, 256)
    # Centers of 0/1 points: every coordinate is a share of ones, between 0 and 1.
    assert predictor.model.centers.min() >= 0.0 and predictor.model.centers.max() <= 1.0
    assert len(trained["spark"]) == 12
    for path, (spark_label, spark_probabilities) in trained["spark"].items():
        data = Path(path).read_bytes()
        assert predictor.predict(data).label == spark_label, path
        assert np.abs(predictor.probabilities(data) - spark_probabilities).max() < 1e-9, path


def _assert_agrees(predictor: Predictor, trained: dict) -> None:
    """The Predictor gives Spark's label and, within 1e-9, its probabilities for each of the
    12 images of a run trained by _train_and_export."""
    assert len(trained["spark"]) == 12
    for path, (spark_label, spark_probabilities) in trained["spark"].items():
        data = Path(path).read_bytes()
        assert predictor.predict(data).label == spark_label, path
        assert np.abs(predictor.probabilities(data) - spark_probabilities).max() < 1e-9, path


def test_predictor_with_vlad_agrees_with_spark(spark, test_config, tmp_path):
    config = test_config.replace(**{"vocabulary.k": 4, "pca.components": 5,
                                    "histograms.encoding": "vlad", "histograms.tfidf": False,
                                    "histograms.power": 0.5, "histograms.pyramid_levels": 2})
    trained = _train_and_export(spark, config, tmp_path)
    predictor = Predictor.load(trained["model"])
    model = predictor.model
    assert model.histograms.encoding == "vlad" and model.idf is None
    # 4 words x 32 byte values x 5 pyramid cells, then the tone block.
    assert model.pc.shape == (4 * 32 * 5 + 32, 5)
    _assert_agrees(predictor, trained)
    # Residual sums reached Spark's table: negative values, which no word count has.
    vector = storage.read_parquet(spark, str(trained["run"] / "histograms")).first()["histogram"]
    assert vector.size == 640 and min(vector.values) < 0


def test_predictor_with_fisher_vectors_agrees_with_spark(spark, test_config, tmp_path):
    config = test_config.replace(**{"vocabulary.k": 3, "pca.components": 5,
                                    "vocabulary.space": "bits", "histograms.encoding": "fisher",
                                    "histograms.tfidf": False, "histograms.power": 0.5,
                                    "histograms.pyramid_levels": 2})
    trained = _train_and_export(spark, config, tmp_path)
    predictor = Predictor.load(trained["model"])
    model = predictor.model
    # The mixture's means stand in for the words; its weights travel beside them.
    assert model.histograms.encoding == "fisher" and model.centers.shape == (3, 256)
    assert model.mixture_weights.shape == (3,) and model.mixture_weights.sum() == (
        pytest.approx(1.0))
    assert 0 < model.centers.min() and model.centers.max() < 1
    # 3 components x 256 bits x 5 pyramid cells, then the tone block.
    assert model.pc.shape == (3 * 256 * 5 + 32, 5)
    _assert_agrees(predictor, trained)
    summary = json.loads((trained["run"] / "summary.json").read_text())
    assert summary["vocabulary"]["mixture_iterations"] >= 1
    # Without its weights the file no longer makes sense.
    broken = dataclasses.replace(model, mixture_weights=None)
    with pytest.raises(ModelFileError, match="mixture_weights must be present exactly when "
                                             'histograms.encoding is "fisher"'):
        broken.validate()


def test_predictor_with_tone_soft_assignment_and_colour_agrees_with_spark(spark, test_config,
                                                                          tmp_path):
    config = test_config.replace(**{"vocabulary.k": 12, "pca.components": 5,
                                    "tone.enabled": True, "colour.enabled": True,
                                    "histograms.assignment": "soft"})
    trained = _train_and_export(spark, config, tmp_path)
    predictor = Predictor.load(trained["model"])
    model = predictor.model
    assert model.tone == config.tone and model.colour == config.colour
    assert model.feature_blocks == ("words", "tone", "colour")
    assert model.histograms.assignment == "soft" and model.word_variance > 0
    summary = json.loads((trained["run"] / "summary.json").read_text())
    assert model.word_variance == summary["vocabulary"]["mean_squared_distance"]
    assert model.pc.shape == (12 * 21 + 32 + config.colour.dimension, 5)
    rows = (storage.read_parquet(spark, str(trained["run"] / "descriptors"))
            .filter("split = 'Test'").select("path", "tone").collect())
    for row in rows:
        described = predictor.describe(Path(row["path"].removeprefix("file:")).read_bytes())
        assert np.array_equal(described.tone, np.array(row["tone"], np.float32)), row["path"]
    assert len(trained["spark"]) == 12
    for path, (spark_label, spark_probabilities) in trained["spark"].items():
        data = Path(path).read_bytes()
        assert predictor.predict(data).label == spark_label, path
        assert np.abs(predictor.probabilities(data) - spark_probabilities).max() < 1e-9, path
    # Soft histograms: fractional counts reached Spark's histograms.
    histograms = storage.read_parquet(spark, str(trained["run"] / "histograms")
                                      ).first()["histogram"]
    assert any(value != int(value) for value in histograms.values)


def test_export_refuses_an_unfinished_run(spark, tmp_path):
    from bovw.errors import ExportError
    from bovw.predict.export import export_model

    (tmp_path / "run.json").write_text("{}")
    with pytest.raises(ExportError) as error:
        export_model(spark, str(tmp_path), None)
    assert str(error.value) == (
        f"run {tmp_path} has not finished (no summary.json): run bovw run again with the same "
        "--input and --output to finish it, then export")


def test_a_phone_photo_of_a_fruit_gets_its_class(trained):
    photo = phone_photo("Banana")
    # The generated fruits do not fill their frame (Fruits-360 fruits do), so the centre
    # crop, not "trim", frames this photo like the training images.
    prediction = Predictor.load(trained["model"], PredictSettings(fit="crop")).predict(photo)
    assert prediction.fitted == "600x400 photo centre-cropped to 400x400, resized to 100x100"
    # A 12-word model from 10 images per class: asking for the exact class of a re-framed
    # photo would test that tiny model's luck, not the photo policy.
    assert "Banana" in [score.label for score in prediction.top[:2]]
    assert prediction.n_keypoints >= 10
    trimmed = Predictor.load(trained["model"]).predict(photo)
    assert re.fullmatch(r"600x400 photo trimmed to the fruit \(\d+x\d+ at \d+,\d+\), resized "
                        r"to 100x100", trimmed.fitted)


# ------------------------------------------------------------------------------------- the CLI

def test_cli_predict_prints_top_classes_with_fruit_information(trained, tmp_path, capsys):
    from bovw.cli import main

    photo = next(Path(p) for p, (label, _) in trained["spark"].items() if label == "Orange")
    blank = tmp_path / "blank.png"
    blank.write_bytes(white_png(300, 200))
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    code = main(["predict", "--model", str(trained["model"]), "--top", "2",
                 str(photo), str(blank), str(broken)])
    out = capsys.readouterr().out.splitlines()
    assert code == 1  # one photo could not be read, one not answered
    assert out[0].startswith(f"{photo}: Orange (") and out[0].endswith("%)")
    assert out[1] == ("    Orange (Rutaceae; orange): The sweet orange (Citrus sinensis), a "
                      "citrus fruit with a dimpled peel.")
    assert out[2].startswith("    next: ") and out[2].count("%") == 1
    assert out[-3] == (f"{blank}: not answered: only 0 of its 289 patches show any detail "
                       "(fewer than predict.min_textured_patches=20): the photo is too small, "
                       "flat or blurred to describe")
    assert out[-2] == "    photo: 300x200 photo centre-cropped to 200x200, resized to 100x100"
    assert out[-1] == f"{broken}: cannot read the photo: not an image (unrecognised format)"


def test_cli_predict_json_matches_spark(trained, capsys):
    from bovw.cli import main

    paths = sorted(trained["spark"])
    assert main(["predict", "--model", str(trained["model"]), "--json", *paths]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["model"] == str(trained["model"])
    assert [p["path"] for p in document["predictions"]] == paths
    assert [p["label"] for p in document["predictions"]] == [trained["spark"][p][0]
                                                             for p in paths]
    first = document["predictions"][0]
    assert set(first["top"][0]) == {"label", "probability", "name", "description", "family",
                                    "colour"}
    assert first["n_keypoints"] > 0 and first["reject_reason"] is None


def test_cli_predict_with_a_run_folder_exports_it_once(trained, capsys):
    from bovw.cli import main

    exported = trained["run"] / "model.npz"
    exported.unlink(missing_ok=True)
    photo = sorted(trained["spark"])[0]
    assert main(["predict", "--model", str(trained["run"]), photo, *spark_flags()]) == 0
    captured = capsys.readouterr()
    assert captured.err.strip() == (f"[bovw] {trained['run']} has no model.npz yet: "
                                    "exporting it once")
    assert exported.read_bytes() == trained["model"].read_bytes()  # export is deterministic
    assert main(["predict", "--model", str(trained["run"]), photo]) == 0
    assert capsys.readouterr().err == ""


def test_cli_export_summary(trained, tmp_path, capsys):
    from bovw.cli import main

    out = tmp_path / "m.npz"
    assert main(["export", str(trained["run"]), "--out", str(out), "--no-fruits",
                 *spark_flags()]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"model written to {out}",
        "  3 classes, k=12 words, 5 PCA components, training size 100x100",
        "  fruit information for 0 of 3 classes (none for: Apple Red 1, Banana, Orange)",
    ]


def test_cli_predict_errors_are_one_line(trained, tmp_path, capsys):
    from bovw.cli import main

    assert main(["predict", "--model", str(tmp_path / "none.npz"), "x.jpg"]) == 1
    assert capsys.readouterr().err.strip() == (
        f"bovw: error: model not found: {tmp_path}/none.npz; give a model file from bovw "
        "export or a finished run folder")
    assert main(["predict", "--model", str(trained["model"]), str(trained["root"])]) == 1
    assert capsys.readouterr().err.strip() == (
        "bovw: error: predicting a folder writes Parquet: pass --output FOLDER")


@pytest.mark.parametrize("record, what, inside", [
    ("sweep.json", "a sweep folder", "points/<point>"),
    ("compare.json", "a comparison folder", "variants/<variant>")])
def test_cli_predict_with_a_sweep_or_comparison_folder_names_where_its_runs_are(
        tmp_path, capsys, record, what, inside):
    # Review 5: "is neither a model file nor a bovw run folder", where bovw export of the
    # same folder names points/<point>.
    from bovw.cli import main

    folder = tmp_path / "sweep"
    folder.mkdir()
    (folder / record).write_text("{}")
    assert main(["predict", "--model", f"{folder}/", "x.jpg"]) == 1
    assert capsys.readouterr().err.strip() == (
        f"bovw: error: {folder}/ is {what}, not a run folder or model file; predict with "
        f"one of its runs: --model {folder}/{inside}")


def test_cli_predict_reads_photo_files_as_a_run_reads_its_images(trained, tmp_path, capsys):
    # Review 4: a broken symbolic link was "file not found" here and named as one by a
    # run; a named pipe would have been waited on for ever.
    from bovw.cli import main

    (tmp_path / "moved.jpg").symlink_to(tmp_path / "gone.jpg")
    os.mkfifo(tmp_path / "pipe.jpg")
    photos = [tmp_path / "moved.jpg", tmp_path / "pipe.jpg", tmp_path / "nothing.jpg"]
    assert main(["predict", "--model", str(trained["model"]), *map(str, photos)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"{tmp_path}/moved.jpg: cannot read the photo: broken symbolic link: its target "
        f"{tmp_path}/gone.jpg does not exist",
        f"{tmp_path}/pipe.jpg: cannot read the photo: unreadable file: not a regular file (a "
        "named pipe, socket or device)",
        f"{tmp_path}/nothing.jpg: cannot read the photo: file not found"]


def test_cli_predict_of_a_folder_without_images_says_what_it_reads(trained, tmp_path, capsys):
    # Review 3: it asked for the Training/<Class> layout of a dataset, which predict does
    # not need (every image below the folder is predicted).
    from bovw.cli import main

    (tmp_path / "photos" / "notes").mkdir(parents=True)
    (tmp_path / "photos" / "notes" / "readme.txt").write_text("no photo")
    assert main(["predict", "--model", str(trained["model"]), "--output",
                 str(tmp_path / "out"), str(tmp_path / "photos")]) == 1
    assert capsys.readouterr().err == (
        f"bovw: error: input folder {tmp_path}/photos holds no image files (jpg, jpeg, png); "
        "expected image files at any depth below it (with --labelled, <Class>/*.jpg)\n")
    assert not (tmp_path / "out").exists()


def test_cli_predict_folder_runs_a_spark_job(spark, trained, tmp_path, capsys):
    from bovw.cli import main

    photos = tmp_path / "photos"
    for path in trained["spark"]:
        folder = photos / Path(path).parent.name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / Path(path).name).write_bytes(Path(path).read_bytes())
    (photos / "Banana" / "phone.jpg").write_bytes(phone_photo("Banana"))
    (photos / "Unknown").mkdir()
    (photos / "Unknown" / "broken.jpg").write_bytes(b"broken")
    (photos / "Unknown" / "tiny.png").write_bytes(tiny_photo(5))
    # In a known class's folder, but with no answer: left out of the accuracy, counted.
    (photos / "Banana" / "cut.jpg").write_bytes(b"\xff\xd8 cut short")
    (photos / "Banana" / "speck.png").write_bytes(tiny_photo(5))
    (photos / "Banana" / "moved.jpg").symlink_to(tmp_path / "gone.jpg")
    output = tmp_path / "predictions"
    code = main(["predict", "--model", str(trained["model"]), "--output", str(output),
                 "--labelled", str(photos), *spark_flags()])
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (f"predicted 18 images (3 unreadable, 2 too small or flat to answer, "
                        f"0 low confidence) -> {output}")
    rows = {Path(row["path"].removeprefix("file:")).name + row["label"]: row
            for row in storage.read_parquet(spark, str(output)).collect()}
    assert len(rows) == 18
    moved = rows["moved.jpgBanana"]
    assert moved["reject_reason"] == (
        f"broken symbolic link: its target {tmp_path / 'gone.jpg'} does not exist")
    assert moved["notes"] == f"cannot read the photo: {moved['reject_reason']}"
    tiny = rows["tiny.pngUnknown"]
    assert (tiny["prediction"], tiny["low_confidence"], tiny["reject_reason"]) == (None, True,
                                                                                   None)
    assert tiny["notes"] == ("not answered: the photo is 5x5 px, below predict.min_side=32 px: "
                             "too small to describe")
    predictor = Predictor.load(trained["model"])
    for path, (spark_label, _probabilities) in trained["spark"].items():
        row = rows[Path(path).name + Path(path).parent.name]
        assert row["prediction"] == spark_label
        expected = predictor.predict(Path(path).read_bytes())
        assert row["top_labels"] == [score.label for score in expected.top]
        assert row["top_probabilities"] == [score.probability for score in expected.top]
        assert row["n_keypoints"] == expected.n_keypoints
        assert row["display_name"] == expected.top[0].info.name
    phone = rows["phone.jpgBanana"]
    assert phone["fitted"] == Predictor.load(trained["model"]).predict(phone_photo("Banana")).fitted
    assert rows["broken.jpgUnknown"]["reject_reason"] == "not an image (unrecognised format)"
    correct = sum(rows[Path(p).name + Path(p).parent.name]["prediction"] == Path(p).parent.name
                  for p in trained["spark"]) + (phone["prediction"] == "Banana")
    assert lines[1] == (f"  accuracy {100 * correct / 13:.2f}% on 13 answered images of known "
                        "classes (3 more of known classes unreadable or not answered, left "
                        "out); 2 in folders of classes the model does not know, not scored")


def test_predict_accuracy_line_leaves_unanswered_photos_out_and_counts_them():
    from bovw.cli.predict import _accuracy_line
    from bovw.predict.batch import LabelledScores

    scored = LabelledScores(labelled=4, correct=3, unanswered=0, unknown_class=0)
    assert _accuracy_line(scored) == "accuracy 75.00% on 4 answered images of known classes"
    assert _accuracy_line(dataclasses.replace(scored, unanswered=3)) == (
        "accuracy 75.00% on 4 answered images of known classes (3 more of known classes "
        "unreadable or not answered, left out)")
    nothing = LabelledScores(labelled=0, correct=0, unanswered=0, unknown_class=0)
    assert nothing.accuracy is None
    assert _accuracy_line(nothing) == "no image is in a folder named after a known class"
    assert _accuracy_line(dataclasses.replace(nothing, unanswered=2)) == (
        "no answered image is in a folder named after a known class (2 more of known "
        "classes unreadable or not answered, left out)")
    # Review 5: photos of classes the model does not know went unmentioned.
    assert _accuracy_line(dataclasses.replace(scored, unknown_class=5)) == (
        "accuracy 75.00% on 4 answered images of known classes; 5 in folders of classes the "
        "model does not know, not scored")
    assert _accuracy_line(dataclasses.replace(nothing, unknown_class=1)) == (
        "no image is in a folder named after a known class; 1 in folders of classes the model "
        "does not know, not scored")


def test_predict_folder_json_keeps_its_keys():
    from bovw.predict.batch import FolderPredictions, LabelledScores

    plain = FolderPredictions(images=9, rejected=1, not_answered=2, low_confidence=3,
                              output="s3a://b/preds")
    assert plain.to_dict() == {"images": 9, "rejected": 1, "not_answered": 2,
                               "low_confidence": 3, "output": "s3a://b/preds"}
    scored = dataclasses.replace(plain, scores=LabelledScores(labelled=3, correct=2, unanswered=1,
                                                  unknown_class=4))
    assert list(scored.to_dict().items()) == [
        ("images", 9), ("rejected", 1), ("not_answered", 2), ("low_confidence", 3),
        ("labelled", 3), ("correct", 2), ("accuracy", 0.666667), ("labelled_unanswered", 1),
        ("unknown_class", 4), ("output", "s3a://b/preds")]


def test_a_reader_that_closes_the_output_stops_the_command_in_one_line(trained):
    # `bovw ... | head -1`: the console line failed with a 30-line BrokenPipeError trace.
    from bovw.cli.command import EXIT_OUTPUT_CLOSED
    from tests.cluster_fixtures import REPO_ROOT, subprocess_environment

    photo = str(next(iter(trained["spark"])))
    # Far more text than a pipe holds (64 KB), so the write meets the closed end.
    command = [sys.executable, "-m", "bovw.cli", "predict", "--model", str(trained["model"]),
               *[photo] * 1500]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             cwd=REPO_ROOT, env=subprocess_environment())
    assert child.stdout.readline().startswith(photo.encode())
    child.stdout.close()
    err = child.stderr.read().decode()
    assert child.wait(timeout=120) == EXIT_OUTPUT_CLOSED == 141
    # Predictions of photo files are only printed: nothing to go on from (review 4).
    assert err == "bovw: stopped: what read its output closed it (a broken pipe)\n"


def test_a_broken_pipe_outside_bovw_code_is_not_taken_for_a_closed_output():
    from bovw.cli.command import _output_closed

    try:
        import socket

        left, right = socket.socketpair()
        right.close()
        with left:
            for _ in range(100):
                left.send(b"x" * 65536)
    except BrokenPipeError as error:
        assert not _output_closed(error)
    else:
        raise AssertionError("the socket never failed")


def test_predict_folder_names_a_module_its_workers_lack_in_one_line(spark, test_config,
                                                                    trained, tmp_path,
                                                                    monkeypatch):
    # A library caller of batch prediction whose workers lack OpenCV got Spark's
    # PythonException whole (the worker's traceback and a Java stack); `bovw predict`
    # said it in one line. Now predict_folder raises the one line, from that error. The
    # workers here really fail to import: the Predictor's job is replaced by one whose
    # Python function raises the ModuleNotFoundError a worker without cv2 would.
    from pyspark.errors.exceptions.captured import PythonException

    from bovw.errors import WorkerError
    from bovw.predict import batch
    from bovw.spark.workers import worker_module_error

    def no_opencv(batches):
        for _batch in batches:
            raise ModuleNotFoundError("No module named 'cv2'", name="cv2")
        yield from ()

    monkeypatch.setattr(batch, "predict_files",
                        lambda files, *_args: files.select("path").mapInArrow(no_opencv,
                                                                              "path string"))
    photos = tmp_path / "photos" / "Banana"
    photos.mkdir(parents=True)
    (photos / "phone.jpg").write_bytes(phone_photo("Banana"))
    with pytest.raises(WorkerError) as caught:
        batch.predict_folder(spark, test_config, str(tmp_path / "photos"),
                             str(tmp_path / "predictions"), trained["model"].read_bytes(),
                             log=lambda _line: None)
    assert str(caught.value) == worker_module_error("cv2")
    assert isinstance(caught.value.__cause__, PythonException)
