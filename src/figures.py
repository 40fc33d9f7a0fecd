"""The figures the notebooks share. Each function returns a matplotlib Figure and draws nothing
it was not given: all numbers come from results computed elsewhere."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch


def image_grid(images: torch.Tensor, titles: list[str] | None = None, columns: int = 16, size: float = 0.9,
               title: str = ""):
    """Images [N, 1, H, W] or [N, H, W] in a grid, white ink on black as the network sees them."""
    images = images.detach().cpu().float().reshape(-1, *images.shape[-2:])
    rows = max(1, -(-len(images) // columns))
    figure, axes = plt.subplots(rows, columns, figsize=(columns * size, rows * size * (1.25 if titles else 1)),
                                squeeze=False)
    for index, axis in enumerate(axes.flat):
        axis.axis("off")
        if index < len(images):
            axis.imshow(images[index], cmap="gray", vmin=0, vmax=1)
            if titles:
                axis.set_title(titles[index], fontsize=8)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return figure


def curves_with_band(curves: dict[str, list[tuple[np.ndarray, np.ndarray]]], xlabel: str, ylabel: str,
                     title: str = "", ylim: tuple[float, float] | None = None, logx: bool = False):
    """Mean over seeds with a min-max band, per condition. `curves[label]` is a list of (x, y) per seed."""
    figure, axis = plt.subplots(figsize=(7, 4))
    for label, runs in curves.items():
        length = min(len(x) for x, _ in runs)
        x = np.asarray(runs[0][0][:length], dtype=float)
        values = np.stack([np.asarray(y[:length], dtype=float) for _, y in runs])
        line, = axis.plot(x, values.mean(0), label=f"{label} (n={len(runs)})")
        axis.fill_between(x, values.min(0), values.max(0), alpha=0.2, color=line.get_color())
    axis.set(xlabel=xlabel, ylabel=ylabel, title=title)
    if ylim:
        axis.set_ylim(*ylim)
    if logx:
        axis.set_xscale("log")
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    return figure


def confusion_heatmap(confusion: torch.Tensor, classes: str, title: str = ""):
    """A readable confusion matrix for up to 62 classes: rows are true classes, row-normalised, log colour scale."""
    matrix = confusion.float() / confusion.float().sum(1, keepdim=True).clamp(min=1)
    size = max(5, len(classes) * 0.19)
    figure, axis = plt.subplots(figsize=(size, size))
    shown = np.ma.masked_where(matrix.numpy() == 0, matrix.numpy())
    image = axis.imshow(shown, cmap="viridis", norm=plt.matplotlib.colors.LogNorm(vmin=max(shown.min(), 1e-3), vmax=1))
    axis.set_xticks(range(len(classes)), list(classes), fontsize=7)
    axis.set_yticks(range(len(classes)), list(classes), fontsize=7)
    axis.set(xlabel="predicted", ylabel="true", title=title)
    for boundary in (9.5, 35.5) if len(classes) == 62 else ():
        axis.axhline(boundary, color="white", linewidth=0.5)
        axis.axvline(boundary, color="white", linewidth=0.5)
    figure.colorbar(image, ax=axis, fraction=0.03, label="share of the true class")
    figure.tight_layout()
    return figure


def annotated_matrix(matrix: torch.Tensor, row_labels, column_labels, title: str, xlabel: str, ylabel: str,
                     digits: int = 3):
    """A small matrix (e.g. a 10x10 transition matrix) with its values written in the cells."""
    values = matrix.detach().cpu().numpy()
    figure, axis = plt.subplots(figsize=(6.5, 5.5))
    image = axis.imshow(values, cmap="magma")
    for (row, column), value in np.ndenumerate(values):
        axis.text(column, row, f"{value:.{digits}f}", ha="center", va="center", fontsize=7,
                  color="white" if value < values.max() / 2 else "black")
    axis.set_xticks(range(values.shape[1]), column_labels)
    axis.set_yticks(range(values.shape[0]), row_labels)
    axis.set(xlabel=xlabel, ylabel=ylabel, title=title)
    figure.colorbar(image, ax=axis, fraction=0.046)
    figure.tight_layout()
    return figure


def reliability_diagram(bins_by_condition: dict[str, list[dict]], title: str = "Reliability on the test set"):
    """Accuracy against confidence per confidence bin (Guo et al. 2017); the diagonal is perfect."""
    figure, axis = plt.subplots(figsize=(5, 5))
    axis.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfectly calibrated")
    for label, rows in bins_by_condition.items():
        axis.plot([r["confidence"] for r in rows], [r["accuracy"] for r in rows], marker="o", label=label)
    axis.set(xlabel="confidence (max softmax)", ylabel="accuracy", title=title)
    axis.legend()
    axis.grid(alpha=0.3)
    figure.tight_layout()
    return figure


def training_curves(history: list[dict], keys: list[str], title: str = ""):
    """Per-epoch values of `keys` (losses on the left axis, accuracies on the right)."""
    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(10, 3.5))
    epochs = [row["epoch"] for row in history]
    for key in [key for key in keys if key in history[0]]:
        axis = loss_axis if key.endswith("loss") else accuracy_axis
        axis.plot(epochs, [row[key] for row in history], label=key.replace("_", " "))
    for axis, label in ((loss_axis, "loss"), (accuracy_axis, "accuracy")):
        axis.set(xlabel="epoch", ylabel=label)
        axis.grid(alpha=0.3)
        axis.legend()
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def per_fold_dots(rows_by_panel: dict[str, dict[str, list[float]]], baseline: str, xlabel: str):
    """One panel per protocol: a row per variant, a dot per fold (scaled to %), the variant's mean as a bar, and the
    baseline's mean as a dashed line, so a reader sees spread and pairing at a glance."""
    panels = list(rows_by_panel.items())
    names = list(panels[0][1])
    figure, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 0.45 * len(names) + 1.2), sharey=True,
                                squeeze=False)
    for axis, (title, rows) in zip(axes[0], panels):
        for position, name in enumerate(names):
            values = 100 * np.asarray(rows.get(name, []), dtype=float)
            if len(values):
                axis.scatter(values, np.full(len(values), position), s=14, alpha=0.7,
                             color="black" if name == baseline else "tab:blue")
                axis.plot([values.mean()] * 2, [position - 0.3, position + 0.3], color="tab:red")
        axis.axvline(100 * np.mean(rows[baseline]), color="gray", linestyle="--", linewidth=1)
        axis.set_yticks(range(len(names)), names, fontsize=8)
        axis.invert_yaxis()
        axis.set(xlabel=f"{xlabel} (%)", title=title)
        axis.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    return figure


