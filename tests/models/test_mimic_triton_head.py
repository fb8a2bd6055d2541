"""MIMIC with the fused Triton head (config fusion_head="triton") against the PyTorch head:
on the CPU through Triton's interpreter (tests/conftest.py sets TRITON_INTERPRET=1 on
machines without a GPU), on a GPU otherwise."""
import pytest
import torch

import mimic_edge.kernels
from mimic_edge import build_model

DEVICE = "cpu" if mimic_edge.kernels.triton_head_usable(torch.device("cpu")) else "cuda"
needs_device = pytest.mark.skipif(
    not mimic_edge.kernels.triton_head_usable(torch.device(DEVICE)) or DEVICE == "cuda" and not torch.cuda.is_available(),
    reason="no Triton here: neither TRITON_INTERPRET=1 nor a CUDA GPU with triton installed")
BATCH = 65  # two interpreter blocks of 64 samples, the second with one


def features(model, batch=BATCH, seq_len=6, device=DEVICE):
    g = torch.Generator().manual_seed(3)
    return [torch.randn(batch, seq_len, model.config.dims[m], generator=g).to(device)
            for m in ("text", "audio", "vision")]


def twins(device=DEVICE, **overrides):
    """The same weights behind the PyTorch head and the Triton head, in eval mode."""
    torch_head = build_model("mimic", fusion_head="torch", **overrides).to(device).eval()
    triton_head = build_model("mimic", fusion_head="triton", **overrides).to(device).eval()
    triton_head.load_state_dict(torch_head.state_dict())
    return torch_head, triton_head


@pytest.fixture
def head_calls(monkeypatch):
    """The batch shapes of the calls that reach the fused head."""
    calls = []
    if not mimic_edge.kernels._TRITON_INSTALLED:
        return calls  # no fused head to reach
    fusion_head = mimic_edge.kernels.fusion_head

    def counting(*args, **kwargs):
        calls.append(tuple(args[0].shape))
        return fusion_head(*args, **kwargs)

    monkeypatch.setattr(mimic_edge.kernels, "fusion_head", counting)
    return calls


def assert_same(got, expected, tol=1e-5):
    err = (got - expected).abs().max()
    scale = expected.abs().max()
    assert err <= tol * scale, f"max error {err:.3e} = {err / scale:.2e} × scale {scale:.3e}, tolerance {tol:.0e}"


@needs_device
@pytest.mark.parametrize("overrides", [{}, {"use_interaction": False}, {"use_shared": False, "out_dim": 3}],
                         ids=["default", "no-M", "no-S-3-classes"])
def test_triton_head_gives_the_pytorch_head_outputs(head_calls, overrides):
    torch_head, triton_head = twins(**overrides)
    inputs = features(torch_head)
    with torch.no_grad():
        enc = torch_head.encode(*inputs)
        expected_fused = torch_head.fuse(enc["h_tilde"], enc["i_tilde"], enc["shared"])
        got_fused = triton_head.fuse(enc["h_tilde"], enc["i_tilde"], enc["shared"])
        expected, got = torch_head(*inputs), triton_head(*inputs)
    assert head_calls == [(BATCH, 3, 16)] * 2  # the fused head ran, in fuse and in forward
    assert_same(got_fused, expected_fused)
    assert_same(got, expected)


@needs_device
def test_training_step_through_triton_head(head_calls):
    torch_head, triton_head = twins()
    inputs, target = features(torch_head, batch=8), torch.randn(8, 1).to(DEVICE)
    for model in (torch_head, triton_head):
        model.loss(*inputs, target)[0].backward()
    assert head_calls == [(8, 3, 16)]
    # all gradients as one vector: some are ~1e-11 (cancellations), their own scale means nothing
    expected = torch.cat([p.grad.flatten() for p in torch_head.parameters()])
    got = torch.cat([p.grad.flatten() for p in triton_head.parameters()])
    assert_same(got, expected)  # the forwards differ by rounding: 7e-8 measured


def test_cpu_without_interpreter_keeps_the_pytorch_head(head_calls, monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    torch_head, triton_head = twins(device="cpu")
    inputs = features(torch_head, batch=4, device="cpu")
    with torch.no_grad():
        assert torch.equal(triton_head(*inputs), torch_head(*inputs))
    assert head_calls == []
