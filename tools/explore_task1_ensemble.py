"""Exploration for issue 12 (not part of any notebook): is a small ensemble better than one Task 1 network?

Writer-grouped CV exactly as `task1.cross_validate` (same folds, recipe and test-time views); fold k trains members with
seeds k, 100 + k, 200 + k, so member 0 is the recipe's own network and the single-network baseline comes from the same
run. Averaged probabilities of the first 1..N members are scored per image, case-merged and writer-decoded; each
ensemble size is compared with one network by a paired t-test over folds. Writes a JSON of per-fold rows.

    python -m tools.explore_task1_ensemble --members 3 --out results/explore/task1_ensemble.json
"""
from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import replace

import torch

from src import analysis
from src.classes import CLASS_CHARACTERS
from src.datasets import load_trainpart1
from src.decoding import writer_consistent_predictions
from src.files import atomic_write_bytes
from src.model import build_model
from src.preprocess import geometry_reference
from src.runs import device_name
from src.splits import grouped_kfold
from src.task1 import FOLD_SEED, FOLDS, RECIPE, network_inputs
from src.train import train

MEASURES = ("accuracy", "accuracy_case_merged", "accuracy_writer_decoded")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=RECIPE.training.epochs)
    parser.add_argument("--folds", type=int, default=FOLDS, help="folds run (of the recipe's 5)")
    parser.add_argument("--out", required=True)
    arguments = parser.parse_args(argv)
    recipe = replace(RECIPE, training=replace(RECIPE.training, epochs=arguments.epochs))
    characters = load_trainpart1()
    report = {"members": arguments.members, "epochs": arguments.epochs, "data": characters.source.describe(),
              "device": device_name(), "folds": []}
    print(report["data"], flush=True)
    for fold, (train_index, validation_index) in enumerate(grouped_kfold(characters.writers, FOLDS, FOLD_SEED)):
        if fold == arguments.folds:
            break
        train_part = characters.subset(train_index)
        reference = geometry_reference(train_part.geometry)
        validation = network_inputs(characters.subset(validation_index), recipe, reference)
        writers, labels = characters.writers[validation_index], validation.labels
        log_probabilities, row = [], {"fold": fold}
        for member in range(arguments.members):
            seed, started = fold + 100 * member, time.perf_counter()
            result = train(build_model(recipe.model, seed=seed), network_inputs(train_part, recipe, reference),
                           replace(recipe.training, seed=seed), progress=False)
            log_probabilities.append(torch.log_softmax(recipe.predict(result.model, validation), 1))
            averaged = torch.logsumexp(torch.stack(log_probabilities), 0) - math.log(member + 1)
            size = member + 1
            row[f"member_accuracy_{member}"] = analysis.accuracy(log_probabilities[-1].argmax(1), labels)
            row[f"accuracy_{size}"] = analysis.accuracy(averaged.argmax(1), labels)
            row[f"accuracy_case_merged_{size}"] = analysis.case_merged_accuracy(averaged.argmax(1), labels)
            row[f"accuracy_writer_decoded_{size}"] = analysis.accuracy(
                writer_consistent_predictions(averaged, writers, labels, CLASS_CHARACTERS), labels)
            print(f"fold {fold + 1}, member {member} (seed {seed}, {time.perf_counter() - started:.0f} s): "
                  f"ensemble of {size} {100 * row[f'accuracy_{size}']:.2f} %", flush=True)
        report["folds"].append(row)
        atomic_write_bytes(arguments.out, (json.dumps(report, indent=1) + "\n").encode())
    for size in range(1, arguments.members + 1):
        for measure in MEASURES:
            values = [row[f"{measure}_{size}"] for row in report["folds"]]
            baseline = [row[f"{measure}_1"] for row in report["folds"]]
            compared = "" if size == 1 else "; vs one network " + analysis.difference_text(values, baseline)
            print(f"{size} network(s), {measure}: {analysis.format_mean_std(values)}{compared}")


if __name__ == "__main__":
    main()
