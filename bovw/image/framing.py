"""A photo made the training images' shape before it is described (Predictor only).

Fruits-360 photos show one fruit on white, touching the frame on its longer side; a phone
photo is trimmed to its fruit, centre-cropped or padded to the training aspect ratio, then
resized (`fit_to_training_size`). Free of Spark.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from bovw.config import FIT_POLICIES

__all__ = ["BACKGROUND_LEVEL", "Framing", "fit_to_training_size", "object_box", "plan_framing"]

# A pixel whose every channel is at least this bright counts as background: Fruits-360
# photos show the fruit on white, touching the frame on its longer side.
BACKGROUND_LEVEL = 230


def object_box(pixels: np.ndarray) -> tuple[int, int, int, int] | None:
    """(left, top, right, bottom) of the non-background pixels of a grey or colour array, or
    None when there are none or they reach every edge (no light background to trim).

    A row or column counts only when at least 1% of its pixels (and 2) are foreground, so
    JPEG noise on the background does not widen the box.
    """
    darkest = pixels if pixels.ndim == 2 else pixels.min(axis=2)
    foreground = darkest < BACKGROUND_LEVEL
    height, width = foreground.shape
    columns = np.flatnonzero(foreground.sum(axis=0) >= max(2, height // 100))
    rows = np.flatnonzero(foreground.sum(axis=1) >= max(2, width // 100))
    if len(columns) == 0 or len(rows) == 0:
        return None
    box = (int(columns[0]), int(rows[0]), int(columns[-1]) + 1, int(rows[-1]) + 1)
    return None if box == (0, 0, width, height) else box


@dataclass(frozen=True)
class Framing:
    """How `plan_framing` makes a photo of `source` (height, width) the training shape:
    keep `box` (left, top, right, bottom), pad it with white by `padding` (top, bottom,
    left, right), resize to `size` (width, height); `note` says so in words."""

    source: tuple[int, int]
    box: tuple[int, int, int, int]
    padding: tuple[int, int, int, int]
    size: tuple[int, int]
    note: str

    def apply(self, pixels: np.ndarray) -> np.ndarray:
        """The framed (height, width) or (height, width, channels) array of `pixels`, an
        array of the `source` shape (any of the photo's planes: colour, grey). Raises
        ValueError for another shape."""
        if pixels.shape[:2] != self.source:
            raise ValueError(f"a framing planned for {self.source[1]}x{self.source[0]} "
                             f"pixels, given {pixels.shape[1]}x{pixels.shape[0]}")
        left, top, right, bottom = self.box
        pixels = pixels[top:bottom, left:right]
        if any(self.padding):
            white = (255,) * (pixels.shape[2] if pixels.ndim == 3 else 1)
            pixels = cv2.copyMakeBorder(pixels, *self.padding, cv2.BORDER_CONSTANT, value=white)
        width, height = self.size
        shrinking = pixels.shape[1] >= width and pixels.shape[0] >= height
        return cv2.resize(pixels, (width, height),
                          interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def _centre_crop(height: int, width: int, ratio_w: int, ratio_h: int
                 ) -> tuple[int, int, int, int]:
    if width * ratio_h > height * ratio_w:  # too wide: cut the sides
        keep = max(1, round(height * ratio_w / ratio_h))
        left = (width - keep) // 2
        return left, 0, left + keep, height
    if width * ratio_h < height * ratio_w:  # too tall: cut top and bottom
        keep = max(1, round(width * ratio_h / ratio_w))
        top = (height - keep) // 2
        return 0, top, width, top + keep
    return 0, 0, width, height


def _white_padding(height: int, width: int, ratio_w: int, ratio_h: int
                   ) -> tuple[int, int, int, int]:
    rows, columns = height, width
    if width * ratio_h > height * ratio_w:
        rows = round(width * ratio_h / ratio_w)
    elif width * ratio_h < height * ratio_w:
        columns = round(height * ratio_w / ratio_h)
    top, left = (rows - height) // 2, (columns - width) // 2
    return top, rows - height - top, left, columns - width - left


def plan_framing(pixels: np.ndarray, size: tuple[int, int], policy: str) -> Framing | None:
    """How `fit_to_training_size` frames `pixels` (grey or colour): a Framing, which can
    then frame every plane of the photo alike, or None when nothing is to be done."""
    if policy not in FIT_POLICIES:
        raise ValueError(f"fit policy must be one of {', '.join(FIT_POLICIES)} (got {policy!r})")
    height, width = pixels.shape[:2]
    target_width, target_height = size
    if (width, height) == (target_width, target_height) or policy == "none":
        return None
    no_padding = (0, 0, 0, 0)
    box = object_box(pixels) if policy == "trim" else None
    if box is not None:
        left, top, right, bottom = box
        padding = _white_padding(bottom - top, right - left, target_width, target_height)
        step = f"trimmed to the fruit ({right - left}x{bottom - top} at {left},{top})"
    elif policy in ("crop", "trim"):
        box, padding = _centre_crop(height, width, target_width, target_height), no_padding
        left, top, right, bottom = box
        step = None if box == (0, 0, width, height) else (
            f"centre-cropped to {right - left}x{bottom - top}")
    else:
        box, padding = (0, 0, width, height), _white_padding(height, width, target_width,
                                                             target_height)
        above, below, before, after = padding
        step = None if padding == no_padding else (
            f"padded with white to {width + before + after}x{height + above + below}")
    resized = f"resized to {target_width}x{target_height}"
    return Framing((height, width), box, padding, size,
                   resized if step is None else f"{step}, {resized}")


def fit_to_training_size(pixels: np.ndarray, size: tuple[int, int], policy: str
                         ) -> tuple[np.ndarray, str | None]:
    """Make an image array (grey or colour) the training images' shape.

    `size` is the training (width, height). An image already that size is returned
    untouched (it is then described exactly as the Spark pipeline describes it). Otherwise:
    "trim" crops to the fruit's box on a light background and pads it with white to the
    training aspect ratio (framed like a Fruits-360 photo: the fruit touches the frame on
    its longer side), or, without such a background, does what "crop" does; "crop" keeps the
    largest centred region of the training aspect ratio; "pad" adds white borders around the
    whole photo; "none" leaves it as it is. The result is then resized to `size` (area
    averaging when shrinking). Returns the array and a note saying what was done, e.g.
    "centre-cropped to 300x300, resized to 100x100" (None when nothing was). To frame
    several planes of one photo alike, see `plan_framing`.
    """
    framing = plan_framing(pixels, size, policy)
    if framing is None:
        return pixels, None
    return framing.apply(pixels), framing.note
