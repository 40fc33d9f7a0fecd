"""Which recipe for Task 1 on the real trainPart1: each candidate change, scored by 5-fold CV under both protocols.

Every candidate is paired by fold with the recipe's own networks from the same run (same folds, same seeds), so a
difference is the change's effect plus training noise, and the paired test says whether the folds resolve it. The
prediction-time variants (test-time views, where a writer's medians come from) are scored on the recipe's networks
themselves. Nothing here reads testPart1. Each finished cross-validation is saved at once as run records (one per
fold), and a rerun skips what the JSON already holds (delete it to start over).

    python -m explorations.task1_recipe_choice --json explorations/results/task1_recipe_choice.json

A replication deals the folds afresh and trains with other seeds, so a difference found once is measured again on
drawings and networks it was not found on:

    python -m explorations.task1_recipe_choice --fold-seed 1 --seed 100 --candidates "strokes thinned to MNIST's width" \
        --json explorations/results/task1_recipe_choice_fold_seed1.json
"""
from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from explorations import write_report
from src import analysis
from src.analysis import Run
from src.runs import PROJECT_ROOT, device_name
from src.task1 import FOLD_SEED, FOLDS, PREDICTION_VARIANTS, PROTOCOLS, RECIPE, cross_validate, fold_runs, load_for

DEFAULT_JSON = PROJECT_ROOT / "explorations" / "results" / "task1_recipe_choice.json"
# What every candidate was compared with: the recipe as it stood while these were chosen, strokes as drawn. Thinning
# was adopted from this comparison (two runs, both protocols), so its rows stay reproducible with this baseline.
BASELINE = replace(RECIPE, preprocessing="mnist")
CANDIDATES = {
    "height against the writer's tall and short levels": lambda r: replace(
        r, geometry="writer_case", model=replace(r.model, geometry_features=6)),
    "stroke-width augmentation (share 0.5)": lambda r: replace(r, training=replace(
        r.training, augment=replace(r.training.augment, stroke_width_jitter=0.5))),
    "strokes thinned to MNIST's width": lambda r: replace(r, preprocessing="mnist_thinned"),
    "wider network (32, 64, 128)": lambda r: replace(r, model=replace(r.model, widths=(32, 64, 128))),
    "100 epochs": lambda r: replace(r, training=replace(r.training, epochs=100)),
}


def converted(report: dict) -> dict:
    """A report in this script's first format (per-fold accuracies by protocol and name) as run records."""
    if "runs" in report:
        return report
    runs = [Run("task1", name, "scratch", seed=fold, fold=fold, protocol=protocol,
                metrics={"accuracy": accuracy, "accuracy_case_merged": report[protocol]["accuracy_case_merged"][name][fold]})
            for protocol in PROTOCOLS if protocol in report
            for name, values in report[protocol]["accuracy"].items() for fold, accuracy in enumerate(values)]
    return {key: value for key, value in report.items() if key not in PROTOCOLS} | {"runs": [r.to_dict() for r in runs]}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    parser.add_argument("--protocols", nargs="+", default=list(PROTOCOLS), choices=list(PROTOCOLS))
    parser.add_argument("--candidates", nargs="*", default=list(CANDIDATES), choices=list(CANDIDATES))
    parser.add_argument("--epochs", type=int, default=None, help="override every recipe's epochs (a smoke run)")
    parser.add_argument("--folds", type=int, default=FOLDS)
    parser.add_argument("--fold-seed", type=int, default=FOLD_SEED, help="deal the folds afresh (a replication)")
    parser.add_argument("--seed", type=int, default=RECIPE.training.seed,
                        help="fold k's network trains with this seed + k (the recipe's: 0)")
    arguments = parser.parse_args(argv)
    recipe = replace(BASELINE, training=replace(BASELINE.training, seed=arguments.seed,
                                                epochs=arguments.epochs or BASELINE.training.epochs))
    characters = load_for(recipe, "full")
    variants = {name: change(recipe) for name, change in PREDICTION_VARIANTS.items()}
    report = converted(json.loads(arguments.json.read_text())) if arguments.json.exists() else {"runs": []}
    options = []  # what the recorded command must repeat to reproduce this file
    if arguments.fold_seed != FOLD_SEED:
        options.append(f"--fold-seed {arguments.fold_seed}")
    if arguments.seed != RECIPE.training.seed:
        options.append(f"--seed {arguments.seed}")
    if list(arguments.candidates) != list(CANDIDATES):  # a replication names the candidates it re-measures
        options.append(f"--candidates {' '.join(json.dumps(name) for name in arguments.candidates)}")
    report.update({"data": characters.source.describe(), "device": device_name(), "folds": arguments.folds,
                   "fold_seed": arguments.fold_seed, "seed": arguments.seed,
                   "command": " ".join(["python -m explorations.task1_recipe_choice", *options, "--json",
                                        arguments.json.resolve().relative_to(PROJECT_ROOT).as_posix()])})

    def done(protocol: str, name: str) -> bool:
        return any(run["protocol"] == protocol and run["method"] == name for run in report["runs"])

    def save(protocol: str, name: str, runs: list[Run]) -> None:
        report["runs"] += [run.to_dict() for run in runs]
        write_report(arguments.json, report)
        print(protocol, name, analysis.format_mean_std([run.metrics["accuracy"] for run in runs]), flush=True)

    for protocol in arguments.protocols:
        if not done(protocol, "recipe"):
            base = cross_validate(recipe, characters, arguments.folds, False, "recipe", protocol=protocol,
                                  prediction_variants=variants, fold_seed=arguments.fold_seed)
            save(protocol, "recipe", fold_runs("recipe", protocol, base))
            for name in variants:
                save(protocol, name, fold_runs("recipe", protocol, base, variant=name))
        for name in arguments.candidates:
            if not done(protocol, name):
                candidate = CANDIDATES[name](recipe)
                cv = cross_validate(candidate, load_for(candidate, "full"), arguments.folds, False, name,
                                    protocol=protocol, fold_seed=arguments.fold_seed)
                save(protocol, name, fold_runs(name, protocol, cv))


def print_rows(path: Path = DEFAULT_JSON) -> None:
    """The exploration as a table per protocol: the recipe's networks of the same run first, then each candidate with
    its paired difference (task1.ipynb's appendix)."""
    if not path.exists():
        print(f"{path.name} not found: run `python -m explorations.task1_recipe_choice`")
        return
    report = converted(json.loads(path.read_text()))
    runs = [Run.from_dict(run) for run in report["runs"]]
    print(f"{report['command']}\nmachine: {report['device']}; data: {report['data']}")
    for protocol in PROTOCOLS:
        names = list(dict.fromkeys(run.method for run in runs if run.protocol == protocol))
        if "recipe" not in names:
            continue
        print(f"\n{protocol} protocol ({PROTOCOLS[protocol]}):")
        for name in names:
            cells = []
            for metric in ("accuracy", "accuracy_case_merged"):
                summary = analysis.over_runs(runs, metric, method=name, protocol=protocol)
                test = analysis.compare(runs, {"method": name, "protocol": protocol},
                                        {"method": "recipe", "protocol": protocol}, metric, paired_by="fold")
                cells.append(f"{analysis.format_mean_std(summary):20s}"
                             + ("" if name == "recipe" or test is None else f" {analysis.paired_test_text(test)}"))
            print(f"  {name:60s} top-1 {cells[0]}\n  {'':60s} case-merged {cells[1]}")


if __name__ == "__main__":
    main()
