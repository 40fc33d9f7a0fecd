"""Exploration for issue 13 (sizes the quick budget, not part of any notebook): how many epochs the quick budget's
complementary loss from the Task 1 network needs to pass 95 % MNIST test accuracy whatever the seed.

Exactly the quick budget's run (`task3.BUDGETS["quick"]`: its 12,000 training images and 2,000 test images, the
COMPLEMENTARY recipe, the Task 1 network with a new head), for each number of epochs and seed.

    python -m tools.explore_task3_quick --epochs 3 5 --seeds 0 1 2 3 \
        --out results/explore/task3_quick_complementary.json
"""
from __future__ import annotations

import argparse
import json
from dataclasses import replace

from src import task3
from src.datasets import load_mnisttask3
from src.files import atomic_write_bytes
from src.mnist import load_mnist
from src.noisy_labels import complementary_loss
from src.runs import device_name
from src.splits import stratified_subset
from src.task2 import start_network
from src.train import LabelledImages


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, nargs="+", required=True)
    parser.add_argument("--seeds", type=int, nargs="+", required=True)
    parser.add_argument("--out", required=True)
    arguments = parser.parse_args(argv)
    quick = task3.BUDGETS["quick"]
    noisy = load_mnisttask3()
    if noisy.source.is_standin:
        raise SystemExit("this sizes the quick budget on the real archive; set PLAYMNIST_MNISTTASK3")
    train_set, _, _ = task3.split_mnisttask3(noisy, quick["train_images"])
    test_images, test_labels, mnist_source = load_mnist("test")
    test = stratified_subset(LabelledImages(test_images, test_labels), quick["test_images"])
    task1_checkpoint = task3.checkpoint_dir("full") / "task1.pt"
    report = {"data": [noisy.source.describe(), mnist_source.describe()], "device": device_name(),
              "train_images": len(train_set), "test_images": len(test), "runs": []}
    for epochs in arguments.epochs:
        for seed in arguments.seeds:
            config = replace(task3.COMPLEMENTARY, epochs=epochs, evaluate_every_steps=quick["evaluate_every_steps"],
                             seed=seed)
            _, metrics = task3.run_training(start_network("task1", None, seed, task1_checkpoint), train_set, test,
                                            config, complementary_loss, progress=False)
            report["runs"].append({"epochs": epochs, "seed": seed,
                                   "mnist_test_accuracy": metrics["mnist_test_accuracy"],
                                   "train_seconds": metrics["train_seconds"],
                                   "step_evaluations": [{"step": row["step"], "accuracy": row["mnist_test_accuracy"]}
                                                        for row in metrics["step_evaluations"]]})
            print(f"{epochs} epochs, seed {seed}: {100 * metrics['mnist_test_accuracy']:.2f} %", flush=True)
            atomic_write_bytes(arguments.out, (json.dumps(report, indent=1) + "\n").encode())


if __name__ == "__main__":
    main()
