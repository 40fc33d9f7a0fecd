"""Exploration (not part of any notebook): does Task 1 read case better when every batch holds both
cases of a letter, drawn by the same writer?

The question is whether case pairs balanced in batches help. The recipe shuffles the training images at
random, so a batch of 64 seldom holds one writer's s next to the same writer's S. Here the shuffle keeps each
writer's drawings of one letter together (s and S, o and O, ...; digits alone): groups are shuffled, and each
group's images sit next to each other, so nearly every batch contrasts a writer's two cases of the letters in it.
It is `train`'s batch-order hook, given to each fold's training run by `task1.cross_validate(train_options=...)`;
everything else is the recipe, in the same writer-grouped CV (folds, seeds, test-time views), and both are run
here, paired by fold.

    python -m explorations.task1_case_batches --out explorations/results/task1_case_batches.json
"""
from __future__ import annotations

import argparse
from dataclasses import replace

import torch

from explorations import cv_runs, write_report
from src.classes import CLASS_CHARACTERS
from src.datasets import CharacterImages
from src.runs import device_name
from src.task1 import RECIPE, cross_validate, load_for

CASE_GROUP = torch.tensor([CLASS_CHARACTERS.index(c.lower()) if c.isalpha() else CLASS_CHARACTERS.index(c)
                           for c in CLASS_CHARACTERS])  # class -> its lowercase class (digits: themselves)
RECIPE_ORDER, GROUPED_ORDER = "random batches (recipe)", "case pairs together"


def case_grouped_order(labels: torch.Tensor, writers: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A random order of the images in which one writer's drawings of one letter (both cases) are adjacent."""
    group = writers * len(CLASS_CHARACTERS) + CASE_GROUP[labels]
    within = torch.randperm(len(labels), generator=generator)          # random order inside each group
    groups, group_of_image = torch.unique(group, return_inverse=True)
    group_rank = torch.randperm(len(groups), generator=generator)       # random order of the groups
    key = group_rank[group_of_image] * len(labels) + torch.argsort(within)
    return torch.argsort(key)


def case_grouped_batches(part: CharacterImages) -> dict:
    """`train`'s options for one fold's training part: its batch order keeps case groups together."""
    def batch_order(count: int, generator: torch.Generator) -> torch.Tensor:
        assert count == len(part), "the batch order of another training set"
        return case_grouped_order(part.labels, part.writers, generator)
    return {"batch_order": batch_order}


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
    characters = load_for(recipe, "full")
    orders = {RECIPE_ORDER: torch.randperm(len(characters), generator=torch.Generator().manual_seed(0)),
              GROUPED_ORDER: case_grouped_order(characters.labels, characters.writers, torch.Generator().manual_seed(0))}
    report = {"epochs": arguments.epochs, "data": characters.source.describe(), "device": device_name(),
              "share_of_images_with_their_other_case_in_the_batch": {
                  name: adjacent_case_pairs(order, characters.labels, characters.writers, recipe.training.batch_size)
                  for name, order in orders.items()},
              "runs": []}
    print(report["data"], report["share_of_images_with_their_other_case_in_the_batch"], flush=True)
    for name, options in ((RECIPE_ORDER, None), (GROUPED_ORDER, case_grouped_batches)):
        result = cross_validate(recipe, characters, arguments.folds, progress=False, protocol="writers",
                                train_options=options)
        report["runs"] += cv_runs(name, result)
        print(name, [round(row["accuracy"], 4) for row in result["folds"]], flush=True)
        write_report(arguments.out, report)


if __name__ == "__main__":
    main()
