"""Task 3: learn MNIST from mnistTask3's folders, whose names are almost never the digit.

Four ways to train, each from two starts, `scratch` and `task1` (the Task 1 network under a new 10-class head):
  naive          cross-entropy on the folder names, as the assignment asks and public solutions did;
  complementary  the folder read as "not this digit" (a complementary label, Ishida et al. 2017): loss
                 -log(1 - p_folder) (Kim et al. 2019; Chou et al. 2020), which needs no estimate of how the folders
                 were assigned;
  corrected      forward-corrected cross-entropy through T[true digit, folder] (Patrini et al. 2017; Yu et al. 2018),
                 with T estimated from the naive network's predictions on held-out images;
  two_stage      the corrected network labels the training images (confident ones, never its own folder), then
                 ordinary training on those pseudo-labels.
Learning, every choice and every comparison use mnistTask3's images and folders only (and the Task 1 network): a
held-out 10 % of the archive, labelled by folder, is the validation set. Its measures need no clean label: the
forward-corrected loss, and the share of images a network puts in their own folder, from which accuracy is bounded
(`folder_bound_accuracy`). MNIST's training labels are read only by the audit, after all learning; the MNIST test set
is read once per final network.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from . import analysis
from .analysis import Run, compare, config_digest, runs_of, select
from .checkpoints import checkpoint_identity, finished_checkpoint, start_network
from .data.classes import DIGIT_CHARACTERS
from .data.datasets import NoisyDigits, load_mnisttask3
from .data.labelled import LabelledImages
from .data.mnist import load_mnist
from .data.splits import stratified_sample, stratified_split, stratified_subset
from .noisy_labels import (bootstrap_transition_matrix, complementary_loss, confident_pseudo_labels,
                           estimate_transition_matrix, forward_corrected_loss, least_likely_folder)
from .recipes import (DIGIT_MODEL, NAIVE_SEED, PSEUDO_LABEL_SHARE, TASK3_BUDGETS, TASK3_RECIPES,
                      TASK3_VALIDATION_FRACTION, Task3Budget)
from .settings import checkpoint_dir, save_results, standin_allowed
from .train import Evaluation, predict_logits, train

STARTS = ("scratch", "task1")
METHODS = ("complementary", "corrected", "two_stage")  # the naive runs only estimate T
THRESHOLDS = (0.97, 0.98)       # of the held-out accuracy bound, for convergence


def split_indices(noisy: NoisyDigits, train_images: int | None = None,
                  held_out_images: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Which of mnistTask3's images train and which are held out (stratified by folder; seeded subsets of either
    when a budget asks for fewer)."""
    train_index, validation_index = stratified_split(noisy.folder_labels, TASK3_VALIDATION_FRACTION, seed=0)
    if train_images:
        shuffled = torch.randperm(len(train_index), generator=torch.Generator().manual_seed(0))
        train_index = train_index[shuffled[:train_images]]
    validation_index = validation_index[stratified_sample(noisy.folder_labels[validation_index], held_out_images)]
    return train_index, validation_index


def folder_bound_accuracy(folder_share: float) -> float:
    """A lower bound on accuracy from folders alone: a wrong prediction lands in the image's folder about 1 time in 9
    (the other nine folders are about equally likely), so accuracy >= 1 - 9 x (share of images predicted as their own
    folder). Images truly in their digit's folder make the share larger, so the bound stays below the truth by about
    9 x P(folder = digit)."""
    return 1.0 - 9.0 * folder_share


def held_out_measures(transition: torch.Tensor | None):
    """What a network is measured by on the held-out folders (`train.Evaluation.measure`): the share of images
    predicted as their own folder and the accuracy bound from it, and, once T is estimated, the forward-corrected
    loss."""
    corrected = forward_corrected_loss(transition) if transition is not None else None

    def measure(logits: torch.Tensor, folders: torch.Tensor) -> dict:
        share = float((logits.argmax(1) == folders.to(logits.device)).float().mean())
        values = {"folder_share": share, "bound_accuracy": folder_bound_accuracy(share)}
        if corrected is not None:
            values["corrected_loss"] = float(corrected(logits, folders.to(logits.device)))
        return values
    return measure


