"""Fusion of several feature streams: concatenation or an element-wise reduction."""
from typing import List

import torch
import torch.nn as nn


def make_fusion_layer(method: str, feature_dims: List[int]) -> nn.Module:
    """Return the fusion layer for ``method``: "concat", "temporal_concat", "max", "sum" or "prod"."""
    if method == "concat":
        return ConcatFusion(feature_dims)
    if method == "temporal_concat":
        return TemporalConcatFusion(feature_dims)
    if method in ("max", "sum", "prod"):
        return ReduceFusion(feature_dims, method)
    raise NotImplementedError(f"fusion method {method!r} is not one of concat, temporal_concat, max, sum, prod")


def _require_equal_dims(feature_dims: List[int], what: str) -> None:
    if len(set(feature_dims)) != 1:
        raise ValueError(f"{what} needs equal feature dims, got {list(feature_dims)}")


class ConcatFusion(nn.Module):
    """Concatenates the inputs on the last (feature) dimension."""

    def __init__(self, feature_dims: List[int]) -> None:
        super().__init__()
        self._output_dim = sum(feature_dims)

    @property
    def output_dim(self) -> int:
        return self._output_dim

    def forward(self, input_list: List[torch.Tensor]) -> torch.Tensor:
        return torch.cat(input_list, dim=-1)


class TemporalConcatFusion(nn.Module):
    """Concatenates (B, T, C) inputs along time (dim 1); all inputs must share C."""

    def __init__(self, feature_dims: List[int]) -> None:
        super().__init__()
        _require_equal_dims(feature_dims, "TemporalConcatFusion")
        self._output_dim = feature_dims[0]

    @property
    def output_dim(self) -> int:
        return self._output_dim

    def forward(self, input_list: List[torch.Tensor]) -> torch.Tensor:
        return torch.cat(input_list, dim=1)


class ReduceFusion(nn.Module):
    """Reduces equally shaped inputs element-wise with max, sum or prod."""

    def __init__(self, feature_dims: List[int], reduce_fn: str) -> None:
        super().__init__()
        if reduce_fn not in ("max", "sum", "prod"):
            raise ValueError(f"reduce_fn must be max, sum or prod, got {reduce_fn!r}")
        _require_equal_dims(feature_dims, "ReduceFusion")
        self.reduce_fn = reduce_fn
        self._output_dim = feature_dims[0]

    @property
    def output_dim(self) -> int:
        return self._output_dim

    def forward(self, input_list: List[torch.Tensor]) -> torch.Tensor:
        stacked = torch.stack(input_list, dim=-1)
        if self.reduce_fn == "max":
            return stacked.max(dim=-1).values
        if self.reduce_fn == "sum":
            return stacked.sum(dim=-1)
        return stacked.prod(dim=-1)
