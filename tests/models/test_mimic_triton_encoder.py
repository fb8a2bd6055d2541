"""MIMIC with the Triton BiLSTM encoder (config encoder="triton") against the nn.LSTM path: on
the CPU through Triton's interpreter (tests/conftest.py sets TRITON_INTERPRET=1 on machines
without a GPU), on a GPU otherwise. Also the config field: checkpoints written before it load."""
import json

import pytest
import torch

import mimic_edge.kernels
from mimic_edge import build_model
from mimic_edge.checkpoint import load_checkpoint, save_checkpoint
from mimic_edge.config import MODALITIES, make_config
from mimic_edge.errors import ConfigError

DEVICE = "cpu" if mimic_edge.kernels.triton_head_usable(torch.device("cpu")) else "cuda"
needs_device = pytest.mark.skipif(
    not mimic_edge.kernels.triton_head_usable(torch.device(DEVICE)) or DEVICE == "cuda" and not torch.cuda.is_available(),
    reason="no Triton here: neither TRITON_INTERPRET=1 nor a CUDA GPU with triton installed")
BATCH = 17
SEQ_LENS = (6, 4, 5)  # unequal per modality, short: each step costs under the interpreter
# |model(triton encoder) − model(nn.LSTM)| ≤ TOL · max |output|: the encoders differ by ~2e-7
# (tests/kernels/test_lstm.py), the rest of the model is the same ops on the same values
TOL = 1e-5


@pytest.fixture(autouse=True)
def _fp32_cudnn():
    """On a GPU, nn.LSTM (cuDNN) computes fp32 in TF32 by default (torch.backends.cudnn.rnn.
    fp32_precision "tf32"), errors ~1e-3: the nn.LSTM references here are fp32, as on a CPU."""
    with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
        yield


def features(model, batch=BATCH, device=DEVICE, seed=3):
    g = torch.Generator().manual_seed(seed)
    xs = [torch.randn(batch, n, model.config.dims[m], generator=g).to(device) for m, n in zip(MODALITIES, SEQ_LENS)]
    lengths = {m: torch.randint(1, n + 1, (batch,), generator=g).to(device) for m, n in zip(MODALITIES, SEQ_LENS)}
    lengths["text"][0] = 1
    return xs, lengths


def twins(device=DEVICE, **overrides):
    """The same weights behind the nn.LSTM encoder and the Triton encoder, in eval mode."""
    torch_encoder = build_model("mimic", encoder="torch", **overrides).to(device).eval()
    triton_encoder = build_model("mimic", encoder="triton", **overrides).to(device).eval()
    triton_encoder.load_state_dict(torch_encoder.state_dict())
    return torch_encoder, triton_encoder


@pytest.fixture
def encoder_calls(monkeypatch):
    """The batch sizes of the calls that reach the Triton encoder."""
    calls = []
    if not mimic_edge.kernels._TRITON_INSTALLED:
        return calls
    bilstm_encoders = mimic_edge.kernels.bilstm_encoders

    def counting(xs, *args, **kwargs):
        calls.append(xs[0].shape[0])
        return bilstm_encoders(xs, *args, **kwargs)

    monkeypatch.setattr(mimic_edge.kernels, "bilstm_encoders", counting)
    return calls


def assert_same(got, expected, tol=TOL):
    err = (got - expected).abs().max()
    scale = expected.abs().max()
    assert err <= tol * scale, f"max error {err:.3e} = {err / scale:.2e} × scale {scale:.3e}, tolerance {tol:.0e}"


@needs_device
@pytest.mark.parametrize("overrides, with_lengths", [
    ({}, True), ({}, False), ({"drop_modalities": ("audio",), "out_dim": 3}, True),
    ({"fusion_head": "triton"}, True),  # the whole model on Triton kernels: encoders and head
], ids=["lengths", "no-lengths", "drop-audio-3-classes", "with-triton-head"])
def test_triton_encoder_gives_the_nn_lstm_outputs(encoder_calls, overrides, with_lengths):
    torch_encoder, triton_encoder = twins(**overrides)
    xs, lengths = features(torch_encoder)
    lengths = lengths if with_lengths else None
    with torch.no_grad():
        expected = torch_encoder.representations(*xs, lengths)
        got = triton_encoder.representations(*xs, lengths)
    assert encoder_calls == [BATCH]
    for name in ("h_hat", "score"):
        assert_same(got[name], expected[name])


@needs_device
def test_forward_and_padding(encoder_calls):
    """forward() takes the kernel too, and padding changes nothing: a sample alone, unpadded."""
    torch_encoder, triton_encoder = twins()
    xs, lengths = features(torch_encoder, batch=3)
    with torch.no_grad():
        got = triton_encoder(*xs, lengths)
        assert_same(got, torch_encoder(*xs, lengths))
        alone = triton_encoder(*(x[1:2, :int(lengths[m][1])] for m, x in zip(MODALITIES, xs)))
    assert encoder_calls == [3, 1]
    assert_same(alone[0], got[1])


