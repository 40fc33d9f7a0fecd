"""Task 3: learn MNIST from mnistTask3's folders, whose names are almost never the digit.

Four ways to train, each from scratch and from the Task 1 network (new 10-class head):
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
choices use a held-out 10 % of mnistTask3. `run_experiment` is what the notebook and `python -m src train task3` run.
"""
from __future__ import annotations

import time
from dataclasses import replace

import torch

from . import analysis
from .checkpoints import checkpoint_identity
from .classes import DIGIT_CHARACTERS
from .datasets import NoisyDigits, load_mnisttask3
from .mnist import load_mnist
from .noisy_labels import (bootstrap_transition_matrix, complementary_loss, confident_pseudo_labels,
                           estimate_transition_matrix, forward_corrected_loss, least_likely_folder)
from .runs import checkpoint_dir, save_results, standin_allowed
from .splits import stratified_sample, stratified_split, stratified_subset
from .task2 import (MNIST_RECIPE, headline, over_seeds, paired_by_seed, percent_over_seeds, reached_summary,
                    start_network)
from .train import LabelledImages, TrainConfig, finished_checkpoint, predict_logits, train

# ----------------------------------------------------------------------------- hyperparameters
# Task 2's network and MNIST augmentation (task2.MODEL, task2.MNIST_RECIPE.augment), so the two tasks'
# MNIST test accuracies compare like with like.
AUGMENT = MNIST_RECIPE.augment

NAIVE = TrainConfig(            # what the assignment literally asks: folders as labels
    epochs=8, batch_size=128, optimizer="sgd", learning_rate=0.1, momentum=0.9, weight_decay=5e-4,
    warmup_fraction=0.2, label_smoothing=0.0, augment=AUGMENT, evaluate_every_steps=200)
COMPLEMENTARY = TrainConfig(    # -log(1 - p_folder); AdamW: a complementary label's gradient is weak and noisy
    epochs=12, batch_size=128, optimizer="adamw", learning_rate=3e-3, weight_decay=5e-4,
    warmup_fraction=0.2, label_smoothing=0.0, augment=AUGMENT, evaluate_every_steps=200)
CORRECTED = TrainConfig(        # forward-corrected loss; a complementary label carries log2(10/9) bits, so longer
    epochs=12, batch_size=128, optimizer="sgd", learning_rate=0.05, momentum=0.9, weight_decay=5e-4,
    warmup_fraction=0.2, label_smoothing=0.0, augment=AUGMENT, evaluate_every_steps=200)
PSEUDO_LABELLED = TrainConfig(  # ordinary training on the confident pseudo-labels
    epochs=8, batch_size=128, optimizer="sgd", learning_rate=0.1, momentum=0.9, weight_decay=5e-4,
    warmup_fraction=0.2, label_smoothing=0.1, augment=AUGMENT, evaluate_every_steps=200)
PSEUDO_LABEL_SHARE = 0.95       # the most confident 95 % of images (whose label differs from their folder) are kept
VALIDATION_FRACTION = 0.1       # of mnistTask3, stratified by folder: T's estimate and model choice
NAIVE_SEED = 0                  # the naive runs only estimate T, so one seed each

