"""Task 2: does pretraining on trainPart1's 400 digit drawings help a network learn MNIST?

Pretrain on the digit classes 0-9 of trainPart1 (preprocessed to MNIST's convention), then train on MNIST from three
starts: `digits400` (that pretrained network), `scratch` (random initialisation) and `task1` (the Task 1 network
under a new head), same architecture, several seeds, paired by seed, one pretraining run per seed (so each paired
difference includes pretraining's own variance). Each way of training on MNIST (`recipes.METHODS`) runs from
digits400 and from scratch alike, so a difference is pretraining's alone. A data-size sweep gives every start, at
every size, the peak learning rate its validation accuracy chooses from a small grid. 5,000 MNIST training images are
held out as validation for every choice and for convergence; the test set is read once per final network. Every run
is one row of `results["runs"]` (`analysis.Run`); the notebook's statements are queries over those rows.
"""
from __future__ import annotations

import copy
import time
from dataclasses import replace

import numpy as np
import torch

from . import analysis
from .analysis import Run, compare, config_digest, runs_of
from .checkpoints import checkpoint_identity, finished_checkpoint, start_network
from .data.classes import DIGIT_CHARACTERS
from .data.datasets import load_trainpart1
from .data.labelled import LabelledImages
from .data.mnist import load_mnist_splits
from .data.splits import stratified_sample, stratified_subset
from .model import build_model
from .recipes import (BACKBONE_LEARNING_RATE_SCALE, DIGIT_MODEL, FINETUNE_PEAK, METHODS, MNIST_RECIPE, PRETRAIN,
                      PROBE_EPOCHS, PROBE_IMAGES, PROBE_RIDGE, TASK2_BUDGETS, TRAIN_SAMPLE_IMAGES, VALIDATION_IMAGES)
from .resume import SavedProgress, code_digest, restored_result, result_state, source_identity
from .settings import checkpoint_dir, device_name, save_results, standin_allowed
from .train import Evaluation, TrainConfig, TrainResult, predict_logits, train

STARTS = ("scratch", "digits400", "task1")
THRESHOLDS = (0.98, 0.99, 0.995)
EARLY_STEPS = (30, 100, 300)    # validation accuracy after this many steps: the first steps, compared
DENSE_EVALUATION = range(10, 301, 10)  # every 10 steps over a stage's first 300 (then every N)
PROBE_STAGES = ("stage1", "stage2", "stage3")
SWEEP_SUBSET_SEED = 100         # subset k of the sweep is drawn with seed 100 + k, apart from the training seeds


def digit_drawings(budget: str | None = None, preprocessing: str = "mnist") -> tuple[LabelledImages, object]:
    """The 400 digit drawings of trainPart1 (classes 0-9), in MNIST's convention with the strokes as drawn: thinned
    like Task 1's recipe, they read MNIST's validation digits worse zero-shot (explorations/task2_digit_strokes.py)."""
    characters = load_trainpart1(preprocessing=preprocessing, allow_standin=standin_allowed(budget))
    digits = characters.labels < len(DIGIT_CHARACTERS)
    return LabelledImages(characters.images[digits], characters.labels[digits]), characters.source


def stages(method: str, recipe: TrainConfig) -> list[TrainConfig]:
    """The training runs one method makes, in order (see recipes.METHODS)."""
    if method == "recipe":
        return [recipe]
    if method == "backbone_lr_0.1x":
        return [replace(recipe, backbone_learning_rate_scale=BACKBONE_LEARNING_RATE_SCALE)]
    if method == "probe_then_finetune":
        return [replace(recipe, epochs=PROBE_EPOCHS, frozen_backbone=True),
                replace(recipe, epochs=max(recipe.epochs - PROBE_EPOCHS, 1), learning_rate=FINETUNE_PEAK)]
    raise ValueError(f"unknown method {method!r}; use one of {METHODS}")


def starts_of(method: str, starts: list[str]) -> list[str]:
    """Every start runs the recipe; a gentler method runs from digits400 and from scratch, its control."""
    return starts if method == "recipe" else ["scratch", "digits400"]


