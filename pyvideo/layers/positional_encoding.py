"""Positional encodings: 1-D sinusoidal, learned spatio-temporal (+cls token), and fixed sin-cos tables."""
import math
from typing import Tuple

import numpy as np
import torch
from torch import nn


class PositionalEncoding(nn.Module):
    """Adds the sinusoidal encoding of "Attention Is All You Need" to a (batch, seq_len, embed_dim) tensor:
    PE(pos, 2i) = sin(pos / 10000^(2i / embed_dim)), PE(pos, 2i + 1) = cos(...). Stored in the buffer ``pe``.
    """

    def __init__(self, embed_dim: int, seq_len: int = 1024) -> None:
        super().__init__()
        position = torch.arange(seq_len, dtype=torch.float).unsqueeze(1)
        inverse_frequency = torch.exp(torch.arange(0, embed_dim, 2).float() * (-math.log(10000.0) / embed_dim))
        pe = torch.zeros(seq_len, embed_dim)
        pe[:, 0::2] = torch.sin(position * inverse_frequency)
        pe[:, 1::2] = torch.cos(position * inverse_frequency[: embed_dim // 2])
        self.register_buffer("pe", pe.unsqueeze(0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.size(1) > self.pe.size(1):
            raise ValueError(f"Cannot apply position encoding of size {tuple(self.pe.size())} when input has size {tuple(x.size())}")
        return x + self.pe[:, : x.size(1), :]


class SpatioTemporalClsPositionalEncoding(nn.Module):
    """Prepends a learned cls token (optional) and adds learned positional embeddings to (B, T*H*W, C) tokens.

    With ``sep_pos_embed`` the embedding of token (t, s) is pos_embed_spatial[s] + pos_embed_temporal[t]
    (plus pos_embed_class for the cls token); otherwise one table ``pos_embed`` covers every token.
    Unused tables are plain empty tensors (not parameters or buffers), so they never reach the state_dict.
    """

    def __init__(
        self,
        embed_dim: int,
        patch_embed_shape: Tuple[int, int, int],
        sep_pos_embed: bool = False,
        has_cls: bool = True,
    ) -> None:
        super().__init__()
        if len(patch_embed_shape) != 3:
            raise ValueError(f"patch_embed_shape should be in the form of (T, H, W), got {patch_embed_shape!r}")
        self.cls_embed_on = has_cls
        self.sep_pos_embed = sep_pos_embed
        self._patch_embed_shape = tuple(int(s) for s in patch_embed_shape)
        self.num_spatial_patch = self._patch_embed_shape[1] * self._patch_embed_shape[2]
        self.num_temporal_patch = self._patch_embed_shape[0]
        num_patches = self.num_spatial_patch * self.num_temporal_patch + (1 if has_cls else 0)

        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim)) if has_cls else torch.tensor([])
        if sep_pos_embed:
            self.pos_embed_spatial = nn.Parameter(torch.zeros(1, self.num_spatial_patch, embed_dim))
            self.pos_embed_temporal = nn.Parameter(torch.zeros(1, self.num_temporal_patch, embed_dim))
            self.pos_embed_class = nn.Parameter(torch.zeros(1, 1, embed_dim)) if has_cls else torch.tensor([])
            self.pos_embed = torch.tensor([])
        else:
            self.pos_embed = nn.Parameter(torch.zeros(1, num_patches, embed_dim))
            self.pos_embed_spatial = torch.tensor([])
            self.pos_embed_temporal = torch.tensor([])
            self.pos_embed_class = torch.tensor([])

    def patch_embed_shape(self) -> Tuple[int, int, int]:
        return self._patch_embed_shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch_size = x.shape[0]
        if self.cls_embed_on:
            x = torch.cat((self.cls_token.expand(batch_size, -1, -1), x), dim=1)
        if self.sep_pos_embed:
            pos_embed = self.pos_embed_spatial.repeat(1, self.num_temporal_patch, 1) + torch.repeat_interleave(
                self.pos_embed_temporal, self.num_spatial_patch, dim=1
            )
            if self.cls_embed_on:
                pos_embed = torch.cat([self.pos_embed_class, pos_embed], dim=1)
        else:
            pos_embed = self.pos_embed
        if x.shape[1] != pos_embed.shape[1]:
            raise ValueError(
                f"expected {pos_embed.shape[1]} tokens (patch grid {self._patch_embed_shape}"
                f"{' + cls' if self.cls_embed_on else ''}), got {x.shape[1]}"
            )
        return x + pos_embed


def get_1d_sincos_pos_embed_from_grid(embed_dim: int, pos: np.ndarray) -> np.ndarray:
    """Sin-cos table for positions ``pos`` (any shape, flattened): [M, embed_dim], sin half then cos half."""
    if embed_dim % 2 != 0:
        raise ValueError(f"embed_dim must be even, got {embed_dim}")
    omega = 1.0 / 10000 ** (np.arange(embed_dim // 2, dtype=np.float64) / (embed_dim / 2.0))
    angles = np.outer(np.asarray(pos, dtype=np.float64).reshape(-1), omega)
    return np.concatenate([np.sin(angles), np.cos(angles)], axis=1)


def get_2d_sincos_pos_embed_from_grid(embed_dim: int, grid: np.ndarray) -> np.ndarray:
    """grid: [2, ...] of (w, h) coordinates. Half the channels encode grid[0], half grid[1]."""
    if embed_dim % 2 != 0:
        raise ValueError(f"embed_dim must be even, got {embed_dim}")
    return np.concatenate(
        [
            get_1d_sincos_pos_embed_from_grid(embed_dim // 2, grid[0]),
            get_1d_sincos_pos_embed_from_grid(embed_dim // 2, grid[1]),
        ],
        axis=1,
    )


def _square_grid(grid_size: int) -> np.ndarray:
    """[2, grid_size * grid_size] of (w, h) coordinates in row-major (h, w) token order."""
    h, w = np.meshgrid(np.arange(grid_size, dtype=np.float32), np.arange(grid_size, dtype=np.float32), indexing="ij")
    return np.stack([w.reshape(-1), h.reshape(-1)], axis=0)


def get_2d_sincos_pos_embed(embed_dim: int, grid_size: int, cls_token: bool = False) -> np.ndarray:
    """[grid_size**2 (+1), embed_dim] table for a square patch grid; a zero row first when cls_token."""
    pos_embed = get_2d_sincos_pos_embed_from_grid(embed_dim, _square_grid(grid_size))
    if cls_token:
        pos_embed = np.concatenate([np.zeros([1, embed_dim]), pos_embed], axis=0)
    return pos_embed


def get_3d_sincos_pos_embed(embed_dim: int, grid_size: int, t_size: int, cls_token: bool = False) -> np.ndarray:
    """[t_size * grid_size**2 (+1), embed_dim] table in (t, h, w) token order.

    The first quarter of the channels encodes time, the remaining three quarters the 2-D position.
    """
    if embed_dim % 4 != 0:
        raise ValueError(f"embed_dim must be divisible by 4, got {embed_dim}")
    embed_dim_temporal = embed_dim // 4
    spatial = get_2d_sincos_pos_embed_from_grid(embed_dim - embed_dim_temporal, _square_grid(grid_size))
    temporal = get_1d_sincos_pos_embed_from_grid(embed_dim_temporal, np.arange(t_size, dtype=np.float32))
    num_spatial = spatial.shape[0]
    pos_embed = np.concatenate(
        [np.repeat(temporal, num_spatial, axis=0), np.tile(spatial, (t_size, 1))],
        axis=1,
    )
    if cls_token:
        pos_embed = np.concatenate([np.zeros([1, embed_dim]), pos_embed], axis=0)
    return pos_embed