def image_statistics(images: torch.Tensor) -> dict:
    """What a JPEG round trip leaves on an MNIST digit: a histogram of pixel values (32 bins) and the share of
    background pixels (value < 32 of 255) that are not exactly 0, as MNIST's are."""
    pixels = (images * 255).round()
    background = pixels[pixels < 32]
    return {"histogram": torch.histc(pixels, bins=32, min=0, max=256).div(pixels.numel()).tolist(),
            "background_not_zero_share": float((background > 0).float().mean()), "mean_intensity": float(images.mean())}


def folder_is_digit_probability(transition: torch.Tensor, folder_labels: torch.Tensor) -> float:
    """P(folder = digit), weighting each digit's diagonal entry by how common its folder is (close to uniform)."""
    shares = torch.bincount(folder_labels, minlength=10).float() / len(folder_labels)
    return float((transition.diag() * shares).sum())


@dataclass
class Experiment:
    """The data and settings every run of one budget shares, and the record its runs are appended to."""
    settings: Task3Budget
    train_set: LabelledImages           # mnistTask3's training part, labelled by folder
    validation: LabelledImages          # its held-out part, labelled by folder
    test: LabelledImages                # the MNIST test set (read once per final network)
    task1_checkpoint: Path
    progress: bool | None
    transition: torch.Tensor | None = None
    runs: list[Run] = field(default_factory=list)
    histories: dict = field(default_factory=dict)

    def run(self, method: str, seed: int, start: str, loss_function=None, data: LabelledImages | None = None,
            earlier_stages_seconds: float = 0.0, **extra_metrics):
        """One run of `method`'s recipe with the budget's epochs, from `start`, measured on the held-out folders
        during training and on the MNIST test set once at the end; appends its row, returns the result and the row."""
        config = replace(TASK3_RECIPES[method], epochs=self.settings.epochs[method], seed=seed,
                         evaluate_every_steps=self.settings.evaluate_every_steps,
                         learning_rate=self.settings.peaks.get(method, TASK3_RECIPES[method].learning_rate))
        measure = held_out_measures(self.transition)
        watched = Evaluation(every_epoch={"held_out": self.validation}, every_steps={"held_out": self.validation},
                             measure=measure)
        result = train(start_network(start, seed, DIGIT_MODEL, self.task1_checkpoint),
                       self.train_set if data is None else data, config, loss_function=loss_function,
                       evaluation=watched, progress=self.progress, description=f"{method}, {start}, seed {seed}")
        held_out = measure(self.held_out(result.model), self.validation.labels)
        test_logits = predict_logits(result.model, self.test.images).cpu()
        probabilities = torch.softmax(test_logits, 1)
        reached = {t: analysis.first_staying_at_or_above(result.step_evaluations, "held_out_bound_accuracy", t)
                   for t in THRESHOLDS}
        train_seconds = result.history[-1]["wall_seconds"]
        metrics = {**{f"held_out_{name}": value for name, value in held_out.items()},
                   "mnist_test_accuracy": analysis.accuracy(test_logits.argmax(1), self.test.labels),
                   "expected_calibration_error": analysis.expected_calibration_error(probabilities, self.test.labels),
                   "mean_confidence": float(probabilities.max(1).values.mean()), "train_seconds": train_seconds,
                   "earlier_stages_seconds": earlier_stages_seconds,
                   "seconds_all_stages": train_seconds + earlier_stages_seconds,
                   **{f"seconds_all_stages_to_{t}": None if r is None else r["wall_seconds"] + earlier_stages_seconds
                      for t, r in reached.items()}, **extra_metrics}
        key = f"{method}/{start}/seed{seed}"
        self.histories[key] = {"history": result.history, "step_evaluations": result.step_evaluations,
                               "reliability": analysis.reliability_bins(probabilities, self.test.labels)}
        run = Run("task3", method, start, seed, config=config_digest(config), history=key, metrics=metrics)
        self.runs.append(run)
        return result, run

    def held_out(self, model) -> torch.Tensor:
        return predict_logits(model, self.validation.images).cpu()