def train_on_mnist(network, method: str, recipe: TrainConfig, splits: tuple, progress: bool | None = None,
                   description: str = "mnist") -> tuple[TrainResult, dict, dict]:
    """One MNIST run of `method`: per-epoch metrics on a fixed sample of the training images and on the validation
    set (measured alike: evaluation mode, no augmentation, plain cross-entropy), validation accuracy every 10 steps
    over each stage's first 300 steps and every N after (convergence is read from validation, never the test set),
    and the test set once, at the end. Returns the result, the run's metrics and its curves."""
    train_set, validation, test = splits
    initial = {name: value.detach().clone() for name, value in network.state_dict().items()}
    measured = Evaluation(every_epoch={"train_sample": stratified_subset(train_set, TRAIN_SAMPLE_IMAGES, seed=0),
                                       "validation": validation},
                          every_steps={"validation": validation}, at_steps=DENSE_EVALUATION)
    history, steps, releases = [], [], []
    for index, config in enumerate(stages(method, recipe)):
        result = train(network, train_set, config, evaluation=measured, progress=progress,
                       description=f"{description}, stage {index + 1}" if index else description)
        offset = (history[-1]["steps"], history[-1]["wall_seconds"], len(history)) if history else (0, 0.0, 0)
        if history:
            releases.append(offset[0])
        steps += [{**row, "step": row["step"] + offset[0], "wall_seconds": row["wall_seconds"] + offset[1]}
                  for row in result.step_evaluations]
        history += [{**row, "epoch": row["epoch"] + offset[2], "steps": row["steps"] + offset[0],
                     "wall_seconds": row["wall_seconds"] + offset[1]} for row in result.history]
        network = result.model
    result = replace(result, history=history, step_evaluations=steps, config=recipe)
    test_logits = predict_logits(network, test.images).cpu()
    probabilities, last = torch.softmax(test_logits, 1), history[-1]
    reached = {t: analysis.first_staying_at_or_above(steps, "validation_accuracy", t) for t in THRESHOLDS}

    def fall_after(step: int) -> float | None:
        """How far validation accuracy falls below its value at `step` (a release) before the run ends."""
        before = analysis.value_at_step(steps, "validation_accuracy", step)
        later = [row["validation_accuracy"] for row in steps if row["step"] > step] + [last["validation_accuracy"]]
        return None if before is None else before - min(later)
    falls = [fall for fall in map(fall_after, releases) if fall is not None]
    metrics = {
        "final_test_accuracy": analysis.accuracy(test_logits.argmax(1), test.labels),
        "final_validation_accuracy": last["validation_accuracy"],
        # Measured like with like: the training-loop loss is label-smoothed and on augmented images.
        "generalisation_gap": last["validation_loss"] - last["train_sample_loss"],
        "accuracy_gap": last["train_sample_accuracy"] - last["validation_accuracy"],
        "expected_calibration_error": analysis.expected_calibration_error(probabilities, test.labels),
        "mean_confidence": float(probabilities.max(1).values.mean()),
        "images_per_second": float(np.median([row["images_per_second"] for row in history])),
        "train_seconds": last["wall_seconds"],
        # how far validation accuracy falls after the backbone is released (LP-FT), in points of accuracy
        "drop_after_release": max(falls, default=None),
        **{f"steps_to_{t}": r and r["step"] for t, r in reached.items()},
        **{f"seconds_to_{t}": r and r["wall_seconds"] for t, r in reached.items()},
        **{f"accuracy_after_{s}_steps": analysis.value_at_step(steps, "validation_accuracy", s) for s in EARLY_STEPS},
    }
    curves = {"history": history, "step_evaluations": steps, "releases": releases,
              "reliability": analysis.reliability_bins(probabilities, test.labels),
              "layer_change": analysis.relative_weight_change(initial, network.state_dict())}
    return result, metrics, curves


# ----------------------------------------------------------------------------- the experiment

