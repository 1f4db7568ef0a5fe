"""The colour block: an HSV histogram of an image's fruit pixels, white background left out.

ORB describes grey levels only; on Fruits-360 colour is what separates most varieties
(Apple Red 1 from Apple Golden 1, Lemon from Orange). `colour_histogram` is pure (an RGB
array in, a float32 vector out) so that the descriptors stage and the Predictor compute
exactly the same block; `append_colour` joins it to the weighted word histogram in Spark.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np
from PIL import Image

from bovw.config import ColourSettings, OrbSettings
from bovw.errors import ColourError
from bovw.image.orb import ImageRejected, open_image, to_grey

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


def append_colour(weighted: DataFrame, settings: ColourSettings,
                  column: str = "weighted") -> DataFrame:
    """`column` (a vector) followed by weight * sqrt(`colour`), when colour is enabled.

    Without `colour.enabled` the frame is returned unchanged. Raises ColourError when
    enabled but the rows carry no colour column (descriptors made without the block).
    An image whose colour could not be computed gets zeros, keeping every vector the
    same length.
    """
    # Spark is imported here, not at the top: the pure functions above are shared with the
    # Predictor, which should not have to load Spark to use them.
    from pyspark.ml.functions import array_to_vector, vector_to_array
    from pyspark.sql import functions as F

    if not settings.enabled:
        return weighted
    if "colour" not in weighted.columns:
        raise ColourError(
            "colour.enabled is true but these descriptors carry no colour histograms; "
            "extract descriptors again with colour enabled (do not reuse --descriptors-from)"
        )
    dimension = settings.dimension
    sizes = weighted.agg(F.max(F.size("colour")).alias("longest")).first()["longest"]
    if sizes not in (None, -1, 0, dimension):
        raise ColourError(
            f"the descriptors carry colour histograms of {sizes} bins but the colour settings "
            f"make {dimension}; extract descriptors again with these colour settings"
        )
    colour = F.when(F.size("colour") == dimension, F.col("colour")).otherwise(
        F.array_repeat(F.lit(0.0).cast("float"), dimension))
    # The square root of a histogram summing to 1 has unit L2 norm, like the weighted word
    # histogram it joins: neither block drowns the other in the PCA (fruits360-dev, dense
    # ORB k=1000: 98.2% with the raw block, 99.97% with its square root, same weight).
    scaled = F.transform(colour,
                         lambda value: F.sqrt(value.cast("double")) * F.lit(settings.weight))
    combined = F.concat(vector_to_array(F.col(column)), scaled)
    return weighted.withColumn(column, array_to_vector(combined))


def colour_dimension(settings: ColourSettings) -> int:
    """How many values the colour block adds to each feature vector (0 when disabled)."""
    return settings.dimension if settings.enabled else 0
