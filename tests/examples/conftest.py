import pytest

from mimic_edge.data import synthetic


@pytest.fixture(scope="session")
def samples():
    """6 synthetic samples with unaligned lengths: text 50 steps, audio 20, vision 35."""
    test = synthetic("mosi", n=(1, 1, 6), seed=5)["test"]
    return {"text": test["text"], "audio": test["audio"][:, :20], "vision": test["vision"][:, 15:]}
