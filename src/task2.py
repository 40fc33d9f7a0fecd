"""Task 2: does pretraining on trainPart1's 400 digit drawings help a network learn MNIST?

The experiment: pretrain on the digit classes 0-9 of trainPart1 (preprocessed to MNIST's convention), then train on
MNIST from (a) that network, (b) random initialisation and (c) the Task 1 62-class network when its checkpoint
exists; same architecture, recipe and budget, several seeds each, paired by seed, with one pretraining run per seed
(so each paired difference includes pretraining's own variance). 5,000 of MNIST's training images (a seeded,
stratified draw) are held out as validation for every choice and for convergence; the test set is only measured.
`run_experiment` returns everything the notebook shows and is what `python -m src train task2` runs.
"""
from __future__ import annotations

import copy
import time
from dataclasses import replace

import numpy as np
import torch

from . import analysis
from .augment import AugmentConfig
from .checkpoints import checkpoint_identity, network_from_task1
from .classes import DIGIT_CHARACTERS
from .datasets import load_trainpart1
from .mnist import load_mnist_splits
from .model import ModelConfig, build_model
from .runs import checkpoint_dir, save_results, standin_allowed
from .splits import stratified_sample, stratified_subset
from .train import LabelledImages, TrainConfig, finished_checkpoint, predict_logits, train

# ----------------------------------------------------------------------------- hyperparameters
# One table for the task. Budgets change only how much is run, never the recipe's nature.
MODEL = ModelConfig(num_classes=10, geometry_features=0, widths=(24, 48, 96), head_dropout=0.1)

PRETRAIN = TrainConfig(
    epochs=100,                 # 400 images: 6 steps an epoch, 600 steps in all
    batch_size=64,
    optimizer="sgd", learning_rate=0.02, momentum=0.9, weight_decay=5e-4, warmup_fraction=0.2,
    # peak 0.02: at 0.05 the loss climbed back several-fold mid-warmup (task2.ipynb section 3 reruns that)
    label_smoothing=0.1,        # Szegedy et al. 2016; also softens the digits' class boundaries for transfer
    augment=AugmentConfig(rotate_degrees=12, shear=0.2, scale=(0.85, 1.15), translate_pixels=2,
                          elastic_pixels=1.0),  # as Task 1: 40 writers need strong augmentation
)

MNIST_RECIPE = TrainConfig(
    epochs=8,                   # one-cycle over 8 epochs of 55,000 images
    batch_size=128,
    optimizer="sgd", learning_rate=0.1, momentum=0.9, weight_decay=5e-4, warmup_fraction=0.2,
    label_smoothing=0.1,
    augment=AugmentConfig(rotate_degrees=10, shear=0.15, scale=(0.9, 1.1), translate_pixels=2),
    evaluate_every_steps=100,   # test accuracy every 100 steps: convergence curves and times
)

BUDGETS = {
    # quick: proves every cell runs on 2 CPU cores in minutes; its numbers mean nothing.
    "quick": {"seeds": 2, "mnist_train_images": 4000, "test_images": 2000, "mnist_epochs": 1, "pretrain_epochs": 10,
              "sweep_sizes": [100, 1000], "sweep_seeds": 2, "sweep_min_steps": 30, "evaluate_every_steps": 10},
    "full": {"seeds": 5, "mnist_train_images": None, "test_images": None, "mnist_epochs": MNIST_RECIPE.epochs,
             "pretrain_epochs": PRETRAIN.epochs, "sweep_sizes": [100, 1000, 10000], "sweep_seeds": 5,
             "sweep_min_steps": 600, "evaluate_every_steps": MNIST_RECIPE.evaluate_every_steps},
    # Both: the sweep's largest size is all training images, read from the main runs (same seeds, same pairs).
}
VALIDATION_IMAGES = 5000
TRAIN_SAMPLE_IMAGES = 5000      # a fixed sample of the training images, measured like the validation set
THRESHOLDS = (0.98, 0.99, 0.995)
EARLY_STEPS = (30, 100, 300)    # validation accuracy after this many steps: the first steps, compared
DENSE_EVALUATION = range(10, 301, 10)  # validation accuracy every 10 steps over the first 300 (then every 100)
PROBE_IMAGES = 5000             # MNIST training images a linear probe is fitted on (scored on the validation set)
PROBE_RIDGE = 1.0               # ridge penalty of the least-squares probe, on standardised features
SPIKING_LEARNING_RATE = 0.05   # PRETRAIN's earlier peak, rerun in the notebook to show why it was lowered
STARTS = ("pretrained", "scratch", "task1")  # (a), (b), (c)
SWEEP_SUBSET_SEED = 100         # subset k of the sweep is drawn with seed 100 + k, apart from the training seeds


