"""NaiveSyncBatchNorm across 2 gloo processes equals plain BN over the concatenated batch."""
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn

from pyvideo.layers.batch_norm import NaiveSyncBatchNorm2d

WORLD_SIZE = 2


def _full_batch():
    torch.manual_seed(0)
    return torch.randn(2 * WORLD_SIZE, 3, 4, 4)


SYNC_MODES = {"global": {}, "group": {"global_sync": False, "num_sync_devices": WORLD_SIZE}}


def _worker(rank, init_file, results):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD_SIZE)
    try:
        for mode, sync_args in SYNC_MODES.items():
            bn = NaiveSyncBatchNorm2d(num_features=3, **sync_args)
            x = _full_batch()[2 * rank : 2 * rank + 2].clone().requires_grad_(True)
            out = bn(x)
            (out * torch.arange(out.numel()).reshape(out.shape)).sum().backward()
            results[(mode, rank)] = (out.detach(), x.grad, bn.running_mean.clone(), bn.weight.grad.clone())
    finally:
        dist.destroy_process_group()


def _reference():
    bn = nn.BatchNorm2d(3)
    x = _full_batch().requires_grad_(True)
    out = bn(x)
    (out * torch.cat([torch.arange(out[:2].numel()).reshape(out[:2].shape)] * WORLD_SIZE)).sum().backward()
    return out.detach(), x.grad, bn.running_mean, bn.weight.grad


def test_global_and_group_sync_match_full_batch_bn(tmp_path):
    expected_out, expected_grad, expected_mean, expected_weight_grad = _reference()
    shared = mp.Manager().dict()
    mp.spawn(_worker, args=(str(tmp_path / "init"), shared), nprocs=WORLD_SIZE, join=True)
    for mode in SYNC_MODES:
        results = [shared[(mode, rank)] for rank in range(WORLD_SIZE)]
        assert torch.allclose(torch.cat([r[0] for r in results]), expected_out, atol=1e-5)
        assert torch.allclose(torch.cat([r[1] for r in results]), expected_grad, atol=1e-5)
        for _, _, running_mean, _ in results:
            assert torch.allclose(running_mean, expected_mean, atol=1e-6)
        # each rank's weight gradient covers its own half of the batch
        assert torch.allclose(sum(r[3] for r in results), expected_weight_grad, atol=1e-4)
