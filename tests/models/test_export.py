"""torch.export of X3D and SlowFast, and ONNX export of X3D, reproduce eager outputs."""
import importlib.util

import pytest
import torch
import torch.nn as nn

from pyvideo.models import hub
from pyvideo.models.slowfast import create_slowfast


@pytest.fixture(scope="module")
def x3d_xs_small():
    torch.manual_seed(0)
    model = hub.x3d_xs(input_clip_length=4, input_crop_size=64, head_activation=nn.Softmax).eval()
    _randomise_bn_statistics(model)
    return model, torch.rand(1, 3, 4, 64, 64)


@pytest.fixture(scope="module")
def slowfast_small():
    torch.manual_seed(0)
    model = create_slowfast(model_depth=18, stem_dim_outs=(16, 2), model_num_class=5, head_pool=nn.AdaptiveAvgPool3d).eval()
    _randomise_bn_statistics(model)
    return model, [torch.rand(1, 3, 2, 32, 32), torch.rand(1, 3, 8, 32, 32)]


def _randomise_bn_statistics(model):
    # fresh BN weights make the last BN of each block zero; random statistics exercise the whole graph
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm3d):
                module.weight.uniform_(0.5, 1.5)
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)


def test_torch_export_x3d(x3d_xs_small):
    model, clip = x3d_xs_small
    exported = torch.export.export(model, (clip,))
    other_clip = torch.rand_like(clip)
    with torch.no_grad():
        for x in (clip, other_clip):
            assert torch.allclose(exported.module()(x), model(x), atol=1e-6)
    # Swish is exported as plain sigmoid and mul ops
    targets = {str(node.target) for node in exported.graph.nodes if node.op == "call_function"}
    assert any("sigmoid" in t for t in targets)


def test_torch_export_slowfast(slowfast_small):
    model, inputs = slowfast_small
    exported = torch.export.export(model, (list(inputs),))
    with torch.no_grad():
        expected = model(list(inputs))
        assert torch.allclose(exported.module()(list(inputs)), expected, atol=1e-6)
    assert expected.shape == (1, 5)


@pytest.mark.skipif(
    importlib.util.find_spec("onnx") is None or importlib.util.find_spec("onnxruntime") is None,
    reason="ONNX export check needs the onnx, onnxscript and onnxruntime packages (pip install onnx onnxscript onnxruntime)",
)
@pytest.mark.filterwarnings("ignore:.*LeafSpec.*:FutureWarning")
def test_onnx_export_x3d(x3d_xs_small, tmp_path):
    import onnxruntime

    model, clip = x3d_xs_small
    path = tmp_path / "x3d_xs.onnx"
    torch.onnx.export(model, (clip,), str(path), input_names=["clip"], output_names=["scores"], dynamo=True)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for x in (clip, torch.rand_like(clip)):
        (scores,) = session.run(None, {"clip": x.numpy()})
        with torch.no_grad():
            assert torch.allclose(torch.from_numpy(scores), model(x), atol=1e-5)