def task1_checkpoint_path() -> Path:
    """The Task 1 network: the committed one, else the quick budget's."""
    path = checkpoint_dir("full") / "task1.pt"
    return path if path.exists() else checkpoint_dir("quick") / "task1.pt"


# ----------------------------------------------------------------------------- the experiment

def run_experiment(budget: str, progress: bool | None = None) -> dict:
    settings = TASK3_BUDGETS[budget]
    started = time.perf_counter()
    noisy = load_mnisttask3(allow_standin=standin_allowed(budget))
    train_index, validation_index = split_indices(noisy, settings.train_images, settings.held_out_images)
    train_set, validation = (LabelledImages(noisy.images[index], noisy.folder_labels[index])
                             for index in (train_index, validation_index))
    test_images, test_labels, mnist_source = load_mnist("test")
    test = stratified_subset(LabelledImages(test_images, test_labels), settings.test_images)
    task1_checkpoint = task1_checkpoint_path()
    starts = [s for s in settings.starts if s == "scratch" or task1_checkpoint.exists()]
    experiment = Experiment(settings, train_set, validation, test, task1_checkpoint, progress)
    checkpoints = checkpoint_dir(budget)
    metadata = {"task": "task3", "classes": DIGIT_CHARACTERS, "preprocessing": "mnist", "data": noisy.source.describe()}

    # 1. Naive: folders as labels.
    naive_models = {}
    for start in starts:
        result, run = experiment.run("naive", NAIVE_SEED, start)
        run.metrics["mnist_test_accuracy_of_least_likely_folder"] = analysis.accuracy(
            least_likely_folder(predict_logits(result.model, test.images).cpu()), test.labels)
        naive_models[start] = result.model
        finished_checkpoint(checkpoints / f"task3_naive_{start}.pt", result, {
            **metadata, "method": "naive", "start": start,
            "metrics": {"mnist_test_accuracy": run.metrics["mnist_test_accuracy"]}})

    # 2. T[digit, folder] from held-out images, with its uncertainty: the naive scratch network's least likely
    # folder is taken as the digit, and T counts where images of each inferred digit actually sit.
    clock = time.perf_counter()
    inferred = least_likely_folder(experiment.held_out(naive_models["scratch"]))
    experiment.transition = transition = estimate_transition_matrix(inferred, validation.labels)
    seconds_for_transition = (select(experiment.runs, method="naive", start="scratch")[0].metrics["train_seconds"]
                              + time.perf_counter() - clock)  # training the naive network, reading the held-out set
    transition_low, transition_high = bootstrap_transition_matrix(inferred, validation.labels)

    # 3. Complementary, corrected, then 4. two-stage, for every start and seed.
    best, refined_inferred = {}, None  # per start, the two-stage network with the lowest held-out corrected loss
    for seed in range(settings.seeds):
        for start in starts:
            corrected_held_out, (second, run) = run_methods(experiment, seed, start, seconds_for_transition)
            if refined_inferred is None:
                # The naive network's least likely folder is wrong for a few % of images, each of which lands on T's
                # diagonal with chance 1/9; the corrected network errs far less: a sharper second estimate of T.
                refined_inferred = corrected_held_out.argmax(1)
            if start not in best or run.metrics["held_out_corrected_loss"] < best[start][0]:
                best[start] = (run.metrics["held_out_corrected_loss"], second, run)
    refined_transition = estimate_transition_matrix(refined_inferred, validation.labels)
    for start, (_, result, run) in best.items():  # task3_scratch.pt, task3_task1.pt
        finished_checkpoint(checkpoints / f"task3_{start}.pt", result, {
            **metadata, "method": "two-stage", "start": start, "seed": run.seed, "transition_matrix": transition,
            "metrics": {"mnist_test_accuracy": run.metrics["mnist_test_accuracy"]}})

    results = {
        "budget": budget, "data": [noisy.source.describe(), mnist_source.describe()],
        "is_standin": noisy.source.is_standin, "device": best["scratch"][1].device,
        "task1_start": checkpoint_identity(task1_checkpoint) if "task1" in starts else None,
        "folder_counts": torch.bincount(noisy.folder_labels, minlength=10).tolist(),
        "images": {"archive": len(noisy.folder_labels), "train": len(train_set), "held_out": len(validation),
                   "mnist_test": len(test)},
        "image_statistics": {"mnistTask3": image_statistics(noisy.images), "MNIST test": image_statistics(test_images)},
        "transition_matrix": transition.tolist(),
        "transition_matrix_ci95": [transition_low.tolist(), transition_high.tolist()],
        "folder_is_digit_probability": folder_is_digit_probability(transition, validation.labels),
        "refined_transition_matrix": refined_transition.tolist(),
        "refined_folder_is_digit_probability": folder_is_digit_probability(refined_transition, validation.labels),
        "recipes": {**{method: recipe.to_dict() for method, recipe in TASK3_RECIPES.items()},
                    "pseudo_label_share": PSEUDO_LABEL_SHARE},
        "runs": experiment.runs, "histories": experiment.histories, "total_seconds": time.perf_counter() - started,
    }
    results["comparisons"] = comparisons(results)
    results["headline"] = summary_rows(results)
    save_results("task3", budget, results)
    results["_models"] = {"naive": naive_models, "validation_index": validation_index, "inferred": inferred,
                          "refined_inferred": refined_inferred, "best": {s: r for s, (_, r, _) in best.items()}}
    return results


