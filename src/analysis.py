"""Metrics the notebooks share: accuracy views, calibration, convergence, statistics, and the record of runs.

Differences between training starts or methods are reported over several seeds (or folds) with a spread and a test
that fits the design, never from a single run: over independent seeds the paired t-test; over cross-validation folds,
whose training sets overlap, the corrected resampled t-test (Nadeau & Bengio, 2003). A notebook's comparisons are one
family, Holm-corrected (Holm, 1979); "resolved" means corrected p < 0.05.

The record of runs. Every training run of every task appends one `Run` row to its task's results
(`results["runs"]`, JSON via `Run.to_dict`; `runs_of(results)` reads them back):

    Run(task="task2", method="recipe", start="digits400", seed=3, config=config_digest(recipe),
        metrics={"final_test_accuracy": 0.9931, "steps_to_0.99": 700, ...}, history="mnist/digits400/seed3")

`start` names where the weights began ("scratch", "digits400": the 400-digit network of Task 2, "task1": the Task 1
network) and `method` how it was trained; `seed` or `fold` is what a comparison pairs by; `metrics` are flat numbers
(None where a run has no value, e.g. a threshold it never held); `history` is the key of the run's curves in
`results["histories"]`. Everything the notebooks, the summary rows and the README print is a query over these rows:

    over_runs(runs, "final_test_accuracy", method="recipe", start="scratch")   # mean, std, n, ci95, of
    compare(runs, {"start": "digits400"}, {"start": "scratch"}, "final_test_accuracy")          # paired by seed
    compare(runs, {"method": "no augmentation"}, {"method": "recipe"}, "accuracy", paired_by="fold", test_share=0.25)

A cross-validation fold is one row (`fold=k`, and `seed=k` where the fold's seed is k), so Task 1's ablations compare
with its recipe by `compare(..., paired_by="fold", test_share=...)`, as Task 2's starts compare by seed.
"""
from __future__ import annotations

import hashlib
import json
import math
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from scipy import optimize, stats

from .data.classes import CASE_AMBIGUOUS_GROUPS, CLASS_CHARACTERS

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
    index = labels.cpu().long() * num_classes + predictions.cpu().long()
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
    searched between 0.2 and 5 on log T (T > 1 softens, T < 1 sharpens). Fit it on held-out predictions only."""
    logits, labels = logits.double().cpu(), labels.cpu()

    def negative_log_likelihood(log_temperature: float) -> float:
        return float(torch.nn.functional.cross_entropy(logits / math.exp(log_temperature), labels))
    fitted = optimize.minimize_scalar(negative_log_likelihood, bounds=(math.log(0.2), math.log(5.0)),
                                      method="bounded", options={"xatol": 1e-5})
    return math.exp(fitted.x)


# ----------------------------------------------------------------------------- representations

@torch.no_grad()
def linear_probe_accuracies(network, fit, score, ridge: float = 1.0,
                            stages: tuple[str, ...] = ("stage1", "stage2", "stage3")) -> dict[str, float]:
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
    for stage in stages:
        x = fit_features[stage]
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
    """'99.12 ± 0.05% (n=5)': values, or a `summarise` / `over_runs` result already at hand. Pass unit=" %" for
    the headline rows' spacing, scale=1 and unit=" s" for seconds."""
    summary = values if isinstance(values, Mapping) else summarise(values)
    return f"{summary['mean'] * scale:.{digits}f} ± {summary['std'] * scale:.{digits}f}{unit} (n={summary['n']})"


def paired_t_test(first, second) -> dict:
    """Paired t-test of first - second over independent seeds (scipy.stats.ttest_rel), with the 95 % interval of
    the mean difference."""
    differences = np.asarray(first, dtype=float) - np.asarray(second, dtype=float)
    n = len(differences)
    if n < 2:
        return {"mean_difference": float(differences.mean()) if n else float("nan"), "t": float("nan"),
                "p_value": float("nan"), "n": n, "test": "paired t"}
    if not differences.any():  # identical runs: no difference, and nothing to test
        return {"mean_difference": 0.0, "t": 0.0, "p_value": 1.0, "n": n, "ci95": [0.0, 0.0], "test": "paired t"}
    with warnings.catch_warnings():  # constant differences: t is +-inf, which scipy warns about
        warnings.simplefilter("ignore", RuntimeWarning)
        test = stats.ttest_rel(first, second)
        interval = test.confidence_interval(0.95)
    return {"mean_difference": float(differences.mean()), "t": float(test.statistic), "p_value": float(test.pvalue),
            "n": n, "ci95": [float(interval.low), float(interval.high)], "test": "paired t"}


