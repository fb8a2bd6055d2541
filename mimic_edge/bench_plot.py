"""Latency vs batch size per backend, one panel per model (MIMIC and MISA side by side) and
preset. Lines are labelled at their right end, so no legend needs decoding."""
from __future__ import annotations

from pathlib import Path

from mimic_edge.io import atomic_write


def plot_latency(rows: list[dict], path: str | Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no screen needed
    import matplotlib.pyplot as plt

    ok = [r for r in rows if r["status"] == "ok"]
    models = list(dict.fromkeys(r["model"] for r in ok))
    presets = list(dict.fromkeys(r["preset"] for r in ok))
    fig, axes = plt.subplots(len(presets), len(models), figsize=(6 * len(models), 4 * len(presets)),
                             squeeze=False, sharey=True)
    for i, preset in enumerate(presets):
        for j, model in enumerate(models):
            ax = axes[i][j]
            series = {}
            for r in ok:
                if r["model"] == model and r["preset"] == preset:
                    series.setdefault(f"{r['backend']} ({r['device']})", []).append((r["batch_size"], r["p50_ms"]))
            for label, points in sorted(series.items()):
                points.sort()
                (line,) = ax.plot(*zip(*points), marker="o")
                ax.annotate(label, points[-1], xytext=(4, 0), textcoords="offset points",
                            color=line.get_color(), va="center", fontsize=8)
            ax.set(xscale="log", yscale="log", title=f"{model.upper()}, preset {preset}",
                   xlabel="batch size", ylabel="p50 latency (ms)")
            ax.grid(True, which="both", alpha=0.3)
            ax.margins(x=0.25)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))
    plt.close(fig)
