"""Every CNN hub model has exactly the reference state_dict (keys, order, shapes, dtypes) and parameter count.

Reference lists: ../shared/reference/state_dicts/<name>.json, dumped from the upstream modules. Models are
built on the meta device, so even the 60M-parameter ones cost no memory or init time here.
"""
import json
import pathlib

import pytest
import torch

from pyvideo.models import hub

REFERENCE_DIR = pathlib.Path(__file__).resolve().parents[3] / "shared" / "reference" / "state_dicts"

# Published parameter counts in millions (PyTorchVideo model zoo table); detectors differ upstream too.
PUBLISHED_PARAMS_M = {
    "c2d_r50": 24.33, "i3d_r50": 28.04, "slow_r50": 32.45, "slowfast_r50": 34.57, "slowfast_r101": 62.83,
    "slowfast_16x8_r101_50_50": 53.77, "csn_r101": 22.21, "r2plus1d_r50": 28.11, "x3d_xs": 3.79,
    "x3d_s": 3.79, "x3d_m": 3.79, "x3d_l": 6.15, "slow_r50_detection": 31.78, "slowfast_r50_detection": 33.82,
}
DETECTORS = {"slow_r50_detection", "slowfast_r50_detection"}
CNN_HUB_MODELS = sorted(PUBLISHED_PARAMS_M)


def _reference(name):
    path = REFERENCE_DIR / f"{name}.json"
    if not path.is_file():
        pytest.skip(f"reference state_dict list not found at {path}")
    return json.loads(path.read_text())


def _meta_model(name):
    with torch.device("meta"):
        return getattr(hub, name)()


@pytest.mark.parametrize("name", CNN_HUB_MODELS)
def test_state_dict_matches_reference(name):
    reference = _reference(name)
    model = _meta_model(name)
    ours = [(key, list(value.shape), str(value.dtype).replace("torch.", "")) for key, value in model.state_dict().items()]
    theirs = [(entry["key"], entry["shape"], entry["dtype"]) for entry in reference["state_dict"]]
    missing = sorted({k for k, _, _ in theirs} - {k for k, _, _ in ours})
    unexpected = sorted({k for k, _, _ in ours} - {k for k, _, _ in theirs})
    assert not missing and not unexpected, f"missing {missing[:5]}, unexpected {unexpected[:5]}"
    assert ours == theirs

    num_parameters = sum(p.numel() for p in model.parameters())
    # independent count from the reference shapes (num_batches_tracked and running stats are buffers)
    reference_params = sum(
        torch.Size(entry["shape"]).numel()
        for entry in reference["state_dict"]
        if not entry["key"].endswith(("running_mean", "running_var", "num_batches_tracked"))
    )
    assert num_parameters == reference_params == reference["num_parameters"]
    assert num_parameters == getattr(hub, name).metadata.num_parameters


@pytest.mark.parametrize("name", CNN_HUB_MODELS)
def test_parameter_count_matches_published(name):
    num_parameters = sum(p.numel() for p in _meta_model(name).parameters())
    # the zoo rounds to 0.01 M; the upstream detectors themselves build 0.01-0.02 M more than published
    tolerance = 0.025e6 if name in DETECTORS else 0.005e6
    assert abs(num_parameters - PUBLISHED_PARAMS_M[name] * 1e6) <= tolerance


def test_x3d_family_shares_one_layout_except_l():
    xs, s, m = (_meta_model(n).state_dict() for n in ("x3d_xs", "x3d_s", "x3d_m"))
    layout = [(k, v.shape) for k, v in xs.items()]
    assert layout == [(k, v.shape) for k, v in s.items()] == [(k, v.shape) for k, v in m.items()]
    stage_depths = [len({k.split(".")[3] for k in _meta_model("x3d_l").state_dict() if k.startswith(f"blocks.{i}.")}) for i in range(1, 5)]
    assert stage_depths == [5, 10, 25, 15]


def _reference_state_dict(reference):
    """A state dict built only from the reference list (meta tensors: keys, shapes and dtypes, no data)."""
    return {
        entry["key"]: torch.empty(entry["shape"], dtype=getattr(torch, entry["dtype"]), device="meta")
        for entry in reference["state_dict"]
    }


@pytest.mark.parametrize("name", CNN_HUB_MODELS)
def test_reference_checkpoint_layout_loads_strictly(name):
    model = _meta_model(name)
    model.load_state_dict(_reference_state_dict(_reference(name)), strict=True)


def test_strict_loading_rejects_a_wrong_shape():
    reference = _reference("x3d_xs")
    state_dict = _reference_state_dict(reference)
    state_dict["blocks.5.proj.weight"] = torch.empty(10, 2048, device="meta")
    with pytest.raises(RuntimeError, match="blocks.5.proj.weight"):
        _meta_model("x3d_xs").load_state_dict(state_dict, strict=True)
