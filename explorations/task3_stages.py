"""Exploration (not part of any notebook): what would lift two-stage training from scratch?

For one seed, from scratch: the corrected stage (T from the committed `checkpoints/task3_scratch.pt`, itself estimated
without clean labels), then from the same corrected network
  two_stage                  stage 2 as `task3.PSEUDO_LABELLED` (the most confident 95 % of the images whose
                             prediction is not their folder): the recipe
  two_stage_every_image      stage 2 on every image whose prediction is not its folder (share 1.0)
  two_stage_no_smoothing     stage 2 as the recipe without label smoothing
  three_stage                a third stage: the recipe's network relabels the images (95 % again), then stage 2 again.
With --soft, only stage 2 on every image with a soft target instead of a hard pseudo-label: the corrected network's
posterior given the folder, p(digit | image, folder) ~ p(digit | image) T[digit, folder], so the uncertain images teach
their uncertainty instead of a guess. `soft_targets_every_image` uses the posterior as it is;
`smoothed_soft_targets_every_image` mixes it with the uniform distribution as label smoothing 0.1 does (the recipe's
regulariser), so that it against the recipe isolates soft against hard targets.
With --oracle, instead: stage 2's recipe on the same training images with their TRUE labels (`true_labels`), a
diagnostic of what the images themselves allow (is the gap to Task 2 the JPEG images or the labels?). Each stage is one
run record (`analysis.Run`: MNIST test accuracy, ECE, seconds); each set of pseudo-labels gets an audit against the
MNIST training labels the file numbers name (read only here, after all learning; nothing is chosen with them).
Writes the JSON after every stage.

    python -m explorations.task3_stages --seed 0 --out explorations/results/task3_stages_seed0.json
    python -m explorations.task3_stages --seed 0 --oracle --out explorations/results/task3_true_labels_seed0.json
    python -m explorations.task3_stages --seed 0 --soft --out explorations/results/task3_soft_targets_seed0.json
"""
from __future__ import annotations

import argparse
import time
from dataclasses import replace

import torch

from explorations import write_report
from src import analysis
from src.analysis import Run
from src.checkpoints import read_checkpoint
from src.datasets import load_mnisttask3
from src.mnist import load_mnist
from src.model import build_model
from src.noisy_labels import confident_pseudo_labels, forward_corrected_loss
from src.runs import PROJECT_ROOT, device_name
from src.task3 import CORRECTED, MODEL, PSEUDO_LABEL_SHARE, PSEUDO_LABELLED, split_indices
from src.train import LabelledImages, predict_logits, train


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--train-images", type=int, default=None, help="a subset, to try the script quickly")
    parser.add_argument("--epoch-scale", type=float, default=1.0, help="times each recipe's epochs (at least 1)")
    parser.add_argument("--oracle", action="store_true", help="only the diagnostic run on the true labels")
    parser.add_argument("--soft", action="store_true", help="after the corrected stage, only the soft-target runs")
    arguments = parser.parse_args(argv)
    seed = arguments.seed
    noisy = load_mnisttask3()
    train_index, _ = split_indices(noisy, arguments.train_images)  # the notebook's split, as split_mnisttask3's
    train_set = LabelledImages(noisy.images[train_index], noisy.folder_labels[train_index])
    test_images, test_labels, _ = load_mnist("test")
    test = LabelledImages(test_images, test_labels)
    audit_labels = load_mnist("train")[1][noisy.file_indices[train_index]]  # the audit only
    transition = read_checkpoint(PROJECT_ROOT / "checkpoints" / "task3_scratch.pt")["metadata"]["transition_matrix"]
    report = {"seed": seed, "data": noisy.source.describe(), "train_images": len(train_set), "device": device_name(),
              "runs": [], "audits": {}}

    def stage(config, data: LabelledImages, method: str, loss_function=None):
        """One run from scratch, recorded as a row; returns its network."""
        started = time.perf_counter()
        config = replace(config, seed=seed, evaluate_every_steps=0,
                         epochs=max(1, round(config.epochs * arguments.epoch_scale)))
        model = train(build_model(MODEL, seed=seed), data, config, loss_function=loss_function, progress=False).model
        logits = predict_logits(model, test.images).cpu()
        run = Run("task3", method, "scratch", seed, config=analysis.config_digest(config), metrics={
            "mnist_test_accuracy": analysis.accuracy(logits.argmax(1), test.labels),
            "expected_calibration_error": analysis.expected_calibration_error(torch.softmax(logits, 1), test.labels),
            "seconds": time.perf_counter() - started, "epochs": config.epochs, "images": len(data)})
        report["runs"].append(run)
        print(method, run.metrics, flush=True)
        write_report(arguments.out, report)
        return model

    def audited(name: str, values: dict) -> None:
        report["audits"][name] = values
        print(name, values, flush=True)

    def pseudo_labelled(logits: torch.Tensor, name: str, share: float = PSEUDO_LABEL_SHARE) -> LabelledImages:
        keep, labels, _ = confident_pseudo_labels(logits, train_set.labels, share)
        audited(name, {"kept": int(keep.sum()),
                       "audit_accuracy_of_kept": analysis.accuracy(labels[keep], audit_labels[keep]),
                       "audit_accuracy_all": analysis.accuracy(labels, audit_labels)})
        return LabelledImages(train_set.images[keep], labels[keep])

    if arguments.oracle:
        stage(PSEUDO_LABELLED, LabelledImages(train_set.images, audit_labels), "true_labels")
        return
    corrected = predict_logits(stage(CORRECTED, train_set, "corrected", forward_corrected_loss(transition)),
                               train_set.images).cpu()  # read once, labelled two ways
    if arguments.soft:
        posterior = torch.softmax(corrected, 1) * transition[:, train_set.labels].T
        posterior = posterior / posterior.sum(1, keepdim=True)
        audited("soft_targets", {"audit_accuracy_of_argmax": analysis.accuracy(posterior.argmax(1), audit_labels),
                                 "mean_largest_probability": float(posterior.max(1).values.mean())})
        indexed = LabelledImages(train_set.images, torch.arange(len(train_set)))  # labels index the targets

        for method, smoothing in (("soft_targets_every_image", 0.0),
                                  ("smoothed_soft_targets_every_image", PSEUDO_LABELLED.label_smoothing)):
            targets = (1 - smoothing) * posterior + smoothing / posterior.shape[1]

            def soft_cross_entropy(logits: torch.Tensor, index: torch.Tensor, targets=targets) -> torch.Tensor:
                return -(targets.to(logits.device)[index] * torch.log_softmax(logits, 1)).sum(1).mean()

            stage(replace(PSEUDO_LABELLED, label_smoothing=smoothing), indexed, method,
                  loss_function=soft_cross_entropy)
        return
    confident = pseudo_labelled(corrected, "pseudo_labels_from_corrected")
    two_stage = stage(PSEUDO_LABELLED, confident, "two_stage")
    stage(PSEUDO_LABELLED, pseudo_labelled(corrected, "pseudo_labels_from_corrected_all", share=1.0),
          "two_stage_every_image")
    stage(replace(PSEUDO_LABELLED, label_smoothing=0.0), confident, "two_stage_no_smoothing")
    stage(PSEUDO_LABELLED, pseudo_labelled(predict_logits(two_stage, train_set.images).cpu(),
                                           "pseudo_labels_from_two_stage"), "three_stage")


if __name__ == "__main__":
    main()
