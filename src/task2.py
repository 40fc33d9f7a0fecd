"""Task 2: does pretraining on trainPart1's 400 digit drawings help a network learn MNIST?

The experiment: pretrain on the digit classes 0-9 of trainPart1 (preprocessed to MNIST's
convention), then train on MNIST from (a) that network, (b) random initialisation and (c) the
Task 1 62-class network when its checkpoint exists; same architecture, recipe and budget, several
seeds each, paired by seed. 5,000 of MNIST's training images (a seeded, stratified draw) are held
out as validation for every choice; the test set is only measured. `run_experiment` returns
everything the notebook shows and is what `python -m src train task2` runs.
"""
from __future__ import annotations

import copy
import time
from dataclasses import replace

import numpy as np
import torch

from . import analysis
from .augment import AugmentConfig
from .checkpoints import network_from_task1
from .classes import DIGIT_CHARACTERS
from .datasets import load_trainpart1
from .mnist import load_mnist_splits
from .model import ModelConfig, build_model
from .runs import checkpoint_dir, save_results, standin_allowed
from .splits import stratified_split, stratified_subset
from .train import LabelledImages, TrainConfig, finished_checkpoint, predict_logits, train

# ----------------------------------------------------------------------------- hyperparameters
# One table for the task. Budgets change only how much is run, never the recipe's nature.
MODEL = ModelConfig(num_classes=10, geometry_features=0, widths=(24, 48, 96), head_dropout=0.1)

PRETRAIN = TrainConfig(
    epochs=100,                 # 400 images: 6 steps an epoch, 600 steps in all
    batch_size=64,
    optimizer="sgd", learning_rate=0.05, momentum=0.9, weight_decay=5e-4, warmup_fraction=0.2,
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
              "sweep_sizes": [100, 1000], "sweep_seeds": 1, "sweep_min_steps": 30, "evaluate_every_steps": 10},
    "full": {"seeds": 5, "mnist_train_images": None, "test_images": None, "mnist_epochs": MNIST_RECIPE.epochs,
             "pretrain_epochs": PRETRAIN.epochs, "sweep_sizes": [100, 1000, 10000], "sweep_seeds": 3,
             "sweep_min_steps": 600, "evaluate_every_steps": MNIST_RECIPE.evaluate_every_steps},
}
VALIDATION_IMAGES = 5000
TRAIN_SAMPLE_IMAGES = 5000      # a fixed sample of the training images, measured like the validation set
THRESHOLDS = (0.98, 0.99, 0.995)
EARLY_STEPS = (100, 500)
STARTS = ("pretrained", "scratch", "task1")  # (a), (b), (c)
SWEEP_SUBSET_SEED = 100         # subset k of the sweep is drawn with seed 100 + k, apart from the training seeds


# ----------------------------------------------------------------------------- steps

def digit_drawings(budget: str | None = None) -> tuple[LabelledImages, object]:
    """The 400 digit drawings of trainPart1 (classes 0-9), in MNIST's convention."""
    characters = load_trainpart1(allow_standin=standin_allowed(budget))
    digits = characters.labels < len(DIGIT_CHARACTERS)
    return LabelledImages(characters.images[digits], characters.labels[digits]), characters.source


def pretrain_on_digits(budget: str, seed: int = 0, progress: bool | None = None):
    """Train the network on the 400 digits; returns the result and its zero-shot MNIST test accuracy."""
    digits, source = digit_drawings(budget)
    config = replace(PRETRAIN, epochs=BUDGETS[budget]["pretrain_epochs"], seed=seed)
    result = train(build_model(MODEL, seed=seed), digits, config, progress=progress, description="pretrain on 400 digits")
    return result, source


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
    """One MNIST run: per-epoch metrics on a fixed sample of the training images, the validation and
    the test set (all measured alike: evaluation mode, no augmentation, plain cross-entropy), and
    test accuracy every N steps."""
    initial = {name: value.detach().clone() for name, value in network.state_dict().items()}
    train_sample = stratified_subset(train_set, TRAIN_SAMPLE_IMAGES, seed=0)
    result = train(network, train_set, config,
                   evaluation_sets={"train_sample": train_sample, "validation": validation, "test": test},
                   step_evaluation_sets={"test": test}, progress=progress, description=description)
    logits = predict_logits(result.model, test.images).cpu()
    probabilities = torch.softmax(logits, 1)
    return result, {
        "final_test_accuracy": result.history[-1]["test_accuracy"],
        "final_validation_accuracy": result.history[-1]["validation_accuracy"],
        # Measured like with like: the training-loop loss is label-smoothed and on augmented images.
        "generalisation_gap": result.history[-1]["validation_loss"] - result.history[-1]["train_sample_loss"],
        "accuracy_gap": result.history[-1]["train_sample_accuracy"] - result.history[-1]["validation_accuracy"],
        "expected_calibration_error": analysis.expected_calibration_error(probabilities, test.labels),
        "reliability": analysis.reliability_bins(probabilities, test.labels),
        "reached": {str(t): analysis.first_reaching(result.step_evaluations, "test_accuracy", t) for t in THRESHOLDS},
        "accuracy_after_steps": {str(s): analysis.value_at_step(result.step_evaluations, "test_accuracy", s) for s in EARLY_STEPS},
        "layer_change": analysis.relative_weight_change(initial, result.model.state_dict()),
        "history": result.history, "step_evaluations": result.step_evaluations,
        "train_seconds": result.history[-1]["wall_seconds"],
    }


