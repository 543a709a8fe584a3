import functools
import json
import pathlib
import warnings

import pytest
import torch
import torch.nn as nn

from pyvideo.models.hub import vision_transformers as hub_vit
from pyvideo.models.vision_transformers import MultiscaleVisionTransformers, create_multiscale_vision_transformers

STATE_DICTS = pathlib.Path(__file__).resolve().parents[3] / "shared" / "reference" / "state_dicts"
HUB_BUILDERS = {
    "mvit_base_16x4": hub_vit.mvit_base_16x4,
    "mvit_base_32x3": hub_vit.mvit_base_32x3,
    "mvit_base_16": hub_vit.mvit_base_16,
}
# published / reference parameter counts (PyTorchVideo model zoo: MViT-B 36.61 M)
PARAMETER_COUNTS = {"mvit_base_16x4": 36_610_672, "mvit_base_32x3": 36_611_440, "mvit_base_16": 36_521_296}


def _small_mvit(**overrides):
    config = dict(
        spatial_size=32,
        temporal_size=4,
        depth=4,
        patch_embed_dim=16,
        num_heads=2,
        embed_dim_mul=[[1, 2.0], [3, 2.0]],
        atten_head_mul=[[1, 2.0], [3, 2.0]],
        pool_q_stride_size=[[1, 1, 2, 2], [3, 1, 2, 2]],
        pool_kv_stride_adaptive=[1, 4, 4],
        pool_kvq_kernel=[3, 3, 3],
        head_num_classes=7,
        head_dropout_rate=0.0,
    )
    config.update(overrides)
    return create_multiscale_vision_transformers(**config)


# ---------------------------------------------------------------- hub models: layout and size


@functools.lru_cache(maxsize=None)
def _hub_model(name):
    """Each full-size model is built once per test session (a build initialises 36 M parameters)."""
    torch.manual_seed(0)
    return HUB_BUILDERS[name]()


@pytest.fixture(params=sorted(HUB_BUILDERS))
def hub_model(request):
    return request.param, _hub_model(request.param)


def test_hub_state_dict_matches_reference_exactly(hub_model):
    name, model = hub_model
    if not STATE_DICTS.is_dir():
        pytest.skip("reference state_dict lists not found")
    reference = json.loads((STATE_DICTS / f"{name}.json").read_text())
    got = [(k, list(v.shape), str(v.dtype).replace("torch.", "")) for k, v in model.state_dict().items()]
    want = [(e["key"], e["shape"], e["dtype"]) for e in reference["state_dict"]]
    assert got == want
    assert sum(p.numel() for p in model.parameters()) == reference["num_parameters"]


def test_hub_parameter_counts_and_aliases(hub_model):
    name, model = hub_model
    assert sum(p.numel() for p in model.parameters()) == PARAMETER_COUNTS[name]
    attn = model.blocks[1].attn
    # the two attribute paths of a pooling conv are one parameter
    assert attn.pool_q.weight is attn._attention_pool_q.pool.weight
    assert model.blocks[0].attn.pool_q is None and model.blocks[0].attn.pool_k is not None


def _consistent_random_state(model):
    """A random state_dict in which the two attribute paths of each pooling module hold the same tensor."""
    state = {k: torch.randn_like(v) if v.is_floating_point() else v for k, v in model.state_dict().items()}
    for key in list(state):
        if "._attention_pool_" in key:
            prefix, rest = key.split("._attention_pool_")
            letter, layer, param = rest.split(".")
            state[key] = state[f"{prefix}.{layer}_{letter}.{param}"]
    return state


@pytest.fixture(scope="module")
def mvit_16x4_random_state():
    torch.manual_seed(0)
    return _consistent_random_state(_hub_model("mvit_base_16x4"))


def test_hub_raw_checkpoint_file_loads_strictly(mvit_16x4_random_state, tmp_path):
    # the {"model_state": ...} wrapping goes through the same loader in the pretrained test below
    state = mvit_16x4_random_state
    path = tmp_path / "checkpoint.pyth"
    torch.save(state, path)
    loaded = hub_vit.mvit_base_16x4(checkpoint_path=str(path))
    torch.testing.assert_close(loaded.head.proj.weight, state["head.proj.weight"])
    torch.testing.assert_close(loaded.blocks[14].attn.pool_q.weight, state["blocks.14.attn.pool_q.weight"])


