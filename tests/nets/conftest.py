import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny networks run fastest on one thread, and leave the CPU to other work."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(before)
