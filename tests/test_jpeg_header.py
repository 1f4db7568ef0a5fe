"""A plain JPEG's frame read without Pillow (bovw.image.jpeg_header), and decode_grey's
use of it: the same frames as Pillow reads, the same grey images and rejects as before."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from bovw.config import OrbSettings
from bovw.image import decode
from bovw.image.decode import ImageRejected, decode_grey
from bovw.image.jpeg_header import JpegFrame, plain_jpeg_frame
from tests import imagefiles
from tests.test_decode import with_exif

SETTINGS = OrbSettings()


def saved(array: np.ndarray, mode: str | None = None, **options) -> bytes:
    image = Image.fromarray(array)
    if mode:
        image = image.convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", **options)
    return buffer.getvalue()


def with_segment(data: bytes, marker: int, payload: bytes) -> bytes:
    """`data` with one more segment right after its start-of-image marker."""
    return (data[:2] + bytes((0xFF, marker)) + (len(payload) + 2).to_bytes(2, "big")
            + payload + data[2:])


def segment_start(data: bytes, marker: int) -> int:
    """Where the first segment of `marker` starts (its 0xFF byte)."""
    return data.index(bytes((0xFF, marker)), 2)


def pillow_frame(data: bytes) -> tuple[str, str, tuple[int, int], bool] | None:
    """(format, mode, size, has EXIF) as Pillow opens `data`, None when it cannot."""
    try:
        image = Image.open(io.BytesIO(data))
    except Exception:
        return None
    return image.format, image.mode, image.size, "exif" in image.info


def test_the_frame_of_a_colour_jpeg_is_its_width_height_and_three_components():
    # 90 wide, 60 high: the frame stores the height first.
    assert plain_jpeg_frame(saved(imagefiles.textured(100)[:60, :90])) == JpegFrame(90, 60, 3)


def test_a_grey_jpeg_has_one_component():
    assert plain_jpeg_frame(saved(imagefiles.textured(100), mode="L")) == JpegFrame(100, 100, 1)


def test_progressive_jpegs_and_restart_intervals_are_plain():
    progressive = saved(imagefiles.textured(80), progressive=True)
    assert b"\xff\xc2" in progressive
    assert plain_jpeg_frame(progressive) == JpegFrame(80, 80, 3)
    ok, restarts = cv2.imencode(".jpg", imagefiles.textured(64), [cv2.IMWRITE_JPEG_RST_INTERVAL, 2])
    assert ok and b"\xff\xdd" in restarts.tobytes()
    assert plain_jpeg_frame(restarts.tobytes()) == JpegFrame(64, 64, 3)


def test_comments_fill_bytes_and_other_application_blocks_are_passed():
    data = imagefiles.jpeg()
    commented = with_segment(with_segment(data, 0xFE, b"a comment"), 0xE5, b"vendor data")
    assert plain_jpeg_frame(commented) == JpegFrame(100, 100, 3)
    # Any number of 0xFF bytes may stand before a marker.
    frame_at = segment_start(data, 0xC0)
    padded = data[:frame_at] + b"\xff\xff\xff" + data[frame_at:]
    assert plain_jpeg_frame(padded) == JpegFrame(100, 100, 3)


def with_frame_marker(data: bytes, marker: int) -> bytes:
    """`data` with its baseline frame marked as another kind of frame."""
    at = segment_start(data, 0xC0)
    return data[:at + 1] + bytes((marker,)) + data[at + 2:]


def resized_at(data: bytes, at: int, change: int) -> bytes:
    """`data` with the segment starting at `at` `change` bytes longer (zeros) or shorter,
    its length field to match."""
    length = int.from_bytes(data[at + 2:at + 4], "big")
    body = data[at + 4:at + 2 + length]
    body = body + b"\0" * change if change > 0 else body[:max(0, len(body) + change)]
    return data[:at + 2] + (len(body) + 2).to_bytes(2, "big") + body + data[at + 2 + length:]


def with_frame_entries_resized(data: bytes, change: int) -> bytes:
    """`data` with its frame segment resized: a component entry too many bytes or cut
    short."""
    return resized_at(data, segment_start(data, 0xC0), change)


def between_segments(data: bytes, stray: bytes) -> bytes:
    """`stray` bytes put between the first segment after the start of image and the next."""
    length = int.from_bytes(data[4:6], "big")
    return data[:4 + length] + stray + data[4 + length:]


def twelve_bit(data: bytes) -> bytes:
    at = segment_start(data, 0xC0) + 4  # the frame's sample precision
    return data[:at] + b"\x0c" + data[at + 1:]


def one_frame_cut_short(data: bytes) -> bytes:
    return data[:segment_start(data, 0xC0) + 6]


@pytest.mark.parametrize("make", [
    lambda: with_exif(imagefiles.jpeg(), 1),
    lambda: saved(imagefiles.textured(), icc_profile=b"\0" * 200),
    lambda: with_segment(imagefiles.jpeg(), 0xE2, b"MPF\0" + b"\0" * 16),
    lambda: with_segment(imagefiles.jpeg(), 0xED, b"Photoshop 3.0\0" + b"8BIM"),
    lambda: with_segment(imagefiles.jpeg(), 0xE0, b"JFIF\0"),  # too short for its version
    imagefiles.cmyk_jpeg,  # four components, and an Adobe block
    lambda: twelve_bit(imagefiles.jpeg()),
    lambda: one_frame_cut_short(imagefiles.jpeg()),
    lambda: imagefiles.jpeg()[:2] + b"junk" + imagefiles.jpeg()[2:],
    lambda: between_segments(imagefiles.jpeg(), b"junk"),
    lambda: between_segments(imagefiles.jpeg(), b"\xff\x00"),
    lambda: between_segments(imagefiles.jpeg(), b"\xff\xd0"),  # a restart marker
    lambda: between_segments(imagefiles.jpeg(), b"\xff\xcc\x00\x02"),  # arithmetic tables
    lambda: with_frame_marker(imagefiles.jpeg(), 0xC9),  # arithmetic-coded frame
    lambda: with_frame_marker(imagefiles.jpeg(), 0xC3),  # lossless frame
    lambda: with_frame_marker(imagefiles.jpeg(), 0xDE),  # hierarchical progression
    lambda: with_frame_entries_resized(imagefiles.jpeg(), 1),
    lambda: with_frame_entries_resized(imagefiles.jpeg(), -1),
    imagefiles.png,
    lambda: b"",
    lambda: b"\xff\xd8\xff",
], ids=["exif", "icc", "mpo", "photoshop", "short-jfif", "cmyk-adobe", "12-bit", "cut-short",
        "junk-after-start", "junk-between", "ff00-between", "restart-between", "dac",
        "arithmetic-frame", "lossless-frame", "dhp", "frame-entry-too-long",
        "frame-entry-cut-short", "png", "empty", "start-only"])
def test_what_the_reader_is_not_sure_of_is_left_to_pillow(make):
    assert plain_jpeg_frame(make()) is None


def test_pillow_cannot_open_a_frame_whose_last_entry_is_cut_short():
    # Why the reader wants exactly 3 bytes a component (and libjpeg refuses the rest).
    assert pillow_frame(with_frame_entries_resized(imagefiles.jpeg(), 1)) is None


def test_a_second_frame_or_a_scan_before_any_frame_is_not_plain():
    data = imagefiles.jpeg()
    at = segment_start(data, 0xC0)
    length = int.from_bytes(data[at + 2:at + 4], "big")
    frame = data[at:at + 2 + length]
    assert plain_jpeg_frame(data[:at] + frame + data[at:]) is None
    scan = segment_start(data, 0xDA)
    assert plain_jpeg_frame(data[:at] + data[scan:]) is None


def test_every_frame_the_reader_gives_is_the_one_pillow_reads():
    """Seeded damage to the headers of a few JPEGs: whatever the reader calls plain,
    Pillow opens as a JPEG of that size and mode, without EXIF."""
    sources = [imagefiles.jpeg(seed=1), saved(imagefiles.textured(70), mode="L"),
               saved(imagefiles.textured(90)[:50], progressive=True),
               cv2.imencode(".jpg", imagefiles.textured(48),
                            [cv2.IMWRITE_JPEG_RST_INTERVAL, 1])[1].tobytes(),
               with_segment(imagefiles.jpeg(seed=2), 0xFE, b"comment")]
    rng = np.random.default_rng(7)
    plain = unsure = 0
    for _ in range(4000):
        data = bytearray(sources[rng.integers(len(sources))])
        header_end = data.index(b"\xff\xda") + 14
        for _ in range(rng.integers(1, 4)):
            at = int(rng.integers(2, header_end))
            kind = rng.integers(4)
            if kind == 3:
                # A segment one or two bytes longer or shorter, its length field to match.
                data = bytearray(resized_segment(bytes(data), int(rng.choice([-2, -1, 1, 2])),
                                                 int(rng.integers(8))))
            elif kind == 0:
                data[at] = int(rng.integers(256))
            elif kind == 1:
                del data[at]
            else:
                data.insert(at, int(rng.choice([0xFF, 0x00, int(rng.integers(256))])))
        frame = plain_jpeg_frame(bytes(data))
        if frame is None:
            unsure += 1
            continue
        plain += 1
        mode = {1: "L", 3: "RGB"}[frame.components]
        assert pillow_frame(bytes(data)) == ("JPEG", mode, (frame.width, frame.height), False)
    # Both answers were given often: the test checked something.
    assert plain > 300 and unsure > 300


def resized_segment(data: bytes, change: int, which: int) -> bytes:
    """`data` with the `which`-th segment (counted from the first, wrapping around before the
    first scan) resized by resized_at; `data` as it is when its segments cannot be walked."""
    starts, position = [], 2
    while position + 4 <= len(data) and data[position] == 0xFF and data[position + 1] != 0xDA:
        starts.append(position)
        position += 2 + int.from_bytes(data[position + 2:position + 4], "big")
    if not starts:
        return data
    return resized_at(data, starts[which % len(starts)], change)


def outcome(data: bytes, settings: OrbSettings):
    try:
        grey, size = decode_grey(data, settings)
    except ImageRejected as rejected:
        return str(rejected)
    return grey.tobytes(), grey.shape, size


def corrupt_scan(data: bytes) -> bytes:
    """The header intact, the compressed pixels overwritten, the end marker kept."""
    start = data.index(b"\xff\xda") + 20
    return data[:start] + b"\x00" * 200 + data[start + 200:]


@pytest.mark.parametrize(("make", "settings"), [
    (imagefiles.jpeg, SETTINGS),
    (lambda: saved(imagefiles.textured(100)[:40], mode="L"), SETTINGS),
    (lambda: saved(imagefiles.textured(120), progressive=True), SETTINGS),
    (lambda: with_exif(imagefiles.jpeg(seed=4), 6), SETTINGS),
    (lambda: imagefiles.jpeg(size=450), OrbSettings(max_side=200)),
    (imagefiles.jpeg, OrbSettings(max_pixels=9999)),
    (imagefiles.truncated_jpeg, SETTINGS),
    (lambda: corrupt_scan(imagefiles.jpeg(seed=5)), SETTINGS),
    (imagefiles.cmyk_jpeg, SETTINGS),
    (lambda: bad_scan_header(imagefiles.jpeg(seed=6)), SETTINGS),
    (imagefiles.png, SETTINGS),
], ids=["colour", "grey", "progressive", "exif-turned", "larger-than-max-side",
        "too-many-pixels", "truncated", "corrupt-scan", "cmyk", "bad-scan-header", "png"])
def test_decode_grey_gives_what_it_gave_through_pillow_s_header(make, settings, monkeypatch):
    data = make()
    read_here = outcome(data, settings)
    monkeypatch.setattr(decode, "plain_jpeg_frame", lambda data: None)
    assert read_here == outcome(data, settings)


def bad_scan_header(data: bytes) -> bytes:
    """A plain header, but a scan naming 5 components, which libjpeg refuses."""
    at = data.index(b"\xff\xda") + 4
    return data[:at] + b"\x05" + data[at + 1:]


def test_bytes_opencv_refuses_are_tried_once_then_rejected_by_pillow(opencv_decodes):
    data = bad_scan_header(imagefiles.jpeg())
    assert plain_jpeg_frame(data) == JpegFrame(100, 100, 3)
    with pytest.raises(ImageRejected, match="^corrupt or truncated JPEG image: "):
        decode_grey(data, SETTINGS)
    assert opencv_decodes == [1]


def test_a_plain_jpeg_never_reaches_pillow(monkeypatch):
    def refused(*args):
        raise AssertionError("Pillow opened the bytes")

    monkeypatch.setattr(decode, "_opened", refused)
    grey, size = decode_grey(imagefiles.jpeg(), SETTINGS)
    assert size == (100, 100) and grey.shape == (100, 100)
    with pytest.raises(AssertionError, match="Pillow opened"):
        decode_grey(with_exif(imagefiles.jpeg(), 1), SETTINGS)
