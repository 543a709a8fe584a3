"""A shuffling sampler that can start mid-epoch (for bit-identical resume) and shard across DDP ranks."""
from typing import Iterator

import torch
from torch.utils.data import Sampler


class ResumableSampler(Sampler[int]):
    """Yields this rank's share of a permutation fixed by (seed, epoch), starting at ``start_index``.

    Like DistributedSampler, the permutation is padded (by wrapping) to a multiple of ``num_replicas`` and rank r
    takes positions r, r+R, r+2R, ...; ranks therefore see disjoint samples except for the padding.
    """

    def __init__(self, dataset_size: int, *, shuffle: bool = True, seed: int = 0, num_replicas: int = 1, rank: int = 0):
        if dataset_size < 1:
            raise ValueError("the dataset is empty")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} is outside [0, {num_replicas})")
        self.dataset_size, self.shuffle, self.seed = dataset_size, shuffle, seed
        self.num_replicas, self.rank = num_replicas, rank
        self.epoch, self.start_index = 0, 0

    def __len__(self) -> int:
        return -(-self.dataset_size // self.num_replicas) - self.start_index

    def set_epoch(self, epoch: int, start_index: int = 0) -> None:
        self.epoch, self.start_index = epoch, start_index

    def indices(self) -> list:
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            order = torch.randperm(self.dataset_size, generator=generator).tolist()
        else:
            order = list(range(self.dataset_size))
        per_rank = -(-self.dataset_size // self.num_replicas)
        padded = (order * (1 + per_rank * self.num_replicas // len(order)))[: per_rank * self.num_replicas]
        return padded[self.rank :: self.num_replicas]

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices()[self.start_index :])
