"""int8-vs-fp32 agreement statistics: hand-computed logits, input checking, and a small quantized model."""
import math

import pytest
import torch
import torch.nn as nn

from pyvideo.accelerator.deployment import convert_to_deployable_form, transmute_model
from pyvideo.accelerator.quantization import quantize_model
from pyvideo.accelerator.quantization.agreement import Disagreement, compare_int8, compare_logits

from ._util import make_plain_model, randomize_batchnorm

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_compare_logits_by_hand():
    fp32 = torch.tensor([[3.0, 4.0, 0.0], [1.0, 2.0, 3.0], [0.0, 6.0, 8.0], [0.0, 0.0, 0.0]])
    int8 = torch.tensor([[3.0, 4.0, 0.5], [1.0, 3.5, 3.0], [0.0, 6.0, 8.0], [0.0, 0.0, 0.0]])
    result = compare_logits(fp32, int8)
    assert (result.count, result.agreed) == (4, 3)
    assert result.top1_agreement == 0.75
    # per clip |d|/|f|: 0.5/5, 1.5/sqrt(14), 0, 0 (both zero)
    relative = [0.1, 1.5 / math.sqrt(14), 0.0, 0.0]
    assert result.mean_relative_l2 == pytest.approx(sum(relative) / 4, rel=1e-12)
    assert result.max_relative_l2 == pytest.approx(1.5 / math.sqrt(14), rel=1e-12)
    assert result.max_abs_error == 1.5
    # fp32 top-1 - top-2 per clip: 1, 1, 2, 0 -> median 1
    assert result.median_fp32_margin == 1.0
    # clip 1: fp32 picks class 2 (3.0) over class 1 (2.0); int8 picks class 1 (3.5) over class 2 (3.0)
    assert result.disagreements == (Disagreement(index=1, fp32_class=2, int8_class=1, fp32_margin=1.0, int8_margin=0.5),)
    assert result.as_dict()["disagreements"][0]["int8_margin"] == 0.5


def test_compare_logits_identical_and_special_cases():
    logits = torch.randn(6, 10, generator=torch.Generator().manual_seed(0))
    same = compare_logits(logits, logits.clone())
    assert (same.agreed, same.top1_agreement, same.max_abs_error, same.mean_relative_l2) == (6, 1.0, 0.0, 0.0)
    assert same.disagreements == ()
    # a zero fp32 row with a non-zero int8 row has an infinite relative error
    zero_ref = compare_logits(torch.zeros(1, 3), torch.tensor([[0.0, 0.0, 1.0]]))
    assert zero_ref.max_relative_l2 == math.inf and zero_ref.agreed == 0
    # ties resolve to the first maximum in both, like torch.argmax
    assert compare_logits(torch.tensor([[1.0, 1.0]]), torch.tensor([[2.0, 2.0]])).agreed == 1
    one_class = compare_logits(torch.tensor([[1.0], [2.0]]), torch.tensor([[1.5], [2.0]]))
    assert one_class.agreed == 2 and math.isnan(one_class.median_fp32_margin)


@pytest.mark.parametrize(
    "fp32, int8, error, match",
    [
        (torch.zeros(2, 3), torch.zeros(2, 4), ValueError, "shapes differ"),
        (torch.zeros(3), torch.zeros(3), ValueError, r"shape \[N, num_classes\]"),
        (torch.zeros(0, 3), torch.zeros(0, 3), ValueError, "N, num_classes >= 1"),
        (torch.zeros(2, 3, dtype=torch.int64), torch.zeros(2, 3), TypeError, "floating point"),
        (torch.zeros(2, 3), torch.tensor([[0.0, math.nan, 0.0], [0.0, 0.0, 0.0]]), ValueError, "NaN or infinite"),
        ([[1.0, 2.0]], torch.zeros(1, 2), TypeError, "torch.Tensor"),
    ],
)
def test_compare_logits_rejects_bad_input(fp32, int8, error, match):
    with pytest.raises(error, match=match):
        compare_logits(fp32, int8)


@pytest.fixture(scope="module")
def small_quantized_model():
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(1)
    model = randomize_batchnorm(make_plain_model(num_classes=5), generator).eval()
    transmute_model(model)
    deploy = convert_to_deployable_form(model, torch.randn(1, 3, 4, 16, 16)).eval()
    calibration = [torch.randn(4, 3, 4, 16, 16, generator=generator) for _ in range(2)]
    return deploy, quantize_model(deploy, calibration), torch.randn(10, 3, 4, 16, 16, generator=generator)


def test_compare_int8_on_a_quantized_model(small_quantized_model):
    deploy, int8, clips = small_quantized_model
    result = compare_int8(deploy, int8, clips, batch_size=4)
    with torch.no_grad():
        expected = compare_logits(deploy(clips), int8(clips))
    assert result == expected
    assert result.count == 10
    assert 0 < result.mean_relative_l2 < 0.1  # int8 rounding is visible but small
    # an iterable of (clip, label) batches and of {"video": ...} dicts give the same numbers
    assert compare_int8(deploy, int8, [(clips[:3], 0), (clips[3:], 1)]) == result
    assert compare_int8(deploy, int8, [{"video": clips}]) == result
    assert compare_int8(deploy, deploy, clips).max_abs_error == 0.0


def test_compare_int8_runs_in_eval_mode_and_restores_flags():
    class DropoutHead(nn.Module):  # in training mode dropout would make the two runs differ
        def __init__(self):
            super().__init__()
            self.drop, self.fc = nn.Dropout(0.9), nn.Linear(6, 4)

        def forward(self, x):
            return self.fc(self.drop(x.flatten(1)))

    model = DropoutHead().train()
    result = compare_int8(model, model, torch.randn(5, 3, 2))
    assert result.max_abs_error == 0.0 and result.agreed == 5
    assert model.training


def test_compare_int8_rejects_bad_input(small_quantized_model):
    deploy, int8, clips = small_quantized_model
    with pytest.raises(ValueError, match="batch_size"):
        compare_int8(deploy, int8, clips, batch_size=0)
    with pytest.raises(ValueError, match="no batches"):
        compare_int8(deploy, int8, [])
    with pytest.raises(ValueError, match="non-empty batch tensor"):
        compare_int8(deploy, int8, clips[:0])
    with pytest.raises(TypeError, match="each item of clips must be"):
        compare_int8(deploy, int8, [[1, 2, 3]])
    with pytest.raises(TypeError, match="iterable of batches"):
        compare_int8(deploy, int8, 3)
    with pytest.raises(TypeError, match="nn.Modules"):
        compare_int8(lambda x: x, int8, clips)
    with pytest.raises(ValueError, match=r"int8_model must return logits \[batch, num_classes\]"):
        compare_int8(deploy, nn.Flatten(0), clips)
