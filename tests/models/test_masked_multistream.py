"""Masked sequence modules against hand-computed results."""
import pytest
import torch
import torch.nn as nn

from pyvideo.layers.fusion import make_fusion_layer
from pyvideo.models.masked_multistream import (
    LSTM,
    LearnMaskedDefault,
    MaskedMultiPathWay,
    MaskedSequential,
    MaskedTemporalPooling,
    TransposeMultiheadAttention,
    TransposeTransformerEncoder,
)

X = torch.tensor([[[1.0, -2.0], [3.0, 0.0], [-5.0, 7.0]], [[2.0, 2.0], [4.0, -4.0], [6.0, 1.0]]])
MASK = torch.tensor([[True, True, False], [False, False, False]])


@pytest.mark.parametrize(
    "method, expected",
    [
        ("max", [[3.0, 0.0], [0.0, 0.0]]),  # a sample with no valid step pools to zeros
        ("avg", [[2.0, -1.0], [0.0, 0.0]]),
        ("sum", [[4.0, -2.0], [0.0, 0.0]]),
    ],
)
def test_masked_temporal_pooling(method, expected):
    original = X.clone()
    assert torch.equal(MaskedTemporalPooling(method)(X, MASK), torch.tensor(expected))
    assert torch.equal(X, original)  # the input is not modified
    assert torch.equal(MaskedTemporalPooling(method)(X)[1], {"max": X[1].amax(0), "avg": X[1].mean(0), "sum": X[1].sum(0)}[method])


def test_masked_temporal_pooling_validates():
    with pytest.raises(ValueError, match="method"):
        MaskedTemporalPooling("median")
    with pytest.raises(ValueError, match="batch, seq_len, feature_dim"):
        MaskedTemporalPooling("max")(torch.zeros(2, 3))


def test_learn_masked_default_replaces_fully_masked_samples():
    module = LearnMaskedDefault(feature_dim=2, init_method="zeros")
    with torch.no_grad():
        module._learned_defaults.copy_(torch.tensor([9.0, 8.0]))
    out = module(X, MASK)
    assert torch.equal(out[0], X[0]) and torch.equal(out[1], torch.tensor([[9.0, 8.0]] * 3))
    assert not LearnMaskedDefault(2, freeze=True)._learned_defaults.requires_grad
    with pytest.raises(NotImplementedError):
        LearnMaskedDefault(2, init_method="uniform")


def test_lstm_reads_only_the_valid_prefix():
    torch.manual_seed(0)
    module = LSTM(dim_in=2, hidden_dim=3)
    mask = torch.tensor([[True, True, False], [True, True, True]])
    out = module(X, mask)
    _, (hidden, _) = module.lstm(X[:1, :2])
    assert torch.allclose(out[0], hidden[-1, 0], atol=1e-6)
    assert out.shape == (2, 3)
    bidirectional = LSTM(dim_in=2, hidden_dim=3, bidirectional=True)
    assert bidirectional(X, mask).shape == (2, 6) and bidirectional.output_dim == 6


def test_attention_ignores_masked_steps():
    torch.manual_seed(0)
    module = TransposeMultiheadAttention(feature_dim=2, num_heads=1).eval()
    mask = torch.tensor([[True, True, False]])
    changed = X[:1].clone()
    changed[0, 2] = torch.tensor([100.0, -100.0])
    with torch.no_grad():
        first, second = module(X[:1], mask), module(changed, mask)
    assert torch.allclose(first[:, :2], second[:, :2], atol=1e-5)
    assert module.attention_weights.shape == (1, 3, 3)
    assert torch.allclose(module.attention_weights[0, :, 2], torch.zeros(3))


def test_transformer_encoder_returns_first_position():
    module = TransposeTransformerEncoder(dim_in=2, num_heads=1).eval()
    with torch.no_grad():
        assert module(X, torch.tensor([[True, True, False], [True, False, False]])).shape == (2, 2)


def test_masked_sequential_and_multipathway():
    seq = MaskedSequential(nn.Linear(2, 2), MaskedTemporalPooling("sum"))
    with torch.no_grad():
        out = seq(X, MASK)
        assert torch.allclose(out[0], seq[0](X[0, :2]).sum(0))
    fusion = make_fusion_layer("concat", [2, 2])
    multipath = MaskedMultiPathWay(
        multipathway_blocks=nn.ModuleList([MaskedSequential(MaskedTemporalPooling("max")), MaskedSequential(MaskedTemporalPooling("sum"))]),
        multipathway_fusion=fusion,
    )
    fused = multipath([(X, MASK), (X, MASK)])
    assert torch.equal(fused, torch.tensor([[3.0, 0.0, 4.0, -2.0], [0.0, 0.0, 0.0, 0.0]]))
    no_fusion = MaskedMultiPathWay(multipathway_blocks=multipath.multipathway_blocks, multipathway_fusion=None)
    assert len(no_fusion([(X, MASK), (X, MASK)])) == 2
    with pytest.raises(ValueError, match="expected 2"):
        multipath([(X, MASK)])
