"""Videos stored as encoded files (MP4, AVI, WebM, ...), opened with a choice of decoding backend."""
import io
import os
import pathlib
import warnings
from typing import Any, Dict, Type, Union

from pyvideo.data.decoder import DecoderType
from pyvideo.data.video import Video


def select_video_class(decoder: Union[str, DecoderType]) -> Type["EncodedVideo"]:
    """The backend class for a decoder name. "native" (and the legacy "pyav" and "torchvision") give the native
    FFmpeg decoder; "decord" does too, with a DeprecationWarning."""
    try:
        decoder_type = DecoderType(decoder.value if isinstance(decoder, DecoderType) else decoder)
    except ValueError:
        names = ", ".join(repr(t.value) for t in DecoderType)
        raise ValueError(f"unknown decoder {decoder!r}; expected one of {names}") from None
    if decoder_type == DecoderType.DECORD:
        warnings.warn(
            'decoder="decord" is deprecated (decord is unmaintained); using pyvideo\'s native decoder instead',
            DeprecationWarning,
            stacklevel=3,
        )
    from pyvideo.data.encoded_video_native import EncodedVideoNative

    return EncodedVideoNative


class EncodedVideo(Video):
    """Base class of encoded-video backends; open files with :meth:`from_path`."""

    @classmethod
    def from_path(cls, file_path, decode_video: bool = True, decode_audio: bool = True, decoder: str = "native",
                  **other_args: Any) -> "EncodedVideo":
        """Open ``file_path`` with the backend named by ``decoder``. ``other_args`` go to the backend (for the native
        one: ``num_threads``, ``width``/``height`` or ``short_side``, ``interpolation``, ``sample_rate``, ``mono``)."""
        path = os.fspath(file_path)
        if not os.path.exists(path):
            raise FileNotFoundError(f"video file not found: {path}")
        video_cls = select_video_class(decoder)
        return video_cls(file=path, video_name=pathlib.Path(path).name, decode_video=decode_video,
                         decode_audio=decode_audio, **other_args)


def video_metadata(path) -> Dict[str, Any]:
    """The metadata of a video file as a flat dict (what ``pyvideo info VIDEO`` prints)."""
    from pyvideo.data.encoded_video_native import native_decode

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"video file not found: {path}")
    info = native_decode().VideoDecoder(path, num_threads=1).info()
    flat: Dict[str, Any] = {
        "file": info["name"],
        "container": info["container"],
        "duration": round(info["duration"], 6),
        "bit_rate": info["bit_rate"],
        "streams": ", ".join(f"#{s['index']} {s['type']} ({s['codec']})" for s in info["streams"]),
    }
    for kind in ("video", "audio"):
        for key, value in (info[kind] or {}).items():
            if key == "time_base":
                value = f"{value[0]}/{value[1]}"
            flat[f"{kind}_{key}"] = value
    return flat


def read_file_like(file: Union[str, os.PathLike, bytes, io.IOBase]) -> Union[str, bytes]:
    """A path stays a path; bytes and file-like objects (e.g. the BytesIO PyTorchVideo passes) become bytes."""
    if isinstance(file, (str, os.PathLike)):
        return os.fspath(file)
    if isinstance(file, (bytes, bytearray, memoryview)):
        return bytes(file)
    if hasattr(file, "read"):
        if hasattr(file, "seek"):
            file.seek(0)
        data = file.read()
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError("the video file object must be opened in binary mode")
        return bytes(data)
    raise TypeError(f"expected a path, bytes or a binary file object, not {type(file).__name__}")
