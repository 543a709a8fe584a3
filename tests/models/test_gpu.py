"""Models moved with ``model.to(device)`` alone run on a CUDA GPU: outputs and gradients match the CPU model and
stay on the device, and a training step (batch statistics, dropout, stochastic depth) works there.

A tensor created inside ``forward`` without ``device=`` (or a plain tensor attribute that ``.to()`` does not move)
shows up as a device-mismatch error, which a CPU-only run never sees. ``test_forward_on_meta_device`` finds most
of them on any machine: a CPU tensor mixed into a computation on the meta device fails exactly as on CUDA (0-dim
tensors are allowed by both). Everything else needs the device: by default ``cuda`` (skipped without a GPU);
``PYVIDEO_TEST_DEVICE=cpu`` runs the same bodies against a second CPU copy, which checks the tests themselves.

Models are shrunk (widths, depths, 32x32 clips) so the file runs in seconds: the point is device placement and
numerical agreement, not throughput. cuDNN benchmark mode stays off (autotuning each shape would dominate).
"""
import copy
import os

import pytest
import torch
import torch.nn as nn

DEVICE = torch.device(os.environ.get("PYVIDEO_TEST_DEVICE", "cuda"))
requires_device = pytest.mark.skipif(
    DEVICE.type == "cuda" and not torch.cuda.is_available(),
    reason="needs a CUDA GPU (PYVIDEO_TEST_DEVICE=cpu runs these bodies on the CPU)",
)


