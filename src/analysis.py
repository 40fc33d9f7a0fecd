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


# ----------------------------------------------------------------------------- representations

@torch.no_grad()
def linear_probe_accuracies(network, fit, score, ridge: float = 1.0) -> dict[str, float]:
    """How linearly separable the classes already are in each backbone stage's features (max-pooled to 3x3): a ridge
    least-squares read-out (one-hot targets, standardised features) fitted on `fit` and scored on `score`, both
    LabelledImages (linear probes: Alain & Bengio, 2017). Task 2 probes networks before any MNIST training."""
    network = network.cpu().eval()

    def features(images: torch.Tensor) -> dict[str, torch.Tensor]:
        x, out = (images - network.input_mean) / network.input_std, {}
        for name in ("stage1", "stage2", "stage3"):
            x = getattr(network.backbone, name)(x)
            out[name] = torch.nn.functional.adaptive_max_pool2d(x, 3).flatten(1).double()
        return out
    fit_features, score_features = features(fit.images.cpu()), features(score.images.cpu())
    targets = torch.nn.functional.one_hot(fit.labels.cpu(), int(fit.labels.max()) + 1).double()
    accuracies = {}
    for stage, x in fit_features.items():
        mean, std = x.mean(0), x.std(0) + 1e-6
        x, z = (x - mean) / std, (score_features[stage] - mean) / std
        x, z = (torch.cat([part, torch.ones(len(part), 1, dtype=part.dtype)], 1) for part in (x, z))  # a bias
        weights = torch.linalg.solve(x.T @ x + ridge * torch.eye(x.shape[1], dtype=x.dtype), x.T @ targets)
        accuracies[stage] = accuracy((z @ weights).argmax(1), score.labels.cpu())
    return accuracies


# ----------------------------------------------------------------------------- convergence

WHEN = ("step", "epoch", "wall_seconds")  # where in a run an evaluation row was taken


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
    return paired_test_text(paired_t_test(first, second), paired_by)


def paired_test_text(test: dict, paired_by: str = "seed", scale: float = 100.0, unit: str = "points",
                     places: int = 1) -> str:
    """`difference_text` for a `paired_t_test` result already at hand (scale 100, points: accuracies)."""
    if test["n"] < 2:
        return f"{scale * test['mean_difference']:+.{places}f} {unit} (n={test['n']} {paired_by}: untested)"
    verdict = "resolved" if test["p_value"] < 0.05 else "not resolved"
    return (f"{scale * test['mean_difference']:+.{places}f} {unit} (paired by {paired_by}, n={test['n']}, "
            f"p = {test['p_value']:.3f}: {verdict} at p < 0.05)")


def welch_t_test(first, second) -> dict:
    """Unpaired comparison of two sets of runs that share no seeds (Welch's t-test, scipy.stats.ttest_ind)."""
    first, second = np.asarray(first, dtype=float), np.asarray(second, dtype=float)
    test = stats.ttest_ind(first, second, equal_var=False)
    return {"mean_difference": float(first.mean() - second.mean()), "t": float(test.statistic),
            "p_value": float(test.pvalue), "n": [len(first), len(second)]}
