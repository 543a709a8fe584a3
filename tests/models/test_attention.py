import math

import numpy as np
import pytest
import torch
import torch.nn as nn

from pyvideo.layers.attention import Mlp, MultiScaleAttention, MultiScaleBlock, _AttentionPool
from pyvideo.layers.attention_torchscript import MultiScaleAttention as FusedAttention
from pyvideo.layers.attention_torchscript import ScriptableMultiScaleBlock
from pyvideo.layers.drop_path import DropPath, drop_path
from pyvideo.layers.mlp import make_multilayer_perceptron
from pyvideo.layers.positional_encoding import (
    PositionalEncoding,
    SpatioTemporalClsPositionalEncoding,
    get_1d_sincos_pos_embed_from_grid,
    get_2d_sincos_pos_embed,
    get_3d_sincos_pos_embed,
)
from pyvideo.layers.positional_encoding_torchscript import ScriptableSpatioTemporalClsPositionalEncoding


def _reference_attention(x, q_proj, k_proj, v_proj, out_proj, num_heads):
    """Textbook multi-head attention, written with explicit softmax."""
    q, k, v = q_proj(x), k_proj(x), v_proj(x)
    batch, length, dim = q.shape
    head_dim = dim // num_heads
    split = lambda t: t.reshape(batch, -1, num_heads, head_dim).transpose(1, 2)  # noqa: E731
    q, k, v = split(q), split(k), split(v)
    weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(head_dim), dim=-1)
    return out_proj((weights @ v).transpose(1, 2).reshape(batch, length, dim))


def test_attention_without_pooling_is_standard_multi_head_attention():
    torch.manual_seed(0)
    attn = MultiScaleAttention(12, num_heads=3, qkv_bias=True, residual_pool=False)
    x = torch.randn(2, 1 + 2 * 2 * 2, 12)
    out, thw = attn(x, [2, 2, 2])
    assert thw == [2, 2, 2] and attn.pool_q is None and attn.norm_k is None
    torch.testing.assert_close(out, _reference_attention(x, attn.q, attn.k, attn.v, attn.proj, 3))


def test_fused_qkv_and_pool_first_layouts_compute_the_same_attention():
    torch.manual_seed(0)
    separate = MultiScaleAttention(8, num_heads=2, qkv_bias=True, residual_pool=False)
    fused = MultiScaleAttention(8, num_heads=2, qkv_bias=True, residual_pool=False, separate_qkv=False)
    pool_first = MultiScaleAttention(8, num_heads=2, qkv_bias=True, residual_pool=False, pool_first=True)
    with torch.no_grad():
        fused.qkv.weight.copy_(torch.cat([separate.q.weight, separate.k.weight, separate.v.weight]))
        fused.qkv.bias.copy_(torch.cat([separate.q.bias, separate.k.bias, separate.v.bias]))
        fused.proj.load_state_dict(separate.proj.state_dict())
        pool_first.load_state_dict(separate.state_dict())
    x = torch.randn(3, 5, 8)
    want, _ = separate(x, [1, 1, 4])
    torch.testing.assert_close(fused(x, [1, 1, 4])[0], want)
    torch.testing.assert_close(pool_first(x, [1, 1, 4])[0], want)
    assert "qkv.weight" in fused.state_dict() and "q.weight" not in fused.state_dict()


def test_residual_pool_adds_the_query_before_the_output_projection():
    torch.manual_seed(0)
    plain = MultiScaleAttention(8, num_heads=2, residual_pool=False)
    residual = MultiScaleAttention(8, num_heads=2, residual_pool=True)
    residual.load_state_dict(plain.state_dict())
    x = torch.randn(1, 4, 8)
    difference = residual(x, [1, 2, 2])[0] - plain(x, [1, 2, 2])[0]
    torch.testing.assert_close(difference, plain.q(x) @ plain.proj.weight.t())


