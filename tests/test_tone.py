"""The tone block (grey-level histogram of the fruit pixels) and soft assignment to visual
words: exact results on hand-checkable cases, their Spark join, and their settings."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from PIL import Image
from pyspark.ml.linalg import Vectors, VectorUDT
from pyspark.sql.types import ArrayType, FloatType, StringType, StructField, StructType

from bovw.config import ColourSettings, ConfigError, HistogramSettings, OrbSettings, ToneSettings
from bovw.errors import ToneError
from bovw.image.orb import extract_descriptors
from bovw.image.tone import tone_histogram
from bovw.image.words import soft_words, word_counts
from bovw.pipeline.feature_rows import FeatureRows
from bovw.pipeline.histograms import appended_blocks, check_blocks, colour_block, tone_block
from tests.spark_weighting import feature_matrix

TONE = ToneSettings(enabled=True)  # 32 bins, background above 0.9 * 255, weight 0.5


def two_tone(size: int = 10) -> np.ndarray:
    """60 pixels of grey 100, 30 of grey 200 and 10 of white background (255)."""
    grey = np.full((size, size), 255, np.uint8)
    grey[:6] = 100
    grey[6:9] = 200
    return grey


# ------------------------------------------------------------------------- the tone block

def test_a_two_tone_image_gives_exactly_its_two_bins():
    histogram = tone_histogram(two_tone(), TONE)
    assert histogram.dtype == np.float32 and histogram.shape == (32,)
    # 100 // 8 = bin 12 and 200 // 8 = bin 25; the white row is background.
    expected = np.zeros(32, np.float32)
    expected[12], expected[25] = 60 / 90, 30 / 90
    assert np.array_equal(histogram, expected)


def test_the_background_threshold_is_inclusive_of_229_at_0_9():
    grey = np.array([[229, 230, 255, 0]], np.uint8)
    # 0.9 * 255 = 229.5: 229 is fruit, 230 and brighter are background.
    histogram = tone_histogram(grey, TONE)
    assert histogram[229 // 8] == 0.5 and histogram[0] == 0.5 and histogram.sum() == 1.0
    everything = tone_histogram(grey, ToneSettings(enabled=True, background_value=1.0))
    # 229 and 230 share bin 28; 255 is bin 31.
    assert everything.tolist()[28] == 0.5 and everything[31] == 0.25 and everything[0] == 0.25


def test_bins_split_0_255_evenly():
    grey = np.array([[0, 63, 64, 127, 128, 255]], np.uint8)
    settings = ToneSettings(enabled=True, bins=4, background_value=1.0)
    assert tone_histogram(grey, settings).tolist() == pytest.approx([2 / 6] * 2 + [1 / 6] * 2)
    assert tone_histogram(grey, settings).tolist() == [
        np.float32(2 / 6), np.float32(2 / 6), np.float32(1 / 6), np.float32(1 / 6)]


@pytest.mark.parametrize("bins, background", [(32, 0.9), (7, 0.5), (256, 1.0), (1, 0.0)])
def test_the_block_is_every_fruit_pixel_binned(bins, background):
    grey = np.random.default_rng(bins).integers(0, 256, (37, 23), dtype=np.uint8)
    settings = ToneSettings(enabled=True, bins=bins, background_value=background)
    fruit = [int(v) for v in grey.ravel() if v <= background * 255]
    expected = np.zeros(bins)
    for value in fruit:
        expected[value * bins // 256] += 1
    assert fruit and np.array_equal(tone_histogram(grey, settings),
                                    (expected / len(fruit)).astype(np.float32))


def test_an_image_of_background_only_gives_zeros():
    histogram = tone_histogram(np.full((8, 8), 255, np.uint8), TONE)
    assert histogram.shape == (32,) and not histogram.any()


def test_a_colour_array_is_refused():
    with pytest.raises(ValueError, match=r"expected an \(H, W\) uint8 array"):
        tone_histogram(np.zeros((4, 4, 3), np.uint8), TONE)


def png(grey: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(grey).save(buffer, format="PNG")
    return buffer.getvalue()


def test_extraction_computes_the_block_from_the_grey_image_it_describes():
    extraction = extract_descriptors(png(two_tone(40)), OrbSettings(), TONE)
    assert np.array_equal(extraction.tone, tone_histogram(two_tone(40), TONE))
    assert extraction.n_keypoints > 0
    assert extract_descriptors(png(two_tone(40)), OrbSettings()).tone.shape == (0,)
    off = ToneSettings(enabled=False)
    assert extract_descriptors(png(two_tone(40)), OrbSettings(), off).tone.shape == (0,)
    rejected = extract_descriptors(b"not an image", OrbSettings(), TONE)
    assert rejected.reject_reason is not None and rejected.tone.shape == (0,)


def test_tone_settings_are_validated():
    from bovw.config import load_config

    for assignment, message in (("tone.bins=0", "tone.bins must be in 1..256"),
                                ("tone.background_value=1.5", "tone.background_value must be"),
                                ("tone.weight=0", "tone.weight must be > 0")):
        key, _sep, value = assignment.partition("=")
        with pytest.raises(ConfigError, match=message):
            load_config(None, {key: value})


# ------------------------------------------------- the join, in the reduction stage's passes

def frame(spark, rows, blocks=("tone", "colour")):
    fields = [StructField("path", StringType()), StructField("weighted", VectorUDT())]
    fields += [StructField(block, ArrayType(FloatType())) for block in blocks]
    return spark.createDataFrame(rows, StructType(fields))


def joined(spark, rows, blocks, dimension=2):
    """path -> the feature row of each of `rows`: its vector, then `blocks`."""
    return feature_matrix(frame(spark, rows), FeatureRows("weighted", dimension,
                                                          blocks=tuple(blocks)))


def test_blocks_follow_the_words_tone_first_each_weight_times_its_square_root(spark):
    tone = ToneSettings(enabled=True, bins=2, weight=0.5)
    colour = ColourSettings(enabled=True, hue_bins=2, saturation_bins=1, value_bins=1,
                            weight=2.0)
    rows = [("a", Vectors.dense([0.6, 0.8]), [0.36, 0.64], [0.25, 0.75]),
            ("b", Vectors.dense([1.0, 0.0]), [], [1.0, 0.0])]  # no tone: zeros
    both = joined(spark, rows, appended_blocks(tone, colour))
    # sqrt([0.36, 0.64]) * 0.5 = [0.3, 0.4]; sqrt([0.25, 0.75]) * 2 = [1, sqrt(3)].
    assert both["a"] == pytest.approx([0.6, 0.8, 0.3, 0.4, 1.0, math.sqrt(3)])
    assert both["b"] == [1.0, 0.0, 0.0, 0.0, 2.0, 0.0]
    assert appended_blocks(tone, colour) == [tone_block(tone), colour_block(colour)]
    assert appended_blocks(ToneSettings(enabled=False), colour) == [colour_block(colour)]
    only_tone = joined(spark, rows, [tone_block(tone)])
    assert only_tone["a"] == pytest.approx([0.6, 0.8, 0.3, 0.4])


def test_a_sparse_word_histogram_stays_sparse_with_its_blocks(spark):
    # 1,000 bins of which 2 are set: the row stores those and its blocks' 4 values.
    tone = ToneSettings(enabled=True, bins=2, weight=0.5)
    colour = ColourSettings(enabled=True, hue_bins=2, saturation_bins=1, value_bins=1,
                            weight=2.0)
    rows = [("c", Vectors.sparse(1000, [3, 999], [0.6, 0.8]), [0.36, 0.64], [0.25, 0.75])]
    features = FeatureRows("weighted", 1000, blocks=tuple(appended_blocks(tone, colour)))
    matrix = features.csr(frame(spark, rows).toArrow().combine_chunks().to_batches()[0])
    assert matrix.shape == (1, 1004) and features.dimension == 1004
    assert matrix.indices.tolist() == [3, 999, 1000, 1001, 1002, 1003]
    assert matrix.data.tolist() == pytest.approx([0.6, 0.8, 0.3, 0.4, 1.0, math.sqrt(3)])


def test_blocks_the_descriptors_lack_are_refused(spark):
    no_tone = frame(spark, [("a", Vectors.dense([1.0]), [1.0, 0.0])], blocks=("colour",))
    with pytest.raises(ToneError, match="tone.enabled is true but these descriptors carry no "
                                        "grey-level histograms"):
        check_blocks(no_tone, [tone_block(TONE)])
    other = frame(spark, [("a", Vectors.dense([1.0]), [0.5, 0.5], [])])
    with pytest.raises(ToneError, match="grey-level histograms of 2 bins but the tone settings "
                                        "make 32"):
        check_blocks(other, [tone_block(TONE)])
    # The colour block keeps its own error.
    from bovw.errors import ColourError

    with pytest.raises(ColourError, match="carry no colour histograms"):
        check_blocks(frame(spark, [("a", Vectors.dense([1.0]), [])], blocks=("tone",)),
                     [colour_block(ColourSettings(enabled=True))])


# ---------------------------------------------------------------------- soft assignment

CENTERS = np.array([[0] * 32, [2] * 32, [10] * 32], np.float32)


def test_a_descriptor_equidistant_to_two_words_shares_itself_equally():
    descriptor = np.full((1, 32), 1, np.uint8)  # squared distance 32 to words 0 and 1
    words, weights = soft_words(descriptor, CENTERS, 2, variance=1000.0)
    assert words.tolist() == [[0, 1]] and weights.tolist() == [[0.5, 0.5]]


def test_soft_weights_are_gaussian_in_the_squared_distance_difference():
    descriptor = np.full((1, 32), 1, np.uint8)
    # d^2 = 32, 32, 81 * 32 = 2592: the third word is 2560 further; with sigma^2 = 1280
    # its weight is e^-1 of the others' before the shares are normalised.
    words, weights = soft_words(descriptor, CENTERS, 3, variance=1280.0)
    assert words.tolist() == [[0, 1, 2]]
    total = 2 + math.exp(-1)
    assert weights[0] == pytest.approx([1 / total, 1 / total, math.exp(-1) / total], abs=1e-15)
    # More neighbours than words: every word, once.
    assert soft_words(descriptor, CENTERS, 5, 1280.0)[0].tolist() == [[0, 1, 2]]
    # No descriptors: empty arrays of the right width.
    empty_words, empty_weights = soft_words(np.zeros((0, 32), np.uint8), CENTERS, 2, 1.0)
    assert empty_words.shape == (0, 2) and empty_weights.shape == (0, 2)


def test_soft_counts_add_shares_per_pyramid_cell():
    descriptors = np.array([[1] * 32, [9] * 32], np.uint8)
    positions = np.array([[0, 0], [255, 255]], np.uint8)  # top-left and bottom-right cells
    bins, counts = word_counts(descriptors, CENTERS, positions, 2, neighbours=2,
                               variance=1e9)
    # The first descriptor is halfway between words 0 and 1; the second (d^2 = 32 to word 2,
    # 49 * 32 to word 1) nearly halves itself between 2 and 1 at this huge sigma^2.
    share = math.exp(-(49 * 32 - 32) / 2e9)
    near, far = 1 / (1 + share), share / (1 + share)
    k = 3
    expected = {0: 0.5, 1: 0.5 + far, 2: near,  # level 0: the whole image
                k + 0: 0.5, k + 1: 0.5,  # level 1, cell 0 (top-left)
                k + 3 * k + 1: far, k + 3 * k + 2: near}  # level 1, cell 3 (bottom-right)
    assert dict(zip(bins.tolist(), counts.tolist(), strict=True)) == pytest.approx(expected)
    # Hard assignment: integer counts of the nearest word (ties to the lower index).
    bins, counts = word_counts(descriptors, CENTERS, positions, 2)
    assert dict(zip(bins.tolist(), counts.tolist(), strict=True)) == {
        0: 1, 2: 1, k + 0: 1, k + 3 * k + 2: 1}


def test_assignment_settings_are_validated():
    assert HistogramSettings().neighbours == 1
    assert HistogramSettings(assignment="soft", soft_neighbours=4).neighbours == 4
    from bovw.config import load_config

    with pytest.raises(ConfigError, match="histograms.assignment must be one of hard, soft "
                                          "\\(got 'fuzzy'\\)"):
        load_config(None, {"histograms.assignment": "fuzzy"})
    with pytest.raises(ConfigError, match="histograms.soft_neighbours must be in 2..16"):
        load_config(None, {"histograms.soft_neighbours": "1"})
    assert load_config(None, {"vocabulary.space": "bits"}).vocabulary.space == "bits"
    with pytest.raises(ConfigError, match="vocabulary.space must be one of bytes, bits "
                                          "\\(got 'hamming'\\)"):
        load_config(None, {"vocabulary.space": "hamming"})


def test_soft_assignment_without_the_vocabularys_variance_is_refused_before_spark():
    # A vocabulary record of a bovw before soft assignment has no mean squared distance.
    from bovw.config import load_config
    from bovw.errors import VocabularyError
    from bovw.pipeline.run import _histograms_stage
    from bovw.summary import VocabularyFit, from_record

    assert from_record(VocabularyFit, {"k": 10}).mean_squared_distance is None
    assert from_record(VocabularyFit, {"mean_squared_distance": 2}).mean_squared_distance == 2
    config = load_config(None, {"histograms.assignment": "soft"})
    with pytest.raises(VocabularyError, match="histograms.assignment = \"soft\" needs the "
                                              "vocabulary's mean squared distance"):
        _histograms_stage(None, config, None, None, None, None, None)
