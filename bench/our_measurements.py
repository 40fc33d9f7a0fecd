"""Our pipeline measured through the project's own training loop (`src.train.train`) with Task 2's
MNIST recipe and network, from scratch: the same code the notebooks run, nothing tuned for here.

One convergence run gives two numbers: throughput (images/s over its last epoch, so one-time
start-up costs are left out, as the seed's warm-up steps are) and the training time at which the
test accuracy first reached 99 % (the loop's `wall_seconds` already exclude evaluation).
"""
from __future__ import annotations

import math
from dataclasses import replace

import torch

from src.analysis import first_reaching
from src.data import LabelledImages
from src.model import build_model
from src.task2 import MNIST_RECIPE, MODEL
from src.train import train

from .data import stratified_subset


def convergence_run(train_set: LabelledImages, test: LabelledImages, *, seed: int, epochs: int,
                    evaluate_every_steps: int, target_accuracy: float, device: torch.device) -> dict:
    """Our recipe with its one-cycle schedule laid over `epochs` epochs, tested every
    `evaluate_every_steps` steps."""
    config = replace(MNIST_RECIPE, epochs=epochs, seed=seed, evaluate_every_steps=evaluate_every_steps)
    result = train(build_model(MODEL, seed=seed), train_set, config, evaluation_sets={"test": test},
                   step_evaluation_sets={"test": test}, device=device, progress=False)
    reached = first_reaching(result.step_evaluations, "test_accuracy", target_accuracy)
    last_epoch = result.history[-1]
    return {"seed": seed, "epochs": epochs, "train_images": len(train_set),
            "images_per_second": last_epoch["images_per_second"],
            "time_to_target_seconds": None if reached is None else reached["wall_seconds"],
            "reached": reached, "train_seconds": last_epoch["wall_seconds"],
            "final_test_accuracy": last_epoch["test_accuracy"], "step_evaluations": result.step_evaluations}


def schedule_for_budget(affordable_images: float, dataset_images: int, max_epochs: int,
                        min_images: int = MNIST_RECIPE.batch_size) -> tuple[int, int]:
    """(epochs, images per epoch) that spend about `affordable_images` image-steps: whole epochs
    over the full set where they fit, the last fraction spread as a smaller stratified set, and
    never more epochs than the recipe itself asks for."""
    epochs = min(max_epochs, max(1, math.ceil(affordable_images / dataset_images)))
    images = min(dataset_images, max(min_images, round(affordable_images / epochs)))
    return epochs, images


def accuracy_after_budget(train_set: LabelledImages, test: LabelledImages, *, seed: int, budget_seconds: float,
                          images_per_second: float, device: torch.device) -> dict:
    """Our recipe with its schedule sized, from the measured throughput, to end when the budget is
    spent (a one-cycle schedule is meant to end, not be cut), then tested on `test`."""
    epochs, images = schedule_for_budget(budget_seconds * images_per_second, len(train_set), MNIST_RECIPE.epochs)
    subset = stratified_subset(train_set, images, seed=seed)
    config = replace(MNIST_RECIPE, epochs=epochs, seed=seed, evaluate_every_steps=0)
    result = train(build_model(MODEL, seed=seed), subset, config, evaluation_sets={"test": test},
                   device=device, progress=False)
    last_epoch = result.history[-1]
    return {"seed": seed, "budget_seconds": budget_seconds, "train_seconds": last_epoch["wall_seconds"],
            "epochs": epochs, "train_images": len(subset), "steps": last_epoch["steps"],
            "test_accuracy": last_epoch["test_accuracy"], "test_images": len(test)}
