"""Audio features in torch only: power spectrogram and log-mel spectrogram, laid out ``[..., T, F]``.

Conventions (those of torchaudio's defaults, so features match models trained with it):
- frames every ``hop_length`` samples, ``center=True`` pads ``n_fft // 2`` samples on each side by
  reflection, periodic Hann window of ``win_length`` (zero-padded to ``n_fft``);
- mel scale is HTK's, ``mel = 2595 * log10(1 + hz / 700)``; filters are unnormalised triangles
  between adjacent points of ``n_mels + 2`` equally spaced mels from ``f_min`` to ``f_max``;
- log-mel is ``log(mel_power + eps)`` (natural log).
Audio of a clip [start, end) holds samples ceil(start * rate) .. ceil(end * rate) - 1, the same
end-exclusive rule as video frames.
"""
import math
from typing import Optional, Tuple

import torch
from torch import nn


def audio_sample_range(start_sec: float, end_sec: float, sample_rate: int) -> Tuple[int, int]:
    """First sample index and one past the last of the clip [start_sec, end_sec)."""
    if end_sec < start_sec:
        raise ValueError(f"clip ends before it starts: [{start_sec}, {end_sec})")
    return max(0, math.ceil(start_sec * sample_rate)), max(0, math.ceil(end_sec * sample_rate))


def hz_to_mel(hz: torch.Tensor) -> torch.Tensor:
    return 2595.0 * torch.log10(1.0 + hz / 700.0)


def mel_to_hz(mel: torch.Tensor) -> torch.Tensor:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


def mel_filterbank(n_freqs: int, f_min: float, f_max: float, n_mels: int, sample_rate: int) -> torch.Tensor:
    """Triangular filters ``[n_freqs, n_mels]`` mapping a one-sided power spectrum to mel bands."""
    if not 0 <= f_min < f_max <= sample_rate / 2:
        raise ValueError(f"need 0 <= f_min < f_max <= sample_rate/2, got f_min={f_min}, f_max={f_max}, rate={sample_rate}")
    bin_hz = torch.linspace(0, sample_rate / 2, n_freqs, dtype=torch.float64)
    mel_points = torch.linspace(hz_to_mel(torch.tensor(f_min, dtype=torch.float64)),
                                hz_to_mel(torch.tensor(f_max, dtype=torch.float64)), n_mels + 2, dtype=torch.float64)
    hz_points = mel_to_hz(mel_points)
    lower, centre, upper = hz_points[:-2], hz_points[1:-1], hz_points[2:]
    rising = (bin_hz[:, None] - lower) / (centre - lower)
    falling = (upper - bin_hz[:, None]) / (upper - centre)
    return torch.clamp(torch.minimum(rising, falling), min=0).to(torch.float32)


def spectrogram(
    waveform: torch.Tensor,
    n_fft: int = 400,
    hop_length: Optional[int] = None,
    win_length: Optional[int] = None,
    power: float = 2.0,
    center: bool = True,
) -> torch.Tensor:
    """``|STFT|^power`` of ``waveform [..., samples]`` as ``[..., T, n_fft // 2 + 1]``."""
    if waveform.dim() == 0 or waveform.shape[-1] == 0:
        raise ValueError(f"waveform must be [..., samples] with samples > 0, got shape {tuple(waveform.shape)}")
    win_length = win_length or n_fft
    hop_length = hop_length or win_length // 2
    batch_shape = waveform.shape[:-1]
    window = torch.hann_window(win_length, periodic=True, dtype=waveform.dtype, device=waveform.device)
    stft = torch.stft(
        waveform.reshape(-1, waveform.shape[-1]), n_fft, hop_length, win_length, window,
        center=center, pad_mode="reflect", return_complex=True,
    )
    magnitude = stft.abs().pow(power)  # [B, F, T]
    return magnitude.transpose(-1, -2).reshape(*batch_shape, magnitude.shape[-1], magnitude.shape[-2])


def log_mel_spectrogram(
    waveform: torch.Tensor,
    sample_rate: int,
    n_fft: int = 400,
    hop_length: Optional[int] = None,
    n_mels: int = 80,
    f_min: float = 0.0,
    f_max: Optional[float] = None,
    eps: float = 1e-6,
) -> torch.Tensor:
    """``log(mel power + eps)`` as ``[..., T, n_mels]``."""
    return LogMelSpectrogram(sample_rate, n_fft, hop_length, n_mels, f_min, f_max, eps).to(waveform.device)(waveform)


class LogMelSpectrogram(nn.Module):
    """Module form of ``log_mel_spectrogram`` (filters built once), e.g. for ``ApplyTransformToKey("audio", ...)``."""

    def __init__(
        self,
        sample_rate: int,
        n_fft: int = 400,
        hop_length: Optional[int] = None,
        n_mels: int = 80,
        f_min: float = 0.0,
        f_max: Optional[float] = None,
        eps: float = 1e-6,
    ) -> None:
        super().__init__()
        self.n_fft, self.hop_length, self.eps = n_fft, hop_length, eps
        self.register_buffer(
            "filters", mel_filterbank(n_fft // 2 + 1, f_min, f_max or sample_rate / 2, n_mels, sample_rate), persistent=False
        )

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        return torch.log(spectrogram(waveform.float(), self.n_fft, self.hop_length) @ self.filters + self.eps)