def test_pretrained_uses_hub_cache_with_weights_only(monkeypatch, mvit_16x4_random_state):
    calls = []

    def fake_load(url, progress=True, map_location=None, weights_only=False, **kwargs):
        calls.append((url, progress, map_location, weights_only))
        return {"model_state": mvit_16x4_random_state}

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", fake_load)
    model = hub_vit.mvit_base_16x4(pretrained=True, progress=False)
    assert calls == [(hub_vit.MODEL_METADATA_VIT["mvit_base_16x4"].checkpoint_url, False, "cpu", True)]
    torch.testing.assert_close(model.blocks[3].mlp.fc1.weight, mvit_16x4_random_state["blocks.3.mlp.fc1.weight"])
    with pytest.raises(ValueError, match="configuration"):
        hub_vit.mvit_base_16x4(pretrained=True, depth=2)


def test_metadata_matches_the_builders():
    for name, meta in hub_vit.MODEL_METADATA_VIT.items():
        assert meta.checkpoint_url.startswith("https://dl.fbaipublicfiles.com/pytorchvideo/model_zoo/")
        assert meta.num_classes == 400 and len(meta.mean) == 3 and len(meta.std) == 3
        assert meta.num_parameters == PARAMETER_COUNTS[name]
    assert hub_vit.MODEL_METADATA_VIT["mvit_base_16x4"].accuracy["top1"] == 78.85
    assert hub_vit.MODEL_METADATA_VIT["mvit_base_32x3"].input_shape == ((3, 32, 224, 224),)
    assert hub_vit.MODEL_METADATA_VIT["mvit_base_32x3"].sampling_rate == (3,)


def test_hub_config_runs_at_reduced_input_size():
    # the published 16x4 schedule (3 Q poolings, adaptive K/V stride 8) at a small clip
    model = hub_vit.mvit_base_16x4(spatial_size=64, temporal_size=4, head_dropout_rate=0.0).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 4, 64, 64))
    assert out.shape == (1, 400)


# ---------------------------------------------------------------- 0.1.5-era checkpoints


def test_loads_pre_refactor_keys_through_version_remap():
    torch.manual_seed(0)
    source = _small_mvit()
    state = source.state_dict()
    old_style = {k: v for k, v in state.items() if "_attention_pool_" not in k}
    old_style_metadata = {k: dict(v) for k, v in state._metadata.items()}
    for module_name, meta in old_style_metadata.items():
        if module_name.endswith(".attn"):
            meta["version"] = 1
    old = type(state)(old_style)
    old._metadata = old_style_metadata

    torch.manual_seed(1)
    target = _small_mvit()
    target.load_state_dict(old, strict=True)
    x = torch.randn(2, 3, 4, 32, 32)
    source.eval(), target.eval()
    torch.testing.assert_close(target(x), source(x))

    # the same keys claimed to be current-version do not load: the remap is what makes them work
    current = type(state)(old_style)
    current._metadata = state._metadata
    with pytest.raises(RuntimeError, match="_attention_pool_"):
        _small_mvit().load_state_dict(current, strict=True)


