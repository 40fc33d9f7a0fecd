"""Task 1: a 62-class character CNN trained from scratch on trainPart1, judged on testPart1.

trainPart1 and testPart1 are Chars74K EnglishHnd: 55 writers each drew every character once, and the assignment put
40 of each class's 55 drawings in trainPart1 at random, the other 15 in testPart1. So the test set's drawings are by
writers the network has seen drawing *other* characters. Every choice is judged by cross-validation on trainPart1
alone, under two protocols: "images" (the test set's: 8 of each class's 40 drawings held out per fold, their writers
seen in training) and "writers" (stricter: each fold's validation writers are absent from training, what a new
writer gets). A recipe bundles every choice; `cross_validate` scores one; `run_experiment` (the notebook's and
`python -m src train task1`'s entry) also trains it on all 2,480 images; `judge_on_test_set` measures that network
on testPart1, once, at the end.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch

from . import analysis
from .analysis import Run, compare, config_digest, over_runs, paired_test_text, runs_of, select
from .augment import NO_AUGMENTATION, AugmentConfig
from .classes import CLASS_CHARACTERS
from .datasets import CharacterImages, load_testpart1, load_trainpart1
from .decoding import writer_consistent_predictions
from .model import ModelConfig, build_model
from .preprocess import (case_height_offsets, geometry_inputs, geometry_reference, writer_case_heights,
                         writer_references)
from .runs import checkpoint_dir, device_name, headline, project_relative, save_results, standin_allowed
from .splits import grouped_kfold, stratified_kfold
from .train import (Evaluation, LabelledImages, TrainConfig, finished_checkpoint, predict_averaged_over_views,
                    predict_logits, train)


@dataclass(frozen=True)
class Recipe:
    preprocessing: str          # "mnist" (crop, fit 20x20, centre of mass), "mnist_thinned", or "resize32"
    geometry: str               # side input: "writer" (size relative to the writer), "absolute", "none"
    model: ModelConfig
    training: TrainConfig
    writer_reference: str = "training"  # a known writer's medians from its training drawings, or "evaluated" set
    test_time_views: int = 0    # predictions averaged over the image and this many distorted copies
    test_time_augment: AugmentConfig = NO_AUGMENTATION
    test_time_seed: int = 0     # the distortions' seed: the same image always gets the same answer
    writer_minimum_images: int = 10  # fewer images of a writer: geometry measured against the training set

    def to_dict(self) -> dict:
        return {name: value.to_dict() if hasattr(value, "to_dict") else value for name, value in vars(self).items()}

    def predict(self, model, inputs: LabelledImages) -> torch.Tensor:
        if self.test_time_views:
            return predict_averaged_over_views(model, inputs.images, inputs.geometry, self.test_time_views,
                                               self.test_time_augment, self.test_time_seed).cpu()
        return predict_logits(model, inputs.images, inputs.geometry).cpu()


# ----------------------------------------------------------------------------- hyperparameters
# The recipe, one value per line, each with its reason; the notebook prints this table.
RECIPE = Recipe(
    preprocessing="mnist_thinned",  # MNIST's convention (LeCun et al. 1998), so Tasks 2 and 3 can transfer, with the
    #                             tablet's thick strokes thinned to MNIST's width: +0.9 points CV (seen writers) in two
    #                             runs on different folds and seeds (explorations/results/task1_recipe_choice*.json)
    geometry="writer",          # ink-box size and position relative to the writer's medians: carries case
    model=ModelConfig(
        num_classes=62,
        geometry_features=4,    # log height, log width, centre x, centre y of the ink box
        widths=(24, 48, 96),    # channels per stage: accuracy per unit of CPU compute (see notebook)
        head_dropout=0.1,
    ),
    training=TrainConfig(
        epochs=60,              # ~1,860 steps of 64 on 1,984 images; CV accuracy has plateaued by then
        batch_size=64,          # small data: more, noisier steps generalise better than few large ones
        optimizer="sgd",        # Nesterov momentum SGD
        learning_rate=0.05,     # one-cycle peak (Smith & Topin 2019)
        momentum=0.9,
        weight_decay=5e-4,      # decoupled from BatchNorm and biases
        warmup_fraction=0.2,
        label_smoothing=0.1,    # Szegedy et al. 2016: o/O/0-like classes should not be fitted to certainty
        augment=AugmentConfig(
            rotate_degrees=10, shear=0.15, scale=(0.85, 1.15), translate_pixels=2.0,
            elastic_pixels=1.0, elastic_grid=4,  # Simard et al. 2003: other drawings' wobble
            geometry_log_scale=0.1,              # +-10 % size jitter: writers' size is not exact
        ),
    ),
    writer_reference="training",  # a test drawing's writer drew ~45 characters in trainPart1: a steadier median
    test_time_views=8,          # average over 8 mildly distorted copies: one drawing is one noisy sample
    test_time_augment=AugmentConfig(rotate_degrees=5, shear=0.05, scale=(0.95, 1.05), translate_pixels=1.0),
    test_time_seed=0,
    writer_minimum_images=10,   # a writer's median needs several drawings; trainPart1's writers have 38-52
)
FOLDS = 5                       # images: 8 of each class's 40 drawings per fold; writers: 11 writers per fold
FOLD_SEED = 0                   # which drawings (or writers) share a fold
# Fold k's network and batch order use seed k; the final network uses seed 0.
PROTOCOLS = {
    "images": "seen writers: 8 of each class's 40 drawings held out per fold, their writers' other drawings in "
              "training (testPart1's protocol)",
    "writers": "new writers: each fold's 11 validation writers absent from training",
}

# Each ablation changes one choice of RECIPE, to show what that choice is worth.
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
# Scored on the same networks as the recipe (a different prediction, no training): paired exactly.
PREDICTION_VARIANTS = {
    "no test-time augmentation (same networks)": lambda r: replace(r, test_time_views=0),
    "writer's medians from the evaluated images (same networks)": lambda r: replace(r, writer_reference="evaluated"),
}

BUDGETS = {
    "quick": {"epochs": 3, "folds_run": 2, "ablation_folds_run": 1, "ablations": ["no geometry input"]},
    "full": {"epochs": RECIPE.training.epochs, "folds_run": FOLDS, "ablation_folds_run": FOLDS,
             "ablations": list(ABLATIONS)},
}
PUBLIC_SOLUTIONS_ON_TESTPART1 = [  # top-1 on the same 930 images, as their READMEs/notebooks report it (not rerun)
    ("Anshul22Verma/MIDAS", "https://github.com/Anshul22Verma/MIDAS", 0.6344),
    ("pr2tik1/midas-task-2", "https://github.com/pr2tik1/midas-task-2", 0.5237),
]


def recipe_for(budget: str, recipe: Recipe = RECIPE) -> Recipe:
    return replace(recipe, training=replace(recipe.training, epochs=BUDGETS[budget]["epochs"]))


# ----------------------------------------------------------------------------- steps

@dataclass
class References:
    """What a drawing's ink box is measured against, all taken from training drawings: the training set's median
    drawing (the fallback), each training writer's median drawing, and each training writer's tall and short
    size levels (from its labels) with the population's offsets for writers without labels."""
    training_set: list[float]
    writers: dict[int, list[float]]
    writer_cases: dict[int, list[float]]
    case_offsets: list[float]

    @classmethod
    def measure(cls, training: CharacterImages, minimum_images: int) -> "References":
        writers = writer_references(training.geometry, training.writers, minimum_images)
        cases = writer_case_heights(training.geometry, training.writers, training.labels, CLASS_CHARACTERS)
        return cls(geometry_reference(training.geometry), writers, cases, case_height_offsets(cases, writers))

    def to_dict(self) -> dict:
        return dict(vars(self))


