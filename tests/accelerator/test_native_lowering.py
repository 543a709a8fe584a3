"""lower_to_native: deploy-form models running on the native kernels equal their deploy form (fp32, rel 1e-4)."""
import pytest
import torch
import torch.nn as nn

from pyvideo.accelerator.deployable import FusedConv3d
from pyvideo.accelerator.deployment import convert_to_deployable_form, transmute_model
from pyvideo.accelerator.native import NativeConv3d, NativeSqueezeExcitation, lower_to_native
from pyvideo.layers.accelerator.mobile_cpu.convolutions import Conv3d3x3x3DwBnAct, Conv3dPwBnAct
from pyvideo.models.accelerator.mobile_cpu.efficient_x3d import create_x3d
from pyvideo.models.accelerator.mobile_cpu.residual_blocks import X3dBottleneckBlock


def randomize_batchnorm(model: nn.Module, seed: int) -> nn.Module:
    """Non-trivial BatchNorm statistics, so that the folded weights differ from the raw ones."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(torch.rand(m.num_features, generator=g) * 0.4 - 0.2)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.rand(m.num_features, generator=g) * 0.4 - 0.2)
    return model.eval()


def relative_error(actual, expected) -> float:
    return float((actual - expected).abs().max() / expected.abs().max().clamp_min(1e-12))


def assert_native_equals_deploy(deploy: nn.Module, shapes, expected_native: int):
    native = lower_to_native(deploy)
    assert sum(isinstance(m, NativeConv3d) for m in native.modules()) == expected_native
    assert any(isinstance(m, FusedConv3d) for m in deploy.modules())  # the deploy model itself is left alone
    g = torch.Generator().manual_seed(11)
    for shape in shapes:
        x = torch.randn(*shape, generator=g)
        with torch.no_grad():
            expected, actual = deploy(x), native(x)
        assert actual.shape == expected.shape
        assert relative_error(actual, expected) < 1e-4, shape
    return native


@pytest.mark.parametrize("expansion", ["XS", "S"])
def test_efficient_x3d_runs_on_native_kernels(expansion):
    torch.manual_seed(0)
    model = randomize_batchnorm(create_x3d(expansion=expansion, num_classes=7), seed=1)
    deploy = convert_to_deployable_form(model, torch.randn(1, 3, 4, 32, 32))
    fused = sum(isinstance(m, FusedConv3d) for m in deploy.modules())
    native = assert_native_equals_deploy(deploy, [(1, 3, 4, 32, 32), (2, 3, 3, 37, 29)], fused)
    assert not any(isinstance(m, FusedConv3d) for m in native.modules())  # every conv is covered
    assert sum(isinstance(m, NativeSqueezeExcitation) for m in native.modules()) > 5
    assert fused >= 3 * (3 + 5 + 11 + 7)


def test_bottleneck_block_with_projection_and_se():
    torch.manual_seed(2)
    block = randomize_batchnorm(
        X3dBottleneckBlock(in_channels=12, mid_channels=27, out_channels=20, use_residual=True,
                           spatial_stride=2, se_ratio=0.0625, act_functions=("relu", "swish", "relu")),
        seed=3,
    )
    deploy = convert_to_deployable_form(block, torch.randn(1, 12, 3, 9, 9))
    fused = sum(isinstance(m, FusedConv3d) for m in deploy.modules())
    assert_native_equals_deploy(deploy, [(1, 12, 3, 9, 9), (2, 12, 4, 11, 7)], fused)


@pytest.mark.parametrize("activation", ["relu", "swish", "hswish", "identity"])
def test_conv_blocks_chain(activation):
    torch.manual_seed(4)
    model = randomize_batchnorm(nn.Sequential(
        Conv3dPwBnAct(8, 24, activation=activation),
        Conv3d3x3x3DwBnAct(24, activation=activation),
        Conv3dPwBnAct(24, 8, activation="identity"),
    ), seed=5)
    deploy = convert_to_deployable_form(model, torch.randn(1, 8, 2, 6, 6))
    assert_native_equals_deploy(deploy, [(1, 8, 2, 6, 6), (1, 8, 3, 5, 7)], 3)


def test_intermediate_activations_stay_channels_last():
    torch.manual_seed(6)
    deploy = convert_to_deployable_form(
        randomize_batchnorm(nn.Sequential(Conv3dPwBnAct(4, 16), Conv3d3x3x3DwBnAct(16), Conv3dPwBnAct(16, 4)), 7),
        torch.randn(1, 4, 2, 6, 6))
    native = lower_to_native(deploy)
    seen = []
    for m in native.modules():
        if isinstance(m, NativeConv3d):
            m.register_forward_hook(lambda mod, inp, out: seen.append((inp[0], out)))
    native(torch.randn(1, 4, 2, 6, 6))
    assert len(seen) == 3
    for i, (inp, out) in enumerate(seen):
        assert out.is_contiguous(memory_format=torch.channels_last_3d)
        if i > 0:  # each layer reads its producer's output in place
            assert inp.data_ptr() == seen[i - 1][1].data_ptr()


def test_vanilla_x3d_xs_through_the_transmuter():
    hub = pytest.importorskip("pyvideo.models.hub")
    torch.manual_seed(8)
    model = randomize_batchnorm(hub.x3d_xs(), seed=9)
    transmute_model(model)
    x = torch.randn(1, 3, 4, 160, 160)  # the head's 4x5x5 pool needs the full 160 crop
    deploy = convert_to_deployable_form(model, x)
    native = lower_to_native(deploy)
    assert sum(isinstance(m, NativeConv3d) for m in native.modules()) > 40
    with torch.no_grad():
        assert relative_error(native(x), deploy(x)) < 1e-4


def test_rejects_models_not_in_deploy_form():
    with pytest.raises(ValueError, match="convert_to_deployable_form"):
        lower_to_native(nn.Sequential(nn.Conv3d(3, 4, 1)))
    with pytest.raises(TypeError):
        lower_to_native("model")
