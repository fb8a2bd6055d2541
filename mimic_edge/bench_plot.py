"""Latency vs batch size per backend, one panel per model (MIMIC and MISA side by side) and
preset. Each line is labelled at its right end, labels pushed apart where lines meet, and a
backend keeps its colour in every panel, so no legend needs decoding."""
from __future__ import annotations

from pathlib import Path

from mimic_edge.io import atomic_write

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
