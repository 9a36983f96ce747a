"""Figures the lessons share: one helper per kind of figure, fixed sizes, readable defaults."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

__all__ = [
    "roadmap",
    "loglog_timings",
    "complex_plane",
    "work_depth",
    "measured_vs_theory",
    "loss_curves",
]


def roadmap(stages=None, *, highlight: str | None = "00"):
    """The course as a path of boxes: each lesson, its title and its one key idea.

    ``stages`` defaults to :data:`mamba_edu.course.ROADMAP`. Returns the matplotlib figure.
    """
    # The lesson list belongs to `course` (a layer above, which imports jupytext): only the
    # default needs it, so it is looked up here rather than imported by every plot.
    from mamba_edu.course import ROADMAP

    stages = list(stages or ROADMAP)
    n = len(stages)
    per_row = 5
    rows = (n + per_row - 1) // per_row
    fig, ax = plt.subplots(figsize=(12, 2.2 * rows))
    ax.set_xlim(0, per_row)
    ax.set_ylim(-rows, 0)
    ax.axis("off")
    w, h = 0.9, 0.72
    centres = []
    for i, stage in enumerate(stages):
        row, col = divmod(i, per_row)
        if row % 2:  # snake so that consecutive lessons stay next to each other
            col = per_row - 1 - col
        cx, cy = col + 0.5, -row - 0.5
        centres.append((cx, cy))
        colour = "#ffe8a3" if stage.number == highlight else "#dbe9f6"
        ax.add_patch(
            plt.Rectangle(
                (cx - w / 2, cy - h / 2), w, h, facecolor=colour, edgecolor="#3b5b7a", lw=1.2
            )
        )
        title = textwrap.fill(f"{stage.number} · {stage.title}", 24)
        ax.text(cx, cy + 0.17, title, ha="center", va="center", fontsize=9, weight="bold")
        ax.text(
            cx, cy - 0.13, textwrap.fill(stage.idea, 30), ha="center", va="center", fontsize=7.5
        )
    for (x0, y0), (x1, y1) in zip(centres, centres[1:], strict=False):
        if y0 == y1:
            sx = np.sign(x1 - x0)
            start, end = (x0 + sx * w / 2, y0), (x1 - sx * w / 2, y1)
        else:
            start, end = (x0, y0 - h / 2), (x1, y1 + h / 2)
        ax.annotate(
            "", xy=end, xytext=start, arrowprops=dict(arrowstyle="->", color="#3b5b7a", lw=1.5)
        )
    ax.set_title("Mamba from scratch: the road from a plain RNN to Mamba", fontsize=12)
    fig.tight_layout()
    return fig


def loglog_timings(
    sizes: Sequence[float],
    series: Mapping[str, Sequence[float]],
    *,
    slopes: Mapping[str, float] | None = None,
    xlabel: str = "sequence length L",
    title: str = "",
):
    """Times (seconds) against size on log-log axes, one line per series, fitted slopes in the legend."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for name, times in series.items():
        label = name if not slopes or name not in slopes else f"{name} (slope {slopes[name]:.2f})"
        ax.loglog(sizes, np.asarray(times) * 1e3, "o-", label=label)
    ax.set_xticks(list(sizes), [f"{s:g}" for s in sizes])
    ax.minorticks_off()
    ax.set_xlabel(xlabel)
    ax.set_ylabel("time per call (ms)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def complex_plane(points: Mapping[str, np.ndarray], *, title: str = "", ax=None):
    """Eigenvalues (or any complex numbers) in the complex plane, one marker colour per set, with the
    unit circle: inside it a recurrence decays, outside it blows up."""
    if ax is None:
        fig, ax = plt.subplots(figsize=(4.6, 4.6))
    theta = np.linspace(0, 2 * np.pi, 400)
    ax.plot(np.cos(theta), np.sin(theta), color="0.5", lw=1, ls="--", label="|λ| = 1")
    for name, z in points.items():
        z = np.asarray(z)
        ax.plot(z.real, z.imag, "o", ms=3, alpha=0.7, label=name)
    ax.axhline(0, color="0.85", lw=0.8)
    ax.axvline(0, color="0.85", lw=0.8)
    ax.set_aspect("equal")
    ax.set_xlabel("Re λ")
    ax.set_ylabel("Im λ")
    ax.legend(fontsize=8, loc="lower left")
    if title:
        ax.set_title(title)
    return ax.figure


def work_depth(
    sizes: Sequence[float],
    work: Mapping[str, Sequence[float]],
    depth: Mapping[str, Sequence[float]],
    *,
    title: str = "",
):
    """Two log-log panels against the input size n: work (operations) and depth (parallel steps).

    ``work`` and ``depth`` map a method's name to its counts at each size; a method keeps its
    colour in both panels. Reference lines n, n·log₂ n and log₂ n are drawn dotted.
    """
    sizes = np.asarray(sizes, dtype=float)
    fig, (ax_w, ax_d) = plt.subplots(1, 2, figsize=(11, 4))
    colours = {name: f"C{i}" for i, name in enumerate(dict.fromkeys([*work, *depth]))}
    for name, counts in work.items():
        ax_w.loglog(sizes, counts, "o-", ms=3, color=colours[name], label=name)
    for name, counts in depth.items():
        ax_d.loglog(sizes, counts, "o-", ms=3, color=colours[name], label=name)
    ax_w.loglog(sizes, sizes, ":", color="0.5", label="n")
    ax_w.loglog(sizes, sizes * np.log2(sizes), "--", color="0.5", lw=1, label="n·log₂ n")
    ax_d.loglog(sizes, np.log2(sizes), ":", color="0.5", label="log₂ n")
    for ax, what in ((ax_w, "work: operator applications"), (ax_d, "depth: parallel steps")):
        ax.set_xlabel("sequence length n")
        ax.set_ylabel(what)
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def measured_vs_theory(
    theory: Sequence[float],
    measured: Mapping[str, Sequence[float]],
    *,
    xlabel: str = "theory",
    ylabel: str = "measured",
    title: str = "",
):
    """Measured values against their theoretical prediction, one marker series each, with y = x."""
    theory = np.asarray(theory, dtype=float)
    fig, ax = plt.subplots(figsize=(5.5, 4))
    lo = min(theory.min(), *(np.min(v) for v in measured.values()))
    hi = max(theory.max(), *(np.max(v) for v in measured.values()))
    pad = 0.05 * (hi - lo or 1.0)
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], "k--", lw=1, label="measured = theory")
    for (name, values), marker in zip(measured.items(), "osd^v", strict=False):
        ax.plot(theory, values, marker, ms=7, label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def loss_curves(histories: Mapping[str, Sequence[float]], *, title: str = "", ylabel: str = "loss"):
    """Training loss against step, one line per model, on a log scale."""
    fig, ax = plt.subplots(figsize=(6.5, 3.5))
    for name, losses in histories.items():
        ax.semilogy(np.arange(1, len(losses) + 1), losses, lw=1.5, label=name)
    ax.set_xlabel("training step")
    ax.set_ylabel(ylabel)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig
