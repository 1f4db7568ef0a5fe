"""The tone block: a histogram of the grey levels of an image's fruit pixels.

ORB's binary tests compare the pixels of a patch with each other, so its descriptors are
blind to how bright or dark a fruit is: on Fruits-360 the grey-ORB words alone confuse
round fruits of similar texture but different tone. This block gives that back from the
grey image ORB describes (it is not colour, and it is not ORB). `tone_histogram` is pure
(a grey array in, a float32 vector out), so the descriptors stage and the Predictor
compute exactly the same block; `append_tone` joins it to the weighted word histogram in
Spark, before the colour block.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from bovw.config import ColourSettings, ToneSettings
from bovw.errors import ToneError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from bovw.colour import AppendedBlock

EMPTY_TONE = np.zeros(0, dtype=np.float32)


def tone_histogram(grey: np.ndarray, settings: ToneSettings) -> np.ndarray:
    """The normalised grey-level histogram of the non-background pixels of a grey image.

    `grey` is an (H, W) uint8 array. A pixel brighter than background_value * 255 is the
    white background and is left out; any other of value v falls in bin v * bins // 256.
    Returns a float32 vector of `bins` values summing to 1 (counts divided by the number of
    fruit pixels, in float64), or all zeros when every pixel is background.
    """
    if grey.ndim != 2 or grey.dtype != np.uint8:
        raise ValueError(f"expected an (H, W) uint8 array, got {grey.dtype} {grey.shape}")
    fruit = grey[grey <= settings.background_value * 255].astype(np.int64)
    counts = np.bincount(fruit * settings.bins // 256, minlength=settings.bins)
    if len(fruit) == 0:
        return np.zeros(settings.bins, dtype=np.float32)
    return (counts / len(fruit)).astype(np.float32)


def tone_block(settings: ToneSettings) -> AppendedBlock:
    # bovw.colour is imported here: it imports bovw.features, which imports this module.
    from bovw.colour import AppendedBlock

    return AppendedBlock("tone", settings.dimension, settings.weight, ToneError, "tone.enabled",
                         "grey-level histograms")


def appended_blocks(tone: ToneSettings, colour: ColourSettings) -> list[AppendedBlock]:
    """The enabled blocks that follow the word histogram, in order: tone, then colour."""
    from bovw.colour import colour_block

    return ([tone_block(tone)] if tone.enabled else []) + (
        [colour_block(colour)] if colour.enabled else [])


def append_tone(weighted: DataFrame, settings: ToneSettings, column: str = "weighted"
                ) -> DataFrame:
    """`column` (a vector) followed by weight * sqrt(`tone`), when the tone block is enabled.

    Without `tone.enabled` the frame is returned unchanged. Raises ToneError when enabled
    but the rows carry no tone column (descriptors made without the block) or blocks of
    another length. An image whose block could not be computed gets zeros.
    """
    from bovw.colour import append_blocks

    return append_blocks(weighted, appended_blocks(settings, ColourSettings()), column)


def appended_dimension(tone: ToneSettings, colour: ColourSettings) -> int:
    """How many values the tone and colour blocks add to each feature vector."""
    return sum(block.dimension for block in appended_blocks(tone, colour))