def run_experiment(budget: str, progress: bool | None = None) -> dict:
    """The whole experiment. It continues an interrupted run of the same code, data, budget and machine from the
    last finished seed (`resume.SavedProgress`); results["resumed"] says when it did."""
    settings = TASK2_BUDGETS[budget]
    started = time.perf_counter()
    digits, digits_source = digit_drawings(budget)
    pretrain_recipe = replace(PRETRAIN, epochs=settings.pretrain_epochs)
    train_set, validation, test, mnist_source = load_mnist_splits(VALIDATION_IMAGES)
    train_set = stratified_subset(train_set, settings.mnist_train_images)  # the quick budget uses subsets
    validation, test = (stratified_subset(part, settings.test_images) for part in (validation, test))
    task1_checkpoint = checkpoint_dir("full") / "task1.pt"
    starts = [s for s in STARTS if s != "task1" or task1_checkpoint.exists()]
    recipe = replace(MNIST_RECIPE, epochs=settings.mnist_epochs, evaluate_every_steps=settings.evaluate_every_steps)
    saved_progress = SavedProgress(checkpoint_dir(budget) / "in_progress" / "task2.pt", {
        "task": "task2", "budget": budget, "code": code_digest(), "machine": device_name(), "torch": torch.__version__,
        "data": [source_identity(digits_source), source_identity(mnist_source)],
        "task1_start": checkpoint_identity(task1_checkpoint)["sha256"] if "task1" in starts else None})
    saved = saved_progress.load()
    if saved:
        pretraining = [restored_result(entry, DIGIT_MODEL, replace(pretrain_recipe, seed=seed))
                       for seed, entry in enumerate(saved["pretraining"])]
        runs, histories = [Run.from_dict(row) for row in saved["runs"]], saved["histories"]
        best = {start: (entry["accuracy"], restored_result(entry, DIGIT_MODEL, replace(recipe, seed=entry["seed"])),
                        entry["seed"]) for start, entry in saved["best"].items()}
    else:
        pretraining = [train(build_model(DIGIT_MODEL, seed=seed), digits, replace(pretrain_recipe, seed=seed),
                             progress=progress, description=f"pretrain on 400 digits, seed {seed}")
                       for seed in range(settings.seeds)]
        runs, histories, best = pretraining_rows(pretraining, validation, test, pretrain_recipe), {}, {}
        histories.update({f"pretrain/seed{seed}": {"history": result.history}
                          for seed, result in enumerate(pretraining)})
    digits400 = [result.model.cpu() for result in pretraining]  # seed k's MNIST runs start from pretraining run k
    checkpoints = checkpoint_dir(budget)
    metadata = {"task": "task2", "classes": DIGIT_CHARACTERS, "preprocessing": "mnist"}
    finished_checkpoint(checkpoints / "task2_digits400.pt", pretraining[0], {
        **metadata, "data": digits_source.describe(), "seed": 0, "metrics": {
            key: runs[0].metrics[key] for key in ("zero_shot_validation_accuracy", "zero_shot_test_accuracy")}})

    def save_progress(seeds_done: int) -> None:
        saved_progress.save({
            "seeds_done": seeds_done, "seconds": time.perf_counter() - started + (saved["seconds"] if saved else 0.0),
            "runs": [run.to_dict() for run in runs], "histories": histories,
            "pretraining": [result_state(result) for result in pretraining],
            "best": {start: {**result_state(result), "accuracy": accuracy, "seed": seed}
                     for start, (accuracy, result, seed) in best.items()}})

    if not saved:
        save_progress(0)
    splits = (train_set, validation, test)
    for seed in range(saved["seeds_done"] if saved else 0, settings.seeds):
        pretraining_seconds = {"digits400": pretraining[seed].history[-1]["wall_seconds"], "scratch": 0.0}
        for method in METHODS:
            for start in starts_of(method, starts):
                network = copy.deepcopy(digits400[seed]) if start == "digits400" else start_network(
                    start, seed, DIGIT_MODEL, task1_checkpoint)
                result, metrics, curves = train_on_mnist(network, method, replace(recipe, seed=seed), splits, progress,
                                                         f"{method}, {start}, seed {seed}")
                key = f"{method}/{start}/seed{seed}"
                histories[key] = curves
                runs.append(Run("task2", method, start, seed, history=key, config=config_digest(
                    {"stages": [stage.to_dict() for stage in stages(method, recipe)]}),
                                metrics=with_pretraining_seconds(metrics, pretraining_seconds.get(start))))
                # The saved network of each start is its recipe run with the best validation accuracy.
                if method == "recipe" and (start not in best or metrics["final_validation_accuracy"] > best[start][0]):
                    best[start] = (metrics["final_validation_accuracy"], result, seed)
        save_progress(seed + 1)

    for start, (_, result, seed) in best.items():  # task2_mnist_digits400.pt, _scratch.pt, _task1.pt
        chosen = analysis.select(runs, method="recipe", start=start, seed=seed)[0]
        finished_checkpoint(checkpoints / f"task2_mnist_{start}.pt", result, {
            **metadata, "start": start, "seed": seed, "data": mnist_source.describe(), "metrics": {
                key: chosen.metrics[key] for key in ("final_test_accuracy", "final_validation_accuracy",
                                                     "expected_calibration_error")}})
    runs += data_size_sweep(settings, digits400, splits, progress)
    runs += linear_probes(settings.seeds, digits400, task1_checkpoint if "task1" in starts else None,
                          stratified_subset(train_set, PROBE_IMAGES, seed=0), validation)
    results = {
        "budget": budget, "data": [digits_source.describe(), mnist_source.describe()],
        "recipe": recipe.to_dict(), "pretrain_recipe": pretrain_recipe.to_dict(),
        "methods": {method: [config.to_dict() for config in stages(method, recipe)] for method in METHODS},
        "task1_start": checkpoint_identity(task1_checkpoint) if "task1" in starts else None,
        "device": pretraining[0].device, "mnist_train_images": len(train_set),
        "mnist_validation_images": len(validation), "mnist_test_images": len(test), "digit_drawings": len(digits),
        "runs": runs, "histories": histories,
        "total_seconds": time.perf_counter() - started + (saved["seconds"] if saved else 0.0),
        # an interrupted run continued: how many seeds it had finished, and when
        "resumed": None if not saved else {"seeds": saved["seeds_done"], "saved_at": saved["saved_at"]},
    }
    results["comparisons"] = comparisons(results)
    results["headline"] = summary_rows(results)
    save_results("task2", budget, results)
    saved_progress.remove()
    return results


