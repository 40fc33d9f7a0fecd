"""Task 3: learn MNIST from mnistTask3's folders, whose names are almost never the digit.

Four ways to train, each from two starts, `scratch` and `task1` (the Task 1 network under a new 10-class head):
  naive          cross-entropy on the folder names, as the assignment asks and public solutions did;
  complementary  the folder read as "not this digit" (a complementary label, Ishida et al. 2017): loss
                 -log(1 - p_folder) (Kim et al. 2019; Chou et al. 2020), which needs no estimate of how the
                 folders were assigned;
  corrected      forward-corrected cross-entropy through T[true digit, folder] (Patrini et al. 2017; Yu et al.
                 2018 for complementary labels), with T estimated from the naive network's predictions on
                 held-out images;
  two-stage      the corrected network labels the training images (confident ones, never its own
                 folder), then ordinary training on those pseudo-labels.
Learning uses mnistTask3's images and folders only (and the Task 1 network); MNIST's training labels are never
read here, except to build and check the offline stand-in (`standins.py`). The MNIST test set is only measured;
choices use a held-out 10 % of mnistTask3. Every run is one row of `results["runs"]` (`analysis.Run`); summaries,
comparisons and headline rows are queries over them. `run_experiment` is what the notebook and
`python -m src train task3` run.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from . import analysis
from .analysis import Run, compare, config_digest, format_mean_std, over_runs, select
from .checkpoints import checkpoint_identity, start_network
from .classes import DIGIT_CHARACTERS
from .datasets import NoisyDigits, load_mnisttask3
from .mnist import load_mnist
from .model import DIGIT_MODEL
from .noisy_labels import (bootstrap_transition_matrix, complementary_loss, confident_pseudo_labels,
                           estimate_transition_matrix, forward_corrected_loss, least_likely_folder)
from .runs import checkpoint_dir, headline, load_results, save_results, standin_allowed
from .splits import stratified_sample, stratified_split, stratified_subset
from .train import MNIST_RECIPE, Evaluation, LabelledImages, TrainConfig, finished_checkpoint, predict_logits, train

# ----------------------------------------------------------------------------- hyperparameters
# The MNIST network and recipe Task 2 uses (model.DIGIT_MODEL, train.MNIST_RECIPE), so the two tasks' MNIST test
# accuracies compare like with like; each method's recipe shows only what differs from BASE.
MODEL = DIGIT_MODEL
BASE = replace(
    MNIST_RECIPE,               # 8 epochs, batch 128, SGD with peak 0.1, Task 2's MNIST augmentation
    label_smoothing=0.0,        # a folder is not a class to be softened towards: the losses below model it
    evaluate_every_steps=200,   # MNIST test accuracy every 200 steps: convergence curves and times
)
NAIVE = BASE                    # what the assignment literally asks: folders as labels
COMPLEMENTARY = replace(BASE,   # -log(1 - p_folder)
                        epochs=12, optimizer="adamw", learning_rate=3e-3)  # a complementary label's gradient is weak
CORRECTED = replace(BASE,       # forward-corrected loss
                    epochs=12, learning_rate=0.05)  # a complementary label carries log2(10/9) bits, so longer
PSEUDO_LABELLED = replace(BASE,  # ordinary training on the confident pseudo-labels (the second stage)
                          label_smoothing=0.1)
RECIPES = {"naive": NAIVE, "complementary": COMPLEMENTARY, "corrected": CORRECTED, "two_stage": PSEUDO_LABELLED}
PSEUDO_LABEL_SHARE = 0.95       # the most confident 95 % of images (whose label differs from their folder) are kept
VALIDATION_FRACTION = 0.1       # of mnistTask3, stratified by folder: T's estimate and model choice
NAIVE_SEED = 0                  # the naive runs only estimate T, so one seed each


@dataclass(frozen=True)
class Budget:
    """How much of the experiment runs; the recipes are the same at every budget."""
    seeds: int                  # runs per method and start
    train_images: int | None    # mnistTask3 training images used (None: all 54,000)
    test_images: int | None     # MNIST test images measured (None: all 10,000)
    held_out_images: int | None  # held-out mnistTask3 images (None: all 6,000)
    # epochs per method (full: each recipe's own), and how often the MNIST test accuracy is measured
    epochs: dict = field(default_factory=lambda: {method: recipe.epochs for method, recipe in RECIPES.items()})
    evaluate_every_steps: int = BASE.evaluate_every_steps


FULL = Budget(seeds=3, train_images=None, test_images=None, held_out_images=None)
# quick: every cell runs in minutes on 2 CPU cores, and the complementary loss from the Task 1 network still learns
# (12,000 images, 5 epochs: over seeds 0-3, 3 epochs gave 87.85-97.65 %, 5 give 97.35-98.10 %,
# explorations/results/task3_quick_complementary.json); the other quick numbers mean nothing. Predictions cost as
# much as training on a CPU, so quick also holds out fewer images and measures less often.
QUICK = replace(FULL, seeds=1, train_images=12000, test_images=2000, held_out_images=2000,
                epochs={"naive": 1, "complementary": 5, "corrected": 1, "two_stage": 1}, evaluate_every_steps=50)
BUDGETS = {"quick": QUICK, "full": FULL}
STARTS = ("scratch", "task1")
METHODS = ("complementary", "corrected", "two_stage")  # the naive runs only estimate T
THRESHOLDS = (0.98, 0.99)


# ----------------------------------------------------------------------------- steps

def split_indices(noisy: NoisyDigits, train_images: int | None = None,
                  held_out_images: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Which of mnistTask3's images train and which are held out (stratified by folder; seeded subsets of
    either when a budget asks for fewer)."""
    train_index, validation_index = stratified_split(noisy.folder_labels, VALIDATION_FRACTION, seed=0)
    if train_images:
        shuffled = torch.randperm(len(train_index), generator=torch.Generator().manual_seed(0))
        train_index = train_index[shuffled[:train_images]]
    validation_index = validation_index[stratified_sample(noisy.folder_labels[validation_index], held_out_images)]
    return train_index, validation_index