BUDGETS = {
    # quick: every cell runs in minutes on 2 CPU cores, and the complementary loss from the Task 1 network
    # still learns (12,000 images, 5 epochs: over seeds 0-3, 3 epochs gave 87.85-97.65 %, 5 give 97.35-98.10 %,
    # results/explore/task3_quick_complementary.json); the other quick numbers mean nothing. Predictions cost as
    # much as training on a CPU, so quick also holds out fewer images (full: all 6,000) and measures less often.
    "quick": {"seeds": 1, "train_images": 12000, "test_images": 2000, "held_out_images": 2000, "naive_epochs": 1,
              "complementary_epochs": 5, "corrected_epochs": 1, "pseudo_epochs": 1, "evaluate_every_steps": 50},
    "full": {"seeds": 3, "train_images": None, "test_images": None, "naive_epochs": NAIVE.epochs,
             "complementary_epochs": COMPLEMENTARY.epochs, "corrected_epochs": CORRECTED.epochs,
             "pseudo_epochs": PSEUDO_LABELLED.epochs, "evaluate_every_steps": NAIVE.evaluate_every_steps},
}
STARTS = ("scratch", "pretrained")
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
    result = train(network, train_set, config, loss_function=loss_function, evaluation_sets={"mnist_test": test},
                   step_evaluation_sets={"mnist_test": test}, progress=progress, description=description)
    probabilities = torch.softmax(predict_logits(result.model, test.images).cpu(), 1)
    return result, {
        "mnist_test_accuracy": result.history[-1]["mnist_test_accuracy"],
        "expected_calibration_error": analysis.expected_calibration_error(probabilities, test.labels),
        "reliability": analysis.reliability_bins(probabilities, test.labels),
        # Converged = stays at or above the threshold to the end (not the first touch).
        "reached": {str(t): analysis.first_staying_at_or_above(result.step_evaluations, "mnist_test_accuracy", t)
                    for t in THRESHOLDS},
        "history": result.history, "step_evaluations": result.step_evaluations,
        "train_seconds": result.history[-1]["wall_seconds"],
    }


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
    _, labels, _ = load_mnist("train")
    known = (noisy.file_indices >= 0) & (noisy.file_indices < len(labels))
    return estimate_transition_matrix(labels[noisy.file_indices[known]], noisy.folder_labels[known])


def folder_is_digit_probability(transition: torch.Tensor, folder_labels: torch.Tensor) -> float:
    """P(folder = digit), weighting each digit's diagonal entry by how common it is."""
    # The digits' shares are unknown; the folders' are close to uniform, and so are the digits'.
    shares = torch.bincount(folder_labels, minlength=10).float() / len(folder_labels)
    return float((transition.diag() * shares).sum())


# ----------------------------------------------------------------------------- the experiment

