"""Generic containers that models are assembled from."""
from typing import List, Optional

import torch
import torch.nn as nn

from pyvideo.layers.utils import set_attributes
from pyvideo.models.weight_init import init_net_weights


class Net(nn.Module):
    """Runs ``blocks`` in order; weights are initialised ResNet-style at construction."""

    def __init__(self, *, blocks: nn.ModuleList) -> None:
        super().__init__()
        if blocks is None:
            raise ValueError("Net needs a ModuleList of blocks")
        self.blocks = blocks
        init_net_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x


class DetectionBBoxNetwork(nn.Module):
    """A backbone followed by a box-pooling head; returns one row of scores per box."""

    def __init__(self, model: nn.Module, detection_head: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.detection_head = detection_head

    def forward(self, x: torch.Tensor, bboxes: torch.Tensor) -> torch.Tensor:
        """``bboxes`` is (N, 5): batch index, x1, y1, x2, y2 in input-pixel coordinates."""
        features = self.model(x)
        out = self.detection_head(features, bboxes)
        return out.reshape(out.shape[0], -1)


class MultiPathWayWithFuse(nn.Module):
    """Runs block ``i`` on pathway ``i`` (a ``None`` block leaves it unchanged), then the fusion on the list.

    With ``inplace=True`` the input list itself is overwritten with the results (upstream's behaviour);
    with ``inplace=False`` a new list is returned and the caller's list is left alone.
    """

    def __init__(
        self,
        *,
        multipathway_blocks: nn.ModuleList,
        multipathway_fusion: Optional[nn.Module],
        inplace: Optional[bool] = True,
    ) -> None:
        super().__init__()
        set_attributes(self, locals())

    def forward(self, x: List[torch.Tensor]) -> List[torch.Tensor]:
        if not isinstance(x, (list, tuple)):
            raise TypeError(f"MultiPathWayWithFuse expects a list with one tensor per pathway, got {type(x).__name__}")
        if len(x) != len(self.multipathway_blocks):
            raise ValueError(f"expected {len(self.multipathway_blocks)} pathways, got {len(x)} inputs")
        x_out = x if (self.inplace and isinstance(x, list)) else list(x)
        for index, block in enumerate(self.multipathway_blocks):
            if block is not None:
                x_out[index] = block(x[index])
        if self.multipathway_fusion is not None:
            x_out = self.multipathway_fusion(x_out)
        return x_out
