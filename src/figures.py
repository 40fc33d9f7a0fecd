"""The notebooks' figures, drawn alike: one colour per start in all three notebooks, legends beside the axes (never on
the data), every line inside its axes, accuracies as percentages. All numbers come from results computed elsewhere."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.ticker import PercentFormatter

# One colour per start, everywhere; a method (how a start was trained) is a line style.
START_COLOURS = {"scratch": "tab:blue", "digits400": "tab:orange", "task1": "tab:green"}
METHOD_STYLES = {"recipe": "-", "backbone_lr_0.1x": "--", "probe_then_finetune": ":", "naive": "-",
                 "complementary": "--", "corrected": ":", "two_stage": "-"}


def colour_of(label: str) -> str:
    """The colour of the start a label names ("digits400, ...", "from scratch"), grey where it names none."""
    return next((colour for start, colour in START_COLOURS.items() if start in label), "tab:gray")


def style_of(label: str) -> str:
    return next((style for method, style in METHOD_STYLES.items() if method in label), "-")


def _finish(figure, axis, xlabel: str, ylabel: str, title: str, percent: bool, legend: bool = True):
    axis.set(xlabel=xlabel, ylabel=ylabel, title=title)
    if percent:
        axis.yaxis.set_major_formatter(PercentFormatter(1.0))
    axis.grid(alpha=0.3)
    if legend and axis.get_legend_handles_labels()[0]:
        axis.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    figure.tight_layout()
    return figure


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


def curves(series: dict[str, list[tuple[np.ndarray, np.ndarray]]], xlabel: str, ylabel: str, title: str = "",
           band: bool = True, percent: bool = True, logx: bool = False, logy: bool = False, marks=()):
    """Per label, its runs' curves (x, y): the mean with a min-max band where the runs share x (`band`), else one
    thin line per run. Colour by start, style by method. The y-axis spans every line; `marks` are x positions to
    mark with a vertical line (a release, say)."""
    figure, axis = plt.subplots(figsize=(9, 4))
    for label, runs in series.items():
        colour, style = colour_of(label), style_of(label)
        if band:
            length = min(len(x) for x, _ in runs)
            x = np.asarray(runs[0][0][:length], dtype=float)
            values = np.stack([np.asarray(y[:length], dtype=float) for _, y in runs])
            axis.plot(x, values.mean(0), color=colour, linestyle=style, label=f"{label} (n={len(runs)})")
            axis.fill_between(x, values.min(0), values.max(0), alpha=0.15, color=colour)
        else:
            for index, (x, y) in enumerate(runs):
                axis.plot(x, y, color=colour, linestyle=style, alpha=0.75, linewidth=1.2,
                          label=f"{label} (n={len(runs)})" if index == 0 else None)
    for x in marks:
        axis.axvline(x, color="black", linewidth=0.8, linestyle="--")
    axis.set_xscale("log" if logx else "linear")
    axis.set_yscale("log" if logy else "linear")
    return _finish(figure, axis, xlabel, ylabel, title, percent and not logy)


def dots(panels: dict[str, dict[str, list[float]]], xlabel: str, title: str = "", baseline: str | None = None):
    """One panel per protocol (or one panel): a row per variant, a dot per fold or seed, the mean as a bar, the
    baseline's mean as a dashed line; values are fractions, shown as percentages."""
    names = list(dict.fromkeys(name for rows in panels.values() for name in rows))
    figure, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 0.45 * len(names) + 1.4), sharey=True,
                                squeeze=False)
    for axis, (panel, rows) in zip(axes[0], panels.items()):
        for position, name in enumerate(names):
            values = np.asarray([v for v in rows.get(name, []) if v is not None], dtype=float)
            if len(values):
                axis.scatter(values, np.full(len(values), position), s=16, alpha=0.75, color=colour_of(name))
                axis.plot([values.mean()] * 2, [position - 0.3, position + 0.3], color="black")
        if baseline in rows:
            axis.axvline(np.mean(rows[baseline]), color="gray", linestyle="--", linewidth=1)
        axis.set_yticks(range(len(names)), names, fontsize=8)
        axis.invert_yaxis()
        axis.xaxis.set_major_formatter(PercentFormatter(1.0))
        axis.set(xlabel=xlabel, title=panel)
        axis.grid(axis="x", alpha=0.3)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return figure


def mean_and_spread(x, series: dict[str, list[list[float]]], xlabel: str, ylabel: str, title: str,
                    logx: bool = False, xticklabels: list[str] | None = None, references: dict | None = None):
    """series[label][i] = the seeds' values at x[i]: the mean as a line with ± one standard deviation, each seed as
    a small dot; `references` {label: value} are drawn as horizontal lines (what a start reads without training)."""
    figure, axis = plt.subplots(figsize=(8.5, 4))
    positions = np.arange(len(x)) if xticklabels else np.asarray(x, dtype=float)
    for label, columns in series.items():
        values = [np.asarray(column, dtype=float) for column in columns]
        colour, style = colour_of(label), style_of(label)
        axis.errorbar(positions, [v.mean() for v in values], yerr=[v.std(ddof=1) if len(v) > 1 else 0 for v in values],
                      marker="o", capsize=3, color=colour, linestyle=style, label=f"{label} (n={len(values[0])})")
        for position, v in zip(positions, values):
            axis.scatter(np.full(len(v), position), v, s=8, alpha=0.5, color=colour)
    for label, value in (references or {}).items():
        axis.axhline(value, color=colour_of(label), linestyle=":", linewidth=1.2, label=label)
    if xticklabels:
        axis.set_xticks(positions, xticklabels)
    axis.set_xscale("log" if logx else "linear")
    return _finish(figure, axis, xlabel, ylabel, title, percent=True)