def with_pretraining_seconds(metrics: dict, pretraining_seconds: float | None) -> dict:
    """What the start itself cost here added to each time to a threshold: pretraining for digits400, nothing for
    scratch; None for task1, whose network was trained elsewhere."""
    return {**metrics, "pretraining_seconds": pretraining_seconds,
            **{f"seconds_with_pretraining_to_{t}": None if pretraining_seconds is None or metrics[f"seconds_to_{t}"]
               is None else metrics[f"seconds_to_{t}"] + pretraining_seconds for t in THRESHOLDS}}


def pretraining_rows(pretraining: list, validation: LabelledImages, test: LabelledImages,
                     recipe: TrainConfig) -> list[Run]:
    """One row per pretraining run: its zero-shot MNIST accuracy (validation, and the test set read once) and cost."""
    rows = []
    for seed, result in enumerate(pretraining):
        network = result.model.cpu()
        zero_shot = {f"zero_shot_{name}_accuracy": analysis.accuracy(
            predict_logits(network, part.images).argmax(1).cpu(), part.labels)
            for name, part in (("validation", validation), ("test", test))}
        rows.append(Run("task2", "pretrain", "scratch", seed, config=config_digest(recipe),
                        history=f"pretrain/seed{seed}",
                        metrics={**zero_shot, "train_seconds": result.history[-1]["wall_seconds"]}))
    return rows


