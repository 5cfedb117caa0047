import os

import pytest
import torch
from hypothesis import settings

# The same examples on every run, so a CI run cannot fail by the luck of the draw; set
# HYPOTHESIS_PROFILE=explore to search new examples (as when writing a property test).
settings.register_profile("ci", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# Keep runs small and single-threaded: the suite runs two workers on a 2-core machine.
os.environ.setdefault("RLCOURSE_FAST", "1")
torch.set_num_threads(1)


@pytest.fixture
def rng():
    return torch.Generator().manual_seed(0)


@pytest.fixture(autouse=True)
def close_figures():
    """The views draw with pyplot, which keeps every figure open until closed: close them after each test."""
    yield
    import matplotlib.pyplot as plt

    plt.close("all")
