"""A minimal PNG writer (zlib + CRC from the standard library) and the confusion-matrix image drawn with it.

No plotting library is needed: cells are shaded by the row-normalised fraction and labelled with their count in a
3x5 pixel digit font; the class indices run along the top and left margins.
"""
import struct
import zlib
from typing import Optional

import numpy as np
import torch

# 3x5 digit glyphs, rows top to bottom, 3 bits per row (MSB = left pixel)
_DIGITS = {
    "0": (7, 5, 5, 5, 7), "1": (2, 6, 2, 2, 7), "2": (7, 1, 7, 4, 7), "3": (7, 1, 7, 1, 7), "4": (5, 5, 7, 1, 1),
    "5": (7, 4, 7, 1, 7), "6": (7, 4, 7, 5, 7), "7": (7, 1, 1, 1, 1), "8": (7, 5, 7, 5, 7), "9": (7, 5, 7, 1, 7),
}


def write_png(path: str, image: np.ndarray) -> str:
    """Write an H x W x 3 uint8 RGB array as an 8-bit truecolour PNG."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"write_png expects an H x W x 3 uint8 array, got {image.dtype} {image.shape}")
    height, width, _ = image.shape

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = b"".join(b"\x00" + image[y].tobytes() for y in range(height))  # filter type 0 on every row
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 6)) + chunk(b"IEND", b""))
    return path


def _draw_text(image: np.ndarray, text: str, x: int, y: int, colour, scale: int = 2) -> None:
    for i, char in enumerate(text):
        for row, bits in enumerate(_DIGITS[char]):
            for col in range(3):
                if bits >> (2 - col) & 1:
                    y0, x0 = y + row * scale, x + (i * 4 + col) * scale
                    image[y0 : y0 + scale, x0 : x0 + scale] = colour


def _text_width(text: str, scale: int = 2) -> int:
    return (len(text) * 4 - 1) * scale


def confusion_matrix_image(counts: torch.Tensor, cell: Optional[int] = None) -> np.ndarray:
    """Render counts (C x C, rows = true class) to an RGB array; darker blue = larger share of the row."""
    counts = counts.detach().cpu().long()
    num_classes = counts.shape[0]
    cell = cell or max(16, _text_width(str(int(counts.max()))) + 6)
    margin = _text_width(str(num_classes - 1)) + 8
    size = margin + num_classes * cell
    image = np.full((size, size, 3), 255, np.uint8)
    fractions = counts.double() / counts.sum(dim=1, keepdim=True).clamp(min=1)
    for i in range(num_classes):
        _draw_text(image, str(i), 3, margin + i * cell + (cell - 10) // 2, (0, 0, 0))
        _draw_text(image, str(i), margin + i * cell + (cell - _text_width(str(i))) // 2, 3, (0, 0, 0))
        for j in range(num_classes):
            f = float(fractions[i, j])
            colour = np.array([255 - 225 * f, 255 - 160 * f, 255 - 40 * f], np.uint8)
            y, x = margin + i * cell, margin + j * cell
            image[y : y + cell - 1, x : x + cell - 1] = colour
            text = str(int(counts[i, j]))
            ink = (255, 255, 255) if f > 0.5 else (0, 0, 0)
            _draw_text(image, text, x + (cell - 1 - _text_width(text)) // 2, y + (cell - 1 - 10) // 2, ink)
    return image


def save_confusion_matrix_png(path: str, counts: torch.Tensor) -> str:
    return write_png(path, confusion_matrix_image(counts))
