"""Each efficient block's deploy form computes what its original form computes, at any input size."""
import copy

import pytest
import torch
import torch.nn as nn

from pyvideo.accelerator.deployable import FusedConv3d, FusedSqueezeExcitation, GlobalAvgPool
from pyvideo.accelerator.deployment import convert_to_deployable_form
from pyvideo.accelerator.efficient_blocks import EfficientBlockBase, NoOpConvertBlock
from pyvideo.layers.accelerator.mobile_cpu.activation_functions import supported_act_functions
from pyvideo.layers.accelerator.mobile_cpu.attention import SqueezeExcitation
from pyvideo.layers.accelerator.mobile_cpu.convolutions import (
    Conv3d3x1x1BnAct,
    Conv3d3x3x3DwBnAct,
    Conv3d5x1x1BnAct,
    Conv3dPwBnAct,
    Conv3dTemporalKernel1BnAct,
)
from pyvideo.layers.accelerator.mobile_cpu.fully_connected import FullyConnected
from pyvideo.layers.accelerator.mobile_cpu.pool import (
    AdaptiveAvgPool2d,
    AdaptiveAvgPool2dOutSize1,
    AdaptiveAvgPool3d,
    AdaptiveAvgPool3dOutSize1,
)
from pyvideo.models.accelerator.mobile_cpu.residual_blocks import X3dBottleneckBlock

from ._util import randomize_batchnorm, relative_error

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# (N, T, H, W): batch > 1, T = 1 and 2 (edge cases of the temporal kernels), odd spatial sizes.
SHAPES = [(1, 4, 8, 8), (2, 1, 7, 9), (3, 2, 5, 11), (2, 6, 9, 6)]

BLOCKS = {
    "pw_relu": lambda: Conv3dPwBnAct(6, 10, activation="relu"),
    "pw_bias_swish_nobn": lambda: Conv3dPwBnAct(6, 10, bias=True, activation="swish", use_bn=False),
    "dw_stride2_hswish": lambda: Conv3d3x3x3DwBnAct(6, spatial_stride=2, activation="hswish"),
    "dw_bias": lambda: Conv3d3x3x3DwBnAct(6, bias=True, activation="identity"),
    "tk1_3x3_stride2": lambda: Conv3dTemporalKernel1BnAct(6, 8, spatial_kernel=3, spatial_stride=2, spatial_padding=1),
    "tk1_grouped_dilated": lambda: Conv3dTemporalKernel1BnAct(
        6, 6, groups=3, spatial_kernel=3, spatial_padding=2, spatial_dilation=2, activation="swish"
    ),
    "3x1x1": lambda: Conv3d3x1x1BnAct(6, 8, activation="relu"),
    "3x1x1_depthwise": lambda: Conv3d3x1x1BnAct(6, 6, groups=6, activation="identity"),
    "5x1x1_depthwise": lambda: Conv3d5x1x1BnAct(6, 6, groups=6),
    "5x1x1": lambda: Conv3d5x1x1BnAct(6, 4, bias=True, activation="hswish", use_bn=False),
    "se_3d": lambda: SqueezeExcitation(6, num_channels_reduced=3, is_3d=True),
    "pool3d_out1": AdaptiveAvgPool3dOutSize1,
    "pool3d": lambda: AdaptiveAvgPool3d((1, 2, 2)),
    "x3d_block_stride2_se": lambda: X3dBottleneckBlock(6, 12, 8, spatial_stride=2, act_functions=("relu", "swish", "relu")),
    "x3d_block_identity_shortcut": lambda: X3dBottleneckBlock(6, 10, 6, se_ratio=0, act_functions=("hswish", "relu", "swish")),
    "x3d_block_no_residual": lambda: X3dBottleneckBlock(6, 10, 4, use_residual=False, se_ratio=0.25),
}


def _build(name):
    generator = torch.Generator().manual_seed(sum(map(ord, name)))
    torch.manual_seed(sum(map(ord, name)))
    block = randomize_batchnorm(BLOCKS[name](), generator).eval()
    return block, generator


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_deploy_form_equals_original_at_every_shape(name):
    block, generator = _build(name)
    deploy = copy.deepcopy(block)
    deploy.convert((1, 6, 4, 8, 8))  # the size is only informative: other sizes must work too
    for n, t, h, w in SHAPES:
        x = torch.randn(n, 6, t, h, w, generator=generator)
        with torch.no_grad():
            expected, actual = block(x), deploy(x)
        assert actual.shape == expected.shape
        assert relative_error(actual, expected) < 1e-4, (name, (n, t, h, w))


