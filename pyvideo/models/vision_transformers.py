"""Multiscale Vision Transformers (MViT, https://arxiv.org/abs/2104.11227; v2 options from MViTv2).

    video (B, C, T, H, W) -> patch embed (strided conv -> tokens) -> [cls token +] positional encoding
    -> dropout -> multiscale blocks (widths grow, token grid shrinks) -> norm -> head
"""
import warnings
from functools import partial
from typing import Callable, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn

from pyvideo.layers.attention import MultiScaleBlock
from pyvideo.layers.positional_encoding import SpatioTemporalClsPositionalEncoding
from pyvideo.layers.utils import round_width
from pyvideo.models.head import create_vit_basic_head
from pyvideo.models.stem import create_conv_patch_embed
from pyvideo.models.weight_init import init_net_weights


def _grid_shape(encoding: nn.Module) -> List[int]:
    # a method on SpatioTemporalClsPositionalEncoding, a property on the scriptable variant
    shape = encoding.patch_embed_shape
    return list(shape() if callable(shape) else shape)


def _bn_scale_shift(bn: nn.Module, repeat: int = 1) -> Tuple[torch.Tensor, torch.Tensor]:
    """BatchNorm in eval mode as y = scale * x + shift (per channel, tiled ``repeat`` times)."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    shift = bn.bias - scale * bn.running_mean
    return scale.repeat(repeat), shift.repeat(repeat)


def _linear_from(weight: torch.Tensor, bias: torch.Tensor) -> nn.Linear:
    linear = nn.Linear(weight.shape[1], weight.shape[0], bias=True, device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        linear.weight.copy_(weight)
        linear.bias.copy_(bias)
    return linear


def _fuse_norm_before_linear(bn: nn.Module, linear: nn.Module) -> nn.Module:
    """Linear(BN(x)) as one Linear."""
    if not isinstance(linear, nn.Linear):
        return linear
    scale, shift = _bn_scale_shift(bn)
    bias = linear.weight @ shift + (linear.bias if linear.bias is not None else 0)
    return _linear_from(linear.weight * scale[None, :], bias)


def _fuse_norm_after_linear(linear: nn.Linear, bn: Optional[nn.Module]) -> nn.Linear:
    """BN(Linear(x)) as one Linear; the BN acts per head channel, so it is tiled over the heads."""
    if bn is None:
        return linear
    scale, shift = _bn_scale_shift(bn, repeat=linear.out_features // bn.num_features)
    bias = scale * (linear.bias if linear.bias is not None else 0) + shift
    return _linear_from(linear.weight * scale[:, None], bias)


class MultiscaleVisionTransformers(nn.Module):
    """The MViT network; build it with :func:`create_multiscale_vision_transformers`.

    Forward: patch_embed -> cls_positional_encoding -> pos_drop -> blocks (each takes and returns the
    token grid (T, H, W) along with the tokens) -> norm_embed -> head. Missing parts are identities.
    Weights are initialised in the ViT style (truncated normal, std 0.02) at construction.
    """

    def __init__(
        self,
        *,
        patch_embed: Optional[nn.Module],
        cls_positional_encoding: nn.Module,
        pos_drop: Optional[nn.Module],
        blocks: nn.ModuleList,
        norm_embed: Optional[nn.Module],
        head: Optional[nn.Module],
    ) -> None:
        super().__init__()
        if not hasattr(cls_positional_encoding, "patch_embed_shape"):
            raise TypeError("cls_positional_encoding should have method patch_embed_shape.")
        self.patch_embed = patch_embed or nn.Identity()
        self.cls_positional_encoding = cls_positional_encoding
        self.pos_drop = pos_drop or nn.Identity()
        self.blocks = blocks
        self.norm_embed = norm_embed or nn.Identity()
        self.head = head or nn.Identity()
        init_net_weights(self, init_std=0.02, style="vit")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        x = self.cls_positional_encoding(x)
        x = self.pos_drop(x)
        thw = _grid_shape(self.cls_positional_encoding)
        for block in self.blocks:
            x, thw = block(x, thw)
        x = self.norm_embed(x)
        return self.head(x)

    @torch.no_grad()
    def fuse_bn(self) -> None:
        """Folds the batch norms of the "batchnorm" variant into the neighbouring linear layers (eval only).

        norm1 goes into the Q/K/V projections (and the skip projection when the width changes in the
        attention), the attention's BN3d into Q/K/V, and norm2 into mlp.fc1 and the skip projection.
        The attention pooling then keeps only its GELU. With ``pool_first`` the pooling (and its BN) sits
        between norm1 and the projections, so those blocks keep norm1 and the attention BNs.
        Exact when the model has no cls token (the cls token is never normalised by the attention BN, but
        the folded Q/K/V affine reaches it).
        """
        if self.training:
            raise RuntimeError("fuse_bn() needs eval mode (it folds the running statistics): call .eval() first")
        for block in self.blocks:
            if not isinstance(block.norm2, nn.BatchNorm1d):
                continue
            if not block.attn.pool_first:
                self._fuse_norm1(block)
                self._fuse_attention_norms(block.attn)
            block.mlp.fc1 = _fuse_norm_before_linear(block.norm2, block.mlp.fc1)
            if not block.dim_mul_in_att and block.dim != block.dim_out:
                block.proj = _fuse_norm_before_linear(block.norm2, block.proj)
            block.norm2, block.norm2_is_batchnorm_1d = nn.Identity(), False

    @staticmethod
    def _fuse_norm1(block: nn.Module) -> None:
        attn, norm1 = block.attn, block.norm1
        if attn.separate_qkv:
            attn.q, attn.k, attn.v = (_fuse_norm_before_linear(norm1, p) for p in (attn.q, attn.k, attn.v))
        else:
            attn.qkv = _fuse_norm_before_linear(norm1, attn.qkv)
        if block.dim_mul_in_att and block.dim != block.dim_out:
            block.proj = _fuse_norm_before_linear(norm1, block.proj)
        block.norm1, block.norm1_is_batchnorm_1d = nn.Identity(), False

    @staticmethod
    def _fuse_attention_norms(attn: nn.Module) -> None:
        if attn.separate_qkv:
            attn.q = _fuse_norm_after_linear(attn.q, attn.norm_q)
            attn.k = _fuse_norm_after_linear(attn.k, attn.norm_k)
            attn.v = _fuse_norm_after_linear(attn.v, attn.norm_v)
        else:
            parts = [
                _fuse_norm_after_linear(_linear_from(w, b), norm)
                for w, b, norm in zip(
                    attn.qkv.weight.chunk(3), attn.qkv.bias.chunk(3), (attn.norm_q, attn.norm_k, attn.norm_v)
                )
            ]
            attn.qkv = _linear_from(torch.cat([p.weight for p in parts]), torch.cat([p.bias for p in parts]))
        for name in ("q", "k", "v"):
            if getattr(attn, f"norm_{name}") is not None:
                # upstream replaced only norm_q/k/v and left the BN inside _AttentionPool running
                setattr(attn, f"norm_{name}", nn.Identity())
                getattr(attn, f"_attention_pool_{name}").norm = nn.Identity()


def _conv_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def _per_block(depth: int, entries: Optional[Sequence[Sequence[float]]], default: float) -> List[float]:
    """[[block_index, value], ...] -> one value per block index 0..depth (inclusive)."""
    values = [default] * (depth + 1)
    for index, value in entries or []:
        if not 0 <= index <= depth:
            raise ValueError(f"multiplier block index {index} lies outside 0..{depth}")
        values[int(index)] = value
    return values


def _pool_schedule(
    depth: int,
    pool_q_stride_size: Optional[Sequence[Sequence[int]]],
    pool_kv_stride_size: Optional[Sequence[Sequence[int]]],
    pool_kv_stride_adaptive: Optional[Sequence[int]],
    pool_kvq_kernel: Optional[Sequence[int]],
):
    """Per-block pooling kernels and strides for Q and K/V (empty lists where a block does not pool)."""
    kernel_q, kernel_kv = [[] for _ in range(depth)], [[] for _ in range(depth)]
    stride_q, stride_kv = [[] for _ in range(depth)], [[] for _ in range(depth)]

    for entries in (pool_q_stride_size, pool_kv_stride_size):
        for entry in entries or []:
            if not 0 <= entry[0] < depth or len(entry) != 4:
                raise ValueError(f"pool stride entries must be [block_index < depth ({depth}), s_t, s_h, s_w], got {entry}")

    def kernel_for(stride):
        return list(pool_kvq_kernel) if pool_kvq_kernel is not None else [s + 1 if s > 1 else s for s in stride]

    for index, *stride in pool_q_stride_size or []:
        stride_q[index], kernel_q[index] = list(stride), kernel_for(stride)
    if pool_kv_stride_adaptive is not None:
        # the K/V stride starts at pool_kv_stride_adaptive and shrinks wherever Q is strided,
        # so that K/V keep roughly the same absolute resolution through the network
        current = list(pool_kv_stride_adaptive)
        pool_kv_stride_size = []
        for index in range(depth):
            if stride_q[index]:
                current = [max(s // q, 1) for s, q in zip(current, stride_q[index])]
            pool_kv_stride_size.append([index] + current)
    for index, *stride in pool_kv_stride_size or []:
        stride_kv[index], kernel_kv[index] = list(stride), kernel_for(stride)
    return kernel_q, kernel_kv, stride_q, stride_kv


def create_multiscale_vision_transformers(
    *,
    spatial_size: Union[int, Tuple[int, int]],
    temporal_size: int,
    cls_embed_on: bool = True,
    sep_pos_embed: bool = True,
    depth: int = 16,
    norm: str = "layernorm",
    # patch embedding
    enable_patch_embed: bool = True,
    input_channels: int = 3,
    patch_embed_dim: int = 96,
    conv_patch_embed_kernel: Tuple[int, ...] = (3, 7, 7),
    conv_patch_embed_stride: Tuple[int, ...] = (2, 4, 4),
    conv_patch_embed_padding: Tuple[int, ...] = (1, 3, 3),
    enable_patch_embed_norm: bool = False,
    use_2d_patch: bool = False,
    # attention blocks
    num_heads: int = 1,
    mlp_ratio: float = 4.0,
    qkv_bias: bool = True,
    dropout_rate_block: float = 0.0,
    droppath_rate_block: float = 0.0,
    pooling_mode: str = "conv",
    pool_first: bool = False,
    residual_pool: bool = False,
    depthwise_conv: bool = True,
    bias_on: bool = True,
    separate_qkv: bool = True,
    embed_dim_mul: Optional[List[List[float]]] = None,
    atten_head_mul: Optional[List[List[float]]] = None,
    dim_mul_in_att: bool = False,
    pool_q_stride_size: Optional[List[List[int]]] = None,
    pool_kv_stride_size: Optional[List[List[int]]] = None,
    pool_kv_stride_adaptive: Optional[Sequence[int]] = None,
    pool_kvq_kernel: Optional[Sequence[int]] = None,
    # head
    head: Optional[Callable] = create_vit_basic_head,
    head_dropout_rate: float = 0.5,
    head_activation: Optional[Callable] = None,
    head_num_classes: int = 400,
    create_scriptable_model: bool = False,
    multiscale_vit_class: Callable = MultiscaleVisionTransformers,
) -> nn.Module:
    """Builds an MViT. Input: (B, input_channels, temporal_size, H, W), or (B, C, H, W) with ``use_2d_patch``.

    Args (beyond the obvious):
        spatial_size: (H, W) or one int; with ``temporal_size`` it fixes the positional-encoding grid.
        norm: "layernorm" (eps 1e-6, final norm) or "batchnorm" (BN1d in blocks, BN3d in attention, no final norm).
        enable_patch_embed: False means the input is already (B, L, patch_embed_dim) tokens.
        num_heads: heads of the first block.
        embed_dim_mul / atten_head_mul: [[block_index, multiplier], ...]; the width (heads) is multiplied
            from that block on. Without ``dim_mul_in_att`` the block before it already outputs the new width.
        pool_q_stride_size / pool_kv_stride_size: [[block_index, stride_t, stride_h, stride_w], ...].
        pool_kv_stride_adaptive: initial K/V stride, divided by the Q stride wherever Q is pooled
            (excludes ``pool_kv_stride_size``).
        pool_kvq_kernel: pooling kernel for Q and K/V; default stride + 1 where stride > 1, else 1.
        head: builder called as head(in_features, out_features, seq_pool_type, dropout_rate, activation), or None.
        create_scriptable_model: deprecated; the default model already exports with torch.export.
    """
    if use_2d_patch and temporal_size != 1:
        raise ValueError(f"If use_2d_patch, temporal_size needs to be 1 (got {temporal_size}).")
    if pool_kv_stride_adaptive is not None and pool_kv_stride_size is not None:
        raise ValueError("pool_kv_stride_size should be none if pool_kv_stride_adaptive is set.")
    if enable_patch_embed_norm:
        raise NotImplementedError("enable_patch_embed_norm=True is not supported (upstream ignores it silently)")
    if norm == "layernorm":
        final_norm_layer = block_norm_layer = attn_norm_layer = partial(nn.LayerNorm, eps=1e-6)
    elif norm == "batchnorm":
        final_norm_layer, block_norm_layer, attn_norm_layer = None, nn.BatchNorm1d, nn.BatchNorm3d
    else:
        raise NotImplementedError(f"norm must be 'layernorm' or 'batchnorm', got {norm!r}")
    if create_scriptable_model:
        if norm != "batchnorm":
            raise ValueError("The scriptable model supports only the batchnorm-based model.")
        warnings.warn(
            "`create_scriptable_model` is deprecated: MultiscaleVisionTransformers is exportable without it.",
            DeprecationWarning,
        )
    if isinstance(spatial_size, int):
        spatial_size = (spatial_size, spatial_size)

    patch_embed = None
    grid = [temporal_size, spatial_size[0], spatial_size[1]]
    if enable_patch_embed:
        patch_embed = create_conv_patch_embed(
            in_channels=input_channels,
            out_channels=patch_embed_dim,
            conv_kernel_size=conv_patch_embed_kernel,
            conv_stride=conv_patch_embed_stride,
            conv_padding=conv_patch_embed_padding,
            conv=nn.Conv2d if use_2d_patch else nn.Conv3d,
        )
        # a 2-D patch conv leaves the (single) frame axis untouched
        conv_geometry = zip(conv_patch_embed_kernel, conv_patch_embed_stride, conv_patch_embed_padding)
        lead = [(1, 1, 0)] if use_2d_patch else []
        grid = [_conv_output_size(size, *g) for size, g in zip(grid, lead + list(conv_geometry))]

    cls_positional_encoding = SpatioTemporalClsPositionalEncoding(
        embed_dim=patch_embed_dim, patch_embed_shape=grid, sep_pos_embed=sep_pos_embed, has_cls=cls_embed_on
    )
    droppath_rates = torch.linspace(0, droppath_rate_block, depth).tolist()
    dim_mul = _per_block(depth, embed_dim_mul, 1.0)
    head_mul = _per_block(depth, atten_head_mul, 1.0)
    kernel_q, kernel_kv, stride_q, stride_kv = _pool_schedule(
        depth, pool_q_stride_size, pool_kv_stride_size, pool_kv_stride_adaptive, pool_kvq_kernel
    )

    blocks = nn.ModuleList()
    dim_in = patch_embed_dim
    for i in range(depth):
        num_heads = round_width(num_heads, head_mul[i], min_width=1, divisor=1)
        # the width change sits in block i (dim_mul_in_att) or already in the Mlp of the block before it
        width_index = i if dim_mul_in_att else i + 1
        dim_out = round_width(dim_in, dim_mul[width_index], divisor=round_width(num_heads, head_mul[width_index]))
        blocks.append(
            MultiScaleBlock(
                dim=dim_in,
                dim_out=dim_out,
                num_heads=num_heads,
                mlp_ratio=mlp_ratio,
                qkv_bias=qkv_bias,
                dropout_rate=dropout_rate_block,
                droppath_rate=droppath_rates[i],
                norm_layer=block_norm_layer,
                attn_norm_layer=attn_norm_layer,
                dim_mul_in_att=dim_mul_in_att,
                kernel_q=kernel_q[i],
                kernel_kv=kernel_kv[i],
                stride_q=stride_q[i],
                stride_kv=stride_kv[i],
                pool_mode=pooling_mode,
                has_cls_embed=cls_embed_on,
                pool_first=pool_first,
                residual_pool=residual_pool,
                depthwise_conv=depthwise_conv,
                bias_on=bias_on,
                separate_qkv=separate_qkv,
            )
        )
        dim_in = dim_out

    head_model = None
    if head is not None:
        head_model = head(
            in_features=dim_in,
            out_features=head_num_classes,
            seq_pool_type="cls" if cls_embed_on else "mean",
            dropout_rate=head_dropout_rate,
            activation=head_activation,
        )
    return multiscale_vit_class(
        patch_embed=patch_embed,
        cls_positional_encoding=cls_positional_encoding,
        pos_drop=nn.Dropout(p=dropout_rate_block) if dropout_rate_block > 0.0 else None,
        blocks=blocks,
        norm_embed=final_norm_layer(dim_in) if final_norm_layer is not None else None,
        head=head_model,
    )