def network_inputs(characters: CharacterImages, recipe: Recipe, references: References) -> LabelledImages:
    """Images, labels and the geometry side input. A drawing by a training writer is measured against that writer's
    training drawings when the recipe says so (`writer_reference="training"`), else against the writer's drawings in
    `characters` (for a new writer, always)."""
    known = recipe.writer_reference == "training"
    geometry = geometry_inputs(characters.geometry, characters.writers, recipe.geometry, references.training_set,
                               recipe.writer_minimum_images, references.writers if known else None,
                               references.writer_cases if known else None, references.case_offsets)
    return LabelledImages(characters.images, characters.labels, geometry)


def folds_of(characters: CharacterImages, protocol: str,
             fold_seed: int = FOLD_SEED) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The protocol's folds; another `fold_seed` deals the drawings (or writers) into folds afresh (a replication)."""
    if protocol == "images":
        return stratified_kfold(characters.labels, FOLDS, fold_seed)
    if protocol == "writers":
        return grouped_kfold(characters.writers, FOLDS, fold_seed)
    raise ValueError(f"unknown protocol {protocol!r}; use one of {list(PROTOCOLS)}")


def fold_scores(predictions: torch.Tensor, labels: torch.Tensor, suffix: str = "") -> dict:
    return {f"accuracy{suffix}": analysis.accuracy(predictions, labels),
            f"accuracy_case_merged{suffix}": analysis.case_merged_accuracy(predictions, labels)}


