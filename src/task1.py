"""Task 1: a 62-class character CNN trained from scratch on trainPart1, judged on testPart1.

trainPart1 and testPart1 are Chars74K EnglishHnd: 55 writers each drew every character once, and the assignment put
40 of each class's 55 drawings in trainPart1 at random, the other 15 in testPart1. So the test set's drawings are by
writers the network has seen drawing *other* characters. Every choice is judged by cross-validation on trainPart1
alone, under two protocols: "images" (the test set's: 8 of each class's 40 drawings held out per fold, their writers
seen in training) and "writers" (stricter: each fold's validation writers are absent from training). `run_experiment`
cross-validates the recipe (`recipes.RECIPE`) and its ablations, then trains it on all 2,480 drawings;
`evaluate.judge_testpart1` measures that network on testPart1, once, at the end.
"""
from __future__ import annotations

import time
from dataclasses import replace

import torch

from . import analysis
from .analysis import Run, compare, config_digest, over_runs, runs_of
from .augment import NO_AUGMENTATION
from .checkpoints import finished_checkpoint
from .data.classes import CLASS_CHARACTERS
from .data.datasets import CharacterImages, load_trainpart1
from .data.labelled import LabelledImages
from .data.preprocess import GeometryReferences, network_inputs
from .data.splits import grouped_kfold, stratified_kfold
from .decoding import writer_consistent_predictions
from .model import build_model
from .recipes import FOLD_SEED, FOLDS, RECIPE, TASK1_BUDGETS, Recipe
from .settings import checkpoint_dir, project_relative, save_results, standin_allowed
from .train import Evaluation, predict, train

PROTOCOLS = {
    "images": "seen writers: 8 of each class's 40 drawings held out per fold, their writers' other drawings in "
              "training (testPart1's protocol)",
    "writers": "new writers: each fold's 11 validation writers absent from training",
}
TEST_SHARE = 1 / (FOLDS - 1)    # a fold's validation images per training image: the corrected t-test needs it

# Each ablation changes one choice of the recipe, to show what that choice is worth.
PLAIN_RESIZE = "plain 32x32 resize, no geometry (public solutions)"
ABLATIONS = {
    "no geometry input": lambda r: replace(r, geometry="none", model=replace(r.model, geometry_features=0)),
    "absolute geometry (not writer-relative)": lambda r: replace(r, geometry="absolute"),
    "no augmentation": lambda r: replace(r, training=replace(r.training, augment=NO_AUGMENTATION)),
    "strokes as drawn (not thinned)": lambda r: replace(r, preprocessing="mnist"),
    "wider network (32, 64, 128)": lambda r: replace(r, model=replace(r.model, widths=(32, 64, 128))),
    PLAIN_RESIZE: lambda r: replace(
        r, preprocessing="resize32", geometry="none", model=replace(r.model, geometry_features=0)),
}
# Scored on the recipe's own networks (a different prediction, no training), under the protocols where they can
# differ: with new writers, a writer's medians come from the evaluated drawings either way.
PREDICTION_VARIANTS = {
    "no test-time augmentation (same networks)": (lambda r: replace(r, test_time_views=0), ("images", "writers")),
    "writer's medians from the evaluated images (same networks)": (
        lambda r: replace(r, writer_reference="evaluated"), ("images",)),
}
PUBLIC_SOLUTIONS_ON_TESTPART1 = [  # top-1 on the same 930 images, as their READMEs/notebooks report it (not rerun)
    ("Anshul22Verma/MIDAS", "https://github.com/Anshul22Verma/MIDAS", 0.6344),
    ("pr2tik1/midas-task-2", "https://github.com/pr2tik1/midas-task-2", 0.5237),
]


def recipe_for(budget: str, recipe: Recipe = RECIPE) -> Recipe:
    return replace(recipe, training=replace(recipe.training, epochs=TASK1_BUDGETS[budget]["epochs"]))


def load_for(recipe: Recipe, budget: str) -> CharacterImages:
    """trainPart1 in the recipe's preprocessing (decoded once; every preprocessing is cached together)."""
    return load_trainpart1(preprocessing=recipe.preprocessing, allow_standin=standin_allowed(budget))


def inputs_for(characters: CharacterImages, recipe: Recipe, references: GeometryReferences) -> LabelledImages:
    return network_inputs(characters, recipe.geometry, references, recipe.writer_minimum_images,
                          known_writers=recipe.writer_reference == "training")