def split_mnisttask3(noisy: NoisyDigits, train_images: int | None = None, held_out_images: int | None = None):
    """Training and held-out validation parts, both labelled by folder only."""
    train_index, validation_index = split_indices(noisy, train_images, held_out_images)
    return (LabelledImages(noisy.images[train_index], noisy.folder_labels[train_index]),
            LabelledImages(noisy.images[validation_index], noisy.folder_labels[validation_index]), validation_index)


def run_training(network, train_set: LabelledImages, test: LabelledImages, config: TrainConfig, loss_function=None,
                 progress: bool | None = None, description: str = ""):
    """One run of a recipe, measured on the MNIST test set every N steps: the result, its metrics and its curves."""
    test_every_step = Evaluation(every_epoch={"mnist_test": test}, every_steps={"mnist_test": test})
    result = train(network, train_set, config, loss_function=loss_function, evaluation=test_every_step,
                   progress=progress, description=description)
    probabilities = torch.softmax(predict_logits(result.model, test.images).cpu(), 1)
    # Converged = stays at or above the threshold to the end (not the first touch).
    reached = {t: analysis.first_staying_at_or_above(result.step_evaluations, "mnist_test_accuracy", t)
               for t in THRESHOLDS}
    metrics = {"mnist_test_accuracy": result.history[-1]["mnist_test_accuracy"],
               "expected_calibration_error": analysis.expected_calibration_error(probabilities, test.labels),
               "mean_confidence": float(probabilities.max(1).values.mean()),
               "train_seconds": result.history[-1]["wall_seconds"],
               **{f"seconds_to_{t}": r and r["wall_seconds"] for t, r in reached.items()}}
    curves = {"history": result.history, "step_evaluations": result.step_evaluations,
              "reliability": analysis.reliability_bins(probabilities, test.labels)}
    return result, metrics, curves


def with_earlier_stages(metrics: dict, earlier_stages_seconds: float) -> dict:
    """A method's cost counts every stage it needs: T's estimate (training the naive network and reading the held-out
    images with it) for the corrected loss; for two-stage, all of that, the corrected network, and its labelling of
    the training images."""
    return {**metrics, "earlier_stages_seconds": earlier_stages_seconds,
            "seconds_all_stages": metrics["train_seconds"] + earlier_stages_seconds,
            **{f"seconds_all_stages_to_{t}": None if metrics[f"seconds_to_{t}"] is None
               else metrics[f"seconds_to_{t}"] + earlier_stages_seconds for t in THRESHOLDS}}


def image_statistics(images: torch.Tensor) -> dict:
    """What a JPEG round trip leaves on an MNIST digit: a histogram of pixel values (32 bins) and the
    share of background pixels (value < 32 of 255) that are not exactly 0, as MNIST's are."""
    pixels = (images * 255).round()
    background = pixels[pixels < 32]
    return {"histogram": torch.histc(pixels, bins=32, min=0, max=256).div(pixels.numel()).tolist(),
            "background_not_zero_share": float((background > 0).float().mean()),
            "mean_intensity": float(images.mean())}


def folder_is_digit_images(model, noisy: NoisyDigits) -> dict:
    """Images whose folder *is* their digit according to `model` (a network trained without clean
    labels): how many, which (file numbers, for a grid), and how they spread over the digits."""
    agrees = predict_logits(model, noisy.images).argmax(1).cpu() == noisy.folder_labels
    return {"count": int(agrees.sum()), "share": float(agrees.float().mean()),
            "per_digit": torch.bincount(noisy.folder_labels[agrees], minlength=10).tolist(),
            "indices": torch.nonzero(agrees).flatten()[:200].tolist()}  # enough for a grid


