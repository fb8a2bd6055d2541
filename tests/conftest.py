import os

# Triton kernels run on the CPU only through its interpreter, which must be enabled before
# any @triton.jit function is defined, so before mimic_edge.kernels is imported anywhere.
os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
