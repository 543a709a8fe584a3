"""Every builder runs forward and backward at small sizes under non-default arguments.

Widths are shrunk (stem_dim_out) and inputs kept tiny so the whole file runs in seconds on 2 cores;
output shapes are computed by hand from the strides in each test.
"""
import pytest
import torch
import torch.nn as nn

from pyvideo import models
from pyvideo.models.audio_visual_slowfast import create_audio_visual_slowfast
from pyvideo.models.csn import create_csn
from pyvideo.models.r2plus1d import create_r2plus1d
from pyvideo.models.resnet import create_acoustic_resnet, create_resnet, create_resnet_with_roi_head
from pyvideo.models.slowfast import create_slowfast, create_slowfast_with_roi_head
from pyvideo.models.x3d import create_x3d


def _backward_reaches_every_parameter(model, output):
    model.zero_grad()
    output.float().pow(2).sum().backward()
    missing = [name for name, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"no gradient for {missing[:5]}"
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_resnet_small_nondefault():
    model = create_resnet(
        input_channel=2, model_num_class=7, stem_dim_out=8, activation=nn.SiLU, dropout_rate=0.0,
        stage_temporal_stride=(1, 1, 2, 1), head_pool=nn.AdaptiveAvgPool3d,
    )
    out = model(torch.randn(2, 2, 4, 32, 32))
    assert out.shape == (2, 7)
    _backward_reaches_every_parameter(model, out)
    # widths follow stem_dim_out: stage outputs 32, 64, 128, 256
    assert model.blocks[4].res_blocks[0].branch2.conv_c.out_channels == 256


def test_resnet_without_norm_and_with_stage1_pool_shifts_block_indices():
    model = create_resnet(stem_dim_out=8, norm=None, stage1_pool=nn.MaxPool3d, head_pool=nn.AdaptiveAvgPool3d)
    assert isinstance(model.blocks[2], nn.MaxPool3d) and len(model.blocks) == 7
    assert not any(isinstance(m, nn.BatchNorm3d) for m in model.modules())
    out = model(torch.randn(1, 3, 4, 32, 32))
    assert out.shape == (1, 400)


def test_resnet_fully_convolutional_head():
    # without global averaging the head keeps the (t, h, w) grid left after its pool
    model = create_resnet(
        stem_dim_out=8, model_num_class=5, head_pool_kernel_size=(1, 1, 1), head_output_with_global_average=False
    ).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 2, 64, 64))
    assert out.shape == (1, 5, 2, 2, 2)


def test_resnet_rejects_unknown_depth():
    with pytest.raises(ValueError, match="model_depth 34"):
        create_resnet(model_depth=34)


def test_acoustic_resnet_paper_call_and_forward():
    model = models.resnet.create_acoustic_resnet(model_num_class=400)
    assert model.blocks[0].conv.__class__.__name__ == "ConvReduce3D"
    # (B, 1, T, 1, F): stem stride 3 in F, stages /8 in T and F -> T/8 = 4, F/24 = 2 = head pool (4, 1, 2)
    spectrogram = torch.randn(1, 1, 32, 1, 48)
    with torch.no_grad():
        out = model.eval()(spectrogram)
    assert out.shape == (1, 400)
    small = create_acoustic_resnet(stem_dim_out=8, model_num_class=3, head_pool=nn.AdaptiveAvgPool3d)
    _backward_reaches_every_parameter(small, small(torch.randn(2, 1, 16, 1, 30)))


class _CustomNorm(nn.BatchNorm3d):
    pass


class _CustomActivation(nn.Module):
    def forward(self, x):
        return torch.clamp(x, min=0.0) * 0.5


def _custom_head(**kwargs):
    _custom_head.received = kwargs
    return models.head.create_res_basic_head(**{**kwargs, "out_features": 11})


def test_slowfast_paper_dependency_injection():
    customized_slowfast = models.slowfast.create_slowfast(
        activation=_CustomActivation, norm=_CustomNorm, head=_custom_head
    )
    assert any(isinstance(m, _CustomActivation) for m in customized_slowfast.modules())
    norms = [m for m in customized_slowfast.modules() if isinstance(m, nn.BatchNorm3d)]
    assert norms and all(isinstance(m, _CustomNorm) for m in norms)
    assert _custom_head.received["in_features"] == 2048 + 256 and customized_slowfast.blocks[6].proj.out_features == 11
    visual_model = models.slowfast.create_slowfast(model_num_class=400)
    assert visual_model.blocks[6].proj.out_features == 400


def _small_slowfast(**overrides):
    args = dict(
        model_depth=18, stem_dim_outs=(16, 2), model_num_class=6, head_pool=nn.AdaptiveAvgPool3d, dropout_rate=0.0,
    )
    return create_slowfast(**{**args, **overrides})


def test_slowfast_small_forward_backward_and_input_untouched():
    model = _small_slowfast(slowfast_conv_channel_fusion_ratio=1)
    slow, fast = torch.randn(2, 3, 2, 32, 32), torch.randn(2, 3, 8, 32, 32)
    inputs = [slow, fast]
    out = model(inputs)
    assert out.shape == (2, 6)
    assert inputs[0] is slow and inputs[1] is fast  # the caller's list is not overwritten
    _backward_reaches_every_parameter(model, out)
    # head sees slow 512 channels + fast 512 / 8
    assert model.blocks[6].proj.in_features == 512 + 64


