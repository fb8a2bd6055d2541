"""One Triton launch for the recurrences of MIMIC's three BiLSTM encoders (paper Eq. 1).

For modality m (text, audio, vision: any three inputs) and direction d, with W_ih, W_hh,
b_ih, b_hh nn.LSTM's weights of that direction and gates in PyTorch's order (i, f, g, o):

    P_m = x_m · [W_ih,fwd ; W_ih,bwd]ᵀ                  one GEMM per modality, (B, L_m, 8H)
    z_s = P_m[t_s, d] + b_ih + b_hh + W_hh h_{s-1}      (i, f, g, o),  h_{-1} = c_{-1} = 0
    c_s = σ(z_f) ⊙ c_{s-1} + σ(z_i) ⊙ tanh(z_g),   h_s = σ(z_o) ⊙ tanh(c_s),   out[t_s, d] = h_s

Step s of the forward direction is time t_s = s; of the backward direction t_s = (n − 1 − s) mod
L_m, with n the sample's own length: it starts at the sample's last valid step, and after
step 0 continues into the padding from L_m − 1 down to n. That is what the model's path
(`mimic_edge.models.common.bilstm`, restated in kernels/lstm_reference.py) computes, padded
positions included, so the model's output does not change (padding changes nothing either).

The input projections are the bulk of the FLOPs and have no serial dependence: cuBLAS does
them before the launch, one GEMM per modality. The launch runs one program per (block of
BLOCK_B samples, modality, direction): 6 programs at B ≤ BLOCK_B, all six recurrences side by
side. A program loads its W_hh (4H × H) once, carries h and c in registers over the L_m
steps, and per step does four (BLOCK_B × H) · (H × H) dots on the fp32 accumulator
(P + biases), the gate math, and one store of h. The next step's P rows are loaded before the
current step's math (they do not depend on h), so their latency hides behind it.

Cost per sample (H = 32, L = 50 per modality, counting rule of kernels/fused_head.py: a
multiply-accumulate is 2 FLOPs, σ and tanh 4, loads/stores/indexing not counted):

    input GEMMs (cuBLAS)   2 · 50 · 256 · Σ d_m = 25,600 · (300 + 74 + 47) = 10,777,600   (mosi)
    recurrence (kernel)    per step and direction: W_hh h 2 · 32 · 128 = 8,192, biases 256,
                           3 σ + 2 tanh 5 · 4 · 32 = 640, c and h 4 · 32 = 128   → 9,216
                           × 50 steps × 2 directions × 3 modalities = 2,764,800
    total                  13,542,400 FLOPs (13,235,200 by mimic_edge.bench's matmul-only rule)

Bytes per sample, kernel: P read 3 · 50 · 256 = 38,400 elements, out written 3 · 50 · 64 =
9,600: 48,000 elements = 192,000 B in fp32, 96,000 B in fp16/bf16; the weights (3 · 2 ·
(128 · 32 + 256) = 26,112 elements, 104,448 B fp32) once per program. The GEMMs read x
(21,050 elements) and W_ih (3 · 256 · Σ d_m / B per sample) and write P.

The serial chain is L_m steps per program whatever B: the kernel's latency floor is
max_m L_m × (one step's dependent latency: the four dots, σ/tanh, the h layout change that
feeds the next dot), independent of B until the programs fill the GPU (docs/kernels.md).

Precision: fp32 accumulation and fp32 h, c always. fp32 dots follow PyTorch's matmul setting
like the fused head ("highest": 3×TF32, "high"/"medium": TF32); fp16/bf16 inputs: P loaded and
widened (it is the GEMM's output, in the input dtype), dot operands (h rounded, W_hh) in the
input dtype, outputs stored in it. NaN inputs: unspecified results.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

import torch
import triton
import triton.language as tl
from torch import Tensor
from torch.library import triton_op, wrap_triton
from triton.runtime.interpreter import InterpretedFunction

from mimic_edge.kernels._common import _operand, check_device, dot_precision, shape_text
from mimic_edge.kernels.errors import KernelInputError, KernelTypeError
from mimic_edge.kernels.lstm_reference import bilstm_encoders_reference

# per direction; MIMIC's is 32. 16 compiles too (sm_90: fp32 128 registers, fp16 80 and 8 B of
# spills); 64 would hold 4 × 64 × 64 weights per program
HIDDEN_SIZES = (16, 32)
# On a GPU: 16 samples per program (one m16 tile of the mma) and 4 warps, which split the H
# output columns of each dot, so that a warp holds a quarter of W_hh. Compiled for sm_87 and
# sm_90 (triton.compile + ptxas, no GPU needed: benchmarks/kernels/lstm_encoder_registers.py, report in
# benchmarks/results/lstm_encoder-ptxas-*.md): 128 registers fp32 (3×TF32), 80-96 TF32/fp16/
# bf16, no spills, 11-36 KB shared memory. Larger blocks were worse: with 32 or 64 rows Triton
# lays out these chained dots (h feeds the next step's dots) with every warp on its own rows
# and all of W_hh: 255 registers and fp32 spills at every warp count (8-1,408 B at 32 rows,
# 120-4,040 B at 64); at 16 rows 2 warps spill 16 B (sm_90), 1 warp 584-696 B.
GPU_BLOCK_B, GPU_WARPS = 16, 4
# Under the interpreter a program costs per numpy call, so blocks are as large as the tests'
# batches: B = 17, lengths (7, 5, 9), 2-core x86_64: BLOCK_B 16 / 64: 0.73 / 0.54 s (2 / 1 blocks).
INTERPRETER_BLOCK_B = 64
MODALITIES = 3
_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
_INDEX_DTYPES = (torch.int32, torch.int64)


@triton.jit
def _sigmoid(x):
    """σ(x) = 1 / (1 + e^−x) for x ≥ 0, e^x / (1 + e^x) otherwise: e^−|x| never overflows."""
    z = tl.exp(-tl.abs(x))
    return tl.where(x >= 0, 1.0, z) / (1.0 + z)


@triton.jit
def _tanh(x):
    """tanh(x) = sign(x) (1 − e^−2|x|) / (1 + e^−2|x|): no overflow, absolute error ~ fp32's u."""
    z = tl.exp(-2.0 * tl.abs(x))
    y = (1.0 - z) / (1.0 + z)
    return tl.where(x < 0, -y, y)