def cross_validate(recipe: Recipe, characters: CharacterImages, folds_run: int = FOLDS, progress: bool | None = None,
                   description: str = "", save_first_fold_to=None, protocol: str = "writers",
                   prediction_variants: dict | None = None,
                   train_options: Callable[[CharacterImages], dict] | None = None, fold_seed: int = FOLD_SEED) -> dict:
    """k-fold CV under `protocol` (folds dealt with `fold_seed`): per-fold metrics and out-of-fold logits for every
    image scored. `characters` must be in the recipe's preprocessing (`load_for`). Each of `prediction_variants`
    ({name: recipe}) is scored on the same networks. `train_options(training part)` adds keywords to `train` (an
    exploration's batch order, say). With `save_first_fold_to`, fold 1's network is saved there (to demonstrate
    evaluation on drawings it has never seen)."""
    if characters.preprocessing != recipe.preprocessing:
        raise ValueError(f"the recipe reads trainPart1 preprocessed as {recipe.preprocessing!r}, these images are "
                         f"{characters.preprocessing!r}: load them with task1.load_for(recipe, budget)")
    folds = folds_of(characters, protocol, fold_seed)[:folds_run]
    logits = torch.full((len(characters), len(CLASS_CHARACTERS)), float("nan"))
    per_fold = []
    for fold, (train_index, validation_index) in enumerate(folds):
        train_part = characters.subset(train_index)
        references = References.measure(train_part, recipe.writer_minimum_images)
        validation_part = characters.subset(validation_index)
        validation = network_inputs(validation_part, recipe, references)
        # Validation accuracy after every epoch (one view, no test-time augmentation): the learning curve.
        seed = recipe.training.seed + fold  # the recipe's seed is 0: fold k's network and batch order use seed k
        result = train(build_model(recipe.model, seed=seed), network_inputs(train_part, recipe, references),
                       replace(recipe.training, seed=seed),
                       evaluation=Evaluation(every_epoch={"validation": validation}),
                       progress=progress, description=f"{description} fold {fold + 1}/{len(folds)}",
                       **(train_options(train_part) if train_options else {}))
        fold_logits = recipe.predict(result.model, validation)
        logits[validation_index] = fold_logits
        if save_first_fold_to is not None and fold == 0:
            save_final(result, recipe, references, characters, save_first_fold_to,
                       {"note": f"fold 1 of the {protocol}-protocol CV; trained without its validation drawings"})
        row = {"fold": fold, "validation_writers": sorted(set(validation_part.writers.tolist())),
               "validation_images": len(validation_index), **fold_scores(fold_logits.argmax(1), validation.labels),
               "train_seconds": result.history[-1]["wall_seconds"], "history": result.history, "variants": {}}
        for name, variant in (prediction_variants or {}).items():
            inputs = network_inputs(validation_part, variant, references)
            row["variants"][name] = fold_scores(variant.predict(result.model, inputs).argmax(1), validation.labels)
        per_fold.append(row)
    calibration = calibrate(logits, characters.labels, [index for _, index in folds])
    for row, (_, index), temperature in zip(per_fold, folds, calibration["temperatures_cross_fitted"]):
        writers, labels = characters.writers[index], characters.labels[index]
        for key, divisor in (("accuracy_writer_decoded", 1.0), ("accuracy_writer_decoded_calibrated", temperature)):
            decodable = divisor is not None and bool((writers >= 0).all())  # names without a writer: not decodable
            row[key] = analysis.accuracy(writer_consistent_predictions(
                logits[index] / divisor, writers, labels, CLASS_CHARACTERS), labels) if decodable else None
    return {"recipe": recipe.to_dict(), "protocol": protocol, "folds": per_fold, "out_of_fold_logits": logits,
            "scored": ~torch.isnan(logits[:, 0]), "calibration": calibration,
            **{key: analysis.summarise([f[key] for f in per_fold]) for key in (
                "accuracy", "accuracy_case_merged", "accuracy_writer_decoded", "accuracy_writer_decoded_calibrated")}}


