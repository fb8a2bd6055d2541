"""The Triton BiLSTM recurrence kernel (kernels/lstm.py) against its reference, nn.LSTM and the
model's LSTM path: on the CPU through Triton's interpreter (tests/conftest.py sets
TRITON_INTERPRET=1 on machines without a GPU), on CUDA tensors otherwise."""
import functools
import os
import subprocess
import sys

import pytest
import torch
from torch import nn

from mimic_edge.kernels import KernelInputError, KernelTypeError, bilstm_encoders_reference, bilstm_reference
from mimic_edge.models.common import bilstm

pytest.importorskip("triton", reason="the recurrence kernel needs triton")
from mimic_edge.kernels import bilstm_encoders  # noqa: E402  the function
from mimic_edge.kernels import lstm as kernel  # noqa: E402  the kernel's module

DEVICE = "cpu" if kernel._INTERPRETED else "cuda"
pytestmark = pytest.mark.skipif(DEVICE == "cuda" and not torch.cuda.is_available(),
                                reason="TRITON_INTERPRET is off and there is no CUDA GPU")
DIMS = (300, 74, 47)  # preset mosi: text, audio, vision
SHORT = (7, 5, 9)  # unequal sequence lengths per modality; the preset's 50 in the slow test
# max |kernel − reference| (outputs are |h| < 1: absolute errors) against the fp32 reference on
# the same rounded inputs, in units of the dtype's unit roundoff u (2^-24, 2^-11, 2^-8).
# Measured under the interpreter over 27 cases (B 1, 3, 17; L up to 50; 3 seeds): fp32 3.1e-7
# = 5.3u (the GEMMs sum 300 products in another order than nn.LSTM's); 64u = 3.8e-6 leaves
# room for 3×TF32 dots on a GPU (they drop the lo·lo products, ~2^-22 relative each: over 32
# terms |w h| ≤ 0.18, ≤ 1.4e-6 per gate). fp16/bf16: the output's own rounding is u/2 (the
# interpreter's bf16 casts truncate: u), plus h rounded to the dot operand and P rounded each
# step, damped by σ' ≤ 1/4 and tanh' ≤ 1: measured 0.79u (fp16), 1.29u (bf16); tolerance 2u.
TOLERANCES = [(torch.float32, 64 * 2.0 ** -24), (torch.float16, 2 * 2.0 ** -11), (torch.bfloat16, 2 * 2.0 ** -8)]
DTYPE_IDS = ["fp32", "fp16", "bf16"]


@pytest.fixture(autouse=True)
def _fp32_cudnn():
    """On a GPU, nn.LSTM (cuDNN) computes fp32 in TF32 by default (torch.backends.cudnn.rnn.
    fp32_precision "tf32"), errors ~1e-3: the nn.LSTM references here are fp32, as on a CPU."""
    with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
        yield


@functools.cache
def lstms(hidden: int = 32) -> tuple[nn.LSTM, ...]:
    torch.manual_seed(0)
    return tuple(nn.LSTM(d, hidden, batch_first=True, bidirectional=True) for d in DIMS)


def weights_of(modules, dtype=torch.float32) -> list[list[torch.Tensor]]:
    return [[w.detach().to(DEVICE, dtype) for d in lstm.all_weights for w in d] for lstm in modules]


def make_case(batch: int, seq_lens=SHORT, lengths: str = "unequal", seed: int = 0, scale: float = 1.0):
    """Inputs (B, L_m, d_m) and lengths: "none", "unequal" (1 and L_m among them), "mixed" (audio full)."""
    g = torch.Generator().manual_seed(seed)
    xs = [torch.randn(batch, L, d, generator=g) * scale for L, d in zip(seq_lens, DIMS)]
    if lengths == "none":
        ns = None
    else:
        ns = [torch.randint(1, L + 1, (batch,), generator=g) for L in seq_lens]
        for n, L in zip(ns, seq_lens):  # the extremes: length 1 and the full length
            n[0] = 1
            n[-1] = L if batch > 1 else n[-1]
        if lengths == "mixed":
            ns[1] = None
    on = [x.to(DEVICE) for x in xs]
    return on, ns if ns is None else [n if n is None else n.to(DEVICE) for n in ns]


def report(got: torch.Tensor, expected: torch.Tensor) -> str:
    """Where and how much: max error, its index, NaN mismatches."""
    err = (got.float() - expected.float()).abs()
    where = tuple(int(i) for i in torch.unravel_index(err.argmax(), err.shape))
    nans = int((got.isnan() != expected.isnan()).sum())
    return (f"max error {err.max():.3e} at {where}: got {got[where]:.7g}, expected {expected[where]:.7g}; "
            f"NaN mismatches {nans}")


def assert_close(got: list[torch.Tensor], expected: list[torch.Tensor], atol: float) -> None:
    assert len(got) == len(expected)
    for m, (g, e) in enumerate(zip(got, expected)):
        assert g.shape == e.shape, f"modality {m}: shape {tuple(g.shape)}, expected {tuple(e.shape)}"
        err = (g.float() - e.float()).abs().max()
        assert not g.isnan().any() and err <= atol, f"modality {m}: {report(g, e)}; tolerance {atol:.1e}"


def test_package_exports_the_function():
    """`mimic_edge.kernels.bilstm_encoders` imports kernels/lstm.py on first use (lazy, like fusion_head)."""
    import mimic_edge.kernels

    assert mimic_edge.kernels.bilstm_encoders is kernel.bilstm_encoders is bilstm_encoders
    assert "bilstm_encoders" in mimic_edge.kernels.__all__


def test_reference_is_the_models_lstm_path():
    """Bit for bit, padded steps included: the reference restates models.common.bilstm."""
    xs, ns = make_case(5, lengths="unequal")
    with torch.no_grad():
        for lstm, x, n in zip(lstms(), xs, ns):
            lstm = lstm.to(DEVICE)
            weights = [w for d in lstm.all_weights for w in d]
            assert torch.equal(bilstm_reference(x, weights, n), bilstm(lstm, x, n)[0])
            assert torch.equal(bilstm_reference(x, weights), bilstm(lstm, x)[0])


@pytest.mark.parametrize("batch", [1, 3, 17])
@pytest.mark.parametrize("dtype, atol", TOLERANCES, ids=DTYPE_IDS)
def test_matches_reference_with_unequal_lengths(dtype, atol, batch):
    xs, ns = make_case(batch)
    xs, ws = [x.to(dtype) for x in xs], weights_of(lstms(), dtype)
    got = bilstm_encoders(xs, ws, ns)
    expected = bilstm_encoders_reference([x.float() for x in xs], [[w.float() for w in w8] for w8 in ws], ns)
    assert all(g.dtype == dtype for g in got)
    assert_close(got, expected, atol)  # every position, the padded ones too


@pytest.mark.parametrize("batch, lengths", [(17, "none"), (3, "mixed")])
def test_matches_reference_without_some_or_all_lengths(batch, lengths):
    xs, ns = make_case(batch, lengths=lengths)
    ws = weights_of(lstms())
    assert_close(bilstm_encoders(xs, ws, ns), bilstm_encoders_reference(xs, ws, ns), TOLERANCES[0][1])


def test_equals_nn_lstm_per_sample_unpadded():
    """Padding changes nothing: each sample's valid steps are nn.LSTM's on that sample alone."""
    xs, ns = make_case(3)
    got = bilstm_encoders(xs, weights_of(lstms()), ns)
    with torch.no_grad():
        for lstm, x, n, out in zip(lstms(), xs, ns, got):
            lstm = lstm.to(DEVICE)
            for b in range(x.shape[0]):
                valid = int(n[b])
                assert_close([out[b, :valid]], [lstm(x[b: b + 1, :valid])[0][0]], TOLERANCES[0][1])


def test_equals_nn_lstm_without_lengths():
    xs, _ = make_case(3, lengths="none")
    got = bilstm_encoders(xs, weights_of(lstms()))
    with torch.no_grad():
        assert_close(got, [lstm.to(DEVICE)(x)[0] for lstm, x in zip(lstms(), xs)], TOLERANCES[0][1])