@triton.jit
def _lengths(N, stride_n, rows, row_mask, seq_len, HAS_N: tl.constexpr):
    """(BLOCK_B,) int32 valid lengths of these samples; seq_len for all without lengths."""
    if HAS_N:
        n = tl.load(N + rows * stride_n, mask=row_mask, other=1).to(tl.int32)
    else:
        n = tl.full(rows.shape, 0, tl.int32) + seq_len
    return n


@triton.jit
def _gates(P, p_rows, stride_pt, t, H: tl.constexpr, mask):
    """The four gate blocks (i, f, g, o) of P's rows at per-sample times t, widened to fp32,
    (BLOCK_B, H) each; p_rows: (BLOCK_B,) row offsets, t: (BLOCK_B,) times."""
    q = P + (p_rows + t * stride_pt)[:, None] + tl.arange(0, H)[None, :]
    return (tl.load(q, mask=mask, other=0.0).to(tl.float32),
            tl.load(q + H, mask=mask, other=0.0).to(tl.float32),
            tl.load(q + 2 * H, mask=mask, other=0.0).to(tl.float32),
            tl.load(q + 3 * H, mask=mask, other=0.0).to(tl.float32))


# Per-modality values are chosen under a runtime `if` and must have one type in every branch:
# Triton would turn an argument equal to 1 (L_m = 1, say) into a constant of another type.
@triton.jit(do_not_specialize=[f"{name}{m}{suffix}" for m in range(3) for name, suffix in (
    ("stride_p", "b"), ("stride_p", "t"), ("stride_o", "b"), ("stride_o", "t"), ("seq_len", ""))])
