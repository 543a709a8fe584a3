"""The pure-PyAV reference backend, decoding the way PyTorchVideo does (seek, decode the window, convert each frame
in Python). PyAV is optional: pyvideo's native decoder is the default and much faster; this backend serves as an
independent reference and as the baseline in bench/decode.py."""
import io
from typing import Dict, List, Optional

import torch

from pyvideo.data.encoded_video import EncodedVideo, read_file_like
from pyvideo.data.utils import secs_to_pts, thwc_to_cthw


def _import_av():
    try:
        import av
    except ImportError as error:
        raise ImportError("EncodedVideoPyAV needs PyAV (`pip install av`); pyvideo's default native decoder "
                          "(decoder=\"native\") does not") from error
    return av


class EncodedVideoPyAV(EncodedVideo):
    """A video decoded with PyAV. Same clip semantics as the native backend: frames with pts in
    [start, end) (relative to the stream start), audio mixed to mono as the mean of the channels."""

    def __init__(self, file, video_name: Optional[str] = None, decode_video: bool = True, decode_audio: bool = True,
                 perform_seek: bool = True) -> None:
        av = _import_av()
        source = read_file_like(file)
        self._name = video_name or (source if isinstance(source, str) else "<bytes>")
        self._decode_video = decode_video
        self._decode_audio = decode_audio
        self._perform_seek = perform_seek
        try:
            self._container = av.open(source if isinstance(source, str) else io.BytesIO(source))
        except av.FFmpegError as error:
            raise RuntimeError(f"failed to open video {self._name} with PyAV: {error}") from error
        self._video_stream = self._container.streams.video[0] if self._container.streams.video else None
        self._audio_stream = (self._container.streams.audio[0]
                              if decode_audio and self._container.streams.audio else None)
        durations = [self._stream_duration(s) for s in (self._video_stream, self._audio_stream) if s is not None]
        if not durations:
            raise RuntimeError(f"{self._name} has no video or audio stream")
        self._duration = max(durations)

    @staticmethod
    def _stream_duration(stream) -> float:
        if stream.duration is not None:
            return float(stream.duration * stream.time_base)
        return float(stream.container.duration or 0) / 1e6

    @property
    def name(self) -> str:
        return self._name

    @property
    def duration(self) -> float:
        return self._duration

    @property
    def rate(self):
        return self._video_stream.base_rate if self._video_stream else None

    @property
    def bit_rate(self):
        return self._video_stream.bit_rate if self._video_stream else None

    @property
    def pix_fmt(self):
        return self._video_stream.pix_fmt if self._video_stream else None

    def get_clip(self, start_sec: float, end_sec: float) -> Dict[str, Optional[torch.Tensor]]:
        if start_sec < 0 or end_sec < start_sec:
            raise ValueError(f"{self._name}: invalid clip range [{start_sec}, {end_sec})")
        video = audio = None
        if self._decode_video and self._video_stream is not None:
            frames = self._decode_window(self._video_stream, start_sec, end_sec)
            if frames:
                video = thwc_to_cthw(torch.stack(
                    [torch.from_numpy(f.to_rgb().to_ndarray()) for f in frames])).to(torch.float32)
        if self._audio_stream is not None:
            frames = self._decode_window(self._audio_stream, start_sec, end_sec)
            if frames:
                audio = torch.cat([torch.from_numpy(f.to_ndarray()).float().reshape(len(f.layout.channels), -1)
                                   .mean(0) for f in frames])
        return {"video": video, "audio": audio}

    def _decode_window(self, stream, start_sec: float, end_sec: float) -> List:
        """Frames whose pts lies in [start, end): seek a little before start, decode forward, keep the window."""
        origin = stream.start_time or 0
        start_pts = secs_to_pts(start_sec, stream.time_base, origin, round_mode="ceil")
        end_pts = secs_to_pts(end_sec, stream.time_base, origin, round_mode="ceil")
        if self._perform_seek:
            self._container.seek(int(max(start_pts - 1024, origin)), any_frame=False, backward=True, stream=stream)
        else:
            self._container.seek(int(origin), backward=True, stream=stream)
        frames = []
        for frame in self._container.decode(stream):
            pts = frame.pts
            if pts is None:
                continue
            if pts >= end_pts:
                break
            if pts >= start_pts:
                frames.append(frame)
        return sorted(frames, key=lambda f: f.pts)

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None

