"""Exploration for issue 12 (not part of any notebook): how far can size alone tell a lowercase letter from its capital?

No training. For each letter pair whose shapes are alike, the best single threshold on one size feature, over all
writers' images of the pair, and how often a writer drew the lowercase letter smaller than the capital (what
writer-consistent decoding can use). Features: the ink box's log height absolute, relative to the writer's median
(what the recipe feeds the network), relative to the writer's 75th percentile, as the writer's percentile, and as a
z-score with the writer's median absolute deviation.

    python -m tools.explore_task1_case_size --out results/explore/task1_case_size.json
"""
from __future__ import annotations

import argparse
import json

import torch

from src.classes import CLASS_CHARACTERS
from src.datasets import load_trainpart1
from src.files import atomic_write_bytes

PAIRS = ("cC", "oO", "sS", "vV", "wW", "xX", "zZ", "kK", "pP", "uU", "yY", "mM", "nN", "jJ")


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


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True)
    arguments = parser.parse_args(argv)
    characters = load_trainpart1()
    log_height, writers, labels = characters.geometry[:, 0], characters.writers, characters.labels
    features = size_features(log_height, writers)
    report = {"data": characters.source.describe(), "pairs": {}}
    for pair in PAIRS:
        lower, upper = (CLASS_CHARACTERS.index(character) for character in pair)
        smaller = []
        for writer in torch.unique(writers).tolist():
            small, capital = (log_height[(writers == writer) & (labels == label)] for label in (lower, upper))
            if len(small) and len(capital):
                smaller.append(float(small[0] < capital[0]))
        report["pairs"][pair] = {
            "best_threshold_accuracy": {name: best_threshold_accuracy(values[labels == lower], values[labels == upper])
                                        for name, values in features.items()},
            "writers_drawing_lowercase_smaller": sum(smaller) / len(smaller)}
    report["mean_over_pairs"] = {name: sum(p["best_threshold_accuracy"][name] for p in report["pairs"].values())
                                 / len(PAIRS) for name in features}
    atomic_write_bytes(arguments.out, (json.dumps(report, indent=1) + "\n").encode())
    for pair, row in report["pairs"].items():
        print(pair, " ".join(f"{value:.3f}" for value in row["best_threshold_accuracy"].values()),
              f"| lowercase smaller for {row['writers_drawing_lowercase_smaller']:.3f} of writers")
    print("mean", {name: round(value, 3) for name, value in report["mean_over_pairs"].items()})


if __name__ == "__main__":
    main()
