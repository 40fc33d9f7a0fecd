"""Why does the scratch control of Task 2's linear probe, then fine-tune (LP-FT) lose validation accuracy when its
backbone is released, while the pretrained network does not?

The suspect is batch normalisation. The frozen epoch keeps batch norm's running statistics as the network arrives
with them: fitted to the 400 digits for `digits400`, the initial placeholders (mean 0, variance 1) for a random
network. The head learns on features normalised by those; at the release, training normalises by each batch's own
statistics and the running ones follow within a few dozen steps, so a head fitted to placeholder statistics suddenly
reads features on another scale. If that is the cause, recomputing the statistics on MNIST images before the probe
(the weights untouched) removes the fall.

For each seed, Task 2's `probe_then_finetune` runs twice from the same random network (the one the notebook's
scratch control starts from), as in the notebook and with the statistics recomputed, paired by seed. Validation
images only; the test set is not read.

`--statistics-only` separates batch norm's share of the fall from the weights': it runs the probe alone and then lets
only the running statistics follow as many augmented training batches as the release's first 30 steps feed them
(forward passes, no weight changes), and measures validation accuracy before and after.

    python -m explorations.task2_release --seeds 0 1 2 --out explorations/results/task2_release.json
    python -m explorations.task2_release --seeds 0 1 2 --statistics-only --out explorations/results/task2_release_statistics.json
"""
from __future__ import annotations

import argparse
import copy
from dataclasses import replace

import torch

from explorations import write_report
from explorations.task1_search import recompute_batch_norm
from src import task2
from src.analysis import Run, accuracy, config_digest
from src.augment import augment_batch
from src.data.mnist import load_mnist_splits
from src.data.splits import stratified_subset
from src.model import build_model
from src.recipes import DIGIT_MODEL, MNIST_RECIPE, TRAIN_SAMPLE_IMAGES, VALIDATION_IMAGES
from src.settings import device_name
from src.train import _batch_images, predict_logits, train  # _batch_images: the loop's own uint8 -> [0, 1] rule

VARIANTS = ("statistics as initialised", "statistics recomputed on MNIST")
MEASURED = ("drop_after_release", "final_validation_accuracy", "steps_to_0.99")
STATISTICS_STEPS = 30  # training batches the running statistics follow: the release's first 30 steps


def statistics_only_release(network, train_set, validation, recipe) -> dict:
    """The probe alone, then batch norm's running statistics alone following STATISTICS_STEPS augmented training
    batches as at the release (train mode, no gradients): validation accuracy before and after."""
    probed = train(network, train_set, task2.stages("probe_then_finetune", recipe)[0], progress=False).model

    def validation_accuracy() -> float:
        return accuracy(predict_logits(probed, validation.images).argmax(1), validation.labels)

    before, generator = validation_accuracy(), torch.Generator().manual_seed(recipe.seed + 1)
    probed.train()
    with torch.no_grad():
        for _ in range(STATISTICS_STEPS):
            index = torch.randint(len(train_set), (recipe.batch_size,), generator=generator)
            images, _ = augment_batch(_batch_images(train_set.images[index]), recipe.augment, generator)
            probed(images.contiguous(memory_format=torch.channels_last), None)
    after = validation_accuracy()
    return {"validation_accuracy_at_release": before, "validation_accuracy_after_statistics": after,
            "fall_from_statistics_alone": before - after}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--train-images", type=int, default=None, help="a stratified subset, for a smoke run")
    parser.add_argument("--statistics-only", action="store_true", help="the probe and batch norm's statistics alone")
    parser.add_argument("--out", required=True)
    arguments = parser.parse_args(argv)
    train_set, validation, _, mnist_source = load_mnist_splits(VALIDATION_IMAGES)
    if arguments.train_images:
        train_set = stratified_subset(train_set, arguments.train_images)
    statistics_images = stratified_subset(train_set, min(TRAIN_SAMPLE_IMAGES, len(train_set)), seed=0)
    report = {"data": [mnist_source.describe()], "device": device_name(), "recipe": MNIST_RECIPE.to_dict(), "runs": [],
              "command": "python -m explorations.task2_release --seeds " + " ".join(map(str, arguments.seeds))
                         + (f" --train-images {arguments.train_images}" if arguments.train_images else "")
                         + (" --statistics-only" if arguments.statistics_only else "") + " --out " + arguments.out}
    for seed in arguments.seeds:
        random_network = build_model(DIGIT_MODEL, seed=seed)  # the notebook's scratch start of this seed
        for variant in VARIANTS:
            network = copy.deepcopy(random_network)
            if variant == VARIANTS[1]:
                recompute_batch_norm(network, statistics_images)  # weights untouched
            recipe = replace(MNIST_RECIPE, seed=seed)  # its closing reading is of the validation images again
            if arguments.statistics_only:
                measured = statistics_only_release(network, train_set, validation, recipe)
                report["runs"].append(Run("task2", variant, "scratch", seed, config=config_digest(recipe),
                                          metrics=measured))
                print(f"seed {seed}, {variant}: validation {100 * measured['validation_accuracy_at_release']:.2f} % "
                      f"after the probe, {100 * measured['validation_accuracy_after_statistics']:.2f} % once batch "
                      f"norm's statistics alone followed {STATISTICS_STEPS} training batches", flush=True)
                write_report(arguments.out, report)
                continue
            _, metrics, curves = task2.train_on_mnist(network, "probe_then_finetune", recipe,
                                                      (train_set, validation, validation), progress=False)
            released = curves["releases"][0]
            at_release = [row["validation_accuracy"] for row in curves["history"] if row["steps"] <= released]
            report["runs"].append(Run("task2", variant, "scratch", seed, config=config_digest(recipe), metrics={
                **{name: metrics[name] for name in MEASURED}, "validation_accuracy_at_release": at_release[-1]}))
            fall = metrics["drop_after_release"]  # None when no evaluation came before the release (tiny subsets)
            print(f"seed {seed}, {variant}: validation {100 * at_release[-1]:.2f} % at the release (step {released}), "
                  f"largest fall after it {'unmeasured' if fall is None else f'{100 * fall:.2f} points'}, final "
                  f"{100 * metrics['final_validation_accuracy']:.2f} %", flush=True)
            write_report(arguments.out, report)


if __name__ == "__main__":
    main()