def _bilstm_kernel(
    P0, stride_p0b, stride_p0t,  # (B, L_0, 8H) x_0 · W_ihᵀ, forward gates then backward, last dim unit stride
    P1, stride_p1b, stride_p1t,  # (B, L_1, 8H)
    P2, stride_p2b, stride_p2t,  # (B, L_2, 8H)
    N0, stride_n0, N1, stride_n1, N2, stride_n2,  # (B,) valid lengths per modality (None: all full)
    W, stride_wm, stride_wd, stride_wn, stride_wk,  # (3, 2, 4H, H) W_hh per modality and direction
    Bias, stride_bm, stride_bd, stride_bs, stride_bn,  # (3, 2, 2, 4H) b_ih, b_hh per modality and direction
    O0, stride_o0b, stride_o0t,  # (B, L_0, 2H) outputs [forward, backward], last dim unit stride
    O1, stride_o1b, stride_o1t,  # (B, L_1, 2H)
    O2, stride_o2b, stride_o2t,  # (B, L_2, 2H)
    seq_len0, seq_len1, seq_len2, batch,
    HAS_N0: tl.constexpr, HAS_N1: tl.constexpr, HAS_N2: tl.constexpr,
    BLOCK_B: tl.constexpr, H: tl.constexpr, UPCAST: tl.constexpr, PRECISION: tl.constexpr,
):
    OPERAND: tl.constexpr = W.dtype.element_ty  # dot operands in the input dtype
    mod = tl.program_id(1)
    direction = tl.program_id(2)  # 0: forward, 1: backward
    rows = tl.program_id(0) * BLOCK_B + tl.arange(0, BLOCK_B)  # (BLOCK_B,)
    row_mask = rows < batch
    # this program's modality: its tensors, strides and lengths (one loop body for all three).
    # Row offsets in int64: B · L · 8H elements pass 2^31 from B ≈ 168,000 at L = 50
    if mod == 0:
        P, O, stride_pt, stride_ot, seq_len = P0, O0, stride_p0t, stride_o0t, seq_len0
        p_rows, o_rows = rows.to(tl.int64) * stride_p0b, rows.to(tl.int64) * stride_o0b  # (BLOCK_B,)
        n = _lengths(N0, stride_n0, rows, row_mask, seq_len0, HAS_N0)
    elif mod == 1:
        P, O, stride_pt, stride_ot, seq_len = P1, O1, stride_p1t, stride_o1t, seq_len1
        p_rows, o_rows = rows.to(tl.int64) * stride_p1b, rows.to(tl.int64) * stride_o1b
        n = _lengths(N1, stride_n1, rows, row_mask, seq_len1, HAS_N1)
    else:
        P, O, stride_pt, stride_ot, seq_len = P2, O2, stride_p2t, stride_o2t, seq_len2
        p_rows, o_rows = rows.to(tl.int64) * stride_p2b, rows.to(tl.int64) * stride_o2b
        n = _lengths(N2, stride_n2, rows, row_mask, seq_len2, HAS_N2)
    cols = tl.arange(0, H)
    k = tl.arange(0, H)
    P = P + direction * 4 * H  # gate i of this direction
    O = O + direction * H
    mask = row_mask[:, None]
    # W_hh loaded once: the (H, H) tile W_hh[gate rows, :]ᵀ per gate, in the dot's operand dtype
    w = W + mod * stride_wm + direction * stride_wd + cols[None, :] * stride_wn + k[:, None] * stride_wk
    w_i = _operand(tl.load(w), OPERAND, UPCAST)
    w_f = _operand(tl.load(w + H * stride_wn), OPERAND, UPCAST)
    w_g = _operand(tl.load(w + 2 * H * stride_wn), OPERAND, UPCAST)
    w_o = _operand(tl.load(w + 3 * H * stride_wn), OPERAND, UPCAST)
    b = Bias + mod * stride_bm + direction * stride_bd + cols * stride_bn  # (H,) b_ih of gate i
    b_i = (tl.load(b).to(tl.float32) + tl.load(b + stride_bs).to(tl.float32))[None, :]  # b_ih + b_hh
    b_f = (tl.load(b + H * stride_bn).to(tl.float32) + tl.load(b + stride_bs + H * stride_bn).to(tl.float32))[None, :]
    b_g = (tl.load(b + 2 * H * stride_bn).to(tl.float32)
           + tl.load(b + stride_bs + 2 * H * stride_bn).to(tl.float32))[None, :]
    b_o = (tl.load(b + 3 * H * stride_bn).to(tl.float32)
           + tl.load(b + stride_bs + 3 * H * stride_bn).to(tl.float32))[None, :]
    # per-sample time of step 0: forward 0, backward (n − 1) mod L (C's % may be negative)
    reverse = direction == 1
    last = (n - 1) % seq_len
    last = tl.where(last < 0, last + seq_len, last)
    t = tl.where(reverse, last, 0)  # (BLOCK_B,) int32
    p_i, p_f, p_g, p_o = _gates(P, p_rows, stride_pt, t, H, mask)
    h = tl.zeros((BLOCK_B, H), dtype=tl.float32)
    c = tl.zeros((BLOCK_B, H), dtype=tl.float32)
    for _ in range(0, seq_len):
        # the next step's time and P rows first: independent of h, loaded while this step computes
        # (after the last step this wraps to a valid time: one harmless extra load, no branch)
        t_next = tl.where(reverse, tl.where(t == 0, seq_len - 1, t - 1), tl.where(t == seq_len - 1, 0, t + 1))
        n_i, n_f, n_g, n_o = _gates(P, p_rows, stride_pt, t_next, H, mask)
        hk = _operand(h, OPERAND, UPCAST)  # (BLOCK_B, H)
        z_i = tl.dot(hk, w_i, p_i + b_i, input_precision=PRECISION)  # (BLOCK_B, H) fp32
        z_f = tl.dot(hk, w_f, p_f + b_f, input_precision=PRECISION)
        z_g = tl.dot(hk, w_g, p_g + b_g, input_precision=PRECISION)
        z_o = tl.dot(hk, w_o, p_o + b_o, input_precision=PRECISION)
        c = _sigmoid(z_f) * c + _sigmoid(z_i) * _tanh(z_g)
        h = _sigmoid(z_o) * _tanh(c)
        o = O + (o_rows + t * stride_ot)[:, None] + cols[None, :]  # (BLOCK_B, H)
        tl.store(o, h.to(O0.dtype.element_ty), mask=mask)
        t = t_next
        p_i, p_f, p_g, p_o = n_i, n_f, n_g, n_o


