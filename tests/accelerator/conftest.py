import pytest
import torch


@pytest.fixture
def one_torch_thread():
    """Many tiny ops: on a shared 2-core machine one intra-op thread is ~20x faster than two. Opt-in per module."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
