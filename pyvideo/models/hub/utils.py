"""Checkpoint loading and model metadata shared by the hub builders."""
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

import torch
import torch.nn as nn

MODEL_ZOO_ROOT = "https://dl.fbaipublicfiles.com/pytorchvideo/model_zoo"

KINETICS_MEAN = (0.45, 0.45, 0.45)
KINETICS_STD = (0.225, 0.225, 0.225)


@dataclass(frozen=True)
class ModelMetadata:
    """What a user needs to feed and judge a published checkpoint.

    ``input_shape`` is (C, T, H, W) per pathway, at the resolution the builder's defaults assume;
    ``sampling_rate`` is the frame stride in the source video per pathway; ``mean``/``std`` apply to
    pixel values scaled to [0, 1]; ``accuracy`` is what the model zoo publishes (top-1/top-5 % or mAP).
    """

    checkpoint_url: str
    dataset: str
    num_classes: int
    input_shape: Tuple[Tuple[int, int, int, int], ...]
    sampling_rate: Tuple[int, ...]
    accuracy: Mapping[str, float]
    num_parameters: int
    gflops: Optional[float] = None
    mean: Tuple[float, float, float] = KINETICS_MEAN
    std: Tuple[float, float, float] = KINETICS_STD
    notes: str = ""
    extra: Dict[str, Any] = field(default_factory=dict)


def _is_url(path: str) -> bool:
    return path.startswith(("http://", "https://"))


def _read_checkpoint(source: str, progress: bool) -> Any:
    if _is_url(source):
        try:
            return torch.hub.load_state_dict_from_url(source, progress=progress, map_location="cpu", weights_only=True)
        except Exception as error:  # network, HTTP or unpickling failures all mean "could not get weights"
            raise RuntimeError(f"could not download or read the checkpoint {source}: {error}") from error
    if not os.path.isfile(source):
        raise FileNotFoundError(f"checkpoint file not found: {source}")
    try:
        return torch.load(source, map_location="cpu", weights_only=True)
    except Exception as error:  # truncated zip, not a torch file, or pickled non-tensor objects
        raise RuntimeError(
            f"could not read checkpoint {source} (corrupt, truncated or not a torch file?): {error}"
        ) from error


def _state_dict_from(checkpoint: Any, source: str) -> Mapping[str, torch.Tensor]:
    """Accept the model zoo format ``{"model_state": sd}`` or a raw state dict."""
    if isinstance(checkpoint, Mapping) and "model_state" in checkpoint:
        checkpoint = checkpoint["model_state"]
    if not isinstance(checkpoint, Mapping) or not all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
        raise ValueError(
            f"checkpoint {source} holds neither a state dict nor {{'model_state': state_dict}} "
            f"(found {type(checkpoint).__name__})"
        )
    return checkpoint


def load_checkpoint(model: nn.Module, source: str, progress: bool = True) -> nn.Module:
    """Load weights from a URL (via the torch hub cache) or a local file into ``model``, strictly."""
    state_dict = _state_dict_from(_read_checkpoint(source, progress), source)
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as error:
        raise RuntimeError(
            f"checkpoint {source} does not match the model architecture (did kwargs change the model?): {error}"
        ) from error
    return model


def build_hub_model(
    builder: Callable[..., nn.Module],
    *,
    metadata: ModelMetadata,
    pretrained: bool,
    progress: bool,
    checkpoint_path: Optional[str],
    config: Mapping[str, Any],
    kwargs: Mapping[str, Any],
) -> nn.Module:
    """Build ``builder(**config, **kwargs)`` (kwargs override config), then load weights.

    ``checkpoint_path`` (a local file or URL) wins over ``pretrained``, which loads ``metadata.checkpoint_url``.
    """
    model = builder(**{**config, **kwargs})
    if checkpoint_path is not None:
        load_checkpoint(model, os.fspath(checkpoint_path), progress)
    elif pretrained:
        load_checkpoint(model, metadata.checkpoint_url, progress)
    return model


def hub_model_builder(
    *,
    model_builder_func: Callable,
    pretrained: bool = False,
    progress: bool = True,
    checkpoint_path: str = "",
    default_config: Optional[Dict[Any, Any]] = None,
    **kwargs: Any,
) -> nn.Module:
    """Upstream's generic hub helper (used by the MViT builders).

    ``default_config`` fills every kwarg that is missing or None; with ``pretrained`` the weights come from
    ``checkpoint_path`` (URL or file) and kwargs may not change the model.
    """
    if pretrained and kwargs:
        raise ValueError(f"do not change the model with kwargs when pretrained=True (got {sorted(kwargs)})")
    for argument, value in (default_config or {}).items():
        if kwargs.get(argument) is None:
            kwargs[argument] = value
    model = model_builder_func(**kwargs)
    if pretrained:
        load_checkpoint(model, checkpoint_path, progress)
    return model
