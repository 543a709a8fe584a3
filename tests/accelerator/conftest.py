import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """These tests run many tiny ops; on a shared 2-core machine one intra-op thread is ~20x faster than two."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