@needs_device
def test_training_step_through_triton_encoder(encoder_calls):
    torch_encoder, triton_encoder = twins()
    xs, lengths = features(torch_encoder, batch=8)
    target = torch.randn(8, 1).to(DEVICE)
    for model in (torch_encoder, triton_encoder):
        model.loss(*xs, target, lengths)[0].backward()
    assert encoder_calls == [8]
    expected = torch.cat([p.grad.flatten() for p in torch_encoder.parameters()])
    got = torch.cat([p.grad.flatten() for p in triton_encoder.parameters()])
    assert_same(got, expected)  # the backward is the nn.LSTM path's; the forwards differ by rounding


def test_cpu_without_interpreter_keeps_the_nn_lstm(encoder_calls, monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    torch_encoder, triton_encoder = twins(device="cpu")
    xs, lengths = features(torch_encoder, batch=4, device="cpu")
    with torch.no_grad():
        assert torch.equal(triton_encoder(*xs, lengths), torch_encoder(*xs, lengths))
    assert encoder_calls == []


def test_encoder_field_checked():
    assert make_config("mimic").encoder == "torch"
    with pytest.raises(ConfigError, match="encoder must be 'torch' or 'triton', got 'cudnn'"):
        make_config("mimic", encoder="cudnn")


def test_checkpoint_without_the_field_loads(tmp_path):
    """Checkpoints store the config as JSON: one written before the field existed gets its default."""
    model = build_model("mimic", encoder="triton").eval()
    weights = save_checkpoint(model, tmp_path / "m")
    meta_path = weights.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    assert meta["config"]["encoder"] == "triton"
    del meta["config"]["encoder"]
    meta_path.write_text(json.dumps(meta))
    loaded = load_checkpoint(tmp_path / "m")
    assert loaded.config.encoder == "torch"
    assert loaded.state_dict().keys() == model.state_dict().keys()  # same parameters either way


def _kernel_ops(graph) -> list:
    return [n.target for n in graph.nodes if n.op == "call_function" and "mimic_edge" in str(n.target)]


@needs_device
def test_torch_compile_captures_the_whole_model_in_one_graph():
    """fullgraph: no break at the encoders (Dynamo refuses to trace into an nn.LSTM, so the
    model hands the kernel the weights it listed at construction) nor at the head."""
    torch_encoder, triton_encoder = twins(fusion_head="triton")
    xs, lengths = features(torch_encoder, batch=3)
    graphs = []

    def record(gm, example_inputs):
        graphs.append(gm.graph)
        return gm.forward

    with torch.no_grad():
        got = torch.compile(triton_encoder, backend=record, fullgraph=True)(*xs, lengths)
        assert_same(got, torch_encoder(*xs, lengths))
    assert _kernel_ops(graphs[0]) == [torch.ops.mimic_edge.bilstm_encoders.default,
                                      torch.ops.mimic_edge.fusion_head.default]


@pytest.mark.slow  # traces the whole model: ~3 s on 2 cores
@needs_device
def test_torch_export_keeps_both_kernels_for_any_batch():
    """What an AOTInductor (.pt2) export starts from: one op per kernel, a dynamic batch."""
    torch_encoder, triton_encoder = twins(fusion_head="triton")
    xs, _ = features(torch_encoder, batch=3)
    batch = torch.export.Dim("batch")
    program = torch.export.export(triton_encoder, tuple(xs), dynamic_shapes=({0: batch},) * 3)
    assert _kernel_ops(program.graph) == [torch.ops.mimic_edge.bilstm_encoders.default,
                                          torch.ops.mimic_edge.fusion_head.default]
    other, _ = features(torch_encoder, batch=5, seed=4)
    with torch.no_grad():
        assert_same(program.module()(*other), torch_encoder(*other))


@needs_device
def test_inference_packs_the_lstm_weights_once_until_they_change(encoder_calls, monkeypatch):
    """Per call, the kernel reads the packed weights the model made once (not 5 copies per call,
    each a launch on a GPU); a weight that changes (load_state_dict) is packed again."""
    from mimic_edge.kernels import lstm

    packs, pack_weights = [], lstm.pack_weights
    monkeypatch.setattr(lstm, "pack_weights", lambda weights: packs.append(1) or pack_weights(weights))
    torch_encoder, triton_encoder = twins()
    xs, lengths = features(torch_encoder, batch=2)
    with torch.no_grad():
        first = triton_encoder(*xs, lengths)
        again = triton_encoder(*xs, lengths)
        assert len(packs) == 1 and torch.equal(first, again)
        torch.manual_seed(5)
        other = build_model("mimic").to(DEVICE).eval()
        triton_encoder.load_state_dict(other.state_dict())
        assert_same(triton_encoder(*xs, lengths), other(*xs, lengths))
    assert len(packs) == 2
