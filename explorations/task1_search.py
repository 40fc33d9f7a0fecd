"""Exploration (not part of any notebook): does any small change to Task 1's recipe resolve a gain under repeated,
paired cross-validation?

Every candidate changes one thing of `task1.RECIPE` and is cross-validated on the SAME folds with the SAME seeds as
the recipe (paired). Repeat r deals the folds with fold seed r and trains fold k with seed 1000 r + k, so repeat 0 is
exactly the notebook's CV (`task1.cross_validate`: fold seed 0, seeds 0..4). One run record per candidate and fold
(`fold` = `seed` = 1000 r + k): top-1, case-merged and training seconds. Nothing here reads testPart1.

Candidates that score the recipe's own networks cost no training: "ema" (an exponential moving average of the
weights, decay 0.998 per step, updated by `train`'s on_step hook; its batch-norm buffers are averaged the same way),
"swa" (the mean of the weights at the end of each of the last 25 % of epochs, batch-norm statistics then recomputed
in one pass over the un-augmented training fold), and the test-time view counts. "ensemble of recipe + resolution
40/28" averages the probabilities of two networks of the same fold (saved under the data folder, not committed).
The rest train a network each. Mixup runs through `train` unchanged: a wrapper network mixes each augmented batch
(images and geometry, one lambda ~ Beta(0.2, 0.2) per batch) and a loss function reads the wrapper's lambda and
permutation; `--check` shows that with mixup off this path gives the recipe's weights bit for bit.

The differences are judged with the corrected resampled t-test of Nadeau & Bengio (2003), which widens the paired
t-test's variance for the overlap of CV training sets (n_test / n_train = 1 / (k - 1) for k folds).

    python -m explorations.task1_search --check --epochs 2          # reproduction checks (prints only)
    python -m explorations.task1_search --protocol images --repeats 0 --out explorations/results/task1_search.json
    python -m explorations.task1_search --protocol images --repeats 1 2 --candidates recipe NAME ... \
        --out explorations/results/task1_search.json
    python -m explorations.task1_search --protocol writers --repeats 0 1 2 --candidates recipe NAME ... \
        --out explorations/results/task1_search.json
    python -m explorations.task1_search --report --out explorations/results/task1_search.json

Run with PLAYMNIST_TRAINPART1 pointing at the real trainPart1.zip. On a CPU shared with other processes, set
OMP_WAIT_POLICY=PASSIVE: OpenMP's waiting threads then sleep instead of spinning, which was 2-12x faster here under
contention and gives the same numbers (a 2-epoch fold's outputs were identical under both policies).
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import re
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from scipy import stats

from explorations import write_report
from src import analysis
from src.analysis import Run
from src.data import preprocess
from src.data.datasets import CharacterImages
from src.data.files import list_source
from src.data.labelled import LabelledImages
from src.data.preprocess import GeometryReferences
from src.data.sources import cached, decode_all
from src.model import CharacterCNN, build_model
from src.recipes import FOLDS, RECIPE, Recipe
from src.settings import data_dir, device_name
from src.task1 import PROTOCOLS, fold_scores, folds_of, inputs_for, load_for, recipe_predict
from src.train import cross_entropy, train

REPEAT_SEED_STEP = 1000          # repeat r, fold k: fold id and seed 1000 r + k
EMA_DECAY = 0.998
SWA_SHARE = 0.25                 # the last quarter of the epochs
MIXUP_ALPHA = 0.2
FINE_FIELD, FINE_FIT = 40, 28


# ----------------------------------------------------------------------------- networks and weight averages

class ResidualBlock(nn.Module):
    """A convolution block (conv, BN, ReLU) with an identity skip, as in He et al. (2016): ReLU(x + BN(conv(x))).
    Wraps the block's own layers, so the parameters (and their seeded initial values) are the recipe's."""

    def __init__(self, block: nn.Sequential):
        super().__init__()
        self.convolution, self.norm = block[0], block[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.norm(self.convolution(x)))


def residual_network(recipe: Recipe, seed: int) -> CharacterCNN:
    """The recipe's network with each stage's second convolution block (stages 2 and 3) wrapped with an identity
    skip: same widths, same head, same initial weights, same compute plus two additions."""
    network = build_model(recipe.model, seed=seed)
    for stage in (network.backbone.stage2, network.backbone.stage3):
        stage[1] = ResidualBlock(stage[1])
    return network


class Mixup(nn.Module):
    """Mixup (Zhang et al., 2018) as a wrapper `train` calls like any network: in training mode each (augmented)
    batch is mixed with a permutation of itself, images and geometry by the same lambda ~ Beta(alpha, alpha); `loss`
    is lambda CE(y) + (1 - lambda) CE(y[permutation]) with the recipe's label smoothing. Its own generators, so the
    recipe's shuffling, augmentation and dropout draws are untouched; alpha 0 is the recipe exactly."""

    def __init__(self, network: nn.Module, alpha: float, seed: int, label_smoothing: float):
        super().__init__()
        self.network, self.alpha = network, alpha
        self.lambdas = np.random.default_rng(seed)
        self.permutations = torch.Generator().manual_seed(seed)
        self.cross_entropy = cross_entropy(label_smoothing)
        self.mixed: tuple[float, torch.Tensor] | None = None

    def forward(self, images: torch.Tensor, geometry: torch.Tensor | None = None) -> torch.Tensor:
        self.mixed = None
        if self.training and self.alpha > 0:
            share = float(self.lambdas.beta(self.alpha, self.alpha))
            order = torch.randperm(len(images), generator=self.permutations).to(images.device)
            images = share * images + (1 - share) * images[order]
            if geometry is not None:
                geometry = share * geometry + (1 - share) * geometry[order]
            self.mixed = (share, order)
        return self.network(images, geometry)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.mixed is None:
            return self.cross_entropy(logits, labels)
        share, order = self.mixed
        return share * self.cross_entropy(logits, labels) + (1 - share) * self.cross_entropy(logits, labels[order])


