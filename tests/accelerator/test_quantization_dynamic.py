"""Dynamic (per-sample, run-time) int8 activation ranges: qparams, the int8 reference modules, the quantizer's choice,
QAT, and native programs."""
import warnings

import pytest
import torch
import torch.nn as nn

from pyvideo.accelerator.deployable import FusedConv3d, FusedSqueezeExcitation
from pyvideo.accelerator.quantization import (
    DYNAMIC,
    ActivationQuantizer,
    QParams,
    QuantizedActivation,
    QuantizedAdd,
    QuantizedAvgPool3d,
    QuantizedConv3d,
    QuantizedGlobalAvgPool,
    QuantizedLinear,
    QuantizedSqueezeExcitation,
    QuantizeTensor,
    activation_qparams,
    calibrate,
    convert,
    convert_qat,
    freeze_observers,
    mark_dynamic,
    prepare,
    prepare_qat,
    quantize,
    quantize_model,
    sample_qparams,
)
from pyvideo.accelerator.quantization.graph_quantizer import dynamic_candidates

from .test_quantization import _AddThenReLU, _deployed_x3d

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _samples(generator, shape, scales=(1.0, 40.0, 0.01, 0.0, -3.0)):
    """A batch whose samples have very different ranges: scaled noise, an all-zero sample, an all-negative one."""
    x = torch.randn(len(scales), *shape, generator=generator)
    for n, s in enumerate(scales):
        x[n] = x[n].abs() * s if s < 0 else x[n] * s
    return x


def _own_qparams(x, min_scale=None):
    """Each sample's static qparams of its own range, from the scalar activation_qparams (independent of
    sample_qparams' vectorized arithmetic); with ``min_scale``, scales below it are raised to it (zero point from
    the raised scale, computed here in Python floats)."""
    found = []
    for n in range(x.shape[0]):
        low, high = float(x[n].min()), float(x[n].max())
        qparams = activation_qparams(low, high)
        if min_scale is not None and qparams.scale < min_scale:
            zero_point = max(-128, min(127, round(-128 - min(low, 0.0) / min_scale)))
            qparams = QParams(min_scale, zero_point)
        found.append(qparams)
    return found


