"""Multiscale attention (MViT v1/v2): attention whose queries, keys and values are pooled over (T, H, W).

Tokens are (B, [cls +] T*H*W, C); each block also passes the current (T, H, W) grid along.
State-dict layout follows PyTorchVideo: the pooling modules are reachable both as ``attn.pool_q`` /
``attn.norm_q`` and as ``attn._attention_pool_q.pool`` / ``.norm`` (the same parameters twice).
"""
import math
from typing import Callable, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .drop_path import DropPath


class Mlp(nn.Module):
    """Linear(in, hidden) -> act -> [dropout] -> Linear(hidden, out) -> [dropout]."""

    def __init__(
        self,
        in_features: int,
        hidden_features: Optional[int] = None,
        out_features: Optional[int] = None,
        act_layer: Callable = nn.GELU,
        dropout_rate: float = 0.0,
        bias_on: bool = True,
    ) -> None:
        super().__init__()
        self.dropout_rate = dropout_rate
        hidden_features = hidden_features or in_features
        out_features = out_features or in_features
        self.fc1 = nn.Linear(in_features, hidden_features, bias=bias_on)
        self.act = act_layer()
        self.fc2 = nn.Linear(hidden_features, out_features, bias=bias_on)
        self.dropout = nn.Dropout(dropout_rate) if dropout_rate > 0.0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dropout(self.act(self.fc1(x)))
        return self.dropout(self.fc2(x))


def _prod(values: Sequence[int]) -> int:
    return math.prod(int(v) for v in values)


class _AttentionPool(nn.Module):
    """Pools flattened tokens (B, [heads,] [cls +] T*H*W, C) on their (T, H, W) grid; the cls token is kept aside.

    A BatchNorm3d (or Identity) norm runs *before* the pool and is followed by GELU (the batch-norm MViT
    variant); any other norm (LayerNorm) runs after the pool, on the cls token too.
    """

    def __init__(self, pool: Optional[nn.Module], has_cls_embed: bool, norm: Optional[nn.Module]) -> None:
        super().__init__()
        self.has_pool = pool is not None
        self.pool = pool if pool is not None else nn.Identity()
        self.has_cls_embed = has_cls_embed
        self.has_norm = norm is not None
        self.norm_before_pool = isinstance(norm, (nn.BatchNorm3d, nn.Identity))
        self.norm = norm if norm is not None else nn.Identity()

    def forward(self, tensor: torch.Tensor, thw_shape: List[int]) -> Tuple[torch.Tensor, List[int]]:
        if not self.has_pool:
            return tensor, thw_shape
        if tensor.dim() not in (3, 4):
            raise ValueError(f"attention pooling expects a 3-D or 4-D tensor, got shape {tuple(tensor.shape)}")
        was_3d = tensor.dim() == 3
        if was_3d:
            tensor = tensor.unsqueeze(1)
        if self.has_cls_embed:
            cls_tok, tensor = tensor[:, :, :1, :], tensor[:, :, 1:, :]
        batch, heads, length, channels = tensor.shape
        t, h, w = thw_shape
        if length != t * h * w:
            raise ValueError(f"token count {length} does not match the grid {list(thw_shape)}")
        tensor = tensor.reshape(batch * heads, t, h, w, channels).permute(0, 4, 1, 2, 3)
        if self.norm_before_pool:
            tensor = F.gelu(self.norm(tensor))
        tensor = self.pool(tensor)
        thw_shape = [tensor.shape[2], tensor.shape[3], tensor.shape[4]]
        tensor = tensor.reshape(batch, heads, channels, -1).transpose(2, 3)
        if self.has_cls_embed:
            tensor = torch.cat((cls_tok, tensor), dim=2)
        if self.has_norm and not self.norm_before_pool:
            tensor = self.norm(tensor)
        if was_3d:
            tensor = tensor.squeeze(1)
        return tensor, thw_shape


