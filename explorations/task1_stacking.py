"""Exploration (not part of any notebook): re-weigh the geometry on held-out predictions (stacking).

The network's head learns how much a character's size matters on its training images, whose shapes it can also
memorise; on new writers the shape cue is weaker and size should count for more. Stacked generalisation (Wolpert
1992) fits that weight where it is honest: on out-of-fold logits. A second-level model
    new logit_c = logit_c / T + w_c . geometry + b_c        (geometry: the recipe's 4 writer-relative features)
is fitted, for each writer fold k, on the out-of-fold logits of the other folds' writers and scored on fold k's, so
no label of fold k touches what predicts fold k (the networks that made the other folds' logits did see fold k's
writers, as in any stacking; none was fitted on fold k's labels). Compared, per fold with paired tests: the logits
as they are, temperature only (what `task1.calibrate` does), and temperature + geometry, each per image, case-merged,
writer-decoded and by ECE: one record per method and fold. Also counted: how many of the decoded errors (logits as
trained) fall inside the glyph triplets one writer may draw alike (0/O/o, 1/I/l), which no per-image re-weighting can
separate.

Needs the out-of-fold logits of `explorations.task1_resolution --save-logits` (no training here):

    python -m explorations.task1_stacking --logits data/task1_resolution_logits.pt \\
        --out explorations/results/task1_stacking.json
"""
from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from explorations import write_report
from src import analysis
from src.analysis import Run
from src.classes import CLASS_CHARACTERS
from src.datasets import load_trainpart1
from src.decoding import writer_consistent_predictions
from src.preprocess import geometry_reference, writer_relative_geometry
from src.task1 import folds_of

LOOK_ALIKE_TRIPLETS = ("0Oo", "1Il")
MEASURES = ("accuracy", "accuracy_case_merged", "accuracy_writer_decoded", "expected_calibration_error")


def fit_stacker(logits: torch.Tensor, geometry: torch.Tensor, labels: torch.Tensor, l2: float) -> dict:
    """Inverse temperature, per-class geometry weights and biases, by penalised likelihood."""
    inverse_temperature = torch.ones(1, requires_grad=True)
    weights = torch.zeros(logits.shape[1], geometry.shape[1], requires_grad=True)
    biases = torch.zeros(logits.shape[1], requires_grad=True)
    stacker = {"inverse_temperature": inverse_temperature, "weights": weights, "biases": biases,
               "mean": geometry.mean(0), "std": geometry.std(0) + 1e-6}
    optimiser = torch.optim.LBFGS([inverse_temperature, weights, biases], max_iter=500, line_search_fn="strong_wolfe")

    def closure():
        optimiser.zero_grad()
        loss = F.cross_entropy(stacked_logits(stacker, logits, geometry), labels) + l2 * weights.square().sum()
        loss.backward()
        return loss

    optimiser.step(closure)
    return stacker


def stacked_logits(stacker: dict, logits: torch.Tensor, geometry: torch.Tensor) -> torch.Tensor:
    standardised = (geometry - stacker["mean"]) / stacker["std"]
    return logits * stacker["inverse_temperature"] + standardised @ stacker["weights"].T + stacker["biases"]


def scores(logits: torch.Tensor, labels: torch.Tensor, writers: torch.Tensor) -> dict:
    predictions = logits.argmax(1)
    return {"accuracy": analysis.accuracy(predictions, labels),
            "accuracy_case_merged": analysis.case_merged_accuracy(predictions, labels),
            "accuracy_writer_decoded": analysis.accuracy(writer_consistent_predictions(
                torch.log_softmax(logits, 1), writers, labels, CLASS_CHARACTERS), labels),
            "expected_calibration_error": analysis.expected_calibration_error(torch.softmax(logits, 1), labels)}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--logits", required=True, help="a file written by task1_resolution --save-logits")
    parser.add_argument("--variant", default="28x28 (recipe)", help="whose out-of-fold logits")
    parser.add_argument("--l2", type=float, nargs="+", default=[1e-3, 1e-2, 1e-1],
                        help="penalties on the geometry weights")
    parser.add_argument("--out", required=True)
    arguments = parser.parse_args(argv)
    saved = torch.load(arguments.logits, weights_only=True)
    characters = load_trainpart1()
    if list(saved["files"]) != list(characters.files):
        raise SystemExit(f"{arguments.logits} was written for other files than this trainPart1")
    logits, labels, writers = saved[arguments.variant].float(), characters.labels, characters.writers
    # Each writer's medians only (no labels): the same input the recipe's network gets.
    geometry = writer_relative_geometry(characters.geometry, writers, geometry_reference(characters.geometry))
    folds = [validation for _, validation in folds_of(characters, "writers")]
    methods = {"as trained": None, "temperature only": None,
               **{f"temperature + geometry (l2 {l2:g})": l2 for l2 in arguments.l2}}
    report = {"data": characters.source.describe(), "logits": arguments.variant, "runs": [],
              "device": "no training (the resolution run's out-of-fold logits)"}
    for method, setting in methods.items():
        for fold, index in enumerate(folds):
            fold_logits = logits[index]
            other = torch.cat([other for other in folds if other is not index])
            if method == "temperature only":  # exactly task1.calibrate's cross-fitted temperature
                fold_logits = fold_logits / analysis.fit_temperature(logits[other], labels[other])
            elif setting is not None:
                stacker = fit_stacker(logits[other], geometry[other], labels[other], setting)
                with torch.no_grad():
                    fold_logits = stacked_logits(stacker, fold_logits, geometry[index])
            report["runs"].append(Run("task1", method, "scratch", seed=fold, fold=fold, metrics=scores(
                fold_logits.detach(), labels[index], writers[index])))
        for measure in MEASURES:
            values = [run.metrics[measure] for run in analysis.select(report["runs"], method=method)]
            line = analysis.format_mean_std(values, **({} if measure != "expected_calibration_error"
                                                        else {"scale": 1, "digits": 3, "unit": ""}))
            if method != "as trained" and measure != "expected_calibration_error":
                line += "; vs as trained " + analysis.paired_test_text(analysis.compare(
                    report["runs"], {"method": method}, {"method": "as trained"}, measure, paired_by="fold"))
            print(f"{method}, {measure}: {line}")
    decoded = writer_consistent_predictions(torch.log_softmax(logits, 1), writers, labels, CLASS_CHARACTERS)
    wrong = decoded != labels
    report["decoded_errors_as_trained"] = {"total": int(wrong.sum()), **{
        f"inside {triplet}": int((wrong & torch.isin(labels, members) & torch.isin(decoded, members)).sum())
        for triplet in LOOK_ALIKE_TRIPLETS
        for members in [torch.tensor([CLASS_CHARACTERS.index(c) for c in triplet])]}}
    print("decoded errors, logits as trained:", report["decoded_errors_as_trained"])
    write_report(arguments.out, report)


if __name__ == "__main__":
    main()
