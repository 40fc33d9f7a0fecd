"""Which strokes should Task 2 pretrain on: trainPart1's 400 digits as drawn (thick tablet pen), or thinned to MNIST's
width like Task 1's recipe? Measured where the pretraining is meant to help, on MNIST, without any MNIST training.

For each seed, Task 2's pretraining (`recipes.PRETRAIN`, the full budget's epochs) runs twice from the same initial
weights and batch order, once on each version of the same 400 drawings; each network is scored zero-shot on the MNIST
validation images Task 2 holds out (never the test set), and by ridge linear probes on each stage's frozen features
(Task 2's probe: fitted on 5,000 MNIST training images, scored on the same validation images), paired by seed.

    python -m explorations.task2_digit_strokes --seeds 0 1 2 3 4 --out explorations/results/task2_digit_strokes.json
"""
from __future__ import annotations

import argparse
from dataclasses import replace

from explorations import write_report
from src import analysis, task2
from src.analysis import Run, config_digest
from src.data.mnist import load_mnist_splits
from src.data.splits import stratified_subset
from src.model import build_model
from src.recipes import DIGIT_MODEL, PRETRAIN, PROBE_IMAGES, PROBE_RIDGE, VALIDATION_IMAGES
from src.settings import device_name
from src.train import predict_logits, train

VERSIONS = {"as drawn": "mnist", "thinned to MNIST's width": "mnist_thinned"}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--epochs", type=int, default=PRETRAIN.epochs, help="fewer for a smoke run")
    parser.add_argument("--out", required=True)
    arguments = parser.parse_args(argv)
    recipe = replace(PRETRAIN, epochs=arguments.epochs)
    train_set, validation, _, mnist_source = load_mnist_splits(VALIDATION_IMAGES)
    probe_fit = stratified_subset(train_set, PROBE_IMAGES, seed=0)
    report = {"data": [], "device": device_name(), "recipe": recipe.to_dict(), "runs": [],
              "command": "python -m explorations.task2_digit_strokes --seeds "
                         + " ".join(map(str, arguments.seeds)) + " --out " + arguments.out}
    digits_by_version = {}
    for version, preprocessing in VERSIONS.items():
        digits_by_version[version], source = task2.digit_drawings("full", preprocessing)
        report["data"].append(f"{version}: {source.describe()}")
    report["data"].append(mnist_source.describe())
    for seed in arguments.seeds:
        for version, digits in digits_by_version.items():
            result = train(build_model(DIGIT_MODEL, seed=seed), digits, replace(recipe, seed=seed), progress=False)
            network = result.model.cpu()
            zero_shot = analysis.accuracy(predict_logits(network, validation.images).argmax(1).cpu(), validation.labels)
            probes = analysis.linear_probe_accuracies(network, probe_fit, validation, PROBE_RIDGE)
            report["runs"].append(Run("task2", version, "scratch", seed, config=config_digest(recipe), metrics={
                "mnist_validation_accuracy_zero_shot": zero_shot,
                **{f"linear_probe_{stage}": value for stage, value in probes.items()},
                "train_seconds": result.history[-1]["wall_seconds"]}))
            print(f"seed {seed}, {version}: zero-shot {100 * zero_shot:.2f} %, linear probe (stage 3) "
                  f"{100 * probes['stage3']:.2f} %", flush=True)
            write_report(arguments.out, report)


if __name__ == "__main__":
    main()
