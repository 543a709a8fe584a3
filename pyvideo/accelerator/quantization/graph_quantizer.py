"""Graph-level int8 quantization of deploy-form models (torch.fx, no torch.ao.quantization).

Each node of the traced deploy graph gets a role:
- ``int8``: ops with an int8 implementation (FusedConv3d, nn.Linear, FusedSqueezeExcitation, global average
  pooling, fixed-kernel 3-D average pooling without padding, elementwise activations, tensor + tensor, tensor * tensor,
  ``torch.cat`` of tensors, which requantizes each input to the concatenation's qparams);
- ``transparent``: ops that move int8 values without changing them (permute, reshape, Identity, Dropout ...);
  their output has the qparams of their input;
- ``float``: everything else (runs in float32 on dequantized values).

``prepare`` inserts an :class:`ActivationQuantizer` after every tensor that an int8 op reads or writes (per tensor,
except squeeze-excitation and conv outputs read only by pointwise convs: those are quantized per channel, see
``per_channel_nodes``);
``convert`` replaces int8 ops by :mod:`int8_modules` with the observed qparams and puts Quantize/Dequantize
where the domains meet. An int8 op whose output is only read by float code returns float32 directly.

Dynamic ranges (``mark_dynamic``): a tensor whose calibration batches differ in magnitude by much is quantized per
sample at run time instead: its producer returns float32 and each int8 reader quantizes it with the sample's own
range (``int8_modules``, qparams DYNAMIC). Only tensors that a conv, linear, squeeze-excitation or average pool (or
the model input) produces and that convs (as input or residual), linears, squeeze-excitations and average pools
read qualify (``dynamic_candidates``): those are the int8 ops with a float32 output and a dynamic input in native
programs too.

Models whose forward takes a list of clips (SlowFast: one per pathway) are traced with one placeholder per clip
(``deployable.graph.trace`` with an example input); the prepared and int8 GraphModules still take the list, and every
calibration batch must hold exactly one tensor per placeholder (``_batch_input``).
"""
import copy
import operator
from typing import Dict, Iterable, Optional, Union

import torch
import torch.fx as fx
import torch.nn as nn
import torch.nn.functional as F

from pyvideo.accelerator.deployable.activation import activation_kind_of
from pyvideo.accelerator.deployable.conv import FusedConv3d
from pyvideo.accelerator.deployable.graph import (DeployTracer, register_leaf_type, replace_submodule,
                                                  takes_clip_list, trace)
from pyvideo.accelerator.deployable.pool import is_global_pool
from pyvideo.accelerator.deployable.squeeze_excitation import FusedSqueezeExcitation

from . import int8_modules as q8
from .fake_quant import ActivationQuantizer, FakeQuantConv3d, FakeQuantLinear, fake_quantize_weight
from .observers import ChannelMinMaxObserver, batch_spread, make_channel_observer, make_observer
from .qparams import DynamicQParams, QParams, channel_activation_qparams, dequantize, fold_input_scales, quantize

# Adaptive pools that count as global: quantized graphs may also hold 4-D (image-like) tensors.
_GLOBAL_POOL_TYPES = (nn.AdaptiveAvgPool3d, nn.AdaptiveAvgPool2d)
_TRANSPARENT_METHODS = {"permute", "reshape", "view", "flatten", "contiguous", "squeeze", "unsqueeze", "transpose"}
_TRANSPARENT_FUNCTIONS = {torch.flatten, torch.reshape, torch.permute, torch.squeeze, torch.unsqueeze}
# tensor (+|*) tensor -> its int8 module
_BINARY_FUNCTIONS = {operator.add: q8.QuantizedAdd, torch.add: q8.QuantizedAdd, operator.mul: q8.QuantizedMul,
                     torch.mul: q8.QuantizedMul}  # fmt: skip
_CAT_FUNCTIONS = {torch.cat, torch.concat, torch.concatenate}


def _tensor_args(node: fx.Node):
    return [a for a in node.args if isinstance(a, fx.Node)]


def _cat_inputs(node: fx.Node) -> Optional[list]:
    """The tensors a ``torch.cat([a, b, ...], dim)`` node concatenates (its int8 form, ``QuantizedCat``, takes them as
    separate arguments), or None for any other node (or a cat with an ``out=`` or a non-constant dim)."""
    if node.op != "call_function" or node.target not in _CAT_FUNCTIONS or not node.args:
        return None
    tensors, rest = node.args[0], node.args[1:]
    if not isinstance(tensors, (list, tuple)) or not tensors or not all(isinstance(t, fx.Node) for t in tensors):
        return None
    if set(node.kwargs) - {"dim"} or len(rest) > 1 or not isinstance(_cat_dim(node), int):
        return None
    return list(tensors)


def _cat_dim(node: fx.Node):
    return node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)


def _int8_inputs(node: fx.Node) -> list:
    """The tensors an int8 node reads, in its int8 module's argument order."""
    tensors = _cat_inputs(node)
    return tensors if tensors is not None else _tensor_args(node)


class FloatLinear(nn.Linear):
    """An ``nn.Linear`` that quantization leaves in float32: it reads its input dequantized and keeps its float weight.
    ``prepare(..., float_classifier=True)`` (``quantize_model``'s and ``prepare_qat``'s default) puts one in place of
    the model's classifier (:func:`classifier_node`), sharing that Linear's parameters."""

    @classmethod
    def of(cls, linear: nn.Linear) -> "FloatLinear":
        kept = cls(linear.in_features, linear.out_features, bias=linear.bias is not None)
        kept.weight, kept.bias = linear.weight, linear.bias
        return kept