def recipe_predict(model, inputs: LabelledImages, recipe: Recipe) -> torch.Tensor:
    return predict(model, inputs, recipe.test_time_views, recipe.test_time_augment, recipe.test_time_seed)


def folds_of(characters: CharacterImages, protocol: str, fold_seed: int = FOLD_SEED):
    """The protocol's folds; another `fold_seed` deals the drawings (or writers) into folds afresh (a replication)."""
    if protocol == "images":
        return stratified_kfold(characters.labels, FOLDS, fold_seed)
    if protocol == "writers":
        return grouped_kfold(characters.writers, FOLDS, fold_seed)
    raise ValueError(f"unknown protocol {protocol!r}; use one of {list(PROTOCOLS)}")


def fold_scores(predictions: torch.Tensor, labels: torch.Tensor) -> dict:
    return {"accuracy": analysis.accuracy(predictions, labels),
            "accuracy_case_merged": analysis.case_merged_accuracy(predictions, labels)}


# ----------------------------------------------------------------------------- cross-validation

def cross_validate(recipe: Recipe, characters: CharacterImages, folds_run: int = FOLDS, progress: bool | None = None,
                   description: str = "", protocol: str = "writers", prediction_variants: dict | None = None,
                   fold_seed: int = FOLD_SEED) -> dict:
    """k-fold CV under `protocol`: per-fold metrics and out-of-fold logits for every image scored. `characters` must
    be in the recipe's preprocessing (`load_for`). Each of `prediction_variants` ({name: recipe}) is scored on the
    same networks. Fold k trains with the recipe's seed + k."""
    if characters.preprocessing != recipe.preprocessing:
        raise ValueError(f"the recipe reads trainPart1 preprocessed as {recipe.preprocessing!r}, these images are "
                         f"{characters.preprocessing!r}: load them with task1.load_for(recipe, budget)")
    folds = folds_of(characters, protocol, fold_seed)[:folds_run]
    logits = torch.full((len(characters), len(CLASS_CHARACTERS)), float("nan"))
    per_fold = []
    for fold, (train_index, validation_index) in enumerate(folds):
        train_part, validation_part = characters.subset(train_index), characters.subset(validation_index)
        references = GeometryReferences.measure(train_part.geometry, train_part.writers, recipe.writer_minimum_images)
        validation = inputs_for(validation_part, recipe, references)
        seed = recipe.training.seed + fold
        result = train(build_model(recipe.model, seed=seed), inputs_for(train_part, recipe, references),
                       replace(recipe.training, seed=seed),
                       evaluation=Evaluation(every_epoch={"validation": validation}),  # one view: the learning curve
                       progress=progress, description=f"{description} fold {fold + 1}/{len(folds)}")
        fold_logits = recipe_predict(result.model, validation, recipe)
        logits[validation_index] = fold_logits
        row = {"fold": fold, "validation_writers": sorted(set(validation_part.writers.tolist())),
               "validation_images": len(validation_index), **fold_scores(fold_logits.argmax(1), validation.labels),
               "train_seconds": result.history[-1]["wall_seconds"], "history": result.history, "variants": {}}
        for name, variant in (prediction_variants or {}).items():
            variant_logits = recipe_predict(result.model, inputs_for(validation_part, variant, references), variant)
            row["variants"][name] = fold_scores(variant_logits.argmax(1), validation.labels)
        per_fold.append(row)
    calibration = calibrate(logits, characters.labels, [index for _, index in folds])
    for row, (_, index) in zip(per_fold, folds):
        writers, labels = characters.writers[index], characters.labels[index]
        decodable = bool((writers >= 0).all())  # names without a writer: not decodable
        row["accuracy_writer_decoded"] = analysis.accuracy(writer_consistent_predictions(
            logits[index], writers, labels, CLASS_CHARACTERS), labels) if decodable else None
    return {"recipe": recipe.to_dict(), "protocol": protocol, "folds": per_fold, "out_of_fold_logits": logits,
            "scored": ~torch.isnan(logits[:, 0]), "calibration": calibration}


