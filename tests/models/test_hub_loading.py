"""Hub builders load checkpoints strictly, from local files or (mocked) URLs, and report bad files clearly."""
import importlib.util
import json
import pathlib

import pytest
import torch

from pyvideo.models import hub
from pyvideo.models.hub.utils import MODEL_ZOO_ROOT, hub_model_builder

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
TINY_X3D = dict(input_clip_length=4, input_crop_size=64)  # pool kernel fits a 4x64x64 clip


@pytest.fixture(scope="module")
def trained_x3d_xs():
    """An x3d_xs whose weights and BN statistics differ from any fresh init."""
    torch.manual_seed(1)
    model = hub.x3d_xs(**TINY_X3D)
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.uniform_(0.5, 1.5)
    return model


def _assert_same_weights(loaded, reference):
    expected = reference.state_dict()
    for key, value in loaded.state_dict().items():
        assert torch.equal(value, expected[key]), key


@pytest.mark.parametrize("wrap", [True, False], ids=["model_state", "raw"])
def test_checkpoint_path_loads_both_formats(tmp_path, trained_x3d_xs, wrap):
    state = trained_x3d_xs.state_dict()
    path = tmp_path / "x3d.pyth"
    torch.save({"model_state": state} if wrap else state, path)
    loaded = hub.x3d_xs(checkpoint_path=str(path), **TINY_X3D)
    _assert_same_weights(loaded, trained_x3d_xs)
    clip = torch.rand(1, 3, 4, 64, 64)
    with torch.no_grad():
        assert torch.equal(loaded.eval()(clip), trained_x3d_xs.eval()(clip))


def test_pretrained_downloads_official_url_with_weights_only(monkeypatch, trained_x3d_xs):
    calls = []

    def fake_download(url, **kwargs):
        calls.append((url, kwargs))
        return {"model_state": trained_x3d_xs.state_dict()}

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", fake_download)
    loaded = hub.x3d_xs(pretrained=True, progress=False, **TINY_X3D)
    _assert_same_weights(loaded, trained_x3d_xs)
    (url, kwargs), = calls
    assert url == "https://dl.fbaipublicfiles.com/pytorchvideo/model_zoo/kinetics/X3D_XS.pyth"
    assert kwargs["weights_only"] is True and kwargs["progress"] is False and kwargs["map_location"] == "cpu"


def test_no_weights_loaded_without_pretrained(monkeypatch):
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", lambda *a, **k: pytest.fail("downloaded"))
    hub.x3d_xs(**TINY_X3D)


@pytest.mark.parametrize(
    "name, file_name",
    [
        ("slow_r50", "kinetics/SLOW_8x8_R50.pyth"),
        ("c2d_r50", "kinetics/C2D_8x8_R50.pyth"),
        ("i3d_r50", "kinetics/I3D_8x8_R50.pyth"),
        ("slowfast_r50", "kinetics/SLOWFAST_8x8_R50.pyth"),
        ("slowfast_r101", "kinetics/SLOWFAST_8x8_R101.pyth"),
        ("slowfast_16x8_r101_50_50", "kinetics/SLOWFAST_16x8_R101_50_50.pyth"),
        ("csn_r101", "kinetics/CSN_32x2_R101.pyth"),
        ("r2plus1d_r50", "kinetics/R2PLUS1D_16x4_R50.pyth"),
        ("x3d_s", "kinetics/X3D_S.pyth"),
        ("x3d_m", "kinetics/X3D_M.pyth"),
        ("x3d_l", "kinetics/X3D_L.pyth"),
        ("slow_r50_detection", "ava/SLOW_4x16_R50_DETECTION.pyth"),
        ("slowfast_r50_detection", "ava/SLOWFAST_8x8_R50_DETECTION.pyth"),
    ],
)
def test_metadata_points_at_the_model_zoo(name, file_name):
    metadata = hub.MODEL_METADATA[name]
    assert getattr(hub, name).metadata is metadata
    assert metadata.checkpoint_url == f"{MODEL_ZOO_ROOT}/{file_name}"
    assert metadata.num_classes == (80 if "detection" in name else 400)
    assert len(metadata.input_shape) == len(metadata.sampling_rate) == (2 if "slowfast" in name else 1)


def test_wrong_architecture_is_a_clear_error(tmp_path, trained_x3d_xs):
    path = tmp_path / "xs.pyth"
    torch.save({"model_state": trained_x3d_xs.state_dict()}, path)
    with pytest.raises(RuntimeError, match="does not match the model architecture"):
        hub.x3d_xs(checkpoint_path=str(path), model_num_class=10, **TINY_X3D)


def test_corrupt_and_truncated_files_are_clear_errors(tmp_path, trained_x3d_xs):
    garbage = tmp_path / "garbage.pyth"
    garbage.write_bytes(b"this is not a checkpoint" * 10)
    with pytest.raises(RuntimeError, match="could not read checkpoint .*garbage.pyth"):
        hub.x3d_xs(checkpoint_path=str(garbage), **TINY_X3D)

    whole = tmp_path / "whole.pyth"
    torch.save(trained_x3d_xs.state_dict(), whole)
    truncated = tmp_path / "truncated.pyth"
    truncated.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(RuntimeError, match="could not read checkpoint"):
        hub.x3d_xs(checkpoint_path=str(truncated), **TINY_X3D)


