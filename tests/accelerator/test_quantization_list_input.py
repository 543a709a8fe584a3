"""int8 quantization of deploy forms whose forward takes a list of clips (SlowFast: one per pathway): calibration batch
structure, the int8 concatenation of the pathways, per-layer native lowering, dynamic input ranges and QAT."""
import warnings

import pytest
import torch
import torch.nn as nn

from pyvideo.accelerator.deployable.graph import copy_module
from pyvideo.accelerator.deployment import convert_to_deployable_form, transmute_model
from pyvideo.accelerator.native import NativeQuantizedConv3d, compile_native, lower_quantized_to_native
from pyvideo.accelerator.quantization import (
    QuantizedCat,
    QuantizedConv3d,
    calibrate,
    compare_int8,
    convert_qat,
    freeze_observers,
    prepare,
    prepare_qat,
    quantize_model,
)
from pyvideo.accelerator.quantization.graph_quantizer import dynamic_candidates
from pyvideo.models.slowfast import create_slowfast

from ._util import assert_matches_fake_quant_layer_by_layer, make_plain_model, randomize_batchnorm, train_steps

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _clips(generator, batch=2, frames=2, size=(32, 32)):
    """[slow, fast]: the fast pathway sees 4x the frames (alpha 4 of the small SlowFast below)."""
    return [torch.rand(batch, 3, frames, *size, generator=generator),
            torch.rand(batch, 3, 4 * frames, *size, generator=generator)]


@pytest.fixture(scope="module")
def deploy():
    """A small SlowFast-R18 (random BatchNorm statistics) in deploy form: its forward takes [slow, fast]."""
    torch.manual_seed(0)
    model = create_slowfast(model_depth=18, stem_dim_outs=(16, 2), model_num_class=5, head_pool=nn.AdaptiveAvgPool3d)
    model = randomize_batchnorm(model, torch.Generator().manual_seed(0)).eval()
    transmute_model(model)
    return convert_to_deployable_form(model, _clips(torch.Generator().manual_seed(9), batch=1)).eval()


@pytest.fixture(scope="module")
def calibration():
    generator = torch.Generator().manual_seed(1)
    return [_clips(generator) for _ in range(4)]


def _relative_l2(actual, expected):
    return float((actual - expected).norm() / expected.norm())


def test_slowfast_int8_tracks_fp32_and_lowers_to_native(deploy, calibration):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no unstable-range warning, no torch deprecation noise
        int8_model = quantize_model(deploy, calibration, float_classifier=False)
    cats = [m for m in int8_model.modules() if isinstance(m, QuantizedCat)]
    assert len(cats) == 5 and all(m.output_qparams is not None for m in cats)  # 4 pathway fusions and the head
    test = _clips(torch.Generator().manual_seed(2), batch=8)
    with torch.no_grad():
        fp32, int8 = deploy(test), int8_model(test)
        assert torch.equal(int8_model(tuple(test)), int8)  # a tuple of clips is read like the list
    relative = _relative_l2(int8, fp32)
    agreed = int((int8.argmax(dim=1) == fp32.argmax(dim=1)).sum())
    print(f"\nSlowFast-R18 int8 vs fp32: relative L2 {relative:.4f}, top-1 agreement {agreed}/8")
    assert relative < 0.05 and agreed >= 7
    # another batch size and clip length (measured 0.040: longer clips move this random model's static ranges)
    other = _clips(torch.Generator().manual_seed(3), batch=3, frames=4)
    with torch.no_grad():
        fp32_other, int8_other = deploy(other), int8_model(other)
    assert int8_other.shape == (3, 5) and _relative_l2(int8_other, fp32_other) < 0.08
    larger = _clips(torch.Generator().manual_seed(3), batch=1, frames=4, size=(40, 36))  # runs; ranges not calibrated
    with torch.no_grad():
        int8_larger = int8_model(larger)
    assert int8_larger.shape == (1, 5)
    native = lower_quantized_to_native(int8_model)
    assert sum(isinstance(m, NativeQuantizedConv3d) for m in native.modules()) > 30
    with torch.no_grad():
        for clips, reference in ((test, int8), (other, int8_other), (larger, int8_larger)):
            # native int8 == torch int8 reference up to 1-LSB requantization differences (as test_native_quantized)
            assert float((native(clips) - reference).abs().max() / reference.abs().max()) < 0.05
    # one native program with an input per clip runs the whole int8 network (QuantizedCat as quantized_concat
    # steps), bit for bit as the per-layer native int8 ops
    compiled = compile_native(int8_model)
    program = compiled.native_program.program
    assert program.num_inputs == 2 and program.describe().count("quantized_concat(") == 5
    assert not any(isinstance(m, (QuantizedCat, QuantizedConv3d)) for m in compiled.modules())
    with torch.no_grad():
        for clips in (test, other):
            assert torch.equal(compiled(clips), native(clips))


def test_clips_label_pairs_and_video_dicts_calibrate_like_plain_lists(deploy, calibration):
    labels = torch.tensor([0, 1])
    plain = quantize_model(deploy, calibration)
    test = _clips(torch.Generator().manual_seed(4), batch=4)
    with torch.no_grad():
        expected = plain(test)
    for batches in ([(clips, labels) for clips in calibration],
                    [{"video": clips, "label": labels} for clips in calibration],
                    [tuple(clips) for clips in calibration],
                    (clips for clips in calibration)):  # a one-shot iterator: quantize_model reads it three times
        int8_model = quantize_model(deploy, batches)
        with torch.no_grad():
            assert torch.equal(int8_model(test), expected)
        assert all(torch.equal(a, b) for a, b in zip(int8_model.state_dict().values(), plain.state_dict().values()))


