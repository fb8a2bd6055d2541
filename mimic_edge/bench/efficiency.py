"""`mimic-edge bench --table efficiency`: the paper's Table 3 for the machine at hand.

Per model and preset: parameters, FLOPs per sample (and the fusion + head share: the paper's
"2 MFLOPs" fits only that part of MIMIC, the LSTM encoders alone are ~20 MFLOPs at `mosi`),
the best batch-1 latency among the backends measured, and, from training runs
(`mimic-edge train` output folders, or those `mimic-edge bench --train` makes), the
convergence epoch and the validation MAE / Acc-2 at that epoch. The paper's figures stand in
adjacent columns.
"""
from __future__ import annotations

import json
from pathlib import Path

from mimic_edge.errors import ConfigError

# Paper Table 3 (params, MFLOPs, convergence epochs) and Table 1 (MIMIC on MOSI: MAE, Acc-2).
PAPER = {
    "mimic": {"params_m": 0.3, "mflops": 2, "epochs": 8, "MAE": 0.793, "Acc2": 82.0},
    "misa": {"params_m": 1.4, "mflops": 5, "epochs": 20, "MAE": None, "Acc2": None},
}


def read_run(folder: str | Path) -> dict:
    """Model, preset, convergence epoch and best-epoch validation metrics of a training run."""
    folder = Path(folder)
    try:
        summary = json.loads((folder / "summary.json").read_text())
        best = json.loads((folder / "best.json").read_text())["extra"]
    except (OSError, json.JSONDecodeError, KeyError) as e:
        raise ConfigError(f"{folder}: expected a `mimic-edge train` output folder with summary.json and "
                          f"best.json, found {type(e).__name__}: {e}") from None
    return {"model": summary["config"]["model"], "preset": summary["config"]["preset"],
            "data": summary["config"].get("data"), "epochs": summary["best_epoch"],
            "MAE": best["valid"]["MAE"], "Acc2": 100 * best["valid"]["Non0_acc_2"],
            "train_seconds": summary["seconds"]}


def efficiency_rows(bench_rows: list[dict], runs: list[dict]) -> list[dict]:
    """One row per (model, preset) of `bench_rows`; latency: the fastest backend at batch 1."""
    rows = []
    for key in dict.fromkeys((r["model"], r["preset"]) for r in bench_rows):
        mine = [r for r in bench_rows if (r["model"], r["preset"]) == key]
        timed = [r for r in mine if r["status"] == "ok" and r["batch_size"] == 1]
        best = min(timed, key=lambda r: r["p50_ms"]) if timed else None
        run = next((r for r in runs if (r["model"], r["preset"]) == key), None)
        first = mine[0]
        rows.append({
            "model": key[0], "preset": key[1], "params": first["params"],
            "mflops": first["flops"] / first["batch_size"] / 1e6,
            "mflops_fusion_head": (first["flops_fusion_per_sample"] + first["flops_head_per_sample"]) / 1e6,
            "p50_ms": best["p50_ms"] if best else None,
            "backend": f"{best['backend']} ({best['device']})" if best else "not measured",
            "epochs": run["epochs"] if run else None, "MAE": run["MAE"] if run else None,
            "Acc2": run["Acc2"] if run else None, "data": run["data"] if run else None,
            "paper": PAPER[key[0]],
        })
    return rows


def _fmt(value, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def efficiency_markdown(rows: list[dict]) -> str:
    head = ("| model | preset | params (M) | paper | MFLOPs | of which fusion+head | paper | batch-1 p50 ms "
            "| backend | conv. epochs | paper | MAE | paper | Acc-2 (non-0, %) | paper | trained on |")
    lines = [head, "|" + "---|" * head.count(" | ") + "---|"]
    for r in rows:
        p = r["paper"]
        lines.append("| " + " | ".join([
            r["model"].upper(), r["preset"], f"{r['params'] / 1e6:.3f}", _fmt(p["params_m"], ".1f"),
            f"{r['mflops']:.2f}", f"{r['mflops_fusion_head']:.2f}", _fmt(p["mflops"], "d"),
            _fmt(r["p50_ms"], ".3f"), r["backend"], _fmt(r["epochs"], "d"), _fmt(p["epochs"], "d"),
            _fmt(r["MAE"], ".3f"), _fmt(p["MAE"], ".3f"), _fmt(r["Acc2"], ".1f"), _fmt(p["Acc2"], ".1f"),
            r["data"] or "–"]) + " |")
    return "\n".join(lines)