def calibrate(logits: torch.Tensor, labels: torch.Tensor, fold_indices: list[torch.Tensor]) -> dict:
    """Temperature scaling on the out-of-fold predictions. Cross-fitted: fold k's temperature is fitted on the other
    folds' predictions, so the "after" ECE is measured on predictions its temperature never saw. The temperature over
    all folds is what the final checkpoint stores (evaluation and writer decoding use it)."""
    scored, cross_fitted = torch.cat(fold_indices), len(fold_indices) > 1

    def other_folds(index: torch.Tensor) -> torch.Tensor:
        return torch.cat([other for other in fold_indices if other is not index])
    temperatures = [analysis.fit_temperature(logits[other_folds(index)], labels[other_folds(index)])
                    if cross_fitted else None for index in fold_indices]
    result = {"temperature": analysis.fit_temperature(logits[scored], labels[scored]),
              "temperatures_cross_fitted": temperatures, "ece_after": None,
              "ece_before": analysis.expected_calibration_error(torch.softmax(logits[scored], 1), labels[scored])}
    if cross_fitted:
        scaled = torch.cat([torch.softmax(logits[index] / t, 1) for index, t in zip(fold_indices, temperatures)])
        result["ece_after"] = analysis.expected_calibration_error(scaled, labels[scored])
    return result


def fold_runs(method: str, cross_validation: dict, variant: str | None = None) -> list[Run]:
    """A cross-validation as run records, one per fold (paired by fold); a prediction variant's rows carry the same
    networks' scores under another prediction."""
    rows = []
    for fold in cross_validation["folds"]:
        scores = fold["variants"][variant] if variant else fold
        rows.append(Run("task1", variant or method, "scratch", seed=fold["fold"], fold=fold["fold"],
                        config=config_digest(cross_validation["recipe"]), protocol=cross_validation["protocol"],
                        metrics={"accuracy": scores["accuracy"], "accuracy_case_merged": scores["accuracy_case_merged"],
                                 "accuracy_writer_decoded": None if variant else fold["accuracy_writer_decoded"],
                                 "train_seconds": fold["train_seconds"]},
                        history=None if variant else f"{cross_validation['protocol']}/{method}/fold{fold['fold']}"))
    return rows


# ----------------------------------------------------------------------------- the experiment

def run_experiment(budget: str, progress: bool | None = None) -> dict:
    """Both cross-validations (the recipe, its prediction variants and its ablations), then the final network on all
    2,480 drawings. Every fold is one run record; the cross-validations themselves (with their out-of-fold logits)
    stay in memory under "cross_validations" for the notebook."""
    settings = TASK1_BUDGETS[budget]
    started = time.perf_counter()
    recipe = recipe_for(budget)
    characters = load_for(recipe, budget)
    cross_validations, runs, histories = {}, [], {}
    for protocol in PROTOCOLS:
        variants = {name: change(recipe) for name, (change, protocols) in PREDICTION_VARIANTS.items()
                    if protocol in protocols}
        main = cross_validate(recipe, characters, settings["folds_run"], progress, f"recipe, {protocol}", protocol,
                              variants)
        cross_validations[protocol] = {"recipe": main}
        runs += fold_runs("recipe", main) + [run for name in variants for run in fold_runs("recipe", main, name)]
        for name in ABLATIONS if settings["ablations"] is None else settings["ablations"]:
            ablated = ABLATIONS[name](recipe)
            cross_validations[protocol][name] = cv = cross_validate(
                ablated, load_for(ablated, budget), settings["ablation_folds_run"], progress, f"{name}, {protocol}",
                protocol)
            runs += fold_runs(name, cv)
        histories.update({f"{protocol}/{method}/fold{fold['fold']}": fold["history"]
                          for method, cv in cross_validations[protocol].items() for fold in cv["folds"]})
    references = GeometryReferences.measure(characters.geometry, characters.writers, recipe.writer_minimum_images)
    final = train(build_model(recipe.model, seed=0), inputs_for(characters, recipe, references),
                  replace(recipe.training, seed=0), progress=progress, description="final model, all 2,480 images")
    calibration = {protocol: cv["recipe"]["calibration"] for protocol, cv in cross_validations.items()}
    metrics = {f"cv_accuracy_{protocol}": over_runs(runs, "accuracy", method="recipe", protocol=protocol)
               for protocol in PROTOCOLS}
    # testPart1's protocol is "images": its out-of-fold temperature is the one the checkpoint stores.
    path = save_final(final, recipe, references, characters, checkpoint_dir(budget) / "task1.pt", metrics,
                      calibration["images"]["temperature"])
    results = {"budget": budget, "data": characters.source.describe(), "data_sha256": characters.source.sha256,
               "device": final.device, "recipe": recipe.to_dict(), "runs": runs, "histories": histories,
               "calibration": calibration, "final_history": final.history, "checkpoint": project_relative(path),
               "total_seconds": time.perf_counter() - started}
    results["comparisons"] = comparisons(results)
    results["headline"] = summary_rows(results)
    save_results("task1", budget, results)
    return {**results, "cross_validations": cross_validations}