@pytest.fixture(autouse=True)
def full_fp32_matmuls():
    """TF32 would round matmul/conv inputs to 10 mantissa bits on Ampere+ and break the 1e-4 comparison.
    In the CPU self-check one intra-op thread avoids OpenMP spinning on a busy 2-core CI machine."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, torch.get_num_threads()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    if DEVICE.type == "cpu":
        torch.set_num_threads(1)
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved[:2]
    torch.set_num_threads(saved[2])


def to_device(value, device=DEVICE):
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, (list, tuple)):
        return type(value)(to_device(v, device) for v in value)
    return value


def assert_on_device(tensor: torch.Tensor, what: str) -> None:
    assert tensor.device.type == DEVICE.type, f"{what} is on {tensor.device}, expected {DEVICE}"


def assert_close_scaled(actual: torch.Tensor, expected: torch.Tensor, rtol: float = 1e-4, what: str = "output"):
    """Element-wise |actual - expected| <= rtol * max|expected|: float32 sums on a GPU run in another order, so
    values near zero differ by more than a pure relative tolerance allows; the scale of the tensor bounds that."""
    assert actual.shape == expected.shape, f"{what}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    actual = actual.detach().cpu().double()
    expected = expected.detach().cpu().double()
    scale = expected.abs().max().clamp(min=1e-12)
    error = (actual - expected).abs().max()
    assert error <= rtol * scale, f"{what}: max error {error:.3g} exceeds {rtol} x max|expected| {scale:.3g}"


def without_dropout(model: nn.Module) -> nn.Module:
    """Dropout draws from a different generator on each device; zeroing it makes train-mode passes comparable."""
    from pyvideo.layers.drop_path import DropPath

    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0
        elif isinstance(module, nn.MultiheadAttention):
            module.dropout = 0.0  # a float, applied inside F.multi_head_attention_forward
        elif isinstance(module, DropPath):
            module.drop_prob = 0.0
    return model


def _square_mean(out):
    return out.float().pow(2).mean()


def _gradients(model: nn.Module):
    return {name: p.grad for name, p in model.named_parameters() if p.requires_grad}


def _eval_for_backward(model: nn.Module) -> nn.Module:
    """Eval mode, except recurrent layers without dropout: cuDNN RNNs backpropagate only in training mode,
    and without dropout both modes compute the same."""
    model.eval()
    for module in model.modules():
        if isinstance(module, nn.RNNBase) and module.dropout == 0:
            module.train()
    return model


def check_eval_matches_cpu(model: nn.Module, inputs: tuple, loss_of=_square_mean):
    """Eval forward and backward of a device copy against the CPU model: the outputs agree element-wise, the
    gradients of every trainable parameter agree as one vector (relative L2), and both stay on the device.
    Gradients are compared in eval mode: batch statistics of tiny batches make train-mode gradients
    ill-conditioned (float32 against float64 differs by up to 3e-2 there, by < 4e-6 in eval mode).
    Both sides are copies, so ``model`` keeps no autograd state (some layers keep their last attention weights).
    Returns the device output."""
    model, moved = _eval_for_backward(copy.deepcopy(model)), _eval_for_backward(copy.deepcopy(model)).to(DEVICE)
    expected = model(*inputs)
    actual = moved(*to_device(inputs))
    assert_on_device(actual, "eval output")
    assert_close_scaled(actual, expected, what="eval output")
    loss_of(expected).backward()
    loss_of(actual).backward()
    grads, grads_cpu = _gradients(moved), _gradients(model)
    for name, grad in grads.items():
        assert grad is not None, f"no gradient for {name}"
        assert_on_device(grad, f"gradient of {name}")
    flat = torch.cat([g.flatten().cpu().double() for g in grads.values()])
    flat_cpu = torch.cat([g.flatten().double() for g in grads_cpu.values()])
    relative = ((flat - flat_cpu).norm() / flat_cpu.norm().clamp(min=1e-12)).item()
    assert relative < 1e-3, f"device gradients differ from CPU gradients by {relative:.3g} (relative L2)"
    return actual.detach()


def check_train_step(model: nn.Module, inputs: tuple, loss_of=_square_mean, compare_loss: bool = True):
    """One SGD step in training mode on a device copy: every trainable parameter gets a finite gradient on the
    device, the step changes the weights, BatchNorm running statistics are updated there, and every parameter
    and buffer is still on the device afterwards. With ``compare_loss`` (models without stochastic layers once
    dropout is off) the train-mode loss (batch statistics) must match the CPU loss to 1e-3."""
    model = model.train()
    moved = copy.deepcopy(model).to(DEVICE)
    running = {name: b.clone() for name, b in moved.named_buffers() if name.endswith("running_mean")}
    if compare_loss:
        without_dropout(model)
        without_dropout(moved)
    loss = loss_of(moved(*to_device(inputs)))
    assert_on_device(loss, "loss")
    assert torch.isfinite(loss), f"loss is {loss.item()}"
    if compare_loss:
        with torch.no_grad():
            assert_close_scaled(loss, loss_of(model(*inputs)), rtol=1e-3, what="train-mode loss")
    loss.backward()
    for name, grad in _gradients(moved).items():
        assert grad is not None, f"no gradient for {name}"
        assert_on_device(grad, f"gradient of {name}")
        assert torch.isfinite(grad).all(), f"non-finite gradient for {name}"
    before = [p.detach().clone() for p in moved.parameters() if p.requires_grad]
    torch.optim.SGD([p for p in moved.parameters() if p.requires_grad], lr=0.1, momentum=0.9).step()
    after = [p for p in moved.parameters() if p.requires_grad]
    assert any(not torch.equal(b, p) for b, p in zip(before, after)), "the optimizer step changed no parameter"
    for name, tensor in list(moved.named_parameters()) + list(moved.named_buffers()):
        assert_on_device(tensor, name)
    stale = [name for name, b in running.items() if torch.equal(b, dict(moved.named_buffers())[name])]
    assert not stale, f"BatchNorm statistics not updated in training mode: {stale[:3]}"


# ---------------------------------------------------------------- classification builders


def _clip(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(1000 * seed + sum(shape)))


_SMALL_RESNET = dict(stem_dim_out=8, head_pool=nn.AdaptiveAvgPool3d, model_num_class=3)
_SMALL_SLOWFAST = dict(stem_dim_outs=(16, 2), head_pool=nn.AdaptiveAvgPool3d, model_num_class=3)
_SMALL_X3D = dict(input_clip_length=4, input_crop_size=32, model_num_class=3, head_dim_out=32)
_SMALL_MVIT = dict(
    spatial_size=32, temporal_size=4, depth=4, patch_embed_dim=16, num_heads=2, embed_dim_mul=[[1, 2.0], [3, 2.0]],
    atten_head_mul=[[1, 2.0], [3, 2.0]], pool_q_stride_size=[[1, 1, 2, 2], [3, 1, 2, 2]],
    pool_kv_stride_adaptive=[1, 4, 4], head_num_classes=3, droppath_rate_block=0.0,
)


def _hub(name, **kwargs):
    from pyvideo.models import hub

    return lambda: getattr(hub, name)(**kwargs)


def _audio_visual_slowfast():
    from pyvideo.models.audio_visual_slowfast import create_audio_visual_slowfast

    return create_audio_visual_slowfast(model_depth=18, stem_dim_outs=(16, 2, 8), model_num_class=3,
                                        head_pool=nn.AdaptiveAvgPool3d)


def _acoustic_resnet():
    from pyvideo.models.resnet import create_acoustic_resnet

    return create_acoustic_resnet(stem_dim_out=8, model_num_class=3, head_pool=nn.AdaptiveAvgPool3d)


def _mvit_variant():
    # the other code paths of the attention blocks: no cls token, one position table, max pooling, pool first,
    # residual pooling, and stochastic depth (identity in eval; see test_stochastic_depth_masks_on_device)
    from pyvideo.models.vision_transformers import create_multiscale_vision_transformers

    return create_multiscale_vision_transformers(**{**_SMALL_MVIT, "cls_embed_on": False, "sep_pos_embed": False,
                                                    "pooling_mode": "max", "pool_first": True, "residual_pool": True,
                                                    "droppath_rate_block": 0.5})


_SLOWFAST_CLIPS = lambda: ([_clip(2, 3, 2, 32, 32), _clip(2, 3, 8, 32, 32)],)  # noqa: E731
_CLASSIFIERS = {
    "slow_r50": (_hub("slow_r50", **_SMALL_RESNET), lambda: (_clip(2, 3, 4, 32, 32),)),
    "c2d_r50": (_hub("c2d_r50", **_SMALL_RESNET), lambda: (_clip(2, 3, 4, 32, 32),)),
    "i3d_r50": (_hub("i3d_r50", **_SMALL_RESNET), lambda: (_clip(2, 3, 4, 32, 32),)),
    "csn_r101": (_hub("csn_r101", **_SMALL_RESNET), lambda: (_clip(2, 3, 8, 32, 32),)),
    "r2plus1d_r50": (_hub("r2plus1d_r50", **_SMALL_RESNET), lambda: (_clip(2, 3, 4, 32, 32),)),
    "slowfast_r50": (_hub("slowfast_r50", **_SMALL_SLOWFAST), _SLOWFAST_CLIPS),
    "slowfast_16x8_r101_50_50": (_hub("slowfast_16x8_r101_50_50", **_SMALL_SLOWFAST), _SLOWFAST_CLIPS),
    "x3d_xs": (_hub("x3d_xs", **_SMALL_X3D), lambda: (_clip(2, 3, 4, 32, 32),)),
    "efficient_x3d_xs": (_hub("efficient_x3d_xs", num_classes=3), lambda: (_clip(2, 3, 4, 32, 32),)),
    "mvit_base_16x4": (_hub("mvit_base_16x4", **_SMALL_MVIT), lambda: (_clip(2, 3, 4, 32, 32),)),
    "mvit_variant": (_mvit_variant, lambda: (_clip(2, 3, 4, 32, 32),)),
    "mvit_base_16_image": (
        _hub("mvit_base_16", **{**_SMALL_MVIT, "temporal_size": 1, "pool_kv_stride_adaptive": [1, 4, 4]}),
        lambda: (_clip(2, 3, 32, 32),),
    ),
    "audio_visual_slowfast": (
        _audio_visual_slowfast,
        lambda: ([_clip(2, 3, 2, 32, 32), _clip(2, 3, 8, 32, 32), _clip(2, 1, 32, 1, 16)],),
    ),
    "acoustic_resnet": (_acoustic_resnet, lambda: (_clip(2, 1, 16, 1, 30),)),
}


@requires_device
@pytest.mark.parametrize("name", sorted(_CLASSIFIERS))
def test_classifier_on_device(name):
    build, make_inputs = _CLASSIFIERS[name]
    torch.manual_seed(0)
    model = build()
    inputs = make_inputs()
    out = check_eval_matches_cpu(model, inputs)
    assert out.shape == (2, 3)
    check_train_step(model, inputs)


@requires_device
def test_stochastic_depth_masks_on_device():
    # DropPath draws its per-sample keep mask in forward; it must come from the device's generator
    torch.manual_seed(0)
    check_train_step(_mvit_variant(), (_clip(2, 3, 4, 32, 32),), compare_loss=False)


@requires_device
def test_caller_inputs_stay_where_they_were():
    # multi-pathway models must not write device tensors back into the caller's list
    model = copy.deepcopy(_hub("slowfast_r50", **_SMALL_SLOWFAST)()).eval().to(DEVICE)
    clips = to_device(_SLOWFAST_CLIPS()[0])
    originals = list(clips)
    with torch.no_grad():
        model(clips)
    assert all(a is b for a, b in zip(clips, originals))


# ---------------------------------------------------------------- detection (RoI heads)


def _boxes():
    # (batch index, x1, y1, x2, y2) in input pixels; the last box hangs over the border
    return torch.tensor([[0, 2.0, 2.0, 30.0, 30.0], [1, 0.0, 8.0, 16.0, 24.0], [1, 20.0, 4.0, 40.0, 12.0]])


_DETECTORS = {
    "slow_r50_detection": (
        _hub("slow_r50_detection", model_num_class=3, stem_dim_out=8, head_pool_kernel_size=(2, 1, 1)),
        lambda: (_clip(2, 3, 2, 32, 32), _boxes()),
    ),
    "slowfast_r50_detection": (
        _hub("slowfast_r50_detection", model_num_class=3, stem_dim_outs=(16, 2),
             head_pool_kernel_sizes=((2, 1, 1), (8, 1, 1))),
        lambda: (_SLOWFAST_CLIPS()[0], _boxes()),
    ),
}


@requires_device
@pytest.mark.parametrize("name", sorted(_DETECTORS))
def test_detector_on_device(name):
    build, make_inputs = _DETECTORS[name]
    torch.manual_seed(0)
    model = build()
    inputs = make_inputs()
    bce = lambda s: nn.functional.binary_cross_entropy(s, torch.full_like(s, 0.25))  # noqa: E731
    scores = check_eval_matches_cpu(model, inputs, loss_of=bce)
    assert scores.shape == (3, 3) and ((scores > 0) & (scores < 1)).all()
    check_train_step(model, inputs, loss_of=bce)


@requires_device
def test_detector_accepts_boxes_left_on_cpu():
    # boxes often come straight from a CPU collate function; the RoI head moves them to the features' device
    model = _hub("slow_r50_detection", model_num_class=3, stem_dim_out=8, head_pool_kernel_size=(2, 1, 1))().eval()
    video, boxes = _clip(2, 3, 2, 32, 32), _boxes()
    with torch.no_grad():
        expected = model(video, boxes)
        actual = model.to(DEVICE)(video.to(DEVICE), boxes)
    assert_on_device(actual, "scores")
    assert_close_scaled(actual, expected)


# ---------------------------------------------------------------- masked multi-stream models


def _masked_multistream():
    from pyvideo.models.masked_multistream import (
        LSTM, LearnMaskedDefault, MaskedMultiPathWay, MaskedSequential, MaskedTemporalPooling,
        TransposeMultiheadAttention, TransposeTransformerEncoder,
    )
    from pyvideo.layers.fusion import make_fusion_layer
    from pyvideo.layers.positional_encoding import PositionalEncoding

    streams = nn.ModuleList([
        MaskedSequential(PositionalEncoding(8, seq_len=6), TransposeMultiheadAttention(8, num_heads=2),
                         MaskedTemporalPooling("avg"), LearnMaskedDefault(8, init_method="zeros")),
        MaskedSequential(LSTM(8, 4, bidirectional=True), LearnMaskedDefault(8, init_method="gaussian")),
        MaskedSequential(TransposeTransformerEncoder(8, num_heads=2), LearnMaskedDefault(8)),
    ])
    return nn.Sequential(MaskedMultiPathWay(multipathway_blocks=streams,
                                            multipathway_fusion=make_fusion_layer("concat", [8, 8, 8])),
                         nn.Linear(24, 3))


def _masked_inputs():
    # sample 0: all steps valid, sample 1: a prefix of 3, sample 2: one step (attention) or none (the LSTM
    # stream, whose learned default replaces it; attention over no valid key would be NaN, as upstream)
    prefix = torch.tensor([[True] * 6, [True] * 3 + [False] * 3, [True] + [False] * 5])
    empty_row = prefix.clone()
    empty_row[2] = False
    return ([(_clip(3, 6, 8, seed=1), prefix), (_clip(3, 6, 8, seed=2), empty_row), (_clip(3, 6, 8, seed=3), prefix)],)


@requires_device
def test_masked_multistream_on_device():
    torch.manual_seed(0)
    model = _masked_multistream()
    inputs = _masked_inputs()
    out = check_eval_matches_cpu(model, inputs)
    assert out.shape == (3, 3)
    check_train_step(model, inputs)


@requires_device
def test_learned_default_is_a_parameter_that_moves():
    # the defaults are created on the CPU in __init__, but as a Parameter they move with the module
    from pyvideo.models.masked_multistream import LearnMaskedDefault

    layer = LearnMaskedDefault(4, init_method="gaussian").to(DEVICE)
    x = torch.ones(2, 4, device=DEVICE)
    out = layer(x, torch.tensor([[True, False], [False, False]], device=DEVICE))
    assert_on_device(out, "output")
    assert torch.equal(out[0].cpu(), torch.ones(4))
    assert torch.equal(out[1].cpu(), layer._learned_defaults.detach().cpu())


# ---------------------------------------------------------------- self-supervised wrappers in pyvideo.models


class _TinyBackbone(nn.Module):
    """conv-BN-ReLU, global pool: B x 3 x T x H x W -> B x width (BN makes train/eval differ, as in real nets)."""

    def __init__(self, width: int = 8):
        super().__init__()
        self.net = nn.Sequential(nn.Conv3d(3, width, 3, padding=1, bias=False), nn.BatchNorm3d(width), nn.ReLU(),
                                 nn.AdaptiveAvgPool3d(1), nn.Flatten())

    def forward(self, x):
        return self.net(x)


def _two_views():
    return _clip(4, 3, 2, 8, 8, seed=1), _clip(4, 3, 2, 8, 8, seed=2)


@requires_device
def test_simclr_on_device():
    from pyvideo.models.simclr import SimCLR

    torch.manual_seed(0)
    model = SimCLR(mlp=nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4)), backbone=_TinyBackbone(),
                   temperature=0.1)
    inputs = _two_views()
    check_eval_matches_cpu(model, inputs, loss_of=lambda loss: loss)
    check_train_step(model, inputs, loss_of=lambda loss: loss)


@requires_device
def test_byol_on_device_updates_the_momentum_copy_there():
    from pyvideo.models.byol import BYOL

    torch.manual_seed(0)
    model = BYOL(_TinyBackbone(), projector=nn.Linear(8, 4), feature_dim=4, predictor_inner=8, mmt=0.5,
                 norm=nn.BatchNorm1d)
    inputs = _two_views()
    check_eval_matches_cpu(model, inputs, loss_of=lambda loss: loss)
    moved = copy.deepcopy(model).to(DEVICE).train()
    with torch.no_grad():
        online = [p.clone() for p in moved.backbone.parameters()]
        momentum = [p.clone() for p in moved.backbone_mmt.parameters()]
    loss = moved(*to_device(inputs))
    loss.backward()
    for p, o, m in zip(moved.backbone_mmt.parameters(), online, momentum):
        assert_on_device(p, "momentum parameter")
        torch.testing.assert_close(p, 0.5 * m + 0.5 * o)  # EMA with mmt = 0.5, before the optimizer step
    assert all(p.grad is None for p in moved.backbone_mmt.parameters())
    check_train_step(model, inputs, loss_of=lambda loss: loss)


@requires_device
def test_memory_bank_on_device():
    import torch.nn.functional as F

    from pyvideo.models.memory_bank import MemoryBank

    torch.manual_seed(0)
    model = MemoryBank(_TinyBackbone(), mlp=nn.Linear(8, 4), neg_size=5, temperature=0.5, bank_size=10, dim=4,
                       mmt=0.75).to(DEVICE).train()
    assert_on_device(model.memory, "memory bank")
    x, indices = _clip(4, 3, 2, 8, 8).to(DEVICE), torch.tensor([7, 0, 3, 9])  # indices may stay on the CPU
    before = model.memory.clone()
    loss = model(x, indices)
    assert_on_device(loss, "loss")
    assert torch.isfinite(loss)
    loss.backward()
    for name, p in model.named_parameters():
        assert_on_device(p.grad, f"gradient of {name}")
        assert torch.isfinite(p.grad).all()
    # the update of the bank, recomputed from the embedding of the same batch (BN in eval so it is reproducible)
    model.eval()
    with torch.no_grad():
        embedding = F.normalize(model.mlp(model.backbone(x)), dim=1)
        model.memory.copy_(before)
        model.train()
        model.backbone.eval()
        model(x, indices)
    expected = F.normalize(before[indices.to(DEVICE)] * 0.75 + embedding * 0.25, dim=1)
    assert_close_scaled(model.memory[indices.to(DEVICE)], expected, rtol=1e-5, what="updated bank rows")
    untouched = torch.ones(10, dtype=torch.bool)
    untouched[indices] = False
    assert torch.equal(model.memory[untouched.to(DEVICE)], before[untouched.to(DEVICE)])


# ---------------------------------------------------------------- layers used by the models


def _layer(module_name, factory_name, *args, **kwargs):
    import importlib

    return lambda: getattr(importlib.import_module(f"pyvideo.layers.{module_name}"), factory_name)(*args, **kwargs)


_LAYERS = {
    "nonlocal_softmax_pooled": (_layer("nonlocal_net", "create_nonlocal", dim_in=8, dim_inner=4, pool_size=(1, 2, 2)),
                                lambda: (_clip(2, 8, 2, 4, 4),)),
    "nonlocal_dot_product": (_layer("nonlocal_net", "create_nonlocal", dim_in=8, dim_inner=4,
                                    instantiation="dot_product"), lambda: (_clip(2, 8, 2, 4, 4),)),
    "squeeze_excitation_3d": (_layer("squeeze_excitation", "SqueezeExcitation", 8, is_3d=True),
                              lambda: (_clip(2, 8, 2, 4, 4),)),
    "audio_2d_se_block": (_layer("squeeze_excitation", "create_audio_2d_squeeze_excitation_block", 4, 8, use_se=True,
                                 se_reduction_ratio=2, conv_a_stride=2), lambda: (_clip(2, 4, 8, 8),)),
    "multilayer_perceptron": (lambda: _layer("mlp", "make_multilayer_perceptron", [8, 16, 4],
                                             norm=nn.BatchNorm1d)()[0], lambda: (_clip(4, 8),)),
}


@requires_device
@pytest.mark.parametrize("name", sorted(_LAYERS))
def test_layer_on_device(name):
    build, make_inputs = _LAYERS[name]
    torch.manual_seed(0)
    model = build()
    inputs = make_inputs()
    check_eval_matches_cpu(model, inputs)
    check_train_step(model, inputs)


# ---------------------------------------------------------------- device placement without a GPU


@pytest.mark.parametrize("name", sorted({**_CLASSIFIERS, **_LAYERS}))
def test_forward_on_meta_device(name):
    # shapes only, no arithmetic. (The RoI heads and the LSTM read tensor values, which meta tensors lack.)
    build, make_inputs = {**_CLASSIFIERS, **_LAYERS}[name]
    meta = torch.device("meta")
    model = build().to(meta)
    inputs = to_device(make_inputs(), meta)
    assert model.eval()(*inputs).is_meta
    model.train()(*inputs).float().pow(2).mean().backward()
    for param_name, param in model.named_parameters():
        assert param.grad is not None and param.grad.is_meta, f"gradient of {param_name}"


@requires_device
def test_positional_encodings_on_device():
    from pyvideo.layers.positional_encoding import PositionalEncoding, SpatioTemporalClsPositionalEncoding

    tokens = _clip(2, 2 * 3 * 3, 8)
    for layer in (
        PositionalEncoding(8, seq_len=32),
        SpatioTemporalClsPositionalEncoding(8, (2, 3, 3), sep_pos_embed=True, has_cls=True),
        SpatioTemporalClsPositionalEncoding(8, (2, 3, 3), sep_pos_embed=True, has_cls=False),
        SpatioTemporalClsPositionalEncoding(8, (2, 3, 3), sep_pos_embed=False, has_cls=False),
    ):
        for p in layer.parameters():
            nn.init.normal_(p)
        expected = layer(tokens)
        actual = layer.to(DEVICE)(tokens.to(DEVICE))
        assert_on_device(actual, type(layer).__name__)
        assert_close_scaled(actual, expected)


@requires_device
def test_deploy_form_and_fake_quant_model_on_device():
    """The accelerator's torch-level forms (deploy form, QAT fake-quant graph) are device-agnostic: converted on the
    device, they match the original model there and train there (the native kernels are CPU-only)."""
    from pyvideo.accelerator.deployment import convert_to_deployable_form
    from pyvideo.accelerator.quantization import prepare_qat
    from pyvideo.models.accelerator.mobile_cpu.efficient_x3d import create_x3d

    torch.manual_seed(0)
    model = create_x3d(expansion="XS", num_classes=5, dropout=0.0).eval().to(DEVICE)
    clips = _clip(2, 3, 4, 32, 32).to(DEVICE)
    deploy = convert_to_deployable_form(model, clips[:1]).eval()
    params = list(deploy.parameters())
    assert params and all(p.device.type == DEVICE.type for p in params)
    with torch.no_grad():
        assert_close_scaled(deploy(clips), model(clips), what="deploy form")
    qat = prepare_qat(deploy)
    loss = qat(clips).square().mean()
    loss.backward()
    assert torch.isfinite(loss)
    grads = [p.grad for p in qat.parameters() if p.requires_grad]
    assert grads and all(g is not None and g.device.type == DEVICE.type and torch.isfinite(g).all() for g in grads)


@requires_device
@pytest.mark.parametrize("separate_qkv", [False, True])
def test_mvit_fuse_bn_on_device(separate_qkv):
    """fuse_bn builds new Linear layers: on the device of the model, with the same outputs as before fusing."""
    from pyvideo.models.vision_transformers import create_multiscale_vision_transformers

    torch.manual_seed(0)
    model = create_multiscale_vision_transformers(**{**_SMALL_MVIT, "norm": "batchnorm", "cls_embed_on": False,
                                                     "separate_qkv": separate_qkv})  # fmt: skip
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm3d)):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    model = model.eval().to(DEVICE)
    clips = _clip(2, 3, 4, 32, 32).to(DEVICE)
    with torch.no_grad():
        expected = model(clips)
        model.fuse_bn()
        fused = model(clips)
    assert all(p.device.type == DEVICE.type for p in model.parameters())
    assert_close_scaled(fused, expected, what="fused output")