register_leaf_type(FloatLinear)  # an opaque node when compile_native traces the int8 model (torch's own Linear is one)


def classifier_node(graph: fx.Graph, modules: Dict[str, nn.Module]) -> Optional[fx.Node]:
    """The model's classifier: the last ``nn.Linear`` call of the graph when no conv, Linear or squeeze-excitation
    comes after it (the projection of every hub model's head), else None."""
    last = None
    for node in graph.nodes:
        module = modules.get(node.target) if node.op == "call_module" else None
        if type(module) is nn.Linear:
            last = node
        elif isinstance(module, (FusedConv3d, FusedSqueezeExcitation, nn.Linear)):
            last = None
    return last


def node_role(node: fx.Node, modules: Dict[str, nn.Module]) -> str:
    if node.op == "call_module":
        module = modules[node.target]
        if isinstance(module, ActivationQuantizer):
            return "transparent"
        if isinstance(module, FloatLinear):
            return "float"
        if isinstance(module, (FusedConv3d, nn.Linear, FusedSqueezeExcitation)) or is_global_pool(module, _GLOBAL_POOL_TYPES) \
                or q8.avg_pool_is_supported(module):
            return "int8"
        kind = activation_kind_of(module)
        # A max pool runs on int8 codes as they are, in its input's qparams (QuantizedMaxPool): quantization is
        # monotone, so the max of the codes is the code of the max, exactly.
        if kind == "identity" or isinstance(module, (nn.Dropout, nn.Flatten)) or q8.max_pool_takes_int8(module):
            return "transparent"
        return "int8" if kind is not None else "float"
    if node.op == "call_method" and node.target in _TRANSPARENT_METHODS:
        return "transparent"
    if node.op == "call_function" and node.target in _TRANSPARENT_FUNCTIONS:
        return "transparent"
    if node.op == "call_function" and node.target in _BINARY_FUNCTIONS and not node.kwargs:
        return "int8" if len(node.args) == 2 and len(_tensor_args(node)) == 2 else "float"
    if _cat_inputs(node) is not None:
        return "int8"
    return "float"


class _Plan:
    """Roles, qparams sources and output domains of a traced graph's nodes."""

    def __init__(self, graph: fx.Graph, modules: Dict[str, nn.Module]):
        nodes = list(graph.nodes)
        self.role = {n: node_role(n, modules) for n in nodes}
        # After a float classifier (FloatLinear) only pools, activations and reshapes of the logits follow: they stay
        # float too, rather than quantizing the logits again.
        after_classifier = set()
        for n in nodes:
            if (n.op == "call_module" and isinstance(modules.get(n.target), FloatLinear)) or any(
                    a in after_classifier for a in _tensor_args(n)):
                after_classifier.add(n)
                if self.role[n] == "int8":
                    self.role[n] = "float"
        # A transparent op's values are its input's values: they share the input's qparams source.
        self.source = {}
        for n in nodes:
            transparent = self.role[n] == "transparent" and _tensor_args(n)
            self.source[n] = self.source[_tensor_args(n)[0]] if transparent else n
        # Does an int8 op (directly or through transparent ops) read this node's output?
        self.read_as_int8 = {}
        for n in reversed(nodes):
            self.read_as_int8[n] = any(
                self.role[u] == "int8" or (self.role[u] == "transparent" and self.read_as_int8[u]) for u in n.users
            )

    def observed(self, node: fx.Node) -> bool:
        """Whether ``node`` produces a tensor that will be int8 (so it needs qparams): an int8 op reads it."""
        return self.source[node] is node and self.read_as_int8[node]

    def int8_output(self, node: fx.Node) -> bool:
        if self.role[node] == "transparent":
            return self.int8_output(self.source[node])
        return self.role[node] == "int8" and self.read_as_int8[node]


def _passes_values(module: nn.Module) -> bool:
    """Identity-like modules that hand their input on unchanged, channel dim included."""
    return activation_kind_of(module) == "identity" or isinstance(module, nn.Dropout)


def per_channel_nodes(graph: fx.Graph, modules: Dict[str, nn.Module]) -> set:
    """Squeeze-excitation and (not depthwise) conv nodes whose output is quantized per channel: every reader (looking
    through Identity / Dropout modules) is an unpadded pointwise FusedConv3d that takes it as its input, not as its
    residual. Such a conv absorbs the channel scales into its weight at no cost in the kernel
    (``fold_input_scales``), while per-tensor int8 wastes most levels on the weak channels of a tensor whose channels
    have very different ranges: an SE's output (its gate scales each channel), or X3D's last block output, read only
    by the head's conv_5 (its channels' ranges differ by up to 5x). A block output that the next block also adds as
    its residual does not qualify. Depthwise outputs (X3D's blocks without an SE) are left per tensor: per channel
    they flipped 3 near-tie clips of one trained model (docs/notes/accelerator.md, twenty-first session).
    ``choose_channel_strengths`` then picks how far each tensor's scales go per channel."""
    chosen, plan = set(), _Plan(graph, modules)
    for node in graph.nodes:
        producer = modules.get(node.target) if node.op == "call_module" else None
        if (plan.role.get(node) != "int8" or not isinstance(producer, (FusedSqueezeExcitation, FusedConv3d))
                or getattr(producer, "kind", None) == "depthwise"):
            continue
        frontier, readers, eligible = [node], 0, True
        while frontier and eligible:
            value = frontier.pop()
            for user in value.users:
                module = modules.get(user.target) if user.op == "call_module" else None
                if module is not None and _passes_values(module) and len(user.args) == 1 and not user.kwargs:
                    frontier.append(user)
                elif (isinstance(module, FusedConv3d) and module.kind == "pointwise" and not any(module.padding or ())
                      and plan.role[user] == "int8" and not user.kwargs and user.args[0] is value
                      and value not in user.args[1:]):
                    readers += 1
                else:
                    eligible = False
        if eligible and readers:
            chosen.add(node)
    return chosen