class WeightAverages:
    """Both weight averages of one training run, from `train`'s on_step hook (reads the weights, draws nothing):
    `ema` (decay EMA_DECAY per step over every entry of the state dict, parameters and batch-norm buffers alike,
    started as a copy of the weights after the first step) and `swa` (the parameters' mean over the ends of the last
    SWA_SHARE of the epochs; its batch-norm statistics are recomputed after training, see `recompute_batch_norm`)."""

    def __init__(self, steps_per_epoch: int, epochs: int):
        self.steps_per_epoch = steps_per_epoch
        self.first_swa_epoch = epochs - math.ceil(SWA_SHARE * epochs) + 1
        self.ema: nn.Module | None = None
        self.swa: nn.Module | None = None
        self.swa_count = 0

    @torch.no_grad()
    def __call__(self, step: int, model: nn.Module) -> None:
        if self.ema is None:
            self.ema = copy.deepcopy(model)
        else:
            live = model.state_dict()
            for name, average in self.ema.state_dict().items():
                if average.is_floating_point():
                    average.lerp_(live[name], 1 - EMA_DECAY)
                else:
                    average.copy_(live[name])
        if step % self.steps_per_epoch == 0 and step // self.steps_per_epoch >= self.first_swa_epoch:
            if self.swa is None:
                self.swa = copy.deepcopy(model)
            else:
                for average, current in zip(self.swa.parameters(), model.parameters()):
                    average.add_((current - average) / (self.swa_count + 1))
            self.swa_count += 1