_INTERPRETED = isinstance(_bilstm_kernel, InterpretedFunction)  # TRITON_INTERPRET=1 at import


def _block_b() -> int:
    """Samples per program: GPU_BLOCK_B on a GPU for every batch size (the serial chain is the
    same for any block, so more programs finish no later while the GPU has room: B = 1,024 is
    384 programs, one wave on an H100), INTERPRETER_BLOCK_B under the interpreter."""
    return INTERPRETER_BLOCK_B if _INTERPRETED else GPU_BLOCK_B


def pack_weights(weights: Sequence[Sequence[Tensor]]) -> list[Tensor]:
    """The kernel's layout of the 3 × 8 nn.LSTM tensors: per modality [W_ih ; W_ih,reverse] (8H, d_m),
    one GEMM for both directions, then W_hh of every modality and direction (3, 2, 4H, H) and the
    biases (3, 2, 2, 4H). `bilstm_encoders` packs on every call (5 copies, each a launch on a GPU);
    a caller whose weights do not change packs once and passes `packed=` (the model does when it
    runs without gradients: mimic_edge.models.mimic). Differentiable."""
    w_ih = [torch.cat([w[0], w[4]]) for w in weights]
    w_hh = torch.stack([w[j] for w in weights for j in (1, 5)]).unflatten(0, (MODALITIES, 2))
    bias = torch.stack([w[j] for w in weights for j in (2, 3, 6, 7)]).unflatten(0, (MODALITIES, 2, 2))
    return [*w_ih, w_hh, bias]


def _unpack(packed: Sequence[Tensor]) -> list[list[Tensor]]:
    """`pack_weights` undone, as views: gradients of the 3 × 8 tensors flow back to the packed ones."""
    *w_ih, w_hh, bias = packed
    four_h = w_hh.shape[2]
    return [[w_ih[m][:four_h], w_hh[m, 0], bias[m, 0, 0], bias[m, 0, 1],
             w_ih[m][four_h:], w_hh[m, 1], bias[m, 1, 0], bias[m, 1, 1]] for m in range(MODALITIES)]


@triton_op("mimic_edge::bilstm_encoders", mutates_args=())
def _bilstm_op(x0: Tensor, x1: Tensor, x2: Tensor, packed: list[Tensor], n0: Optional[Tensor],
               n1: Optional[Tensor], n2: Optional[Tensor]) -> list[Tensor]:
    """The input GEMMs and one launch of the recurrence kernel on checked inputs (see
    `bilstm_encoders`); packed: `pack_weights` of the 3 × 8 nn.LSTM tensors.

    The launch shape is chosen here, at run time: a traced graph keeps this op opaque and so
    stays valid for every batch size and sequence length."""
    xs, lengths = (x0, x1, x2), (n0, n1, n2)
    *w_ih, w_hh, bias = packed  # (8H, d_m) × 3, (3, 2, 4H, H), (3, 2, 2, 4H)
    batch, hidden = x0.shape[0], w_hh.shape[-1]
    block_b = _block_b()
    projections = [torch.matmul(x, w.T) for x, w in zip(xs, w_ih)]  # (B, L_m, 8H): cuBLAS on a GPU
    outs = [x.new_empty((batch, x.shape[1], 2 * hidden)) for x in xs]  # (B, L_m, 2H) each
    length_args = [arg for n in lengths for arg in ((n, n.stride(0)) if n is not None else (None, 0))]
    wrap_triton(_bilstm_kernel)[(triton.cdiv(batch, block_b), MODALITIES, 2)](
        *(arg for p in projections for arg in (p, p.stride(0), p.stride(1))),
        *length_args, w_hh, *w_hh.stride(), bias, *bias.stride(),
        *(arg for out in outs for arg in (out, out.stride(0), out.stride(1))),
        *(x.shape[1] for x in xs), batch,
        HAS_N0=n0 is not None, HAS_N1=n1 is not None, HAS_N2=n2 is not None,
        BLOCK_B=block_b, H=hidden,
        # the interpreter's bf16 dot is wrong (fused head: errors ~1e10): round, then fp32 dot
        UPCAST=_INTERPRETED and x0.dtype == torch.bfloat16, PRECISION=dot_precision(x0.dtype),
        num_warps=GPU_WARPS, num_stages=1,  # the interpreter ignores warps and stages
    )
    return outs