def _check_deploy_form(model: nn.Module) -> None:
    unconverted = [name for name, m in model.named_modules() if getattr(m, "convert_flag", True) is False]
    if unconverted:
        raise ValueError(
            f"quantization works on the deploy form; call convert_to_deployable_form first "
            f"({len(unconverted)} efficient blocks are not converted, e.g. {unconverted[0]!r})"
        )


def _clip_count(graph: fx.Graph) -> Optional[int]:
    """How many clips a graph traced for a list input (one placeholder per clip, flattened from the list by the
    generated code) takes; None for a graph traced for one tensor (whose placeholders are its forward's arguments)."""
    if getattr(graph._codegen, "pytree_info", None) is None:
        return None
    return sum(1 for node in graph.nodes if node.op == "placeholder")


def _listed_clip_count(graph: fx.Graph) -> int:
    """The clip count of a list-input model traced without an example (one placeholder, only indexed): one more than
    the largest index its code reads."""
    indices = [user.args[1] for node in graph.nodes if node.op == "placeholder" for user in node.users]
    if not all(isinstance(index, int) and index >= 0 for index in indices):
        raise ValueError(f"quantization needs a list-input model that reads its clips by constant index, got indices "
                         f"{indices}")
    return max(indices) + 1


def _trace_in_eval_mode(model: nn.Module, example_input=None) -> fx.Graph:
    was_training = model.training
    model.eval()  # the deploy graph is the inference graph; leaf modules still follow .train() when run
    try:
        if example_input is None:
            return DeployTracer().trace(model)
        return trace(model, example_input).graph
    except Exception as error:
        listed = "" if example_input is None else f" with a list of {len(example_input)} clips"
        raise RuntimeError(f"quantization needs a torch.fx-traceable deploy-form model; tracing "
                           f"{type(model).__name__}{listed} failed: {error}") from error
    finally:
        model.train(was_training)


def _trace_eval(model: nn.Module, example_input=None, calibration_batch=None) -> fx.GraphModule:
    """``model``'s inference graph. A model whose forward takes a list of clips is traced a second time with
    ``example_input`` (a list of clips or a calibration batch holding one, see ``_batch_input``; only its structure
    is used), which gives one placeholder per clip."""
    graph = _trace_in_eval_mode(model)
    if not takes_clip_list(graph):
        if example_input is not None and not isinstance(example_input, torch.Tensor):
            raise ValueError(f"{type(model).__name__} takes one tensor; example_input is for models that take a list "
                             f"of clips (got a {type(example_input).__name__})")
        return fx.GraphModule(model, graph, class_name=f"Quantizable{type(model).__name__}")
    count = _listed_clip_count(graph)
    what = "example_input"
    if example_input is None and calibration_batch is not None:
        example_input, what = calibration_batch, "calibration batch"  # its structure errors say so
    if example_input is None:
        raise ValueError(f"quantization of a model that takes a list of clips ({type(model).__name__} takes {count}, "
                         f"one per pathway, as SlowFast does) needs an example input to trace it: pass "
                         f"example_input=[clip, ...] ({count} tensors) to prepare / prepare_qat")
    graph = _trace_in_eval_mode(model, _batch_input(example_input, count, what=what))
    if _clip_count(graph) != count:
        raise RuntimeError(f"tracing {type(model).__name__} with a list of {count} clips gave {_clip_count(graph)} "
                           "inputs")
    return fx.GraphModule(model, graph, class_name=f"Quantizable{type(model).__name__}")


