"""IMU (accelerometer/gyroscope) streams from CSV, cut into windows aligned with video clips.

The CSV has a header; one column holds timestamps (seconds, or ms/us/ns via ``time_unit``), the
others (or those named in ``channels``) hold one value per sample. A window [start, end) holds the
samples whose timestamp lies in it, the same end-exclusive rule as video frames; ``resample``
instead gives a fixed number of values per window, linearly interpolated at start + i * (end - start) / n.
"""
import csv
from typing import Any, Dict, Mapping, Optional, Sequence

import torch

_SECONDS_PER_UNIT = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}


class ImuData:
    """Samples ``values [C, N]`` at increasing ``timestamps [N]`` (seconds, float64)."""

    def __init__(self, timestamps: torch.Tensor, values: torch.Tensor, channel_names: Sequence[str]) -> None:
        if timestamps.dim() != 1 or values.dim() != 2 or values.shape[1] != timestamps.shape[0]:
            raise ValueError(f"need timestamps [N] and values [C, N], got {tuple(timestamps.shape)} and {tuple(values.shape)}")
        if timestamps.numel() == 0:
            raise ValueError("IMU stream has no samples")
        if (timestamps[1:] < timestamps[:-1]).any():
            raise ValueError("IMU timestamps must be non-decreasing")
        if len(channel_names) != values.shape[0]:
            raise ValueError(f"{len(channel_names)} channel names for {values.shape[0]} channels")
        self.timestamps = timestamps.to(torch.float64)
        self.values = values.to(torch.float32)
        self.channel_names = list(channel_names)

    @classmethod
    def from_csv(
        cls,
        path: str,
        timestamp_column: str = "timestamp",
        channels: Optional[Sequence[str]] = None,
        time_unit: str = "s",
    ) -> "ImuData":
        if time_unit not in _SECONDS_PER_UNIT:
            raise ValueError(f"time_unit must be one of {sorted(_SECONDS_PER_UNIT)}, got {time_unit!r}")
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            if timestamp_column not in header:
                raise ValueError(f"{path}: no {timestamp_column!r} column in header {header}")
            names = list(channels) if channels is not None else [c for c in header if c != timestamp_column]
            missing = [c for c in names if c not in header]
            if missing:
                raise ValueError(f"{path}: channels {missing} not in header {header}")
            rows = list(reader)
        try:
            times = torch.tensor([float(r[timestamp_column]) for r in rows], dtype=torch.float64)
            values = torch.tensor([[float(r[c]) for r in rows] for c in names], dtype=torch.float64)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{path}: non-numeric IMU value: {error}") from error
        return cls(times * _SECONDS_PER_UNIT[time_unit], values.reshape(len(names), len(rows)), names)

    @property
    def duration(self) -> float:
        return float(self.timestamps[-1] - self.timestamps[0])

    def get_window(self, start_sec: float, end_sec: float) -> Dict[str, torch.Tensor]:
        """``{"imu": [C, n], "imu_timestamps": [n]}`` for the samples with start <= t < end."""
        first = int(torch.searchsorted(self.timestamps, torch.tensor(float(start_sec), dtype=torch.float64), side="left"))
        last = int(torch.searchsorted(self.timestamps, torch.tensor(float(end_sec), dtype=torch.float64), side="left"))
        return {"imu": self.values[:, first:last], "imu_timestamps": self.timestamps[first:last]}

    def resample(self, start_sec: float, end_sec: float, num_samples: int) -> torch.Tensor:
        """``[C, num_samples]`` values linearly interpolated at start + i * (end - start) / num_samples
        (held constant before the first and after the last sample)."""
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        times = float(start_sec) + torch.arange(num_samples, dtype=torch.float64) * ((float(end_sec) - float(start_sec)) / num_samples)
        times = times.clamp(self.timestamps[0], self.timestamps[-1])
        right = torch.searchsorted(self.timestamps, times, side="right").clamp(1, len(self.timestamps) - 1)
        left = right - 1
        span = self.timestamps[right] - self.timestamps[left]
        weight = torch.where(span > 0, (times - self.timestamps[left]) / span.clamp_min(1e-12), torch.zeros_like(times))
        weight = weight.clamp(0, 1).to(torch.float32)
        return self.values[:, left] * (1 - weight) + self.values[:, right] * weight


class AddImuToClip:
    """Sample transform adding the IMU window of the sample's clip [clip_start_sec, clip_end_sec).

    ``imu_by_video`` maps the sample's ``video_key`` value (default ``video_name``) to its ImuData;
    ``offset_sec`` is the IMU time of the video's first frame. With ``num_samples`` the window is
    resampled to a fixed length (so clips batch), else it holds the raw samples.
    """

    def __init__(
        self,
        imu_by_video: Mapping[Any, ImuData],
        num_samples: Optional[int] = None,
        video_key: str = "video_name",
        offset_sec: float = 0.0,
        output_key: str = "imu",
    ) -> None:
        self._imu_by_video = imu_by_video
        self._num_samples = num_samples
        self._video_key = video_key
        self._offset_sec = offset_sec
        self._output_key = output_key

    def __call__(self, sample: Dict[str, Any]) -> Dict[str, Any]:
        video = sample[self._video_key]
        if video not in self._imu_by_video:
            raise KeyError(f"no IMU stream for {self._video_key}={video!r}")
        imu = self._imu_by_video[video]
        start = sample["clip_start_sec"] + self._offset_sec
        end = sample["clip_end_sec"] + self._offset_sec
        if self._num_samples is not None:
            sample[self._output_key] = imu.resample(start, end, self._num_samples)
        else:
            window = imu.get_window(start, end)
            sample[self._output_key] = window["imu"]
            sample[f"{self._output_key}_timestamps"] = window["imu_timestamps"]
        return sample
