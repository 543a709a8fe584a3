"""``create_video_transform``: the standard train / val pipelines (``pytorchvideo.transforms.transforms_factory``)."""
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import torch

from .augmix import AugMix
from .rand_augment import RandAugment
from .frame_transforms import CenterCropVideo, Compose, RandomCropVideo, RandomHorizontalFlipVideo, _pair
from .transforms import (
    ApplyTransformToKey,
    ConvertUint8ToFloat,
    Normalize,
    Permute,
    RandomResizedCrop,
    RandomShortSideScale,
    RemoveKey,
    ShortSideScale,
    UniformTemporalSubsample,
)

_RANDAUG_DEFAULT_PARAS = {
    "magnitude": 9,
    "num_layers": 2,
    "prob": 0.5,
    "transform_hparas": None,
    "sampling_type": "gaussian",
    "sampling_hparas": None,
}

_AUGMIX_DEFAULT_PARAS = {
    "magnitude": 3,
    "alpha": 1.0,
    "width": 3,
    "depth": -1,
    "transform_hparas": None,
    "sampling_hparas": None,
}

_RANDOM_RESIZED_CROP_DEFAULT_PARAS = {
    "scale": (0.08, 1.0),
    "aspect_ratio": (3.0 / 4.0, 4.0 / 3.0),
}

_AUGMENTATIONS = {"randaug": (RandAugment, _RANDAUG_DEFAULT_PARAS), "augmix": (AugMix, _AUGMIX_DEFAULT_PARAS)}


def _get_augmentation(aug_type: str, aug_paras: Optional[Dict[str, Any]] = None) -> List[Callable]:
    """The augmentation stage for ``aug_type`` ("default": none, "randaug", "augmix"), wrapped in the
    C,T,H,W <-> T,C,H,W permutes those image-style augmentations need. Missing ``aug_paras`` take defaults."""
    if aug_type == "default":
        return []
    if aug_type not in _AUGMENTATIONS:
        raise ValueError(f"aug_type must be 'default', 'randaug' or 'augmix', got {aug_type!r}")
    augmentation_class, defaults = _AUGMENTATIONS[aug_type]
    unknown = set(aug_paras or {}) - set(defaults)
    if unknown:
        raise ValueError(f"unknown aug_paras for {aug_type!r}: {sorted(unknown)}")
    paras = {**defaults, **(aug_paras or {})}
    to_frames_first = Permute((1, 0, 2, 3))
    return [to_frames_first, augmentation_class(**paras), to_frames_first]


def _check_arguments(mode: str, video_key: Optional[str], remove_key: Optional[List[str]],
                     crop_size: Tuple[int, int], min_size: int, max_size: int, aug_type: str,
                     aug_paras: Optional[Dict[str, Any]]) -> None:
    if mode not in ("train", "val"):
        raise ValueError(f"mode must be 'train' or 'val', got {mode!r}")
    if max(crop_size) > min_size:
        raise ValueError(f"crop_size {crop_size} must not exceed min_size ({min_size})")
    if min_size > max_size:
        raise ValueError(f"min_size ({min_size}) must not exceed max_size ({max_size})")
    if video_key is None and remove_key is not None:
        raise ValueError("remove_key needs video_key (it only applies to dict inputs)")
    if aug_type == "default" and aug_paras is not None:
        raise ValueError("aug_paras must be None for aug_type 'default'")


def create_video_transform(
    mode: str,
    video_key: Optional[str] = None,
    remove_key: Optional[List[str]] = None,
    num_samples: Optional[int] = 8,
    convert_to_float: bool = True,
    video_mean: Tuple[float, float, float] = (0.45, 0.45, 0.45),
    video_std: Tuple[float, float, float] = (0.225, 0.225, 0.225),
    min_size: int = 256,
    max_size: int = 320,
    crop_size: Union[int, Tuple[int, int]] = 224,
    horizontal_flip_prob: float = 0.5,
    aug_type: str = "default",
    aug_paras: Optional[Dict[str, Any]] = None,
    random_resized_crop_paras: Optional[Dict[str, Any]] = None,
) -> Union[Callable[[torch.Tensor], torch.Tensor], Callable[[Dict[str, Any]], Dict[str, Any]]]:
    """The default video pipeline for ``mode`` "train" (randomised) or "val" (deterministic).

    Layout: the input is a uint8 (or, with ``convert_to_float=False``, float) clip ``C, T, H, W`` or a batch
    ``..., C, T, H, W``; or, when ``video_key`` is set, a dict holding it under that key.

    Steps: UniformTemporalSubsample(num_samples) (skipped when None) -> [train] RandAugment / AugMix ->
    ConvertUint8ToFloat (uint8 -> [0, 1]) -> Normalize(video_mean, video_std) ->
    train: RandomResizedCrop(crop_size, **random_resized_crop_paras) when those are given, else
    RandomShortSideScale(min_size, max_size) + RandomCropVideo(crop_size); then RandomHorizontalFlipVideo;
    val: ShortSideScale(min_size) + CenterCropVideo(crop_size). With ``video_key``, the pipeline is applied to
    that entry and the ``remove_key`` entries are dropped.
    """
    crop = _pair(crop_size, "crop_size")
    _check_arguments(mode, video_key, remove_key, crop, min_size, max_size, aug_type, aug_paras)

    steps: List[Callable] = [] if num_samples is None else [UniformTemporalSubsample(num_samples)]
    if mode == "train":
        steps += _get_augmentation(aug_type, aug_paras)
    if convert_to_float:
        steps.append(ConvertUint8ToFloat())
    steps.append(Normalize(mean=video_mean, std=video_std))
    if mode == "train":
        if random_resized_crop_paras is not None:
            paras = {**_RANDOM_RESIZED_CROP_DEFAULT_PARAS, **random_resized_crop_paras}
            # the target size always comes from crop_size, as upstream overwrote these keys
            paras.pop("target_height", None)
            paras.pop("target_width", None)
            steps.append(RandomResizedCrop(target_height=crop[0], target_width=crop[1], **paras))
        else:
            steps += [RandomShortSideScale(min_size=min_size, max_size=max_size), RandomCropVideo(crop)]
        steps.append(RandomHorizontalFlipVideo(p=horizontal_flip_prob))
    else:
        steps += [ShortSideScale(size=min_size), CenterCropVideo(crop)]
    transform = Compose(steps)

    if video_key is None:
        return transform
    return Compose([ApplyTransformToKey(key=video_key, transform=transform)]
                   + [RemoveKey(key) for key in (remove_key or [])])