def audit_transition_matrix(noisy: NoisyDigits) -> torch.Tensor:
    """The archive's true T[digit, folder], from the MNIST training labels its file numbers name.

    An audit, run by the notebook after every network is trained and chosen: these labels answer the
    question by looking it up, so nothing in `run_experiment` may use them (tested)."""
    return estimate_transition_matrix(*audit_labels(noisy))


def audit_labels(noisy: NoisyDigits) -> tuple[torch.Tensor, torch.Tensor]:
    """(MNIST training label, folder) of every archive image whose file number names an MNIST training image: what
    the audit checks the estimates against, and what nothing before it may read."""
    _, labels, _ = load_mnist("train")
    known = (noisy.file_indices >= 0) & (noisy.file_indices < len(labels))
    return labels[noisy.file_indices[known]], noisy.folder_labels[known]


def folder_is_digit_probability(transition: torch.Tensor, folder_labels: torch.Tensor) -> float:
    """P(folder = digit), weighting each digit's diagonal entry by how common it is."""
    # The digits' shares are unknown; the folders' are close to uniform, and so are the digits'.
    shares = torch.bincount(folder_labels, minlength=10).float() / len(folder_labels)
    return float((transition.diag() * shares).sum())


# ----------------------------------------------------------------------------- the experiment

@dataclass
class Experiment:
    """The data and settings every run of one budget shares, and the record its runs are appended to."""
    settings: Budget
    train_set: LabelledImages           # mnistTask3's training part, labelled by folder
    validation: LabelledImages          # its held-out part, labelled by folder
    test: LabelledImages                # the MNIST test set (measured only)
    task1_checkpoint: Path
    progress: bool | None
    runs: list[Run] = field(default_factory=list)
    histories: dict = field(default_factory=dict)

    def run(self, method: str, seed: int, start: str, loss_function=None, data: LabelledImages | None = None,
            earlier_stages_seconds: float = 0.0, **extra_metrics):
        """One run of `method`'s recipe with the budget's epochs, from `start`; appends its row and returns the
        result and the row."""
        config = replace(RECIPES[method], epochs=self.settings.epochs[method],
                         evaluate_every_steps=self.settings.evaluate_every_steps)
        network = start_network(start, seed, MODEL, self.task1_checkpoint)
        result, metrics, curves = run_training(network, self.train_set if data is None else data, self.test,
                                               replace(config, seed=seed), loss_function, self.progress,
                                               f"{method}, {start}, seed {seed}")
        key = f"{method}/{start}/seed{seed}"
        self.histories[key] = curves
        run = Run("task3", method, start, seed, config=config_digest(config), history=key,
                  metrics={**with_earlier_stages(metrics, earlier_stages_seconds), **extra_metrics})
        self.runs.append(run)
        return result, run

    def held_out(self, model) -> torch.Tensor:
        return predict_logits(model, self.validation.images).cpu()

    def held_out_losses(self, model, corrected_loss) -> dict:
        """Both losses on the held-out folders: what chooses the saved network and the best reader of the archive."""
        logits = self.held_out(model)
        return {"validation_corrected_loss": float(corrected_loss(logits, self.validation.labels)),
                "validation_complementary_loss": float(complementary_loss(logits, self.validation.labels))}


def task1_checkpoint_path():
    """The Task 1 network: the committed one, else the quick budget's."""
    path = checkpoint_dir("full") / "task1.pt"
    return path if path.exists() else checkpoint_dir("quick") / "task1.pt"


