"""The fused Triton fusion head against the PyTorch reference: on the CPU through Triton's
interpreter (tests/conftest.py sets TRITON_INTERPRET=1 on machines without a GPU, before
anything imports the kernel), on CUDA tensors otherwise."""
import functools
import os
import subprocess
import sys

import pytest
import torch

from mimic_edge.kernels import KernelInputError, KernelTypeError, fusion_head_reference

pytest.importorskip("triton", reason="the fused head needs triton")
from mimic_edge.kernels import fused_head as fused  # noqa: E402  the kernel's module
from mimic_edge.kernels import fusion_head  # noqa: E402  the function

DEVICE = "cpu" if fused._INTERPRETED else "cuda"
pytestmark = pytest.mark.skipif(DEVICE == "cuda" and not torch.cuda.is_available(),
                                reason="TRITON_INTERPRET is off and there is no CUDA GPU")
BLOCK = fused.INTERPRETER_BLOCK_B  # also on a GPU: B = 64, 65 still cross a block boundary
BATCHES = [1, 3, BLOCK, BLOCK + 1, 257]
KINDS = ["signed", "relu", "ties", "large"]
ALGORITHMS = ["factorized", "direct"]
# fp16/bf16: max error / max |reference| against the fp32 reference on the same rounded
# inputs. Unit roundoff u = 4.9e-4 (fp16), 3.9e-3 (bf16); the kernel rounds the pooled values
# and F0 to the input dtype for the dots (as PyTorch's half linear layers do) and rounds F.
# Measured on 6 seeded cases: fp16 ≤ 6.6e-4 (PyTorch in fp16: ≤ 9.2e-4); bf16 ≤ 1.3e-2
# (PyTorch in bf16: ≤ 6.1e-3; the interpreter's bf16 casts truncate, which doubles each
# rounding error; a GPU rounds to nearest). Tolerances ≈ 4u and 6u.
HALF_TOLERANCES = [(torch.float16, 2e-3), (torch.bfloat16, 2.5e-2)]


def make_inputs(batch: int, kind: str, seed: int = 0) -> list[torch.Tensor]:
    """The 9 arguments of fusion_head, weights scaled like nn.Linear's initialisation."""
    g = torch.Generator().manual_seed(seed)

    def randn(*shape, scale=1.0):
        return torch.randn(*shape, generator=g) * scale

    h, i = randn(batch, 3, 16), randn(batch, 3, 16)
    if kind == "relu":  # as after the bottleneck ReLUs (Eqs. 5-6): many exact zeros
        h, i = h.relu(), i.relu()
    elif kind == "ties":  # small integers: equal members in pool pairs, zeros, exact products
        h = torch.randint(-2, 3, (batch, 3, 16), generator=g).float()
        i = torch.randint(-2, 3, (batch, 3, 16), generator=g).float()
    elif kind == "large":
        h, i = h * 100, i * 100
    return [h, i, randn(batch, 64), randn(64, 512, scale=512 ** -0.5), randn(64, scale=0.1),
            randn(64, 512, scale=512 ** -0.5), randn(64, scale=0.1), randn(192, 192, scale=192 ** -0.5),
            randn(192, scale=0.1)]


