"""The colour block: an HSV histogram of an image's fruit pixels, white background left out.

ORB describes grey levels only; on Fruits-360 colour is what separates most varieties
(Apple Red 1 from Apple Golden 1, Lemon from Orange). `colour_histogram` is pure (an RGB
array in, a float32 vector out) so that the descriptors stage and the Predictor compute
exactly the same block; `append_colour` joins it to the weighted word histogram in Spark.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np
from PIL import Image

from bovw.config import ColourSettings, OrbSettings
from bovw.errors import ColourError
from bovw.features import ImageRejected, open_image, to_grey

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

EMPTY_COLOUR = np.zeros(0, dtype=np.float32)


def colour_histogram(image_rgb: np.ndarray, settings: ColourSettings) -> np.ndarray:
    """The normalised HSV histogram of the non-background pixels of an RGB image.

    `image_rgb` is an (H, W, 3) uint8 array. Returns a float32 vector of
    hue_bins * saturation_bins * value_bins values (hue varies slowest) summing to 1, or
    all zeros when every pixel is background. Hue covers the circle in equal sectors;
    saturation and value cover [0, 1] in equal steps.
    """
    if image_rgb.ndim != 3 or image_rgb.shape[2] != 3 or image_rgb.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 array, got {image_rgb.dtype} "
                         f"{image_rgb.shape}")
    hsv = cv2.cvtColor(image_rgb, cv2.COLOR_RGB2HSV_FULL).reshape(-1, 3).astype(np.int32)
    hue, saturation, value = hsv[:, 0], hsv[:, 1], hsv[:, 2]
    background = ((saturation < settings.background_saturation * 255)
                  & (value > settings.background_value * 255))
    keep = ~background
    # With COLOR_RGB2HSV_FULL every channel spans 0..255, so bin = channel * bins // 256.
    hue_bin = hue[keep] * settings.hue_bins // 256
    saturation_bin = saturation[keep] * settings.saturation_bins // 256
    value_bin = value[keep] * settings.value_bins // 256
    flat = (hue_bin * settings.saturation_bins + saturation_bin) * settings.value_bins + value_bin
    counts = np.bincount(flat, minlength=settings.dimension).astype(np.float64)
    total = counts.sum()
    if total == 0:
        return np.zeros(settings.dimension, dtype=np.float32)
    return (counts / total).astype(np.float32)


def to_rgb(image: Image.Image) -> np.ndarray:
    """An (H, W, 3) uint8 RGB array for any Pillow mode; transparency becomes white."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        grey = to_grey(image)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def image_colour(data: bytes, orb: OrbSettings, settings: ColourSettings) -> np.ndarray:
    """The colour block of encoded image bytes, decoded as the descriptors stage decodes them.

    Returns EMPTY_COLOUR when the bytes are not a usable image (the descriptors stage
    rejects those with their reason). Never raises.
    """
    try:
        image, _size = open_image(data, orb)
        return colour_histogram(to_rgb(image), settings)
    except ImageRejected:
        return EMPTY_COLOUR
    except Exception:  # a decoder bug must not end a long run; ORB's reject says why
        return EMPTY_COLOUR


@dataclass(frozen=True)
class AppendedBlock:
    """A per-image histogram (an array column of the descriptors, summing to 1) that joins
    the weighted word histogram as weight * sqrt(histogram). `error` is raised, naming
    `setting` and `what` the block holds, when the rows cannot supply it."""

    column: str
    dimension: int
    weight: float
    error: type[Exception]
    setting: str
    what: str


def colour_block(settings: ColourSettings) -> AppendedBlock:
    return AppendedBlock("colour", settings.dimension, settings.weight, ColourError,
                         "colour.enabled", "colour histograms")


def append_colour(weighted: DataFrame, settings: ColourSettings,
                  column: str = "weighted") -> DataFrame:
    """`column` (a vector) followed by weight * sqrt(`colour`), when colour is enabled.

    Without `colour.enabled` the frame is returned unchanged. Raises ColourError when
    enabled but the rows carry no colour column (descriptors made without the block).
    An image whose colour could not be computed gets zeros, keeping every vector the
    same length.
    """
    return append_blocks(weighted, [colour_block(settings)] if settings.enabled else [], column)


def append_blocks(weighted: DataFrame, blocks: Sequence[AppendedBlock],
                  column: str = "weighted") -> DataFrame:
    """`column` (a vector) followed by weight * sqrt(block) of each block in order; a row
    whose block is empty (its image could not be read for it) gets zeros, keeping every
    vector the same length. Without blocks the frame is returned unchanged. Raises the
    block's error when the rows carry no such column or blocks of another length."""
    # Spark is imported here, not at the top: the pure functions above are shared with the
    # Predictor, which should not have to load Spark to use them.
    from pyspark.ml.functions import array_to_vector, vector_to_array
    from pyspark.sql import functions as F

    if not blocks:
        return weighted
    for block in blocks:
        if block.column not in weighted.columns:
            raise block.error(
                f"{block.setting} is true but these descriptors carry no {block.what}; "
                f"extract descriptors again with {block.setting}=true (do not reuse "
                "--descriptors-from)")
    # One Spark job checks every block's length.
    longest = weighted.agg(*[F.max(F.size(block.column)).alias(block.column)
                             for block in blocks]).first()
    parts = [vector_to_array(F.col(column))]
    for block in blocks:
        if longest[block.column] not in (None, -1, 0, block.dimension):
            raise block.error(
                f"the descriptors carry {block.what} of {longest[block.column]} bins but the "
                f"{block.column} settings make {block.dimension}; extract descriptors again "
                f"with these {block.column} settings")
        values = F.when(F.size(block.column) == block.dimension, F.col(block.column)).otherwise(
            F.array_repeat(F.lit(0.0).cast("float"), block.dimension))
        # The square root of a histogram summing to 1 has unit L2 norm, like the weighted
        # word histogram it joins: neither block drowns the other in the PCA (fruits360-dev,
        # dense ORB k=1000: 98.2% with the raw colour block, 99.97% with its square root,
        # same weight).
        parts.append(F.transform(values, _weighted_sqrt(block.weight)))
    return weighted.withColumn(column, array_to_vector(F.concat(*parts)))


def _weighted_sqrt(weight: float):
    # A one-argument function: F.transform passes the element index too to a function
    # that takes two (a default argument would count).
    from pyspark.sql import functions as F

    return lambda value: F.sqrt(value.cast("double")) * F.lit(weight)
