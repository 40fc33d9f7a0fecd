"""Exploration (not part of any notebook): how far can size alone tell a lowercase letter from its capital?

No training. For each letter pair whose shapes are alike, the best single threshold on one size feature, over all
writers' images of the pair, and how often a writer drew the lowercase letter smaller than the capital (what
writer-consistent decoding can use). Features: the ink box's log height absolute, relative to the writer's median
(what the recipe feeds the network), relative to the writer's 75th percentile, as the writer's percentile, and as a
z-score with the writer's median absolute deviation. The best threshold is chosen on the same images it is scored
on, so it flatters; a logistic regression per pair, fitted and scored in the recipe's writer-grouped folds, gives the
unflattered figure for the recipe's four geometry features, and for them plus the ink box's top and bottom edges
(relative to the writer's medians: where a descender or ascender would show). Last, for the glyphs one writer may
draw alike (0/O/o, 1/I/l, 2/Z/z), how often one writer's two drawings are in the same order by each geometry
feature: what writer-consistent decoding could use to tell them apart (0.5 = no information, 1 = always).

    python -m explorations.task1_case_size --out explorations/results/task1_case_size.json
"""
from __future__ import annotations

import argparse

import torch

from explorations import write_report
from src.classes import CLASS_CHARACTERS
from src.datasets import load_trainpart1
from src.preprocess import geometry_reference, writer_relative_geometry
from src.task1 import folds_of

PAIRS = ("cC", "oO", "sS", "vV", "wW", "xX", "zZ", "kK", "pP", "uU", "yY", "mM", "nN", "jJ")
GLYPH_PAIRS = ("0O", "0o", "Oo", "1I", "1l", "Il", "2Z", "2z", "Zz")


def within_writer_order(feature: torch.Tensor, writers: torch.Tensor, labels: torch.Tensor, first: int,
                        second: int) -> float:
    """The share of writers whose drawing of `first` is below their `second` on `feature`, or above if that is
    more common: how consistently one writer's two drawings are ordered."""
    below = [float(feature[(writers == w) & (labels == first)][0] < feature[(writers == w) & (labels == second)][0])
             for w in torch.unique(writers).tolist()
             if bool(((writers == w) & (labels == first)).any() and ((writers == w) & (labels == second)).any())]
    share = sum(below) / len(below)
    return max(share, 1 - share)


def size_features(log_height: torch.Tensor, writers: torch.Tensor) -> dict[str, torch.Tensor]:
    features = {name: torch.empty_like(log_height) for name in (
        "relative to the writer's median", "writer's percentile", "writer z-score (median, MAD)",
        "relative to the writer's 75th percentile")}
    for writer in torch.unique(writers).tolist():
        members = writers == writer
        height = log_height[members]
        median = height.median()
        features["relative to the writer's median"][members] = height - median
        features["writer's percentile"][members] = (height[:, None] > height[None, :]).float().mean(1)
        spread = (height - median).abs().median() + 1e-6
        features["writer z-score (median, MAD)"][members] = (height - median) / spread
        features["relative to the writer's 75th percentile"][members] = height - torch.quantile(height, 0.75)
    return {"absolute": log_height, **features}


def best_threshold_accuracy(lower: torch.Tensor, upper: torch.Tensor) -> float:
    values = torch.cat([lower, upper])
    is_upper = torch.cat([torch.zeros(len(lower)), torch.ones(len(upper))])
    return max(max(float(((values > t).float() == is_upper).float().mean()),
                   float(((values <= t).float() == is_upper).float().mean())) for t in values.unique())


def relative_to_writer(values: torch.Tensor, writers: torch.Tensor) -> torch.Tensor:
    relative = values.clone()
    for writer in torch.unique(writers).tolist():
        relative[writers == writer] -= values[writers == writer].median(0).values
    return relative


def geometry_feature_sets(characters) -> dict[str, torch.Tensor]:
    """Per image: the recipe's writer-relative log height alone, all four features, and those plus the ink's edges."""
    recipe_features = writer_relative_geometry(characters.geometry, characters.writers,
                                               geometry_reference(characters.geometry))
    boxes = characters.ink_boxes.float()
    edges = torch.stack([boxes[:, 0], boxes[:, 2]], 1) / boxes[:, 4:5]  # top, bottom / canvas height
    return {"writer-relative log height": recipe_features[:, :1], "the recipe's 4 geometry features": recipe_features,
            "4 features + top and bottom edges": torch.cat(
                [recipe_features, relative_to_writer(edges, characters.writers)], 1)}


