"""Modules for variable-length sequences of features, carried with a validity mask (B, T), True = valid."""
from typing import List, Optional, Tuple

import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence

from pyvideo.layers.utils import set_attributes


def _require_sequence(x: torch.Tensor, who: str) -> None:
    if x.dim() != 3:
        raise ValueError(f"{who} expects (batch, seq_len, feature_dim) input, got shape {tuple(x.shape)}")


def _all_valid(x: torch.Tensor) -> torch.Tensor:
    return torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)


class MaskedTemporalPooling(nn.Module):
    """Pools (B, T, C) over the valid time steps with "max", "avg" or "sum"; rows without any valid step give 0."""

    def __init__(self, method: str) -> None:
        super().__init__()
        if method not in ("max", "avg", "sum"):
            raise ValueError(f"method must be 'max', 'avg' or 'sum', got {method!r}")
        self._method = method

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        _require_sequence(x, "MaskedTemporalPooling")
        if mask is None:
            mask = _all_valid(x)
        valid = mask.unsqueeze(-1)
        if self._method == "max":
            pooled = x.masked_fill(~valid, float("-inf")).max(dim=1).values
            return pooled.masked_fill(~mask.any(dim=1, keepdim=True), 0.0)
        summed = (x * valid.to(x.dtype)).sum(dim=1)
        if self._method == "sum":
            return summed
        lengths = mask.sum(dim=1, keepdim=True).clamp(min=1).to(x.dtype)
        return summed / lengths


class TransposeMultiheadAttention(nn.Module):
    """Batch-first self-attention over (B, T, C); masked (invalid) steps are ignored as keys."""

    def __init__(self, feature_dim: int, num_heads: int = 1) -> None:
        super().__init__()
        self._attention = nn.MultiheadAttention(embed_dim=feature_dim, num_heads=num_heads)
        self._attention_weights = None

    @property
    def attention_weights(self) -> Optional[torch.Tensor]:
        """Attention weights of the last forward call, (B, T, T)."""
        return self._attention_weights

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        _require_sequence(x, "TransposeMultiheadAttention")
        x = x.transpose(0, 1)
        padding = None if mask is None else ~mask
        output, weights = self._attention(x, x, x, key_padding_mask=padding)
        self._attention_weights = weights
        return output.transpose(0, 1)


class LearnMaskedDefault(nn.Module):
    """Replaces every sample that has no valid step at all with a learned default feature vector."""

    def __init__(self, feature_dim: int, init_method: str = "gaussian", freeze: bool = False) -> None:
        super().__init__()
        if init_method == "zeros":
            defaults = torch.zeros(feature_dim)
        elif init_method == "gaussian":
            defaults = torch.randn(feature_dim)
        else:
            raise NotImplementedError(f"init_method {init_method!r} is not 'gaussian' or 'zeros'")
        self._learned_defaults = nn.Parameter(defaults, requires_grad=not freeze)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        has_valid = mask.reshape(mask.shape[0], -1).any(dim=-1)
        has_valid = has_valid.reshape([-1] + [1] * (x.dim() - 1)).to(x.dtype)
        return x * has_valid + self._learned_defaults * (1 - has_valid)


class LSTM(nn.Module):
    """Batch-first LSTM over the valid prefix of each sequence; returns the last hidden state (B, output_dim)."""

    def __init__(self, dim_in: int, hidden_dim: int, dropout: float = 0.0, bidirectional: bool = False) -> None:
        super().__init__()
        self.lstm = nn.LSTM(dim_in, hidden_dim, batch_first=True, dropout=dropout, bidirectional=bidirectional)
        self.lstm.flatten_parameters()
        self.output_dim = 2 * hidden_dim if bidirectional else hidden_dim
        self.bidirectional = bidirectional

    def forward(self, data: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        _require_sequence(data, "LSTM")
        if mask is None:
            mask = _all_valid(data)
        lengths = mask.sum(dim=1).clamp(1, data.shape[1])
        packed = pack_padded_sequence(data, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, (hidden, _) = self.lstm(packed)
        if self.bidirectional:
            return torch.cat([hidden[0], hidden[1]], dim=-1)
        return hidden[-1]


class TransposeTransformerEncoder(nn.Module):
    """Batch-first transformer encoder; returns the output at the first position (B, C)."""

    def __init__(self, dim_in: int, num_heads: int = 1, num_layers: int = 1) -> None:
        super().__init__()
        # sequence-first layers (upstream layout); nested tensors need batch_first, so they stay off
        self.encoder = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(dim_in, num_heads), num_layers, enable_nested_tensor=False
        )

    def forward(self, data: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        _require_sequence(data, "TransposeTransformerEncoder")
        padding = None if mask is None else ~mask
        encoded = self.encoder(src=data.transpose(0, 1), src_key_padding_mask=padding)
        return encoded.transpose(0, 1)[:, 0, :]


_MASK_TYPES = (
    MaskedTemporalPooling, LearnMaskedDefault, TransposeMultiheadAttention, LSTM, TransposeTransformerEncoder,
)


class MaskedSequential(nn.Sequential):
    """``nn.Sequential`` whose ``forward(input, mask)`` hands the mask to the modules that take one."""

    def forward(self, input: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        for module in self:
            input = module(input, mask=mask) if isinstance(module, _MASK_TYPES) else module(input)
        return input


class MaskedMultiPathWay(nn.Module):
    """Runs block i on the (x, mask) pair of pathway i, then the fusion on the list of outputs."""

    def __init__(self, *, multipathway_blocks: nn.ModuleList, multipathway_fusion: Optional[nn.Module]) -> None:
        super().__init__()
        set_attributes(self, locals())

    def forward(self, x_and_mask: List[Tuple[torch.Tensor, torch.Tensor]]):
        if len(x_and_mask) != len(self.multipathway_blocks):
            raise ValueError(f"expected {len(self.multipathway_blocks)} (x, mask) pairs, got {len(x_and_mask)}")
        outputs = [block(*pair) for block, pair in zip(self.multipathway_blocks, x_and_mask)]
        if self.multipathway_fusion is None:
            return outputs
        return self.multipathway_fusion(outputs)
