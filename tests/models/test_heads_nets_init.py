"""Heads, generic containers, stems and weight initialisation."""
import math

import pytest
import torch
import torch.nn as nn

from pyvideo.models import MultiPathWayWithFuse, Net, init_net_weights
from pyvideo.models.head import (
    ResNetBasicHead,
    SequencePool,
    create_res_basic_head,
    create_res_roi_pooling_head,
    create_vit_basic_head,
)
from pyvideo.models.net import DetectionBBoxNetwork
from pyvideo.models.resnet import create_bottleneck_block, create_res_block
from pyvideo.models.stem import create_acoustic_res_basic_stem, create_conv_patch_embed, create_res_basic_stem
from pyvideo.models.weight_init import c2_msra_fill, c2_xavier_fill


def test_basic_head_projects_every_position():
    torch.manual_seed(0)
    head = create_res_basic_head(
        in_features=6, out_features=3, pool=None, dropout_rate=0.0, output_with_global_average=False
    )
    x = torch.randn(2, 6, 2, 3, 3)
    expected = torch.einsum("ncthw,kc->nkthw", x, head.proj.weight) + head.proj.bias[None, :, None, None, None]
    assert torch.allclose(head(x), expected, atol=1e-6)


def test_basic_head_pool_softmax_and_global_average():
    head = create_res_basic_head(in_features=4, out_features=5, pool_kernel_size=(1, 2, 2), activation=nn.Softmax)
    head.eval()
    x = torch.randn(3, 4, 2, 4, 4)
    out = head(x)
    assert out.shape == (3, 5)
    assert torch.allclose(out.sum(1), torch.ones(3))  # softmax per position, averaged
    adaptive = create_res_basic_head(in_features=4, out_features=5, pool=nn.AdaptiveAvgPool3d, output_size=(1, 2, 2))
    assert isinstance(adaptive.pool, nn.AdaptiveAvgPool3d) and adaptive.pool.output_size == (1, 2, 2)
    assert create_res_basic_head(in_features=4, out_features=5, dropout_rate=0.0).dropout is None


def test_roi_head_on_a_box_over_the_whole_map_equals_global_max_then_linear():
    torch.manual_seed(0)
    head = create_res_roi_pooling_head(
        in_features=4, out_features=2, resolution=(2, 2), spatial_scale=1.0, pool=None, dropout_rate=0.0,
        output_with_global_average=False,
    )
    features = torch.rand(1, 4, 1, 2, 2)
    # one sample per bin; with aligned=False pixel centres sit at integer coordinates, so this box's
    # 2x2 bin centres land exactly on the 4 feature cells
    head.roi_layer.sampling_ratio = 1
    box = torch.tensor([[0.0, -0.5, -0.5, 1.5, 1.5]])
    out = head(features, box)
    expected = head.proj(features.amax(dim=(2, 3, 4)))
    assert torch.allclose(out.reshape(1, -1), expected, atol=1e-5)


def test_detection_network_flattens_per_box():
    class Backbone(nn.Module):
        def forward(self, x):
            return x

    class Head(nn.Module):
        def forward(self, x, boxes):
            return torch.ones(boxes.shape[0], 3, 1, 1, 1)

    out = DetectionBBoxNetwork(Backbone(), Head())(torch.zeros(1), torch.zeros(4, 5))
    assert out.shape == (4, 3)


def test_vit_head_and_sequence_pool():
    tokens = torch.arange(24.0).reshape(2, 3, 4)
    assert torch.equal(SequencePool("cls")(tokens), tokens[:, 0])
    assert torch.equal(SequencePool("mean")(tokens), tokens.mean(1))
    with pytest.raises(ValueError):
        SequencePool("max")
    head = create_vit_basic_head(in_features=4, out_features=2, seq_pool_type="mean", dropout_rate=0.0)
    assert torch.allclose(head(tokens), head.proj(tokens.mean(1)))
    assert create_vit_basic_head(in_features=4, out_features=2, seq_pool_type="none")(tokens).shape == (2, 3, 2)
    with pytest.raises(ValueError, match="seq_pool_type"):
        create_vit_basic_head(in_features=4, out_features=2, seq_pool_type="max")