def mnist_sets(budget: str):
    """Train/validation/test for a budget: the quick budget trains and measures on subsets."""
    settings = BUDGETS[budget]
    train_set, validation, test, source = load_mnist_splits(VALIDATION_IMAGES)
    return (stratified_subset(train_set, settings["mnist_train_images"]),
            stratified_subset(validation, settings["test_images"]),
            stratified_subset(test, settings["test_images"]), source)


# ----------------------------------------------------------------------------- the experiment

def run_experiment(budget: str, progress: bool | None = None) -> dict:
    settings = BUDGETS[budget]
    started = time.perf_counter()
    pretrained_result, digits_source = pretrain_on_digits(budget, seed=0, progress=progress)
    pretrained = pretrained_result.model.cpu()
    train_set, validation, test, mnist_source = mnist_sets(budget)
    zero_shot = analysis.accuracy(predict_logits(pretrained, test.images).argmax(1).cpu(), test.labels)
    checkpoints = checkpoint_dir(budget)
    finished_checkpoint(checkpoints / "task2_digits_pretrained.pt", pretrained_result,
                        {"task": "task2", "classes": DIGIT_CHARACTERS, "preprocessing": "mnist",
                         "data": digits_source.describe(), "metrics": {"mnist_test_accuracy_zero_shot": zero_shot}})
    task1_checkpoint = checkpoint_dir("full") / "task1.pt"
    starts = [s for s in STARTS if s != "task1" or task1_checkpoint.exists()]
    recipe = replace(MNIST_RECIPE, epochs=settings["mnist_epochs"], evaluate_every_steps=settings["evaluate_every_steps"])

    runs = {start: [] for start in starts}
    best = {}
    for seed in range(settings["seeds"]):
        for start in starts:
            network = start_network(start, pretrained, seed, task1_checkpoint)
            result, metrics = train_on_mnist(network, train_set, validation, test, replace(recipe, seed=seed),
                                             progress=progress, description=f"{start} seed {seed}")
            runs[start].append({"seed": seed, **metrics})
            # "Best" is chosen on validation accuracy, never on the test set.
            if start not in best or metrics["final_validation_accuracy"] > best[start][0]:
                best[start] = (metrics["final_validation_accuracy"], result, seed)

    names = {"pretrained": "task2_mnist_pretrained.pt", "scratch": "task2_mnist_scratch.pt",
             "task1": "task2_mnist_from_task1.pt"}
    for start, (_, result, seed) in best.items():
        finished_checkpoint(checkpoints / names[start], result,
                            {"task": "task2", "classes": DIGIT_CHARACTERS, "preprocessing": "mnist", "start": start,
                             "seed": seed, "data": mnist_source.describe(),
                             "metrics": {k: v for k, v in runs[start][seed].items()
                                         if k in ("final_test_accuracy", "final_validation_accuracy",
                                                  "expected_calibration_error")}})

    sweep = data_size_sweep(budget, pretrained, train_set, validation, test, progress)
    results = {
        "budget": budget, "data": [digits_source.describe(), mnist_source.describe()],
        "pretrain": {"history": pretrained_result.history, "mnist_test_accuracy_zero_shot": zero_shot},
        "recipe": recipe.to_dict(), "pretrain_recipe": replace(PRETRAIN, epochs=settings["pretrain_epochs"]).to_dict(),
        "runs": runs, "sweep": sweep, "device": pretrained_result.device, "mnist_train_images": len(train_set),
        "total_seconds": time.perf_counter() - started,
    }
    results["summary"] = summarise(results)
    results["headline"] = headline_rows(results, budget)
    save_results("task2", budget, results)
    return results


