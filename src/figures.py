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
