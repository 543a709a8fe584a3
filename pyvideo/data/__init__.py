"""pyvideo.data: videos, clip samplers and datasets (mirrors ``pytorchvideo.data``)."""
from .clip_sampling import (  # noqa: F401
    ClipInfo,
    ClipInfoList,
    ClipSampler,
    ConstantClipsPerVideoSampler,
    RandomClipSampler,
    RandomMultiClipSampler,
    UniformClipSampler,
    make_clip_sampler,
)