def run_experiment(budget: str, progress: bool | None = None) -> dict:
    settings = BUDGETS[budget]
    started = time.perf_counter()
    noisy = load_mnisttask3(allow_standin=standin_allowed(budget))
    train_set, validation, validation_index = split_mnisttask3(noisy, settings.train_images, settings.held_out_images)
    test_images, test_labels, mnist_source = load_mnist("test")
    test = stratified_subset(LabelledImages(test_images, test_labels), settings.test_images)
    task1_checkpoint = task1_checkpoint_path()
    starts = [s for s in STARTS if s == "scratch" or task1_checkpoint.exists()]
    experiment = Experiment(settings, train_set, validation, test, task1_checkpoint, progress)
    checkpoints = checkpoint_dir(budget)
    metadata = {"task": "task3", "classes": DIGIT_CHARACTERS, "preprocessing": "mnist", "data": noisy.source.describe()}

    # 1. Naive: folders as labels.
    naive_models = {}
    for start in starts:
        result, run = experiment.run("naive", NAIVE_SEED, start)
        least_likely = least_likely_folder(predict_logits(result.model, test.images).cpu())
        run.metrics["mnist_test_accuracy_of_least_likely_folder"] = analysis.accuracy(least_likely, test.labels)
        run.metrics["validation_folder_accuracy"] = analysis.accuracy(experiment.held_out(result.model).argmax(1),
                                                                      validation.labels)
        naive_models[start] = result.model
        finished_checkpoint(checkpoints / f"task3_naive_{start}.pt", result,
                            {**metadata, "method": "naive", "start": start,
                             "metrics": {"mnist_test_accuracy": run.metrics["mnist_test_accuracy"]}})

    # 2. T[digit, folder] from held-out images, with its uncertainty: the naive scratch network's least likely
    # folder is taken as the digit, and T counts where images of each inferred digit actually sit.
    clock = time.perf_counter()
    inferred = least_likely_folder(experiment.held_out(naive_models["scratch"]))
    transition = estimate_transition_matrix(inferred, validation.labels)
    # T's cost: training the naive network, and reading the held-out images with it
    seconds_for_transition = (select(experiment.runs, method="naive", start="scratch")[0].metrics["train_seconds"]
                              + time.perf_counter() - clock)
    transition_low, transition_high = bootstrap_transition_matrix(inferred, validation.labels)

    # 3. Complementary, corrected, then 4. two-stage, for every start and seed.
    best = {}  # per start, the two-stage network with the lowest held-out corrected loss (never the test set)
    # The network that reads the archive best: lowest held-out complementary loss (needs no T and no clean label).
    readers = []  # (that loss, network, name)
    loss = forward_corrected_loss(transition)
    for seed in range(settings.seeds):
        for start in starts:
            trained = run_methods(experiment, seed, start, loss, seconds_for_transition)
            readers += trained["readers"]
            if seed == 0 and start == "scratch":
                # The naive network's least likely folder is wrong for a few % of images, and each
                # such image lands on T's diagonal with chance 1/9; the corrected network errs far
                # less, so its predictions give a sharper second estimate of T.
                refined_inferred = trained["corrected_held_out"].argmax(1)
                refined_transition = estimate_transition_matrix(refined_inferred, validation.labels)
            second, run = trained["two_stage"]
            if start not in best or run.metrics["validation_corrected_loss"] < best[start][0]:
                best[start] = (run.metrics["validation_corrected_loss"], second, run)

    for start, (_, result, run) in best.items():  # task3_scratch.pt, task3_task1.pt
        finished_checkpoint(checkpoints / f"task3_{start}.pt", result,
                            {**metadata, "method": "two-stage", "start": start, "seed": run.seed,
                             "transition_matrix": transition,
                             "metrics": {"mnist_test_accuracy": run.metrics["mnist_test_accuracy"]}})

    _, reader, reader_name = min(readers, key=lambda candidate: candidate[0])
    results = {
        "budget": budget, "data": [noisy.source.describe(), mnist_source.describe()],
        "is_standin": noisy.source.is_standin, "device": best["scratch"][1].device,
        "task1_start": checkpoint_identity(task1_checkpoint) if "task1" in starts else None,
        "folder_counts": torch.bincount(noisy.folder_labels, minlength=10).tolist(),
        "images": {"archive": len(noisy.folder_labels), "train": len(train_set), "held_out": len(validation),
                   "mnist_test": len(test)},
        "image_statistics": {"mnistTask3": image_statistics(noisy.images), "MNIST test": image_statistics(test_images)},
        "folder_is_digit_images": {**folder_is_digit_images(reader, noisy), "network": reader_name},
        "transition_matrix": transition.tolist(),
        "transition_matrix_ci95": [transition_low.tolist(), transition_high.tolist()],
        "folder_is_digit_probability": folder_is_digit_probability(transition, validation.labels),
        "refined_transition_matrix": refined_transition.tolist(),
        "refined_folder_is_digit_probability": folder_is_digit_probability(refined_transition, validation.labels),
        "recipes": {**{method: recipe.to_dict() for method, recipe in RECIPES.items()},
                    "pseudo_label_share": PSEUDO_LABEL_SHARE},
        "runs": experiment.runs, "histories": experiment.histories, "total_seconds": time.perf_counter() - started,
    }
    results["headline"] = headline_rows(results)
    save_results("task3", budget, results)
    results["_models"] = {"naive": naive_models, "validation_index": validation_index, "inferred": inferred,
                          "refined_inferred": refined_inferred}
    return results


