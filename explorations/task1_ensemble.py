"""Exploration (not part of any notebook): is a small ensemble better than one Task 1 network?

Writer-grouped CV exactly as the notebook's (`task1.cross_validate`: same folds, recipe and test-time views), run
once per member with the recipe's seed moved by 100: fold k trains members with seeds k, 100 + k, 200 + k, so
member 0 is the recipe's own network and the single-network baseline comes from the same run. Averaged probabilities
of the first 1..N members are scored per image, case-merged and writer-decoded: one run record per ensemble size
and fold ("ensemble of 2"), each size compared with one network by a paired t-test over folds.

    python -m explorations.task1_ensemble --members 3 --out explorations/results/task1_ensemble.json
"""
from __future__ import annotations

import argparse
import math
from dataclasses import replace

import torch

from explorations import write_report
from src import analysis
from src.analysis import Run
from src.data.classes import CLASS_CHARACTERS
from src.decoding import writer_consistent_predictions
from src.recipes import FOLDS, RECIPE
from src.settings import device_name
from src.task1 import cross_validate, folds_of, load_for

MEMBER_SEED_STEP = 100  # member m of fold k: seed k + 100 m


def scores(log_probabilities: torch.Tensor, labels: torch.Tensor, writers: torch.Tensor) -> dict:
    predictions = log_probabilities.argmax(1)
    return {"accuracy": analysis.accuracy(predictions, labels),
            "accuracy_case_merged": analysis.case_merged_accuracy(predictions, labels),
            "accuracy_writer_decoded": analysis.accuracy(
                writer_consistent_predictions(log_probabilities, writers, labels, CLASS_CHARACTERS), labels)}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=RECIPE.training.epochs)
    parser.add_argument("--folds", type=int, default=FOLDS, help="folds run (of the recipe's 5)")
    parser.add_argument("--out", required=True)
    arguments = parser.parse_args(argv)
    characters = load_for(RECIPE, "full")
    folds = [validation for _, validation in folds_of(characters, "writers")[:arguments.folds]]
    report = {"members": arguments.members, "epochs": arguments.epochs, "data": characters.source.describe(),
              "device": device_name(), "runs": []}
    print(report["data"], flush=True)
    members = []  # each member's out-of-fold log-probabilities
    for member in range(arguments.members):
        recipe = replace(RECIPE, training=replace(RECIPE.training, epochs=arguments.epochs,
                                                  seed=RECIPE.training.seed + MEMBER_SEED_STEP * member))
        result = cross_validate(recipe, characters, arguments.folds, progress=False, protocol="writers")
        members.append(torch.log_softmax(result["out_of_fold_logits"], 1))
        if member and torch.equal(members[-1], members[0]):
            raise SystemExit("cross_validate gave member 1 the weights of member 0: it must seed fold k with "
                             "recipe.training.seed + k")
        averaged = torch.logsumexp(torch.stack(members), 0) - math.log(member + 1)
        for fold, index in enumerate(folds):
            report["runs"].append(Run("task1", f"ensemble of {member + 1}", "scratch", seed=fold, fold=fold,
                                      protocol="writers", config=analysis.config_digest(recipe), metrics=scores(
                                          averaged[index], characters.labels[index], characters.writers[index])))
        print(f"ensemble of {member + 1}:", analysis.format_mean_std(
            [run.metrics["accuracy"] for run in analysis.select(report["runs"], method=f"ensemble of {member + 1}")]),
              flush=True)
        write_report(arguments.out, report)


if __name__ == "__main__":
    main()