def curves_per_run(curves: dict[str, list[tuple[np.ndarray, np.ndarray]]], xlabel: str, ylabel: str, title: str = "",
                   ylim: tuple[float, float] | None = None, logx: bool = False, logy: bool = False):
    """One thin line per run (seed), one colour per condition: for curves whose x differs between runs (seconds), or
    where one run's spike should not hide the others (log y)."""
    figure, axis = plt.subplots(figsize=(7.5, 4))
    for (label, runs), colour in zip(curves.items(), plt.rcParams["axes.prop_cycle"].by_key()["color"] * 4):
        for index, (x, y) in enumerate(runs):
            axis.plot(x, y, color=colour, alpha=0.75, linewidth=1.2,
                      label=f"{label} (n={len(runs)})" if index == 0 else None)
    axis.set(xlabel=xlabel, ylabel=ylabel, title=title)
    if ylim:
        axis.set_ylim(*ylim)
    if logx:
        axis.set_xscale("log")
    if logy:
        axis.set_yscale("log")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    return figure


def dots_by_condition(values: dict[str, list[float]], xlabel: str, title: str, scale: float = 100.0):
    """One row per condition: a dot per seed and the mean as a bar, so spread and pairing show at a glance."""
    names = list(values)
    figure, axis = plt.subplots(figsize=(7.5, 0.5 * len(names) + 1.3))
    for position, name in enumerate(names):
        points = scale * np.asarray([v for v in values[name] if v is not None], dtype=float)
        axis.scatter(points, np.full(len(points), position), s=18, alpha=0.75, color="black")
        if len(points):
            axis.plot([points.mean()] * 2, [position - 0.3, position + 0.3], color="tab:red")
    axis.set_yticks(range(len(names)), names, fontsize=8)
    axis.invert_yaxis()
    axis.set(xlabel=xlabel, title=title)
    axis.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    return figure