def on_device(tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    return [x.to(DEVICE) for x in tensors]


@functools.cache
def case(batch: int, kind: str) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Inputs and the reference output, shared by the tests that use the same case."""
    inputs = on_device(make_inputs(batch, kind))
    return inputs, fusion_head_reference(*inputs)


def assert_close_to_scale(got: torch.Tensor, expected: torch.Tensor, tol: float) -> None:
    """max |got − expected| ≤ tol · max |expected|, with where and how much when not."""
    assert got.shape == expected.shape, f"shape {tuple(got.shape)}, expected {tuple(expected.shape)}"
    got, expected = got.float(), expected.float()
    nan_mismatch = int((got.isnan() != expected.isnan()).sum())
    err = (got - expected).abs()
    scale = expected.abs().max()
    worst = divmod(int(err.argmax()), expected.shape[1])
    assert nan_mismatch == 0 and err.max() <= tol * scale, (
        f"max error {err.max():.3e} = {err.max() / scale:.2e} × scale ({scale:.3e}) at {worst}: "
        f"got {got[worst]:.7g}, expected {expected[worst]:.7g}; tolerance {tol:.0e} × scale; "
        f"NaN mismatches {nan_mismatch}")


# "large": the interpreter's σ of logits below −88 computes exp → inf, then σ = 0 as intended
@pytest.mark.filterwarnings("ignore:overflow encountered in exp:RuntimeWarning")
@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_fp32_matches_reference(algorithm, kind, batch):
    inputs, expected = case(batch, kind)
    got = fusion_head(*inputs, algorithm=algorithm)
    assert got.dtype == torch.float32
    assert_close_to_scale(got, expected, 1e-5)


def test_algorithms_agree_bit_for_bit():
    """Rounding is monotone, so the factorized maxima are the direct ones exactly."""
    inputs, _ = case(BLOCK + 1, "signed")
    assert torch.equal(fusion_head(*inputs, algorithm="factorized"), fusion_head(*inputs, algorithm="direct"))


@pytest.mark.parametrize("kind", ["signed", "relu"])
@pytest.mark.parametrize("dtype, tol", HALF_TOLERANCES, ids=["fp16", "bf16"])
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_half_precision_within_tolerance(algorithm, dtype, tol, kind):
    inputs = [x.to(dtype) for x in case(BLOCK + 1, kind)[0]]
    expected = fusion_head_reference(*(x.float() for x in inputs))  # exact maths on the rounded inputs
    got = fusion_head(*inputs, algorithm=algorithm)
    assert got.dtype == dtype
    assert_close_to_scale(got, expected, tol)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_gpu_k_chunks_match_reference(monkeypatch, algorithm):
    """The GPU's 16-column K chunks (large batches), run by the interpreter."""
    if not fused._INTERPRETED:
        pytest.skip("on a GPU every test runs the GPU's K chunks")
    monkeypatch.setattr(fused, "_INTERPRETER_Q", fused._GPU_LAUNCH[64][0])
    inputs, expected = case(BLOCK + 1, "signed")
    assert_close_to_scale(fusion_head(*inputs, algorithm=algorithm), expected, 1e-5)


@pytest.mark.parametrize("block_b", [16, 32])
def test_explicit_block_size(block_b):
    inputs, expected = case(BLOCK + 1, "relu")
    assert_close_to_scale(fusion_head(*inputs, block_b=block_b), expected, 1e-5)


def test_non_contiguous_inputs():
    inputs, expected = case(BLOCK + 1, "signed")
    strided = [
        inputs[0].transpose(1, 2).contiguous().transpose(1, 2),  # (B, 3, 16) with strides (48, 1, 3)
        torch.stack([inputs[1], inputs[1]], dim=-1)[..., 0],  # stride 2 along the features
        torch.stack([inputs[2], inputs[2]], dim=1)[:, 0],  # rows 128 apart
        inputs[3].T.contiguous().T,  # column-major weights
        torch.stack([inputs[4], inputs[4]], dim=1)[:, 1],  # bias with stride 2
        inputs[5].T.contiguous().T, inputs[6],
        inputs[7].T.contiguous().T,
        torch.stack([inputs[8], inputs[8]], dim=1)[:, 0],
    ]
    assert not any(x.is_contiguous() for x in strided[:6] if x.dim() > 1)
    assert_close_to_scale(fusion_head(*strided), expected, 1e-5)


def test_gradients_are_the_reference_gradients():
    inputs, _ = case(5, "signed")
    leaves = [x.clone().requires_grad_() for x in inputs]
    grad_out = torch.randn(5, 192).to(DEVICE)
    got = torch.autograd.grad(fusion_head(*leaves), leaves, grad_out)
    expected = torch.autograd.grad(fusion_head_reference(*leaves), leaves, grad_out)
    for name, g, e in zip(["h", "i", "s", "w_m", "b_m", "w_i", "b_i", "w_g", "b_g"], got, expected):
        torch.testing.assert_close(g, e, rtol=0, atol=0, msg=lambda m: f"d/d{name}: {m}")


def test_gradient_of_one_input_only():
    inputs, _ = case(5, "signed")
    h = inputs[0].clone().requires_grad_()
    (got,) = torch.autograd.grad(fusion_head(h, *inputs[1:]).sum(), h)
    (expected,) = torch.autograd.grad(fusion_head_reference(h, *inputs[1:]).sum(), h)
    assert torch.equal(got, expected)


def _op_calls(graph: torch.fx.Graph) -> list[torch.fx.Node]:
    return [n for n in graph.nodes if n.op == "call_function"]


def test_backward_traces_into_plain_ops():
    """What AOTAutograd does (make_fx over forward and backward): the forward stays one op,
    the backward is the reference's gradient in aten ops, and the traced graph runs."""
    from torch.fx.experimental.proxy_tensor import make_fx

    inputs, _ = case(5, "signed")

    def grads(*args):
        leaves = [x.requires_grad_() for x in args]
        return torch.autograd.grad(fusion_head(*leaves).sum(), leaves)

    traced = make_fx(grads, tracing_mode="fake")(*(x.clone() for x in inputs))
    targets = [n.target for n in _op_calls(traced.graph)]
    assert targets.count(torch.ops.mimic_edge.fusion_head.default) == 1
    assert torch.ops.aten.max_pool3d_with_indices_backward.default in targets
    leaves = [x.clone().requires_grad_() for x in inputs]
    expected = torch.autograd.grad(fusion_head_reference(*leaves).sum(), leaves)
    for got, want in zip(traced(*(x.clone() for x in inputs)), expected):
        torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_torch_compile_captures_one_op():
    inputs, expected = case(3, "signed")
    graphs = []

    def record(gm, example_inputs):
        graphs.append(gm.graph)
        return gm.forward

    got = torch.compile(fusion_head, backend=record, fullgraph=True)(*inputs)
    assert [n.target for n in _op_calls(graphs[0])] == [torch.ops.mimic_edge.fusion_head.default]
    assert_close_to_scale(got, expected, 1e-5)


class _Head(torch.nn.Module):
    """The fused head with its weights as parameters, as in MIMIC."""

    def __init__(self, weights):
        super().__init__()
        self.weights = torch.nn.ParameterList(weights)

    def forward(self, h, i, s):
        return fusion_head(h, i, s, *self.weights)


def test_torch_export_keeps_one_op_for_any_batch():
    inputs, _ = case(3, "signed")
    batch = torch.export.Dim("batch")
    program = torch.export.export(_Head(inputs[3:]), tuple(inputs[:3]), dynamic_shapes=({0: batch},) * 3)
    assert [n.target for n in _op_calls(program.graph)] == [torch.ops.mimic_edge.fusion_head.default]
    other, expected = case(BLOCK + 1, "signed")  # another batch size than traced, same weights
    with torch.no_grad():
        got = program.module()(*other[:3])
    assert_close_to_scale(got, fusion_head_reference(*other[:3], *inputs[3:]), 1e-5)


def _replace(index, value):
    def mutate(inputs):
        inputs = list(inputs)
        inputs[index] = value(inputs[index]) if callable(value) else value
        return inputs
    return mutate


@pytest.mark.parametrize("mutate, kind, message", [
    (_replace(0, lambda x: x[:, :, :8]), KernelInputError, "h: expected shape (4, 3, 16), found (4, 3, 8)"),
    (_replace(0, lambda x: x[:, 0]), KernelInputError, "h: expected shape (B, 3, 16), found (4, 16)"),
    (_replace(1, lambda x: x[:3]), KernelInputError, "i: expected shape (4, 3, 16), found (3, 3, 16)"),
    (_replace(2, lambda x: x[:, :32]), KernelInputError, "s: expected shape (4, 64), found (4, 32)"),
    (_replace(3, lambda x: x.T), KernelInputError, "w_m: expected shape (64, 512), found (512, 64)"),
    (_replace(4, lambda x: torch.zeros(65, device=x.device)), KernelInputError, "b_m: expected shape (64,), found (65,)"),
    (_replace(7, lambda x: x[:, :128]), KernelInputError, "w_g: expected shape (192, 192), found (192, 128)"),
    (lambda inputs: [x[:0] if x.shape[0] == 4 else x for x in inputs], KernelInputError, "empty batch"),
    (_replace(3, lambda x: x.half()), KernelTypeError, "found h float32, i float32, s float32, w_m float16"),
    (lambda inputs: [x.double() for x in inputs], KernelTypeError, "expected one dtype, float32, float16 or bfloat16"),
    (lambda inputs: [x.int() for x in inputs], KernelTypeError, "found h int32"),
    (_replace(0, lambda x: x.tolist()), KernelTypeError, "h: expected a torch.Tensor, found list"),
    (_replace(5, lambda x: x.to("meta")), KernelTypeError, f"expected all tensors on one device, found ['{DEVICE}"),
    (lambda inputs: [x.to("meta") for x in inputs], KernelTypeError,
     "expected CUDA tensors (or CPU ones under Triton's interpreter), found meta"),
])
def test_bad_inputs_get_one_clear_error(mutate, kind, message):
    with pytest.raises(kind) as error:
        fusion_head(*mutate(case(4, "signed")[0]))
    assert message in str(error.value)
    assert isinstance(error.value, ValueError)  # KernelTypeError is a KernelInputError, so a ValueError too
    assert isinstance(error.value, TypeError) == (kind is KernelTypeError)


@pytest.mark.parametrize("options, message", [
    ({"algorithm": "fast"}, "algorithm must be one of ('factorized', 'direct'), got 'fast'"),
    ({"block_b": 24}, "block_b must be one of (16, 32, 64), got 24"),
    ({"block_b": 128}, "block_b must be one of (16, 32, 64), got 128"),
])
def test_bad_options_get_one_clear_error(options, message):
    with pytest.raises(KernelInputError) as error:
        fusion_head(*case(4, "signed")[0], **options)
    assert message in str(error.value)
    assert not isinstance(error.value, KernelTypeError)


def test_cpu_tensors_without_the_interpreter_get_one_clear_error():
    """A fresh process with the interpreter off: the kernel module is compiled for GPUs."""
    script = (
        "import torch\n"
        "from mimic_edge.kernels import KernelTypeError, fusion_head\n"
        "shapes = [(2, 3, 16), (2, 3, 16), (2, 64), (64, 512), (64,), (64, 512), (64,), (192, 192), (192,)]\n"
        "try:\n"
        "    fusion_head(*(torch.zeros(s) for s in shapes))\n"
        "except KernelTypeError as error:\n"
        "    print(error)\n"
    )
    env = {**os.environ, "TRITON_INTERPRET": "0"}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "CPU tensors need Triton's interpreter, which is off" in result.stdout


def test_a_symbolic_batch_picks_one_block_size_without_comparing_it(monkeypatch):
    """During torch.export / AOTInductor the batch is a SymInt: `batch <= 4096` would guard the
    package's batch range to one side of 4096. A traced batch gets one block size, uncompared."""
    class SymbolicBatch:  # stands for a SymInt: any comparison is a guard
        def __le__(self, other):
            raise AssertionError("the symbolic batch was compared")

        __lt__ = __ge__ = __gt__ = __le__

    monkeypatch.setattr(fused, "_INTERPRETED", False)  # the GPU's choice
    assert fused._default_block_b(SymbolicBatch()) == 16
    assert (fused._default_block_b(4096), fused._default_block_b(4097)) == (16, 64)