# ----------------------------------------------------------------------------- steps

def digit_drawings(budget: str | None = None) -> tuple[LabelledImages, object]:
    """The 400 digit drawings of trainPart1 (classes 0-9), in MNIST's convention."""
    characters = load_trainpart1(allow_standin=standin_allowed(budget))
    digits = characters.labels < len(DIGIT_CHARACTERS)
    return LabelledImages(characters.images[digits], characters.labels[digits]), characters.source


def start_network(start: str, pretrained: torch.nn.Module | None, seed: int, task1_checkpoint=None) -> torch.nn.Module:
    if start == "scratch":
        return build_model(MODEL, seed=seed)
    if start == "pretrained":
        return copy.deepcopy(pretrained)
    if start == "task1":
        return network_from_task1(task1_checkpoint, seed)
    raise ValueError(f"unknown start {start!r}")


def train_on_mnist(network: torch.nn.Module, train_set: LabelledImages, validation: LabelledImages,
                   test: LabelledImages, config: TrainConfig, progress: bool | None = None, description: str = "mnist"):
    """One MNIST run: per-epoch metrics on a fixed sample of the training images, the validation and the test set
    (all measured alike: evaluation mode, no augmentation, plain cross-entropy), and validation accuracy every 10
    steps over the first 300, then every N: convergence is read from the validation set, never the test set."""
    initial = {name: value.detach().clone() for name, value in network.state_dict().items()}
    train_sample = stratified_subset(train_set, TRAIN_SAMPLE_IMAGES, seed=0)
    result = train(network, train_set, config,
                   evaluation_sets={"train_sample": train_sample, "validation": validation, "test": test},
                   step_evaluation_sets={"validation": validation}, evaluate_at_steps=DENSE_EVALUATION,
                   progress=progress, description=description)
    probabilities = torch.softmax(predict_logits(result.model, test.images).cpu(), 1)
    last, steps = result.history[-1], result.step_evaluations
    return result, {
        "final_test_accuracy": last["test_accuracy"],
        "final_validation_accuracy": last["validation_accuracy"],
        # Measured like with like: the training-loop loss is label-smoothed and on augmented images.
        "generalisation_gap": last["validation_loss"] - last["train_sample_loss"],
        "accuracy_gap": last["train_sample_accuracy"] - last["validation_accuracy"],
        "expected_calibration_error": analysis.expected_calibration_error(probabilities, test.labels),
        "reliability": analysis.reliability_bins(probabilities, test.labels),
        # Reached = the first evaluation after which validation accuracy stays at or above the level to the end.
        "reached": {str(t): analysis.first_staying_at_or_above(steps, "validation_accuracy", t) for t in THRESHOLDS},
        "accuracy_after_steps": {str(s): analysis.value_at_step(steps, "validation_accuracy", s) for s in EARLY_STEPS},
        "layer_change": analysis.relative_weight_change(initial, result.model.state_dict()),
        "history": result.history, "step_evaluations": steps, "train_seconds": last["wall_seconds"],
    }


def loss_jump(history: list[dict]) -> float:
    """The largest training loss after epoch 5 over the lowest of the first 8 epochs: well above 1, the loss
    climbed back up after it had started to fall."""
    losses = [row["train_loss"] for row in history]
    return max(losses[5:]) / min(losses[:8])


# ----------------------------------------------------------------------------- the experiment