def calibrate(logits: torch.Tensor, labels: torch.Tensor, fold_indices: list[torch.Tensor]) -> dict:
    """Temperature scaling on the out-of-fold predictions. Cross-fitted: fold k's temperature is fitted on the
    other folds' predictions, so the "after" ECE is measured on predictions its temperature never saw. The
    temperature over all folds is what the final checkpoint stores (evaluation and writer decoding use it)."""
    scored, cross_fitted = torch.cat(fold_indices), len(fold_indices) > 1

    def other_folds(index: torch.Tensor) -> torch.Tensor:
        return torch.cat([other for other in fold_indices if other is not index])
    temperatures = [analysis.fit_temperature(logits[other_folds(index)], labels[other_folds(index)])
                    if cross_fitted else None for index in fold_indices]
    probabilities = torch.softmax(logits[scored], 1)
    result = {"temperature": analysis.fit_temperature(logits[scored], labels[scored]),
              "temperatures_cross_fitted": temperatures,
              "ece_before": analysis.expected_calibration_error(probabilities, labels[scored]), "ece_after": None}
    if cross_fitted:
        scaled = torch.cat([torch.softmax(logits[index] / t, 1) for index, t in zip(fold_indices, temperatures)])
        result["ece_after"] = analysis.expected_calibration_error(scaled, labels[scored])
    return result


def save_final(result, recipe: Recipe, references: References, characters: CharacterImages, path, metrics: dict,
               temperature: float = 1.0):
    """The checkpoint `evaluate` needs: the recipe, the geometry references (the training set's, each training
    writer's median drawing and size levels) and the temperature its logits are divided by (fitted on the CV's
    out-of-fold predictions; 1.0 where none was fitted)."""
    known = recipe.writer_reference == "training"
    return finished_checkpoint(path, result, {"temperature": temperature,
        "task": "task1", "classes": CLASS_CHARACTERS, "preprocessing": recipe.preprocessing,
        "geometry": recipe.geometry, "geometry_reference": references.training_set,
        "writer_references": references.writers if known else {},
        "writer_case_heights": references.writer_cases if known else {}, "case_height_offsets": references.case_offsets,
        "recipe": recipe.to_dict(), "test_time_views": recipe.test_time_views,
        "test_time_augment": recipe.test_time_augment.to_dict(), "data": characters.source.describe(),
        "data_sha256": characters.source.sha256, "metrics": metrics})


def training_speed(model: ModelConfig, characters: CharacterImages, images: int = 1280) -> float:
    """Images per second of the training loop (augmentation included) on the CPU, for comparing
    network sizes side by side on any machine: one epoch over the first `images` images."""
    subset = network_inputs(characters.subset(torch.arange(images)), RECIPE,
                            References.measure(characters, RECIPE.writer_minimum_images))
    result = train(build_model(model), subset, replace(RECIPE.training, epochs=1), device="cpu", progress=False)
    return result.history[-1]["images_per_second"]


