import math
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn

from pyvideo.layers.distributed import (
    GroupGather,
    all_gather,
    cat_all_gather,
    get_local_rank,
    get_local_size,
    get_rank,
    get_world_size,
    init_distributed_training,
)
from pyvideo.models.byol import BYOL
from pyvideo.models.memory_bank import MemoryBank
from pyvideo.models.simclr import SimCLR


def _identity_linear(dim):
    layer = nn.Linear(dim, dim, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.eye(dim))
    return layer


# ---------------------------------------------------------------- BYOL


def test_byol_loss_is_negative_cosine_and_momentum_update_is_ema():
    model = BYOL(_identity_linear(2), predictor=nn.Identity(), feature_dim=2, mmt=0.9)
    x1, x2 = torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 1.0]])
    loss = model(x1, x2)
    # online == momentum network at start: loss = -cos(x1, x2) = -1/sqrt(2)
    assert loss.item() == pytest.approx(-1 / math.sqrt(2), rel=1e-6)
    assert not any(p.requires_grad for p in model.backbone_mmt.parameters())

    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    online = model.backbone.weight.detach().clone()
    assert not torch.equal(online, torch.eye(2)), "the training step must change the online backbone"
    model(x1, x2)
    torch.testing.assert_close(model.backbone_mmt.weight, 0.9 * torch.eye(2) + 0.1 * online)


def test_byol_eval_does_not_touch_momentum_network_and_default_predictor_shapes():
    backbone = nn.Sequential(nn.Flatten(), nn.Linear(12, 8))
    model = BYOL(backbone, projector=nn.Linear(8, 6), feature_dim=6, predictor_inner=10, norm=nn.BatchNorm1d)
    assert [k.split(".")[0] for k in model.state_dict()][:1] == ["backbone"]
    assert "predictor.1.running_mean" in model.state_dict()
    model.eval()
    before = [p.clone() for p in model.backbone_mmt.parameters()]
    loss = model(torch.randn(4, 3, 4), torch.randn(4, 3, 4))
    assert -1.0 <= loss.item() <= 1.0
    assert all(torch.equal(a, b) for a, b in zip(before, model.backbone_mmt.parameters()))
    assert model.get_mmt() == 0.99
    model.update_mmt(0.5)
    assert model.get_mmt() == 0.5


def test_byol_training_step_with_sync_batchnorm_default_on_cpu():
    model = BYOL(nn.Linear(5, 4), feature_dim=4, predictor_inner=8)
    loss = model(torch.randn(6, 5), torch.randn(6, 5))
    loss.backward()
    assert model.backbone.weight.grad is not None and torch.isfinite(loss)


# ---------------------------------------------------------------- SimCLR


def _info_nce(z1, z2, temperature, offset=0):
    total = 0.0
    for i, row in enumerate(z1):
        logits = [sum(a * b for a, b in zip(row, other)) / temperature for other in z2]
        total += -logits[offset + i] + math.log(sum(math.exp(v) for v in logits))
    return total / len(z1)


def test_simclr_loss_by_hand_single_process():
    x1 = [[1.0, 0.0], [0.0, 2.0]]  # normalised to (1,0), (0,1)
    x2 = [[1.0, 0.0], [0.6, 0.8]]
    loss = SimCLR(mlp=nn.Identity(), temperature=0.5)(torch.tensor(x1), torch.tensor(x2))
    expected = _info_nce([[1.0, 0.0], [0.0, 1.0]], x2, 0.5)
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_simclr_training_step_with_backbone():
    model = SimCLR(mlp=nn.Linear(6, 3), backbone=nn.Sequential(nn.Linear(4, 6), nn.ReLU()), temperature=0.1)
    assert list(model.state_dict())[0].startswith("mlp.")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(8, 4, generator=generator)
    x_aug = x + 0.05 * torch.randn(8, 4, generator=generator)
    first = model(x, x_aug)
    for _ in range(20):
        optimizer.zero_grad()
        loss = model(x, x_aug)
        loss.backward()
        optimizer.step()
    assert model(x, x_aug).item() < first.item()


# ---------------------------------------------------------------- distributed (2 gloo processes)


def _distributed_worker(rank, world_size, port, results):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size)
    try:
        torch.set_num_threads(1)
        # differentiable all-gather: rank r holds (r+1, 10(r+1)); each rank's loss weights the gathered vector
        x = torch.tensor([rank + 1.0, 10.0 * (rank + 1)], requires_grad=True)
        gathered = torch.cat(all_gather(x))
        (gathered * torch.arange(4.0) * (rank + 1)).sum().backward()
        results[("gathered", rank)] = gathered.detach().tolist()
        results[("grad", rank)] = x.grad.tolist()
        results[("cat", rank)] = cat_all_gather(x.detach() * 2).tolist()
        results[("rank", rank)] = (get_rank(), get_world_size())

        # per-machine group of both ranks; GroupGather sums over it, forward and backward
        init_distributed_training(num_gpus=2, shard_id=0)
        y = torch.full((2,), float(rank + 1), requires_grad=True)
        summed = GroupGather.apply(y, 2, 1)
        (summed * (rank + 1)).sum().backward()
        results[("local", rank)] = (get_local_size(), get_local_rank(), summed.tolist(), y.grad.tolist())

        # SimCLR across ranks: rank r's loss uses all x2 rows, its positives at offset r * batch
        torch.manual_seed(0)
        x1_all, x2_all = torch.randn(4, 3), torch.randn(4, 3)
        mlp = nn.Identity()
        loss = SimCLR(mlp=mlp, temperature=0.2)(x1_all[2 * rank : 2 * rank + 2], x2_all[2 * rank : 2 * rank + 2])
        results[("simclr", rank)] = loss.item()
    finally:
        dist.destroy_process_group()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not dist.is_available(), reason="torch built without distributed")
