"""Fused Triton kernel for MIMIC's fusion head (paper Eqs. 7-11, docs/design.md §5).

    P_x = MaxPool3d(2)(x_t ⊗ x_v ⊗ x_a)            x ∈ {h̃, ĩ}, (16,16,16) → 512
    M = W_m P_h̃ + b_m,   I = W_i P_ĩ + b_i            (64 each)
    F0 = [S, I, M],  G = σ(W_g F0 + b_g),  F = G ⊙ F0  (192)

One program computes F for a block of BLOCK_B samples; nothing of size 16³ leaves registers.
The pooled vector is produced one K chunk at a time — the boxes (p, q, ·) for one p and Q
values of q, Q·8 columns — and fed straight into the matching Q·8 × 64 tile of W_mᵀ or W_iᵀ.
F0 = [S, I, M] is then staged in the program's own rows of the output, so that the gate
reads it in K chunks too, and overwritten by F. The largest live tensors are (BLOCK_B, 64).
Dot products accumulate in fp32 whatever the input dtype.

Two algorithms for the pooled values, chosen by a constexpr:

* direct: forms every product t_i · (v_j · a_k) of the 16³ outer product, chunk by chunk,
  and takes the max over each 2×2×2 box.
* factorized (default): a max over a box of a product of independent factors is reached
  at an extreme of each factor, for any signs. With y = v·a ranging over the (q, r) box,
  y_min/y_max are the min/max of its 4 corner products, and max_t t·y = t·y_max if t ≥ 0
  else t·y_min, so each pooled value is max(t_lo · sel(t_lo), t_hi · sel(t_hi)) with
  t_lo/t_hi the min/max of the t pair: the max over the box's 8 products, in two steps.
  Rounding is monotone, so this equals the direct algorithm bit for bit.

Cost per sample (counting rule: one FLOP per scalar add, multiply, min, max, compare or
select; a multiply-accumulate is 2; σ is 4: negate, exp, add, reciprocal; loads, stores
and index arithmetic are not counted):

    shared by both   FC_m, FC_i 2·(2·512·64 + 64) = 131,200;  gate 2·192·192 + 192 = 73,920;
                     σ 4·192 = 768;  G ⊙ F0 192                             → 206,080
    direct           per factor: v⊗a 256 mul + t·(v⊗a) 4,096 mul + 7 max × 512 boxes
                     = 7,936; × 2 factors = 15,872                         → 221,952 FLOPs
    factorized       per factor: v⊗a corners 256 mul + their min/max 6 × 64 + t pair
                     min, max and 2 sign tests, per pair and K chunk, 4 × 8 × 8/Q
                     + (2 select, 2 mul, 1 max) × 512 boxes = 3,232 at Q = 8;
                     × 2 factors = 6,464                                   → 212,544 FLOPs
                     (212,736 at Q = 2, the GPU's chunks for BLOCK_B 32 and 64)

Bytes per sample, both algorithms, from DRAM: h̃, ĩ (2·48), S (64) read, F (192) written:
352 elements = 1,408 B in fp32, 704 B in fp16/bf16. The weights (2·(64·512 + 64) + 192·192
+ 192 = 102,720 elements: 410,880 B fp32, 205,440 B fp16/bf16) come from DRAM once per launch
and from L2 once per program: 410,880 / BLOCK_B B per sample in fp32. Staging F0 adds on-chip
(L1/L2) traffic of 192 elements written and 4 × 192 read back per sample (3,840 B in fp32);
its lines are rewritten with F before they leave L2. For contrast, the eager reference writes
and reads back both 16³ cubes: about 86 KB per sample in fp32 (each op reading its inputs
and writing its output once).

Precision: fp32 dots follow PyTorch's matmul setting, `torch.get_float32_matmul_precision()`:
"highest" (the default) runs 3×TF32 on tensor cores, about fp32's accuracy (IEEE fp32 FMA
dots spilled kilobytes of registers, ptxas sm_90); "high"/"medium" run TF32, as cuBLAS then
does. fp16/bf16 inputs: dot operands (the pooled values, F0, the weights) in the input dtype,
accumulation in fp32, F0 and F stored in the input dtype. NaN inputs: unspecified results.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor
from torch.library import triton_op, wrap_triton
from triton.runtime.interpreter import InterpretedFunction

from mimic_edge.kernels._common import _operand, check_device, dot_precision, shape_text
from mimic_edge.kernels.errors import KernelInputError, KernelTypeError
from mimic_edge.kernels.reference import fusion_head_reference

ALGORITHMS = ("factorized", "direct")
BLOCK_SIZES = (16, 32, 64)  # samples per program that `block_b` accepts
# On a GPU, BLOCK_B → (Q, num_warps, num_stages). A program runs 200/Q dependent K steps
# (100 at Q = 2, 25 at Q = 8), so small batches, latency-bound, get Q = 8; large ones get
# 16-column chunks, which keep registers low at 64 samples. Each entry compiles for sm_90
# (triton.compile + ptxas -v, no GPU needed) in 192-255 registers with at most 16 B spilled,
# fp32 (TF32 and 3×TF32), fp16, bf16, both algorithms; 64-column chunks at BLOCK_B 64 took 255
# registers and spilled up to 1.5 KB, IEEE fp32 FMA dots up to 87 KB, 3 stages with 16-column
# TF32 chunks 1.2 KB. Which of these is fastest is for benchmarks/kernels/fusion_head.py to say.
_GPU_LAUNCH = {16: (8, 8, 3), 32: (2, 4, 2), 64: (2, 8, 2)}
# Under the interpreter a program costs per numpy call, so blocks and chunks are as large as
# the tests' shapes allow: B = 257, factorized, 2-core x86_64: BLOCK_B 16 / 32 / 64:
# 0.98 / 0.52 / 0.30 s; 64 with 16-column chunks: 0.95 s.
INTERPRETER_BLOCK_B = 64
_INTERPRETER_Q = 8
_PAIRS = tl.constexpr(8)  # 16 features → 8 pool pairs per factor
_D = tl.constexpr(64)  # width of S, I and M; the pooled vector is 8 slabs of 64
_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


@triton.jit
def _pooled_fc(
    X, stride_xb, stride_xm, stride_xk,  # (B, 3, 16) factors in (t, v, a) order
    W, stride_wn, stride_wk,  # (64, 512) FC weight, nn.Linear layout
    Bias, stride_bias,  # (64,)
    rows, row_mask,  # (BLOCK_B,) sample indices of this program and which are < B
    FACTORIZED: tl.constexpr, Q: tl.constexpr,  # Q: q boxes per step, a K chunk of Q·8 pooled columns
    OPERAND: tl.constexpr, UPCAST: tl.constexpr, PRECISION: tl.constexpr,
):
    """W · MaxPool3d(2)(x_t ⊗ x_v ⊗ x_a) + b for a block of samples: (BLOCK_B, 64) fp32.

    Pooled column p·64 + q·8 + r is box (p, q, r). Step (qb, p) forms the columns of boxes
    (p, qb·Q … qb·Q + Q − 1, all r) and feeds them to the matching Q·8 × 64 tile of Wᵀ."""
    block_b: tl.constexpr = rows.shape[0]
    r = tl.arange(0, _PAIRS)
    q = tl.arange(0, Q)
    n = tl.arange(0, _D)
    c = tl.arange(0, Q * _PAIRS)
    x = X + rows[:, None] * stride_xb  # (BLOCK_B, 1)
    mask = row_mask[:, None]
    # first and second member of each a pool pair, (BLOCK_B, 8)
    a0 = tl.load(x + 2 * stride_xm + (2 * r)[None, :] * stride_xk, mask=mask, other=0.0).to(tl.float32)
    a1 = tl.load(x + 2 * stride_xm + (2 * r + 1)[None, :] * stride_xk, mask=mask, other=0.0).to(tl.float32)
    acc = tl.zeros((block_b, _D), dtype=tl.float32)
    for qb in range(0, _PAIRS // Q):
        v_idx = 2 * (q + qb * Q)  # first members of this step's v pairs, (Q,)
        v0 = tl.load(x + stride_xm + v_idx[None, :] * stride_xk, mask=mask, other=0.0).to(tl.float32)  # (BLOCK_B, Q)
        v1 = tl.load(x + stride_xm + (v_idx + 1)[None, :] * stride_xk, mask=mask, other=0.0).to(tl.float32)
        # the v⊗a products of these boxes by parity (j, k) of their members, (BLOCK_B, Q·8)
        va00 = tl.reshape(v0[:, :, None] * a0[:, None, :], (block_b, Q * _PAIRS))
        va01 = tl.reshape(v0[:, :, None] * a1[:, None, :], (block_b, Q * _PAIRS))
        va10 = tl.reshape(v1[:, :, None] * a0[:, None, :], (block_b, Q * _PAIRS))
        va11 = tl.reshape(v1[:, :, None] * a1[:, None, :], (block_b, Q * _PAIRS))
        if FACTORIZED:  # the range of y = v·a over each (q, r) box: its 4 corner products
            y_max = tl.maximum(tl.maximum(va00, va01), tl.maximum(va10, va11))
            y_min = tl.minimum(tl.minimum(va00, va01), tl.minimum(va10, va11))
        for p in range(0, _PAIRS):
            t0 = tl.load(x + (2 * p) * stride_xk, mask=mask, other=0.0).to(tl.float32)  # (BLOCK_B, 1)
            t1 = tl.load(x + (2 * p + 1) * stride_xk, mask=mask, other=0.0).to(tl.float32)
            if FACTORIZED:  # max over t·y: t·y_max for t ≥ 0, t·y_min for t < 0
                t_lo = tl.minimum(t0, t1)
                t_hi = tl.maximum(t0, t1)
                pooled = tl.maximum(t_lo * tl.where(t_lo >= 0, y_max, y_min),
                                    t_hi * tl.where(t_hi >= 0, y_max, y_min))  # (BLOCK_B, Q·8)
            else:  # all 8 products of each 2×2×2 box, then their max
                pooled = tl.maximum(
                    tl.maximum(tl.maximum(t0 * va00, t0 * va01), tl.maximum(t0 * va10, t0 * va11)),
                    tl.maximum(tl.maximum(t1 * va00, t1 * va01), tl.maximum(t1 * va10, t1 * va11)))
            k = c + (p * _D + qb * Q * _PAIRS)  # pooled columns of this step, (Q·8,)
            w = tl.load(W + n[None, :] * stride_wn + k[:, None] * stride_wk)  # (Q·8, 64) tile of Wᵀ
            acc = tl.dot(_operand(pooled, OPERAND, UPCAST), _operand(w, OPERAND, UPCAST), acc,
                         input_precision=PRECISION)
    return acc + tl.load(Bias + n * stride_bias).to(tl.float32)[None, :]


@triton.jit
def _gate_logits(
    out, stride_ok,  # (BLOCK_B, 1) pointers to this program's rows of Out, which hold F0 (B, 192)
    WG, stride_wgn, stride_wgk, BG, stride_bg, col0,  # (192, 192), (192,); first output column
    row_mask, K: tl.constexpr,  # K: columns of F0 per step
    OPERAND: tl.constexpr, UPCAST: tl.constexpr, PRECISION: tl.constexpr,
):
    """Columns col0 … col0 + 63 of W_g F0 + b_g: (BLOCK_B, 64) fp32."""
    n = tl.arange(0, _D)
    c = tl.arange(0, K)
    z = tl.zeros((out.shape[0], _D), dtype=tl.float32)
    for k0 in range(0, 3 * _D, K):
        f0 = tl.load(out + (c + k0)[None, :] * stride_ok, mask=row_mask[:, None], other=0.0)  # (BLOCK_B, K)
        w = tl.load(WG + (n + col0)[None, :] * stride_wgn + (c + k0)[:, None] * stride_wgk)  # (K, 64) tile of W_gᵀ
        z = tl.dot(_operand(f0.to(tl.float32), OPERAND, UPCAST), _operand(w, OPERAND, UPCAST), z,
                   input_precision=PRECISION)
    return z + tl.load(BG + (n + col0) * stride_bg).to(tl.float32)[None, :]


@triton.jit
def _gate_store(out, stride_ok, z, col0, row_mask):
    """Out[:, col0 … col0 + 63] ← σ(z) ⊙ F0[:, col0 … col0 + 63], reading F0 there first."""
    ptr = out + (tl.arange(0, _D) + col0)[None, :] * stride_ok  # (BLOCK_B, 64)
    f0 = tl.load(ptr, mask=row_mask[:, None], other=0.0).to(tl.float32)
    tl.debug_barrier()  # every thread has read these F0 columns (and, the first time, all of F0)
    tl.store(ptr, (tl.sigmoid(z) * f0).to(out.dtype.element_ty), mask=row_mask[:, None])


@triton.jit
def _fusion_head_kernel(
    H, stride_hb, stride_hm, stride_hk,  # (B, 3, 16) h̃ in (t, v, a) order
    I, stride_ib, stride_im, stride_ik,  # (B, 3, 16) ĩ in (t, v, a) order
    S, stride_sb, stride_sk,  # (B, 64) shared representation
    WM, stride_wmn, stride_wmk, BM, stride_bm,  # (64, 512), (64,): FC of M
    WI, stride_win, stride_wik, BI, stride_bi,  # (64, 512), (64,): FC of I
    WG, stride_wgn, stride_wgk, BG, stride_bg,  # (192, 192), (192,): gate
    Out, stride_ob, stride_ok,  # (B, 192) output F
    batch,
    BLOCK_B: tl.constexpr, FACTORIZED: tl.constexpr, Q: tl.constexpr,
    UPCAST: tl.constexpr, PRECISION: tl.constexpr,
):
    OPERAND: tl.constexpr = WM.dtype.element_ty  # dot operands in the input dtype
    rows = tl.program_id(0) * BLOCK_B + tl.arange(0, BLOCK_B)  # (BLOCK_B,)
    row_mask = rows < batch
    n = tl.arange(0, _D)
    out = Out + rows[:, None] * stride_ob  # (BLOCK_B, 1)
    mask = row_mask[:, None]
    m = _pooled_fc(H, stride_hb, stride_hm, stride_hk, WM, stride_wmn, stride_wmk, BM, stride_bm,
                   rows, row_mask, FACTORIZED, Q, OPERAND, UPCAST, PRECISION)  # (BLOCK_B, 64), Eq. 7
    ind = _pooled_fc(I, stride_ib, stride_im, stride_ik, WI, stride_win, stride_wik, BI, stride_bi,
                     rows, row_mask, FACTORIZED, Q, OPERAND, UPCAST, PRECISION)  # (BLOCK_B, 64), Eq. 8
    s = tl.load(S + rows[:, None] * stride_sb + n[None, :] * stride_sk, mask=mask, other=0.0)  # (BLOCK_B, 64)
    # F0 = [S, I, M] (Eq. 9) staged in this program's rows of Out, so that the gate reads it in
    # K-column chunks: 64-column dot operands held whole took 255 registers and spilled (ptxas, sm_90)
    tl.store(out + n[None, :] * stride_ok, s, mask=mask)
    tl.store(out + (n + _D)[None, :] * stride_ok, ind.to(Out.dtype.element_ty), mask=mask)
    tl.store(out + (n + 2 * _D)[None, :] * stride_ok, m.to(Out.dtype.element_ty), mask=mask)
    tl.debug_barrier()  # F0 written by all threads before any reads it
    z_s = _gate_logits(out, stride_ok, WG, stride_wgn, stride_wgk, BG, stride_bg, 0, row_mask,
                       Q * _PAIRS, OPERAND, UPCAST, PRECISION)  # (BLOCK_B, 64), Eq. 10
    z_i = _gate_logits(out, stride_ok, WG, stride_wgn, stride_wgk, BG, stride_bg, _D, row_mask,
                       Q * _PAIRS, OPERAND, UPCAST, PRECISION)
    z_m = _gate_logits(out, stride_ok, WG, stride_wgn, stride_wgk, BG, stride_bg, 2 * _D, row_mask,
                       Q * _PAIRS, OPERAND, UPCAST, PRECISION)
    _gate_store(out, stride_ok, z_s, 0, row_mask)  # F = σ(z) ⊙ F0, Eq. 11
    _gate_store(out, stride_ok, z_i, _D, row_mask)
    _gate_store(out, stride_ok, z_m, 2 * _D, row_mask)


_INTERPRETED = isinstance(_fusion_head_kernel, InterpretedFunction)  # TRITON_INTERPRET=1 at import


def _default_block_b(batch: int) -> int:
    """Samples per program. On a GPU, 16 (the smallest tl.dot tile) keeps many programs in
    flight for small batches; 64 for large ones reads the 400 KB of weights from L2 4× less
    often per sample. A guess until measured on a GPU: `benchmarks/kernels/fusion_head.py --block-b`."""
    if _INTERPRETED:
        return INTERPRETER_BLOCK_B
    if not isinstance(batch, int):  # a symbolic batch (torch.export, AOTInductor): one kernel serves every
        return 16  # size, and comparing it would guard the package's batch range to one side of 4096
    return 16 if batch <= 4096 else 64


def _launch(block_b: int) -> tuple[int, int, int]:
    """(Q, num_warps, num_stages) for `block_b` samples per program."""
    if _INTERPRETED:
        return _INTERPRETER_Q, 4, 1  # the interpreter ignores warps and stages
    return _GPU_LAUNCH[block_b]


@triton_op("mimic_edge::fusion_head", mutates_args=())
def _fusion_head_op(h: Tensor, i: Tensor, s: Tensor, w_m: Tensor, b_m: Tensor, w_i: Tensor, b_i: Tensor,
                    w_g: Tensor, b_g: Tensor, algorithm: str, block_b: int) -> Tensor:
    """One launch of the fused kernel on checked inputs (see `fusion_head`); block_b 0: default.

    The launch shape is chosen here, at run time, not by the caller: a traced graph
    (torch.export) keeps this op opaque and so stays valid for every batch size."""
    batch = h.shape[0]
    block_b = block_b or _default_block_b(batch)
    q, num_warps, num_stages = _launch(block_b)
    out = torch.empty((batch, 3 * 64), dtype=h.dtype, device=h.device)  # (B, 192)
    wrap_triton(_fusion_head_kernel)[(triton.cdiv(batch, block_b),)](
        h, *h.stride(), i, *i.stride(), s, *s.stride(),
        w_m, *w_m.stride(), b_m, *b_m.stride(),
        w_i, *w_i.stride(), b_i, *b_i.stride(),
        w_g, *w_g.stride(), b_g, *b_g.stride(),
        out, *out.stride(), batch,
        BLOCK_B=block_b, FACTORIZED=algorithm == "factorized", Q=q,
        # the interpreter's bf16 dot is wrong (errors ~1e10, measured): round, then fp32 dot
        UPCAST=_INTERPRETED and h.dtype == torch.bfloat16, PRECISION=dot_precision(h.dtype),
        num_warps=num_warps, num_stages=num_stages,
    )
    return out


@_fusion_head_op.register_fake
def _fusion_head_fake(h: Tensor, i: Tensor, s: Tensor, w_m: Tensor, b_m: Tensor, w_i: Tensor, b_i: Tensor,
                      w_g: Tensor, b_g: Tensor, algorithm: str, block_b: int) -> Tensor:
    """Shapes for tracing (torch.compile, torch.export). Same as launching on a GPU, where
    wrap_triton makes the launch a no-op on fake tensors; also right under the interpreter,
    whose kernels wrap_triton leaves as they are (they would read fake tensors' data)."""
    return h.new_empty((h.shape[0], 3 * 64))


def _setup_context(ctx, inputs, output) -> None:
    ctx.save_for_backward(*inputs[:9])


def _backward(ctx, grad: Tensor):
    """Gradients of the PyTorch reference, recomputed from the saved inputs: the same values
    as autograd through `fusion_head_reference` (training is not the fused kernel's job)."""
    inputs = [x.detach().requires_grad_(need) for x, need in zip(ctx.saved_tensors, ctx.needs_input_grad)]
    wanted = [x for x in inputs if x.requires_grad]
    with torch.enable_grad():
        grads = iter(torch.autograd.grad(fusion_head_reference(*inputs), wanted, grad))
    return (*(next(grads) if x.requires_grad else None for x in inputs), None, None)


_fusion_head_op.register_autograd(_backward, setup_context=_setup_context)


def _check(tensors: dict[str, Tensor], algorithm: str, block_b: int | None) -> None:
    """Raise one clear error for the first problem found: option, type, shape, dtype, device.
    KernelInputError for a bad option value, shape or empty batch; KernelTypeError (also a
    KernelInputError) for a non-tensor, a bad dtype or device."""
    if algorithm not in ALGORITHMS:
        raise KernelInputError(f"fusion_head: algorithm must be one of {ALGORITHMS}, got {algorithm!r}")
    if block_b is not None and block_b not in BLOCK_SIZES:
        raise KernelInputError(f"fusion_head: block_b must be one of {BLOCK_SIZES}, got {block_b!r}")
    for name, x in tensors.items():
        if not isinstance(x, Tensor):
            raise KernelTypeError(f"fusion_head: {name}: expected a torch.Tensor, found {type(x).__name__}")
    h = tensors["h"]
    batch = h.shape[0] if h.dim() == 3 else "B"
    expected = {"h": (batch, 3, 16), "i": (batch, 3, 16), "s": (batch, 64), "w_m": (64, 512), "b_m": (64,),
                "w_i": (64, 512), "b_i": (64,), "w_g": (192, 192), "b_g": (192,)}
    for name, shape in expected.items():
        if tuple(tensors[name].shape) != shape:
            raise KernelInputError(f"fusion_head: {name}: expected shape {shape_text(shape)}, "
                                   f"found {shape_text(tensors[name].shape)}")
    if batch == 0:
        raise KernelInputError("fusion_head: empty batch (B = 0): expected at least one sample")
    dtypes = [x.dtype for x in tensors.values()]
    if h.dtype not in _DTYPES or len(set(dtypes)) > 1:
        found = ", ".join(f"{name} {str(x.dtype).removeprefix('torch.')}" for name, x in tensors.items())
        raise KernelTypeError(f"fusion_head: expected one dtype, float32, float16 or bfloat16, for all tensors; found {found}")
    check_device("fusion_head", {str(x.device) for x in tensors.values()}, h.device, _INTERPRETED)


def fusion_head(h: Tensor, i: Tensor, s: Tensor, w_m: Tensor, b_m: Tensor, w_i: Tensor, b_i: Tensor,
                w_g: Tensor, b_g: Tensor, *, algorithm: str = "factorized", block_b: int | None = None) -> Tensor:
    """F = G ⊙ concat[S, I, M] (B, 192) in one fused kernel; same signature as `fusion_head_reference`.

    h, i: (B, 3, 16) in modality order (t, v, a); s: (B, 64); w_m, w_i: (64, 512); b_m, b_i: (64,);
    w_g: (192, 192); b_g: (192,) (nn.Linear layout). Any B >= 1, any strides; float32, float16 or
    bfloat16 (all the same), fp32 accumulation, output in the input dtype. CUDA tensors, or CPU
    tensors under TRITON_INTERPRET=1. algorithm: "factorized" (default) or "direct" (module
    docstring: both are exact). block_b: samples per program (default: by batch size and device).
    Differentiable: the backward is the PyTorch reference's. Raises KernelInputError (a
    ValueError) for a bad option, shape or empty batch, KernelTypeError (a KernelInputError and
    a TypeError) for a non-tensor, a bad dtype or device (mimic_edge.kernels.errors).
    """
    tensors = dict(h=h, i=i, s=s, w_m=w_m, b_m=b_m, w_i=w_i, b_i=b_i, w_g=w_g, b_g=b_g)
    _check(tensors, algorithm, block_b)
    return _fusion_head_op(h, i, s, w_m, b_m, w_i, b_i, w_g, b_g, algorithm, block_b or 0)