def test_patch_embed_tokens_are_conv_positions():
    embed = create_conv_patch_embed(in_channels=3, out_channels=8, conv_kernel_size=(1, 4, 4), conv_stride=(1, 4, 4), conv_padding=(0, 0, 0))
    x = torch.randn(2, 3, 2, 8, 8)
    tokens = embed(x)
    assert tokens.shape == (2, 2 * 2 * 2, 8)
    assert torch.allclose(tokens, embed.patch_model(x).flatten(2).transpose(1, 2))
    assert list(embed.state_dict()) == ["patch_model.weight", "patch_model.bias"]


def test_stems():
    stem = create_res_basic_stem(in_channels=3, out_channels=8)
    assert stem(torch.randn(1, 3, 4, 16, 16)).shape == (1, 8, 4, 4, 4)
    acoustic = create_acoustic_res_basic_stem(in_channels=1, out_channels=4, pool=None)
    assert [c.kernel_size for c in acoustic.conv.convs] == [(3, 1, 1), (1, 7, 7)]
    assert acoustic(torch.randn(1, 1, 8, 1, 20)).shape == (1, 4, 8, 1, 20)


def test_multipathway_inplace_semantics():
    blocks = nn.ModuleList([nn.Identity(), None])
    a, b = torch.zeros(1), torch.ones(1)
    inputs = [a, b]
    out = MultiPathWayWithFuse(multipathway_blocks=nn.ModuleList([_AddOne(), _AddOne()]), multipathway_fusion=None)(inputs)
    assert out is inputs and torch.equal(inputs[0], torch.ones(1))  # upstream: the list is overwritten
    inputs = [a, b]
    out = MultiPathWayWithFuse(
        multipathway_blocks=nn.ModuleList([_AddOne(), _AddOne()]), multipathway_fusion=None, inplace=False
    )(inputs)
    assert inputs[0] is a and torch.equal(out[1], torch.full((1,), 2.0))
    with pytest.raises(ValueError, match="expected 2 pathways"):
        MultiPathWayWithFuse(multipathway_blocks=blocks, multipathway_fusion=None)([a])
    with pytest.raises(TypeError, match="list"):
        MultiPathWayWithFuse(multipathway_blocks=blocks, multipathway_fusion=None)(a)


class _AddOne(nn.Module):
    def forward(self, x):
        return x + 1


def test_net_initialises_resnet_style():
    torch.manual_seed(0)
    block = create_res_block(dim_in=64, dim_inner=64, dim_out=256, bottleneck=create_bottleneck_block)
    net = Net(blocks=nn.ModuleList([block, nn.Flatten(), nn.Linear(4, 2000)]))
    branch = block.branch2
    assert torch.all(branch.norm_c.weight == 0) and torch.all(branch.norm_a.weight == 1)
    assert torch.all(block.branch1_norm.weight == 1) and torch.all(branch.norm_a.bias == 0)
    # MSRA fill: normal with std sqrt(2 / fan_out), fan_out = out_channels * kernel volume
    conv_b = branch.conv_b.weight  # 64 x 64 x 1 x 3 x 3
    assert abs(conv_b.std().item() - math.sqrt(2 / (64 * 9))) < 0.05 * math.sqrt(2 / (64 * 9))
    linear = net.blocks[2]
    assert abs(linear.weight.std().item() - 0.01) < 0.001 and torch.all(linear.bias == 0)


def test_xavier_flag_and_fill_bounds():
    linear = nn.Linear(300, 200)
    linear.xavier_init = True
    init_net_weights(nn.Sequential(linear))
    bound = math.sqrt(3 / 300)
    assert linear.weight.abs().max() <= bound and linear.weight.abs().max() > 0.9 * bound
    conv = nn.Conv2d(16, 32, 3)
    c2_msra_fill(conv)
    assert torch.all(conv.bias == 0)
    c2_xavier_fill(conv)
    assert conv.weight.abs().max() <= math.sqrt(3 / (16 * 9))
    with pytest.raises(ValueError, match="style"):
        init_net_weights(linear, style="xavier")


def test_vit_style_init():
    model = nn.Sequential(nn.Linear(100, 100), nn.LayerNorm(100))
    init_net_weights(model, init_std=0.02, style="vit")
    weight = model[0].weight
    assert weight.abs().max() <= 2.0 and abs(weight.std().item() - 0.02) < 0.003
    assert torch.all(model[1].weight == 1) and torch.all(model[0].bias == 0)


def test_basic_head_requires_proj():
    with pytest.raises(ValueError, match="proj"):
        ResNetBasicHead()