def test_non_state_dict_content_and_missing_file(tmp_path):
    tensor_file = tmp_path / "tensor.pyth"
    torch.save(torch.zeros(3), tensor_file)
    with pytest.raises(ValueError, match="neither a state dict"):
        hub.x3d_xs(checkpoint_path=str(tensor_file), **TINY_X3D)
    with pytest.raises(FileNotFoundError, match="no_such.pyth"):
        hub.x3d_xs(checkpoint_path=str(tmp_path / "no_such.pyth"), **TINY_X3D)


def test_hub_model_builder_fills_defaults_and_guards_pretrained(tmp_path):
    received = {}

    def builder(**kwargs):
        received.update(kwargs)
        return torch.nn.Linear(kwargs["in_features"], kwargs["out_features"])

    model = hub_model_builder(
        model_builder_func=builder, default_config={"in_features": 3, "out_features": 2}, out_features=None
    )
    assert received == {"in_features": 3, "out_features": 2} and model.weight.shape == (2, 3)
    with pytest.raises(ValueError, match="pretrained"):
        hub_model_builder(model_builder_func=builder, pretrained=True, out_features=5)

    path = tmp_path / "linear.pyth"
    torch.save({"model_state": torch.nn.Linear(3, 2).state_dict()}, path)
    loaded = hub_model_builder(
        model_builder_func=builder, pretrained=True, checkpoint_path=str(path),
        default_config={"in_features": 3, "out_features": 2},
    )
    assert torch.equal(loaded.weight, torch.load(path)["model_state"]["weight"])


def test_kinetics_400_class_names():
    names = hub.kinetics_400_class_names()
    assert len(names) == 400 == len(set(names))
    assert names[0] == "abseiling" and names[-1] == "zumba"
    assert names == sorted(names, key=str.lower)  # the standard Kinetics order is alphabetical


def test_torch_hub_local_entry_points():
    model = torch.hub.load(str(REPO_ROOT), "x3d_xs", source="local", model_num_class=7, **TINY_X3D)
    with torch.no_grad():
        out = model.eval()(torch.rand(2, 3, 4, 64, 64))
    assert out.shape == (2, 7)
    spec = importlib.util.spec_from_file_location("pyvideo_hubconf", REPO_ROOT / "hubconf.py")
    hubconf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hubconf)
    entry_points = {name for name in dir(hubconf) if callable(getattr(hubconf, name)) and not name.startswith("_")}
    expected = {"slow_r50", "c2d_r50", "i3d_r50", "slowfast_r50", "slowfast_r101", "slowfast_16x8_r101_50_50",
                "csn_r101", "r2plus1d_r50", "x3d_xs", "x3d_s", "x3d_m", "x3d_l", "slow_r50_detection",
                "slowfast_r50_detection", "mvit_base_16x4", "mvit_base_32x3", "mvit_base_16",
                "efficient_x3d_xs", "efficient_x3d_s"}
    assert expected <= entry_points


def test_metadata_covers_every_hub_builder():
    import pyvideo.models.hub as hub_package

    builders = {name for name in hub_package.__all__ if callable(getattr(hub_package, name)) and name[0].islower()}
    builders -= {"hub_model_builder", "load_checkpoint", "kinetics_400_class_names"}
    assert builders == set(hub.MODEL_METADATA)
    for name, metadata in hub.MODEL_METADATA.items():
        assert metadata.checkpoint_url.startswith(MODEL_ZOO_ROOT + "/"), name
        # (C, T, H, W) clips; the image MViT takes (C, H, W)
        assert all(len(shape) in (3, 4) and shape[0] == 3 for shape in metadata.input_shape), name


@pytest.mark.parametrize("wrap", [True, False], ids=["model_state", "raw"])
def test_checkpoint_built_from_the_reference_list_loads(tmp_path, wrap):
    """A file made only from the upstream key/shape list (as the zoo's X3D_XS.pyth is laid out) loads strictly."""
    reference_file = REPO_ROOT.parent / "shared" / "reference" / "state_dicts" / "x3d_xs.json"
    if not reference_file.is_file():
        pytest.skip(f"reference state_dict list not found at {reference_file}")
    generator = torch.Generator().manual_seed(0)
    state = {}
    for entry in json.loads(reference_file.read_text())["state_dict"]:
        dtype = getattr(torch, entry["dtype"])
        state[entry["key"]] = (
            torch.rand(entry["shape"], generator=generator) if dtype.is_floating_point else torch.zeros(entry["shape"], dtype=dtype)
        )
    path = tmp_path / "X3D_XS.pyth"
    torch.save({"model_state": state} if wrap else state, path)
    model = hub.x3d_xs(checkpoint_path=path)
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key