def run_methods(experiment: Experiment, seed: int, start: str, corrected_loss, seconds_for_transition: float) -> dict:
    """The complementary, corrected and two-stage runs of one seed and start, in that order (the two-stage run
    learns from the corrected network's pseudo-labels). Returns the two-stage result and row, the corrected
    network's held-out logits, and the candidate readers of the archive (held-out complementary loss, network, name)."""
    validation = experiment.validation
    plain, run = experiment.run("complementary", seed, start, complementary_loss)  # needs no T
    run.metrics["validation_complementary_loss"] = float(complementary_loss(experiment.held_out(plain.model),
                                                                            validation.labels))
    readers = [(run.metrics["validation_complementary_loss"], plain.model, f"complementary, {start}, seed {seed}")]

    first, corrected = experiment.run("corrected", seed, start, corrected_loss,
                                      earlier_stages_seconds=seconds_for_transition)
    corrected_held_out = experiment.held_out(first.model)
    corrected.metrics["validation_corrected_loss"] = float(corrected_loss(corrected_held_out, validation.labels))

    train_set = experiment.train_set
    clock = time.perf_counter()  # labelling the training images is part of the method's cost
    keep, pseudo_labels, _ = confident_pseudo_labels(predict_logits(first.model, train_set.images).cpu(),
                                                     train_set.labels, PSEUDO_LABEL_SHARE)
    labelling_seconds = time.perf_counter() - clock
    pseudo = LabelledImages(train_set.images[keep], pseudo_labels[keep])
    second, run = experiment.run("two_stage", seed, start, data=pseudo,
                                 earlier_stages_seconds=corrected.metrics["seconds_all_stages"] + labelling_seconds,
                                 pseudo_labelled_share=float(keep.float().mean()))
    run.metrics.update(experiment.held_out_losses(second.model, corrected_loss))
    readers.append((run.metrics["validation_complementary_loss"], second.model, f"two-stage, {start}, seed {seed}"))
    return {"two_stage": (second, run), "corrected_held_out": corrected_held_out, "readers": readers}


# ----------------------------------------------------------------------------- queries over the runs

def task1_minus_scratch(runs: list[Run], method: str, metric: str = "mnist_test_accuracy") -> dict | None:
    """A method from the Task 1 network minus the same method from scratch, paired by seed."""
    return compare(runs, {"method": method, "start": "task1"}, {"method": method, "start": "scratch"}, metric)


def headline_rows(results: dict) -> list[dict]:
    runs = analysis.runs_of(results)
    data = "stand-in" if results["is_standin"] else "real archive"
    naive = select(runs, method="naive", start="scratch")[0].metrics["mnist_test_accuracy"]
    rows = [(f"naive (folders as labels), from scratch, MNIST test accuracy ({data})", f"{100 * naive:.2f} %")]
    for method, start, label in (("two_stage", "scratch", "two-stage, from scratch"),
                                 ("two_stage", "task1", "two-stage, from the Task 1 network"),
                                 ("corrected", "scratch", "forward-corrected only, from scratch"),
                                 ("complementary", "scratch", "complementary loss only, from scratch"),
                                 ("complementary", "task1", "complementary loss only, from the Task 1 network")):
        if select(runs, method=method, start=start):
            rows.append((f"{label}, MNIST test accuracy ({data})",
                         format_mean_std(over_runs(runs, "mnist_test_accuracy", method=method, start=start),
                                         unit=" %")))
    rows.append((f"estimated P(folder = digit), from the naive network / re-estimated from the corrected one "
                 f"({data})", f"{results['folder_is_digit_probability']:.4f} / "
                 f"{results['refined_folder_is_digit_probability']:.4f}"))
    if results.get("true_folder_is_digit_probability") is not None:  # recorded by the audit, after all learning
        truth = results["true_folder_is_digit_probability"]
        rows.append((f"true P(folder = digit), from MNIST's training labels after all learning; the estimates above "
                     f"are biased upwards by the reading network's errors (about error rate / 9) ({data})",
                     f"{truth:.4f} (estimates {results['folder_is_digit_probability'] / truth:.1f}x / "
                     f"{results['refined_folder_is_digit_probability'] / truth:.1f}x the truth)" if truth > 0
                     else f"{truth:.4f}"))
    return headline(rows, results["device"], "task3", results["budget"])


# ----------------------------------------------------------------------------- what the notebook says, from the runs

METHOD_NAMES = {"naive": "folders as labels (naive)", "complementary": "complementary loss",
                "corrected": "forward-corrected loss", "two_stage": "two-stage (corrected, then pseudo-labels)"}
START_NAMES = {"scratch": "from scratch", "task1": "from the Task 1 network"}


def per_seed(runs: list[Run], metric: str, method: str, start: str) -> list:
    return [run.metrics.get(metric) for run in sorted(select(runs, method=method, start=start), key=lambda r: r.seed)]


