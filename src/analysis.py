"""Metrics the notebooks share: accuracy views, calibration, convergence, and honest statistics.

Differences between training conditions are reported over several seeds with a spread and a
paired test, never from a single run. Only numpy and torch are used (no scipy), so the Student t
distribution is computed here from the regularised incomplete beta function.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .data import CLASS_CHARACTERS

# Classes that handwriting often leaves ambiguous by shape alone: case pairs whose capital and
# lowercase differ only in size, and the digit/letter look-alikes listed in the team's guide
# (o/O/0, c/C, s/S, v/V, w/W, x/X, z/Z, k/K, p/P, u/U, 1/l/I, 9/g/q, 5/S, 2/Z). Merging each group
# into one class gives the "case-merged" accuracy reported beside plain top-1.
CASE_AMBIGUOUS_GROUPS = ("0Oo", "Cc", "5Ss", "Vv", "Ww", "Xx", "2Zz", "Kk", "Pp", "Uu", "1Il", "9gq")


# ----------------------------------------------------------------------------- accuracy views

def merged_class_map(classes: str = CLASS_CHARACTERS, groups=CASE_AMBIGUOUS_GROUPS) -> torch.Tensor:
    """For each class index, the index of its group's first member (itself if ungrouped)."""
    mapping = torch.arange(len(classes))
    for group in groups:
        members = [classes.index(c) for c in group if c in classes]
        mapping[members] = min(members)
    return mapping


def accuracy(predictions: torch.Tensor, labels: torch.Tensor) -> float:
    return float((predictions.cpu() == labels.cpu()).float().mean()) if len(labels) else float("nan")


def case_merged_accuracy(predictions: torch.Tensor, labels: torch.Tensor, classes: str = CLASS_CHARACTERS) -> float:
    mapping = merged_class_map(classes)
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
    off_diagonal = confusion.clone()
    off_diagonal.fill_diagonal_(0)
    values, flat = off_diagonal.flatten().topk(count)
    size = confusion.shape[0]
    return [(classes[i // size], classes[i % size], int(v)) for v, i in zip(values.tolist(), flat.tolist()) if v > 0]


def classification_report(logits: torch.Tensor, labels: torch.Tensor, classes: str) -> dict:
    """The evaluation summary the CLI prints and notebooks show (JSON-ready)."""
    predictions = logits.argmax(1).cpu()
    labels = labels.cpu()
    confusion = confusion_matrix(predictions, labels, len(classes))
    recall = per_class_accuracy(confusion)
    report = {
        "accuracy": accuracy(predictions, labels),
        "n": int(len(labels)),
        "per_class": {c: (None if math.isnan(v) else round(v, 4)) for c, v in zip(classes, recall.tolist())},
        "confusion": confusion.tolist(),
        "absent_classes": "".join(c for c, v in zip(classes, recall.tolist()) if math.isnan(v)),
        "expected_calibration_error": expected_calibration_error(torch.softmax(logits.float().cpu(), 1), labels),
    }
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
    total = sum(r["count"] for r in rows)
    return sum(r["count"] * abs(r["accuracy"] - r["confidence"]) for r in rows) / max(total, 1)


# ----------------------------------------------------------------------------- convergence

def first_reaching(step_evaluations: list[dict], key: str, threshold: float) -> dict | None:
    """The first evaluation row where `key` >= threshold (step, epoch, wall seconds), else None."""
    for row in step_evaluations:
        if row[key] >= threshold:
            return {"step": row["step"], "epoch": row["epoch"], "wall_seconds": row["wall_seconds"]}
    return None


def value_at_step(step_evaluations: list[dict], key: str, step: int) -> float | None:
    """`key` at the last evaluation at or before `step`."""
    rows = [r for r in step_evaluations if r["step"] <= step]
    return rows[-1][key] if rows else None


def relative_weight_change(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> dict[str, float]:
    """||after - before|| / ||before|| per weight tensor present in both with the same shape."""
    changes = {}
    for name, old in before.items():
        new = after.get(name)
        if new is None or new.shape != old.shape or not old.is_floating_point() or "running" in name:
            continue
        changes[name] = float((new.float().cpu() - old.float().cpu()).norm() / old.float().norm().clamp(min=1e-12))
    return changes


# ----------------------------------------------------------------------------- statistics

def _incomplete_beta(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta I_x(a, b) by Lentz's continued fraction."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    if x > (a + 1) / (a + b + 2):
        return 1.0 - _incomplete_beta(b, a, 1 - x)
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log(1 - x)) / a
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 300):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= c * d
        if abs(c * d - 1.0) < 1e-12:
            break
    return front * result


def student_t_two_sided_p(t: float, degrees_of_freedom: int) -> float:
    if math.isnan(t):
        return float("nan")
    if math.isinf(t):
        return 0.0
    return _incomplete_beta(degrees_of_freedom / 2, 0.5, degrees_of_freedom / (degrees_of_freedom + t * t))


def student_t_quantile(probability: float, degrees_of_freedom: int) -> float:
    """t such that P(T <= t) = probability, by bisection on the two-sided p-value."""
    low, high = 0.0, 1000.0
    target = 2 * (1 - probability)
    for _ in range(200):
        middle = (low + high) / 2
        if student_t_two_sided_p(middle, degrees_of_freedom) > target:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def summarise(values) -> dict:
    """Mean, sample std, n and a 95 % t-interval of the mean."""
    values = np.asarray([v for v in values if v is not None], dtype=float)
    n = len(values)
    if n == 0:
        return {"mean": float("nan"), "std": float("nan"), "n": 0, "ci95": [float("nan")] * 2}
    mean = float(values.mean())
    std = float(values.std(ddof=1)) if n > 1 else 0.0
    half = student_t_quantile(0.975, n - 1) * std / math.sqrt(n) if n > 1 else float("nan")
    return {"mean": mean, "std": std, "n": n, "ci95": [mean - half, mean + half]}


def format_mean_std(values, scale: float = 100.0, digits: int = 2, unit: str = "%") -> str:
    summary = summarise(values)
    return f"{summary['mean'] * scale:.{digits}f} ± {summary['std'] * scale:.{digits}f}{unit} (n={summary['n']})"


def paired_t_test(first, second) -> dict:
    """Paired t-test of first - second over matched seeds."""
    differences = np.asarray(first, dtype=float) - np.asarray(second, dtype=float)
    n = len(differences)
    if n < 2:
        return {"mean_difference": float(differences.mean()) if n else float("nan"), "t": float("nan"),
                "p_value": float("nan"), "n": n}
    std = differences.std(ddof=1)
    t = float(differences.mean() / (std / math.sqrt(n))) if std > 0 else (0.0 if differences.mean() == 0 else math.copysign(math.inf, differences.mean()))
    return {"mean_difference": float(differences.mean()), "t": t, "p_value": student_t_two_sided_p(t, n - 1), "n": n,
            "ci95": [float(differences.mean() - student_t_quantile(0.975, n - 1) * std / math.sqrt(n)),
                     float(differences.mean() + student_t_quantile(0.975, n - 1) * std / math.sqrt(n))]}