def prepare(model: nn.Module, observer="minmax", qat: bool = False, per_channel: bool = True,
            example_input=None, *, float_classifier: bool = False, _calibration_batch=None) -> fx.GraphModule:
    """Traced graph of ``model`` (sharing its modules) with ActivationQuantizers inserted: they observe only, or with
    ``qat`` also fake-quantize; with ``qat`` the int8 convs and linears are also swapped for versions whose weight and
    bias are fake-quantized (sharing the parameters). ``per_channel=False`` quantizes every tensor per tensor.

    ``example_input`` (a pyvideo extension): for a model whose forward takes a list of clips (SlowFast), one such list
    (one tensor per pathway), or a calibration batch holding one ((clips, label) or {"video": clips}); only its
    structure is used, to trace one graph input per clip. Not needed for a model that takes one tensor (a tensor
    there is accepted and ignored). ``_calibration_batch`` (quantize_model's first batch) serves as the example of
    a list-input model when ``example_input`` is None, and is ignored otherwise, so the model is traced only once
    more than a single-input one needs.

    ``float_classifier`` (a pyvideo extension): the model's classifier (:func:`classifier_node`) stays a float32
    Linear (:class:`FloatLinear`) that reads the dequantized features; see ``quantize_model``."""
    _check_deploy_form(model)
    gm = _trace_eval(model, example_input, _calibration_batch)
    classifier = classifier_node(gm.graph, dict(gm.named_modules())) if float_classifier else None
    if classifier is not None:
        replace_submodule(gm, classifier.target, FloatLinear.of(gm.get_submodule(classifier.target)))
    modules = dict(gm.named_modules())
    plan = _Plan(gm.graph, modules)
    channel_quantized = per_channel_nodes(gm.graph, modules) if per_channel else set()
    nodes = list(gm.graph.nodes)
    input_source = {n: plan.source[_tensor_args(n)[0]] for n in nodes if plan.role[n] == "int8" and _tensor_args(n)}
    quantizer_of = {}
    for index, node in enumerate(nodes):
        if node.op == "output" or not plan.observed(node):
            continue
        name = f"activation_quantizer_{index}"
        node_observer = make_channel_observer(observer) if node in channel_quantized else make_observer(observer)
        quantizer_of[node] = ActivationQuantizer(node_observer, observe=True, fake_quant=qat)
        gm.add_submodule(name, quantizer_of[node])
        with gm.graph.inserting_after(node):
            quantizer = gm.graph.call_module(name, (node,))
        node.replace_all_uses_with(quantizer, delete_user_cb=lambda user: user is not quantizer)
    if qat:
        for node, source in input_source.items():
            if node.op == "call_module":
                _swap_for_fake_quant(gm, node.target, modules[node.target], quantizer_of[source])
    gm.recompile()
    gm.train(model.training)
    return gm


def _swap_for_fake_quant(gm: fx.GraphModule, target: str, module: nn.Module, input_quantizer) -> None:
    if type(module) is FusedConv3d:
        fake = FakeQuantConv3d.from_fused(module)
    elif type(module) is nn.Linear:
        fake = FakeQuantLinear.from_linear(module)
    else:
        return
    fake.input_qparams = input_quantizer.qparams_if_observed  # a bound method: no second registration as submodule
    fake.input_sample_qparams = input_quantizer.last_sample_qparams
    replace_submodule(gm, target, fake)


def freeze_observers(prepared: fx.GraphModule) -> None:
    """Stop updating activation ranges (late in QAT, or after calibration)."""
    for module in prepared.modules():
        if isinstance(module, ActivationQuantizer):
            module.observe = False


def _int8_weight(module: nn.Module, input_qparams) -> torch.Tensor:
    """The float weight the int8 model effectively multiplies ``module``'s float input with (quantized per output
    channel after folding in per-channel input scales, then unfolded)."""
    folded = fold_input_scales(module.weight.detach().float(), input_qparams)
    return fake_quantize_weight(folded) / fold_input_scales(torch.ones_like(folded), input_qparams)


def _batch_tensor(batch) -> torch.Tensor:
    """The model input of one calibration item: a tensor, the first item of a tuple/list, or a dict's "video"."""
    if isinstance(batch, torch.Tensor):
        return batch
    if isinstance(batch, (tuple, list)) and batch and isinstance(batch[0], torch.Tensor):
        return batch[0]
    if isinstance(batch, dict) and isinstance(batch.get("video"), torch.Tensor):
        return batch["video"]
    raise TypeError(
        f"calibration items must be tensors, (tensor, ...) tuples or dicts with a 'video' tensor; got {type(batch).__name__}"
    )


def _is_clip_list(value, count: int) -> bool:
    return isinstance(value, (list, tuple)) and len(value) == count and all(isinstance(c, torch.Tensor) for c in value)


def _batch_input(batch, clips: Optional[int], what: str = "calibration batch"):
    """The model input of one calibration item. A model that takes one tensor (``clips`` None): as ``_batch_tensor``.
    A model that takes a list of ``clips`` clips: a list / tuple of exactly that many tensors, or such a list as the
    first item of a list / tuple ((clips, label)) or as a dict's "video"; returned as a list. Anything else raises:
    a (tensor, label) pair is never read as two clips unless it is a list / tuple of ``clips`` tensors."""
    if clips is None:
        return _batch_tensor(batch)
    if _is_clip_list(batch, clips):
        return list(batch)
    if isinstance(batch, (list, tuple)) and batch and isinstance(batch[0], (list, tuple)):
        inner, where = batch[0], f"the first item of a {type(batch).__name__} {what}"
    elif isinstance(batch, dict) and "video" in batch:
        inner, where = batch["video"], f"the 'video' item of a dict {what}"
    else:
        inner, where = batch, f"the {what}"
    if _is_clip_list(inner, clips):
        return list(inner)
    expected = (f"the model takes a list of {clips} clips (one tensor per pathway), so each {what} must be a list "
                f"or tuple of exactly {clips} tensors, optionally as (clips, label) or {{'video': clips}}")
    if isinstance(inner, torch.Tensor):
        hint = "; calibration_data is an iterable of batches: for one batch pass [[clip, ...]]" \
            if what == "calibration batch" else ""
        raise TypeError(f"{expected}; {where} is a single tensor of shape {tuple(inner.shape)}{hint}")
    if isinstance(inner, (list, tuple)):
        kinds = ", ".join(type(c).__name__ for c in inner)
        if len(inner) != clips:
            raise ValueError(f"{expected}; {where} holds {len(inner)} items ({kinds})")
        raise TypeError(f"{expected}; {where} holds {kinds}")
    raise TypeError(f"{expected}; {where} is a {type(inner).__name__}")


