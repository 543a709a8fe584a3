"""transmute_model on plain nn.Conv3d models, then convert_to_deployable_form: same outputs, fused BN/activations."""
import copy
import importlib

import pytest
import torch
import torch.nn as nn

from pyvideo.accelerator.deployable import FusedConv3d
from pyvideo.accelerator.deployment import EFFICIENT_BLOCK_TRANSMUTER_REGISTRY, convert_to_deployable_form, transmute_model
from pyvideo.accelerator.deployment.mobile_cpu.transmuter.transmuter_mobile_cpu import (
    EFFICIENT_BLOCK_TRANSMUTER_MOBILE_CPU,
    transmute_Conv3d3x1x1BnAct,
    transmute_Conv3d3x3x3DwBnAct,
    transmute_Conv3d5x1x1BnAct,
    transmute_Conv3dPwBnAct,
    transmute_Conv3dTemporalKernel1BnAct,
)
from pyvideo.layers.accelerator.mobile_cpu.convolutions import (
    Conv3d3x1x1BnAct,
    Conv3d3x3x3DwBnAct,
    Conv3d5x1x1BnAct,
    Conv3dPwBnAct,
    Conv3dTemporalKernel1BnAct,
)

from ._util import make_plain_model, randomize_batchnorm, relative_error

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CASES = [
    (nn.Conv3d(4, 6, 1), Conv3dPwBnAct),
    (nn.Conv3d(4, 4, 3, stride=(1, 2, 2), padding=1, groups=4), Conv3d3x3x3DwBnAct),
    (nn.Conv3d(4, 6, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)), Conv3dTemporalKernel1BnAct),
    (nn.Conv3d(4, 6, 1, stride=(1, 2, 2), bias=False), Conv3dTemporalKernel1BnAct),
    (nn.Conv3d(4, 6, (3, 1, 1), padding=(1, 0, 0)), Conv3d3x1x1BnAct),
    (nn.Conv3d(4, 4, (5, 1, 1), padding=(2, 0, 0), groups=4, bias=False), Conv3d5x1x1BnAct),
    (nn.Conv3d(4, 6, 3, padding=1), None),  # dense 3x3x3: no efficient block
    (nn.Conv3d(4, 4, 3, stride=(2, 1, 1), padding=1, groups=4), None),  # temporal stride
    (nn.Conv3d(4, 6, (3, 1, 1), padding=(0, 0, 0)), None),  # not 'same' padded
    (nn.Conv3d(4, 6, 1, padding_mode="reflect"), None),
    (nn.Linear(4, 6), None),
]


def test_registry_lists_the_mobile_cpu_transmuters_in_order():
    assert EFFICIENT_BLOCK_TRANSMUTER_REGISTRY["mobile_cpu"] is EFFICIENT_BLOCK_TRANSMUTER_MOBILE_CPU
    assert EFFICIENT_BLOCK_TRANSMUTER_MOBILE_CPU == [
        transmute_Conv3dPwBnAct,
        transmute_Conv3d3x3x3DwBnAct,
        transmute_Conv3dTemporalKernel1BnAct,
        transmute_Conv3d3x1x1BnAct,
        transmute_Conv3d5x1x1BnAct,
    ]
    with pytest.raises(ValueError, match="no transmuters"):
        transmute_model(nn.Sequential(), target_device="gpu")


@pytest.mark.parametrize("index", range(len(CASES)))
def test_each_conv_geometry_maps_to_exactly_the_right_block(index):
    conv, expected_type = CASES[index]
    results = [t(conv) for t in EFFICIENT_BLOCK_TRANSMUTER_MOBILE_CPU]
    matched = [r for r in results if r is not None]
    if expected_type is None:
        assert matched == []
        return
    assert len(matched) == 1 and type(matched[0]) is expected_type
    block = matched[0].eval()
    assert not hasattr(block.kernel, "bn")
    x = torch.randn(2, 4, 5, 7, 9)
    torch.testing.assert_close(block(x), conv(x))


def test_plain_model_transmuted_and_deployed_equals_original():
    torch.manual_seed(0)
    model = randomize_batchnorm(make_plain_model(), torch.Generator().manual_seed(1)).eval()
    transmuted = make_plain_model()
    transmuted.load_state_dict(model.state_dict())
    transmute_model(transmuted.eval())
    assert isinstance(transmuted[3], Conv3d5x1x1BnAct) and isinstance(transmuted[5].conv_b, Conv3d3x3x3DwBnAct)
    assert type(transmuted[0]) is nn.Conv3d
    deploy = convert_to_deployable_form(transmuted, torch.randn(1, 3, 4, 16, 16))
    # every BatchNorm and every activation that directly follows a conv is folded into it
    assert not any(isinstance(m, nn.BatchNorm3d) for m in deploy.modules())
    stem = deploy.get_submodule("0")
    assert isinstance(stem, FusedConv3d) and stem.activation == "relu"
    assert deploy.get_submodule("5.conv_b.kernel").activation == "hswish"
    # each block's `relu(shortcut(x) + conv_c(y))` became one conv with a fused residual and ReLU (graph fusion)
    residual_convs = [m for m in deploy.modules() if isinstance(m, FusedConv3d) and m.adds_residual]
    assert len(residual_convs) == 2 and all(m.activation == "relu" for m in residual_convs)
    assert not any(isinstance(m, nn.ReLU) for m in deploy.modules())
    for shape in [(1, 3, 4, 16, 16), (3, 3, 5, 13, 11)]:
        x = torch.randn(*shape)
        with torch.no_grad():
            assert relative_error(deploy(x), model(x)) < 1e-4, shape


