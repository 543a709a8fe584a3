"""MixUp, CutMix and MixVideo (``pytorchvideo.transforms.mix`` API).

Layout: a batch of clips ``B, C, T, H, W`` (any ``B, ..., H, W`` works), floating point, mixed with its own
reverse along the batch (sample i with sample B - 1 - i). Optional audio ``B, ..., T, F`` is mixed the same
way. Inputs are not modified in place. Randomness comes from the global torch RNG.
"""
from typing import Optional, Tuple, Union

import torch

from .functional import convert_to_one_hot

_MixResult = Union[Tuple[torch.Tensor, torch.Tensor], Tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


def _mix_labels(labels: torch.Tensor, num_classes: int, lam: float = 1.0, label_smoothing: float = 0.0,
                one_hot: bool = False) -> torch.Tensor:
    """``lam * onehot(labels) + (1 - lam) * onehot(labels.flip(0))``; with ``one_hot`` the labels already are."""
    if one_hot:
        first, second = labels, labels.flip(0)
    else:
        first = convert_to_one_hot(labels, num_classes, label_smoothing)
        second = convert_to_one_hot(labels.flip(0), num_classes, label_smoothing)
    return first * lam + second * (1.0 - lam)


def _check_batch(x: torch.Tensor, name: str, what: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{what}: {name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() < 3:
        raise ValueError(f"{what}: {name} must be a batch [B, ..., H, W], got shape {tuple(x.shape)}")
    if x.size(0) < 2:
        raise ValueError(f"{what} cannot be applied to a single instance (batch size {x.size(0)})")
    if not x.dtype.is_floating_point:
        raise TypeError(f"{what}: {name} must be floating point, got dtype {x.dtype}")


class MixUp(torch.nn.Module):
    """MixUp (https://arxiv.org/abs/1710.09412): ``lam * x + (1 - lam) * x.flip(0)``, lam ~ Beta(alpha, alpha)."""

    def __init__(self, alpha: float = 1.0, label_smoothing: float = 0.0, num_classes: int = 400,
                 one_hot: bool = False) -> None:
        super().__init__()
        self.mixup_beta_sampler = torch.distributions.Beta(float(alpha), float(alpha))
        self.label_smoothing = label_smoothing
        self.num_classes = num_classes
        self.one_hot = one_hot

    def forward(self, x_video: torch.Tensor, labels: torch.Tensor,
                x_audio: Optional[torch.Tensor] = None) -> _MixResult:
        """Returns ``(video, labels)``, or ``(video, audio, labels)`` when ``x_audio`` is given."""
        _check_batch(x_video, "x_video", "MixUp")
        lam = self.mixup_beta_sampler.sample().item()
        mixed_video = x_video * lam + x_video.flip(0) * (1.0 - lam)
        new_labels = _mix_labels(labels, self.num_classes, lam, self.label_smoothing, self.one_hot)
        if x_audio is None:
            return mixed_video, new_labels
        _check_batch(x_audio, "x_audio", "MixUp")
        mixed_audio = x_audio * lam + x_audio.flip(0) * (1.0 - lam)
        return mixed_video, mixed_audio, new_labels


class CutMix(torch.nn.Module):
    """CutMix (https://arxiv.org/abs/1905.04899): pastes a box of ``x.flip(0)`` (same box in every frame)
    whose area is about ``1 - lam`` of the frame, lam ~ Beta(alpha, alpha); labels mix by the exact area kept.
    """

    def __init__(self, alpha: float = 1.0, label_smoothing: float = 0.0, num_classes: int = 400,
                 one_hot: bool = False) -> None:
        super().__init__()
        self.one_hot = one_hot
        self.cutmix_beta_sampler = torch.distributions.Beta(float(alpha), float(alpha))
        self.label_smoothing = label_smoothing
        self.num_classes = num_classes

    def _clip(self, value: int, min_value: int, max_value: int) -> int:
        return min(max(value, min_value), max_value)

    def _get_rand_box(self, input_shape: Tuple[int, ...], cutmix_lamda: float) -> Tuple[int, int, int, int]:
        """A box (y_low, y_high, x_low, x_high) with sides sqrt(1 - lam) of the frame, centred at random."""
        ratio = (1 - cutmix_lamda) ** 0.5
        input_h, input_w = input_shape[-2:]
        cut_h, cut_w = int(input_h * ratio), int(input_w * ratio)
        cy = torch.randint(input_h, (1,)).item()
        cx = torch.randint(input_w, (1,)).item()
        yl = self._clip(cy - cut_h // 2, 0, input_h)
        yh = self._clip(cy + cut_h // 2, 0, input_h)
        xl = self._clip(cx - cut_w // 2, 0, input_w)
        xh = self._clip(cx + cut_w // 2, 0, input_w)
        return yl, yh, xl, xh

    def _cutmix(self, x: torch.Tensor, cutmix_lamda: float) -> Tuple[torch.Tensor, float]:
        """The mixed copy of ``x`` and the fraction of each frame that is still its own."""
        yl, yh, xl, xh = self._get_rand_box(x.size(), cutmix_lamda)
        box_area = float((yh - yl) * (xh - xl))
        mixed = x.clone()
        mixed[..., yl:yh, xl:xh] = x.flip(0)[..., yl:yh, xl:xh]
        return mixed, 1.0 - box_area / (x.size(-2) * x.size(-1))

    def forward(self, x_video: torch.Tensor, labels: torch.Tensor,
                x_audio: Optional[torch.Tensor] = None) -> _MixResult:
        """Returns ``(video, labels)``, or ``(video, audio, labels)`` when ``x_audio`` is given (the audio
        gets its own random box of the same lambda)."""
        _check_batch(x_video, "x_video", "CutMix")
        cutmix_lamda = self.cutmix_beta_sampler.sample().item()
        mixed_video, kept_fraction = self._cutmix(x_video, cutmix_lamda)
        new_labels = _mix_labels(labels, self.num_classes, kept_fraction, self.label_smoothing, self.one_hot)
        if x_audio is None:
            return mixed_video, new_labels
        _check_batch(x_audio, "x_audio", "CutMix")
        mixed_audio, _ = self._cutmix(x_audio, cutmix_lamda)
        return mixed_video, mixed_audio, new_labels


class MixVideo(torch.nn.Module):
    """Applies CutMix with probability ``cutmix_prob``, else MixUp."""

    def __init__(self, cutmix_prob: float = 0.5, mixup_alpha: float = 1.0, cutmix_alpha: float = 1.0,
                 label_smoothing: float = 0.0, num_classes: int = 400, one_hot: bool = False):
        super().__init__()
        if not 0.0 <= cutmix_prob <= 1.0:
            raise ValueError(f"cutmix_prob must be in [0, 1], got {cutmix_prob}")
        self.cutmix_prob = cutmix_prob
        self.mixup = MixUp(alpha=mixup_alpha, label_smoothing=label_smoothing, num_classes=num_classes,
                           one_hot=one_hot)
        self.cutmix = CutMix(alpha=cutmix_alpha, label_smoothing=label_smoothing, num_classes=num_classes,
                             one_hot=one_hot)

    def forward(self, x_video: torch.Tensor, labels: torch.Tensor,
                x_audio: Optional[torch.Tensor] = None) -> _MixResult:
        """Returns ``(video, labels)``, or ``(video, audio, labels)`` when ``x_audio`` is given."""
        mixer = self.cutmix if torch.rand(1).item() < self.cutmix_prob else self.mixup
        return mixer(x_video, labels, x_audio=x_audio)
