"""The PyTorch references of the fusion head: the pooled outer product against its plain
definition, and the factorized pooling against the materialised one (also once exported)."""
import itertools

import numpy as np
import pytest
import torch

from mimic_edge.kernels.reference import fusion_head_reference, pooled_outer, pooled_outer_factorized


def factors(kind: str, batch: int = 7, n: int = 16) -> torch.Tensor:
    """(batch, 3, n) factors of one kind of value."""
    g = torch.Generator().manual_seed(n)
    x = torch.randn(batch, 3, n, generator=g)
    if kind == "relu":  # as after the bottleneck ReLUs (Eqs. 5-6): many exact zeros
        return x.relu()
    if kind == "ties":  # small integers: equal members in pool pairs, zeros, exact products
        return torch.randint(-2, 3, (batch, 3, n), generator=g).float()
    if kind == "large":
        return x * 1e3
    return x


def pooled_by_loops(x: torch.Tensor) -> torch.Tensor:
    """The definition, one box at a time: max over 2×2×2 boxes of x_t ⊗ x_v ⊗ x_a, t slowest."""
    batch, _, n = x.shape
    out = torch.empty(batch, (n // 2) ** 3, dtype=x.dtype)
    for b in range(batch):
        t, v, a = x[b].tolist()
        for col, (p, q, r) in enumerate(itertools.product(range(n // 2), repeat=3)):
            out[b, col] = max(t[2 * p + dp] * v[2 * q + dq] * a[2 * r + dr]
                              for dp, dq, dr in itertools.product((0, 1), repeat=3))
    return out


@pytest.mark.parametrize("kind", ["signed", "relu", "ties"])
def test_pooled_outer_is_the_max_over_each_box(kind):
    x = factors(kind, batch=2, n=4).double()  # float64: the loops multiply in Python floats
    torch.testing.assert_close(pooled_outer(x), pooled_by_loops(x), rtol=1e-12, atol=0)


@pytest.mark.parametrize("n", [4, 16])
@pytest.mark.parametrize("kind", ["signed", "relu", "ties", "large"])
def test_factorized_pooling_equals_materialised(kind, n):
    x = factors(kind, n=n)
    expected, got = pooled_outer(x), pooled_outer_factorized(x)
    if kind == "ties":  # small integers: every product is exact, so the maxima are equal exactly
        assert torch.equal(got, expected)
    else:  # (t·v)·a there, t·(v·a) here: a rounding apart
        torch.testing.assert_close(got, expected, rtol=1e-6, atol=0)


def test_fusion_head_reference_is_eqs_7_to_11():
    g = torch.Generator().manual_seed(1)
    h, i = torch.randn(2, 3, 16, generator=g), torch.randn(2, 3, 16, generator=g)
    s = torch.randn(2, 64, generator=g)
    fc_m, fc_i, gate = torch.nn.Linear(512, 64), torch.nn.Linear(512, 64), torch.nn.Linear(192, 192)
    f0 = torch.cat([s, fc_i(pooled_by_loops(i)), fc_m(pooled_by_loops(h))], dim=-1)
    expected = torch.sigmoid(gate(f0)) * f0
    got = fusion_head_reference(h, i, s, fc_m.weight, fc_m.bias, fc_i.weight, fc_i.bias, gate.weight, gate.bias)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


class _Pool(torch.nn.Module):
    def forward(self, x):
        return pooled_outer_factorized(x)


def test_factorized_pooling_exports_to_onnx_with_dynamic_batch(tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")
    path = tmp_path / "pool.onnx"
    batch = torch.export.Dim("batch")
    torch.onnx.export(_Pool().eval(), (factors("signed", batch=3),), str(path), dynamo=True,
                      external_data=False, dynamic_shapes=({0: batch},))
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = factors("relu", batch=5)  # another batch size and kind than traced
    (got,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    np.testing.assert_allclose(got, pooled_outer(x).numpy(), rtol=1e-6, atol=0)