def test_transmuter_leaves_efficient_blocks_alone():
    model = nn.Sequential(Conv3dPwBnAct(3, 4), nn.Conv3d(4, 4, 1))
    transmute_model(model)
    assert type(model[0].kernel.conv) is nn.Conv3d and isinstance(model[1], Conv3dPwBnAct)


def test_vanilla_x3d_xs_through_the_transmuter():
    hub = pytest.importorskip("pyvideo.models.hub")
    if not hasattr(hub, "x3d_xs"):
        pytest.skip("pyvideo.models.hub.x3d_xs not available yet")
    torch.manual_seed(0)
    model = randomize_batchnorm(hub.x3d_xs(), torch.Generator().manual_seed(2)).eval()
    transmuted = hub.x3d_xs()
    transmuted.load_state_dict(model.state_dict())
    transmute_model(transmuted.eval())
    x = torch.randn(1, 3, 4, 160, 160)
    deploy = convert_to_deployable_form(transmuted, x)
    fused = [m for m in deploy.modules() if isinstance(m, FusedConv3d)]
    assert len(fused) >= 60
    # every BatchNorm of X3D follows a conv, and so does the Swish of blocks without SE (behind an Identity)
    assert not any(isinstance(m, nn.BatchNorm3d) for m in deploy.modules())
    assert sum(m.activation == "swish" for m in fused) == 11  # the 26 - 15 blocks without SE
    with torch.no_grad():
        assert relative_error(deploy(x), model(x)) < 1e-4
    assert importlib.import_module("pyvideo.accelerator.deployment") is not None


def _small_csn():
    return importlib.import_module("pyvideo.models.csn").create_csn(model_num_class=10, head_pool_kernel_size=(1, 2, 2))


def _small_resnet():
    return importlib.import_module("pyvideo.models.resnet").create_resnet(model_num_class=10, head_pool_kernel_size=(4, 2, 2))


@pytest.mark.parametrize("builder,frames", [(_small_csn, 4), (_small_resnet, 8)], ids=["csn_r50", "slow_r50"])
def test_csn_and_resnet_through_the_transmuter(builder, frames):
    try:
        torch.manual_seed(0)
        model = randomize_batchnorm(builder(), torch.Generator().manual_seed(0)).eval()
        transmuted = builder()
    except (ImportError, AttributeError) as error:
        pytest.skip(f"pyvideo.models factories not available: {error}")
    transmuted.load_state_dict(model.state_dict())
    transmute_model(transmuted.eval())
    x = torch.randn(2, 3, frames, 64, 64)
    deploy = convert_to_deployable_form(transmuted, x[:1])
    assert not any(isinstance(m, (nn.BatchNorm3d, nn.Conv3d)) for m in deploy.modules())  # all folded / fused
    with torch.no_grad():
        assert relative_error(deploy(x), model(x)) < 1e-4


def test_slowfast_list_input_deploys_and_runs_per_layer_native():
    """SlowFast takes one clip per pathway. convert_to_deployable_form accepts the list (upstream fails on it): the
    graph passes trace one placeholder per clip, fold every BatchNorm and ReLU into its conv, and the deploy form
    still takes the list, at other batch sizes and clip lengths too. lower_to_native runs it; compile_native makes it
    one program with an input per clip (test_native_multi_input), and quantization wants a list of clips per
    calibration batch (test_quantization_list_input quantizes it)."""
    from pyvideo.accelerator.native import NativeConv3d, compile_native, lower_to_native
    from pyvideo.accelerator.quantization import quantize_model
    from pyvideo.models.slowfast import create_slowfast

    torch.manual_seed(0)
    model = create_slowfast(model_depth=18, stem_dim_outs=(16, 2), model_num_class=5, head_pool=nn.AdaptiveAvgPool3d)
    model = randomize_batchnorm(model, torch.Generator().manual_seed(0)).eval()
    transmuted = copy.deepcopy(model)
    transmute_model(transmuted)
    deploy = convert_to_deployable_form(transmuted, [torch.rand(1, 3, 2, 32, 32), torch.rand(1, 3, 8, 32, 32)])
    assert not any(isinstance(m, (nn.BatchNorm3d, nn.Conv3d, nn.ReLU)) for m in deploy.modules())
    assert sum(isinstance(m, FusedConv3d) for m in deploy.modules()) > 20
    native = lower_to_native(deploy)
    assert not any(isinstance(m, FusedConv3d) for m in native.modules())
    assert any(isinstance(m, NativeConv3d) for m in native.modules())
    with torch.no_grad():
        for clips in ([torch.rand(1, 3, 2, 32, 32), torch.rand(1, 3, 8, 32, 32)],
                      [torch.rand(2, 3, 4, 40, 36), torch.rand(2, 3, 16, 40, 36)]):
            expected = model(clips)
            assert relative_error(deploy(clips), expected) < 1e-4
            assert relative_error(native(clips), expected) < 1e-4
    assert compile_native(deploy).native_program.program.num_inputs == 2
    with pytest.raises(TypeError, match="takes a list of 2 clips.*single tensor"):  # one clip per pathway per batch
        quantize_model(deploy, [torch.rand(1, 3, 2, 32, 32)])
    with pytest.raises(TypeError, match="torch.Tensor or a list of tensors"):
        convert_to_deployable_form(transmuted, [torch.rand(1, 3, 2, 32, 32), "fast"])