def test_all_gather_and_simclr_with_two_gloo_processes():
    manager = mp.Manager()
    results = manager.dict()
    mp.spawn(_distributed_worker, args=(2, _free_port(), results), nprocs=2, join=True)
    for rank in range(2):
        assert results[("gathered", rank)] == [1.0, 10.0, 2.0, 20.0]
        assert results[("cat", rank)] == [2.0, 20.0, 4.0, 40.0]
        assert results[("rank", rank)] == (rank, 2)
        # sum of (1, 2) = 3 on both ranks; gradient = sum over ranks of their weights (1 + 2)
        assert results[("local", rank)] == (2, rank, [3.0, 3.0], [3.0, 3.0])
    # d(sum of both ranks' losses)/dx_r = sum_q (q+1) * arange(4)[2r:2r+2] = 3 * arange(4)[2r:2r+2]
    assert results[("grad", 0)] == [0.0, 3.0]
    assert results[("grad", 1)] == [6.0, 9.0]

    torch.manual_seed(0)
    x1_all, x2_all = torch.randn(4, 3), torch.randn(4, 3)
    z1 = nn.functional.normalize(x1_all, dim=1).tolist()
    z2 = nn.functional.normalize(x2_all, dim=1).tolist()
    for rank in range(2):
        expected = _info_nce(z1[2 * rank : 2 * rank + 2], z2, 0.2, offset=2 * rank)
        assert results[("simclr", rank)] == pytest.approx(expected, rel=1e-5)


def test_single_process_helpers():
    x = torch.ones(3, requires_grad=True)
    assert all_gather(x)[0] is x
    assert cat_all_gather(x) is x
    assert (get_rank(), get_world_size(), get_local_size(), get_local_rank()) == (0, 1, 1, 0)


# ---------------------------------------------------------------- MemoryBank


def test_memory_bank_loss_with_equal_entries_is_log_k_and_update_is_normalised_ema():
    model = MemoryBank(nn.Identity(), neg_size=5, temperature=0.1, bank_size=4, dim=2, mmt=0.75)
    unit = torch.tensor([0.6, 0.8])
    model.memory.copy_(unit.expand(4, 2))
    x = torch.tensor([[3.0, 0.0]])  # normalised to (1, 0)
    loss = model(x, torch.tensor([2]))
    # all 6 logits equal -> cross entropy = log(6) whatever the sampled negatives
    assert loss.item() == pytest.approx(math.log(6), rel=1e-6)
    mixed = 0.75 * unit + 0.25 * torch.tensor([1.0, 0.0])
    torch.testing.assert_close(model.memory[2], mixed / mixed.norm())
    torch.testing.assert_close(model.memory[[0, 1, 3]], unit.expand(3, 2))


def test_memory_bank_loss_is_a_mix_of_the_two_possible_sample_losses():
    # positive entry e0 matches x; the other entry is orthogonal. A negative either hits the positive
    # entry (sample loss log 2) or not (log(1 + e^{-1/T})); the batch mean is a mix with integer weights.
    temperature, batch = 0.5, 40
    model = MemoryBank(nn.Identity(), neg_size=1, temperature=temperature, bank_size=2, dim=2).eval()
    model.memory.copy_(torch.eye(2))
    loss = model(torch.tensor([[2.0, 0.0]]).expand(batch, 2), torch.zeros(batch, dtype=torch.long)).item()
    hit, miss = math.log(2), math.log(1 + math.exp(-1 / temperature))
    hits = (loss - miss) / (hit - miss) * batch
    assert abs(hits - round(hits)) < 1e-3 and 0 < round(hits) < batch
    torch.testing.assert_close(model.memory, torch.eye(2))  # eval mode: bank untouched


def test_memory_bank_training_step_and_bad_indices():
    model = MemoryBank(nn.Linear(4, 6), mlp=nn.Linear(6, 3), neg_size=7, bank_size=10, dim=3)
    assert model.memory.shape == (10, 3)
    # initial entries are uniform in [-stdv, stdv), stdv = 1 / sqrt(dim / 3) = 1 for dim 3
    assert model.memory.abs().max() <= 1.0 and model.memory.std() > 0.3
    loss = model(torch.randn(5, 4), torch.arange(5))
    loss.backward()
    assert model.backbone.weight.grad is not None and model.mlp.weight.grad is not None
    torch.testing.assert_close(model.memory[:5].norm(dim=1), torch.ones(5))
    with pytest.raises(ValueError, match="x_ind"):
        model(torch.randn(2, 4), torch.tensor([0, 10]))
    with pytest.raises(ValueError, match="one index per sample"):
        model(torch.randn(2, 4), torch.tensor([0]))
