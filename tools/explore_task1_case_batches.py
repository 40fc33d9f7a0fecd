"""Exploration for issue 12 (not part of any notebook): does Task 1 read case better when every batch holds both
cases of a letter, drawn by the same writer?

The issue's last untried suggestion, "case pairs balanced in batches". The recipe shuffles the training images at
random, so a batch of 64 seldom holds one writer's s next to the same writer's S. Here the shuffle keeps each
writer's drawings of one letter together (s and S, o and O, ...; digits alone): groups are shuffled, and each
group's images sit next to each other, so nearly every batch contrasts a writer's two cases of the letters in it.
Everything else is the recipe, in the same writer-grouped CV (`task1.cross_validate`: folds, seeds, test-time views),
and both are run here, paired by fold.

    python -m tools.explore_task1_case_batches --out results/explore/task1_case_batches.json
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import fields, replace
from unittest import mock

import torch

import src.train
from src.classes import CLASS_CHARACTERS
from src.datasets import CharacterImages, load_trainpart1
from src.files import atomic_write_bytes
from src.runs import device_name
from src.task1 import RECIPE, cross_validate
from tools.explore_task1_resolution import add_paired_differences, variant_report

CASE_GROUP = torch.tensor([CLASS_CHARACTERS.index(c.lower()) if c.isalpha() else CLASS_CHARACTERS.index(c)
                           for c in CLASS_CHARACTERS])  # class -> its lowercase class (digits: themselves)


def case_grouped_order(labels: torch.Tensor, writers: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A random order of the images in which one writer's drawings of one letter (both cases) are adjacent."""
    group = writers * len(CLASS_CHARACTERS) + CASE_GROUP[labels]
    within = torch.randperm(len(labels), generator=generator)          # random order inside each group
    groups, group_of_image = torch.unique(group, return_inverse=True)
    group_rank = torch.randperm(len(groups), generator=generator)       # random order of the groups
    key = group_rank[group_of_image] * len(labels) + torch.argsort(within)
    return torch.argsort(key)


class TrainingPartRecorder(CharacterImages):
    """`cross_validate` takes each fold's training part with `subset` right before training on it: record its
    labels and writers, which the network inputs passed to `train` no longer carry."""
    last_part: CharacterImages | None = None

    def subset(self, index) -> CharacterImages:
        part = super().subset(index)
        TrainingPartRecorder.last_part = part
        return part


class TorchWithCaseGroupedShuffle:
    """What `src.train` sees as `torch`: the real module, except that shuffling the recorded training part keeps
    case groups together. Only `src.train`'s name is replaced, so augmentation and splits are untouched."""

    def __getattr__(self, name):
        return getattr(torch, name)

    @staticmethod
    def randperm(n, *arguments, generator=None, **keywords):
        part = TrainingPartRecorder.last_part
        if part is None or n != len(part) or generator is None:
            raise RuntimeError("the shuffle of an unrecorded training set; this tool only knows cross_validate's")
        return case_grouped_order(part.labels, part.writers, generator)


def adjacent_case_pairs(order: torch.Tensor, labels: torch.Tensor, writers: torch.Tensor, batch_size: int) -> float:
    """The share of images whose other case (same writer) is in the same batch, for images that have one."""
    group = (writers * len(CLASS_CHARACTERS) + CASE_GROUP[labels])[order]
    batch = torch.arange(len(order)) // batch_size
    together = (group[:, None] == group[None, :]) & (batch[:, None] == batch[None, :])
    has_pair = (group[:, None] == group[None, :]).sum(1) > 1
    return float(((together.sum(1) > 1) & has_pair).sum() / has_pair.sum())


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=RECIPE.training.epochs)
    parser.add_argument("--folds", type=int, default=5, help="folds run (of the recipe's 5)")
    parser.add_argument("--out", required=True)
    arguments = parser.parse_args(argv)
    recipe = replace(RECIPE, training=replace(RECIPE.training, epochs=arguments.epochs))
    characters = load_trainpart1()
    recording = TrainingPartRecorder(**{field.name: getattr(characters, field.name) for field in fields(characters)})
    shuffles = {"random batches (recipe)": lambda part: torch.randperm(len(part),
                                                                      generator=torch.Generator().manual_seed(0)),
                "case pairs together": lambda part: case_grouped_order(part.labels, part.writers,
                                                                        torch.Generator().manual_seed(0))}
    report = {"epochs": arguments.epochs, "data": characters.source.describe(), "device": device_name(),
              "share_of_images_with_their_other_case_in_the_batch": {
                  name: adjacent_case_pairs(order(characters), characters.labels, characters.writers,
                                            recipe.training.batch_size) for name, order in shuffles.items()},
              "variants": {}}
    print(report["data"], report["share_of_images_with_their_other_case_in_the_batch"], flush=True)
    for name in shuffles:
        started = time.perf_counter()
        if name == "case pairs together":
            with mock.patch.object(src.train, "torch", TorchWithCaseGroupedShuffle()):
                result = cross_validate(recipe, recording, arguments.folds, progress=False)
        else:
            result = cross_validate(recipe, characters, arguments.folds, progress=False)
        report["variants"][name] = variant_report(name, result, started)
        atomic_write_bytes(arguments.out, (json.dumps(report, indent=1) + "\n").encode())
    add_paired_differences(report, *reversed(shuffles), "case pairs together minus recipe")
    atomic_write_bytes(arguments.out, (json.dumps(report, indent=1) + "\n").encode())


if __name__ == "__main__":
    main()