def test_attention_pool_keeps_cls_token_and_averages_the_grid():
    pool = _AttentionPool(nn.AvgPool3d((1, 2, 2), (1, 2, 2)), has_cls_embed=True, norm=None)
    grid = torch.arange(16.0).reshape(1, 1, 4, 4)  # t=1, h=4, w=4, one channel
    tokens = torch.cat([torch.tensor([[[-7.0]]]), grid.reshape(1, 16, 1)], dim=1)  # (B=1, 1+16, C=1)
    out, thw = pool(tokens, [1, 4, 4])
    assert thw == [1, 2, 2]
    # 2x2 block means of [[0..3],[4..7],[8..11],[12..15]]
    assert out.flatten().tolist() == [-7.0, 2.5, 4.5, 10.5, 12.5]
    no_pool = _AttentionPool(None, has_cls_embed=True, norm=nn.LayerNorm(1))
    assert no_pool(tokens, [1, 4, 4])[0] is tokens


def test_attention_pool_norm_placement():
    torch.manual_seed(0)
    tokens = torch.randn(2, 3, 1 + 8, 4)  # (B, heads, cls + 2*2*2, C)
    pool = nn.MaxPool3d(1)
    layer_norm = nn.LayerNorm(4)
    after, _ = _AttentionPool(pool, True, layer_norm)(tokens, [2, 2, 2])
    torch.testing.assert_close(after, layer_norm(tokens))  # applied after pooling, to the cls token too
    batch_norm = nn.BatchNorm3d(4).eval()
    batch_norm.running_mean.fill_(0.5)
    before, _ = _AttentionPool(pool, True, batch_norm)(tokens, [2, 2, 2])
    expected = torch.cat([tokens[:, :, :1], nn.functional.gelu(tokens[:, :, 1:] - 0.5)], dim=2)
    torch.testing.assert_close(before, expected, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="grid"):
        _AttentionPool(pool, True, None)(tokens, [2, 2, 3])


def test_pooled_attention_shapes_and_strided_kv():
    attn = MultiScaleAttention(
        16, 32, num_heads=4, kernel_q=(3, 3, 3), kernel_kv=(3, 3, 3), stride_q=(1, 2, 2), stride_kv=(2, 4, 4)
    )
    assert attn.pool_q.weight.shape == (8, 1, 3, 3, 3) and attn.norm_q.normalized_shape == (8,)
    out, thw = attn(torch.randn(2, 1 + 4 * 8 * 8, 16), [4, 8, 8])
    assert thw == [4, 4, 4] and out.shape == (2, 1 + 64, 32)
    with pytest.raises(NotImplementedError):
        MultiScaleAttention(8, pool_mode="median")
    with pytest.raises(ValueError, match="divisible"):
        MultiScaleAttention(10, num_heads=4)


def test_block_without_pooling_is_pre_norm_transformer():
    torch.manual_seed(0)
    block = MultiScaleBlock(8, 8, 2, qkv_bias=True)
    x = torch.randn(2, 5, 8)
    out, thw = block(x, [1, 2, 2])
    h = x + block.attn(block.norm1(x), [1, 2, 2])[0]
    torch.testing.assert_close(out, h + block.mlp(block.norm2(h)))
    assert isinstance(block.proj, nn.Identity) and thw == [1, 2, 2]


def test_block_skip_branch_is_max_pooled_and_projected():
    block = MultiScaleBlock(4, 6, 2, kernel_q=(1, 3, 3), stride_q=(1, 2, 2), kernel_kv=(1, 3, 3))
    # silence attention and mlp: the output is then the projected, pooled skip branch
    with torch.no_grad():
        for layer in (block.attn.proj, block.mlp.fc2):
            layer.weight.zero_()
            layer.bias.zero_()
    x = torch.randn(1, 1 + 16, 4)
    out, thw = block(x, [1, 4, 4])
    assert thw == [1, 2, 2] and block.pool_skip.kernel_size == [1, 3, 3]
    grid = x[:, 1:].reshape(1, 1, 4, 4, 4).permute(0, 4, 1, 2, 3)
    pooled = nn.functional.max_pool3d(grid, (1, 3, 3), (1, 2, 2), (0, 1, 1)).flatten(2).transpose(1, 2)
    skip = torch.cat([x[:, :1], pooled], dim=1)
    torch.testing.assert_close(out, block.proj(block.norm2(skip)))


