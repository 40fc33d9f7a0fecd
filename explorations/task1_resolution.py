"""Exploration (not part of any notebook): does Task 1 gain from input finer than MNIST's 28x28?

The same writer-grouped CV as the notebook (`task1.cross_validate`: folds, seeds, test-time views) runs the recipe
twice: on the cached 28x28 images (ink fitted into 20x20, MNIST's convention) and on the same drawings preprocessed
into 40x40 (ink fitted into 28x28, centre of mass at (20, 20), strokes thickened to the same share of the fit).
Augmentation and test-time shifts, given in pixels, scale by 40/28 so both see the same distortions relative to the
character. The network is the same: its last pooling is adaptive, so 40x40 gives 10x10 -> 3x3 instead of 7x7 -> 3x3.

Beside per-image, case-merged and writer-decoded accuracy (one run record per fold and variant), each look-alike
case pair gets its binary accuracy (out-of-fold, the pair's two logits only), to compare with what the ink box's
geometry alone achieves (`explorations.task1_case_size`).

    python -m explorations.task1_resolution --out explorations/results/task1_resolution.json \
        --save-logits data/task1_resolution_logits.pt
"""
from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import torch

from explorations import cv_runs, write_report
from src import analysis, preprocess
from src.classes import CLASS_CHARACTERS
from src.datasets import CharacterImages, load_trainpart1
from src.files import decode_grayscale, list_source_files, sha256_of_source
from src.runs import device_name
from src.sources import cached
from src.task1 import RECIPE, Recipe, cross_validate

CASE_PAIRS = ("cC", "oO", "sS", "vV", "wW", "xX", "zZ", "kK", "pP", "uU", "yY", "mM", "nN", "jJ", "0O", "1I", "1l",
              "Il")
FINE_FIELD, FINE_FIT = 40, 28
RECIPE_SIZE, FINE_SIZE = "28x28 (recipe)", f"{FINE_FIELD}x{FINE_FIELD}"


def fine_images(characters: CharacterImages) -> torch.Tensor:
    """The same drawings, in the same order, preprocessed into FINE_FIELD x FINE_FIELD (cached like the 28x28 ones):
    ink fitted into FINE_FIT, centre of mass at the field's centre, strokes as thick relative to the fit."""
    source = Path(characters.source.path)

    def build() -> dict:
        _, read = list_source_files(source)
        images = [preprocess.to_mnist_convention(decode_grayscale(read(name), name), name, field=FINE_FIELD,
                                                 fit=FINE_FIT)[0] for name in characters.files]
        return {"images": torch.stack(images)[:, None].contiguous(), "files": list(characters.files), "skipped": []}

    content = cached("trainpart1-explore", sha256_of_source(source), f"mnist{FINE_FIELD}",
                     preprocess.PREPROCESSING_VERSION, build)
    if content["files"] != list(characters.files):
        raise RuntimeError("the fine images' cache lists other files than the 28x28 cache; delete it and re-run")
    return content["images"]


def finer_recipe(recipe: Recipe) -> Recipe:
    """Distortions given in pixels grow with the field, so they stay the same relative to the character."""
    scale = FINE_FIELD / preprocess.FIELD
    augment, views = recipe.training.augment, recipe.test_time_augment
    return replace(recipe,
                   training=replace(recipe.training, augment=replace(
                       augment, translate_pixels=augment.translate_pixels * scale,
                       elastic_pixels=augment.elastic_pixels * scale)),
                   test_time_augment=replace(views, translate_pixels=views.translate_pixels * scale,
                                             elastic_pixels=views.elastic_pixels * scale))


def pair_accuracies(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """For the images of each case pair: how often the larger of the pair's two logits is the right one."""
    scores = {}
    for pair in CASE_PAIRS:
        first, second = (CLASS_CHARACTERS.index(character) for character in pair)
        members = (labels == first) | (labels == second)
        chosen = torch.where(logits[members, first] >= logits[members, second], first, second)
        scores[pair] = analysis.accuracy(chosen, labels[members])
    return scores


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=RECIPE.training.epochs)
    parser.add_argument("--folds", type=int, default=5, help="folds run (of the recipe's 5)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--save-logits", help="also save each variant's out-of-fold logits here (torch.save)")
    arguments = parser.parse_args(argv)
    # Resolution alone: both sizes keep the strokes as drawn (the 40x40 images are not thinned), so the 28x28 side is
    # the recipe with that one choice undone.
    recipe = replace(RECIPE, preprocessing="mnist", training=replace(RECIPE.training, epochs=arguments.epochs))
    characters = load_trainpart1(preprocessing=recipe.preprocessing)
    variants = {RECIPE_SIZE: (recipe, characters),
                FINE_SIZE: (finer_recipe(recipe), replace(characters, images=fine_images(characters)))}
    report = {"epochs": arguments.epochs, "data": characters.source.describe(), "device": device_name(),
              "runs": [], "pair_accuracy": {}}
    print(report["data"], flush=True)
    out_of_fold = {"labels": characters.labels, "writers": characters.writers, "files": characters.files}
    for name, (variant_recipe, variant_characters) in variants.items():
        result = cross_validate(variant_recipe, variant_characters, arguments.folds, progress=False,
                                protocol="writers")
        scored = result["scored"]
        out_of_fold[name] = result["out_of_fold_logits"]
        if arguments.save_logits:
            torch.save(out_of_fold, arguments.save_logits)
        report["runs"] += cv_runs(name, result)
        report["pair_accuracy"][name] = pair_accuracies(result["out_of_fold_logits"][scored], characters.labels[scored])
        print(name, analysis.format_mean_std([row["accuracy"] for row in result["folds"]]), flush=True)
        write_report(arguments.out, report)


if __name__ == "__main__":
    main()