@_bilstm_op.register_fake
def _bilstm_fake(x0: Tensor, x1: Tensor, x2: Tensor, packed: list[Tensor], n0: Optional[Tensor],
                 n1: Optional[Tensor], n2: Optional[Tensor]) -> list[Tensor]:
    """Shapes for tracing (torch.compile, torch.export), as kernels/fused_head.py explains."""
    hidden = packed[MODALITIES].shape[-1]  # W_hh's H
    return [x.new_empty((x.shape[0], x.shape[1], 2 * hidden)) for x in (x0, x1, x2)]


PACKED = MODALITIES + 2  # tensors of pack_weights


def _setup_context(ctx, inputs, output) -> None:
    x0, x1, x2, packed, n0, n1, n2 = inputs
    tensors = [x0, x1, x2, *packed]
    ctx.wants = [x.requires_grad for x in tensors]
    ctx.save_for_backward(*tensors, *(n for n in (n0, n1, n2) if n is not None))
    ctx.has_lengths = [n is not None for n in (n0, n1, n2)]


def _backward(ctx, grads: list[Tensor]):
    """Gradients of the PyTorch reference (the model's LSTM path), recomputed from the saved
    inputs: what training through the model's path gives (training is not the kernel's job)."""
    saved = list(ctx.saved_tensors)
    tensors = [x.detach().requires_grad_(want) for x, want in zip(saved[:3 + PACKED], ctx.wants)]
    stored = iter(saved[3 + PACKED:])
    lengths = [next(stored) if has else None for has in ctx.has_lengths]
    wanted = [x for x in tensors if x.requires_grad]
    xs, packed = tensors[:3], tensors[3:]
    with torch.enable_grad():
        outs = bilstm_encoders_reference(xs, _unpack(packed), lengths)
        # outputs that depend on no wanted input (another modality's) have no graph: left out
        pairs = [(out, g) for out, g in zip(outs, grads) if g is not None and out.requires_grad]
        found = iter(torch.autograd.grad([o for o, _ in pairs], wanted, [g for _, g in pairs], allow_unused=True)
                     if pairs else [None] * len(wanted))
    result = [next(found) if x.requires_grad else None for x in tensors]
    return (*result[:3], result[3:], None, None, None)


_bilstm_op.register_autograd(_backward, setup_context=_setup_context)


_WEIGHT_NAMES = ("w_ih", "w_hh", "b_ih", "b_hh", "w_ih_reverse", "w_hh_reverse", "b_ih_reverse", "b_hh_reverse")


