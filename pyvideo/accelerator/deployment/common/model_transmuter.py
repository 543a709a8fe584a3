"""Replace the layers of a plain model by equivalent efficient blocks, per target device."""
import logging
from typing import Callable, Dict, List, Optional

import torch.nn as nn

from pyvideo.accelerator.efficient_blocks.efficient_block_base import EfficientBlockBase

logger = logging.getLogger(__name__)

# target device -> transmuter functions; each takes a module and returns an equivalent efficient block or None.
EFFICIENT_BLOCK_TRANSMUTER_REGISTRY: Dict[str, List[Callable[[nn.Module], Optional[nn.Module]]]] = {}


def transmute_model(model: nn.Module, target_device: str = "mobile_cpu", prefix: str = "") -> None:
    """Replace, in place and recursively, every child of ``model`` that a transmuter of ``target_device`` matches.

    The transmuters are tried in registration order; the first match wins (a warning names the others). A child
    that no transmuter matches is searched recursively, except efficient blocks, which are left as they are. ``prefix`` is the dotted name of ``model`` used in logs.
    """
    if target_device not in EFFICIENT_BLOCK_TRANSMUTER_REGISTRY:
        raise ValueError(
            f"transmute_model: no transmuters for target_device {target_device!r}; "
            f"registered: {sorted(EFFICIENT_BLOCK_TRANSMUTER_REGISTRY)}"
        )
    transmuters = EFFICIENT_BLOCK_TRANSMUTER_REGISTRY[target_device]
    for name, child in model.named_children():
        child_name = f"{prefix}.{name}"
        if isinstance(child, EfficientBlockBase):
            continue  # already efficient; its own conv must stay an nn.Conv3d for its convert()
        matches = [(transmuter, block) for transmuter in transmuters for block in [transmuter(child)] if block is not None]
        if not matches:
            transmute_model(child, target_device, prefix=child_name)
            continue
        model._modules[name] = matches[0][1]
        logger.info("transmute_model: replaced %s by %s", child_name, type(matches[0][1]).__name__)
        if len(matches) > 1:
            logger.warning(
                "transmute_model: %s matched several transmuters (%s); used the first",
                child_name,
                ", ".join(transmuter.__name__ for transmuter, _ in matches),
            )
