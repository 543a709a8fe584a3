"""pyvideo.data: clip samplers and datasets (mirrors ``pytorchvideo.data``).

Decoding lives in ``pyvideo.data.encoded_video`` / ``frame_video`` / ``video``; datasets import it
on first use, so samplers and annotation parsing work without the compiled extension.
"""
from .ava import Ava  # noqa: F401
from .bad_data import BadVideoWarning  # noqa: F401
from .charades import Charades  # noqa: F401
from .clip_dataset import LabeledVideoClipDataset  # noqa: F401
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
from .domsev import DomsevFrameDataset, DomsevVideoDataset  # noqa: F401
from .epic_kitchen_forecasting import EpicKitchenForecasting  # noqa: F401
from .epic_kitchen_recognition import EpicKitchenRecognition  # noqa: F401
from .hmdb51 import Hmdb51  # noqa: F401
from .json_dataset import clip_recognition_dataset, video_only_dataset  # noqa: F401
from .kinetics import Kinetics  # noqa: F401
from .labeled_video_dataset import LabeledVideoDataset, labeled_video_dataset  # noqa: F401
from .labeled_video_paths import LabeledVideoPaths  # noqa: F401
from .ssv2 import SSv2  # noqa: F401
from .ucf101 import Ucf101  # noqa: F401
