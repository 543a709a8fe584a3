import pytest
import torch


@pytest.fixture(autouse=True)
def single_torch_thread():
    """The task tests train small models: one intra-op thread avoids OpenMP spinning on a busy 2-core machine
    (measured 17x faster there) and keeps float reductions in one order."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