def run_experiment(budget: str, progress: bool | None = None) -> dict:
    settings = BUDGETS[budget]
    started = time.perf_counter()
    noisy = load_mnisttask3(allow_standin=standin_allowed(budget))
    train_set, validation, validation_index = split_mnisttask3(noisy, settings["train_images"],
                                                               settings.get("held_out_images"))
    test_images, test_labels, mnist_source = load_mnist("test")
    test = stratified_subset(LabelledImages(test_images, test_labels), settings["test_images"])
    task1_checkpoint = checkpoint_dir("full") / "task1.pt"
    if not task1_checkpoint.exists():
        task1_checkpoint = checkpoint_dir("quick") / "task1.pt"
    starts = [s for s in STARTS if s == "scratch" or task1_checkpoint.exists()]
    checkpoints = checkpoint_dir(budget)
    metadata = {"task": "task3", "classes": DIGIT_CHARACTERS, "preprocessing": "mnist", "data": noisy.source.describe()}

    def stage(config: TrainConfig, epochs: str, seed: int, start: str, description: str, data=train_set,
              loss_function=None):
        """One run of a method's recipe with the budget's `epochs`, from scratch or from the Task 1 network."""
        network = start_network("scratch" if start == "scratch" else "task1", None, seed, task1_checkpoint)
        config = replace(config, epochs=settings[epochs], evaluate_every_steps=settings["evaluate_every_steps"],
                         seed=seed)
        return run_training(network, data, test, config, loss_function, progress, description)

    def held_out(model) -> torch.Tensor:
        return predict_logits(model, validation.images).cpu()

    # 1. Naive: folders as labels.
    naive, naive_models = {}, {}
    for start in starts:
        result, metrics = stage(NAIVE, "naive_epochs", NAIVE_SEED, start, f"naive, {start}")
        least_likely = least_likely_folder(predict_logits(result.model, test.images).cpu())
        metrics["mnist_test_accuracy_of_least_likely_folder"] = analysis.accuracy(least_likely, test.labels)
        metrics["validation_folder_accuracy"] = analysis.accuracy(held_out(result.model).argmax(1), validation.labels)
        naive[start], naive_models[start] = metrics, result.model
        finished_checkpoint(checkpoints / f"task3_naive_{start}.pt", result,
                            {**metadata, "method": "naive", "start": start,
                             "metrics": {"mnist_test_accuracy": metrics["mnist_test_accuracy"]}})

    # 2. T[digit, folder] from held-out images, with its uncertainty: the naive scratch network's least likely
    # folder is taken as the digit, and T counts where images of each inferred digit actually sit.
    inferred = least_likely_folder(held_out(naive_models["scratch"]))
    transition = estimate_transition_matrix(inferred, validation.labels)
    transition_low, transition_high = bootstrap_transition_matrix(inferred, validation.labels)

    # 3. Complementary, corrected, then 4. two-stage, for every start and seed.
    runs = {method: {start: [] for start in starts} for method in METHODS}
    best = {}
    # The network that reads the archive best: lowest held-out complementary loss (needs no T and no clean label).
    readers = []  # (that loss, network, name)
    loss = forward_corrected_loss(transition)
    for seed in range(settings["seeds"]):
        for start in starts:
            run = f"{start}, seed {seed}"
            plain, metrics = stage(COMPLEMENTARY, "complementary_epochs", seed, start, f"complementary, {run}",
                                   loss_function=complementary_loss)
            validation_logits = held_out(plain.model)
            metrics["validation_complementary_loss"] = float(complementary_loss(validation_logits, validation.labels))
            metrics["earlier_stages_seconds"] = 0.0  # needs no T
            runs["complementary"][start].append({"seed": seed, **metrics})
            readers.append((metrics["validation_complementary_loss"], plain.model, f"complementary, {run}"))

            first, metrics = stage(CORRECTED, "corrected_epochs", seed, start, f"corrected, {run}", loss_function=loss)
            validation_logits = held_out(first.model)
            metrics["validation_corrected_loss"] = float(loss(validation_logits, validation.labels))
            metrics["earlier_stages_seconds"] = naive["scratch"]["train_seconds"]  # T came from that network
            runs["corrected"][start].append({"seed": seed, **metrics})
            if seed == 0 and start == "scratch":
                # The naive network's least likely folder is wrong for a few % of images, and each
                # such image lands on T's diagonal with chance 1/9; the corrected network errs far
                # less, so its predictions give a sharper second estimate of T.
                refined_transition = estimate_transition_matrix(validation_logits.argmax(1), validation.labels)

            keep, pseudo_labels, _ = confident_pseudo_labels(predict_logits(first.model, train_set.images).cpu(),
                                                             train_set.labels, PSEUDO_LABEL_SHARE)
            pseudo = LabelledImages(train_set.images[keep], pseudo_labels[keep])
            second, metrics = stage(PSEUDO_LABELLED, "pseudo_epochs", seed, start, f"two-stage, {run}", pseudo)
            validation_logits = held_out(second.model)
            metrics["validation_corrected_loss"] = float(loss(validation_logits, validation.labels))
            metrics["pseudo_labelled_share"] = float(keep.float().mean())
            metrics["validation_complementary_loss"] = float(complementary_loss(validation_logits, validation.labels))
            corrected = runs["corrected"][start][-1]
            metrics["earlier_stages_seconds"] = corrected["earlier_stages_seconds"] + corrected["train_seconds"]
            runs["two_stage"][start].append({"seed": seed, **metrics})
            readers.append((metrics["validation_complementary_loss"], second.model, f"two-stage, {run}"))
            # The saved model per start: lowest corrected loss on held-out folders (never the test set).
            if start not in best or metrics["validation_corrected_loss"] < best[start][0]:
                best[start] = (metrics["validation_corrected_loss"], second, seed, metrics["mnist_test_accuracy"])

    for start, (_, result, seed, accuracy) in best.items():
        finished_checkpoint(checkpoints / f"task3_{start}.pt", result,
                            {**metadata, "method": "two-stage", "start": start, "seed": seed,
                             "transition_matrix": transition, "metrics": {"mnist_test_accuracy": accuracy}})

    _, reader, reader_name = min(readers, key=lambda candidate: candidate[0])
    results = {
        "budget": budget, "data": [noisy.source.describe(), mnist_source.describe()],
        "is_standin": noisy.source.is_standin, "device": first.device,
        "task1_start": checkpoint_identity(task1_checkpoint) if "pretrained" in starts else None,
        "folder_counts": torch.bincount(noisy.folder_labels, minlength=10).tolist(),
        "image_statistics": {"mnistTask3": image_statistics(noisy.images), "MNIST test": image_statistics(test_images)},
        "folder_is_digit_images": {**folder_is_digit_images(reader, noisy), "network": reader_name},
        "naive": naive, "transition_matrix": transition.tolist(),
        "transition_matrix_ci95": [transition_low.tolist(), transition_high.tolist()],
        "folder_is_digit_probability": folder_is_digit_probability(transition, validation.labels),
        "refined_transition_matrix": refined_transition.tolist(),
        "refined_folder_is_digit_probability": folder_is_digit_probability(refined_transition, validation.labels),
        **runs,
        "recipes": {"naive": NAIVE.to_dict(), "complementary": COMPLEMENTARY.to_dict(),
                    "corrected": CORRECTED.to_dict(), "pseudo_labelled": PSEUDO_LABELLED.to_dict(),
                    "pseudo_label_share": PSEUDO_LABEL_SHARE},
        "total_seconds": time.perf_counter() - started,
    }
    results["summary"] = summarise(results)
    results["headline"] = headline_rows(results, budget)
    save_results("task3", budget, results)
    results["_models"] = {"naive": naive_models, "validation_index": validation_index, "inferred": inferred}
    return results


