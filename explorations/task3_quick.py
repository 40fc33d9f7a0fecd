"""Exploration (sizes the quick budget, not part of any notebook): how many epochs the quick budget's
complementary loss from the Task 1 network needs to pass 95 % MNIST test accuracy whatever the seed.

Exactly the quick budget's run (`task3.QUICK`: its 12,000 training images and 2,000 test images, the COMPLEMENTARY
recipe, the Task 1 network with a new head), for each number of epochs and seed; each run is one record, its method
naming the epochs ("complementary, 5 epochs").

    python -m explorations.task3_quick --epochs 3 5 --seeds 0 1 2 3 \
        --out explorations/results/task3_quick_complementary.json
"""
from __future__ import annotations

import argparse
from dataclasses import replace

from explorations import write_report
from src import task3
from src.analysis import Run, config_digest
from src.checkpoints import start_network
from src.datasets import load_mnisttask3
from src.mnist import load_mnist
from src.noisy_labels import complementary_loss
from src.runs import checkpoint_dir, device_name
from src.splits import stratified_subset
from src.train import LabelledImages


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, nargs="+", required=True)
    parser.add_argument("--seeds", type=int, nargs="+", required=True)
    parser.add_argument("--out", required=True)
    arguments = parser.parse_args(argv)
    quick = task3.QUICK
    noisy = load_mnisttask3()
    if noisy.source.is_standin:
        raise SystemExit("this sizes the quick budget on the real archive; set PLAYMNIST_MNISTTASK3")
    train_set, _, _ = task3.split_mnisttask3(noisy, quick.train_images)
    test_images, test_labels, mnist_source = load_mnist("test")
    test = stratified_subset(LabelledImages(test_images, test_labels), quick.test_images)
    task1_checkpoint = checkpoint_dir("full") / "task1.pt"
    report = {"data": [noisy.source.describe(), mnist_source.describe()], "device": device_name(),
              "train_images": len(train_set), "test_images": len(test), "runs": [], "histories": {}}
    for epochs in arguments.epochs:
        for seed in arguments.seeds:
            config = replace(task3.COMPLEMENTARY, epochs=epochs, evaluate_every_steps=quick.evaluate_every_steps)
            _, metrics, curves = task3.run_training(start_network("task1", seed, task3.MODEL, task1_checkpoint),
                                                    train_set, test, replace(config, seed=seed), complementary_loss,
                                                    progress=False)
            method, key = f"complementary, {epochs} epochs", f"complementary/{epochs}_epochs/seed{seed}"
            report["histories"][key] = {"step_evaluations": curves["step_evaluations"]}
            report["runs"].append(Run("task3", method, "task1", seed, config=config_digest(config), history=key,
                                      metrics={"mnist_test_accuracy": metrics["mnist_test_accuracy"],
                                               "train_seconds": metrics["train_seconds"], "epochs": epochs}))
            print(f"{epochs} epochs, seed {seed}: {100 * metrics['mnist_test_accuracy']:.2f} %", flush=True)
            write_report(arguments.out, report)


if __name__ == "__main__":
    main()
