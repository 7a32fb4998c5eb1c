import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Small tiles on a shared 2-core machine: OpenMP threads spin against other processes and
    run 10-100x slower than one thread; results do not depend on the thread count."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
