"""Plot a backdrop-mini training loss curve (needs matplotlib, which the app does not).

    python bench/backdrop_plot_loss.py generation/weights/backdrop-mini/loss.csv \
        generation/weights/backdrop-mini/loss.png
"""

from __future__ import annotations

import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (backend first)


def main(src: str, dst: str) -> None:
    with open(src) as f:
        rows = list(csv.DictReader(f))
    steps = [int(r["step"]) for r in rows]
    loss = [float(r["loss"]) for r in rows]
    minutes = [float(r["elapsed_s"]) / 60 for r in rows]
    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=100)
    ax.plot(steps, loss, lw=0.8, color="#555")
    # A running mean shows the trend under the noise of small batches.
    k = 20
    smooth = [sum(loss[max(0, i - k + 1) : i + 1]) / len(loss[max(0, i - k + 1) : i + 1]) for i in range(len(loss))]
    ax.plot(steps, smooth, lw=1.6, color="#c33", label=f"running mean of {k} points")
    ax.set_yscale("log")
    ax.set_xlabel("step (batch 16)")
    ax.set_ylabel("v-prediction MSE, generated region")
    ax.set_title(f"backdrop-mini training: {steps[-1]} steps, {minutes[-1]:.0f} min, 1 CPU thread", fontsize=9)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(dst)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
