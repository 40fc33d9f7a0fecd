"""The seed pipeline measured three ways: throughput, accuracy after a time budget, time to 99 %.

Each measurement starts from fresh weights (seeded) and a fresh DataLoader, so repeats are
independent runs. Evaluation images go through the seed's transform once, up front, because
evaluation time is never counted and the result is the same as transforming them each time.
"""
from __future__ import annotations

import torch

from src.analysis import first_reaching
from src.data import LabelledImages

from .seed_pipeline import build_seed_model, evaluate_seed, seed_loader, to_uint8_pixels, train_seed, transformed_images


class SeedData:
    """One dataset in the form the seed pipeline reads: uint8 28x28 pixels for its PIL loader."""

    def __init__(self, data: LabelledImages):
        self.pixels = to_uint8_pixels(data.images.cpu())
        self.labels = data.labels.cpu()

    def __len__(self) -> int:
        return len(self.labels)

    def loader(self, seed: int):
        return seed_loader(self.pixels, self.labels, seed=seed)

    def evaluation_tensors(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        return transformed_images(self.pixels).to(device), self.labels


def throughput(train: SeedData, *, seed: int, warmup_steps: int, timed_steps: int, device: torch.device) -> dict:
    """Images per second over `timed_steps` steps of 64, after `warmup_steps` untimed ones."""
    run = train_seed(build_seed_model(seed), train.loader(seed), device, warmup_steps=warmup_steps,
                     max_steps=timed_steps)
    return {"seed": seed, "warmup_steps": warmup_steps, "timed_steps": run.steps, "images": run.images,
            "seconds": run.train_seconds, "images_per_second": run.images_per_second}


def accuracy_after_budget(train: SeedData, evaluation: tuple[torch.Tensor, torch.Tensor], *, seed: int,
                          budget_seconds: float, device: torch.device) -> dict:
    """Train until `budget_seconds` of training time are spent (the step that crosses it counts
    in full), then measure accuracy on `evaluation` (transformed images, labels)."""
    model = build_seed_model(seed)
    run = train_seed(model, train.loader(seed), device, max_seconds=budget_seconds)
    images, labels = evaluation
    return {"seed": seed, "budget_seconds": budget_seconds, "train_seconds": run.train_seconds, "steps": run.steps,
            "images": run.images, "test_accuracy": evaluate_seed(model, images, labels), "test_images": len(labels)}


def time_to_accuracy(train: SeedData, evaluation: tuple[torch.Tensor, torch.Tensor], *, seed: int,
                     target_accuracy: float, evaluate_every_steps: int, max_epochs: int,
                     device: torch.device) -> dict:
    """Train, testing every `evaluate_every_steps` steps (time excluded), until the test accuracy
    first reaches `target_accuracy` or `max_epochs` epochs have passed. Meant for a GPU."""
    model = build_seed_model(seed)
    loader = train.loader(seed)
    images, labels = evaluation
    run = train_seed(model, loader, device, max_steps=max_epochs * len(loader),
                     evaluate=lambda network: evaluate_seed(network, images, labels),
                     evaluate_every_steps=evaluate_every_steps, stop_at_accuracy=target_accuracy)
    reached = first_reaching(run.step_evaluations, "test_accuracy", target_accuracy)
    return {"seed": seed, "max_epochs": max_epochs, "steps": run.steps, "train_seconds": run.train_seconds,
            "images_per_second": run.images_per_second,
            "time_to_target_seconds": None if reached is None else reached["wall_seconds"],
            "reached": reached, "step_evaluations": run.step_evaluations}
