"""A plain JPEG's frame header, read straight from its bytes.

`decode_grey` (bovw.image.decode) hands a plain JPEG to OpenCV and needs only its size and
colour components to decide so. Pillow's Image.open reads every segment's contents in
Python (its quantisation tables among them): on fruits360-dev, 20 us of a 100 x 100 image
against 4.6 us here, and decode_grey takes 51 us instead of 69 (`python -m
bench.jpeg_headers ../shared/data/fruits360-dev`, medians of 3 rounds).

It says yes only where Pillow reads the same frame: anything it is not sure of (an EXIF,
ICC, multi-picture, Photoshop or Adobe block, a lossless, hierarchical or arithmetic-coded
frame, a frame whose component list is not 3 bytes a component, a second frame, a segment
cut short, bytes between segments that are not a marker) gives None, and decode_grey then
opens the bytes with Pillow as before.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["JpegFrame", "plain_jpeg_frame"]

_START_OF_IMAGE = b"\xff\xd8\xff"
# The Huffman-coded DCT frames libjpeg decodes: baseline, extended sequential, progressive.
_FRAMES = frozenset((0xC0, 0xC1, 0xC2))
_QUANTISATION_TABLES = 0xDB
_START_OF_SCAN = 0xDA
# Segments whose contents decide nothing here: Huffman tables, restart interval, comment,
# application blocks (but see _UNSURE_APPLICATION_BLOCKS).
_PASSED = frozenset((0xC4, 0xDD, 0xFE, *range(0xE0, 0xF0)))
# Application blocks that change what Pillow reads (EXIF: an orientation, which OpenCV is
# told to ignore; a multi-picture index: an MPO file), or that Pillow parses in ways that
# can fail on a damaged block (ICC profile, Photoshop resources, Adobe).
_UNSURE_APPLICATION_BLOCKS = ((0xE1, b"Exif\0\0"), (0xE2, b"ICC_PROFILE\0"), (0xE2, b"MPF\0"),
                              (0xED, b"Photoshop 3.0\0"), (0xEE, b"Adobe"))
# Pillow reads the JFIF version at bytes 5-6 of an APP0 block that starts with "JFIF".
_JFIF, _JFIF_VERSION_END = b"JFIF", 7


@dataclass(frozen=True)
class JpegFrame:
    """A JPEG's frame: `width` x `height` pixels (both >= 1), 8 bits per sample, and
    `components` colour components (1: grey, 3: colour)."""

    width: int
    height: int
    components: int


def plain_jpeg_frame(data: bytes) -> JpegFrame | None:
    """The frame of `data` when it is a plain JPEG up to its first scan, else None.

    Plain: it starts with the start-of-image marker, every segment before the first scan
    is whole and is one that Pillow reads the same way (see the module's docstring), and
    there is exactly one baseline, extended or progressive frame of 8-bit samples with 1 or
    3 components and a non-zero size. Nothing after the start of the first scan is read.
    """
    if not data.startswith(_START_OF_IMAGE):
        return None
    size = len(data)
    position = 2
    frame = None
    while True:
        if position >= size or data[position] != 0xFF:
            return None
        while position < size and data[position] == 0xFF:  # fill bytes before a marker
            position += 1
        if position + 3 > size:
            return None
        marker = data[position]
        length = (data[position + 1] << 8) | data[position + 2]
        start, end = position + 3, position + 1 + length
        if length < 2 or end > size:
            return None
        if marker == _START_OF_SCAN:
            return frame
        if marker in _FRAMES:
            if frame is not None:
                return None
            frame = _frame(data, start, end)
            if frame is None:
                return None
        elif marker == _QUANTISATION_TABLES:
            if not _whole_tables(data, start, end):
                return None
        elif marker not in _PASSED or not _plain_block(marker, data, start, end):
            return None
        position = end


def _frame(data: bytes, start: int, end: int) -> JpegFrame | None:
    """The frame header held by data[start:end], or None when it is not a plain one: 8-bit
    samples, a non-zero size, 1 or 3 components and exactly one 3-byte entry for each
    (Pillow reads an entry cut short past the segment's end and fails; libjpeg refuses any
    other length)."""
    if end - start < 6:
        return None
    bits = data[start]
    height = (data[start + 1] << 8) | data[start + 2]
    width = (data[start + 3] << 8) | data[start + 4]
    components = data[start + 5]
    if (bits != 8 or components not in (1, 3) or not width or not height
            or end - start != 6 + 3 * components):
        return None
    return JpegFrame(width, height, components)


def _whole_tables(data: bytes, start: int, end: int) -> bool:
    """Whether data[start:end] holds whole quantisation tables (64 values of 1 or 2 bytes
    each after a byte whose high half gives the precision), as Pillow requires."""
    while start < end:
        start += 1 + 64 * (1 if data[start] < 16 else 2)
        if start > end:
            return False
    return True


def _plain_block(marker: int, data: bytes, start: int, end: int) -> bool:
    """Whether the segment data[start:end] of `marker` is one Pillow reads without effect
    on the frame and without a way to fail."""
    for unsure, prefix in _UNSURE_APPLICATION_BLOCKS:
        if marker == unsure and data.startswith(prefix, start, end):
            return False
    return not (marker == 0xE0 and data.startswith(_JFIF, start, end)
                and end - start < _JFIF_VERSION_END)
