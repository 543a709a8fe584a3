"""The batch-norm-fused MViT block of PyTorchVideo's scriptable variant, expressed with the main layers.

Upstream keeps a separate copy of the attention code for TorchScript. Here the same behaviour is the main
:class:`~pyvideo.layers.attention.MultiScaleBlock` with its norms folded away: no norm1/norm2, and an
Identity attention norm, which makes the pooling path GELU -> pool exactly as upstream's copy does.
"""
from typing import Callable, Optional

import torch.nn as nn

from . import attention
from .attention import Mlp

__all__ = ["Mlp", "MultiScaleAttention", "ScriptableMultiScaleBlock"]


def _no_norm(dim: int) -> nn.Module:
    return nn.Identity()


def _check_fused_layout(has_cls_embed: bool, pool_first: bool, separate_qkv: bool) -> None:
    if has_cls_embed or pool_first or separate_qkv:
        raise ValueError("the scriptable MViT layers need has_cls_embed=False, pool_first=False, separate_qkv=False")


class MultiScaleAttention(attention.MultiScaleAttention):
    """Attention without ``dim_out`` and without post-pool norm (upstream's scriptable copy)."""

    def __init__(
        self,
        dim: int,
        num_heads: int = 8,
        qkv_bias: bool = False,
        dropout_rate: float = 0.0,
        kernel_q=(1, 1, 1),
        kernel_kv=(1, 1, 1),
        stride_q=(1, 1, 1),
        stride_kv=(1, 1, 1),
        norm_layer: Optional[Callable] = None,
        has_cls_embed: bool = False,
        pool_mode: str = "conv",
        pool_first: bool = False,
        residual_pool: bool = True,
        depthwise_conv: bool = True,
        bias_on: bool = True,
        separate_qkv: bool = False,
    ) -> None:
        _check_fused_layout(has_cls_embed, pool_first, separate_qkv)
        super().__init__(
            dim, None, num_heads, qkv_bias, dropout_rate, kernel_q, kernel_kv, stride_q, stride_kv,
            _no_norm, has_cls_embed, pool_mode, pool_first, residual_pool, depthwise_conv, bias_on, separate_qkv,
        )


class ScriptableMultiScaleBlock(attention.MultiScaleBlock):
    """MultiScaleBlock in batch-norm-fused form: ``norm_layer`` and ``attn_norm_layer`` are accepted for
    signature compatibility and replaced by identities, as upstream does."""

    def __init__(
        self,
        dim: int,
        dim_out: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = False,
        dropout_rate: float = 0.0,
        droppath_rate: float = 0.0,
        act_layer: Callable = nn.GELU,
        norm_layer: Optional[Callable] = None,
        attn_norm_layer: Optional[Callable] = None,
        kernel_q=(1, 1, 1),
        kernel_kv=(1, 1, 1),
        stride_q=(1, 1, 1),
        stride_kv=(1, 1, 1),
        pool_mode: str = "conv",
        has_cls_embed: bool = False,
        pool_first: bool = False,
        residual_pool: bool = False,
        depthwise_conv: bool = True,
        bias_on: bool = True,
        separate_qkv: bool = False,
    ) -> None:
        _check_fused_layout(has_cls_embed, pool_first, separate_qkv)
        super().__init__(
            dim, dim_out, num_heads, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias, dropout_rate=dropout_rate,
            droppath_rate=droppath_rate, act_layer=act_layer, norm_layer=_no_norm, attn_norm_layer=_no_norm,
            kernel_q=kernel_q, kernel_kv=kernel_kv, stride_q=stride_q, stride_kv=stride_kv, pool_mode=pool_mode,
            has_cls_embed=has_cls_embed, pool_first=pool_first, residual_pool=residual_pool,
            depthwise_conv=depthwise_conv, bias_on=bias_on, separate_qkv=separate_qkv,
        )