def test_wrong_calibration_structures_raise_clear_errors(deploy):
    slow, fast = _clips(torch.Generator().manual_seed(5))
    with pytest.raises(TypeError, match=r"list of 2 clips.*single tensor of shape \(2, 3, 2, 32, 32\).*\[\[clip"):
        quantize_model(deploy, [slow])
    with pytest.raises(TypeError, match="list of 2 clips.*single tensor"):
        quantize_model(deploy, slow)  # one batch tensor
    with pytest.raises(ValueError, match="exactly 2 tensors.*holds 3 items"):
        quantize_model(deploy, [[slow, fast, fast]])
    with pytest.raises(ValueError, match="exactly 2 tensors.*holds 1 items"):
        quantize_model(deploy, [([slow], torch.tensor([0, 1]))])
    with pytest.raises(TypeError, match="exactly 2 tensors.*holds Tensor, str"):
        quantize_model(deploy, [[slow, "fast"]])
    with pytest.raises(TypeError, match="'video' item of a dict.*single tensor"):
        quantize_model(deploy, [{"video": slow}])
    with pytest.raises(TypeError, match="exactly 2 tensors.*is a str"):
        quantize_model(deploy, ["clips"])
    with pytest.raises(ValueError, match="no batches"):
        quantize_model(deploy, [])
    # a later batch is checked as the first one is
    prepared = prepare(deploy, example_input=[slow, fast])
    with pytest.raises(ValueError, match="holds 3 items"):
        calibrate(prepared, [[slow, fast], [slow, fast, fast]])
    for make in (prepare, prepare_qat):
        with pytest.raises(ValueError, match=r"takes a list of clips.*takes 2.*pass example_input=\[clip, ...\]"):
            make(deploy)
        with pytest.raises(TypeError, match="each example_input must be a list or tuple of exactly 2 tensors"):
            make(deploy, example_input=slow)
    # a single-tensor model keeps reading (tensor, label) pairs, and refuses a list example input
    plain_model = make_plain_model().eval()
    transmute_model(plain_model)
    plain = convert_to_deployable_form(plain_model, torch.rand(1, 3, 4, 16, 16))
    with pytest.raises(ValueError, match="takes one tensor; example_input is for models that take a list"):
        prepare(plain, example_input=[torch.rand(1, 3, 4, 16, 16)])
    int8_plain = quantize_model(plain, [(torch.rand(2, 3, 4, 16, 16), torch.rand(2, 3, 4, 16, 16))])
    assert int8_plain(torch.rand(1, 3, 4, 16, 16)).shape == (1, 5)


def test_both_pathway_inputs_can_be_quantized_dynamically(deploy, calibration):
    prepared = prepare(deploy, example_input=calibration[0])
    placeholders = [node for node in prepared.graph.nodes if node.op == "placeholder"]
    assert len(placeholders) == 2 and set(placeholders) <= set(dynamic_candidates(prepared))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        int8_model = quantize_model(deploy, calibration, dynamic_ranges=0, float_classifier=False)  # every candidate
    first_convs = [m for m in int8_model.modules() if isinstance(m, QuantizedConv3d) and m.dynamic_input]
    assert len(first_convs) >= 2  # the two stems at least
    test = _clips(torch.Generator().manual_seed(6), batch=4)
    test[1] = test[1] * 0.05  # a dark fast clip: its own range serves it
    static_model = quantize_model(deploy, calibration, dynamic_ranges=False, float_classifier=False)
    with torch.no_grad():
        fp32, int8 = deploy(test), int8_model(test)
        # measured 0.024 dynamic vs 0.072 static
        assert _relative_l2(int8, fp32) < 0.05 < _relative_l2(static_model(test), fp32)
        native = lower_quantized_to_native(int8_model)
        assert float((native(test) - int8).abs().max() / int8.abs().max()) < 0.05


def test_slowfast_qat_round_trip(deploy):
    trained = copy_module(deploy)  # prepare_qat shares (and trains) the parameters
    generator = torch.Generator().manual_seed(7)
    clips, labels = _clips(generator, batch=4), torch.tensor([0, 1, 2, 3])
    # per tensor, as test_quantization's QAT round trip: identical rounding everywhere
    qat = prepare_qat(trained, per_channel=False, example_input=clips)
    assert qat.training
    # the head's dropout draws from the global generator: seeded, the trained weights do not depend on the tests run
    # before (a float-summation rounding flip in one layer, which then cascades, showed up after some of them)
    torch.manual_seed(3)
    train_steps(qat, clips, labels, 2)
    freeze_observers(qat)
    qat.eval()
    int8_model = convert_qat(qat)
    assert sum(isinstance(m, QuantizedCat) for m in int8_model.modules()) == 5
    assert_matches_fake_quant_layer_by_layer(qat, int8_model, clips, min_layers=20)


def test_compare_int8_takes_batches_of_clip_lists(deploy, calibration):
    int8_model = quantize_model(deploy, calibration)
    generator = torch.Generator().manual_seed(8)
    held_out = [(_clips(generator), torch.tensor([0, 1])) for _ in range(2)]
    agreement = compare_int8(deploy, int8_model, held_out)
    assert agreement.count == 4 and agreement.mean_relative_l2 < 0.05
    with pytest.raises(TypeError, match="list of 2 clips.*single tensor"):
        compare_int8(deploy, int8_model, held_out[0][0][0])
    with pytest.raises(ValueError, match="holds 3 items"):
        compare_int8(deploy, int8_model, [held_out[0][0] + held_out[0][0][:1]])
