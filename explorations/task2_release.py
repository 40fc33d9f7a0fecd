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

    python -m explorations.task2_release --seeds 0 1 2 --out explorations/results/task2_release.json
"""
from __future__ import annotations

import argparse
import copy
from dataclasses import replace


from explorations import write_report
from explorations.task1_search import recompute_batch_norm
from src import task2
from src.analysis import Run, config_digest
from src.data.mnist import load_mnist_splits
from src.data.splits import stratified_subset
from src.model import build_model
from src.recipes import DIGIT_MODEL, MNIST_RECIPE, TRAIN_SAMPLE_IMAGES, VALIDATION_IMAGES
from src.settings import device_name

VARIANTS = ("statistics as initialised", "statistics recomputed on MNIST")
MEASURED = ("drop_after_release", "final_validation_accuracy", "steps_to_0.99")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--train-images", type=int, default=None, help="a stratified subset, for a smoke run")
    parser.add_argument("--out", required=True)
    arguments = parser.parse_args(argv)
    train_set, validation, _, mnist_source = load_mnist_splits(VALIDATION_IMAGES)
    if arguments.train_images:
        train_set = stratified_subset(train_set, arguments.train_images)
    statistics_images = stratified_subset(train_set, min(TRAIN_SAMPLE_IMAGES, len(train_set)), seed=0)
    report = {"data": [mnist_source.describe()], "device": device_name(), "recipe": MNIST_RECIPE.to_dict(), "runs": [],
              "command": "python -m explorations.task2_release --seeds " + " ".join(map(str, arguments.seeds))
                         + (f" --train-images {arguments.train_images}" if arguments.train_images else "")
                         + " --out " + arguments.out}
    for seed in arguments.seeds:
        random_network = build_model(DIGIT_MODEL, seed=seed)  # the notebook's scratch start of this seed
        for variant in VARIANTS:
            network = copy.deepcopy(random_network)
            if variant == VARIANTS[1]:
                recompute_batch_norm(network, statistics_images)  # weights untouched
            recipe = replace(MNIST_RECIPE, seed=seed)  # its closing reading is of the validation images again
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