def _check(xs, weights, lengths) -> None:
    """Raise one clear error for the first problem found: count, type, shape, dtype, device.
    KernelInputError for a bad count, shape, hidden size or empty batch; KernelTypeError (also
    a KernelInputError) for a non-tensor, a bad dtype or device."""
    for name, items, count in (("xs", xs, MODALITIES), ("weights", weights, MODALITIES), ("lengths", lengths, MODALITIES)):
        if not isinstance(items, Sequence) or len(items) != count:
            raise KernelInputError(f"bilstm_encoders: {name}: expected {count} (one per modality), found "
                                   f"{len(items) if isinstance(items, Sequence) else type(items).__name__}")
    tensors = {}
    for m in range(MODALITIES):
        if not isinstance(weights[m], Sequence) or len(weights[m]) != 8:
            raise KernelInputError(f"bilstm_encoders: weights[{m}]: expected nn.LSTM's 8 tensors {_WEIGHT_NAMES}")
        tensors[f"xs[{m}]"] = xs[m]
        tensors.update({f"weights[{m}].{name}": w for name, w in zip(_WEIGHT_NAMES, weights[m])})
    for name, x in [*tensors.items(), *((f"lengths[{m}]", n) for m, n in enumerate(lengths) if n is not None)]:
        if not isinstance(x, Tensor):
            raise KernelTypeError(f"bilstm_encoders: {name}: expected a torch.Tensor, found {type(x).__name__}")
    x0, w_hh = xs[0], weights[0][1]
    batch = x0.shape[0] if x0.dim() == 3 else "B"
    hidden = w_hh.shape[1] if w_hh.dim() == 2 else "H"
    if hidden not in HIDDEN_SIZES:
        raise KernelInputError(f"bilstm_encoders: hidden size (weights[0].w_hh.shape[1]) must be one of "
                               f"{HIDDEN_SIZES}, found {hidden}")
    for m in range(MODALITIES):
        x = xs[m]
        if x.dim() != 3 or x.shape[0] != batch or x.shape[1] == 0:
            raise KernelInputError(f"bilstm_encoders: xs[{m}]: expected shape ({batch}, L, d) with L >= 1, "
                                   f"found {shape_text(x.shape)}")
        d = x.shape[2]
        expected = {"w_ih": (4 * hidden, d), "w_hh": (4 * hidden, hidden), "b_ih": (4 * hidden,), "b_hh": (4 * hidden,)}
        for name, w in zip(_WEIGHT_NAMES, weights[m]):
            shape = expected[name.removesuffix("_reverse")]
            if tuple(w.shape) != shape:
                raise KernelInputError(f"bilstm_encoders: weights[{m}].{name}: expected shape {shape_text(shape)}, "
                                       f"found {shape_text(w.shape)}")
        n = lengths[m]
        if n is not None and tuple(n.shape) != (batch,):
            raise KernelInputError(f"bilstm_encoders: lengths[{m}]: expected shape ({batch},), found {shape_text(n.shape)}")
    if batch == 0:
        raise KernelInputError("bilstm_encoders: empty batch (B = 0): expected at least one sample")
    dtypes = {str(x.dtype).removeprefix("torch.") for x in tensors.values()}
    if x0.dtype not in _DTYPES or len(dtypes) > 1:
        raise KernelTypeError(f"bilstm_encoders: expected one dtype, float32, float16 or bfloat16, for all inputs "
                              f"and weights; found {', '.join(sorted(dtypes))}")
    bad = [f"lengths[{m}] {str(n.dtype).removeprefix('torch.')}" for m, n in enumerate(lengths)
           if n is not None and n.dtype not in _INDEX_DTYPES]
    if bad:
        raise KernelTypeError(f"bilstm_encoders: lengths: expected int32 or int64, found {', '.join(bad)}")
    devices = {str(x.device) for x in tensors.values()} | {str(n.device) for n in lengths if n is not None}
    check_device("bilstm_encoders", devices, x0.device, _INTERPRETED)


def bilstm_encoders(xs: Sequence[Tensor], weights: Sequence[Sequence[Tensor]],
                    lengths: Sequence[Tensor | None] | None = None, *,
                    packed: Sequence[Tensor] | None = None) -> list[Tensor]:
    """The outputs [(B, L_m, 2H)] of three bidirectional 1-layer LSTMs, one Triton launch for
    all six recurrences; same signature and values as `bilstm_encoders_reference`.

    xs: 3 tensors (B, L_m, d_m), batch-first, L_m and d_m free per modality; weights: per
    modality nn.LSTM's 8 tensors `[w for d in lstm.all_weights for w in d]` (hidden size H in
    HIDDEN_SIZES, the same for all); lengths: per modality (B,) int32/int64 valid lengths or
    None (all full), or None for all. Outputs [forward, backward] per step as the model's path
    computes them, padded steps included (module docstring). float32, float16 or bfloat16 (all
    the same), fp32 accumulation and state, outputs in the input dtype. CUDA tensors, or CPU
    tensors under TRITON_INTERPRET=1. Differentiable: the backward is the reference's. Raises
    KernelInputError (a ValueError) for a bad count, shape, hidden size or empty batch,
    KernelTypeError (a KernelInputError and a TypeError) for a non-tensor, a bad dtype or device.
    packed: `pack_weights(weights)`, made once by a caller whose weights do not change (it must
    be of these weights: it is not checked against them).
    """
    lengths = [None] * MODALITIES if lengths is None else lengths
    _check(xs, weights, lengths)
    return _bilstm_op(*xs, list(packed) if packed is not None else pack_weights(weights), *lengths)
