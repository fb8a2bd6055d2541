"""What a bench run reports: the machine, the rows as markdown and CSV, and the latency plot.

The plot: latency vs batch size per backend, one panel per model (MIMIC and MISA side by side)
and preset. Each line is labelled at its right end, labels pushed apart where lines meet, and a
backend keeps its colour in every panel, so no legend needs decoding.
"""
from __future__ import annotations

import csv
import io
import importlib.metadata
import os
import platform
import time
from pathlib import Path

import torch

from mimic_edge.io import atomic_write
from mimic_edge.runtime.host import cpu_name, int8_isa


def machine_info(device: str = "cpu") -> dict:
    info = {
        "cpu": cpu_name(),
        "int8_isa": int8_isa(),
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d"),
    }
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=props.name, capability=f"{props.major}.{props.minor}", sms=props.multi_processor_count,
                    cuda=torch.version.cuda)
    try:
        import onnxruntime  # onnxruntime or onnxruntime-gpu: one module, two distributions

        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    try:  # the metadata: importing triton before the kernels choose its interpreter has side effects
        info["triton"] = importlib.metadata.version("triton")
    except importlib.metadata.PackageNotFoundError:
        pass
    return info



COLUMNS = [("model", "model"), ("preset", "preset"), ("backend", "backend"), ("precision", "prec"),
           ("device", "device"), ("batch_size", "batch"), ("params", "params"), ("flops", "MFLOPs"),
           ("p50_ms", "p50 ms"), ("p99_ms", "p99 ms"), ("throughput", "samples/s"),
           ("loaded_mb", "loaded MB"), ("growth_kb_per_call", "KB/call"), ("artifact_bytes", "size MB"),
           ("status", "status")]


def _cell(key: str, value) -> str:
    if value is None:
        return "–"
    if key == "params":
        return f"{value:,}"
    if key == "flops":
        return f"{value / 1e6:.2f}"
    if key in ("p50_ms", "p99_ms"):
        return f"{value:.3f}"
    if key == "throughput":
        return f"{value:,.0f}"
    if key == "loaded_mb":
        return f"{value:.1f}"
    if key == "growth_kb_per_call":
        return f"{value:.2f}"
    if key == "artifact_bytes":
        return f"{value / 1e6:.2f}"
    return str(value)


def to_markdown(rows: list[dict], columns=COLUMNS) -> str:
    """Measured rows as a table; skipped backends once each below it, with their reasons."""
    columns = [(k, t) for k, t in columns if k != "status"]
    lines = ["| " + " | ".join(title for _, title in columns) + " |",
             "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(_cell(key, row.get(key)) for key, _ in columns) + " |"
              for row in rows if row["status"] == "ok"]
    skipped = dict.fromkeys((r["backend"], r["model"], r["status"]) for r in rows if r["status"] != "ok")
    if skipped:
        lines += ["", "Not measured on this machine:"]
        lines += [f"- {backend} ({model}): {status}" for backend, model, status in skipped]
    return "\n".join(lines)


def write_csv(rows: list[dict], path: str | Path) -> None:
    keys = list(dict.fromkeys(k for row in rows for k in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=keys)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(path, lambda tmp: Path(tmp).write_text(buffer.getvalue()))


MIN_LABEL_GAP = 0.045  # axes fraction between stacked end labels: 8-pt text on a 4-inch panel


def plot_latency(rows: list[dict], path: str | Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no screen needed
    import matplotlib.pyplot as plt

    ok = [r for r in rows if r["status"] == "ok"]
    models = list(dict.fromkeys(r["model"] for r in ok))
    presets = list(dict.fromkeys(r["preset"] for r in ok))
    labels = sorted({f"{r['backend']} ({r['device']})" for r in ok})
    colours = {label: plt.cm.tab10(k % 10) for k, label in enumerate(labels)}
    fig, axes = plt.subplots(len(presets), len(models), figsize=(6.5 * len(models), 4 * len(presets)),
                             squeeze=False, sharey=True)
    ends = []  # (axes, label, last point), labelled once every panel has its final limits
    for i, preset in enumerate(presets):
        for j, model in enumerate(models):
            ax = axes[i][j]
            series: dict[str, list] = {}
            for r in ok:
                if r["model"] == model and r["preset"] == preset:
                    series.setdefault(f"{r['backend']} ({r['device']})", []).append((r["batch_size"], r["p50_ms"]))
            for label, points in series.items():
                points.sort()
                ax.plot(*zip(*points), marker="o", color=colours[label])
                ends.append((ax, label, points[-1]))
            ax.set(xscale="log", yscale="log", title=f"{model.upper()}, preset {preset}",
                   xlabel="batch size", ylabel="p50 latency (ms)")
            ax.grid(True, which="both", alpha=0.3)
            ax.margins(x=0.35)
    for ax in {id(a): a for a, _, _ in ends}.values():
        _label_ends(ax, [(label, point) for a, label, point in ends if a is ax], colours)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))
    plt.close(fig)


def _label_ends(ax, ends, colours) -> None:
    """Write each label right of its line's last point, stacked at least MIN_LABEL_GAP apart."""
    to_axes = ax.transData + ax.transAxes.inverted()
    placed = sorted((to_axes.transform(point)[1], label, point) for label, point in ends)
    y_prev = -1.0
    for y, label, point in placed:
        y = max(y, y_prev + MIN_LABEL_GAP)
        y_prev = y
        ax.annotate(label, xy=point, xytext=(8, y), textcoords=("offset points", "axes fraction"),
                    color=colours[label], va="center", fontsize=8)