@torch.no_grad()
def recompute_batch_norm(model: nn.Module, data: LabelledImages, batch_size: int = 64) -> None:
    """Every batch-norm layer's statistics from one pass over `data` (in order, un-augmented): each batch's mean and
    variance weighted equally (momentum None), as torch.optim.swa_utils.update_bn does; dropout stays off."""
    norms = [module for module in model.modules() if isinstance(module, nn.modules.batchnorm._BatchNorm)]
    momenta = [norm.momentum for norm in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
    model.train()
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.eval()
    for index in torch.tensor_split(torch.arange(len(data)), math.ceil(len(data) / batch_size)):
        model(data.images[index].contiguous(memory_format=torch.channels_last),
              None if data.geometry is None else data.geometry[index])
    for norm, momentum in zip(norms, momenta):
        norm.momentum = momentum
    model.eval()


# ----------------------------------------------------------------------------- 40x40 images

def fine_images(characters: CharacterImages) -> torch.Tensor:
    """The same drawings in the same order, preprocessed as the recipe's "mnist_thinned" but into a 40x40 field with
    the ink fitted into 28x28 (cached under the data folder; decoding is the cost, ~20 ms an image)."""
    if characters.preprocessing != "mnist_thinned":
        raise ValueError("the 40x40 images are made as the recipe's 'mnist_thinned'")
    source = Path(characters.source.path)

    def build() -> dict:
        listing = list_source(source)

        def transform(luminance, name):
            return preprocess.to_mnist_convention(luminance, name, thin_thick_strokes=True, field=FINE_FIELD,
                                                  fit=FINE_FIT)[0]

        kept, skipped = decode_all(source, list(characters.files), listing.read, transform, skip_bad=False)
        return {"images": torch.stack([image for _, image in kept])[:, None].contiguous(),
                "files": [name for name, _ in kept], "skipped": skipped}

    content = cached("trainpart1-search", characters.source.sha256, f"mnist_thinned{FINE_FIELD}",
                     preprocess.PREPROCESSING_VERSION, build)
    if content["files"] != list(characters.files):
        raise RuntimeError("the 40x40 cache lists other files than the 28x28 images; delete it and re-run")
    return content["images"]


def finer_recipe(recipe: Recipe) -> Recipe:
    """Distortions given in pixels (translation, elastic amplitude; training and test-time views) grow with the
    field by 40/28, so they stay the same relative to the character."""
    scale = FINE_FIELD / preprocess.FIELD
    augment, views = recipe.training.augment, recipe.test_time_augment
    return replace(recipe,
                   training=replace(recipe.training, augment=replace(
                       augment, translate_pixels=augment.translate_pixels * scale,
                       elastic_pixels=augment.elastic_pixels * scale)),
                   test_time_augment=replace(views, translate_pixels=views.translate_pixels * scale,
                                             elastic_pixels=views.elastic_pixels * scale))


# ----------------------------------------------------------------------------- candidates

@dataclass(frozen=True)
class Network:
    """One trained network per fold: its recipe, its images ("fine": 40x40), how it is built, and what scores it."""
    name: str
    change: str                     # what differs from the recipe (recorded in each run's config digest)
    recipe: Recipe
    images: str = "recipe"          # "recipe" (28x28) or "fine" (40x40)
    build: str = "recipe"           # "recipe", "residual" or "mixup"


def networks(recipe: Recipe) -> dict[str, Network]:
    training = recipe.training
    return {network.name: network for network in [
        Network("recipe", "none", recipe),
        Network("stroke width jitter 0.5", "AugmentConfig.stroke_width_jitter = 0.5",
                replace(recipe, training=replace(training, augment=replace(training.augment,
                                                                           stroke_width_jitter=0.5)))),
        Network("label smoothing 0.2", "label_smoothing = 0.2",
                replace(recipe, training=replace(training, label_smoothing=0.2))),
        Network("mixup 0.2", f"mixup, lambda ~ Beta({MIXUP_ALPHA}, {MIXUP_ALPHA}) per batch, images and geometry",
                recipe, build="mixup"),
        Network("residual", "identity skips around stage 2's and stage 3's second convolution block", recipe,
                build="residual"),
        Network("longer 90 epochs", "1.5x the epochs (90 for the recipe's 60)",
                replace(recipe, training=replace(training, epochs=round(1.5 * training.epochs)))),
        Network("resolution 40/28", "preprocessed into 40x40, ink fitted into 28x28; pixel distortions x 40/28",
                finer_recipe(recipe), images="fine"),
    ]}


# candidate -> (the network it scores, how): "own" (the recipe's prediction on its own network), "ema", "swa",
# ("views", n) (the recipe's network with n test-time views); the ensemble is scored from saved probabilities.
SCORED_ON = {
    "recipe": ("recipe", "own"),
    "ema": ("recipe", "ema"),
    "swa": ("recipe", "swa"),
    "test-time views 16": ("recipe", ("views", 16)),
    "no test-time views": ("recipe", ("views", 0)),
    "longer 90 epochs": ("longer 90 epochs", "own"),
    "mixup 0.2": ("mixup 0.2", "own"),
    "stroke width jitter 0.5": ("stroke width jitter 0.5", "own"),
    "label smoothing 0.2": ("label smoothing 0.2", "own"),
    "resolution 40/28": ("resolution 40/28", "own"),
    "residual": ("residual", "own"),
}
ENSEMBLE = "ensemble of recipe + resolution 40/28"
ENSEMBLE_MEMBERS = ("recipe", "resolution 40/28")
CANDIDATES = [*SCORED_ON, ENSEMBLE]
NETWORK_ORDER = ["recipe", "stroke width jitter 0.5", "label smoothing 0.2", "mixup 0.2", "residual",
                 "longer 90 epochs", "resolution 40/28"]
SAVED_FOR_ENSEMBLE = set(ENSEMBLE_MEMBERS)


def candidate_change(name: str, nets: dict[str, Network]) -> str:
    network, how = SCORED_ON[name]
    if how == "ema":
        return f"EMA of the weights, decay {EMA_DECAY} per step, batch-norm buffers averaged too"
    if how == "swa":
        return f"SWA: mean of the weights at the ends of the last {SWA_SHARE:.0%} of epochs, batch norm recomputed"
    if isinstance(how, tuple):
        return f"{how[1]} test-time views (the recipe's networks)"
    return nets[network].change


def candidate_config(name: str, nets: dict[str, Network], recipe: Recipe) -> str:
    if name == ENSEMBLE:
        return analysis.config_digest({"candidate": name, "members": [nets[m].recipe.to_dict()
                                                                      for m in ENSEMBLE_MEMBERS]})
    network, how = SCORED_ON[name]
    scored = nets[network].recipe
    if isinstance(how, tuple):
        scored = replace(scored, test_time_views=how[1])
    return analysis.config_digest({"candidate": name, "change": candidate_change(name, nets),
                                   "recipe": scored.to_dict()})


# ----------------------------------------------------------------------------- one fold

def train_fold(network: Network, characters: CharacterImages, fine: torch.Tensor | None, train_index, validation_index,
               seed: int, wanted: list[str]) -> tuple[dict[str, torch.Tensor], float, dict]:
    """Train `network` on one fold with `seed` (the network's initial weights and the training's generators, as
    task1.cross_validate does) and return each wanted candidate's validation log-probabilities, the training seconds
    and extras (the averages' extra seconds)."""
    recipe = network.recipe
    images = characters if network.images == "recipe" else replace(characters, images=fine)
    train_part, validation_part = images.subset(train_index), images.subset(validation_index)
    references = GeometryReferences.measure(train_part.geometry, train_part.writers, recipe.writer_minimum_images)
    training, validation = inputs_for(train_part, recipe, references), inputs_for(validation_part, recipe,
                                                                                           references)
    config = replace(recipe.training, seed=seed)
    options = {}
    if network.build == "residual":
        model = residual_network(recipe, seed)
    elif network.build == "mixup":
        model = Mixup(build_model(recipe.model, seed=seed), MIXUP_ALPHA, seed, config.label_smoothing)
        options["loss_function"] = model.loss
    else:
        model = build_model(recipe.model, seed=seed)
    averages = None
    if any(SCORED_ON[name][1] in ("ema", "swa") for name in wanted):
        averages = WeightAverages(len(training) // min(config.batch_size, len(training)), config.epochs)
        options["on_step"] = averages
    result = train(model, training, config, progress=False, device="cpu", **options)
    trained = result.model.network if network.build == "mixup" else result.model
    outputs, extras = {}, {}
    for name in wanted:
        how = SCORED_ON[name][1]
        if how == "own":
            outputs[name] = recipe_predict(trained, validation, recipe)
        elif how == "ema":
            outputs[name] = recipe_predict(averages.ema.eval(), validation, recipe)
        elif how == "swa":
            started = time.perf_counter()
            recompute_batch_norm(averages.swa, training)
            extras["swa_seconds"] = time.perf_counter() - started
            extras["swa_snapshots"] = averages.swa_count
            outputs[name] = recipe_predict(averages.swa, validation, recipe)
        else:
            outputs[name] = recipe_predict(trained, validation, replace(recipe, test_time_views=how[1]))
    return outputs, result.history[-1]["wall_seconds"], extras


# ----------------------------------------------------------------------------- the search

def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def saved_path(protocol: str, repeat: int, fold: int, network: str) -> Path:
    return data_dir() / "task1_search" / f"{protocol}-repeat{repeat}-fold{fold}-{slug(network)}.pt"


def done(report: dict, candidate: str, protocol: str, fold_id: int) -> bool:
    return any(run["method"] == candidate and run["protocol"] == protocol and run["fold"] == fold_id
               for run in report["runs"])


def search(arguments, recipe: Recipe, characters: CharacterImages, report: dict) -> None:
    nets = networks(recipe)
    wanted = list(dict.fromkeys(arguments.candidates))
    fine = fine_images(characters) if any(
        nets[SCORED_ON[c][0]].images == "fine" for c in wanted if c in SCORED_ON) else None
    protocol = arguments.protocol
    for repeat in arguments.repeats:
        folds = folds_of(characters, protocol, fold_seed=repeat)[:arguments.folds]
        for network_name in NETWORK_ORDER:
            members = [c for c in wanted if c in SCORED_ON and SCORED_ON[c][0] == network_name]
            for fold, (train_index, validation_index) in enumerate(folds):
                fold_id = seed = REPEAT_SEED_STEP * repeat + fold
                missing = [c for c in members if not done(report, c, protocol, fold_id)]
                if not missing:
                    continue
                labels = characters.labels[validation_index]
                outputs, seconds, extras = train_fold(nets[network_name], characters, fine, train_index,
                                                      validation_index, seed, missing)
                if network_name in SAVED_FOR_ENSEMBLE and network_name in outputs:
                    path = saved_path(protocol, repeat, fold, network_name)
                    path.parent.mkdir(parents=True, exist_ok=True)
                    torch.save({"validation_index": validation_index, "log_probabilities": outputs[network_name],
                                "epochs": recipe.training.epochs}, path)
                cells = []
                for name in missing:
                    metrics = {**fold_scores(outputs[name].argmax(1), labels), "train_seconds": seconds,
                               **(extras if SCORED_ON[name][1] == "swa" else {})}
                    report["runs"].append(Run("task1", name, "scratch", seed=seed, fold=fold_id, protocol=protocol,
                                              config=candidate_config(name, nets, recipe), metrics=metrics).to_dict())
                    cells.append(f"{name} {100 * metrics['accuracy']:.2f} / {100 * metrics['accuracy_case_merged']:.2f}")
                write_report(arguments.out, report)
                print(f"{time.strftime('%H:%M:%S')} {protocol} repeat {repeat} fold {fold + 1}/{len(folds)} "
                      f"(seed {seed}) {network_name} network, {seconds:.0f} s: " + "; ".join(cells)
                      + " (top-1 / case-merged %)", flush=True)
        if ENSEMBLE in wanted:
            for fold, (_, validation_index) in enumerate(folds):
                fold_id = REPEAT_SEED_STEP * repeat + fold
                paths = [saved_path(protocol, repeat, fold, member) for member in ENSEMBLE_MEMBERS]
                if done(report, ENSEMBLE, protocol, fold_id):
                    continue
                if not all(path.exists() for path in paths):
                    print(f"{protocol} repeat {repeat} fold {fold + 1}: no ensemble (a member's probabilities are "
                          f"not saved: run {' and '.join(ENSEMBLE_MEMBERS)} first)", flush=True)
                    continue
                saved = [torch.load(path, weights_only=True) for path in paths]
                if not all(torch.equal(s["validation_index"], validation_index) for s in saved):
                    raise RuntimeError(f"{paths}: saved for other folds")
                averaged = torch.logsumexp(torch.stack([s["log_probabilities"] for s in saved]), 0) - math.log(2)
                seconds = sum(run["metrics"]["train_seconds"] for run in report["runs"]
                              if run["method"] in ENSEMBLE_MEMBERS and run["protocol"] == protocol
                              and run["fold"] == fold_id)
                metrics = {**fold_scores(averaged.argmax(1), characters.labels[validation_index]),
                           "train_seconds": seconds}
                report["runs"].append(Run("task1", ENSEMBLE, "scratch", seed=fold_id, fold=fold_id,
                                          protocol=protocol, config=candidate_config(ENSEMBLE, nets, recipe),
                                          metrics=metrics).to_dict())
                write_report(arguments.out, report)
                print(f"{time.strftime('%H:%M:%S')} {protocol} repeat {repeat} fold {fold + 1}/{len(folds)} {ENSEMBLE}: "
                      f"{100 * metrics['accuracy']:.2f} / {100 * metrics['accuracy_case_merged']:.2f}", flush=True)


# ----------------------------------------------------------------------------- checks and the report

def check(arguments, recipe: Recipe, characters: CharacterImages) -> None:
    """(1) The recipe's fold 1 of repeat 0 here against task1.cross_validate's fold 1 (same protocol); (2) the mixup
    path with mixup off (alpha 0) against the recipe's own path, weights and predictions bit for bit."""
    from src.task1 import cross_validate
    protocol = arguments.protocol
    train_index, validation_index = folds_of(characters, protocol, fold_seed=0)[0]
    nets = networks(recipe)
    started = time.perf_counter()
    plain = cross_validate(recipe, characters, 1, progress=False, protocol=protocol, fold_seed=0)
    mine, _, _ = train_fold(nets["recipe"], characters, None, train_index, validation_index, 0, ["recipe"])
    theirs = plain["out_of_fold_logits"][validation_index]
    labels = characters.labels[validation_index]
    print(f"check 1 ({protocol}, {recipe.training.epochs} epochs): cross_validate fold 1 top-1 "
          f"{100 * plain['folds'][0]['accuracy']:.4f} %, this script's {100 * fold_scores(mine['recipe'].argmax(1), labels)['accuracy']:.4f} %; "
          f"log-probabilities identical: {torch.equal(mine['recipe'], theirs)} "
          f"({time.perf_counter() - started:.0f} s)", flush=True)

    train_part = characters.subset(train_index)
    references = GeometryReferences.measure(train_part.geometry, train_part.writers, recipe.writer_minimum_images)
    training = inputs_for(characters.subset(train_index), recipe, references)
    validation = inputs_for(characters.subset(validation_index), recipe, references)
    config = replace(recipe.training, seed=0)
    reference = train(build_model(recipe.model, seed=0), training, config, progress=False, device="cpu").model
    wrapper = Mixup(build_model(recipe.model, seed=0), 0.0, 0, config.label_smoothing)
    wrapped = train(wrapper, training, config, loss_function=wrapper.loss, progress=False, device="cpu").model.network
    same_weights = all(torch.equal(a, b) for a, b in zip(reference.state_dict().values(),
                                                          wrapped.state_dict().values()))
    same_predictions = torch.equal(recipe_predict(reference, validation, recipe),
                                   recipe_predict(wrapped, validation, recipe))
    print(f"check 2 (mixup path, alpha 0): weights identical {same_weights}, predictions identical "
          f"{same_predictions}", flush=True)
    # and with mixup on, the same path really mixes (the weights differ)
    wrapper = Mixup(build_model(recipe.model, seed=0), MIXUP_ALPHA, 0, config.label_smoothing)
    mixed = train(wrapper, training, config, loss_function=wrapper.loss, progress=False, device="cpu").model.network
    print(f"check 3 (mixup path, alpha {MIXUP_ALPHA}): weights differ from the recipe's "
          f"{not all(torch.equal(a, b) for a, b in zip(reference.state_dict().values(), mixed.state_dict().values()))}",
          flush=True)


def print_report(report: dict) -> None:
    runs = [Run.from_dict(run) for run in report["runs"]]
    ratio = 1 / (report.get("folds_dealt", FOLDS) - 1)
    print(f"{report.get('data')}; machine: {report.get('device')}; epochs {report.get('epochs')}")
    print("corrected resampled t-test (Nadeau & Bengio 2003), n_test/n_train = "
          f"{ratio:.3f}; differences in points, paired by (repeat, fold)")
    for protocol in PROTOCOLS:
        base = {run.fold: run for run in runs if run.protocol == protocol and run.method == "recipe"}
        names = [name for name in CANDIDATES if any(r.method == name and r.protocol == protocol for r in runs)]
        if not names:
            continue
        print(f"\n{protocol} protocol ({PROTOCOLS[protocol]}):")
        print(f"  {'candidate':40s} {'n':>3s} {'top-1 %':>8s} {'merged %':>8s} {'diff':>7s} {'p':>6s} "
              f"{'95 % interval':>16s} {'diff mrg':>8s} {'p':>6s} {'train s':>7s}")
        for name in names:
            own = {run.fold: run for run in runs if run.protocol == protocol and run.method == name}
            paired = sorted(set(own) & set(base))
            top1 = np.mean([own[f].metrics["accuracy"] for f in paired]) if paired else float("nan")
            merged = np.mean([own[f].metrics["accuracy_case_merged"] for f in paired]) if paired else float("nan")
            seconds = np.mean([own[f].metrics["train_seconds"] for f in paired]) if paired else float("nan")
            cells = []
            for metric in ("accuracy", "accuracy_case_merged"):
                if name == "recipe":
                    cells.append(f"{'':>7s} {'':>6s} {'':>16s}" if metric == "accuracy" else f"{'':>8s} {'':>6s}")
                    continue
                test = analysis.corrected_resampled_t_test([100 * own[f].metrics[metric] for f in paired],
                                                           [100 * base[f].metrics[metric] for f in paired], ratio)
                p = "-" if math.isnan(test["p_value"]) else f"{test['p_value']:.3f}"
                cells.append(f"{test['mean_difference']:+{7 if metric == 'accuracy' else 8}.2f} {p:>6s}")
                if metric == "accuracy":  # the corrected test's 95 % interval of the mean difference
                    differences = [100 * (own[f].metrics[metric] - base[f].metrics[metric]) for f in paired]
                    half = (stats.t.ppf(0.975, len(paired) - 1) * math.sqrt(
                        (1 / len(paired) + ratio) * np.var(differences, ddof=1))) if len(paired) > 1 else math.nan
                    cells[-1] += f" [{test['mean_difference'] - half:+.2f}, {test['mean_difference'] + half:+.2f}]"
            print(f"  {name:40s} {len(paired):3d} {100 * top1:8.2f} {100 * merged:8.2f} {cells[0]} {cells[1]} "
                  f"{seconds:7.0f}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--protocol", choices=list(PROTOCOLS), default="images")
    parser.add_argument("--repeats", type=int, nargs="+", default=[0])
    parser.add_argument("--candidates", nargs="+", default=CANDIDATES, choices=CANDIDATES)
    parser.add_argument("--folds", type=int, default=FOLDS, help=f"folds run (of the {FOLDS} dealt)")
    parser.add_argument("--epochs", type=int, default=None, help="override the recipe's epochs (a smoke run)")
    parser.add_argument("--out", type=Path, default=Path("explorations/results/task1_search.json"))
    parser.add_argument("--report", action="store_true", help="print the table of the runs in --out and stop")
    parser.add_argument("--check", action="store_true", help="the reproduction checks (prints only)")
    parser.add_argument("--threads", type=int, default=2)
    arguments = parser.parse_args(argv)
    torch.set_num_threads(arguments.threads)
    if arguments.report:
        print_report(json.loads(arguments.out.read_text()))
        return
    recipe = replace(RECIPE, training=replace(RECIPE.training, epochs=arguments.epochs or RECIPE.training.epochs))
    characters = load_for(recipe, "full")
    if characters.source.is_standin:
        raise SystemExit("trainPart1 is a stand-in here: set PLAYMNIST_TRAINPART1 to the real trainPart1.zip")
    if arguments.check:
        check(arguments, recipe, characters)
        return
    report = json.loads(arguments.out.read_text()) if arguments.out.exists() else {"runs": []}
    if report.get("epochs", recipe.training.epochs) != recipe.training.epochs:
        raise SystemExit(f"{arguments.out} holds {report['epochs']}-epoch runs; write {recipe.training.epochs} "
                         f"epochs to another file")
    report.update({"question": __doc__.split("\n\n")[0].replace("\n", " "), "data": characters.source.describe(),
                   "device": device_name(), "torch_threads": torch.get_num_threads(), "epochs": recipe.training.epochs,
                   "folds_dealt": FOLDS, "repeat_seed_step": REPEAT_SEED_STEP,
                   "recipe": recipe.to_dict(),
                   "changes": {name: candidate_change(name, networks(recipe)) for name in SCORED_ON}})
    commands = report.setdefault("commands", [])
    command = "python -m explorations.task1_search " + " ".join(
        json.dumps(a) if " " in a else a for a in (argv if argv is not None else __import__("sys").argv[1:]))
    if command not in commands:
        commands.append(command)
    started = time.perf_counter()
    search(arguments, recipe, characters, report)
    print(f"finished in {(time.perf_counter() - started) / 60:.1f} min", flush=True)


if __name__ == "__main__":
    main()