def run_experiment(budget: str, progress: bool | None = None) -> dict:
    settings = BUDGETS[budget]
    started = time.perf_counter()
    digits, digits_source = digit_drawings(budget)
    pretrain_recipe = replace(PRETRAIN, epochs=settings["pretrain_epochs"])
    train_set, validation, test, mnist_source = load_mnist_splits(VALIDATION_IMAGES)
    train_set = stratified_subset(train_set, settings["mnist_train_images"])  # the quick budget uses subsets
    validation, test = (stratified_subset(part, settings["test_images"]) for part in (validation, test))
    pretraining = [train(build_model(MODEL, seed=seed), digits, replace(pretrain_recipe, seed=seed), progress=progress,
                         description=f"pretrain on 400 digits, seed {seed}") for seed in range(settings["seeds"])]
    pretrained = [result.model.cpu() for result in pretraining]  # seed k's MNIST runs start from pretraining run k
    zero_shot = [analysis.accuracy(predict_logits(network, test.images).argmax(1).cpu(), test.labels)
                 for network in pretrained]
    checkpoints = checkpoint_dir(budget)
    metadata = {"task": "task2", "classes": DIGIT_CHARACTERS, "preprocessing": "mnist"}
    finished_checkpoint(checkpoints / "task2_digits_pretrained.pt", pretraining[0],
                        {**metadata, "data": digits_source.describe(), "seed": 0,
                         "metrics": {"mnist_test_accuracy_zero_shot": zero_shot[0]}})
    task1_checkpoint = checkpoint_dir("full") / "task1.pt"
    starts = [s for s in STARTS if s != "task1" or task1_checkpoint.exists()]
    recipe = replace(MNIST_RECIPE, epochs=settings["mnist_epochs"],
                     evaluate_every_steps=settings["evaluate_every_steps"])

    runs, best = {start: [] for start in starts}, {}
    for seed in range(settings["seeds"]):
        for start in starts:
            result, metrics = train_on_mnist(start_network(start, pretrained[seed], seed, task1_checkpoint), train_set,
                                             validation, test, replace(recipe, seed=seed), progress=progress,
                                             description=f"{start} seed {seed}")
            # What the start itself cost here: pretraining for (a); Task 1's network was trained elsewhere.
            metrics["pretraining_seconds"] = {"pretrained": pretraining[seed].history[-1]["wall_seconds"],
                                              "scratch": 0.0}.get(start)
            runs[start].append({"seed": seed, **metrics})
            # "Best" is chosen on validation accuracy, never on the test set.
            if start not in best or metrics["final_validation_accuracy"] > best[start][0]:
                best[start] = (metrics["final_validation_accuracy"], result, seed)

    for start, (_, result, seed) in best.items():  # task2_mnist_pretrained.pt, _scratch.pt, _from_task1.pt
        name = "from_task1" if start == "task1" else start
        finished_checkpoint(checkpoints / f"task2_mnist_{name}.pt", result, {
            **metadata, "start": start, "seed": seed, "data": mnist_source.describe(),
            "metrics": {k: runs[start][seed][k]
                        for k in ("final_test_accuracy", "final_validation_accuracy", "expected_calibration_error")}})

    probe_fit = stratified_subset(train_set, PROBE_IMAGES, seed=0)

    def probe(network) -> dict[str, float]:  # each stage's linear separability of MNIST, before any MNIST training
        return analysis.linear_probe_accuracies(network, probe_fit, validation, PROBE_RIDGE)
    results = {
        "budget": budget, "data": [digits_source.describe(), mnist_source.describe()],
        "pretrain": [{"seed": seed, "history": result.history, "mnist_test_accuracy_zero_shot": accuracy}
                     for seed, (result, accuracy) in enumerate(zip(pretraining, zero_shot))],
        "recipe": recipe.to_dict(), "pretrain_recipe": pretrain_recipe.to_dict(),
        "runs": runs, "sweep": data_size_sweep(budget, pretrained, train_set, runs, test, progress),
        "probes": {"random": [probe(build_model(MODEL, seed=seed)) for seed in range(settings["seeds"])],
                   "pretrained": [probe(network) for network in pretrained],
                   "task1": [probe(network_from_task1(task1_checkpoint, 0))] if "task1" in starts else []},
        "task1_start": checkpoint_identity(task1_checkpoint) if "task1" in starts else None,
        "device": pretraining[0].device, "mnist_train_images": len(train_set),
        "total_seconds": time.perf_counter() - started,
    }
    results["summary"] = summarise(results)
    results["headline"] = headline_rows(results, budget)
    save_results("task2", budget, results)
    return results