def load_for(recipe: Recipe, budget: str) -> CharacterImages:
    """trainPart1 in the recipe's preprocessing (decoded once; every preprocessing is cached together)."""
    return load_trainpart1(preprocessing=recipe.preprocessing, allow_standin=standin_allowed(budget))


# ----------------------------------------------------------------------------- the experiment

METRICS = ("accuracy", "accuracy_case_merged", "accuracy_writer_decoded", "accuracy_writer_decoded_calibrated")


def fold_runs(method: str, protocol: str, cross_validation: dict, variant: str | None = None) -> list[Run]:
    """A cross-validation as run records, one per fold (paired by fold); a prediction variant's rows carry the same
    networks' scores under another prediction, and the recipe's own config."""
    rows = []
    for fold in cross_validation["folds"]:
        scores = fold["variants"][variant] if variant else fold
        rows.append(Run("task1", variant or method, "scratch", seed=fold["fold"], fold=fold["fold"],
                        config=config_digest(cross_validation["recipe"]), protocol=protocol,
                        metrics={**{key: scores.get(key) for key in METRICS}, "train_seconds": fold["train_seconds"]},
                        history=None if variant else f"{protocol}/{method}/fold{fold['fold']}"))
    return rows


def run_experiment(budget: str, progress: bool | None = None, save_first_fold_to=None) -> dict:
    """Both cross-validations (the recipe, its prediction variants and its ablations), then the final network on all
    2,480 drawings. Every fold is one run record; the cross-validations themselves (with their out-of-fold logits)
    stay in memory under "cross_validations" for the notebook."""
    settings = BUDGETS[budget]
    started = time.perf_counter()
    recipe = recipe_for(budget)
    characters = load_for(recipe, budget)
    variants = {name: change(recipe) for name, change in PREDICTION_VARIANTS.items()}
    cross_validations, runs, histories = {}, [], {}
    for protocol in PROTOCOLS:
        main = cross_validate(recipe, characters, settings["folds_run"], progress, f"recipe, {protocol}",
                              save_first_fold_to if protocol == "writers" else None, protocol, variants)
        cross_validations[protocol] = {"recipe": main}
        runs += fold_runs("recipe", protocol, main) + [run for name in variants
                                                       for run in fold_runs("recipe", protocol, main, name)]
        for name in settings["ablations"]:
            ablated = ABLATIONS[name](recipe)
            cross_validations[protocol][name] = cv = cross_validate(
                ablated, load_for(ablated, budget), settings["ablation_folds_run"], progress,
                f"{name}, {protocol}", protocol=protocol)
            runs += fold_runs(name, protocol, cv)
        histories.update({f"{protocol}/{method}/fold{fold['fold']}": fold["history"]
                          for method, cv in cross_validations[protocol].items() for fold in cv["folds"]})
    references = References.measure(characters, recipe.writer_minimum_images)  # the final network: all 2,480 images
    final = train(build_model(recipe.model, seed=0), network_inputs(characters, recipe, references),
                  replace(recipe.training, seed=0), progress=progress, description="final model, all 2,480 images")
    calibration = {protocol: cv["recipe"]["calibration"] for protocol, cv in cross_validations.items()}
    metrics = {"cv_accuracy_images": over_runs(runs, "accuracy", method="recipe", protocol="images"),
               "cv_accuracy_writers": over_runs(runs, "accuracy", method="recipe", protocol="writers")}
    # testPart1's protocol is "images": its out-of-fold temperature is the one the checkpoint stores.
    path = save_final(final, recipe, references, characters, checkpoint_dir(budget) / "task1.pt", metrics,
                      calibration["images"]["temperature"])
    results = {"budget": budget, "data": characters.source.describe(), "data_sha256": characters.source.sha256,
               "device": final.device, "recipe": recipe.to_dict(), "runs": runs, "histories": histories,
               "calibration": calibration, "final_history": final.history, "checkpoint": project_relative(path),
               "total_seconds": time.perf_counter() - started}
    results["headline"] = headline_rows(results)
    save_results("task1", budget, results)
    return {**results, "cross_validations": cross_validations}