def logistic_regression_accuracy(features: torch.Tensor, is_second: torch.Tensor, folds) -> float:
    """Out-of-fold accuracy of a lightly regularised logistic regression (standardised on each training part)."""
    correct = 0
    for train_index, validation_index in folds:
        mean, std = features[train_index].mean(0), features[train_index].std(0) + 1e-6
        train_x, validation_x = (features[train_index] - mean) / std, (features[validation_index] - mean) / std
        weights = torch.zeros(features.shape[1] + 1, requires_grad=True)
        optimiser = torch.optim.LBFGS([weights], max_iter=200)

        def closure():
            optimiser.zero_grad()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                train_x @ weights[:-1] + weights[-1], is_second[train_index]) + 1e-3 * weights[:-1].square().sum()
            loss.backward()
            return loss

        optimiser.step(closure)
        predicted = (validation_x @ weights[:-1] + weights[-1]).detach() > 0
        correct += int((predicted == is_second[validation_index].bool()).sum())
    return correct / len(is_second)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True)
    arguments = parser.parse_args(argv)
    characters = load_trainpart1()
    log_height, writers, labels = characters.geometry[:, 0], characters.writers, characters.labels
    features = size_features(log_height, writers)
    feature_sets = geometry_feature_sets(characters)
    folds = folds_of(characters, "writers")
    report = {"data": characters.source.describe(), "pairs": {}}
    for pair in PAIRS:
        lower, upper = (CLASS_CHARACTERS.index(character) for character in pair)
        smaller = []
        for writer in torch.unique(writers).tolist():
            small, capital = (log_height[(writers == writer) & (labels == label)] for label in (lower, upper))
            if len(small) and len(capital):
                smaller.append(float(small[0] < capital[0]))
        in_pair = torch.nonzero((labels == lower) | (labels == upper)).flatten()
        pair_folds = [(torch.nonzero(torch.isin(in_pair, train)).flatten(),
                       torch.nonzero(torch.isin(in_pair, validation)).flatten()) for train, validation in folds]
        report["pairs"][pair] = {
            "best_threshold_accuracy": {name: best_threshold_accuracy(values[labels == lower], values[labels == upper])
                                        for name, values in features.items()},
            "writers_drawing_lowercase_smaller": sum(smaller) / len(smaller),
            "writer_grouped_cv_logistic_accuracy": {
                name: logistic_regression_accuracy(values[in_pair], (labels[in_pair] == upper).float(), pair_folds)
                for name, values in feature_sets.items()}}
    report["mean_over_pairs"] = {name: sum(p["best_threshold_accuracy"][name] for p in report["pairs"].values())
                                 / len(PAIRS) for name in features}
    geometry = dict(zip(("log height", "log width", "centre x", "centre y"), characters.geometry[:, [0, 1, 2, 3]].T))
    geometry["aspect (log height - log width)"] = characters.geometry[:, 0] - characters.geometry[:, 1]
    report["glyph_pairs_within_writer_order"] = {
        pair: {name: within_writer_order(values, writers, labels, *(CLASS_CHARACTERS.index(c) for c in pair))
               for name, values in geometry.items()} for pair in GLYPH_PAIRS}
    report["mean_over_pairs_writer_grouped_cv_logistic"] = {
        name: sum(p["writer_grouped_cv_logistic_accuracy"][name] for p in report["pairs"].values()) / len(PAIRS)
        for name in feature_sets}
    write_report(arguments.out, report)  # no training: no run records, measurements only
    for pair, row in report["pairs"].items():
        print(pair, " ".join(f"{value:.3f}" for value in row["best_threshold_accuracy"].values()),
              f"| lowercase smaller for {row['writers_drawing_lowercase_smaller']:.3f} of writers")
    print("mean", {name: round(value, 3) for name, value in report["mean_over_pairs"].items()})
    for pair, row in report["glyph_pairs_within_writer_order"].items():
        print(pair, "same order within a writer:", {name: round(value, 3) for name, value in row.items()})
    print("writer-grouped CV, logistic regression, mean over pairs",
          {name: round(value, 3) for name, value in report["mean_over_pairs_writer_grouped_cv_logistic"].items()})


if __name__ == "__main__":
    main()