def calibrate(prepared: fx.GraphModule, calibration_data: Union[torch.Tensor, Iterable]) -> int:
    """Run ``calibration_data`` (one batch tensor, or an iterable/DataLoader of batches) through ``prepared`` in
    eval mode, updating its observers. Returns the number of batches seen. For a model that takes a list of clips
    (prepared with ``example_input``) each batch is such a list (see ``_batch_input``)."""
    batches = [calibration_data] if isinstance(calibration_data, torch.Tensor) else calibration_data
    clips = _clip_count(prepared.graph)
    was_training = prepared.training
    prepared.eval()
    count = 0
    with torch.no_grad():
        for batch in batches:
            prepared(_batch_input(batch, clips))
            count += 1
    prepared.train(was_training)
    if count == 0:
        raise ValueError("calibrate: calibration_data yielded no batches")
    return count


def _quantizers_by_source(prepared: fx.GraphModule, modules: Dict[str, nn.Module]) -> Dict[fx.Node, ActivationQuantizer]:
    """Observed node -> the ActivationQuantizer that ``prepare`` put after it."""
    return {n.args[0]: modules[n.target] for n in prepared.graph.nodes
            if n.op == "call_module" and isinstance(modules[n.target], ActivationQuantizer)}


def _weighted_layers(prepared: fx.GraphModule):
    """(node, module, the ActivationQuantizer of its input) for each int8 FusedConv3d / Linear node of a calibrated
    prepared graph."""
    modules = dict(prepared.named_modules())
    quantizers = _quantizers_by_source(prepared, modules)
    plan = _Plan(prepared.graph, modules)
    for node in prepared.graph.nodes:
        module = modules.get(node.target) if node.op == "call_module" else None
        if plan.role.get(node) != "int8" or not isinstance(module, (FusedConv3d, nn.Linear)) or not _tensor_args(node):
            continue
        quantizer = quantizers.get(plan.source[_tensor_args(node)[0]])
        if quantizer is not None and quantizer.observer.has_data:
            yield node, module, quantizer


def _measuring_pass(prepared: fx.GraphModule, batches, hooks) -> None:
    """Run ``batches`` through ``prepared`` with the observers paused (the ranges are final), then remove ``hooks``."""
    quantizers = [m for m in prepared.modules() if isinstance(m, ActivationQuantizer)]
    observing = [q.observe for q in quantizers]
    for quantizer in quantizers:
        quantizer.observe = False
    try:
        calibrate(prepared, batches)
    finally:
        for hook in hooks:
            hook.remove()
        for quantizer, observe in zip(quantizers, observing):
            quantizer.observe = observe