def corrected_resampled_t_test(first, second, test_share: float) -> dict:
    """Paired comparison over cross-validation folds (or repeated folds), first - second. The folds' training sets
    overlap, so their differences are correlated and the plain paired t-test is too confident; Nadeau & Bengio (2003,
    *Inference for the generalization error*) correct the variance of the mean difference from var/n to
    (1/n + n_test/n_train) * var. `test_share` is n_test/n_train (1/(k-1) for k folds)."""
    differences = np.asarray(first, dtype=float) - np.asarray(second, dtype=float)
    n = len(differences)
    mean = float(differences.mean()) if n else float("nan")
    if n < 2 or not differences.any():
        return {"mean_difference": mean, "t": 0.0 if n >= 2 else float("nan"),
                "p_value": 1.0 if n >= 2 else float("nan"), "n": n, "test": "corrected resampled t"}
    variance = (1 / n + test_share) * differences.var(ddof=1)
    t = mean / math.sqrt(variance) if variance > 0 else math.copysign(math.inf, mean)
    return {"mean_difference": mean, "t": t, "p_value": float(2 * stats.t.sf(abs(t), n - 1)), "n": n,
            "test": "corrected resampled t"}


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down correction of a family of p-values (Holm, 1979): the k-th smallest is multiplied by
    (m - k + 1), kept monotone and capped at 1. NaN (untested) p-values stay NaN and do not count in m."""
    tested = sorted((p, index) for index, p in enumerate(p_values) if not math.isnan(p))
    adjusted, running = [float("nan")] * len(p_values), 0.0
    for rank, (p, index) in enumerate(tested):
        running = max(running, min(1.0, (len(tested) - rank) * p))
        adjusted[index] = running
    return adjusted


def with_holm(tests: list[dict]) -> list[dict]:
    """A notebook's family of comparisons (`compare` results), each given its Holm-corrected p and whether that
    resolves it (corrected p < 0.05)."""
    adjusted = holm([test["p_value"] for test in tests])
    return [{**test, "p_holm": p, "resolved": p < 0.05} for test, p in zip(tests, adjusted)]


# ----------------------------------------------------------------------------- the record of runs

@dataclass(frozen=True)
class Run:
    """One training run (or one measured network, such as a linear probe of a start) of one task."""
    task: str                   # "task1", "task2", "task3"
    method: str                 # what was trained or measured: "mnist", "pretrain", "two_stage", "recipe", ...
    start: str                  # where the weights began: "scratch", "digits400", "task1"
    seed: int | None = None     # what paired_by="seed" matches
    fold: int | None = None     # what paired_by="fold" matches
    config: str | None = None   # config_digest of the recipe it trained with (None: nothing trained)
    metrics: dict = field(default_factory=dict)  # name -> number, or None where the run has no value
    history: str | None = None  # key of its curves in the results' "histories"
    protocol: str | None = None  # Task 1's cross-validation: "images" (seen writers) or "writers" (new writers)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping) -> "Run":
        return cls(**values)

    def matches(self, where: Mapping) -> bool:
        return all(getattr(self, name) == value for name, value in where.items())


def config_digest(config) -> str:
    """12 hex digits naming a recipe (a TrainConfig, anything with `to_dict`, or a dict): equal recipes, equal digest.
    A "seed" entry is left out: the seed is the run's own field, so all seeds of one recipe share the digest."""
    values = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    values.pop("seed", None)
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:12]


def runs_of(results: Mapping) -> list[Run]:
    """The run records of a task's results, whether fresh (Run objects) or read back from JSON (dicts)."""
    return [run if isinstance(run, Run) else Run.from_dict(run) for run in results["runs"]]


def select(runs: Iterable[Run], **where) -> list[Run]:
    """The runs whose fields equal `where`, e.g. select(runs, method="mnist", start="scratch")."""
    return [run for run in runs if run.matches(where)]


def over_runs(runs: Iterable[Run], metric: str, **where) -> dict:
    """`summarise` of `metric` over the runs matching `where`; "of" counts those runs, "n" the ones with a value
    (a run that never held a threshold has none)."""
    chosen = select(runs, **where)
    return {**summarise(run.metrics.get(metric) for run in chosen), "of": len(chosen)}


def compare(runs: Iterable[Run], a: Mapping, b: Mapping, metric: str, paired_by: str = "seed",
            test_share: float | None = None) -> dict | None:
    """`metric`, runs matching `a` minus runs matching `b`, matched on `paired_by` ("seed" or "fold"; unmatched runs
    are left out): the paired t-test over seeds, the corrected resampled t-test over folds (`test_share`: n_test /
    n_train of a fold). None where there is no pair, or where a paired run has no value (a threshold not held by
    every run is not compared). The test carries what it compared, so it reads on its own."""
    first, second = (_by_pair(select(runs, **where), paired_by) for where in (a, b))
    pairs = sorted(first.keys() & second.keys())
    values = [(first[key].metrics.get(metric), second[key].metrics.get(metric)) for key in pairs]
    if not pairs or any(x is None or y is None for x, y in values):
        return None
    if paired_by == "fold":
        if test_share is None:
            raise ValueError("folds share training images: give test_share (n_test / n_train) for the corrected test")
        test = corrected_resampled_t_test(*zip(*values), test_share)
    else:
        test = paired_t_test(*zip(*values))
    return {"a": dict(a), "b": dict(b), "metric": metric, "paired_by": paired_by, "pairs": pairs, **test}


def _by_pair(runs: list[Run], paired_by: str) -> dict:
    keyed = {getattr(run, paired_by): run for run in runs}
    if len(keyed) != len(runs):
        raise ValueError(f"{len(runs)} runs share {len(keyed)} values of {paired_by}: say which runs to compare")
    return keyed


def readme_rows(rows: list[tuple[str, str]], machine: str, task: str, budget: str) -> list[dict]:
    """README's rows of a task: each (what, value) with the command and the machine behind it."""
    command = f"make reproduce  # {task}.ipynb" if budget == "full" else "PLAYMNIST_BUDGET=quick ..."
    return [{"what": what, "value": value, "command": command, "machine": machine} for what, value in rows]