@pytest.mark.parametrize("name", ["video", "image"])
def test_matches_pytorchvideo_0_1_5_outputs_from_its_own_checkpoint(name):
    """Small MViTs built and run by PyTorchVideo 0.1.5 itself (see data/make_mvit_upstream_reference.py):
    their 0.1.5-layout state_dict loads strictly and pyvideo reproduces upstream's outputs."""
    reference = torch.load(pathlib.Path(__file__).with_name("data") / "mvit_upstream_0_1_5.pt", weights_only=True)
    case = reference[name]
    model = create_multiscale_vision_transformers(**case["config"]).eval()
    assert not any("_attention_pool_" in key for key in case["state_dict"])
    model.load_state_dict(case["state_dict"], strict=True)
    with torch.no_grad():
        torch.testing.assert_close(model(case["input"]), case["output"], rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- builder behaviour


def test_small_model_shapes_widths_and_gradients():
    torch.manual_seed(0)
    model = _small_mvit()
    widths = [(b.dim, b.dim_out, b.attn.num_heads) for b in model.blocks]
    # width doubles in the block *before* each multiplier index (dim_mul_in_att=False), heads at the index
    assert widths == [(16, 32, 2), (32, 32, 4), (32, 64, 4), (64, 64, 8)]
    assert model.cls_positional_encoding.patch_embed_shape() == (2, 8, 8)
    assert [b.attn.pool_k.stride for b in model.blocks] == [(1, 4, 4), (1, 2, 2), (1, 2, 2), (1, 1, 1)]
    x = torch.randn(2, 3, 4, 32, 32, requires_grad=True)
    out = model(x)
    assert out.shape == (2, 7)
    out.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is not None for n, p in model.named_parameters() if "pos_embed" in n or "pool_q" in n)


def test_token_grid_through_blocks():
    model = _small_mvit(head=None)
    tokens = model.cls_positional_encoding(model.patch_embed(torch.randn(1, 3, 4, 32, 32)))
    thw = [2, 8, 8]
    grids = []
    for block in model.blocks:
        tokens, thw = block(tokens, thw)
        grids.append((list(thw), tokens.shape[1]))
    assert grids == [([2, 8, 8], 129), ([2, 4, 4], 33), ([2, 4, 4], 33), ([2, 2, 2], 9)]


def test_dim_mul_in_att_puts_width_change_in_attention():
    model = _small_mvit(dim_mul_in_att=True)
    block = model.blocks[1]
    assert (block.dim, block.dim_out) == (16, 32)
    assert block.attn.q.weight.shape == (32, 16) and block.mlp.fc1.weight.shape == (128, 32)
    assert model(torch.randn(1, 3, 4, 32, 32)).shape == (1, 7)


@pytest.mark.parametrize(
    "overrides",
    [
        dict(separate_qkv=False, residual_pool=True),
        dict(pool_first=True),
        dict(pooling_mode="avg", cls_embed_on=False, temporal_size=6),  # avg_pool3d needs T >= kernel
        dict(pooling_mode="max", sep_pos_embed=False, depthwise_conv=False),
        dict(norm="batchnorm", cls_embed_on=False, bias_on=False),
        dict(temporal_size=5, spatial_size=(36, 28)),  # sizes that stride 2 / 4 do not divide
        dict(droppath_rate_block=0.2, dropout_rate_block=0.1),
    ],
)
def test_variants_forward_and_backward(overrides):
    torch.manual_seed(0)
    model = _small_mvit(**overrides)
    t, (h, w) = overrides.get("temporal_size", 4), overrides.get("spatial_size", (32, 32))
    out = model(torch.randn(2, 3, t, h, w))
    assert out.shape == (2, 7) and torch.isfinite(out).all()
    out.square().mean().backward()


def test_variant_layouts():
    fused = _small_mvit(separate_qkv=False)
    assert "blocks.0.attn.qkv.weight" in fused.state_dict() and "blocks.0.attn.q.weight" not in fused.state_dict()
    avg = _small_mvit(pooling_mode="avg")
    assert not any("norm_q" in k or "pool_q" in k for k in avg.state_dict())
    single = _small_mvit(sep_pos_embed=False, cls_embed_on=False)
    keys = [k for k in single.state_dict() if k.startswith("cls_positional_encoding")]
    assert keys == ["cls_positional_encoding.pos_embed"]
    bn = _small_mvit(norm="batchnorm")
    assert isinstance(bn.norm_embed, nn.Identity) and isinstance(bn.blocks[0].norm1, nn.BatchNorm1d)
    assert isinstance(bn.blocks[1].attn.norm_q, nn.BatchNorm3d)


def test_image_model_with_2d_patch():
    model = _small_mvit(temporal_size=1, use_2d_patch=True, conv_patch_embed_kernel=(7, 7),
                        conv_patch_embed_stride=(4, 4), conv_patch_embed_padding=(3, 3),
                        pool_kv_stride_adaptive=[1, 4, 4], pool_kvq_kernel=[1, 3, 3])
    assert model.patch_embed.patch_model.weight.shape == (16, 3, 7, 7)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 7)