def test_gpu_block_size(monkeypatch):
    """The GPU's 16-sample blocks, run by the interpreter: B = 17 is two blocks, one sample in the second."""
    if not kernel._INTERPRETED:
        pytest.skip("on a GPU every test runs the GPU's blocks")
    monkeypatch.setattr(kernel, "INTERPRETER_BLOCK_B", kernel.GPU_BLOCK_B)
    xs, ns = make_case(17)
    ws = weights_of(lstms())
    assert_close(bilstm_encoders(xs, ws, ns), bilstm_encoders_reference(xs, ws, ns), TOLERANCES[0][1])


def test_hidden_16():
    xs, ns = make_case(3)
    ws = weights_of(lstms(16))
    assert_close(bilstm_encoders(xs, ws, ns), bilstm_encoders_reference(xs, ws, ns), TOLERANCES[0][1])


SATURATING_SCALE = 100.0


def test_saturated_gates_stay_finite():
    """Inputs × 100: gate pre-activations in the hundreds, σ and tanh at 0/±1 without overflow.
    The pre-activations' rounding error grows with them (same relative error, 100× the values),
    and a gate near its zero crossing passes it on with σ' ≤ 1/4, tanh' ≤ 1: the fp32 tolerance
    of unit-scale inputs × 100 (3.8e-4). A broken saturation (exp overflow: NaN, or a gate at
    the wrong end) errs by O(1)."""
    xs, ns = make_case(3, scale=SATURATING_SCALE)
    ws = weights_of(lstms())
    got = bilstm_encoders(xs, ws, ns)
    assert all(torch.isfinite(g).all() for g in got)
    assert_close(got, bilstm_encoders_reference(xs, ws, ns), TOLERANCES[0][1] * SATURATING_SCALE)


def test_non_contiguous_inputs_and_int32_lengths():
    xs, ns = make_case(3)
    ws = weights_of(lstms())
    strided_xs = [x.transpose(1, 2).contiguous().transpose(1, 2) for x in xs]  # feature-major storage
    strided_ws = [[w.T.contiguous().T if w.dim() == 2 else torch.stack([w, w], -1)[..., 0] for w in w8] for w8 in ws]
    strided_ns = [torch.stack([n, n], -1)[:, 1].int() for n in ns]  # stride 2, int32
    assert not strided_xs[0].is_contiguous() and not strided_ws[0][1].is_contiguous()
    assert_close(bilstm_encoders(strided_xs, strided_ws, strided_ns), bilstm_encoders_reference(xs, ws, ns),
                 TOLERANCES[0][1])


@pytest.mark.slow  # L = 50 (the presets' length) in 3 dtypes: ~10 s under the interpreter on 2 cores
@pytest.mark.parametrize("dtype, atol", TOLERANCES, ids=DTYPE_IDS)
def test_preset_length(dtype, atol):
    xs, ns = make_case(3, seq_lens=(50, 50, 50))
    xs, ws = [x.to(dtype) for x in xs], weights_of(lstms(), dtype)
    expected = bilstm_encoders_reference([x.float() for x in xs], [[w.float() for w in w8] for w8 in ws], ns)
    assert_close(bilstm_encoders(xs, ws, ns), expected, atol)


def _leaves(xs, ws):
    return [x.clone().requires_grad_() for x in xs], [[w.clone().requires_grad_() for w in w8] for w8 in ws]


def test_gradients_are_the_reference_gradients():
    xs, ns = make_case(3)
    ws = weights_of(lstms())
    grads_out = [torch.randn(3, L, 64).to(DEVICE) for L in SHORT]
    results = []
    for fn in (bilstm_encoders, bilstm_encoders_reference):
        leaf_xs, leaf_ws = _leaves(xs, ws)
        leaves = [*leaf_xs, *(w for w8 in leaf_ws for w in w8)]
        results.append(torch.autograd.grad(fn(leaf_xs, leaf_ws, ns), leaves, grads_out))
    for i, (got, expected) in enumerate(zip(*results)):
        torch.testing.assert_close(got, expected, rtol=0, atol=0, msg=lambda m: f"input {i}: {m}")