def judge_on_test_set(budget: str, checkpoint=None) -> dict:
    """testPart1, measured once with the network the CV chose (the same code path as `python -m src evaluate`):
    per image, case-merged, per class, the confusion matrix, and the writer-decoded reading of the same logits
    (transductive, and a property of the split, not of the classifier). Saved as results/task1_test.json."""
    from .evaluate import evaluate_checkpoint
    checkpoint = checkpoint or checkpoint_dir(budget) / "task1.pt"
    test_set = load_testpart1(allow_standin=standin_allowed(budget))
    report = evaluate_checkpoint(checkpoint, test_set.source.path, decode="writer", name="testPart1")
    report.update(data_sha256=test_set.source.sha256, device=device_name(), budget=budget)
    report["public_solutions"] = [{"repository": name, "url": url, "accuracy": accuracy}
                                  for name, url, accuracy in PUBLIC_SOLUTIONS_ON_TESTPART1]
    save_results("task1_test", budget, report)
    return report


def headline_rows(results: dict) -> list[dict]:
    """README's Task 1 rows: a query over the run records (testPart1's own rows come from its report)."""
    runs, rows = runs_of(results), []
    for protocol, label in (("images", "seen writers, testPart1's protocol"), ("writers", "new writers")):
        for metric, name in (("accuracy", "top-1 (62 classes)"), ("accuracy_case_merged", "case-ambiguous merged")):
            summary = over_runs(runs, metric, method="recipe", protocol=protocol)
            rows.append((f"CV on trainPart1, {label}: {name}", over_folds(summary, digits=2)))
    plain = over_runs(runs, "accuracy", method=PLAIN_RESIZE, protocol="images")
    if plain["n"]:
        rows.append(("CV top-1 with the public solutions' preprocessing (plain 32x32 resize), seen writers",
                     over_folds(plain, digits=2)))
    return headline(rows, results["device"], "task1", results["budget"])


def testpart1_headline_rows(test: dict) -> list[dict]:
    """README's rows for the one evaluation on testPart1."""
    rows = [(f"testPart1 ({test['n']} drawings), task1.pt: top-1 / case-ambiguous merged",
             f"{100 * test['accuracy']:.2f} % / {100 * test['accuracy_case_merged']:.2f} %"),
            ("testPart1, writer-consistent decoding of the same logits (a property of the split, not the answer)",
             f"{100 * test['accuracy_writer_decoded']:.2f} %")]
    return headline(rows, test["device"], "task1", test["budget"])


# ----------------------------------------------------------------------------- what the notebook states

def over_folds(summary: dict, digits: int = 1) -> str:
    """'92.5 ± 1.5 % (n=5 folds)' from an `over_runs` summary of accuracies."""
    return f"{100 * summary['mean']:.{digits}f} ± {100 * summary['std']:.{digits}f} % (n={summary['n']} folds)"


def _folds(runs: list[Run], metric: str, protocol: str) -> str:
    return over_folds(over_runs(runs, metric, method="recipe", protocol=protocol))


def answer_box(results: dict, test: dict) -> str:
    """The notebook's first answer (Markdown, under 120 words), every number read from this run's results."""
    runs = runs_of(results)
    public = " and ".join(f"{100 * row['accuracy']:.1f} %" for row in test["public_solutions"])
    return (f"**Question.** How well does a CNN trained from scratch on trainPart1's 2,480 drawings read "
            f"testPart1's {test['n']}?\n\n"
            f"**Answer.** It reads **{100 * test['accuracy']:.1f} %** of them "
            f"({100 * test['accuracy_case_merged']:.1f} % counting look-alikes such as o/O/0 as one), against "
            f"{public} for public solutions on the same images.\n\n"
            f"**Evidence.** Cross-validation on trainPart1 alone: {_folds(runs, 'accuracy', 'images')} on drawings "
            f"by seen writers (testPart1's protocol), {_folds(runs, 'accuracy', 'writers')} on new writers.\n\n"
            f"**Caveat.** Most remaining errors are characters that look the same in another case (0/O/o, 1/I/l). "
            f"Decoding each writer's test drawings jointly reaches {100 * test['accuracy_writer_decoded']:.1f} %, "
            f"but only because the split leaks which characters each writer has left.")


