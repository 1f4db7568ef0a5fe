"""The colour block: hand-checkable HSV histograms, background masking, and its Spark join."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from pyspark.ml.linalg import Vectors, VectorUDT
from pyspark.sql.types import ArrayType, FloatType, StringType, StructField, StructType

from bovw.config import ColourSettings, OrbSettings, ToneSettings
from bovw.errors import ColourError
from bovw.image.colour import colour_histogram, image_colour
from bovw.image.decode import to_rgb
from bovw.pipeline.feature_rows import FeatureRows
from bovw.pipeline.histograms import appended_blocks, check_blocks, colour_block
from tests.spark_weighting import feature_matrix

SETTINGS = ColourSettings(enabled=True, hue_bins=8)  # 8 hue x 4 saturation x 4 value bins


def frame_schema(with_colour: bool) -> StructType:
    fields = [StructField("path", StringType()), StructField("weighted", VectorUDT())]
    if with_colour:
        fields.append(StructField("colour", ArrayType(FloatType())))
    return StructType(fields)


def solid(rgb, size=10) -> np.ndarray:
    return np.full((size, size, 3), rgb, dtype=np.uint8)


def bin_index(hue_bin, saturation_bin, value_bin, settings=SETTINGS) -> int:
    return (hue_bin * settings.saturation_bins + saturation_bin) * settings.value_bins + value_bin


def test_pure_colours_fall_in_their_bins():
    red = colour_histogram(solid((255, 0, 0)), SETTINGS)
    assert red.dtype == np.float32 and red.shape == (128,)
    assert red[bin_index(0, 3, 3)] == 1.0 and red.sum() == 1.0
    # Blue is hue 240 degrees = 170/256 of the circle: sector 5 of 8.
    blue = colour_histogram(solid((0, 0, 255)), SETTINGS)
    assert blue[bin_index(5, 3, 3)] == 1.0
    # Mid grey has no saturation and is dark enough not to count as background.
    grey = colour_histogram(solid((128, 128, 128)), SETTINGS)
    assert grey[bin_index(0, 0, 2)] == 1.0


def test_white_background_is_left_out():
    image = solid((255, 255, 255), size=10)
    image[:5] = (255, 0, 0)  # top half red, bottom half white
    image[9, 9] = (240, 240, 240)  # near-white: background too
    histogram = colour_histogram(image, SETTINGS)
    assert histogram[bin_index(0, 3, 3)] == 1.0
    assert histogram.sum() == 1.0


def test_an_image_of_background_only_gives_zeros():
    histogram = colour_histogram(solid((255, 255, 255)), SETTINGS)
    assert histogram.shape == (128,) and not histogram.any()


def test_default_block_has_32_hue_sectors_of_4_by_4():
    """The default block: 32 hue sectors (8 values each of OpenCV's full-range hue 0..255),
    each 4 saturation x 4 value bins. Red (hue 0) and red-orange (255, 64, 0: hue 11)
    share the first of 8 sectors, but not of 32."""
    settings = ColourSettings(enabled=True)
    assert (settings.hue_bins, settings.saturation_bins, settings.value_bins) == (32, 4, 4)
    red = colour_histogram(solid((255, 0, 0)), settings)
    red_orange = colour_histogram(solid((255, 64, 0)), settings)
    assert red.shape == (512,)
    assert red[bin_index(0, 3, 3, settings)] == 1.0
    assert red_orange[bin_index(1, 3, 3, settings)] == 1.0
    eight = ColourSettings(enabled=True, hue_bins=8)
    assert np.array_equal(colour_histogram(solid((255, 0, 0)), eight),
                          colour_histogram(solid((255, 64, 0)), eight))


def test_proportions_and_configurable_bins():
    settings = ColourSettings(enabled=True, hue_bins=2, saturation_bins=1, value_bins=1)
    image = solid((255, 0, 0), size=4)
    image[:1] = (0, 255, 255)  # cyan: hue 180 degrees, second half of the circle
    assert colour_histogram(image, settings).tolist() == [0.75, 0.25]


def test_wrong_array_shape_is_refused():
    with pytest.raises(ValueError, match=r"expected an \(H, W, 3\) uint8 array"):
        colour_histogram(np.zeros((4, 4), np.uint8), SETTINGS)


def test_transparent_pixels_become_white_background():
    image = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    assert to_rgb(image)[0, 0].tolist() == [255, 255, 255]
    assert not colour_histogram(to_rgb(image), SETTINGS).any()


def test_image_colour_decodes_bytes_and_never_raises():
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (255, 0, 0)).save(buffer, format="PNG")
    assert image_colour(buffer.getvalue(), OrbSettings(), SETTINGS)[bin_index(0, 3, 3)] == 1.0
    assert image_colour(b"not an image", OrbSettings(), SETTINGS).shape == (0,)


def test_the_colour_block_joins_as_its_weighted_square_root(spark):
    settings = ColourSettings(enabled=True, hue_bins=2, saturation_bins=1, value_bins=1,
                              weight=0.5)
    rows = [("a", Vectors.dense([0.6, 0.8]), [0.36, 0.64]),
            ("b", Vectors.dense([1.0, 0.0]), [])]  # no colour: zeros of the right length
    frame = spark.createDataFrame(rows, frame_schema(True))
    joined = feature_matrix(frame, FeatureRows("weighted", 2, blocks=(colour_block(settings),)))
    # sqrt([0.36, 0.64]) = [0.6, 0.8], times the weight 0.5.
    assert joined["a"] == pytest.approx([0.6, 0.8, 0.3, 0.4])
    assert joined["b"] == [1.0, 0.0, 0.0, 0.0]
    assert appended_blocks(ToneSettings(enabled=False), ColourSettings(enabled=False)) == []


def test_descriptors_without_or_with_other_colour_are_refused(spark):
    frame = spark.createDataFrame([("a", Vectors.dense([1.0]))], frame_schema(False))
    with pytest.raises(ColourError, match="carry no colour histograms"):
        check_blocks(frame, [colour_block(SETTINGS)])
    other = spark.createDataFrame([("a", Vectors.dense([1.0]), [0.5, 0.5])], frame_schema(True))
    with pytest.raises(ColourError, match="colour histograms of 2 bins but the colour "
                                          "settings make 128"):
        check_blocks(other, [colour_block(SETTINGS)])