def _layer_output(module: nn.Module, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``module``'s conv / matmul of ``x`` with ``weight``: no bias, residual or activation."""
    if isinstance(module, FusedConv3d):
        return F.conv3d(x, weight, None, module.stride, module.padding, module.dilation, module.groups)
    return x @ weight.t()


CHANNEL_STRENGTHS = (1.0, 0.75, 0.5, 0.25, 0.0)


def choose_channel_strengths(prepared: fx.GraphModule, batches, strengths=CHANNEL_STRENGTHS) -> Dict[str, float]:
    """For every tensor quantized per channel in a calibrated ``prepared`` graph, pick the ``strength`` of
    :func:`channel_activation_qparams` whose quantized tensor, read through the folded and quantized weights of its
    readers, gives the least squared error of the readers' outputs (before bias and activation) on ``batches``, and
    set it on the tensor's observer. Per-channel scales help when the weak channels matter to the reader; folding them
    costs the weak channels weight precision, which wins when they do not (strength 0 is a per-tensor scale).
    Returns {observed node name: strength}."""
    candidates, errors, hooks = {}, {}, []

    def record(quantizer, weights, module, inputs):
        x = inputs[0]
        exact = _layer_output(module, x, module.weight.detach())
        for (strength, qparams), weight in zip(candidates[quantizer], weights):
            approximate = _layer_output(module, dequantize(quantize(x, qparams), qparams), weight)
            errors[quantizer][strength] += float((approximate - exact).double().square().sum())

    names = {}
    for node, module, quantizer in _weighted_layers(prepared):
        if not isinstance(quantizer.observer, ChannelMinMaxObserver) or quantizer.dynamic:
            continue
        if quantizer not in candidates:
            observer = quantizer.observer
            candidates[quantizer] = [(strength, channel_activation_qparams(observer.min_val, observer.max_val, strength))
                                     for strength in strengths]  # fmt: skip
            errors[quantizer] = {strength: 0.0 for strength in strengths}
            names[quantizer] = node.args[0].name
        weights = [_int8_weight(module, qparams) for _, qparams in candidates[quantizer]]  # once, not per batch
        hooks.append(module.register_forward_hook(
            lambda m, inputs, output, q=quantizer, w=weights: record(q, w, m, inputs)))
    if not candidates:
        return {}
    _measuring_pass(prepared, batches, hooks)
    chosen = {}
    for quantizer, by_strength in errors.items():
        quantizer.observer.strength = min(strengths, key=lambda strength: by_strength[strength])  # first of ties
        chosen[names[quantizer]] = quantizer.observer.strength
    return chosen


def weight_error_means(prepared: fx.GraphModule, batches) -> Dict[str, torch.Tensor]:
    """Bias correction (Nagel et al., "Data-Free Quantization", 2019, empirical form): for every int8 conv and
    Linear of a calibrated ``prepared`` graph, the mean over the calibration ``batches`` of the output shift that
    quantizing its weight causes, ``E[op(x, W_int8 - W)]`` per output channel, on the float inputs ``x`` the layer sees.
    Rounding a small kernel's weights (27 taps of a depthwise conv) shifts its output mean, and BN-folded biases do not
    absorb it; :func:`convert` subtracts these means from the biases. Layers whose input is quantized dynamically are
    left out. Returns {module target: float32 [C_out]}."""
    sums, counts, hooks = {}, {}, []

    def record(target, delta, module, inputs):
        shift = _layer_output(module, inputs[0], delta)
        channel_dim = 1 if isinstance(module, FusedConv3d) else shift.dim() - 1
        per_channel = shift.transpose(0, channel_dim).reshape(shift.shape[channel_dim], -1).sum(dim=1)
        sums[target] = sums.get(target, 0.0) + per_channel.double()
        counts[target] = counts.get(target, 0) + shift.numel() // shift.shape[channel_dim]

    for node, module, quantizer in _weighted_layers(prepared):
        # A dynamic input (mark_dynamic) changes scale from clip to clip, and the shift it causes with it: one mean
        # measured on the calibration clips would be the large clips' shift, wrong for the small ones. (Measured on
        # a trained X3D-XS: bias correction of such layers cost 4 of 216 clips' agreement, 211 vs 215.)
        if node.target in sums or quantizer.dynamic:
            continue
        sums[node.target], counts[node.target] = 0.0, 0
        delta = _int8_weight(module, quantizer.qparams()) - module.weight.detach().float()
        hooks.append(module.register_forward_hook(
            lambda m, inputs, output, target=node.target, delta=delta: record(target, delta, m, inputs)))
    _measuring_pass(prepared, batches, hooks)
    return {target: (total / counts[target]).float() for target, total in sums.items() if counts[target]}


def unstable_ranges(prepared: fx.GraphModule, factor: float = 20.0):
    """[(tensor name, spread, largest, median batch magnitude)] for the observed tensors whose largest calibration
    batch magnitude is more than ``factor`` times the median batch's (see ``observers.batch_spread``), worst first;
    dynamically quantized tensors are not listed."""
    found = []
    for node, quantizer in _quantizers_by_source(prepared, dict(prepared.named_modules())).items():
        if quantizer.dynamic:
            continue
        spread = batch_spread(quantizer.observer)
        if spread is not None and spread[0] > factor:
            found.append((node.name, *spread))
    return sorted(found, key=lambda item: -item[1])


# mark_dynamic's default: chosen on eight trained X3D-XS models (docs/notes/accelerator.md, "Agreement on held-out
# real clips"): 3 had the most agreeing clips in all and no decisive flip; 5 let one model flip 3 decisive clips
DYNAMIC_SPREAD = 3.0


def _has_dynamic_form(node: fx.Node, modules: Dict[str, nn.Module]) -> bool:
    """An int8 op whose int8 module can read a dynamic input and return float32 (in native programs too): a conv,
    linear, squeeze-excitation or average pool (not tensor + / * tensor, nor an activation table)."""
    if node.op != "call_module":
        return False
    module = modules[node.target]
    return (isinstance(module, (FusedConv3d, nn.Linear, FusedSqueezeExcitation))
            or is_global_pool(module, _GLOBAL_POOL_TYPES) or q8.avg_pool_is_supported(module))


def dynamic_candidates(prepared: fx.GraphModule) -> Dict[fx.Node, ActivationQuantizer]:
    """{observed node: its ActivationQuantizer} for the tensors that may be quantized dynamically: produced by the
    model input, a conv, a linear, a squeeze-excitation or an average pool, and read as int8 (through transparent
    ops) only by convs, linears, squeeze-excitations and average pools. A squeeze-excitation output observed per
    channel qualifies too: dynamic, it is quantized per tensor (per sample) instead."""
    modules = dict(prepared.named_modules())
    plan = _Plan(prepared.graph, modules)
    found = {}
    for node, quantizer in _quantizers_by_source(prepared, modules).items():
        if node.op != "placeholder" and not _has_dynamic_form(node, modules):  # producers: the input, or such ops
            continue
        frontier, eligible = [node], True
        while frontier and eligible:
            for user in frontier.pop().users:
                role = plan.role.get(user, "float")
                if role == "transparent":
                    frontier.append(user)
                elif role == "int8" and not _has_dynamic_form(user, modules):
                    eligible = False
        if eligible:
            found[node] = quantizer
    return found


def mark_dynamic(prepared: fx.GraphModule, spread: float = DYNAMIC_SPREAD) -> list:
    """Quantize the :func:`dynamic_candidates` of a calibrated ``prepared`` graph whose largest calibration batch
    magnitude is more than ``spread`` times the median batch's (``observers.batch_spread``, which needs 3 or more
    batches) per sample at run time (``spread=0``: every candidate). One static range cannot serve such a tensor:
    clips whose activations are much smaller than the calibration maximum lose most of their int8 levels. The cost is
    a float32 intermediate and a min/max pass per such tensor. Returns the marked tensors' names."""
    if spread < 0:
        raise ValueError(f"mark_dynamic: spread must be >= 0, got {spread}")
    marked = []
    for node, quantizer in dynamic_candidates(prepared).items():
        measured = batch_spread(quantizer.observer)
        if spread == 0 or (measured is not None and measured[0] > spread):
            quantizer.dynamic = True
            marked.append(node.name)
    return marked


def _with_bias_shift(module: nn.Module, shift: torch.Tensor) -> nn.Module:
    """A copy of a FusedConv3d / Linear (sharing the weight) whose bias is lowered by ``shift``."""
    corrected = copy.copy(module)
    corrected._parameters = dict(module._parameters)
    bias = module.bias.detach() if module.bias is not None else torch.zeros_like(shift)
    corrected.bias = nn.Parameter(bias - shift.to(bias.dtype), requires_grad=False)
    return corrected


class _Converter:
    """Builds the int8 graph from a prepared GraphModule."""

    def __init__(self, prepared: fx.GraphModule, bias_shifts: Optional[Dict[str, torch.Tensor]] = None):
        self.prepared = prepared
        self.bias_shifts = bias_shifts or {}
        self.modules = dict(prepared.named_modules())
        self.quantizer_of = _quantizers_by_source(prepared, self.modules)
        self.plan = _Plan(prepared.graph, self.modules)
        self.graph = fx.Graph()
        if _clip_count(prepared.graph) is not None:  # a list input: the int8 model takes the list too
            self.graph.set_codegen(copy.copy(prepared.graph._codegen))  # shares its (immutable) input spec
        self.root = nn.Module()
        self.env = {}
        self.cast_cache = {}

    def qparams(self, node: fx.Node):
        quantizer = self.quantizer_of.get(self.plan.source[node])
        if quantizer is None:
            raise RuntimeError(f"no observer for {node.name}; was the model prepared with pyvideo's prepare()?")
        return quantizer.qparams()

    def add_module(self, module: nn.Module, node_name: str) -> str:
        name = f"{node_name}_int8"
        self.root.add_module(name, module)
        return name

    def is_dynamic(self, node: fx.Node) -> bool:
        """Whether ``node``'s tensor is quantized per sample at run time (then it stays float32 between ops)."""
        quantizer = self.quantizer_of.get(self.plan.source[node])
        return quantizer is not None and quantizer.dynamic

    def cast(self, node: fx.Node, want_int8: bool):
        """``node``'s new value in the wanted domain (Quantize/Dequantize inserted once per node and domain)."""
        value = self.env[node]
        if self.is_int8[node] == want_int8:
            return value
        key = (node, want_int8)
        if key not in self.cast_cache:
            qp = self.qparams(node)
            if isinstance(qp, DynamicQParams):  # dynamic_candidates() picks only tensors their readers quantize
                raise RuntimeError(f"{node.name} is quantized dynamically but read by an op that needs static int8")
            if not isinstance(qp, QParams):  # per_channel_nodes() picks only tensors that int8 convs alone read
                raise RuntimeError(f"{node.name} is quantized per channel but read by an op that needs per-tensor values")
            module = q8.QuantizeTensor(qp) if want_int8 else q8.DequantizeTensor(qp)
            name = self.add_module(module, f"{node.name}_{'q' if want_int8 else 'dq'}")
            self.cast_cache[key] = self.graph.call_module(name, (value,))
        return self.cast_cache[key]

    def _is_quantizer(self, node: fx.Node) -> bool:
        return node.op == "call_module" and isinstance(self.modules[node.target], ActivationQuantizer)

    def _activation_after(self, node: fx.Node) -> Optional[fx.Node]:
        """The elementwise activation that is the only consumer of ``node``'s output (e.g. ResNet's ReLU), if any."""
        users = list(node.users)
        if len(users) == 1 and self._is_quantizer(users[0]):
            users = list(users[0].users)
        if len(users) != 1 or users[0].op != "call_module" or self.plan.role[users[0]] != "int8":
            return None
        kind = activation_kind_of(self.modules[users[0].target])
        return users[0] if kind not in (None, "identity") else None

    def set_dynamic_floors(self) -> None:
        """Every reader of a dynamic tensor gets the same minimum scale (so a native program quantizes it once): the
        largest that its conv / linear readers need to keep their int32 biases unclamped."""
        for readers in self.dynamic_readers.values():
            floor = max([m.min_dynamic_input_scale() for m, role in readers
                         if role == "input" and isinstance(m, q8._QuantizedWeightedOp)], default=0.0)
            for module, role in readers:
                setattr(module, f"{role}_min_scale", max(floor, getattr(module, f"{role}_min_scale")))

    def convert(self) -> fx.GraphModule:
        self.is_int8 = {}
        self.dynamic_readers = {}  # dynamic source node -> [(reader module, "input" | "residual")]
        self.absorbed = {}  # activation node -> the add/mul node that computes it
        for node in self.prepared.graph.nodes:
            if self._is_quantizer(node) or node in self.absorbed:
                source = self.absorbed.get(node, node.args[0])
                self.env[node], self.is_int8[node] = self.env[source], self.is_int8[source]
                continue
            role = self.plan.role.get(node, "float")
            handler = {"int8": self.int8_node, "transparent": self.copy_node}.get(role, self.float_node)
            self.env[node], self.is_int8[node] = handler(node)
        self.set_dynamic_floors()
        return fx.GraphModule(self.root, self.graph, class_name=f"Int8{type(self.prepared).__name__}")

    def _copy(self, node: fx.Node, mapper):
        if node.op == "call_module":
            self.root.add_module(node.target.replace(".", "_"), self.modules[node.target])
            return self.graph.create_node("call_module", node.target.replace(".", "_"), fx.map_arg(node.args, mapper),
                                          fx.map_arg(node.kwargs, mapper), node.name)  # fmt: skip
        if node.op == "get_attr":
            raise RuntimeError(f"quantization does not support get_attr nodes ({node.target})")
        return self.graph.node_copy(node, mapper)

    def copy_node(self, node: fx.Node):
        """Transparent op: runs on whatever domain its input is in; identities (folded BN/activations) vanish and max
        pools become :class:`QuantizedMaxPool` (int8 codes in, the same qparams out)."""
        if node.op == "call_module" and activation_kind_of(self.modules[node.target]) == "identity":
            return self.env[node.args[0]], self.is_int8[node.args[0]]
        if node.op == "call_module" and q8.max_pool_takes_int8(self.modules[node.target]):
            name = self.add_module(q8.QuantizedMaxPool(self.modules[node.target]), node.name)
            value = self.graph.call_module(name, fx.map_arg(node.args, lambda n: self.env[n]),
                                           fx.map_arg(node.kwargs, lambda n: self.env[n]))
            return value, self.is_int8[_tensor_args(node)[0]]
        value = self._copy(node, lambda n: self.env[n])
        return value, self.is_int8[_tensor_args(node)[0]] if _tensor_args(node) else False

    def float_node(self, node: fx.Node):
        return self._copy(node, lambda n: self.cast(n, False)), False

    def int8_node(self, node: fx.Node):
        inputs = _int8_inputs(node)
        # a dynamic output stays float32: its readers quantize it per sample
        output_qp = self.qparams(node) if self.plan.int8_output(node) and not self.is_dynamic(node) else None
        module = self._int8_module(node, inputs, output_qp)
        name = self.add_module(module, node.name)
        args = tuple(self.cast(n, not self.is_dynamic(n)) for n in inputs)
        for position, value in enumerate(inputs):
            if self.is_dynamic(value):
                self.dynamic_readers.setdefault(self.plan.source[value], []).append(
                    (module, "input" if position == 0 else "residual"))
        return self.graph.call_module(name, args), module.output_qparams is not None

    def _int8_module(self, node: fx.Node, inputs, output_qp) -> nn.Module:
        in_qp = self.qparams(inputs[0])
        if _cat_inputs(node) is not None:
            return q8.QuantizedCat([self.qparams(n) for n in inputs], output_qp, _cat_dim(node))
        if node.op == "call_function":  # tensor (+|*) tensor, with the activation that follows it fused in
            module_type = _BINARY_FUNCTIONS[node.target]
            activation = self._activation_after(node)
            if activation is None:
                return module_type(in_qp, self.qparams(inputs[1]), output_qp)
            self.absorbed[activation] = node
            output_qp = self.qparams(activation) if self.plan.int8_output(activation) else None
            kind = activation_kind_of(self.modules[activation.target])
            return module_type(in_qp, self.qparams(inputs[1]), output_qp, activation=kind)
        module = self.modules[node.target]
        if node.target in self.bias_shifts:
            module = _with_bias_shift(module, self.bias_shifts[node.target])
        if isinstance(module, FusedConv3d):
            residual_qp = self.qparams(inputs[1]) if len(inputs) > 1 else None
            return q8.QuantizedConv3d(module, in_qp, output_qp, residual_qp)
        if isinstance(module, nn.Linear):
            return q8.QuantizedLinear(module, in_qp, output_qp)
        if isinstance(module, FusedSqueezeExcitation):
            return q8.QuantizedSqueezeExcitation(module, in_qp, output_qp)
        if is_global_pool(module, _GLOBAL_POOL_TYPES):
            return q8.QuantizedGlobalAvgPool(in_qp, output_qp)
        if q8.avg_pool_is_supported(module):
            return q8.QuantizedAvgPool3d(module, in_qp, output_qp)
        return q8.QuantizedActivation(activation_kind_of(module), in_qp, output_qp)


def convert(prepared: fx.GraphModule, bias_shifts: Optional[Dict[str, torch.Tensor]] = None) -> fx.GraphModule:
    """The int8 model (eval mode) for a prepared and calibrated (or QAT-trained) GraphModule; ``bias_shifts``
    ({module target: [C_out]}, e.g. from :func:`weight_error_means`) are subtracted from those layers' biases."""
    if not any(isinstance(m, ActivationQuantizer) for m in prepared.modules()):
        raise ValueError("convert() needs a model returned by prepare() or prepare_qat()")
    return _Converter(prepared, bias_shifts).convert().eval()
