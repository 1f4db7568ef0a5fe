"""Bytes of small test images, good and bad, made in memory."""

from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image


def textured(size: int = 100, seed: int = 0) -> np.ndarray:
    """A grey disc with random dark spots on white: plenty of ORB keypoints."""
    rng = np.random.default_rng(seed)
    image = np.full((size, size, 3), 255, np.uint8)
    centre = size // 2
    cv2.circle(image, (centre, centre), int(size * 0.4), (150, 90, 60), -1)
    for _ in range(40):
        x, y = rng.integers(int(size * 0.2), int(size * 0.8), 2)
        cv2.circle(image, (int(x), int(y)), int(rng.integers(1, 4)), (20, 20, 20), -1)
    return image


def encode(array: np.ndarray, fmt: str = "JPEG", mode: str | None = None) -> bytes:
    image = Image.fromarray(array)
    if mode:
        image = image.convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def jpeg(seed: int = 0, size: int = 100) -> bytes:
    return encode(textured(size, seed), "JPEG")


def png16(seed: int = 0) -> bytes:
    grey = cv2.cvtColor(textured(100, seed), cv2.COLOR_RGB2GRAY).astype(np.uint16) * 257
    ok, data = cv2.imencode(".png", grey)
    assert ok
    return data.tobytes()


def cmyk_jpeg(seed: int = 0) -> bytes:
    return encode(textured(100, seed), "JPEG", mode="CMYK")


def rgba_png(seed: int = 0) -> bytes:
    return encode(textured(100, seed), "PNG", mode="RGBA")


def grey_png(seed: int = 0) -> bytes:
    return encode(textured(100, seed), "PNG", mode="L")


def png(seed: int = 0) -> bytes:
    return encode(textured(100, seed), "PNG")


def png_with_bad_header_checksum(seed: int = 0) -> bytes:
    """A PNG whose IHDR chunk fails its CRC (the 4 bytes after the 8-byte signature, the
    chunk's length and type, and its 13 bytes of data)."""
    data = bytearray(png(seed))
    data[8 + 4 + 4 + 13] ^= 0xFF
    return bytes(data)


def truncated_jpeg(seed: int = 0) -> bytes:
    data = jpeg(seed)
    return data[: len(data) // 2]


def bomb_png(width: int = 40000, height: int = 40000) -> bytes:
    """A tiny PNG whose header declares width x height pixels (the data is not there)."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def jpeg_folder(root, count: int) -> None:
    """`count` textured JPEGs under root/Training/Class0 and Class1, in turn."""
    for seed in range(count):
        path = root / "Training" / f"Class{seed % 2}" / f"{seed}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(jpeg(seed=seed))