def test_gradient_of_one_input_only():
    xs, ns = make_case(3)
    ws = weights_of(lstms())
    audio = xs[1].clone().requires_grad_()
    (got,) = torch.autograd.grad(bilstm_encoders([xs[0], audio, xs[2]], ws, ns)[1].sum(), audio)
    (expected,) = torch.autograd.grad(bilstm_encoders_reference([xs[0], audio, xs[2]], ws, ns)[1].sum(), audio)
    assert torch.equal(got, expected)


def _op_calls(graph: torch.fx.Graph) -> list:
    return [n.target for n in graph.nodes if n.op == "call_function"]


def test_torch_compile_captures_one_op():
    xs, ns = make_case(3)
    ws = weights_of(lstms())
    graphs = []

    def record(gm, example_inputs):
        graphs.append(gm.graph)
        return gm.forward

    got = torch.compile(bilstm_encoders, backend=record, fullgraph=True)(xs, ws, ns)
    ops = [t for t in _op_calls(graphs[0]) if t is torch.ops.mimic_edge.bilstm_encoders.default]
    assert len(ops) == 1
    assert_close(got, bilstm_encoders_reference(xs, ws, ns), TOLERANCES[0][1])


class _Encoders(nn.Module):
    """The three nn.LSTMs behind the kernel, as in MIMIC."""

    def __init__(self, modules):
        super().__init__()
        self.lstms = nn.ModuleList(modules)

    def forward(self, text, audio, vision, n_text, n_audio, n_vision):
        weights = [[w for d in lstm.all_weights for w in d] for lstm in self.lstms]
        return bilstm_encoders([text, audio, vision], weights, [n_text, n_audio, n_vision])


def test_torch_export_keeps_one_op_for_any_batch_and_length():
    xs, ns = make_case(3)
    batch = torch.export.Dim("batch")
    seq = [torch.export.Dim(f"seq{m}") for m in range(3)]
    dynamic = tuple({0: batch, 1: s} for s in seq) + ({0: batch},) * 3
    module = _Encoders(lstms()).to(DEVICE)
    program = torch.export.export(module, (*xs, *ns), dynamic_shapes=dynamic)
    assert _op_calls(program.graph).count(torch.ops.mimic_edge.bilstm_encoders.default) == 1
    other_xs, other_ns = make_case(17, seq_lens=(4, 8, 6), seed=1)  # other batch and lengths than traced
    with torch.no_grad():
        got = program.module()(*other_xs, *other_ns)
    assert_close(list(got), bilstm_encoders_reference(other_xs, weights_of(lstms()), other_ns), TOLERANCES[0][1])


def _bad(case):
    xs, ns = make_case(4)
    ws = weights_of(lstms())
    return case(xs, ws, ns)


