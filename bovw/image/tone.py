"""The tone block: a histogram of the grey levels of an image's fruit pixels.

ORB's binary tests compare the pixels of a patch with each other, so its descriptors are
blind to how bright or dark a fruit is: on Fruits-360 the grey-ORB words alone confuse
round fruits of similar texture but different tone. This block gives that back from the
grey image ORB describes (it is not colour, and it is not ORB). `tone_histogram` is pure
(a grey array in, a float32 vector out), so the descriptors stage and the Predictor
compute exactly the same block; the reduction stage (bovw.pipeline.feature_rows) joins it
to the weighted word histogram, before the colour block.
"""

from __future__ import annotations

import numpy as np

from bovw.config import ToneSettings

__all__ = ["EMPTY_TONE", "tone_histogram"]

EMPTY_TONE = np.zeros(0, dtype=np.float32)
_GREY_LEVELS = np.arange(256)


def tone_histogram(grey: np.ndarray, settings: ToneSettings) -> np.ndarray:
    """The normalised grey-level histogram of the non-background pixels of a grey image.

    `grey` is an (H, W) uint8 array. A pixel brighter than background_value * 255 is the
    white background and is left out; any other of value v falls in bin v * bins // 256.
    Returns a float32 vector of `bins` values summing to 1 (counts divided by the number of
    fruit pixels, in float64), or all zeros when every pixel is background.
    """
    if grey.ndim != 2 or grey.dtype != np.uint8:
        raise ValueError(f"expected an (H, W) uint8 array, got {grey.dtype} {grey.shape}")
    # Counted per grey level first, then the fruit levels summed into their bins: the
    # same integers as binning every fruit pixel, in a third of the time (the descriptors
    # UDF computes this for every image).
    levels = np.bincount(grey.ravel(), minlength=256)
    fruit = _GREY_LEVELS <= settings.background_value * 255
    pixels = int(levels[fruit].sum())
    if pixels == 0:
        return np.zeros(settings.bins, dtype=np.float32)
    counts = np.bincount(_GREY_LEVELS[fruit] * settings.bins // 256, weights=levels[fruit],
                         minlength=settings.bins)
    return (counts / pixels).astype(np.float32)
