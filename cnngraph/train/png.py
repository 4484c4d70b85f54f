"""PNG files written without a dependency: what `predict` writes for an image output and the
denoising recipe for its before/after pictures. Eight-bit grey or RGB, one zlib stream, no
filter (PNG spec, ISO/IEC 15948: chunk = length, type, data, CRC-32 of type and data).
"""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
COLOUR_TYPES = {1: 0, 3: 2}       # channels -> PNG colour type: greyscale, truecolour


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + \
        struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def as_pixels(image: np.ndarray, peak: float = 1.0) -> np.ndarray:
    """A (C, H, W) image of values in [0, peak] as uint8 0-255 (clipped, rounded)."""
    return np.clip(np.rint(np.asarray(image, np.float64) / peak * 255), 0, 255).astype(np.uint8)


def write_png(path: str | Path, pixels: np.ndarray) -> None:
    """Write uint8 pixels (C, H, W), C 1 or 3, as a PNG file."""
    Path(path).write_bytes(png_bytes(pixels))


def png_bytes(pixels: np.ndarray) -> bytes:
    """uint8 pixels (C, H, W), C 1 or 3, as the bytes of a PNG file."""
    channels, height, width = pixels.shape
    if pixels.dtype != np.uint8 or channels not in COLOUR_TYPES:
        raise ValueError(f"expected uint8 pixels (1 or 3, H, W), received {pixels.dtype} "
                         f"{pixels.shape}")
    rows = np.ascontiguousarray(pixels.transpose(1, 2, 0)).reshape(height, width * channels)
    raw = b"".join(b"\x00" + row.tobytes() for row in rows)     # filter type 0 per row
    header = struct.pack(">IIBBBBB", width, height, 8, COLOUR_TYPES[channels], 0, 0, 0)
    return SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw, 9)) \
        + _chunk(b"IEND", b"")
