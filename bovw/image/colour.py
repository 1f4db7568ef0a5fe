"""The colour block: an HSV histogram of an image's fruit pixels, white background left out.

ORB describes grey levels only; on Fruits-360 colour is what separates most varieties
(Apple Red 1 from Apple Golden 1, Lemon from Orange). `colour_histogram` is pure (an RGB
array in, a float32 vector out) so that the descriptors stage and the Predictor compute
exactly the same block; the reduction stage (bovw.pipeline.feature_rows) joins it to the
weighted word histogram.
"""

from __future__ import annotations

import cv2
import numpy as np

from bovw.config import ColourSettings, OrbSettings
from bovw.image.decode import ImageRejected, open_image, to_rgb

__all__ = ["EMPTY_COLOUR", "colour_histogram", "image_colour", "to_rgb"]

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