def grouped_bars(values: dict[str, dict[str, list[float]]], ylabel: str, title: str):
    """values[condition][category] = one value per seed: a bar per condition and category (the mean), with each
    seed's value as a dot on it."""
    conditions = list(values)
    categories = list(values[conditions[0]])
    width = 0.8 / len(conditions)
    figure, axis = plt.subplots(figsize=(max(7.0, 1.1 * len(categories) + 2), 3.8))
    for offset, condition in enumerate(conditions):
        positions = np.arange(len(categories)) + (offset - (len(conditions) - 1) / 2) * width
        means = [np.mean(values[condition][category]) for category in categories]
        axis.bar(positions, means, width, label=condition, alpha=0.85)
        for position, category in zip(positions, categories):
            seeds = values[condition][category]
            axis.scatter(np.full(len(seeds), position), seeds, s=6, color="black", zorder=3)
    axis.set_xticks(np.arange(len(categories)), categories, fontsize=8)
    axis.set(ylabel=ylabel, title=title)
    axis.grid(axis="y", alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    return figure


def mean_and_spread(x, series: dict[str, list[list[float]]], xlabel: str, ylabel: str, title: str,
                    logx: bool = False, xticklabels: list[str] | None = None, scale: float = 100.0):
    """series[label][i] = the seeds' values at x[i]: the mean as a line with ± one standard deviation, each seed as
    a small dot."""
    figure, axis = plt.subplots(figsize=(6.5, 4))
    positions = np.arange(len(x)) if xticklabels else np.asarray(x, dtype=float)
    for label, columns in series.items():
        values = [scale * np.asarray(column, dtype=float) for column in columns]
        line = axis.errorbar(positions, [v.mean() for v in values], yerr=[v.std(ddof=1) if len(v) > 1 else 0
                                                                          for v in values],
                             marker="o", capsize=3, label=f"{label} (n={len(values[0])})")
        for position, v in zip(positions, values):
            axis.scatter(np.full(len(v), position), v, s=8, alpha=0.5, color=line[0].get_color())
    if xticklabels:
        axis.set_xticks(positions, xticklabels)
    if logx:
        axis.set_xscale("log")
    axis.set(xlabel=xlabel, ylabel=ylabel, title=title)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    return figure


def transition_audit(estimates: dict[str, torch.Tensor], truth: torch.Tensor,
                     band: tuple[torch.Tensor, torch.Tensor] | None = None, band_of: str | None = None):
    """Estimated transition matrices against the true one. Left: the diagonal, P(folder = digit) per digit (the
    estimate named `band_of` with its bootstrap band). Right: every off-diagonal entry, estimated against true."""
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2))
    digits = np.arange(truth.shape[0])
    left.plot(digits, truth.diag().numpy(), "k*", markersize=10, label="true (audit)")
    for offset, (label, estimate) in enumerate(estimates.items()):
        shift = (offset + 1) * 0.15
        if band is not None and label == band_of:
            low, high = band[0].diag().numpy(), band[1].diag().numpy()
            diagonal = estimate.diag().numpy()
            left.errorbar(digits + shift, diagonal, yerr=[diagonal - low, high - diagonal], fmt="o", capsize=3,
                          label=f"{label} (95 % bootstrap band)")
        else:
            left.plot(digits + shift, estimate.diag().numpy(), "o", label=label)
    left.set_xticks(digits)
    left.set(xlabel="digit", ylabel="P(folder = digit)", title="Share of each digit's images in its own folder")
    left.set_ylim(bottom=0)
    left.grid(alpha=0.3)
    left.legend(fontsize=8)
    off = ~torch.eye(truth.shape[0], dtype=torch.bool)
    for label, estimate in estimates.items():
        right.scatter(truth[off].numpy(), estimate[off].numpy(), s=10, alpha=0.6, label=label)
    limits = [min(float(truth[off].min()), *(float(e[off].min()) for e in estimates.values())),
              max(float(truth[off].max()), *(float(e[off].max()) for e in estimates.values()))]
    right.plot(limits, limits, color="grey", linestyle="--", linewidth=1, label="estimate = truth")
    right.set(xlabel="true T[digit, folder]", ylabel="estimated T[digit, folder]",
              title="The other 90 entries: estimated against true")
    right.grid(alpha=0.3)
    right.legend(fontsize=8)
    figure.tight_layout()
    return figure