def run_methods(experiment: Experiment, seed: int, start: str, seconds_for_transition: float):
    """The complementary, corrected and two-stage runs of one seed and start, in that order (the two-stage run learns
    from the corrected network's pseudo-labels). Returns the corrected network's held-out logits and the two-stage
    result and row."""
    experiment.run("complementary", seed, start, complementary_loss)  # needs no T
    first, corrected = experiment.run("corrected", seed, start, forward_corrected_loss(experiment.transition),
                                      earlier_stages_seconds=seconds_for_transition)
    train_set = experiment.train_set
    clock = time.perf_counter()  # labelling the training images is part of the method's cost
    keep, pseudo_labels, _ = confident_pseudo_labels(predict_logits(first.model, train_set.images).cpu(),
                                                     train_set.labels, PSEUDO_LABEL_SHARE)
    labelling_seconds = time.perf_counter() - clock
    second = experiment.run("two_stage", seed, start, data=LabelledImages(train_set.images[keep], pseudo_labels[keep]),
                            earlier_stages_seconds=corrected.metrics["seconds_all_stages"] + labelling_seconds,
                            pseudo_labelled_share=float(keep.float().mean()))
    return experiment.held_out(first.model), second


# ----------------------------------------------------------------------------- queries over the runs

def comparisons(results: dict) -> list[dict]:
    """The notebook's family, each on the held-out folders (never the MNIST test set), paired by seed and
    Holm-corrected together: each method from the Task 1 network against the same from scratch, and two-stage
    against each single stage from scratch, on the corrected loss, the accuracy bound and the time to reach it."""
    runs, tests = runs_of(results), []
    for method in METHODS:
        for metric in ("held_out_corrected_loss", "held_out_bound_accuracy", "seconds_all_stages_to_0.98"):
            tests.append(compare(runs, {"method": method, "start": "task1"}, {"method": method, "start": "scratch"},
                                 metric))
    for single in ("complementary", "corrected"):
        tests.append(compare(runs, {"method": "two_stage", "start": "scratch"}, {"method": single, "start": "scratch"},
                             "held_out_corrected_loss"))
    return analysis.with_holm([test for test in tests if test])


