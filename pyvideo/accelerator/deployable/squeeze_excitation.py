"""FusedSqueezeExcitation: squeeze-excitation with its following activation fused in."""
import torch
import torch.nn as nn

from .activation import apply_activation, check_activation_kind


class FusedSqueezeExcitation(nn.Module):
    """``activation(x * sigmoid(fc1(hidden_activation(fc0(mean(x))))))``, the mean over all dims after C.

    Attributes: ``fc0`` (nn.Linear C -> C_reduced), ``fc1`` (nn.Linear C_reduced -> C), ``hidden_activation`` and
    ``activation`` (strings from ``ACTIVATION_KINDS``). Works on [N, C, T, H, W] or [N, C, H, W] of any size.
    """

    def __init__(self, fc0: nn.Linear, fc1: nn.Linear, hidden_activation: str = "relu", activation: str = "identity"):
        super().__init__()
        self.fc0 = fc0
        self.fc1 = fc1
        self.hidden_activation = check_activation_kind(hidden_activation)
        self.activation = check_activation_kind(activation)

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        """Per-sample, per-channel scale in (0, 1), shaped [N, C, 1, ...] to broadcast over x."""
        squeezed = x.mean(dim=tuple(range(2, x.dim())))
        hidden = apply_activation(self.fc0(squeezed), self.hidden_activation)
        return torch.sigmoid(self.fc1(hidden)).reshape(*squeezed.shape, *([1] * (x.dim() - 2)))

    def fuse_activation(self, activation: str) -> None:
        """Apply ``activation`` to the output; only allowed while the output activation is identity."""
        if self.activation != "identity":
            raise ValueError(f"FusedSqueezeExcitation already ends in {self.activation!r}")
        self.activation = check_activation_kind(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return apply_activation(x * self.gate(x), self.activation)

    def extra_repr(self) -> str:
        return f"hidden_activation={self.hidden_activation}, activation={self.activation}"


def linear_from_pointwise_conv(conv: nn.Module) -> nn.Linear:
    """The nn.Linear computing a 1x1x1 conv's (nn.Conv3d or FusedConv3d, ungrouped) map of the channels, on the
    conv's device and dtype, for an SE's fc layers."""
    weight = conv.weight.detach()
    linear = nn.Linear(conv.in_channels, conv.out_channels, bias=conv.bias is not None, device=weight.device,
                       dtype=weight.dtype)  # fmt: skip
    with torch.no_grad():
        linear.weight.copy_(weight.reshape(conv.out_channels, conv.in_channels))
        if conv.bias is not None:
            linear.bias.copy_(conv.bias)
    return linear