def percent_text(runs: list[Run], method: str, start: str, metric: str = "mnist_test_accuracy") -> str:
    """'99.40 ± 0.16 % (n=3; per seed 99.21, 99.50, 99.49)'; a single run as '2.31 % (n=1)'."""
    values = per_seed(runs, metric, method, start)
    if len(values) == 1:
        return f"{100 * values[0]:.2f} % (n=1)"
    return (format_mean_std(values, unit=" %")[:-1] + "; per seed "
            + ", ".join(f"{100 * v:.2f}" for v in values) + ")")


def seconds_text(runs: list[Run], metric: str, method: str, start: str) -> str:
    """'412 ± 20 s (per seed 400, 395, 441)', '—' for a run that never stayed at the level."""
    values = per_seed(runs, metric, method, start)
    held = [v for v in values if v is not None]
    mean = "never" if not held else f"{sum(held) / len(held):.0f} s" + (
        "" if len(held) == len(values) else f", mean of the {len(held)} of {len(values)} runs that held")
    return f"{mean} (per seed " + ", ".join("—" if v is None else f"{v:.0f}" for v in values) + ")"


def _p(test: dict) -> str:
    return "p < 0.001" if test["p_value"] < 0.001 else f"p = {test['p_value']:.3f}"


def answer_box(results: dict) -> str:
    """The notebook's first answer (Markdown, under 120 words), every number read from this run's results."""
    runs = analysis.runs_of(results)
    naive = select(runs, method="naive", start="scratch")[0].metrics["mnist_test_accuracy"]
    two_stage = over_runs(runs, "mnist_test_accuracy", method="two_stage", start="scratch")
    complementary = over_runs(runs, "mnist_test_accuracy", method="complementary", start="scratch")
    standin = " (on the offline stand-in)" if results["is_standin"] else ""
    return (f"**Question.** What is wrong with mnistTask3's folders, and can a network still learn MNIST from "
            f"them?\n\n"
            f"**Answer.** An image almost never sits in its digit's folder, so each folder says which digit an image "
            f"is *not*; read that way, the folders teach a network MNIST to {100 * two_stage['mean']:.2f} %{standin}."
            f"\n\n**Numbers** (MNIST test set, mean ± sd over seeds). Folders as labels: {100 * naive:.1f} % (n=1). "
            f"Two-stage from scratch: {format_mean_std(two_stage, unit=' %')}. Complementary loss alone (needs no "
            f"estimate of T): {format_mean_std(complementary, unit=' %')}. Estimated share of images in their digit's "
            f"folder: {results['refined_folder_is_digit_probability']:.4f}.\n\n"
            f"**Caveat.** Estimated without clean labels, that share is biased upwards (section 6 audits it against the "
            f"truth); the methods need only that it is small.")


def data_finding(results: dict) -> str:
    images = results["images"]
    return (f"{images['archive']:,} images in folders of {min(results['folder_counts']):,}-"
            f"{max(results['folder_counts']):,}; {images['train']:,} train, {images['held_out']:,} are held out "
            f"(stratified by folder) for T's estimate and every choice; the MNIST test set ({images['mnist_test']:,} "
            f"images) is only measured.")


def naive_finding(results: dict) -> str:
    runs = analysis.runs_of(results)
    lines = []
    for start in [s for s in STARTS if select(runs, method="naive", start=s)]:
        run = select(runs, method="naive", start=start)[0]
        lines.append(f"Folders as labels, {START_NAMES[start]}: {100 * run.metrics['mnist_test_accuracy']:.2f} % on the "
                     f"MNIST test set (one run; chance is 10 %); held-out folder accuracy "
                     f"{100 * run.metrics['validation_folder_accuracy']:.1f} %; its LEAST likely folder is the digit "
                     f"for {100 * run.metrics['mnist_test_accuracy_of_least_likely_folder']:.2f} % of test images.")
    return "\n".join(lines)


def transition_finding(results: dict) -> str:
    transition = torch.tensor(results["transition_matrix"])
    off = transition[~torch.eye(10, dtype=torch.bool)]
    return (f"Estimated without clean labels, the share of images in their digit's folder is "
            f"{results['folder_is_digit_probability']:.4f} (naive network's least likely folder) and "
            f"{results['refined_folder_is_digit_probability']:.4f} (the corrected network's prediction); off the "
            f"diagonal T's entries lie between {off.min():.3f} and {off.max():.3f} (1/9 = {1 / 9:.3f} if the other "
            f"nine folders were equally likely).")


