"""Layers against straightforward reference computations."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from pyvideo.layers import ConcatFusion, ReduceFusion, make_fusion_layer
from pyvideo.layers.batch_norm import NaiveSyncBatchNorm1d, NaiveSyncBatchNorm3d
from pyvideo.layers.convolutions import Conv2plus1d, ConvReduce3D, create_conv_2plus1d
from pyvideo.layers.fusion import TemporalConcatFusion
from pyvideo.layers.nonlocal_net import create_nonlocal
from pyvideo.layers.squeeze_excitation import (
    SqueezeAndExcitationLayer2D,
    SqueezeExcitation,
    create_audio_2d_squeeze_excitation_block,
)
from pyvideo.layers.swish import Swish
from pyvideo.layers.utils import round_repeats, round_width


def test_swish_is_plain_x_sigmoid_x_with_ordinary_autograd():
    x = torch.linspace(-6, 6, 101, dtype=torch.float64, requires_grad=True)
    y = Swish()(x)
    assert torch.allclose(y, x * torch.sigmoid(x))
    assert torch.allclose(y, F.silu(x))
    assert type(y.grad_fn).__name__ == "MulBackward0"  # no custom autograd.Function
    (grad,) = torch.autograd.grad(y.sum(), x)
    sig = torch.sigmoid(x.detach())
    assert torch.allclose(grad, sig * (1 + x.detach() * (1 - sig)))


@pytest.mark.parametrize(
    "width, multiplier, expected",
    # hand-computed: 54*0.0625=3.375 -> min 8; 432*0.0625=27 -> 24 < 0.9*27 -> 32; 12*2=24; 216*0.0625=13.5 -> 16
    [(54, 0.0625, 8), (432, 0.0625, 32), (12, 2.0, 24), (216, 0.0625, 16), (24, 2.0, 48), (100, 0, 100)],
)
def test_round_width(width, multiplier, expected):
    assert round_width(width, multiplier) == expected


def test_round_width_ceil_and_round_repeats():
    assert round_width(10, 1.0, ceil=True) == 16
    assert round_repeats(5, 2.2) == 11 and round_repeats(3, 2.2) == 7 and round_repeats(3, 0) == 3


def test_conv2plus1d_runs_temporal_then_spatial():
    torch.manual_seed(0)
    module = create_conv_2plus1d(in_channels=3, out_channels=6, inner_channels=4, stride=(2, 1, 2), norm=None)
    x = torch.randn(2, 3, 6, 8, 8)
    expected = module.conv_xy(torch.relu(module.conv_t(x)))
    assert torch.allclose(module(x), expected)
    assert module.conv_t.weight.shape == (4, 3, 3, 1, 1) and module.conv_xy.weight.shape == (6, 4, 1, 3, 3)
    assert module(x).shape == (2, 6, 3, 8, 4)

    xy_first = create_conv_2plus1d(in_channels=3, out_channels=6, inner_channels=4, conv_xy_first=True)
    assert xy_first.conv_xy.weight.shape == (4, 3, 1, 3, 3) and xy_first.conv_t.weight.shape == (6, 4, 3, 1, 1)
    xy_first.eval()
    assert torch.allclose(xy_first(x), xy_first.conv_t(xy_first.activation(xy_first.norm(xy_first.conv_xy(x)))))


def test_conv2plus1d_rejects_groups_and_dilation():
    with pytest.raises(ValueError, match="groups"):
        create_conv_2plus1d(in_channels=4, out_channels=4, groups=2)
    with pytest.raises(ValueError, match="dilation"):
        create_conv_2plus1d(in_channels=4, out_channels=4, dilation=(2, 1, 1))
    with pytest.raises(ValueError, match="conv_t and conv_xy"):
        Conv2plus1d(conv_t=nn.Identity())


def test_conv_reduce_3d_sum_and_cat():
    torch.manual_seed(0)
    kernels, paddings = ((3, 1, 1), (1, 3, 3)), ((1, 0, 0), (0, 1, 1))
    summed = ConvReduce3D(in_channels=2, out_channels=5, kernel_size=kernels, padding=paddings, bias=(True, False))
    x = torch.randn(1, 2, 4, 6, 6)
    assert torch.allclose(summed(x), summed.convs[0](x) + summed.convs[1](x))
    assert summed.convs[1].bias is None
    concatenated = ConvReduce3D(
        in_channels=2, out_channels=5, kernel_size=kernels, padding=paddings, reduction_method="cat"
    )
    assert torch.equal(concatenated(x), torch.cat([concatenated.convs[0](x), concatenated.convs[1](x)], 1))
    with pytest.raises(ValueError, match="stride has 1 entries"):
        ConvReduce3D(in_channels=2, out_channels=5, kernel_size=kernels, stride=((1, 1, 1),))
    with pytest.raises(ValueError, match="reduction_method"):
        ConvReduce3D(in_channels=2, out_channels=5, kernel_size=kernels, reduction_method="max")


def test_squeeze_excitation_matches_formula():
    torch.manual_seed(0)
    se = SqueezeExcitation(num_channels=6, num_channels_reduced=3, is_3d=True)
    x = torch.randn(2, 6, 3, 4, 5)
    w1, b1 = se.block[0].weight.flatten(1), se.block[0].bias
    w2, b2 = se.block[2].weight.flatten(1), se.block[2].bias
    squeezed = x.mean(dim=(2, 3, 4))
    gate = torch.sigmoid(torch.relu(squeezed @ w1.T + b1) @ w2.T + b2)
    assert torch.allclose(se(x), x * gate[:, :, None, None, None], atol=1e-6)
    assert [k for k in se.state_dict()] == ["block.0.weight", "block.0.bias", "block.2.weight", "block.2.bias"]
    assert SqueezeExcitation(num_channels=8).block[0].out_channels == 4  # default reduction ratio 2


def test_squeeze_and_excitation_2d():
    torch.manual_seed(0)
    se = SqueezeAndExcitationLayer2D(in_planes=32, reduction_ratio=8)
    assert se.excitation[0].out_channels == 4
    x = torch.randn(2, 32, 5, 5)
    gate = se.excitation(x.mean(dim=(2, 3), keepdim=True))
    assert torch.allclose(se(x), x * gate)
    assert SqueezeAndExcitationLayer2D(in_planes=32, reduction_ratio=None, reduced_planes=5).excitation[0].out_channels == 5
    with pytest.raises(ValueError, match="exactly one"):
        SqueezeAndExcitationLayer2D(in_planes=32, reduction_ratio=8, reduced_planes=4)


def test_audio_2d_squeeze_excitation_block():
    with pytest.raises(ValueError, match="reduce them to 0"):
        create_audio_2d_squeeze_excitation_block(dim_in=4, dim_out=8, use_se=True)
    block = create_audio_2d_squeeze_excitation_block(dim_in=4, dim_out=8, use_se=True, se_reduction_ratio=4, conv_a_stride=2)
    assert block.branch1_conv.stride == (2, 2) and isinstance(block.branch2[5], SqueezeAndExcitationLayer2D)
    out = block(torch.randn(2, 4, 8, 8))
    assert out.shape == (2, 8, 4, 4) and (out >= 0).all()
    identity = create_audio_2d_squeeze_excitation_block(dim_in=8, dim_out=8).eval()
    assert identity.branch1_conv is None
    x = torch.randn(1, 8, 6, 6)
    with torch.no_grad():
        assert torch.allclose(identity(x), torch.relu(x + identity.branch2(x)))


def _reference_nonlocal(block, x, instantiation):
    """Per-sample matrix form of the non-local operation."""
    outputs = []
    for sample in x:
        flat = sample.flatten(1)  # C x P
        theta = block.conv_theta.weight.flatten(1) @ flat + block.conv_theta.bias[:, None]
        phi = block.conv_phi.weight.flatten(1) @ flat + block.conv_phi.bias[:, None]
        g = block.conv_g.weight.flatten(1) @ flat + block.conv_g.bias[:, None]
        affinity = theta.T @ phi  # P x P
        if instantiation == "softmax":
            affinity = torch.softmax(affinity / theta.shape[0] ** 0.5, dim=1)
        else:
            affinity = affinity / affinity.shape[1]
        attended = g @ affinity.T  # C_inner x P
        out = block.conv_out.weight.flatten(1) @ attended + block.conv_out.bias[:, None]
        outputs.append(sample + out.reshape(sample.shape))
    return torch.stack(outputs)


@pytest.mark.parametrize("instantiation", ["softmax", "dot_product"])
def test_nonlocal_matches_matrix_reference(instantiation):
    torch.manual_seed(0)
    block = create_nonlocal(dim_in=6, dim_inner=3, instantiation=instantiation, norm=None)
    x = torch.randn(2, 6, 2, 3, 3, dtype=torch.float64)
    block = block.double()
    assert torch.allclose(block(x), _reference_nonlocal(block, x, instantiation))


def test_nonlocal_with_pool_keeps_input_shape_and_validates():
    block = create_nonlocal(dim_in=4, dim_inner=2, pool_size=(1, 2, 2))
    x = torch.randn(1, 4, 2, 4, 4)
    assert block(x).shape == x.shape  # the residual uses the unpooled input
    with pytest.raises(ValueError, match="instantiation"):
        create_nonlocal(dim_in=4, dim_inner=2, instantiation="gaussian")


def test_fusion_layers():
    a, b = torch.tensor([[1.0, 5.0]]), torch.tensor([[3.0, 2.0]])
    assert torch.equal(make_fusion_layer("concat", [2, 2])([a, b]), torch.tensor([[1.0, 5.0, 3.0, 2.0]]))
    assert make_fusion_layer("concat", [2, 3]).output_dim == 5
    assert torch.equal(make_fusion_layer("max", [2, 2])([a, b]), torch.tensor([[3.0, 5.0]]))
    assert torch.equal(make_fusion_layer("sum", [2, 2])([a, b]), torch.tensor([[4.0, 7.0]]))
    assert torch.equal(make_fusion_layer("prod", [2, 2])([a, b]), torch.tensor([[3.0, 10.0]]))
    temporal = make_fusion_layer("temporal_concat", [2, 2])
    assert isinstance(temporal, TemporalConcatFusion) and temporal.output_dim == 2
    assert temporal([torch.zeros(1, 3, 2), torch.ones(1, 4, 2)]).shape == (1, 7, 2)
    assert isinstance(make_fusion_layer("sum", [2, 2]), ReduceFusion)
    assert isinstance(make_fusion_layer("concat", [1]), ConcatFusion)
    with pytest.raises(NotImplementedError, match="mean"):
        make_fusion_layer("mean", [2, 2])
    with pytest.raises(ValueError, match="equal feature dims"):
        make_fusion_layer("max", [2, 3])


def test_naive_sync_batch_norm_is_plain_bn_in_a_single_process():
    torch.manual_seed(0)
    sync_bn, plain_bn = NaiveSyncBatchNorm3d(num_features=4), nn.BatchNorm3d(4)
    x = torch.randn(3, 4, 2, 3, 3)
    assert torch.allclose(sync_bn(x), plain_bn(x))
    assert torch.allclose(sync_bn.running_mean, plain_bn.running_mean)
    with pytest.raises(ValueError, match="num_sync_devices must be None"):
        NaiveSyncBatchNorm1d(num_sync_devices=2, num_features=4)
    with pytest.raises(ValueError, match="needs num_sync_devices"):
        NaiveSyncBatchNorm1d(global_sync=False, num_features=4)