def data_size_sweep(budget: str, pretrained: list, train_set, runs: dict, test, progress: bool) -> list[dict]:
    """Pretrained vs scratch on MNIST subsets, seed k from pretraining run k; small subsets get more epochs (a
    minimum step count). The largest size, all training images, is the main runs' (the same seeds and pairs)."""
    settings = BUDGETS[budget]
    rows = []
    for size in [size for size in settings["sweep_sizes"] if size < len(train_set)]:
        for seed in range(settings["sweep_seeds"]):
            keep = stratified_sample(train_set.labels, size, seed=SWEEP_SUBSET_SEED + seed)
            subset = train_set.subset(keep)
            steps_per_epoch = max(len(subset) // MNIST_RECIPE.batch_size, 1)
            epochs = max(settings["mnist_epochs"], -(-settings["sweep_min_steps"] // steps_per_epoch))
            config = replace(MNIST_RECIPE, epochs=epochs, seed=seed, evaluate_every_steps=0)
            for start in ("pretrained", "scratch"):
                result = train(start_network(start, pretrained[seed], seed), subset, config, progress=progress,
                               description=f"{size} images, {start}, seed {seed}")
                accuracy = analysis.accuracy(predict_logits(result.model, test.images).argmax(1).cpu(), test.labels)
                rows.append({"size": size, "start": start, "seed": seed, "epochs": epochs, "test_accuracy": accuracy})
    return rows + [{"size": len(train_set), "start": start, "seed": run["seed"], "epochs": settings["mnist_epochs"],
                    "test_accuracy": run["final_test_accuracy"]}
                   for start in ("pretrained", "scratch") for run in runs[start][:settings["sweep_seeds"]]]


# ----------------------------------------------------------------------------- summaries (Task 3 shares them)

def over_seeds(runs: list[dict], value) -> dict:
    """analysis.summarise of `value` (a key, or a function of a run) over a condition's runs, one per seed."""
    return analysis.summarise([value(r) if callable(value) else r[value] for r in runs])


def paired_by_seed(first: list[dict], second: list[dict], value) -> dict:
    """Paired t-test of `value` (a key, or a function of a run) between two conditions' runs, seed by seed."""
    first, second = ([value(r) if callable(value) else r[value] for r in runs] for runs in (first, second))
    return analysis.paired_t_test(first, second)


def reached_summary(runs: list[dict], thresholds, **measures) -> dict:
    """Per threshold: how many runs reached it, and over those runs each measure (a function of run and threshold)."""
    return {t: {"reached_in": sum(r["reached"][t] is not None for r in runs), "of": len(runs),
                **{name: analysis.summarise([measure(r, t) for r in runs if r["reached"][t]])
                   for name, measure in measures.items()}}
            for t in map(str, thresholds)}


def summarise(results: dict) -> dict:
    runs = results["runs"]
    summary = {}
    for start, rows in runs.items():
        summary[start] = {
            **{key: over_seeds(rows, key)
               for key in ("final_test_accuracy", "expected_calibration_error", "generalisation_gap", "accuracy_gap")},
            "images_per_second": over_seeds(
                rows, lambda r: float(np.median([h["images_per_second"] for h in r["history"]]))),
            "train_seconds": over_seeds(rows, "train_seconds"),
            "reached": reached_summary(rows, THRESHOLDS, steps=lambda r, t: r["reached"][t]["step"],
                                       wall_seconds=lambda r, t: r["reached"][t]["wall_seconds"],
                                       wall_seconds_with_pretraining=seconds_with_pretraining),
            "accuracy_after_steps": {s: over_seeds(rows, lambda r: r["accuracy_after_steps"][s])
                                     for s in map(str, EARLY_STEPS)},
        }
    for start in ("pretrained", "task1"):
        if start in runs and "scratch" in runs:
            summary[f"{start}_minus_scratch"] = paired_comparison(runs[start], runs["scratch"])
    summary["zero_shot"] = over_seeds(results["pretrain"], "mnist_test_accuracy_zero_shot")
    summary["sweep"] = {}
    for size in sorted({row["size"] for row in results["sweep"]}):
        by_start = {start: sorted((r for r in results["sweep"] if r["size"] == size and r["start"] == start),
                                  key=lambda r: r["seed"]) for start in ("pretrained", "scratch")}
        summary["sweep"][str(size)] = {**{start: over_seeds(rows, "test_accuracy") for start, rows in by_start.items()},
                                       "pretrained_minus_scratch": paired_by_seed(*by_start.values(), "test_accuracy")}
    probes = results["probes"]
    summary["probes"] = {stage: {**{network: over_seeds(rows, stage) for network, rows in probes.items() if rows},
                                 "pretrained_minus_random": paired_by_seed(probes["pretrained"], probes["random"], stage)}
                         for stage in probes["random"][0]}
    return summary


def seconds_with_pretraining(run: dict, threshold: str) -> float | None:
    """Training seconds to a level plus what the start cost here (None for the Task 1 network, trained elsewhere)."""
    extra = run["pretraining_seconds"]
    return None if extra is None else run["reached"][threshold]["wall_seconds"] + extra


def paired_comparison(first: list[dict], second: list[dict]) -> dict:
    """Paired t-tests, seed by seed, of one condition against another: final accuracy, accuracy
    after the early step counts, and optimizer steps to each threshold (where every run reached it)."""
    paired = {"final_test_accuracy": paired_by_seed(first, second, "final_test_accuracy")}
    for steps in map(str, EARLY_STEPS):
        paired[f"accuracy_after_{steps}_steps"] = paired_by_seed(
            first, second, lambda r: r["accuracy_after_steps"][steps] or 0.0)
    for threshold in map(str, THRESHOLDS):
        if all(r["reached"][threshold] for r in first + second):
            paired[f"steps_to_{threshold}"] = paired_by_seed(first, second, lambda r: r["reached"][threshold]["step"])
            if all(r["pretraining_seconds"] is not None for r in first + second):
                paired[f"seconds_with_pretraining_to_{threshold}"] = paired_by_seed(
                    first, second, lambda r: seconds_with_pretraining(r, threshold))
    return paired


def verdict(paired_test: dict, subject: str, higher_is_better: bool = True) -> str:
    """The sentence a conclusion may state about a paired difference: resolved at p < 0.05, or not."""
    if not paired_test["p_value"] < 0.05:
        return f"With {paired_test['n']} seeds this difference is not distinguishable from zero (p >= 0.05)."
    better = (paired_test["mean_difference"] > 0) == higher_is_better
    return f"The seeds resolve this difference (p < 0.05): {subject} {'helps' if better else 'hurts'}."


def steps_text(comparison: dict, subject: str) -> str:
    steps = comparison.get("steps_to_0.99")
    if not steps:
        return "not every run stayed at or above 99 %, so steps to 99 % are not compared."
    return (f"{steps['mean_difference']:+.0f} steps until validation accuracy stays >= 99 % (paired, "
            f"p = {steps['p_value']:.3f}). "
            + verdict(steps, subject, higher_is_better=False))


def reached_text(start_summary: dict, threshold: str) -> str:
    reached = start_summary["reached"][threshold]
    return (f"{reached['wall_seconds']['mean']:.0f} s / {reached['steps']['mean']:.0f} steps "
            f"({reached['reached_in']}/{reached['of']} runs)")


def mean_confidence(run: dict) -> float:
    """Mean top-class probability on the test set, from a run's reliability bins."""
    bins = run["reliability"]
    return sum(b["count"] * b["confidence"] for b in bins) / sum(b["count"] for b in bins)


def percent_over_seeds(summary: dict) -> str:
    return f"{100 * summary['mean']:.2f} ± {100 * summary['std']:.2f} % (n={summary['n']})"


def headline(rows: list[tuple[str, str]], results: dict, command: str) -> list[dict]:
    """The README's headline rows: each (what, value) with the command and the machine behind it."""
    return [{"what": what, "value": value, "command": command, "machine": results["device"]} for what, value in rows]


def headline_rows(results: dict, budget: str) -> list[dict]:
    summary = results["summary"]
    labels = {"pretrained": "MNIST test accuracy, from the 400-digit pretrained network",
              "scratch": "MNIST test accuracy, from random initialisation",
              "task1": "MNIST test accuracy, from the Task 1 network"}
    rows = [(label, percent_over_seeds(summary[start]["final_test_accuracy"]))
            for start, label in labels.items() if start in summary]
    paired = summary.get("pretrained_minus_scratch", {}).get("final_test_accuracy")
    if paired:
        rows.append(("pretrained minus scratch, paired by seed",
                     f"{100 * paired['mean_difference']:+.3f} points, p = {paired['p_value']:.2f}"))
    steps = {start: summary[start]["reached"]["0.99"]["steps"] for start in labels if start in summary}
    if steps:
        rows.append(("optimizer steps (batch 128) until validation accuracy stays >= 99 %: " + " / ".join(steps),
                     " / ".join(f"{s['mean']:.0f} ± {s['std']:.0f}" for s in steps.values())))
    smallest = min(summary["sweep"], key=int)
    paired = summary["sweep"][smallest]["pretrained_minus_scratch"]
    rows.append((f"with {int(smallest):,} MNIST training images: pretrained minus scratch, paired by seed",
                 f"{100 * paired['mean_difference']:+.2f} points, p = {paired['p_value']:.2f} (n={paired['n']})"))
    return headline(rows, results, "make reproduce  # task2.ipynb, full budget" if budget == "full"
                    else "PLAYMNIST_BUDGET=quick ...")
