import math
import struct
import zlib

import numpy as np
import pytest
import torch

from pyvideo.tasks.metrics import average_precision, confusion_matrix, mean_average_precision, topk_accuracy
from pyvideo.tasks.png import confusion_matrix_image, write_png


def test_topk_accuracy_hand_computed():
    scores = torch.tensor([[0.1, 0.7, 0.2], [0.5, 0.2, 0.3], [0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])
    targets = torch.tensor([1, 2, 0, 2])
    # top1: rows 0 only -> 1/4; top2: row0, row1 (0.5,0.3 -> {0,2}), row2 ({2,1} no), row3 ({0,1} no) -> 2/4
    result = topk_accuracy(scores, targets, ks=(1, 2, 5))
    assert result == {"top1": 0.25, "top2": 0.5, "top5": 1.0}


def test_topk_accuracy_rejects_bad_shapes():
    with pytest.raises(ValueError, match="N x C"):
        topk_accuracy(torch.zeros(3), torch.zeros(3, dtype=torch.long))


def test_average_precision_hand_computed():
    # ranked: pos, neg, pos, neg -> precisions at the positives 1/1 and 2/3 -> AP = (1 + 2/3) / 2
    scores = torch.tensor([0.9, 0.8, 0.7, 0.1])
    assert average_precision(scores, torch.tensor([1, 0, 1, 0])) == pytest.approx((1 + 2 / 3) / 2)
    # ties form one threshold: both tied items at rank 1-2, one positive -> precision 1/2 at recall 1
    assert average_precision(torch.tensor([0.5, 0.5]), torch.tensor([0, 1])) == pytest.approx(0.5)
    assert math.isnan(average_precision(scores, torch.zeros(4)))


def test_mean_average_precision_skips_classes_without_positives():
    scores = torch.tensor([[0.9, 0.1, 0.3], [0.2, 0.8, 0.4], [0.6, 0.7, 0.2]])
    targets = torch.tensor([[1, 0, 0], [0, 1, 0], [0, 1, 0]])
    # class 0: ranked 0.9(pos),0.6,0.2 -> AP 1; class 1: 0.8(pos),0.7(pos),0.1 -> AP 1; class 2 has no positive
    assert mean_average_precision(scores, targets) == pytest.approx(1.0)
    targets2 = torch.tensor([[0, 0, 0], [1, 1, 0], [0, 1, 0]])
    # class 0: ranked 0.9(neg), 0.6(neg), 0.2(pos) -> AP 1/3
    assert mean_average_precision(scores, targets2) == pytest.approx((1 / 3 + 1) / 2)


def test_confusion_matrix_counts_and_validation():
    counts = confusion_matrix(torch.tensor([0, 1, 1, 2, 0]), torch.tensor([0, 1, 2, 2, 1]), 3)
    assert counts.tolist() == [[1, 0, 0], [1, 1, 0], [0, 1, 1]]
    with pytest.raises(ValueError, match="targets must lie"):
        confusion_matrix(torch.tensor([0]), torch.tensor([3]), 3)


def _read_png(path):
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF
        chunks[kind] = chunks.get(kind, b"") + body
        pos += 12 + length
    width, height = struct.unpack(">II", chunks[b"IHDR"][:8])
    raw = np.frombuffer(zlib.decompress(chunks[b"IDAT"]), np.uint8).reshape(height, 1 + width * 3)
    assert (raw[:, 0] == 0).all()
    return raw[:, 1:].reshape(height, width, 3)


def test_png_round_trip(tmp_path):
    image = np.random.default_rng(0).integers(0, 256, (7, 5, 3), dtype=np.uint8)
    assert (_read_png(write_png(str(tmp_path / "x.png"), image)) == image).all()
    with pytest.raises(ValueError, match="uint8"):
        write_png(str(tmp_path / "y.png"), image.astype(np.float32))


def test_confusion_image_shades_by_row_fraction():
    image = confusion_matrix_image(torch.tensor([[9, 1], [0, 5]]), cell=20)
    margin = image.shape[0] - 2 * 20
    corner = lambda i, j: image[margin + i * 20 + 1, margin + j * 20 + 1]  # a pixel away from the digits
    assert corner(0, 0)[0] < corner(0, 1)[0] < 255  # 90% darker than 10%
    assert tuple(corner(1, 0)) == (255, 255, 255)  # empty cell stays white
    assert tuple(corner(1, 1)) == (30, 95, 215)  # 100% of its row
