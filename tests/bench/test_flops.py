"""FLOP counts (mimic_edge.bench.flops) against analytic formulas, both models, every preset."""
import pytest
import torch

from mimic_edge import build_model
from mimic_edge.bench.flops import count_flops, flops_breakdown
from mimic_edge.config import PRESETS


def linear(n_in, n_out, rows=1):
    return 2 * rows * n_in * n_out


def bilstm(d_in, hidden, steps):
    return 2 * steps * linear(d_in + hidden, 4 * hidden)  # both directions, 4 gates per step


def mimic_flops(cfg, lens):
    D, b = cfg.d_model, cfg.bottleneck
    encoders = sum(bilstm(d, cfg.lstm_hidden, L) + 4 * linear(D, D, L) + 2 * 2 * L * L * D  # QKVO, QK^T, AV
                   for d, L in zip(cfg.dims.values(), lens))
    fusion = 3 * 2 * linear(D, b) + 2 * linear((b // 2) ** 3, cfg.fusion_dim) + linear(192, 192)
    head = linear(192, 64) + linear(64, 64) + linear(64, cfg.out_dim)
    return {"encoders": encoders, "fusion": fusion, "head": head, "total": encoders + fusion + head}


def misa_flops(cfg, lens):
    hid, tokens = cfg.hidden_size, 6
    encoders = 0
    for (m, d), L in zip(cfg.dims.items(), lens):
        if m == "text" and cfg.bert_text:
            encoders += linear(d, hid)  # masked mean: no matmul
            continue
        h = cfg.text_lstm_hidden if m == "text" else d
        encoders += bilstm(d, h, L) + bilstm(2 * h, h, L) + linear(4 * h, hid)
    attention = linear(hid, 3 * hid, tokens) + 2 * 2 * tokens * tokens * hid + linear(hid, hid, tokens)
    fusion = 6 * linear(hid, hid) + attention + linear(hid, cfg.ff_dim, tokens) + linear(cfg.ff_dim, hid, tokens)
    head = linear(6 * hid, 3 * hid) + linear(3 * hid, cfg.out_dim)
    return {"encoders": encoders, "fusion": fusion, "head": head, "total": encoders + fusion + head}


FORMULAS = {"mimic": mimic_flops, "misa": misa_flops}


@pytest.mark.parametrize("name", ["mimic", "misa"])
@pytest.mark.parametrize("preset", list(PRESETS))
def test_counter_matches_analytic_formula(name, preset, make_inputs):
    model = build_model(name, preset).eval()
    lens = (9, 7, 5)
    assert flops_breakdown(model, *make_inputs(model.config, 1, lens)) == FORMULAS[name](model.config, lens)


def test_mimic_mosi_figures():
    """The README's figures: 20.3 MFLOPs in all, of which the fusion head is 0.22 M."""
    model = build_model("mimic", "mosi").eval()
    flops = mimic_flops(model.config, (50, 50, 50))
    assert flops["total"] == 20_320_384 and flops["fusion"] == 217_088


def test_flops_scale_with_batch(make_inputs):
    model = build_model("mimic").eval()
    one = count_flops(model, *make_inputs(model.config, 1, (6, 6, 6)))
    assert count_flops(model, *make_inputs(model.config, 4, (6, 6, 6))) == 4 * one
    assert torch.backends.mha.get_fastpath_enabled()  # counting restores the fast path