def test_block_with_batchnorm_norms():
    block = MultiScaleBlock(8, 8, 2, norm_layer=nn.BatchNorm1d, attn_norm_layer=nn.BatchNorm3d,
                            kernel_kv=(1, 3, 3), stride_kv=(1, 2, 2), has_cls_embed=False)
    out, _ = block(torch.randn(3, 16, 8), [1, 4, 4])
    assert out.shape == (3, 16, 8) and block.norm1_is_batchnorm_1d


def test_fused_scriptable_block_has_no_norms():
    block = ScriptableMultiScaleBlock(8, 16, 2, kernel_q=(1, 3, 3), kernel_kv=(1, 3, 3), stride_q=(1, 2, 2))
    assert not any("norm" in key for key in block.state_dict())
    out, thw = block(torch.randn(2, 16, 8), [1, 4, 4])
    assert out.shape == (2, 4, 16) and thw == [1, 2, 2]
    with pytest.raises(ValueError, match="has_cls_embed"):
        ScriptableMultiScaleBlock(8, 8, 2, has_cls_embed=True)
    attention = FusedAttention(8, num_heads=2, kernel_q=(1, 3, 3), stride_q=(1, 2, 2))
    # an Identity norm makes the pooling path GELU -> pool, as in upstream's scriptable copy
    assert attention.dim_out == 8 and isinstance(attention.norm_q, nn.Identity)
    assert "qkv.weight" in attention.state_dict() and attention._attention_pool_q.norm_before_pool


def test_mlp_layers_and_dropout_only_in_training():
    mlp = Mlp(4, 16, 3, dropout_rate=0.5)
    assert [k for k in mlp.state_dict()] == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    x = torch.randn(5, 4)
    mlp.eval()
    torch.testing.assert_close(mlp(x), mlp.fc2(mlp.act(mlp.fc1(x))))
    assert Mlp(4, bias_on=False).fc1.bias is None


def test_drop_path_zeroes_whole_samples_and_rescales():
    torch.manual_seed(0)
    x = torch.ones(2000, 3, 2)
    out = drop_path(x, 0.25, training=True)
    per_sample = out.reshape(2000, -1)
    kept = per_sample[:, 0] != 0
    assert torch.all(per_sample[kept] == 1 / 0.75) and torch.all(per_sample[~kept] == 0)
    assert 0.70 < kept.float().mean() < 0.80
    assert drop_path(x, 0.25, training=False) is x
    module = DropPath(0.5).eval()
    assert module(x) is x and "drop_prob=0.5" in repr(module)
    with pytest.raises(ValueError):
        drop_path(x, 1.0, training=True)


def test_sinusoidal_positional_encoding_values():
    encoding = PositionalEncoding(embed_dim=6, seq_len=10)
    x = torch.zeros(1, 4, 6)
    out = encoding(x)
    for pos in range(4):
        for i in range(3):
            angle = pos / 10000 ** (2 * i / 6)
            assert out[0, pos, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-6)
            assert out[0, pos, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-6)
    assert list(encoding.state_dict()) == ["pe"]
    with pytest.raises(ValueError, match="size"):
        encoding(torch.zeros(1, 11, 6))