def methods_finding(results: dict) -> str:
    runs = analysis.runs_of(results)
    starts = [s for s in STARTS if select(runs, method="naive", start=s)]
    lines = ["MNIST test accuracy:"]
    for method in ("naive", *METHODS):
        for start in starts:
            if select(runs, method=method, start=start):
                lines.append(f"   {METHOD_NAMES[method]}, {START_NAMES[start]}: {percent_text(runs, method, start)}")
    if "task1" in starts:
        lines.append("From the Task 1 network minus from scratch, paired by seed:")
        for method in METHODS:
            test = task1_minus_scratch(runs, method)
            lines.append(f"   {METHOD_NAMES[method]}: "
                         + (analysis.paired_test_text(test, places=2) if test else "not compared"))
    return "\n".join(lines)


def convergence_finding(results: dict) -> str:
    """Seconds of the whole method (every stage it needs) until MNIST test accuracy stays at each level."""
    runs = analysis.runs_of(results)
    starts = [s for s in STARTS if select(runs, method="naive", start=s)]
    lines = ["Seconds until MNIST test accuracy stays at or above a level, every stage of the method counted "
             "('—': never):"]
    for method in METHODS:
        for start in starts:
            total = seconds_text(runs, "seconds_all_stages", method, start)
            lines.append(f"   {METHOD_NAMES[method]}, {START_NAMES[start]}: "
                         + "; ".join(f"{100 * t:.0f} %: {seconds_text(runs, f'seconds_all_stages_to_{t}', method, start)}"
                                     for t in THRESHOLDS) + f"; the whole method took {total}")
    if "task1" in starts:
        lines.append("From the Task 1 network minus from scratch, paired by seed:")
        for method in METHODS:
            for t in THRESHOLDS:
                test = task1_minus_scratch(runs, method, f"seconds_all_stages_to_{t}")
                lines.append(f"   {METHOD_NAMES[method]}, to {100 * t:.0f} %: "
                             + (analysis.paired_test_text(test, scale=1, unit="s", places=0) if test else
                                "not compared (a run of either start never stayed there)"))
    return "\n".join(lines)


def calibration_finding(results: dict) -> str:
    """Expected calibration error and mean confidence against accuracy, per method and start, with every seed."""
    runs = analysis.runs_of(results)
    lines = ["Calibration on the MNIST test set (ECE, 15 bins; per seed in brackets):"]
    for method in METHODS:
        for start in [s for s in STARTS if select(runs, method=method, start=s)]:
            ece = per_seed(runs, "expected_calibration_error", method, start)
            confidence = over_runs(runs, "mean_confidence", method=method, start=start)["mean"]
            accuracy = over_runs(runs, "mnist_test_accuracy", method=method, start=start)["mean"]
            lines.append(f"   {METHOD_NAMES[method]}, {START_NAMES[start]}: ECE {100 * sum(ece) / len(ece):.2f} % ("
                         + ", ".join(f"{100 * v:.2f}" for v in ece) + f"); mean confidence {100 * confidence:.1f} % "
                         f"against accuracy {100 * accuracy:.1f} % ({'under' if confidence < accuracy else 'over'}"
                         f"-confident; label smoothing {RECIPES[method].label_smoothing})")
    return "\n".join(lines)


def audit(results: dict, noisy: NoisyDigits) -> dict:
    """After all learning: both estimates of T against the truth the archive's file numbers name (MNIST's training
    labels, which nothing before this reads), and where the estimates' bias comes from. An estimate counts, among
    held-out images inferred to be digit d, the share in folder d; an image whose inferred digit is wrong sits in
    the inferred digit's folder with chance about 1/9 (any folder but its own), so inference errors add to the
    diagonal about (error rate) / 9 that no folder put there. A bootstrap of the same images reproduces those errors
    in every resample: its band measures sampling noise only."""
    _, labels, _ = load_mnist("train")
    truth = audit_transition_matrix(noisy)
    true_share = record_true_share(results["budget"], noisy)
    held_out = results["_models"]["validation_index"]
    digits, folders = labels[noisy.file_indices[held_out]], noisy.folder_labels[held_out]
    low, high = (torch.tensor(m).diag() for m in results["transition_matrix_ci95"])
    report = {"truth": truth, "true_share": true_share, "true_share_held_out": float((digits == folders).float().mean()),
              "band_covers": int(((low <= truth.diag()) & (truth.diag() <= high)).sum())}
    for name, inferred, matrix, share in (
            ("naive", results["_models"]["inferred"], "transition_matrix", "folder_is_digit_probability"),
            ("corrected", results["_models"]["refined_inferred"], "refined_transition_matrix",
             "refined_folder_is_digit_probability")):
        wrong, on_diagonal = inferred != digits, inferred == folders
        report[name] = {"estimate": torch.tensor(results[matrix]), "share": results[share],
                        "error_rate": float(wrong.float().mean()),
                        "diagonal_from_right": float((on_diagonal & ~wrong).float().mean()),
                        "diagonal_from_wrong": float((on_diagonal & wrong).float().mean()),
                        "wrong_in_inferred_folder": float((on_diagonal & wrong).sum() / wrong.sum().clamp(min=1))}
    return report


