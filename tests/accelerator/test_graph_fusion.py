"""Graph fusion of residual adds and squeeze-excitations written as plain tensor code (transmuted models)."""
import copy
import operator

import torch
import torch.nn as nn

from pyvideo.accelerator.deployable import FusedConv3d, FusedSqueezeExcitation
from pyvideo.accelerator.deployable.graph import DeployTracer
from pyvideo.accelerator.deployment import convert_to_deployable_form, transmute_model
from pyvideo.layers.swish import Swish

from ._util import randomize_batchnorm


class _PlainSE(nn.Module):
    def __init__(self, channels, hidden):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.fc0, self.act, self.fc1, self.gate = nn.Conv3d(channels, hidden, 1), nn.ReLU(), nn.Conv3d(hidden, channels, 1), nn.Sigmoid()

    def forward(self, x):
        return x * self.gate(self.fc1(self.act(self.fc0(self.pool(x)))))


class _Block(nn.Module):
    """conv_a -> BN -> ReLU -> depthwise -> BN -> SE -> Swish -> conv_c -> BN, + shortcut, ReLU."""

    def __init__(self, channels, se=True, shortcut_user=False):
        super().__init__()
        wide = 2 * channels
        self.conv_a, self.norm_a, self.act_a = nn.Conv3d(channels, wide, 1, bias=False), nn.BatchNorm3d(wide), nn.ReLU()
        self.conv_b, self.norm_b = nn.Conv3d(wide, wide, 3, padding=1, groups=wide, bias=False), nn.BatchNorm3d(wide)
        self.se = _PlainSE(wide, 4) if se else nn.Identity()
        self.act_b = Swish()
        self.conv_c, self.norm_c = nn.Conv3d(wide, channels, 1, bias=False), nn.BatchNorm3d(channels)
        self.activation = nn.ReLU()
        self.shortcut_user = shortcut_user

    def forward(self, x):
        y = self.act_b(self.se(self.norm_b(self.conv_b(self.act_a(self.norm_a(self.conv_a(x)))))))
        z = self.norm_c(self.conv_c(y))
        out = self.activation(x + z)
        return out + z if self.shortcut_user else out  # z read twice: its conv cannot take the residual


def _deploy(model, shape=(1, 6, 4, 9, 11)):
    """(the original model, the deploy form of its transmuted copy)."""
    model = randomize_batchnorm(model, torch.Generator().manual_seed(0)).eval()
    transmuted = copy.deepcopy(model)
    transmute_model(transmuted)
    return model, convert_to_deployable_form(transmuted, torch.randn(shape))


def _call_targets(module):
    return [n.target for n in DeployTracer().trace(module).nodes if n.op == "call_function"]


def test_block_fuses_se_and_residual_and_stays_exact_at_other_sizes():
    torch.manual_seed(0)
    model, deploy = _deploy(nn.Sequential(_Block(6), _Block(6, se=False)))
    ses = [m for m in deploy.modules() if isinstance(m, FusedSqueezeExcitation)]
    assert len(ses) == 1 and ses[0].hidden_activation == "relu" and ses[0].activation == "swish"
    residual = [m for m in deploy.modules() if isinstance(m, FusedConv3d) and m.adds_residual]
    assert len(residual) == 2 and all(m.activation == "relu" for m in residual)
    assert not {operator.add, operator.mul} & set(_call_targets(deploy))
    assert not any(type(m) in (nn.ReLU, nn.Sigmoid, Swish, nn.Identity) for m in deploy.modules())
    for shape in [(1, 6, 4, 9, 11), (3, 6, 2, 5, 7), (2, 6, 1, 1, 1)]:
        x = torch.randn(shape)
        with torch.no_grad():
            expected, got = model(x), deploy(x)
        assert float((got - expected).abs().max() / expected.abs().max()) < 1e-5, shape
    kept = deploy.state_dict()
    assert torch.equal(kept["0.conv_a.kernel.weight"], deploy.get_submodule("0.conv_a.kernel").weight)
    assert "0.se.fused_se.fc0.weight" in kept and not any(k.startswith("0.se.fc0") for k in kept)


def test_conv_whose_output_is_also_read_elsewhere_keeps_its_add():
    torch.manual_seed(1)
    model, deploy = _deploy(_Block(6, se=False, shortcut_user=True))
    assert operator.add in _call_targets(deploy)
    x = torch.randn(2, 6, 3, 5, 5)
    with torch.no_grad():
        torch.testing.assert_close(deploy(x), model(x), rtol=1e-5, atol=1e-5)


def test_broadcasting_add_is_not_fused():
    class Bias(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv3d(4, 4, 1)
            self.pool = nn.AdaptiveAvgPool3d(1)

        def forward(self, x):
            return self.conv(x) + self.pool(x)  # [N,C,T,H,W] + [N,C,1,1,1]

    model, deploy = _deploy(Bias(), shape=(1, 4, 2, 3, 3))
    assert not any(isinstance(m, FusedConv3d) and m.adds_residual for m in deploy.modules())
    x = torch.randn(1, 4, 2, 3, 3)
    with torch.no_grad():
        torch.testing.assert_close(deploy(x), model(x))


def test_models_without_patterns_are_returned_as_modules_not_graphs():
    model = nn.Sequential(nn.Conv3d(3, 4, 1), nn.ReLU()).eval()
    deploy = convert_to_deployable_form(model, torch.randn(1, 3, 2, 4, 4))
    assert isinstance(deploy, nn.Sequential)