def data_size_sweep(budget: str, pretrained, train_set, validation, test, progress: bool) -> list[dict]:
    """Pretrained vs scratch on MNIST subsets; small subsets get more epochs (a minimum step count)."""
    settings = BUDGETS[budget]
    rows = []
    for size in settings["sweep_sizes"]:
        if size >= len(train_set):
            continue
        for seed in range(settings["sweep_seeds"]):
            keep, _ = stratified_split(train_set.labels, 1 - size / len(train_set), seed=SWEEP_SUBSET_SEED + seed)
            subset = train_set.subset(keep)
            steps_per_epoch = max(len(subset) // MNIST_RECIPE.batch_size, 1)
            epochs = max(settings["mnist_epochs"], -(-settings["sweep_min_steps"] // steps_per_epoch))
            config = replace(MNIST_RECIPE, epochs=epochs, seed=seed, evaluate_every_steps=0)
            for start in ("pretrained", "scratch"):
                network = start_network(start, pretrained, seed)
                result = train(network, subset, config, progress=progress, description=f"{size} images, {start}, seed {seed}")
                accuracy = analysis.accuracy(predict_logits(result.model, test.images).argmax(1).cpu(), test.labels)
                rows.append({"size": size, "start": start, "seed": seed, "epochs": epochs, "test_accuracy": accuracy})
    return rows


# ----------------------------------------------------------------------------- summaries

def summarise(results: dict) -> dict:
    runs = results["runs"]
    summary = {}
    for start, rows in runs.items():
        summary[start] = {
            "final_test_accuracy": analysis.summarise([r["final_test_accuracy"] for r in rows]),
            "expected_calibration_error": analysis.summarise([r["expected_calibration_error"] for r in rows]),
            "generalisation_gap": analysis.summarise([r["generalisation_gap"] for r in rows]),
            "accuracy_gap": analysis.summarise([r["accuracy_gap"] for r in rows]),
            "images_per_second": analysis.summarise([float(np.median([h["images_per_second"] for h in r["history"]]))
                                                     for r in rows]),
            "train_seconds": analysis.summarise([r["train_seconds"] for r in rows]),
            "reached": {t: {"reached_in": sum(r["reached"][t] is not None for r in rows), "of": len(rows),
                            "steps": analysis.summarise([r["reached"][t]["step"] for r in rows if r["reached"][t]]),
                            "wall_seconds": analysis.summarise([r["reached"][t]["wall_seconds"] for r in rows if r["reached"][t]])}
                        for t in map(str, THRESHOLDS)},
            "accuracy_after_steps": {s: analysis.summarise([r["accuracy_after_steps"][s] for r in rows])
                                     for s in map(str, EARLY_STEPS)},
        }
    for start in ("pretrained", "task1"):
        if start in runs and "scratch" in runs:
            summary[f"{start}_minus_scratch"] = paired_comparison(runs[start], runs["scratch"])
    return summary


def paired_comparison(first: list[dict], second: list[dict]) -> dict:
    """Paired t-tests, seed by seed, of one condition against another: final accuracy, accuracy
    after the early step counts, and optimizer steps to each threshold (where every run reached it)."""
    paired = {"final_test_accuracy": analysis.paired_t_test([r["final_test_accuracy"] for r in first],
                                                            [r["final_test_accuracy"] for r in second])}
    for steps in map(str, EARLY_STEPS):
        paired[f"accuracy_after_{steps}_steps"] = analysis.paired_t_test(
            [r["accuracy_after_steps"][steps] or 0.0 for r in first], [r["accuracy_after_steps"][steps] or 0.0 for r in second])
    for threshold in map(str, THRESHOLDS):
        if all(r["reached"][threshold] for r in first + second):
            paired[f"steps_to_{threshold}"] = analysis.paired_t_test([r["reached"][threshold]["step"] for r in first],
                                                                     [r["reached"][threshold]["step"] for r in second])
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
        return "not every run reached 99 %, so steps to 99 % are not compared."
    return (f"{steps['mean_difference']:+.0f} steps to 99 % (paired, p = {steps['p_value']:.3f}). "
            + verdict(steps, subject, higher_is_better=False))


def reached_text(start_summary: dict, threshold: str) -> str:
    reached = start_summary["reached"][threshold]
    return (f"{reached['wall_seconds']['mean']:.0f} s / {reached['steps']['mean']:.0f} steps "
            f"({reached['reached_in']}/{reached['of']} runs)")


def mean_confidence(run: dict) -> float:
    """Mean top-class probability on the test set, from a run's reliability bins."""
    bins = run["reliability"]
    return sum(b["count"] * b["confidence"] for b in bins) / sum(b["count"] for b in bins)


def headline_rows(results: dict, budget: str) -> list[dict]:
    command = "make reproduce  # task2.ipynb, full budget" if budget == "full" else "PLAYMNIST_BUDGET=quick ..."
    rows = []
    labels = {"pretrained": "MNIST test accuracy, from the 400-digit pretrained network",
              "scratch": "MNIST test accuracy, from random initialisation",
              "task1": "MNIST test accuracy, from the Task 1 network"}
    for start, label in labels.items():
        if start in results["summary"]:
            summary = results["summary"][start]["final_test_accuracy"]
            rows.append({"what": label, "value": f"{100 * summary['mean']:.2f} ± {100 * summary['std']:.2f} % (n={summary['n']})",
                         "command": command, "machine": results["device"]})
    paired = results["summary"].get("pretrained_minus_scratch", {}).get("final_test_accuracy")
    if paired:
        rows.append({"what": "pretrained minus scratch, paired by seed",
                     "value": f"{100 * paired['mean_difference']:+.3f} points, p = {paired['p_value']:.2f}",
                     "command": command, "machine": results["device"]})
    steps = {start: results["summary"][start]["reached"]["0.99"]["steps"] for start in labels if start in results["summary"]}
    if steps:
        rows.append({"what": "optimizer steps (batch 128) to 99 % test accuracy: " + " / ".join(steps),
                     "value": " / ".join(f"{s['mean']:.0f} ± {s['std']:.0f}" for s in steps.values()),
                     "command": command, "machine": results["device"]})
    return rows