def record_true_share(budget: str, noisy: NoisyDigits) -> float:
    """The true share of images in their digit's folder (the audit's labels, after all learning), also written into
    results/task3.json so that README shows it beside the estimates."""
    digits, folders = audit_labels(noisy)
    true_share = float((digits == folders).float().mean())
    saved = load_results("task3", budget)
    if saved is not None:
        save_results("task3", budget, {**saved, "true_folder_is_digit_probability": true_share})
    return true_share


def audit_finding(results: dict, report: dict) -> str:
    truth = report["truth"]
    naive, corrected = report["naive"], report["corrected"]
    lines = [f"True share of images in their digit's folder: {report['true_share']:.4f} over the archive "
             f"({report['true_share_held_out']:.4f} of the held-out images); per digit "
             f"{truth.diag().min():.4f}-{truth.diag().max():.4f}."]
    for name, label in (("naive", "the naive network's least likely folder"),
                        ("corrected", "the corrected network's prediction")):
        found = report[name]
        ratio = (f"{found['share'] / report['true_share']:.1f}x the truth" if report["true_share"] > 0
                 else "against a true 0")
        lines.append(f"Estimated from {label}: {found['share']:.4f}, {ratio}. That reading is wrong for "
                     f"{100 * found['error_rate']:.2f} % of the held-out images, and "
                     f"{100 * found['wrong_in_inferred_folder']:.1f} % of those sit in the folder of the digit they were "
                     f"taken for (1/9 = 11.1 %). So the estimate's diagonal holds a share "
                     f"{found['diagonal_from_wrong']:.4f} of the held-out images through such errors, and "
                     f"{found['diagonal_from_right']:.4f} through images truly in their digit's folder.")
    lines.append(f"The 95 % bootstrap band of the first estimate covers the true diagonal entry for "
                 f"{report['band_covers']} of 10 digits: resampling the held-out images repeats the same reading "
                 f"errors in every resample, so the band measures sampling noise, not this bias. The estimate is "
                 f"biased upwards by about (error rate) / 9; the sharper the network that reads the digits, the "
                 f"smaller the bias. Largest |estimate - truth| over T's entries: "
                 f"{(naive['estimate'] - truth).abs().max():.4f} (first), "
                 f"{(corrected['estimate'] - truth).abs().max():.4f} "
                 f"(second).")
    return "\n".join(lines)


def conclusions(results: dict, report: dict | None = None, clean: dict | None = None) -> str:
    """Every number the notebook concludes from, with the test behind each difference; the answer first, in words.
    `report` is `audit`'s (after all learning); `clean` Task 2's results of the same budget, for the clean-label
    comparison."""
    runs = analysis.runs_of(results)
    data = ("the offline STAND-IN (MNIST's training images with the described folder structure)"
            if results["is_standin"] else "the real archive")
    two_stage = over_runs(runs, "mnist_test_accuracy", method="two_stage", start="scratch")
    answer = (f"mnistTask3's folders are (almost) never the digit of the images in them: each folder is a complementary "
              f"label, 'not this digit'. Trained on as labels they teach the wrong answer; read as complementary labels "
              f"they teach MNIST: two-stage training from scratch reaches {100 * two_stage['mean']:.2f} % on the MNIST "
              f"test set ({data}). Differences between starts are paired by seed; one whose test does not resolve it "
              f"(p >= 0.05) is reported, not claimed.")
    items = [data_finding(results), naive_finding(results), transition_finding(results)
             + ("\n" + audit_finding(results, report) if report else ""), methods_finding(results),
             convergence_finding(results), calibration_finding(results)]
    if clean:
        noisy_runs = per_seed(runs, "mnist_test_accuracy", "two_stage", "scratch")
        clean_runs = [run.metrics["final_test_accuracy"] for run in sorted(
            select(analysis.runs_of(clean), method="mnist", start="scratch"), key=lambda r: r.seed)]
        if len(noisy_runs) > 1 and len(clean_runs) > 1:
            gap = analysis.welch_t_test(noisy_runs, clean_runs)
            items.append(f"Against clean labels: two-stage from scratch {percent_text(runs, 'two_stage', 'scratch')} "
                         f"against Task 2's runs of the same network from scratch on MNIST's clean labels, "
                         f"{format_mean_std(clean_runs, unit=' %')}: {100 * gap['mean_difference']:+.2f} points "
                         f"(different seeds, so unpaired: Welch's t-test, {_p(gap)}).")
    return "\n\n".join([answer, f"Data: {'; '.join(results['data'])}."]
                       + [f"{number}. {text}" for number, text in enumerate(items, start=1)])
