"""EfficientX3d: upstream state_dict layout, deploy form equal to the original at any input size, hub loading."""
import json
import pathlib

import pytest
import torch

from pyvideo.accelerator.deployable import FusedConv3d
from pyvideo.accelerator.deployment import convert_to_deployable_form
from pyvideo.models.accelerator.mobile_cpu.efficient_x3d import EfficientX3d, create_x3d
from pyvideo.models.hub.efficient_x3d_mobile_cpu import efficient_x3d_s, efficient_x3d_xs, metadata

from ._util import randomize_batchnorm, relative_error

pytestmark = pytest.mark.usefixtures("one_torch_thread")

REFERENCE = pathlib.Path(__file__).resolve().parents[3] / "shared" / "reference" / "state_dicts"


@pytest.mark.parametrize("name,builder", [("efficient_x3d_xs", efficient_x3d_xs), ("efficient_x3d_s", efficient_x3d_s)])
def test_state_dict_matches_upstream(name, builder):
    path = REFERENCE / f"{name}.json"
    if not path.is_file():
        pytest.skip(f"reference state_dict listing not found at {path}")
    reference = json.loads(path.read_text())
    model = builder()
    ours = [(key, list(value.shape)) for key, value in model.state_dict().items()]
    assert ours == [(entry["key"], entry["shape"]) for entry in reference["state_dict"]]
    assert sum(p.numel() for p in model.parameters()) == reference["num_parameters"]


def test_expansion_l_is_deeper_and_bad_expansion_raises():
    depths = [len(getattr(create_x3d(expansion="L"), f"s{i}")) for i in range(2, 6)]
    assert depths == [5, 10, 25, 15]
    with pytest.raises(ValueError, match="expansion"):
        create_x3d(expansion="XL")


def _random_model(expansion, seed):
    torch.manual_seed(seed)
    model = create_x3d(expansion=expansion, num_classes=7)
    return randomize_batchnorm(model, torch.Generator().manual_seed(seed)).eval()


@pytest.mark.parametrize("expansion", ["XS", "S"])
def test_deploy_form_equals_original_for_other_sizes_than_the_example(expansion):
    model = _random_model(expansion, seed=3)
    deploy = convert_to_deployable_form(model, torch.randn(1, 3, 4, 32, 32))
    assert not any(isinstance(m, torch.nn.BatchNorm3d) for m in deploy.modules())
    generator = torch.Generator().manual_seed(4)
    # batch 1 at the example size, then another batch size, T, and odd H/W
    for shape in [(1, 3, 4, 32, 32), (2, 3, 3, 37, 29)]:
        x = torch.randn(*shape, generator=generator)
        with torch.no_grad():
            expected, actual = model(x), deploy(x)
        assert actual.shape == (shape[0], 7)
        assert relative_error(actual, expected) < 1e-4, shape


def test_deploy_form_uses_fused_convs_only():
    deploy = convert_to_deployable_form(_random_model("XS", seed=5), torch.randn(1, 3, 2, 16, 16))
    convs = [m for m in deploy.modules() if isinstance(m, FusedConv3d)]
    assert not any(type(m) is torch.nn.Conv3d for m in deploy.modules())
    kinds = {m.kind for m in convs}
    assert kinds == {"pointwise", "depthwise", "spatial"}  # the 5x1x1 stem conv is depthwise
    assert sum(m.adds_residual for m in convs) == 3 + 5 + 11 + 7


def test_train_mode_forward_returns_per_position_scores_flattened():
    model = create_x3d(num_classes=4, dropout=0.0).train()
    out = model(torch.randn(2, 3, 4, 32, 32))
    # train mode skips the average over T, H, W (1 x 1 x 1 after the head's pool), so 4 scores per clip
    assert out.shape == (2, 4)
    assert not hasattr(model, "dropout")
    headless = create_x3d(enable_head=False).eval()
    assert headless(torch.randn(1, 3, 4, 32, 32)).shape == (1, 192, 4, 1, 1)


def test_hub_builder_loads_checkpoint_path(tmp_path):
    source = efficient_x3d_xs(num_classes=400)
    path = tmp_path / "efficient_x3d_xs_original_form.pyth"
    torch.save(source.state_dict(), path)
    loaded = efficient_x3d_xs(checkpoint_path=str(path))
    for key, value in source.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)
    assert metadata["efficient_x3d_xs"].checkpoint_url.endswith("efficient_x3d_xs_original_form.pyth")
    with pytest.raises(RuntimeError, match="does not match"):
        efficient_x3d_s(checkpoint_path=str(path), num_classes=10)
    assert isinstance(loaded, EfficientX3d)
