"""Epic-Kitchens: action annotations over long kitchen videos (frame folders or encoded files)."""
from .epic_kitchen_dataset import (  # noqa: F401
    ActionData,
    EncodedVideoInfo,
    EpicKitchenClip,
    EpicKitchenDataset,
    EpicKitchenDatasetType,
    VideoFrameInfo,
    VideoInfo,
)
