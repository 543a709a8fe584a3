"""DDP on loopback: 2 CPU processes (gloo) see disjoint data and finish with identical weights."""
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from pyvideo.tasks import distributed as dist_utils
from pyvideo.tasks.classification import classification_loss
from pyvideo.tasks.trainer import fit

from .tiny import DictDataset, TinyVideoNet, motion_tensors

EPOCHS = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, port: int, out_dir: str) -> None:
    torch.set_num_threads(1)
    assert dist_utils.init_distributed("cpu", init_method=f"tcp://127.0.0.1:{port}", rank_id=rank, num_processes=2)
    try:
        torch.manual_seed(0)
        model = TinyVideoNet(num_classes=2, width=4)
        dataset = DictDataset(*motion_tensors(num_classes=2, per_class=8, frames=4, size=12))
        seen = []

        def loss_fn(m, batch):
            seen.append(batch["video_index"].tolist())
            return classification_loss(m, batch)

        fit(model, dataset, loss_fn, epochs=EPOCHS, batch_size=4, lr=0.05, progress=False, seed=3,
            precise_bn_batches=1, bn_forward=lambda m, b: m(b["video"]))
        torch.save({"state": model.state_dict(), "seen": seen}, f"{out_dir}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_two_cpu_ranks_split_data_and_agree(tmp_path):
    mp.spawn(_worker, args=(_free_port(), str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    steps_per_epoch = 16 // 2 // 4
    for epoch in range(EPOCHS):
        per_rank = [sum(r["seen"][epoch * steps_per_epoch : (epoch + 1) * steps_per_epoch], []) for r in ranks]
        assert not set(per_rank[0]) & set(per_rank[1])
        assert sorted(per_rank[0] + per_rank[1]) == list(range(16))
    for name, value in ranks[0]["state"].items():
        assert torch.equal(value, ranks[1]["state"][name]), name
    assert not torch.equal(ranks[0]["state"]["proj.weight"], _initial_projection())  # it did train


def _initial_projection():
    torch.manual_seed(0)
    return TinyVideoNet(num_classes=2, width=4).proj.weight.detach()
