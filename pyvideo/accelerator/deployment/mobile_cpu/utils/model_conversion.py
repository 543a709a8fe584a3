"""convert_to_deployable_form: a model's deploy form, for any input size."""
import copy
from typing import Dict, Sequence, Tuple, Union

import torch
import torch.nn as nn

from pyvideo.accelerator.efficient_blocks.efficient_block_base import EfficientBlockBase

from .fusion import fold_batchnorm_and_activation
from .graph_fusion import fuse_residuals_and_squeeze_excitations


def _record_input_sizes(model: nn.Module, input_tensor: torch.Tensor) -> Dict[str, Tuple[int, ...]]:
    """Run ``model`` once in eval mode and return the size of each module's first input, by dotted name."""
    sizes = {}

    def recorder(name):
        def hook(module, inputs):
            if inputs and isinstance(inputs[0], torch.Tensor):
                sizes.setdefault(name, tuple(inputs[0].size()))

        return hook

    handles = [module.register_forward_pre_hook(recorder(name)) for name, module in model.named_modules()]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(input_tensor)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return sizes


def _convert_blocks(module: nn.Module, name: str, sizes: Dict[str, Tuple[int, ...]], **options) -> None:
    for child_name, child in module.named_children():
        qualified = f"{name}.{child_name}" if name else child_name
        if isinstance(child, EfficientBlockBase):
            child.convert(sizes.get(qualified), **options)
        else:
            _convert_blocks(child, qualified, sizes, **options)


def convert_to_deployable_form(
    model: nn.Module,
    input_tensor: Union[torch.Tensor, Sequence[torch.Tensor]],
    convert_for_quantize: bool = False,
    native_conv3d_op_qnnpack: bool = False,
) -> nn.Module:
    """Return a converted copy of ``model`` (in eval mode); ``model`` itself is not changed.

    Every :class:`EfficientBlockBase` is converted (BatchNorm folded, activations and residual adds fused, see each
    block); then BatchNorm/activation modules that directly follow a conv are folded into it, and residual adds and
    squeeze-excitations written as plain tensor code are fused (for transmuted plain models; the result is then an
    ``fx.GraphModule``, see ``graph_fusion``). ``input_tensor`` is run through ``model`` once, to check it and to pass each block its input size
    as upstream does; the deploy form itself accepts any batch size and T/H/W the original accepts.
    ``convert_for_quantize`` and ``native_conv3d_op_qnnpack`` are passed to the blocks for compatibility; the deploy
    form is the same for fp32 and int8 (see ``pyvideo.accelerator.quantization``).
    ``input_tensor`` may also be a list of tensors for models that take one clip per pathway (SlowFast; upstream
    fails on those): the graph passes then trace one placeholder per clip, and the deploy form still takes the list.
    """
    is_clips = isinstance(input_tensor, (list, tuple)) and len(input_tensor) > 0 and all(
        isinstance(clip, torch.Tensor) for clip in input_tensor)
    if not isinstance(input_tensor, torch.Tensor) and not is_clips:
        raise TypeError("convert_to_deployable_form: input_tensor must be a torch.Tensor or a list of tensors (one "
                        f"clip per pathway, as SlowFast takes), got {type(input_tensor).__name__}")
    sizes = _record_input_sizes(model, input_tensor)
    deploy_model = copy.deepcopy(model).eval()
    options = dict(convert_for_quantize=convert_for_quantize, native_conv3d_op_qnnpack=native_conv3d_op_qnnpack)
    if isinstance(deploy_model, EfficientBlockBase):
        deploy_model.convert(sizes.get(""), **options)
    else:
        _convert_blocks(deploy_model, "", sizes, **options)
    fold_batchnorm_and_activation(deploy_model, input_tensor)
    with torch.no_grad():
        return fuse_residuals_and_squeeze_excitations(deploy_model, input_tensor)