def _pool_op(pool_mode: str, channels: int, kernel, stride, depthwise_conv: bool) -> nn.Module:
    padding = [int(k // 2) for k in kernel]
    if pool_mode == "conv":
        groups = channels if depthwise_conv else 1
        return nn.Conv3d(channels, channels, kernel, stride=stride, padding=padding, groups=groups, bias=False)
    pool_class = nn.MaxPool3d if pool_mode == "max" else nn.AvgPool3d
    return pool_class(kernel, stride, padding, ceil_mode=False)


class MultiScaleAttention(nn.Module):
    """Multi-head self-attention whose Q and K/V can be pooled (strided) over the token grid.

    Pooling of Q (resp. K, V) is skipped when both its kernel and stride are all ones (or empty).
    With ``pool_first`` the pooling runs on the input tokens, before the Q/K/V projections.
    ``residual_pool`` adds the pooled Q to the attention output (MViT v2).
    """

    _version = 3

    def __init__(
        self,
        dim: int,
        dim_out: Optional[int] = None,
        num_heads: int = 8,
        qkv_bias: bool = False,
        dropout_rate: float = 0.0,
        kernel_q=(1, 1, 1),
        kernel_kv=(1, 1, 1),
        stride_q=(1, 1, 1),
        stride_kv=(1, 1, 1),
        norm_layer: Callable = nn.LayerNorm,
        has_cls_embed: bool = True,
        pool_mode: str = "conv",
        pool_first: bool = False,
        residual_pool: bool = True,
        depthwise_conv: bool = True,
        bias_on: bool = True,
        separate_qkv: bool = True,
    ) -> None:
        super().__init__()
        if pool_mode not in ("conv", "avg", "max"):
            raise NotImplementedError(f"Unsupported pool_mode {pool_mode!r}; use 'conv', 'avg' or 'max'")
        dim_out = dim_out or dim
        if dim_out % num_heads != 0 or dim % num_heads != 0:
            raise ValueError(f"dim ({dim}) and dim_out ({dim_out}) must be divisible by num_heads ({num_heads})")
        self.pool_first = pool_first
        self.dropout_rate = dropout_rate
        self.num_heads = num_heads
        self.dim_out = dim_out
        head_dim = dim_out // num_heads
        self.scale = head_dim**-0.5
        self.has_cls_embed = has_cls_embed
        self.residual_pool = residual_pool
        self.separate_qkv = separate_qkv

        # Identity placeholders keep every attribute defined whichever projection layout is used.
        self.q = self.k = self.v = self.qkv = nn.Identity()
        if pool_first or separate_qkv:
            self.q = nn.Linear(dim, dim_out, bias=qkv_bias)
            self.k = nn.Linear(dim, dim_out, bias=qkv_bias)
            self.v = nn.Linear(dim, dim_out, bias=qkv_bias)
        else:
            self.qkv = nn.Linear(dim, dim_out * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim_out, dim_out, bias=bias_on)
        self.proj_drop = nn.Dropout(dropout_rate) if dropout_rate > 0.0 else nn.Identity()

        # pooling runs per head: on the input's head slices when pooling first, else on Q/K/V's
        pool_channels = (dim if pool_first else dim_out) // num_heads
        pool_settings = {"q": (kernel_q, stride_q), "k": (kernel_kv, stride_kv), "v": (kernel_kv, stride_kv)}
        for name, (kernel, stride) in pool_settings.items():
            enabled = kernel is not None and not (_prod(kernel) == 1 and _prod(stride) == 1)
            pool = _pool_op(pool_mode, pool_channels, kernel, stride, depthwise_conv) if enabled else None
            norm = norm_layer(pool_channels) if enabled and pool_mode == "conv" else None
            setattr(self, f"pool_{name}", pool)
            setattr(self, f"norm_{name}", norm)
        # registered after all pool_*/norm_* so the state_dict order matches PyTorchVideo's
        for name in pool_settings:
            pool, norm = getattr(self, f"pool_{name}"), getattr(self, f"norm_{name}")
            setattr(self, f"_attention_pool_{name}", _AttentionPool(pool, has_cls_embed=has_cls_embed, norm=norm))

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, C) -> (B, heads, N, C / heads)."""
        batch, length, _ = x.shape
        return x.reshape(batch, length, self.num_heads, -1).permute(0, 2, 1, 3)

    @staticmethod
    def _merge_heads(x: torch.Tensor) -> torch.Tensor:
        """(B, heads, N, C / heads) -> (B, N, C)."""
        batch, _, length, _ = x.shape
        return x.permute(0, 2, 1, 3).reshape(batch, length, -1)

    def forward(self, x: torch.Tensor, thw_shape: List[int]) -> Tuple[torch.Tensor, List[int]]:
        """x: (B, N, dim) -> ((B, N', dim_out), pooled Q grid)."""
        if self.pool_first:
            heads = self._split_heads(x)
            q, q_shape = self._attention_pool_q(heads, thw_shape)
            k, _ = self._attention_pool_k(heads, thw_shape)
            v, _ = self._attention_pool_v(heads, thw_shape)
            q = self._split_heads(self.q(self._merge_heads(q)))
            k = self._split_heads(self.k(self._merge_heads(k)))
            v = self._split_heads(self.v(self._merge_heads(v)))
        else:
            if self.separate_qkv:
                q, k, v = self._split_heads(self.q(x)), self._split_heads(self.k(x)), self._split_heads(self.v(x))
            else:
                batch, length, _ = x.shape
                qkv = self.qkv(x).reshape(batch, length, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
                q, k, v = qkv[0], qkv[1], qkv[2]
            q, q_shape = self._attention_pool_q(q, thw_shape)
            k, _ = self._attention_pool_k(k, thw_shape)
            v, _ = self._attention_pool_v(v, thw_shape)

        out = F.scaled_dot_product_attention(q, k, v, scale=self.scale)
        if self.residual_pool:
            out = out + q
        return self.proj_drop(self.proj(self._merge_heads(out))), q_shape

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
    ):
        # Checkpoints from before the _AttentionPool refactor (version < 2, e.g. the published MViT weights)
        # only hold pool_q.* / norm_q.*; copy them to the aliases the current layout also expects.
        version = local_metadata.get("version", None)
        if version is None or version < 2:
            for layer in ("pool", "norm"):
                for name in ("q", "k", "v"):
                    old_prefix = f"{prefix}{layer}_{name}."
                    new_prefix = f"{prefix}_attention_pool_{name}.{layer}."
                    for key in [k for k in state_dict if k.startswith(old_prefix)]:
                        state_dict.setdefault(new_prefix + key[len(old_prefix) :], state_dict[key])
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )


class MultiScaleBlock(nn.Module):
    """Pre-norm transformer block around :class:`MultiScaleAttention`.

    x -> norm1 -> attention (+ max-pooled skip) -> norm2 -> Mlp (+ skip, projected when dim != dim_out).
    With ``dim_mul_in_att`` the width changes inside the attention (MViT v2); otherwise in the Mlp.
    The skip branch is max-pooled with kernel stride+1 wherever Q is strided.
    """

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
        norm_layer: Callable = nn.LayerNorm,
        attn_norm_layer: Callable = nn.LayerNorm,
        dim_mul_in_att: bool = False,
        kernel_q=(1, 1, 1),
        kernel_kv=(1, 1, 1),
        stride_q=(1, 1, 1),
        stride_kv=(1, 1, 1),
        pool_mode: str = "conv",
        has_cls_embed: bool = True,
        pool_first: bool = False,
        residual_pool: bool = False,
        depthwise_conv: bool = True,
        bias_on: bool = True,
        separate_qkv: bool = True,
    ) -> None:
        super().__init__()
        self.dim = dim
        self.dim_out = dim_out
        self.dim_mul_in_att = dim_mul_in_att
        self.has_cls_embed = has_cls_embed
        att_dim = dim_out if dim_mul_in_att else dim
        self.norm1 = norm_layer(dim)
        self.norm1_is_batchnorm_1d = isinstance(self.norm1, nn.BatchNorm1d)
        self.attn = MultiScaleAttention(
            dim,
            att_dim,
            num_heads=num_heads,
            qkv_bias=qkv_bias,
            dropout_rate=dropout_rate,
            kernel_q=kernel_q,
            kernel_kv=kernel_kv,
            stride_q=stride_q,
            stride_kv=stride_kv,
            norm_layer=attn_norm_layer,
            has_cls_embed=has_cls_embed,
            pool_mode=pool_mode,
            pool_first=pool_first,
            residual_pool=residual_pool,
            depthwise_conv=depthwise_conv,
            bias_on=bias_on,
            separate_qkv=separate_qkv,
        )
        self.drop_path = DropPath(droppath_rate) if droppath_rate > 0.0 else nn.Identity()
        self.norm2 = norm_layer(att_dim)
        self.norm2_is_batchnorm_1d = isinstance(self.norm2, nn.BatchNorm1d)
        self.mlp = Mlp(
            in_features=att_dim,
            hidden_features=int(att_dim * mlp_ratio),
            out_features=dim_out,
            act_layer=act_layer,
            dropout_rate=dropout_rate,
            bias_on=bias_on,
        )
        self.proj = nn.Linear(dim, dim_out, bias=bias_on) if dim != dim_out else nn.Identity()
        stride_q = list(stride_q) if stride_q is not None else []
        kernel_skip = [s + 1 if s > 1 else s for s in stride_q]
        self.pool_skip = (
            nn.MaxPool3d(kernel_skip, stride_q, [k // 2 for k in kernel_skip], ceil_mode=False)
            if len(stride_q) > 0 and _prod(stride_q) > 1
            else None
        )
        self._attention_pool = _AttentionPool(self.pool_skip, has_cls_embed=has_cls_embed, norm=None)

    @staticmethod
    def _apply_norm(norm: nn.Module, is_batchnorm_1d: bool, x: torch.Tensor) -> torch.Tensor:
        # BatchNorm1d normalises dim 1, which must be the channels
        return norm(x.transpose(1, 2)).transpose(1, 2) if is_batchnorm_1d else norm(x)

    def forward(self, x: torch.Tensor, thw_shape: List[int]) -> Tuple[torch.Tensor, List[int]]:
        x_norm = self._apply_norm(self.norm1, self.norm1_is_batchnorm_1d, x)
        x_block, thw_shape_new = self.attn(x_norm, thw_shape)
        if self.dim_mul_in_att and self.dim != self.dim_out:
            x = self.proj(x_norm)
        x_res, _ = self._attention_pool(x, thw_shape)
        x = x_res + self.drop_path(x_block)
        x_norm = self._apply_norm(self.norm2, self.norm2_is_batchnorm_1d, x)
        x_mlp = self.mlp(x_norm)
        if not self.dim_mul_in_att and self.dim != self.dim_out:
            x = self.proj(x_norm)
        return x + self.drop_path(x_mlp), thw_shape_new