def seconds_to(row: dict, threshold: str) -> float | None:
    """Training seconds until the run stays at or above `threshold`, every stage it needs included."""
    reached = row["reached"][threshold]
    return None if reached is None else reached["wall_seconds"] + row["earlier_stages_seconds"]


def summarise(results: dict) -> dict:
    summary = {}
    for method in METHODS:
        for start, rows in results[method].items():
            summary[f"{method}/{start}"] = {
                "mnist_test_accuracy": over_seeds(rows, "mnist_test_accuracy"),
                "expected_calibration_error": over_seeds(rows, "expected_calibration_error"),
                "train_seconds": over_seeds(rows, lambda r: r["train_seconds"] + r["earlier_stages_seconds"]),
                "reached": reached_summary(rows, THRESHOLDS, seconds=seconds_to),
            }
    for method in METHODS:
        if len(results[method]) == 2:
            pretrained, scratch = results[method]["pretrained"], results[method]["scratch"]
            summary[f"{method}: pretrained minus scratch"] = paired_by_seed(pretrained, scratch, "mnist_test_accuracy")
            for threshold in map(str, THRESHOLDS):
                if all(r["reached"][threshold] for r in pretrained + scratch):
                    summary[f"{method}: pretrained minus scratch, seconds to {threshold}"] = paired_by_seed(
                        pretrained, scratch, lambda r: seconds_to(r, threshold))
    return summary


def headline_rows(results: dict, budget: str) -> list[dict]:
    data = "stand-in" if results["is_standin"] else "real archive"
    rows = [(f"naive (folders as labels), from scratch, MNIST test accuracy ({data})",
             f"{100 * results['naive']['scratch']['mnist_test_accuracy']:.2f} %")]
    for key, label in (("two_stage/scratch", "two-stage, from scratch"),
                       ("two_stage/pretrained", "two-stage, from the Task 1 network"),
                       ("corrected/scratch", "forward-corrected only, from scratch"),
                       ("complementary/scratch", "complementary loss only, from scratch"),
                       ("complementary/pretrained", "complementary loss only, from the Task 1 network")):
        if key in results["summary"]:
            rows.append((f"{label}, MNIST test accuracy ({data})",
                         percent_over_seeds(results["summary"][key]["mnist_test_accuracy"])))
    rows.append((f"estimated P(folder = digit), from the naive network / re-estimated from the corrected one "
                 f"({data})", f"{results['folder_is_digit_probability']:.4f} / "
                 f"{results['refined_folder_is_digit_probability']:.4f}"))
    return headline(rows, results, "make reproduce  # task3.ipynb" if budget == "full"
                    else "PLAYMNIST_BUDGET=quick ...")