def test_slowfast_same_result_when_called_twice():
    model = _small_slowfast().eval()
    inputs = [torch.randn(1, 3, 2, 32, 32), torch.randn(1, 3, 8, 32, 32)]
    with torch.no_grad():
        assert torch.equal(model(inputs), model(inputs))


def test_slowfast_mismatched_frame_rates_is_a_clear_error():
    model = _small_slowfast().eval()
    with pytest.raises(ValueError, match="alpha x the slow clip's frames"):
        model([torch.randn(1, 3, 2, 32, 32), torch.randn(1, 3, 4, 32, 32)])


def test_slowfast_reduction_ratio_count_checked():
    with pytest.raises(ValueError, match="channel reduction ratios"):
        create_slowfast(slowfast_channel_reduction_ratio=(8, 2))


def test_x3d_small_nondefault():
    model = create_x3d(
        input_clip_length=4, input_crop_size=64, model_num_class=9, width_factor=1.0, depth_factor=1.0,
        head_dim_out=64, head_activation=nn.Softmax, head_bn_lin5_on=True, se_ratio=0.25,
    )
    assert model.blocks[5].pool.post_norm is not None
    out = model.train()(torch.randn(2, 3, 4, 64, 64))
    assert out.shape == (2, 9)
    assert torch.allclose(out.sum(dim=1), torch.ones(2), atol=1e-5)  # Softmax over classes
    _backward_reaches_every_parameter(model, out)


def test_x3d_structure_quirks():
    model = create_x3d(input_clip_length=4, input_crop_size=160)
    stem = model.blocks[0].conv
    # upstream's swapped names: conv_t is the spatial 1x3x3 conv, conv_xy the depthwise temporal 5x1x1 one
    assert stem.conv_t.kernel_size == (1, 3, 3) and stem.conv_xy.kernel_size == (5, 1, 1)
    assert stem.conv_xy.groups == 24
    assert model.blocks[5].pool.pool.kernel_size == (4, 5, 5)
    blocks = model.blocks[2].res_blocks
    has_se = [not isinstance(b.branch2.norm_b[1], nn.Identity) for b in blocks]
    assert has_se == [True, False, True, False, True]
    with pytest.raises(NotImplementedError, match="ReLU"):
        create_x3d(head_activation=nn.ReLU)
    with pytest.raises(ValueError, match="input_crop_size"):
        create_x3d(input_crop_size=16)


def test_csn_small_depthwise():
    model = create_csn(stem_dim_out=8, model_num_class=4, head_pool=nn.AdaptiveAvgPool3d, stem_pool=nn.MaxPool3d)
    conv_b = model.blocks[1].res_blocks[0].branch2.conv_b
    assert conv_b.groups == conv_b.in_channels == 8 and conv_b.stride == (1, 1, 1)
    assert model.blocks[2].res_blocks[0].branch2.conv_b.stride == (2, 2, 2)
    out = model(torch.randn(2, 3, 8, 32, 32))
    assert out.shape == (2, 4)
    _backward_reaches_every_parameter(model, out)


def test_r2plus1d_small_and_default_softmax():
    model = create_r2plus1d(stem_dim_out=8, model_num_class=5, head_pool=nn.AdaptiveAvgPool3d, dropout_rate=0.0)
    out = model(torch.randn(2, 3, 4, 32, 32))
    assert out.shape == (2, 5)
    assert torch.allclose(out.sum(dim=1), torch.ones(2), atol=1e-5)
    conv_b = model.blocks[1].res_blocks[0].branch2.conv_b
    assert conv_b.conv_t.kernel_size == (3, 1, 1) and conv_b.conv_xy.kernel_size == (1, 3, 3)
    logits = create_r2plus1d(stem_dim_out=8, head_pool=nn.AdaptiveAvgPool3d, head_activation=None)
    _backward_reaches_every_parameter(logits, logits(torch.randn(2, 3, 4, 32, 32)))


def test_audio_visual_slowfast_small():
    model = create_audio_visual_slowfast(
        model_depth=18, stem_dim_outs=(16, 2, 8), model_num_class=3, head_pool=nn.AdaptiveAvgPool3d, dropout_rate=0.0
    )
    # audio has 16x the slow frame rate; frequency bins are averaged out in every fusion
    inputs = [torch.randn(1, 3, 2, 32, 32), torch.randn(1, 3, 8, 32, 32), torch.randn(1, 1, 32, 1, 16)]
    out = model(inputs)
    assert out.shape == (1, 3)
    assert model.blocks[6].proj.in_features == 512 + 512 // 8 + 512 // 2
    _backward_reaches_every_parameter(model, out)


def _boxes():
    # (batch index, x1, y1, x2, y2) in input pixels
    return torch.tensor([[0, 2.0, 2.0, 30.0, 30.0], [1, 0.0, 8.0, 16.0, 24.0], [1, 4.0, 4.0, 12.0, 12.0]])