@pytest.mark.parametrize("name", ["pw_relu", "dw_stride2_hswish", "se_3d", "pool3d_out1", "x3d_block_stride2_se"])
def test_convert_twice_raises(name):
    block, _ = _build(name)
    block.convert((1, 6, 4, 8, 8))
    with pytest.raises(RuntimeError, match="already converted"):
        block.convert((1, 6, 4, 8, 8))


def test_conv_block_deploy_form_is_one_fused_conv_with_folded_bn():
    original, _ = _build("pw_bias_swish_nobn")
    block, _ = _build("dw_bias")
    conv, bn = block.kernel.conv, block.kernel.bn
    expected_scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    expected_weight = conv.weight * expected_scale.reshape(-1, 1, 1, 1, 1)
    expected_bias = (conv.bias - bn.running_mean) * expected_scale + bn.bias
    block.convert((1, 6, 4, 8, 8))
    assert isinstance(block.kernel, FusedConv3d) and block.kernel.kind == "depthwise"
    torch.testing.assert_close(block.kernel.weight, expected_weight)
    torch.testing.assert_close(block.kernel.bias, expected_bias)
    weight = original.kernel.conv.weight.clone()
    original.convert(None)
    assert original.kernel.activation == "swish" and original.kernel.kind == "pointwise"
    torch.testing.assert_close(original.kernel.weight, weight)


def test_x3d_block_deploy_fusions():
    block, _ = _build("x3d_block_stride2_se")
    block.convert((1, 6, 4, 8, 8))
    conv_2 = block.layers.conv_2.kernel
    assert conv_2.adds_residual and conv_2.activation == "relu"
    assert isinstance(block.layers.se.se, FusedSqueezeExcitation) and block.layers.se.se.activation == "swish"
    assert isinstance(block.layers.act_func_1, nn.Identity) and isinstance(block.final_act, nn.Identity)
    no_se, _ = _build("x3d_block_identity_shortcut")
    no_se.convert((1, 6, 4, 8, 8))
    assert no_se.layers.conv_1.kernel.activation == "relu"  # act_functions[1] fused into the depthwise conv
    assert no_se.layers.conv_2.kernel.activation == "swish"


@pytest.mark.parametrize("name", sorted(supported_act_functions))
def test_activation_blocks(name):
    x = torch.linspace(-5, 5, 101)
    expected = {
        "relu": x.clamp_min(0),
        "swish": x / (1 + torch.exp(-x)),
        "hswish": x * (x + 3).clamp(0, 6) / 6,
        "identity": x,
    }[name]
    block = supported_act_functions[name]()
    torch.testing.assert_close(block(x.clone()), expected)
    block.convert("any", "arguments", are="accepted")
    torch.testing.assert_close(block(x.clone()), expected)


def test_unknown_activation_raises():
    with pytest.raises(ValueError, match="not in supported_act_functions"):
        Conv3dPwBnAct(3, 4, activation="gelu")


def test_pools_fc_and_noop():
    x = torch.randn(2, 5, 3, 7, 9)
    pool = AdaptiveAvgPool3dOutSize1()
    pool.convert((2, 5, 3, 7, 9))
    assert isinstance(pool.pool, GlobalAvgPool)
    torch.testing.assert_close(pool(x), x.mean(dim=(2, 3, 4), keepdim=True))
    pool2d = AdaptiveAvgPool2dOutSize1()
    pool2d.convert((2, 5, 7, 9))
    torch.testing.assert_close(pool2d(x[:, :, 0]), x[:, :, 0].mean(dim=(2, 3), keepdim=True))
    adaptive2d = AdaptiveAvgPool2d(1)
    adaptive2d.convert()
    torch.testing.assert_close(adaptive2d(x[:, :, 0]), x[:, :, 0].mean(dim=(2, 3), keepdim=True))
    fc = FullyConnected(9, 4)
    assert set(fc.state_dict()) == {"model.weight", "model.bias"}
    torch.testing.assert_close(fc(x), x @ fc.model.weight.t() + fc.model.bias)
    assert isinstance(NoOpConvertBlock(nn.ReLU()), EfficientBlockBase)


def test_convert_to_deployable_form_leaves_the_original_untouched_and_in_train_mode():
    torch.manual_seed(0)
    model = nn.Sequential(Conv3dPwBnAct(3, 4), Conv3d3x3x3DwBnAct(4)).train()
    deploy = convert_to_deployable_form(model, torch.randn(1, 3, 2, 5, 5))
    assert model.training and not deploy.training
    assert isinstance(model[0].kernel, nn.Sequential) and isinstance(deploy[0].kernel, FusedConv3d)
    with pytest.raises(TypeError, match="input_tensor"):
        convert_to_deployable_form(model, [1, 2])