def save_final(result, recipe: Recipe, references: GeometryReferences, characters: CharacterImages, path,
               metrics: dict, temperature: float = 1.0):
    """The checkpoint `evaluate` and `recognise` need: how drawings become its inputs (the recipe's preprocessing and
    geometry, the training set's and each training writer's median drawing) and the temperature its logits are
    divided by (fitted on the CV's out-of-fold predictions; 1.0 where none was fitted)."""
    known = recipe.writer_reference == "training"
    return finished_checkpoint(path, result, {
        "task": "task1", "classes": CLASS_CHARACTERS, "temperature": temperature,
        "preprocessing": recipe.preprocessing, "geometry": recipe.geometry,
        "geometry_reference": references.training_set, "writer_references": references.writers if known else {},
        "recipe": recipe.to_dict(), "test_time_views": recipe.test_time_views,
        "test_time_augment": recipe.test_time_augment.to_dict(), "data": characters.source.describe(),
        "data_sha256": characters.source.sha256, "metrics": metrics})


def training_speed(model_config, characters: CharacterImages, images: int = 1280) -> float:
    """Images per second of the training loop (augmentation included) on the CPU, one epoch over the first `images`
    drawings: for comparing network sizes side by side on any machine."""
    subset = characters.subset(torch.arange(images))
    references = GeometryReferences.measure(subset.geometry, subset.writers, RECIPE.writer_minimum_images)
    result = train(build_model(model_config), inputs_for(subset, RECIPE, references),
                   replace(RECIPE.training, epochs=1), device="cpu", progress=False)
    return result.history[-1]["images_per_second"]


# ----------------------------------------------------------------------------- queries over the runs

def comparisons(results: dict) -> list[dict]:
    """The notebook's family of comparisons, Holm-corrected: every ablation and prediction variant against the
    recipe, per protocol, on top-1 accuracy (corrected resampled t-test over folds)."""
    runs, tests = runs_of(results), []
    for protocol in PROTOCOLS:
        for method in dict.fromkeys(run.method for run in runs if run.protocol == protocol):
            test = compare(runs, {"method": method, "protocol": protocol}, {"method": "recipe", "protocol": protocol},
                           "accuracy", paired_by="fold", test_share=TEST_SHARE) if method != "recipe" else None
            if test:
                tests.append(test)
    return analysis.with_holm(tests)


def summary_rows(results: dict) -> list[dict]:
    """README's Task 1 rows: a query over the run records (testPart1's own rows come from its report)."""
    runs, rows = runs_of(results), []
    for protocol, label in (("images", "seen writers, testPart1's protocol"), ("writers", "new writers")):
        for metric, name in (("accuracy", "top-1 (62 classes)"), ("accuracy_case_merged", "case-ambiguous merged")):
            rows.append((f"CV on trainPart1, {label}: {name}",
                         over_folds(over_runs(runs, metric, method="recipe", protocol=protocol))))
    plain = over_runs(runs, "accuracy", method=PLAIN_RESIZE, protocol="images")
    if plain["n"]:
        rows.append(("CV top-1 with the public solutions' preprocessing (plain 32x32 resize), seen writers",
                     over_folds(plain)))
    return analysis.readme_rows(rows, results["device"], "task1", results["budget"])


def test_summary_rows(test: dict) -> list[dict]:
    """README's rows for the one evaluation on testPart1."""
    rows = [(f"testPart1 ({test['n']} drawings), task1.pt: top-1 / case-ambiguous merged",
             f"{100 * test['accuracy']:.2f} % / {100 * test['accuracy_case_merged']:.2f} %"),
            ("testPart1, writer-consistent decoding of the same logits (a property of the split, not the answer)",
             f"{100 * test['accuracy_writer_decoded']:.2f} %")]
    return analysis.readme_rows(rows, test["device"], "task1", test["budget"])


def over_folds(summary: dict, digits: int = 2) -> str:
    """'92.54 ± 0.74 % (n=5 folds)' from an `over_runs` summary of accuracies."""
    return f"{100 * summary['mean']:.{digits}f} ± {100 * summary['std']:.{digits}f} % (n={summary['n']} folds)"