@pytest.mark.parametrize("case, kind, message", [
    (lambda xs, ws, ns: (xs[:2], ws, ns), KernelInputError, "xs: expected 3 (one per modality), found 2"),
    (lambda xs, ws, ns: (xs, ws[:2], ns), KernelInputError, "weights: expected 3 (one per modality), found 2"),
    (lambda xs, ws, ns: (xs, ws, ns[:1]), KernelInputError, "lengths: expected 3 (one per modality), found 1"),
    (lambda xs, ws, ns: (xs, [ws[0][:4], *ws[1:]], ns), KernelInputError, "weights[0]: expected nn.LSTM's 8 tensors"),
    (lambda xs, ws, ns: ([xs[0], xs[1][:3], xs[2]], ws, ns), KernelInputError,
     "xs[1]: expected shape (4, L, d) with L >= 1, found (3, 5, 74)"),
    (lambda xs, ws, ns: ([xs[0], xs[1], xs[2][:, :0]], ws, ns), KernelInputError,
     "xs[2]: expected shape (4, L, d) with L >= 1, found (4, 0, 47)"),
    (lambda xs, ws, ns: ([xs[0], xs[1][..., :70], xs[2]], ws, ns), KernelInputError,
     "weights[1].w_ih: expected shape (128, 70), found (128, 74)"),
    (lambda xs, ws, ns: (xs, [ws[0], ws[1], [*ws[2][:7], ws[2][7][:64]]], ns), KernelInputError,
     "weights[2].b_hh_reverse: expected shape (128,), found (64,)"),
    (lambda xs, ws, ns: (xs, ws, [ns[0][:2], *ns[1:]]), KernelInputError, "lengths[0]: expected shape (4,), found (2,)"),
    (lambda xs, ws, ns: ([x[:0] for x in xs], ws, [n[:0] for n in ns]), KernelInputError, "empty batch"),
    (lambda xs, ws, ns: (xs, weights_of(lstms(24)), ns), KernelInputError,
     "hidden size (weights[0].w_hh.shape[1]) must be one of (16, 32), found 24"),
    (lambda xs, ws, ns: ([xs[0].half(), *xs[1:]], ws, ns), KernelTypeError, "found float16, float32"),
    (lambda xs, ws, ns: ([x.double() for x in xs], [[w.double() for w in w8] for w8 in ws], ns), KernelTypeError,
     "expected one dtype, float32, float16 or bfloat16"),
    (lambda xs, ws, ns: (xs, ws, [ns[0].float(), *ns[1:]]), KernelTypeError, "lengths: expected int32 or int64, found lengths[0] float32"),
    (lambda xs, ws, ns: ([xs[0].tolist(), *xs[1:]], ws, ns), KernelTypeError, "xs[0]: expected a torch.Tensor, found list"),
    (lambda xs, ws, ns: (xs, ws, [ns[0].to("meta"), *ns[1:]]), KernelTypeError, "expected all tensors on one device"),
    (lambda xs, ws, ns: ([x.to("meta") for x in xs], [[w.to("meta") for w in w8] for w8 in ws], None), KernelTypeError,
     "expected CUDA tensors (or CPU ones under Triton's interpreter), found meta"),
])
def test_bad_inputs_get_one_clear_error(case, kind, message):
    with pytest.raises(kind) as error:
        bilstm_encoders(*_bad(case))
    assert message in str(error.value)
    assert isinstance(error.value, TypeError) == (kind is KernelTypeError)


@pytest.mark.slow  # a fresh process importing torch and triton: ~3 s
def test_cpu_tensors_without_the_interpreter_get_one_clear_error():
    """A fresh process with the interpreter off: the kernel module is compiled for GPUs."""
    script = (
        "import torch\n"
        "from mimic_edge.kernels import KernelTypeError, bilstm_encoders\n"
        "lstm = torch.nn.LSTM(4, 32, batch_first=True, bidirectional=True)\n"
        "w = [p.detach() for d in lstm.all_weights for p in d]\n"
        "try:\n"
        "    bilstm_encoders([torch.zeros(2, 3, 4)] * 3, [w] * 3)\n"
        "except KernelTypeError as error:\n"
        "    print(error)\n"
    )
    env = {**os.environ, "TRITON_INTERPRET": "0"}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "CPU tensors need Triton's interpreter, which is off" in result.stdout


def test_packed_weights_give_the_same_outputs_and_round_trip():
    """`pack_weights` is the layout the op reads; passing it (packed once) changes no output bit,
    and unpacking gives nn.LSTM's tensors back."""
    torch.manual_seed(0)
    lstms = [nn.LSTM(d, 32, batch_first=True, bidirectional=True).to(DEVICE) for d in DIMS]
    weights = [[w for direction in lstm.all_weights for w in direction] for lstm in lstms]
    xs = [torch.randn(3, n, d, device=DEVICE) for n, d in zip(SHORT, DIMS)]
    packed = kernel.pack_weights(weights)
    assert [tuple(p.shape) for p in packed] == [(256, d) for d in DIMS] + [(3, 2, 128, 32), (3, 2, 2, 128)]
    assert all(torch.equal(a, b) for ws, us in zip(weights, kernel._unpack(packed)) for a, b in zip(ws, us))
    with torch.no_grad():
        plain = bilstm_encoders(xs, weights)
        reused = bilstm_encoders(xs, weights, packed=packed)
    assert all(torch.equal(a, b) for a, b in zip(plain, reused))