def data_size_sweep(settings, digits400: list, splits: tuple, progress: bool | None) -> list[Run]:
    """digits400 against scratch on MNIST subsets (subset k drawn with seed 100 + k, seed k from pretraining run k;
    small subsets train for at least `sweep_min_steps`). Each start and size chooses its peak learning rate from the
    grid by mean validation accuracy over the first seeds; then every seed trains at it and the test set is read
    once per network. Beside them: a linear read-out of each start's stage 3 fitted on the same subset."""
    train_set, validation, test = splits
    runs = []
    for size in [size for size in settings.sweep_sizes if size < len(train_set)]:
        subsets = [train_set.subset(stratified_sample(train_set.labels, size, seed=SWEEP_SUBSET_SEED + seed))
                   for seed in range(settings.sweep_seeds)]
        epochs = max(settings.mnist_epochs, -(-settings.sweep_min_steps // max(size // MNIST_RECIPE.batch_size, 1)))
        for start in ("digits400", "scratch"):
            def run(seed: int, learning_rate: float):
                config = replace(MNIST_RECIPE, epochs=epochs, seed=seed, learning_rate=learning_rate,
                                 evaluate_every_steps=0)
                network = copy.deepcopy(digits400[seed]) if start == "digits400" else build_model(DIGIT_MODEL, seed)
                model = train(network, subsets[seed], config, progress=progress,
                              description=f"{size} images, {start}, peak {learning_rate}, seed {seed}").model
                return model, analysis.accuracy(predict_logits(model, validation.images).argmax(1).cpu(),
                                                validation.labels)
            tried = {(lr, seed): run(seed, lr) for lr in settings.sweep_learning_rates
                     for seed in range(settings.sweep_choice_seeds)}
            runs += [Run("task2", f"sweep_{size}_choice", start, seed, metrics={
                "learning_rate": lr, "final_validation_accuracy": accuracy})
                for (lr, seed), (_, accuracy) in tried.items()]
            chosen = max(settings.sweep_learning_rates, key=lambda lr: np.mean(
                [tried[lr, seed][1] for seed in range(settings.sweep_choice_seeds)]))
            for seed in range(settings.sweep_seeds):
                model, validation_accuracy = tried.get((chosen, seed)) or run(seed, chosen)
                test_accuracy = analysis.accuracy(predict_logits(model, test.images).argmax(1).cpu(), test.labels)
                probe = analysis.linear_probe_accuracies(
                    digits400[seed] if start == "digits400" else build_model(DIGIT_MODEL, seed), subsets[seed], test,
                    PROBE_RIDGE, stages=("stage3",))["stage3"]
                runs.append(Run("task2", f"sweep_{size}", start, seed, metrics={
                    "learning_rate": chosen, "epochs": epochs, "final_validation_accuracy": validation_accuracy,
                    "final_test_accuracy": test_accuracy, "linear_probe_test_accuracy": probe}))
    return runs


def linear_probes(seeds: int, digits400: list, task1_checkpoint, fit: LabelledImages,
                  score: LabelledImages) -> list[Run]:
    """Each start's linear separability of MNIST before any MNIST training, one row per network (nothing trained
    here): random networks (scratch) and digits400 per seed, the Task 1 network once."""
    def probe(start: str, seed: int, network) -> Run:
        return Run("task2", "linear_probe", start, seed,
                   metrics=analysis.linear_probe_accuracies(network, fit, score, PROBE_RIDGE))
    return ([probe("scratch", seed, build_model(DIGIT_MODEL, seed=seed)) for seed in range(seeds)]
            + [probe("digits400", seed, network) for seed, network in enumerate(digits400)]
            + ([probe("task1", 0, start_network("task1", 0, DIGIT_MODEL, task1_checkpoint))]
               if task1_checkpoint else []))


# ----------------------------------------------------------------------------- queries over the runs

def sweep_sizes(runs: list[Run]) -> list[int]:
    return sorted({int(run.method.split("_")[1]) for run in runs if run.method.startswith("sweep_")})


def comparisons(results: dict) -> list[dict]:
    """The notebook's family of comparisons, each paired by seed (paired t-test) and Holm-corrected together: the
    question first (final accuracy, convergence, early learning, small data, what the starts know), then each gentler
    method from digits400 against the same method from scratch."""
    runs = runs_of(results)
    wanted = [("recipe", start, metric) for start in ("digits400", "task1") for metric in (
        "final_test_accuracy", "steps_to_0.99", "accuracy_after_30_steps", "expected_calibration_error")]
    wanted += [("recipe", "digits400", "seconds_with_pretraining_to_0.99")]
    wanted += [(f"sweep_{size}", "digits400", "final_test_accuracy") for size in sweep_sizes(runs)]
    wanted += [("linear_probe", "digits400", "stage3")]
    wanted += [(method, "digits400", metric) for method in METHODS[1:]
               for metric in ("final_test_accuracy", "steps_to_0.99")]
    tests = [compare(runs, {"method": method, "start": start}, {"method": method, "start": "scratch"}, metric)
             for method, start, metric in wanted]
    return analysis.with_holm([test for test in tests if test])


def summary_rows(results: dict) -> list[dict]:
    """README's Task 2 rows."""
    runs, rows = runs_of(results), []
    for start in STARTS:
        summary = analysis.over_runs(runs, "final_test_accuracy", method="recipe", start=start)
        if summary["n"]:
            rows.append((f"MNIST test accuracy, {start} (the MNIST recipe)",
                         analysis.format_mean_std(summary, unit=" %")))
    for test in results.get("comparisons") or comparisons(results):
        if test["metric"] == "final_test_accuracy":
            method = test["a"]["method"]
            how = (f"with {int(method.split('_')[1]):,} MNIST images, peaks chosen on validation"
                   if method.startswith("sweep_") else f"method {method}")
            rows.append((f"{test['a']['start']} minus scratch, {how}, test accuracy paired by seed",
                         f"{100 * test['mean_difference']:+.2f} points, Holm-corrected p = {test['p_holm']:.2f} "
                         f"(n={test['n']})"))
    return analysis.readme_rows(rows, results["device"], "task2", results["budget"])