def test_vit_weight_init_and_without_patch_embed():
    torch.manual_seed(0)
    model = _small_mvit(enable_patch_embed=False, patch_embed_dim=16)
    assert isinstance(model.patch_embed, nn.Identity)
    assert model(torch.randn(2, 4 * 32 * 32, 16)).shape == (2, 7)
    big = _small_mvit(depth=2, embed_dim_mul=None, atten_head_mul=None, pool_q_stride_size=None,
                      pool_kv_stride_adaptive=None, pool_kvq_kernel=None, patch_embed_dim=64)
    weight = big.blocks[0].mlp.fc1.weight  # trunc_normal(std=0.02): 16k samples
    assert abs(weight.mean().item()) < 0.001 and 0.019 < weight.std().item() < 0.021
    assert torch.all(big.blocks[0].mlp.fc1.bias == 0) and torch.all(big.blocks[0].norm1.weight == 1)
    assert big.cls_positional_encoding.pos_embed_spatial.std() > 0.01


def test_builder_rejects_bad_configuration():
    with pytest.raises(ValueError, match="use_2d_patch"):
        _small_mvit(use_2d_patch=True)
    with pytest.raises(ValueError, match="block_index"):
        _small_mvit(depth=3)
    with pytest.raises(ValueError, match="pool_kv_stride_size"):
        _small_mvit(pool_kv_stride_size=[[0, 1, 2, 2]])
    with pytest.raises(NotImplementedError, match="norm"):
        _small_mvit(norm="groupnorm")
    with pytest.raises(ValueError, match="batchnorm"):
        _small_mvit(create_scriptable_model=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _small_mvit(create_scriptable_model=True, norm="batchnorm")
    assert any(issubclass(w.category, DeprecationWarning) for w in caught)
    with pytest.raises(ValueError, match="tokens"):
        _small_mvit()(torch.randn(1, 3, 4, 64, 64))
    with pytest.raises(TypeError, match="patch_embed_shape"):
        MultiscaleVisionTransformers(patch_embed=None, cls_positional_encoding=nn.Identity(), pos_drop=None,
                                     blocks=nn.ModuleList(), norm_embed=None, head=None)


# ---------------------------------------------------------------- batch-norm fusion


@pytest.mark.parametrize(
    "overrides",
    [dict(separate_qkv=True), dict(separate_qkv=False), dict(dim_mul_in_att=True), dict(pool_first=True)],
)
def test_fuse_bn_preserves_outputs_and_removes_batchnorms(overrides):
    torch.manual_seed(0)
    model = _small_mvit(norm="batchnorm", cls_embed_on=False, **overrides)
    # give the batch norms non-trivial statistics and affine parameters
    for module in model.modules():
        if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm3d)):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    model.eval()
    x = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        expected = model(x)
        model.fuse_bn()
        got = model(x)
    batch_norm = nn.modules.batchnorm._BatchNorm
    remaining = {name.split(".")[-1] for name, m in model.named_modules() if isinstance(m, batch_norm)}
    # pool-first blocks pool (with their BN) between norm1 and the projections: those norms stay
    assert remaining == ({"norm1", "norm_q", "norm_k", "norm_v"} if "pool_first" in overrides else set())
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_fuse_bn_requires_eval_mode():
    with pytest.raises(RuntimeError, match="eval"):
        _small_mvit(norm="batchnorm").fuse_bn()


# ---------------------------------------------------------------- export


def test_torch_export_with_dynamic_batch_matches_eager():
    torch.manual_seed(0)
    model = _small_mvit().eval()
    batch = torch.export.Dim("batch", min=1, max=64)
    exported = torch.export.export(model, (torch.randn(2, 3, 4, 32, 32),), dynamic_shapes={"x": {0: batch}})
    with torch.no_grad():
        for batch_size in (1, 3):
            x = torch.randn(batch_size, 3, 4, 32, 32)
            torch.testing.assert_close(exported.module()(x), model(x), rtol=1e-5, atol=1e-5)
