"""Which recipe for Task 1 on the real trainPart1: each candidate change, scored by 5-fold CV under both protocols,
against the recipe as it stood while they were chosen (strokes as drawn).

Every candidate is paired by fold with the baseline's own networks from the same run (same folds, same seeds). Nothing
here reads testPart1. Each finished cross-validation is saved at once as run records (one per fold), and a rerun skips
what the JSON already holds. The thinning of the recipe was adopted from the notebook's ablation and this replication,
which deals the folds afresh and trains with other seeds:

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
from src.recipes import FOLD_SEED, FOLDS, RECIPE
from src.settings import PROJECT_ROOT, device_name
from src.task1 import PREDICTION_VARIANTS, PROTOCOLS, cross_validate, fold_runs, load_for

DEFAULT_JSON = PROJECT_ROOT / "explorations" / "results" / "task1_recipe_choice.json"
# What every candidate was compared with: the recipe as it stood while these were chosen, strokes as drawn. Thinning
# was adopted from this comparison (two runs, both protocols), so its rows stay reproducible with this baseline.
BASELINE = replace(RECIPE, preprocessing="mnist")
CANDIDATES = {
    "stroke-width augmentation (share 0.5)": lambda r: replace(r, training=replace(
        r.training, augment=replace(r.training.augment, stroke_width_jitter=0.5))),
    "strokes thinned to MNIST's width": lambda r: replace(r, preprocessing="mnist_thinned"),
    "wider network (32, 64, 128)": lambda r: replace(r, model=replace(r.model, widths=(32, 64, 128))),
    "100 epochs": lambda r: replace(r, training=replace(r.training, epochs=100)),
}


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
    report = json.loads(arguments.json.read_text()) if arguments.json.exists() else {"runs": []}
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
            variants = {name: change(recipe) for name, (change, protocols) in PREDICTION_VARIANTS.items()
                        if protocol in protocols}
            base = cross_validate(recipe, characters, arguments.folds, False, "recipe", protocol=protocol,
                                  prediction_variants=variants, fold_seed=arguments.fold_seed)
            save(protocol, "recipe", fold_runs("recipe", base))
            for name in variants:
                save(protocol, name, fold_runs("recipe", base, variant=name))
        for name in arguments.candidates:
            if not done(protocol, name):
                candidate = CANDIDATES[name](recipe)
                cv = cross_validate(candidate, load_for(candidate, "full"), arguments.folds, False, name,
                                    protocol=protocol, fold_seed=arguments.fold_seed)
                save(protocol, name, fold_runs(name, cv))


if __name__ == "__main__":
    main()