def test_spatio_temporal_encoding_separate_tables():
    encoding = SpatioTemporalClsPositionalEncoding(4, (2, 1, 3), sep_pos_embed=True, has_cls=True)
    assert list(encoding.state_dict()) == ["cls_token", "pos_embed_spatial", "pos_embed_temporal", "pos_embed_class"]
    assert encoding.patch_embed_shape() == (2, 1, 3)
    with torch.no_grad():
        for p in encoding.parameters():
            p.normal_()
    x = torch.zeros(2, 6, 4)
    out = encoding(x)
    assert out.shape == (2, 7, 4)
    torch.testing.assert_close(out[:, 0], (encoding.cls_token + encoding.pos_embed_class)[0].expand(2, 4))
    for t in range(2):
        for s in range(3):
            expected = encoding.pos_embed_spatial[0, s] + encoding.pos_embed_temporal[0, t]
            torch.testing.assert_close(out[1, 1 + t * 3 + s], expected)
    single = SpatioTemporalClsPositionalEncoding(4, (2, 1, 3), sep_pos_embed=False, has_cls=False)
    assert list(single.state_dict()) == ["pos_embed"] and single.pos_embed.shape == (1, 6, 4)
    with pytest.raises(ValueError, match="tokens"):
        single(torch.zeros(1, 5, 4))
    with pytest.raises(ValueError, match="T, H, W"):
        SpatioTemporalClsPositionalEncoding(4, (2, 3))


def test_scriptable_positional_encoding():
    encoding = ScriptableSpatioTemporalClsPositionalEncoding(4, (2, 2, 2), sep_pos_embed=True, has_cls=False)
    assert encoding.patch_embed_shape == (2, 2, 2)
    assert encoding(torch.zeros(1, 8, 4)).shape == (1, 8, 4)
    with pytest.raises(ValueError):
        ScriptableSpatioTemporalClsPositionalEncoding(4, (2, 2, 2))


def test_sincos_tables():
    table = get_1d_sincos_pos_embed_from_grid(4, np.array([0.0, 2.0]))
    # omega = 1 / 10000^(i / 2), i = 0, 1 -> (1, 0.01); sin half then cos half
    expected = [[0, 0, 1, 1], [math.sin(2), math.sin(0.02), math.cos(2), math.cos(0.02)]]
    np.testing.assert_allclose(table, expected, rtol=1e-12)
    two_d = get_2d_sincos_pos_embed(8, 3, cls_token=True)
    assert two_d.shape == (10, 8) and np.all(two_d[0] == 0)
    # token 5 = (h=1, w=2): first half encodes w, second half h
    np.testing.assert_allclose(two_d[1 + 5, :4], get_1d_sincos_pos_embed_from_grid(4, np.array([2.0]))[0])
    np.testing.assert_allclose(two_d[1 + 5, 4:], get_1d_sincos_pos_embed_from_grid(4, np.array([1.0]))[0])
    three_d = get_3d_sincos_pos_embed(16, 2, 3)
    assert three_d.shape == (3 * 4, 16)
    # first quarter of the channels encodes time: equal for tokens of one frame, different across frames
    np.testing.assert_allclose(three_d[4:8, :4], np.repeat(get_1d_sincos_pos_embed_from_grid(4, [1.0]), 4, 0))
    np.testing.assert_allclose(three_d[0, 4:], three_d[4, 4:])
    with pytest.raises(ValueError):
        get_3d_sincos_pos_embed(10, 2, 3)


def test_make_multilayer_perceptron():
    mlp, out_dim = make_multilayer_perceptron([6, 10, 4], norm=nn.BatchNorm1d, dropout_rate=0.1)
    assert out_dim == 4
    assert [type(m) for m in mlp] == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear, nn.Dropout, nn.ReLU]
    assert mlp(torch.randn(3, 6)).shape == (3, 4)
    plain, _ = make_multilayer_perceptron([3, 2], final_activation=None)
    assert [type(m) for m in plain] == [nn.Linear]
    for bad in ([5], [4, 0], "45"):
        with pytest.raises(ValueError):
            make_multilayer_perceptron(bad)