def summary_rows(results: dict) -> list[dict]:
    """README's Task 3 rows: MNIST test accuracy as measured (once per network), and the estimates of the folders."""
    runs = runs_of(results)
    data = "stand-in" if results["is_standin"] else "real archive"
    rows = []
    for method, start in (("naive", "scratch"), ("two_stage", "scratch"), ("two_stage", "task1"),
                          ("corrected", "scratch"), ("complementary", "scratch"), ("complementary", "task1")):
        summary = analysis.over_runs(runs, "mnist_test_accuracy", method=method, start=start)
        if summary["n"]:
            rows.append((f"{method.replace('_', '-')}, from {start}, MNIST test accuracy ({data})",
                         analysis.format_mean_std(summary, unit=" %")))
    rows.append((f"estimated P(folder = digit), from the naive network / re-estimated from the corrected one ({data})",
                 f"{results['folder_is_digit_probability']:.4f} / "
                 f"{results['refined_folder_is_digit_probability']:.4f}"))
    if results.get("true_folder_is_digit_probability") is not None:  # recorded by the audit, after all learning
        rows.append((f"true P(folder = digit), from MNIST's training labels after all learning ({data})",
                     f"{results['true_folder_is_digit_probability']:.4f}"))
    return analysis.readme_rows(rows, results["device"], "task3", results["budget"])


# ----------------------------------------------------------------------------- the audit, after all learning

def audit(results: dict, noisy: NoisyDigits) -> dict:
    """After all learning: both estimates of T against the truth the archive's file numbers name (MNIST's training
    labels, which nothing before this reads), where the estimates' bias comes from, and how the held-out accuracy
    bound compares with each final network's true held-out accuracy. An image whose inferred digit is wrong sits in
    the inferred digit's folder with chance about 1/9, so inference errors add about (error rate) / 9 to the
    diagonal; a bootstrap of the same images repeats those errors in every resample: its band is sampling noise."""
    _, labels, _ = load_mnist("train")
    known = (noisy.file_indices >= 0) & (noisy.file_indices < len(labels))
    digits_all, folders_all = labels[noisy.file_indices[known]], noisy.folder_labels[known]
    truth = estimate_transition_matrix(digits_all, folders_all)
    keep = known[results["_models"]["validation_index"]]  # held-out images whose file number names an MNIST image
    held_out = results["_models"]["validation_index"][keep]
    digits, folders = labels[noisy.file_indices[held_out]], noisy.folder_labels[held_out]
    low, high = (torch.tensor(m).diag() for m in results["transition_matrix_ci95"])
    report = {"truth": truth, "true_share": float((digits_all == folders_all).float().mean()),
              "true_share_held_out": float((digits == folders).float().mean()),
              "band_covers": int(((low <= truth.diag()) & (truth.diag() <= high)).sum())}
    for name, inferred, matrix, share in (
            ("naive", results["_models"]["inferred"], "transition_matrix", "folder_is_digit_probability"),
            ("corrected", results["_models"]["refined_inferred"], "refined_transition_matrix",
             "refined_folder_is_digit_probability")):
        inferred = inferred[keep]
        wrong, on_diagonal = inferred != digits, inferred == folders
        report[name] = {"estimate": torch.tensor(results[matrix]), "share": results[share],
                        "error_rate": float(wrong.float().mean()),
                        "wrong_in_inferred_folder": float((on_diagonal & wrong).sum() / wrong.sum().clamp(min=1))}
    report["bound_against_truth"] = {}
    for start, saved in results["_models"]["best"].items():  # the saved two-stage network of each start
        predictions = predict_logits(saved.model, noisy.images[held_out]).argmax(1).cpu()
        report["bound_against_truth"][start] = {
            "bound_accuracy": folder_bound_accuracy(float((predictions == folders).float().mean())),
            "true_accuracy": float((predictions == digits).float().mean())}
    results["true_folder_is_digit_probability"] = report["true_share"]
    save_results("task3", results["budget"], {key: value for key, value in results.items() if key != "_models"})
    return report
