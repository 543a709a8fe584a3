"""Names of the video decoding backends, as accepted by ``EncodedVideo.from_path(decoder=...)``."""
from enum import Enum


class DecoderType(Enum):
    """``NATIVE`` is pyvideo's FFmpeg decoder (C++). The legacy PyTorchVideo names are still accepted:
    ``PYAV`` and ``TORCHVISION`` route to the native decoder (torchvision's video reader no longer exists in
    pip wheels), and ``DECORD`` does too, with a DeprecationWarning. The pure-PyAV reference backend is
    ``pyvideo.data.encoded_video_pyav.EncodedVideoPyAV``."""

    PYAV = "pyav"
    TORCHVISION = "torchvision"
    DECORD = "decord"
    NATIVE = "native"