def grouped_bars(values: dict[str, dict[str, list[float]]], ylabel: str, title: str):
    """values[label][category] = one value per seed: a bar per label and category (the mean), each seed a dot."""
    labels = list(values)
    categories = list(values[labels[0]])
    width = 0.8 / len(labels)
    figure, axis = plt.subplots(figsize=(max(8.0, 1.2 * len(categories) + 3), 3.8))
    for offset, label in enumerate(labels):
        positions = np.arange(len(categories)) + (offset - (len(labels) - 1) / 2) * width
        axis.bar(positions, [np.mean(values[label][c]) for c in categories], width, label=label, alpha=0.85,
                 color=colour_of(label), hatch={"-": "", "--": "//", ":": ".."}[style_of(label)])
        for position, category in zip(positions, categories):
            axis.scatter(np.full(len(values[label][category]), position), values[label][category], s=6, color="black",
                         zorder=3)
    axis.set_xticks(np.arange(len(categories)), categories, fontsize=8)
    return _finish(figure, axis, "", ylabel, title, percent=False)


def training_curves(history: list[dict], keys: list[str], title: str = ""):
    """Per-epoch values of `keys`: losses on the left, accuracies and shares (as percentages) on the right."""
    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(11, 3.5))
    epochs = [row["epoch"] for row in history]
    for key in [key for key in keys if key in history[0]]:
        axis = loss_axis if key.endswith("loss") else accuracy_axis
        axis.plot(epochs, [row[key] for row in history], label=key.replace("_", " "))
    _finish(figure, loss_axis, "epoch", "loss", "", percent=False)
    _finish(figure, accuracy_axis, "epoch", "accuracy", "", percent=True)
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def reliability_diagram(bins_by_label: dict[str, list[dict]], title: str = "Reliability on the test set"):
    """Accuracy against confidence per confidence bin (Guo et al. 2017), each point labelled with its image count;
    the diagonal is perfect calibration."""
    figure, axis = plt.subplots(figsize=(7, 5))
    axis.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfectly calibrated")
    for label, rows in bins_by_label.items():
        x, y = [r["confidence"] for r in rows], [r["accuracy"] for r in rows]
        axis.plot(x, y, marker="o", color=colour_of(label), linestyle=style_of(label), label=label)
        for row in rows:
            axis.annotate(f"{row['count']:,}", (row["confidence"], row["accuracy"]), fontsize=6,
                          textcoords="offset points", xytext=(3, -8), color=colour_of(label))
    axis.xaxis.set_major_formatter(PercentFormatter(1.0))
    return _finish(figure, axis, "confidence (max softmax; numbers: images per bin)", "accuracy", title, percent=True)


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


def annotated_matrix(matrix: torch.Tensor, title: str, xlabel: str, ylabel: str, digits: int = 3):
    """A small matrix (a 10x10 transition matrix) with its values written in the cells."""
    values = matrix.detach().cpu().numpy()
    figure, axis = plt.subplots(figsize=(6.5, 5.5))
    image = axis.imshow(values, cmap="magma")
    for (row, column), value in np.ndenumerate(values):
        axis.text(column, row, f"{value:.{digits}f}", ha="center", va="center", fontsize=7,
                  color="white" if value < values.max() / 2 else "black")
    axis.set_xticks(range(values.shape[1]))
    axis.set_yticks(range(values.shape[0]))
    axis.set(xlabel=xlabel, ylabel=ylabel, title=title)
    figure.colorbar(image, ax=axis, fraction=0.046)
    figure.tight_layout()
    return figure


def transition_audit(estimates: dict[str, torch.Tensor], truth: torch.Tensor,
                     band: tuple[torch.Tensor, torch.Tensor] | None = None, band_of: str | None = None):
    """Estimated transition matrices against the true one. Left: the diagonal, P(folder = digit) per digit (the
    estimate named `band_of` with its bootstrap band). Right: every off-diagonal entry, estimated against true."""
    figure, (left, right) = plt.subplots(1, 2, figsize=(13, 4.2))
    digits = np.arange(truth.shape[0])
    left.plot(digits, truth.diag().numpy(), "k*", markersize=10, label="true (audit)")
    for offset, (label, estimate) in enumerate(estimates.items()):
        shift, diagonal = (offset + 1) * 0.15, estimate.diag().numpy()
        if band is not None and label == band_of:
            low, high = band[0].diag().numpy(), band[1].diag().numpy()
            left.errorbar(digits + shift, diagonal, yerr=[diagonal - low, high - diagonal], fmt="o", capsize=3,
                          label=f"{label} (95 % bootstrap band)")
        else:
            left.plot(digits + shift, diagonal, "o", label=label)
    left.set_xticks(digits)
    left.set_ylim(bottom=0)
    _finish(figure, left, "digit", "P(folder = digit)", "Share of each digit's images in its own folder", percent=True)
    off = ~torch.eye(truth.shape[0], dtype=torch.bool)
    for label, estimate in estimates.items():
        right.scatter(truth[off].numpy(), estimate[off].numpy(), s=10, alpha=0.6, label=label)
    limits = [min(float(truth[off].min()), *(float(e[off].min()) for e in estimates.values())),
              max(float(truth[off].max()), *(float(e[off].max()) for e in estimates.values()))]
    right.plot(limits, limits, color="grey", linestyle="--", linewidth=1, label="estimate = truth")
    right.xaxis.set_major_formatter(PercentFormatter(1.0))
    return _finish(figure, right, "true T[digit, folder]", "estimated T[digit, folder]",
                   "The other 90 entries: estimated against true", percent=True)
