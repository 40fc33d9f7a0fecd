"""Metrics the notebooks share: accuracy views, calibration, convergence, and honest statistics.

Differences between training conditions are reported over several seeds with a spread and a
paired test, never from a single run; the t distribution comes from scipy.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import torch
from scipy import stats

from .classes import CASE_AMBIGUOUS_GROUPS, CLASS_CHARACTERS

# ----------------------------------------------------------------------------- accuracy views

def accuracy(predictions: torch.Tensor, labels: torch.Tensor) -> float:
    return float((predictions.cpu() == labels.cpu()).float().mean()) if len(labels) else float("nan")


def case_merged_accuracy(predictions: torch.Tensor, labels: torch.Tensor, classes: str = CLASS_CHARACTERS) -> float:
    """Accuracy with each of CASE_AMBIGUOUS_GROUPS counted as one class (its first member's index)."""
    mapping = torch.arange(len(classes))
    for group in CASE_AMBIGUOUS_GROUPS:
        members = [classes.index(c) for c in group if c in classes]
        mapping[members] = min(members)
    return accuracy(mapping[predictions.cpu()], mapping[labels.cpu()])


def confusion_matrix(predictions: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """counts[true, predicted]."""
    index = labels.cpu() * num_classes + predictions.cpu()
    return torch.bincount(index, minlength=num_classes**2).reshape(num_classes, num_classes)


def per_class_accuracy(confusion: torch.Tensor) -> torch.Tensor:
    """Recall per true class; NaN for classes absent from the set."""
    totals = confusion.sum(dim=1).float()
    return torch.where(totals > 0, confusion.diag().float() / totals.clamp(min=1), torch.tensor(float("nan")))


def most_confused_pairs(confusion: torch.Tensor, classes: str, count: int = 10) -> list[tuple[str, str, int]]:
    """(true, predicted, how often) for the largest off-diagonal cells."""
    values, flat = confusion.clone().fill_diagonal_(0).flatten().topk(count)
    size = confusion.shape[0]
    return [(classes[i // size], classes[i % size], int(v)) for v, i in zip(values.tolist(), flat.tolist()) if v > 0]


def classification_report(logits: torch.Tensor, labels: torch.Tensor, classes: str) -> dict:
    """The evaluation summary the CLI prints and notebooks show (JSON-ready)."""
    predictions, labels = logits.argmax(1).cpu(), labels.cpu()
    confusion = confusion_matrix(predictions, labels, len(classes))
    recall = per_class_accuracy(confusion)
    report = {"accuracy": accuracy(predictions, labels), "n": int(len(labels)),
              "per_class": {c: (None if math.isnan(v) else round(v, 4)) for c, v in zip(classes, recall.tolist())},
              "confusion": confusion.tolist(),
              "absent_classes": "".join(c for c, v in zip(classes, recall.tolist()) if math.isnan(v)),
              "expected_calibration_error": expected_calibration_error(torch.softmax(logits.float().cpu(), 1), labels)}
    if len(classes) == len(CLASS_CHARACTERS):
        report["accuracy_case_merged"] = case_merged_accuracy(predictions, labels, classes)
    return report


# ----------------------------------------------------------------------------- calibration

def reliability_bins(probabilities: torch.Tensor, labels: torch.Tensor, bins: int = 15) -> list[dict]:
    """Confidence vs accuracy in equal-width confidence bins (Guo et al., 2017)."""
    confidence, predictions = probabilities.max(dim=1)
    correct = (predictions == labels).float()
    edges = torch.linspace(0, 1, bins + 1)
    rows = []
    for low, high in zip(edges[:-1].tolist(), edges[1:].tolist()):
        inside = (confidence > low) & (confidence <= high)
        if inside.any():
            rows.append({"low": low, "high": high, "count": int(inside.sum()),
                         "confidence": float(confidence[inside].mean()), "accuracy": float(correct[inside].mean())})
    return rows


def expected_calibration_error(probabilities: torch.Tensor, labels: torch.Tensor, bins: int = 15) -> float:
    """Bin-weighted mean |accuracy - confidence|."""
    rows = reliability_bins(probabilities, labels, bins)
    return sum(r["count"] * abs(r["accuracy"] - r["confidence"]) for r in rows) / max(sum(r["count"] for r in rows), 1)


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Temperature scaling (Guo et al., 2017): the T minimising the negative log-likelihood of softmax(logits / T),
    searched on a log grid from 0.2 to 5 (T > 1 softens, T < 1 sharpens). Fit it on held-out predictions only."""
    grid = torch.logspace(math.log10(0.2), math.log10(5.0), 241)
    logits, labels = logits.float().cpu(), labels.cpu()
    losses = torch.stack([torch.nn.functional.cross_entropy(logits / t, labels) for t in grid])
    return float(grid[losses.argmin()])


# ----------------------------------------------------------------------------- convergence

WHEN = ("step", "epoch", "wall_seconds")  # where in a run an evaluation row was taken


def first_reaching(step_evaluations: list[dict], key: str, threshold: float) -> dict | None:
    """The first evaluation row where `key` >= threshold (step, epoch, wall seconds), else None."""
    return next(({name: row[name] for name in WHEN} for row in step_evaluations if row[key] >= threshold), None)


def first_staying_at_or_above(step_evaluations: list[dict], key: str, threshold: float) -> dict | None:
    """The first evaluation after which `key` stays >= threshold to the end of the run (step, epoch,
    wall seconds), else None: a run that touches the threshold and falls back has not converged."""
    reached = None
    for row in step_evaluations:
        if row[key] < threshold:
            reached = None
        elif reached is None:
            reached = {name: row[name] for name in WHEN}
    return reached


def value_at_step(step_evaluations: list[dict], key: str, step: int) -> float | None:
    """`key` at the last evaluation at or before `step`."""
    rows = [r for r in step_evaluations if r["step"] <= step]
    return rows[-1][key] if rows else None


def relative_weight_change(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> dict[str, float]:
    """||after - before|| / ||before|| per weight tensor present in both with the same shape."""
    return {name: float((after[name].float().cpu() - old.float().cpu()).norm() / old.float().norm().clamp(min=1e-12))
            for name, old in before.items()
            if name in after and after[name].shape == old.shape and old.is_floating_point() and "running" not in name}


# ----------------------------------------------------------------------------- statistics

def summarise(values) -> dict:
    """Mean, sample std, n and a 95 % t-interval of the mean."""
    values = np.asarray([v for v in values if v is not None], dtype=float)
    n = len(values)
    if n == 0:
        return {"mean": float("nan"), "std": float("nan"), "n": 0, "ci95": [float("nan")] * 2}
    mean = float(values.mean())
    std = float(values.std(ddof=1)) if n > 1 else 0.0
    half = float(stats.t.ppf(0.975, n - 1) * std / np.sqrt(n)) if n > 1 else float("nan")
    return {"mean": mean, "std": std, "n": n, "ci95": [mean - half, mean + half]}


def format_mean_std(values, scale: float = 100.0, digits: int = 2, unit: str = "%") -> str:
    summary = summarise(values)
    return f"{summary['mean'] * scale:.{digits}f} ± {summary['std'] * scale:.{digits}f}{unit} (n={summary['n']})"


def paired_t_test(first, second) -> dict:
    """Paired t-test of first - second over matched seeds (scipy.stats.ttest_rel), with the 95 %
    interval of the mean difference."""
    differences = np.asarray(first, dtype=float) - np.asarray(second, dtype=float)
    n = len(differences)
    if n < 2:
        return {"mean_difference": float(differences.mean()) if n else float("nan"), "t": float("nan"),
                "p_value": float("nan"), "n": n}
    if not differences.any():  # identical runs: no difference, and nothing to test
        return {"mean_difference": 0.0, "t": 0.0, "p_value": 1.0, "n": n, "ci95": [0.0, 0.0]}
    with warnings.catch_warnings():  # constant differences: t is +-inf, which scipy warns about
        warnings.simplefilter("ignore", RuntimeWarning)
        test = stats.ttest_rel(first, second)
    return {"mean_difference": float(differences.mean()), "t": float(test.statistic), "p_value": float(test.pvalue),
            "n": n, "ci95": summarise(differences)["ci95"]}


def difference_text(first, second, paired_by: str = "fold") -> str:
    """How a conclusion states a difference in accuracy: '+2.3 points (paired by fold, n=5, p = 0.086: not
    resolved at p < 0.05)'. A difference the test does not resolve must not be stated as one."""
    test = paired_t_test(first, second)
    if test["n"] < 2:
        return f"{100 * test['mean_difference']:+.1f} points (n={test['n']} {paired_by}: untested)"
    verdict = "resolved" if test["p_value"] < 0.05 else "not resolved"
    return (f"{100 * test['mean_difference']:+.1f} points (paired by {paired_by}, n={test['n']}, "
            f"p = {test['p_value']:.3f}: {verdict} at p < 0.05)")