def test_sample_qparams_equal_each_samples_activation_qparams():
    generator = torch.Generator().manual_seed(0)
    for trial in range(50):
        x = _samples(generator, (3, 2, 5)) * float(torch.rand((), generator=generator) * 10) + trial % 3
        q = sample_qparams(x)
        assert q.scale.dtype == torch.float32 and q.zero_point.dtype == torch.int32
        assert [(float(s), int(z)) for s, z in zip(q.scale, q.zero_point)] == [tuple(p) for p in _own_qparams(x)]
    assert sample_qparams(torch.zeros(2, 4)).zero_point.tolist() == [-128, -128]  # zero range: real 0 still exact
    with pytest.raises(ValueError, match="non-finite"):
        sample_qparams(torch.tensor([[1.0, float("nan")], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="non-finite"):
        sample_qparams(torch.tensor([[1.0, float("inf")]]))
    with pytest.raises(ValueError, match=r"non-empty \[N"):
        sample_qparams(torch.ones(5))
    with pytest.raises(TypeError, match="DYNAMIC"):
        quantize(torch.ones(2, 2), DYNAMIC)


def _conv(generator, c_in, c_out, kernel, padding, groups=1, activation="relu", stride=(1, 1, 1)):
    weight = torch.randn(c_out, c_in // groups, *kernel, generator=generator) * 0.3
    return FusedConv3d(weight, torch.randn(c_out, generator=generator) * 0.5, stride, padding, groups=groups,
                       activation=activation)


@pytest.mark.parametrize("kind", ["pointwise", "dense", "depthwise"])
@pytest.mark.parametrize("residual", [False, True])
@pytest.mark.parametrize("float_output", [False, True])
def test_dynamic_conv_equals_a_static_conv_per_sample(kind, residual, float_output):
    """Each sample of the dynamic module's output equals a static QuantizedConv3d built with that sample's own qparams
    (the static path is checked against independent integer arithmetic in test_quantization)."""
    generator = torch.Generator().manual_seed(7)
    spec = {"pointwise": (6, 5, (1, 1, 1), (0, 0, 0), 1), "dense": (4, 6, (3, 3, 3), (1, 1, 1), 1),
            "depthwise": (6, 6, (3, 3, 3), (1, 1, 1), 6)}[kind]
    # relu before a float output: torch's vectorized swish may round a batch's lanes unlike one sample's
    conv = _conv(generator, *spec, activation="identity" if residual else ("relu" if float_output else "swish"))
    x = _samples(generator, (spec[0], 3, 5, 6))
    out_qp = None if float_output else QParams(0.03, -4)
    res = None
    if residual:
        res = _samples(generator, (spec[1], 3, 5, 6), scales=(0.5, 0.02, 30.0, -1.0, 0.0))
        conv.fuse_residual("relu")
    dynamic = QuantizedConv3d(conv, DYNAMIC, out_qp, DYNAMIC if residual else None)
    assert dynamic.dynamic_input and dynamic.dynamic_residual == residual and dynamic.dequant_scale is None
    # the floor the quantizer sets: the all-zero sample's int32 bias then fits (scale 1e-8 would clamp it)
    floor = dynamic.min_dynamic_input_scale()
    assert 1e-8 < floor < 1e-4
    dynamic.input_min_scale = floor
    actual = dynamic(x, res) if residual else dynamic(x)
    if float_output and not residual:  # the all-zero sample: the real bias, on a fine grid, through the ReLU
        torch.testing.assert_close(actual[3], conv.bias.detach().relu().reshape(-1, 1, 1, 1).expand_as(actual[3]),
                                   rtol=0, atol=1e-4)
    for n, x_qp in enumerate(_own_qparams(x, floor)):
        res_qp = _own_qparams(res)[n] if residual else None
        static = QuantizedConv3d(conv, x_qp, out_qp, res_qp)
        args = (quantize(x[n:n + 1], x_qp),) + ((quantize(res[n:n + 1], res_qp),) if residual else ())
        assert torch.equal(actual[n:n + 1], static(*args)), f"sample {n}"


def test_dynamic_linear_se_and_pools_equal_static_modules_per_sample():
    generator = torch.Generator().manual_seed(3)
    out_qp = QParams(0.02, 3)
    video = _samples(generator, (4, 2, 4, 5))
    modules = [
        (lambda qp: QuantizedLinear(nn.Linear(5, 3), qp, None), _samples(generator, (2, 5))),
        (lambda qp: QuantizedLinear(nn.Linear(5, 3), qp, out_qp), _samples(generator, (2, 3, 5))),
        (lambda qp: QuantizedSqueezeExcitation(FusedSqueezeExcitation(nn.Linear(4, 2), nn.Linear(2, 4)), qp, out_qp),
         video),
        (lambda qp: QuantizedGlobalAvgPool(qp, None), video),
        (lambda qp: QuantizedGlobalAvgPool(qp, out_qp), video),
        (lambda qp: QuantizedAvgPool3d(nn.AvgPool3d((2, 2, 3), stride=(1, 2, 1)), qp, out_qp), video),
    ]
    for make, x in modules:
        torch.manual_seed(11)  # the same Linear weights for the dynamic and the static modules
        dynamic = make(DYNAMIC)
        if isinstance(dynamic, QuantizedLinear):  # the floor the quantizer sets (the all-zero sample's bias fits)
            dynamic.input_min_scale = dynamic.min_dynamic_input_scale()
        actual = dynamic(x)
        for n, qp in enumerate(_own_qparams(x, dynamic.input_min_scale)):
            torch.manual_seed(11)
            assert torch.equal(actual[n:n + 1], make(qp)(quantize(x[n:n + 1], qp))), f"{type(dynamic).__name__} {n}"
        with pytest.raises(TypeError, match="float32"):
            dynamic(quantize(x, _own_qparams(x)[0]))


def test_modules_without_a_dynamic_form_refuse_it():
    for make in (lambda: QuantizeTensor(DYNAMIC), lambda: QuantizedActivation("relu", DYNAMIC, QParams(0.1, 0)),
                 lambda: QuantizedAdd(DYNAMIC, QParams(0.1, 0), QParams(0.1, 0))):
        with pytest.raises(TypeError, match="static input qparams"):
            make()
    conv = QuantizedConv3d(_conv(torch.Generator().manual_seed(0), 2, 2, (1, 1, 1), (0, 0, 0)), QParams(0.1, 0), None,
                           DYNAMIC)
    conv_with_residual = conv.adds_residual
    assert conv_with_residual and conv.dynamic_residual
    with pytest.raises(TypeError, match="float32 residual"):
        conv(torch.zeros(1, 2, 1, 1, 1, dtype=torch.int8), torch.zeros(1, 2, 1, 1, 1, dtype=torch.int8))


def _linear_chain():
    """Bias-free convs with ReLU, a global pool and a bias-free Linear: every activation scales with the input, so a
    clip much smaller than the calibration clips uses only a few levels of static int8 ranges."""
    generator = torch.Generator().manual_seed(4)
    head = nn.Linear(6, 4, bias=False)
    with torch.no_grad():
        head.weight.copy_(torch.randn(4, 6, generator=generator))
    return nn.Sequential(
        FusedConv3d(torch.randn(8, 3, 1, 3, 3, generator=generator) * 0.3, None, (1, 2, 2), (0, 1, 1), activation="relu"),
        FusedConv3d(torch.randn(8, 1, 3, 3, 3, generator=generator) * 0.3, None, (1, 1, 1), (1, 1, 1), groups=8),
        FusedConv3d(torch.randn(6, 8, 1, 1, 1, generator=generator) * 0.3, None, activation="relu"),
        nn.AdaptiveAvgPool3d(1),
        nn.Flatten(),
        head,
    ).eval()


def test_quantize_model_dynamic_ranges_per_sample_and_small_clips():
    """Every eligible tensor dynamic: samples are quantized independently of their batch, the input needs no
    QuantizeTensor, and a clip 100x smaller than every calibration clip keeps its precision."""
    model = _linear_chain()
    generator = torch.Generator().manual_seed(1)
    calibration = [torch.randn(2, 3, 4, 16, 16, generator=generator) for _ in range(3)]
    prepared = prepare(model)
    calibrate(prepared, calibration)
    assert len(dynamic_candidates(prepared)) == 5  # the input, the three conv outputs and the pooled vector
    # no bias correction: its shifts are measured at the calibration clips' scale and would give the chain a bias
    # the classifier int8 too (float_classifier=False): its input is the fifth candidate
    static = quantize_model(model, calibration, bias_correction=False, float_classifier=False)
    dynamic = quantize_model(model, calibration, bias_correction=False, dynamic_ranges=0, float_classifier=False)
    assert sum(m.dynamic_input for m in dynamic.modules() if hasattr(m, "dynamic_input")) == 5
    assert not any(isinstance(m, QuantizeTensor) for m in dynamic.modules())
    clips = torch.randn(4, 3, 4, 16, 16, generator=generator) * torch.tensor([1.0, 0.01, 3.0, 0.01]).reshape(4, 1, 1, 1, 1)
    with torch.no_grad():
        reference, out_static, out_dynamic = model(clips), static(clips), dynamic(clips)
        one_by_one = torch.cat([dynamic(clips[n:n + 1]) for n in range(4)])
    assert torch.equal(one_by_one, out_dynamic)

    def error(out, n):
        return float((out[n] - reference[n]).norm() / reference[n].norm())

    for n in range(4):
        assert error(out_dynamic, n) < 0.05
    for n in (1, 3):  # the small clips: static ranges leave them a handful of levels
        assert error(out_static, n) > 0.2


def test_mark_dynamic_picks_the_tensors_whose_range_changes_and_silences_the_warning():
    model = _linear_chain()
    generator = torch.Generator().manual_seed(2)
    calibration = [torch.randn(1, 3, 4, 16, 16, generator=generator) * s for s in (1.0, 1.0, 100.0, 1.0)]
    with pytest.warns(RuntimeWarning, match="dynamic_ranges=True"):
        quantize_model(model, calibration, dynamic_ranges=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        quantized = quantize_model(model, calibration, dynamic_ranges=True, float_classifier=False)
    assert sum(getattr(m, "dynamic_input", False) for m in quantized.modules()) == 5
    prepared = prepare(model)
    calibrate(prepared, calibration)
    assert len(mark_dynamic(prepared, 5.0)) == 5 and "input_1" in mark_dynamic(prepared, 5.0)
    steady = prepare(model)
    calibrate(steady, [torch.randn(1, 3, 4, 16, 16, generator=generator) for _ in range(4)])
    assert mark_dynamic(steady, 5.0) == []
    assert len(mark_dynamic(steady, 0)) == 5
    with pytest.raises(ValueError, match="spread"):
        mark_dynamic(steady, -1.0)
    with pytest.raises(ValueError, match="dynamic_ranges"):
        quantize_model(model, calibration, dynamic_ranges="yes")
    # squeeze-excitation outputs qualify (per channel when static, per sample when dynamic); tensors that a
    # tensor + tensor add reads do not (its int8 form takes static qparams)
    deploy = _deployed_x3d()
    deploy_prepared = prepare(deploy)
    calibrate(deploy_prepared, [torch.randn(1, 3, 4, 32, 32, generator=generator) for _ in range(3)])
    names = {n.name for n in dynamic_candidates(deploy_prepared)}
    assert sum(name.endswith("_se") for name in names) == sum(isinstance(m, FusedSqueezeExcitation) for m in deploy.modules())
    add_prepared = prepare(_AddThenReLU().eval())
    calibrate(add_prepared, [torch.randn(1, 3, 2, 5, 5, generator=generator) for _ in range(3)])
    assert {n.name for n in dynamic_candidates(add_prepared)} == {"x"}  # the input only; the add's inputs are not


@pytest.mark.parametrize("scale, dynamic_by_default", [(4.0, True), (2.0, False)])
def test_default_threshold_is_a_3x_spread(scale, dynamic_by_default):
    """dynamic_ranges=True marks the tensors whose calibration batches' magnitudes differ by more than 3x (5x before
    the nineteenth session: docs/notes/accelerator.md). The chain is positively homogeneous, so scaling one clip
    by ``scale`` in one of four batches gives every tensor exactly that spread."""
    model = _linear_chain()
    clip = torch.randn(1, 3, 4, 16, 16, generator=torch.Generator().manual_seed(5))
    calibration = [clip * s for s in (1.0, 1.0, scale, 1.0)]

    def readers(**options):
        quantized = quantize_model(model, calibration, float_classifier=False, **options)
        return sum(getattr(m, "dynamic_input", False) for m in quantized.modules())

    assert readers() == readers(dynamic_ranges=True) == (5 if dynamic_by_default else 0)
    assert readers(dynamic_ranges=5.0) == 0
    assert readers(dynamic_ranges=1.5) == 5
    prepared = prepare(model)
    calibrate(prepared, calibration)
    assert len(mark_dynamic(prepared)) == (5 if dynamic_by_default else 0)


def test_qat_with_dynamic_tensors_converts_to_the_fake_quant_model():
    deploy = _deployed_x3d(seed=2, num_classes=4)
    qat = prepare_qat(deploy, per_channel=False)
    generator = torch.Generator().manual_seed(3)
    clips = torch.randn(4, 3, 4, 32, 32, generator=generator) * torch.tensor([1.0, 0.1, 2.0, 0.05]).reshape(4, 1, 1, 1, 1)
    calibrate(qat, [clips[:2], clips[2:], clips[1:3]])
    assert mark_dynamic(qat, 0)
    loss = qat(clips).square().mean()
    loss.backward()  # straight-through gradients through the per-sample fake quantization
    assert deploy.s2.pathway0_res0.layers.conv_0.kernel.weight.grad is not None
    freeze_observers(qat)
    qat.eval()
    int8_model = convert_qat(qat)
    assert any(getattr(m, "dynamic_input", False) for m in int8_model.modules())
    with torch.no_grad():
        fake, real = qat(clips), int8_model(clips)
    # Same activation rounding and per-sample bias grids; on this random model with 20x smaller clips float-order tie
    # flips still cascade (6.0e-3 here, 8.7e-3 before the QAT bias was snapped per sample; 1.6e-3 all static)
    assert float((real - fake).norm() / fake.norm()) < 1e-2


def test_qat_bias_of_a_dynamic_input_is_each_samples_int32_bias():
    # The fake-quant bias of a layer with a dynamic input is, sample by sample, the int32 bias times the dequant
    # scale of the converted int8 layer; its gradient passes straight through (summed over the samples).
    from pyvideo.accelerator.quantization.fake_quant import fake_quantize_sample_bias

    generator = torch.Generator().manual_seed(11)
    conv = FusedConv3d(torch.randn(5, 6, 1, 1, 1, generator=generator), torch.randn(5, generator=generator) * 3)
    x = torch.randn(3, 6, 2, 3, 3, generator=generator) * torch.tensor([1.0, 0.01, 40.0]).reshape(3, 1, 1, 1, 1)
    qparams = sample_qparams(x)
    int8 = QuantizedConv3d(conv, DYNAMIC, QParams(0.1, 0))
    dequant, bias_int32 = int8._dequant_scale_and_bias(qparams, 2, 1)
    bias = conv.bias.detach().clone().requires_grad_(True)
    fake = fake_quantize_sample_bias(bias, conv.weight, qparams)
    assert fake.shape == (3, 5)
    torch.testing.assert_close(fake.detach(), (bias_int32.double() * dequant.double()).float(), rtol=1e-6, atol=0)
    assert not torch.equal(fake.detach()[1], conv.bias.detach())  # the small clip's grid is visibly coarse...
    assert not torch.equal(fake.detach()[0], fake.detach()[2])  # ...and every sample has its own
    fake.sum().backward()
    assert torch.equal(bias.grad, torch.full((5,), 3.0))


def test_per_layer_lowering_keeps_dynamic_layers_exact():
    """lower_quantized_to_native runs the dynamic layers on their cached torch form (the per-layer native ops take
    static qparams only) and the static ones natively: the result equals the reference model."""
    from pyvideo.accelerator.native import lower_quantized_to_native
    from pyvideo.accelerator.native.quantized import CachedQuantizedConv3d, NativeQuantizedConv3d

    model = _linear_chain()
    generator = torch.Generator().manual_seed(6)
    calibration = [torch.randn(1, 3, 4, 16, 16, generator=generator) * s for s in (1.0, 1.0, 30.0, 1.0)]
    prepared = prepare(model)
    calibrate(prepared, calibration)
    mark_dynamic(prepared, 0)
    for name, quantizer in list(dynamic_candidates(prepared).items())[1:]:
        quantizer.dynamic = False  # only the model input dynamic: the later convs stay static and native
    int8 = convert(prepared)
    lowered = lower_quantized_to_native(int8)
    kinds = [type(m) for m in lowered.modules() if isinstance(m, (CachedQuantizedConv3d, NativeQuantizedConv3d))]
    assert kinds[0] is CachedQuantizedConv3d and NativeQuantizedConv3d in kinds[1:]
    clips = torch.randn(3, 3, 4, 16, 16, generator=generator) * torch.tensor([1.0, 0.01, 5.0]).reshape(3, 1, 1, 1, 1)
    with torch.no_grad():
        assert torch.equal(lowered(clips), int8(clips))


def test_bias_correction_leaves_out_layers_with_a_dynamic_input():
    from pyvideo.accelerator.quantization.graph_quantizer import weight_error_means

    model = _linear_chain()
    generator = torch.Generator().manual_seed(5)
    calibration = [torch.randn(1, 3, 4, 16, 16, generator=generator) for _ in range(3)]
    prepared = prepare(model)
    calibrate(prepared, calibration)
    assert len(weight_error_means(prepared, calibration)) == 4  # three convs and the Linear
    candidates = list(dynamic_candidates(prepared).items())
    candidates[0][1].dynamic = True  # the model input: the first conv's input
    shifted = weight_error_means(prepared, calibration)
    assert len(shifted) == 3 and "0" not in shifted
    mark_dynamic(prepared, 0)
    assert weight_error_means(prepared, calibration) == {}
