import os

# Triton kernels run on the CPU only through its interpreter, which must be enabled before
# any @triton.jit function is defined, so before mimic_edge.kernels is imported anywhere.
os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def random_inputs(config, batch, seq_lens=(50, 50, 50), seed=0):
    """Random (text, audio, vision) for `config`; seq_lens per modality in MODALITIES order."""
    from mimic_edge.config import MODALITIES

    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, L, config.dims[m], generator=gen) for m, L in zip(MODALITIES, seq_lens)]


@pytest.fixture
def make_inputs():
    return random_inputs