def test_resnet_with_roi_head_small():
    model = create_resnet_with_roi_head(
        stem_dim_out=8, model_num_class=5, head_pool_kernel_size=(2, 1, 1), head_spatial_resolution=(3, 3)
    )
    out = model(torch.randn(2, 3, 2, 32, 32), _boxes())
    assert out.shape == (3, 5)
    assert ((out > 0) & (out < 1)).all()  # sigmoid scores
    _backward_reaches_every_parameter(model, out)


def test_roi_head_requires_temporal_size_one():
    model = create_resnet_with_roi_head(stem_dim_out=8, head_pool_kernel_size=(1, 1, 1))
    with pytest.raises(ValueError, match="temporal size after the head pool must be 1"):
        model(torch.randn(1, 3, 2, 32, 32), _boxes()[:1])


def test_slowfast_with_roi_head_small():
    model = create_slowfast_with_roi_head(
        model_depth=18, stem_dim_outs=(16, 2), model_num_class=4, head_pool_kernel_sizes=((2, 1, 1), (8, 1, 1)),
        head_spatial_resolution=(2, 2),
    )
    out = model([torch.randn(2, 3, 2, 32, 32), torch.randn(2, 3, 8, 32, 32)], _boxes())
    assert out.shape == (3, 4)
    _backward_reaches_every_parameter(model, out)
    # the last stage is dilated instead of strided: the feature map stays at 1/16 of the input
    backbone = model.model.blocks[:5]
    features = [torch.randn(1, 3, 2, 64, 64), torch.randn(1, 3, 8, 64, 64)]
    for block in backbone:
        features = block(features)
    assert features[0].shape[-2:] == (4, 4)


def test_models_pickle_and_deepcopy():
    # branch fusions are named functions, not lambdas, so whole models can be pickled (torch.save(model))
    import copy
    import pickle

    model = create_x3d(input_clip_length=4, input_crop_size=64, depth_factor=1.0).eval()
    clip = torch.rand(1, 3, 4, 64, 64)
    restored = pickle.loads(pickle.dumps(model))
    with torch.no_grad():
        assert torch.equal(restored(clip), model(clip))
        assert torch.equal(copy.deepcopy(model)(clip), model(clip))


_SMALL_RESNET = dict(stem_dim_out=8, head_pool=nn.AdaptiveAvgPool3d, model_num_class=3)
_SMALL_SLOWFAST = dict(stem_dim_outs=(16, 2), head_pool=nn.AdaptiveAvgPool3d, model_num_class=3)
_SMALL_X3D = dict(input_clip_length=4, input_crop_size=32, model_num_class=3, head_dim_out=32)
_SLOWFAST_CLIPS = ((2, 3, 2, 32, 32), (2, 3, 8, 32, 32))


@pytest.mark.parametrize(
    "name, kwargs, input_shapes",
    [
        ("slow_r50", _SMALL_RESNET, ((2, 3, 4, 32, 32),)),
        ("c2d_r50", _SMALL_RESNET, ((2, 3, 4, 32, 32),)),
        ("i3d_r50", _SMALL_RESNET, ((2, 3, 4, 32, 32),)),
        ("csn_r101", _SMALL_RESNET, ((2, 3, 8, 32, 32),)),
        ("r2plus1d_r50", _SMALL_RESNET, ((2, 3, 4, 32, 32),)),
        ("slowfast_r50", _SMALL_SLOWFAST, _SLOWFAST_CLIPS),
        ("slowfast_16x8_r101_50_50", _SMALL_SLOWFAST, _SLOWFAST_CLIPS),
        # x3d_s/m differ from x3d_xs only in the clip size overridden here, x3d_l only in depth (checked on
        # the meta device in test_hub_state_dicts); slowfast_r101 is covered by the 16x8 R101 variant
        ("x3d_xs", _SMALL_X3D, ((2, 3, 4, 32, 32),)),
    ],
)
def test_hub_builders_accept_overrides(name, kwargs, input_shapes):
    from pyvideo.models import hub

    model = getattr(hub, name)(**kwargs)
    clips = [torch.randn(shape) for shape in input_shapes]
    out = model(clips[0] if len(clips) == 1 else clips)
    assert out.shape == (2, 3)
    _backward_reaches_every_parameter(model, out)


@pytest.mark.parametrize(
    "name, kwargs, input_shapes",
    [
        ("slow_r50_detection", dict(stem_dim_out=8, head_pool_kernel_size=(2, 1, 1)), ((2, 3, 2, 32, 32),)),
        ("slowfast_r50_detection", dict(stem_dim_outs=(16, 2), head_pool_kernel_sizes=((2, 1, 1), (8, 1, 1))), _SLOWFAST_CLIPS),
    ],
)
def test_hub_detectors_accept_overrides(name, kwargs, input_shapes):
    from pyvideo.models import hub

    model = getattr(hub, name)(model_num_class=3, **kwargs)
    clips = [torch.randn(shape) for shape in input_shapes]
    out = model(clips[0] if len(clips) == 1 else clips, _boxes())
    assert out.shape == (3, 3)
    _backward_reaches_every_parameter(model, out)