def methods(results: dict, protocol: str) -> list[str]:
    """The recipe, its prediction variants, then its ablations, in the order they ran."""
    return list(dict.fromkeys(run.method for run in runs_of(results) if run.protocol == protocol))


def ablation_rows(results: dict, protocol: str, metric: str = "accuracy") -> dict[str, list[float]]:
    """Per-fold values (in fold order) of every method under one protocol: the figure's and the table's rows."""
    runs = runs_of(results)
    return {name: [run.metrics[metric] for run in sorted(select(runs, method=name, protocol=protocol),
                                                         key=lambda run: run.fold)]
            for name in methods(results, protocol)}


def versus_recipe(results: dict, protocol: str, method: str, metric: str = "accuracy") -> str:
    """A method against the recipe under one protocol, paired by fold, as a conclusion may state it."""
    test = compare(runs_of(results), {"method": method, "protocol": protocol},
                   {"method": "recipe", "protocol": protocol}, metric, paired_by="fold")
    return "not compared (no paired folds)" if test is None else paired_test_text(test)


def conclusions(results: dict, test: dict) -> str:
    """Every number the notebook concludes from, with the paired test behind each difference."""
    runs = runs_of(results)
    lines = [f"Data: {results['data']}; test set: {test['data']}.",
             "Differences are paired by fold (same folds, same seeds); a difference whose test does not resolve it "
             "(p >= 0.05) is reported, not claimed.", ""]
    public = "; ".join(f"{row['repository']} {100 * row['accuracy']:.2f} %" for row in test["public_solutions"])
    lines.append(f"1. testPart1 ({test['n']} drawings, measured once with the network the CV chose): top-1 "
                 f"{100 * test['accuracy']:.2f} %, case-ambiguous classes merged "
                 f"{100 * test['accuracy_case_merged']:.2f} %. Public solutions on the same images: {public}.")
    for number, (protocol, label) in enumerate((("images", "seen writers (testPart1's protocol)"),
                                                ("writers", "new writers")), start=2):
        lines.append(f"{number}. CV on trainPart1, {label}: top-1 {_folds(runs, 'accuracy', protocol)}, "
                     f"case-merged {_folds(runs, 'accuracy_case_merged', protocol)}. Each change against the recipe:")
        lines += [f"   - {name}: {versus_recipe(results, protocol, name)}"
                  for name in methods(results, protocol) if name != "recipe"]
    calibration = results["calibration"]["images"]
    if calibration["ece_after"] is not None:
        lines.append(f"4. Probabilities: label smoothing leaves the network under-confident (out-of-fold ECE "
                     f"{calibration['ece_before']:.3f}, seen-writer CV); a temperature fitted on the other folds "
                     f"brings it to {calibration['ece_after']:.3f}. task1.pt stores T = "
                     f"{calibration['temperature']:.2f}; on testPart1 the ECE is "
                     f"{test['expected_calibration_error']:.3f}.")
    pairs = analysis.most_confused_pairs(torch.tensor(test["confusion"]), CLASS_CHARACTERS, 6)
    lines.append("5. The most frequent test errors (true -> read as): "
                 + ", ".join(f"{true}->{read} ({count})" for true, read, count in pairs) + ".")
    lines.append(f"6. Each writer drew each character once, so a writer's test drawings are exactly the characters "
                 f"missing from their training drawings. Assigning each writer's test drawings to distinct characters "
                 f"(writer-consistent decoding) gives {100 * test['accuracy_writer_decoded']:.2f} %: a property of "
                 f"the split, not of the classifier, and not the answer.")
    lines.append(f"7. The network is {results['checkpoint']}; `python -m src evaluate --checkpoint "
                 f"{results['checkpoint']} --data <testPart1.zip>` reproduces item 1.")
    return "\n".join(lines)
