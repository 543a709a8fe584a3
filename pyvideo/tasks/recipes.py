"""Named model recipes for the command line: builder, clip shape and preprocessing of each model.

A trained run stores its recipe name and arguments next to the weights (``model.pt`` holds
``{"model_state": ..., "pyvideo_run": {...}}``), so ``pyvideo eval`` / ``pyvideo classify`` rebuild exactly the
model and preprocessing that training used.
"""
import json
import os
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

import torch
from torch import nn

KINETICS_MEAN = (0.45, 0.45, 0.45)
KINETICS_STD = (0.225, 0.225, 0.225)


@dataclass(frozen=True)
class Recipe:
    builder: Callable[..., nn.Module]  # (num_classes, num_frames, crop_size, pretrained) -> model
    num_frames: int
    sampling_rate: int  # frames between sampled frames at the video's own rate
    crop_size: int
    short_side: int
    residual_frames: bool = False
    kinetics_checkpoint: bool = False  # the hub has Kinetics-400 weights for it


def _small_x3d(num_classes, num_frames, crop_size, pretrained):
    from .demo_model import SmallEfficientX3d

    _no_pretrained("small_x3d", pretrained)
    return SmallEfficientX3d(num_classes, width_multiplier=0.5, depths=(1, 1, 2, 1), head_width=128, dropout=0.0,
                             dense_stem=True)


def _efficient_x3d_xs(num_classes, num_frames, crop_size, pretrained):
    from pyvideo.models.accelerator.mobile_cpu.efficient_x3d import create_x3d

    _no_pretrained("efficient_x3d_xs", pretrained)
    return create_x3d(num_classes=num_classes)


def _hub_x3d(name):
    def build(num_classes, num_frames, crop_size, pretrained):
        from pyvideo.models import hub

        if pretrained:
            return getattr(hub, name)(pretrained=True)
        return getattr(hub, name)(model_num_class=num_classes, input_clip_length=num_frames, input_crop_size=crop_size)
    return build


def _slow_r50(num_classes, num_frames, crop_size, pretrained):
    from pyvideo.models import hub

    if pretrained:
        return hub.slow_r50(pretrained=True)
    return hub.slow_r50(model_num_class=num_classes, head_pool_kernel_size=(num_frames, crop_size // 32, crop_size // 32))


def _no_pretrained(name, pretrained):
    if pretrained:
        raise ValueError(f"{name} has no published checkpoint; train it with `pyvideo train` or pick an x3d_* model")


RECIPES: Dict[str, Recipe] = {
    # width-reduced X3D of efficient blocks (dense stem) on residual frames: the demo's model (8 x 32 x 32 clips)
    "small_x3d": Recipe(_small_x3d, num_frames=8, sampling_rate=2, crop_size=32, short_side=32, residual_frames=True),
    "efficient_x3d_xs": Recipe(_efficient_x3d_xs, num_frames=4, sampling_rate=12, crop_size=160, short_side=182),
    # the PyTorchVideo model zoo's test-time settings for the Kinetics checkpoints
    "x3d_xs": Recipe(_hub_x3d("x3d_xs"), 4, 12, 182, 182, kinetics_checkpoint=True),
    "x3d_s": Recipe(_hub_x3d("x3d_s"), 13, 6, 182, 182, kinetics_checkpoint=True),
    "x3d_m": Recipe(_hub_x3d("x3d_m"), 16, 5, 256, 256, kinetics_checkpoint=True),
    "slow_r50": Recipe(_slow_r50, 8, 8, 256, 256, kinetics_checkpoint=True),
}


@dataclass
class RunConfig:
    """What eval/classify need to rebuild a trained model and its preprocessing."""

    model: str
    num_classes: int
    num_frames: int
    sampling_rate: int
    crop_size: int
    short_side: int
    residual_frames: bool
    class_names: List[str] = field(default_factory=list)
    mean: Tuple[float, ...] = KINETICS_MEAN
    std: Tuple[float, ...] = KINETICS_STD

    @classmethod
    def for_model(cls, model: str, num_classes: int, class_names=(), **overrides) -> "RunConfig":
        recipe = recipe_for(model)
        values = dict(num_frames=recipe.num_frames, sampling_rate=recipe.sampling_rate, crop_size=recipe.crop_size,
                      short_side=recipe.short_side, residual_frames=recipe.residual_frames)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(model=model, num_classes=num_classes, class_names=list(class_names), **values)

    def build_model(self, pretrained: bool = False) -> nn.Module:
        return recipe_for(self.model).builder(self.num_classes, self.num_frames, self.crop_size, pretrained)

    def view_transform(self) -> Optional[Callable[[torch.Tensor], torch.Tensor]]:
        """What runs on normalised clips after cropping (the multi-view evaluation's hook)."""
        from .residual_frames import subtract_temporal_mean

        return subtract_temporal_mean if self.residual_frames else None

    def transform(self, mode: str) -> Callable[[dict], dict]:
        """The dataset transform: create_video_transform (no flips: they swap left/right motion), then residual frames."""
        from pyvideo.transforms import ApplyTransformToKey, Compose, create_video_transform

        from .residual_frames import SubtractTemporalMean

        base = create_video_transform(mode=mode, video_key="video", num_samples=self.num_frames,
                                      video_mean=tuple(self.mean), video_std=tuple(self.std), min_size=self.short_side,
                                      max_size=round(self.short_side * 1.15), crop_size=self.crop_size,
                                      horizontal_flip_prob=0.0)
        if not self.residual_frames:
            return base
        return Compose([base, ApplyTransformToKey(key="video", transform=SubtractTemporalMean())])


def recipe_for(name: str) -> Recipe:
    if name not in RECIPES:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(RECIPES)}")
    return RECIPES[name]


def save_trained_model(path: str, model: nn.Module, config: RunConfig) -> str:
    from .checkpoint import unwrap

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    torch.save({"model_state": unwrap(model).state_dict(), "pyvideo_run": asdict(config)}, path)
    return path


def load_trained_model(path: str) -> Tuple[nn.Module, RunConfig]:
    """Rebuild the model a ``pyvideo train`` run saved, with its weights and config."""
    from .checkpoint import model_state_from_checkpoint, read_checkpoint

    checkpoint = read_checkpoint(path)
    if "pyvideo_run" not in checkpoint:
        raise ValueError(f"{path} was not written by `pyvideo train`; pass --model (and the class count) to use it")
    run = checkpoint["pyvideo_run"]
    config = RunConfig(**{**run, "mean": tuple(run["mean"]), "std": tuple(run["std"])})
    model = config.build_model()
    model.load_state_dict(model_state_from_checkpoint(checkpoint))
    return model.eval(), config


def kinetics_class_names() -> List[str]:
    """The 400 Kinetics class names in label order (shipped with the hub builders)."""
    import pyvideo.models.hub as hub

    with open(os.path.join(os.path.dirname(hub.__file__), "kinetics_400_classnames.json")) as f:
        return list(json.load(f))
