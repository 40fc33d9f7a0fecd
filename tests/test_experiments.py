"""Tasks 2 and 3: how each method trains, how the sweep chooses, and what the comparisons and the audit read."""
from dataclasses import replace
from types import SimpleNamespace

import pytest
import torch

from src import recipes, task2, task3
from src.analysis import Run
from src.data.datasets import NoisyDigits
from src.data.labelled import LabelledImages
from src.model import ModelConfig, build_model
from src.settings import load_results, save_results
from tests.generated import bar_digits


def test_each_task2_method_is_its_stages_and_every_gentler_method_runs_from_digits400_and_from_scratch():
    recipe = recipes.MNIST_RECIPE
    assert task2.stages("recipe", recipe) == [recipe]
    assert task2.stages("backbone_lr_0.1x", recipe) == [replace(recipe, backbone_learning_rate_scale=0.1)]
    probe, finetune = task2.stages("probe_then_finetune", recipe)
    assert probe == replace(recipe, epochs=recipes.PROBE_EPOCHS, frozen_backbone=True)  # LP: the head alone ...
    assert finetune == replace(recipe, epochs=recipe.epochs - recipes.PROBE_EPOCHS, learning_rate=recipes.FINETUNE_PEAK)
    assert not finetune.frozen_backbone and finetune.learning_rate == 0.01  # ... then FT, the whole network, gently
    with pytest.raises(ValueError, match="unknown method"):
        task2.stages("frozen_first_epoch", recipe)
    starts = ["scratch", "digits400", "task1"]
    assert task2.starts_of("recipe", starts) == starts
    assert all(task2.starts_of(method, starts) == ["scratch", "digits400"] for method in recipes.METHODS[1:])


def test_probe_then_finetune_stitches_its_two_stages_into_one_run():
    train_set, validation, test = (LabelledImages(*bar_digits(n, seed)) for n, seed in ((64, 0), (20, 1), (20, 2)))
    recipe = replace(recipes.MNIST_RECIPE, epochs=2, batch_size=32, evaluate_every_steps=1)
    network = build_model(ModelConfig(10, widths=(8, 16, 16)), seed=0)
    _, metrics, curves = task2.train_on_mnist(network, "probe_then_finetune", recipe, (train_set, validation, test),
                                              progress=False)
    assert [row["step"] for row in curves["step_evaluations"]] == [1, 2, 3, 4]  # 2 steps per stage, numbered on
    assert curves["releases"] == [2] and [(row["epoch"], row["steps"]) for row in curves["history"]] == [(1, 2), (2, 4)]
    assert metrics["train_seconds"] == curves["history"][1]["wall_seconds"] > curves["history"][0]["wall_seconds"]
    at_release, after = curves["step_evaluations"][1], curves["step_evaluations"][2:]
    assert metrics["drop_after_release"] == pytest.approx(
        at_release["validation_accuracy"] - min(row["validation_accuracy"] for row in after))


def test_the_sweep_chooses_each_starts_learning_rate_on_validation_and_reads_the_test_set_only_for_the_chosen(
        monkeypatch):
    """Validation accuracy (correct of 10) per start, learning rate and seed. digits400: seed 0 alone would choose
    0.01, the mean over the two choice seeds chooses 0.03; scratch chooses 0.1. Seed 2 trains at the choice only."""
    validation_correct = {"digits400": {0.01: [9, 5], 0.03: [7, 8], 0.1: [6, 6]},
                          "scratch": {0.01: [1, 1], 0.03: [5, 5], 0.1: [8, 8]}}
    train_set, validation, test = (LabelledImages(*bar_digits(n, seed)) for n, seed in ((60, 0), (10, 1), (10, 2)))
    trained, test_reads = [], []

    def fake_train(network, data, config, progress=None, description=""):
        start = description.split(", ")[1]
        trained.append((start, config.learning_rate, config.seed))
        return SimpleNamespace(model=SimpleNamespace(start=start, lr=config.learning_rate, seed=config.seed))

    def fake_predict_logits(model, images):
        if images is validation.images:
            correct = validation_correct[model.start][model.lr][model.seed] if model.seed < 2 else 10
        else:
            test_reads.append((model.start, model.lr, model.seed))
            correct = 10 if model.lr == 0.01 else 3  # a test set that would choose otherwise: never asked
        predictions = torch.where(torch.arange(10) < correct, validation.labels, (validation.labels + 1) % 10)
        return torch.nn.functional.one_hot(predictions, 10).float()
    monkeypatch.setattr(task2, "train", fake_train)
    monkeypatch.setattr(task2, "predict_logits", fake_predict_logits)
    monkeypatch.setattr(task2, "build_model", lambda config, seed=None: object())
    monkeypatch.setattr(task2.analysis, "linear_probe_accuracies", lambda *arguments, **keywords: {"stage3": 0.5})
    settings = replace(recipes.TASK2_QUICK, sweep_sizes=(20, 60), sweep_seeds=3, sweep_choice_seeds=2,
                       sweep_learning_rates=(0.01, 0.03, 0.1))
    runs = task2.data_size_sweep(settings, [object()] * 3, (train_set, validation, test), progress=False)
    chosen = {"digits400": 0.03, "scratch": 0.1}
    assert sorted(test_reads) == sorted((start, lr, seed) for start, lr in chosen.items() for seed in range(3))
    assert len(trained) == 2 * (3 * 2 + 1) and len(set(trained)) == len(trained)  # the choice seeds' runs reused
    final = [run for run in runs if run.method == "sweep_20"]  # size 60 is the whole training set: not swept
    assert {(run.start, run.seed): run.metrics["learning_rate"] for run in final} == {
        (start, seed): lr for start, lr in chosen.items() for seed in range(3)}
    assert all(run.metrics["final_test_accuracy"] == pytest.approx(0.3) for run in final)
    assert len([run for run in runs if run.method == "sweep_20_choice"]) == 12


def test_task3_compares_on_the_held_out_folders_only_never_on_the_mnist_test_set():
    runs = [Run("task3", method, start, seed, metrics={
        "held_out_corrected_loss": 2.2 - 0.01 * seed - (0.05 if start == "task1" else 0.0), "mnist_test_accuracy": 0.99,
        "held_out_bound_accuracy": 0.97 + 0.001 * seed, "seconds_all_stages_to_0.98": 100.0 + seed})
        for method in task3.METHODS for start in task3.STARTS for seed in range(3)]
    tests = task3.comparisons({"runs": runs})
    assert len(tests) == 3 * 3 + 2 and all(test["paired_by"] == "seed" and "p_holm" in test for test in tests)
    assert {test["metric"] for test in tests} == {"held_out_corrected_loss", "held_out_bound_accuracy",
                                                  "seconds_all_stages_to_0.98"}
    assert tests[0]["mean_difference"] == pytest.approx(-0.05)  # complementary, task1 minus scratch


def test_task3_audit_explains_the_estimates_bias_by_the_readings_errors(monkeypatch):
    """40 held-out images, none in its digit's folder; the naive reading errs on 9, taking 3 for their folder's digit
    (1, 2, 3): the estimated diagonal is those errors; a band (here the estimate) covers the true 0 for 7 digits."""
    digits = torch.arange(40) % 10
    folders = (digits + 1 + torch.arange(40) // 10) % 10
    inferred = digits.clone()
    inferred[:9] = (digits[:9] + 5) % 10  # wrong, ...
    inferred[:3] = folders[:3]  # ... and three of them taken for their folder's digit
    noisy = NoisyDigits(torch.zeros(40, 1, 28, 28), folders, torch.arange(40), source=None)
    monkeypatch.setattr(task3, "load_mnist", lambda split="train": (None, digits, None))
    estimate = task3.estimate_transition_matrix(inferred, folders).tolist()
    results = {"_models": {"validation_index": torch.arange(40), "inferred": inferred, "refined_inferred": digits,
                           "best": {}}, "budget": "full", "transition_matrix": estimate,
               "transition_matrix_ci95": [estimate, estimate], "folder_is_digit_probability": 0.075,
               "refined_transition_matrix": task3.estimate_transition_matrix(digits, folders).tolist(),
               "refined_folder_is_digit_probability": 0.0}
    save_results("task3", "full", {"budget": "full"})
    report = task3.audit(results, noisy)
    assert report["true_share"] == 0.0 and report["truth"].diag().sum() == 0 and report["band_covers"] == 7
    assert load_results("task3", "full")["true_folder_is_digit_probability"] == 0.0  # for the README
    assert report["naive"]["error_rate"] == pytest.approx(9 / 40)
    assert report["naive"]["wrong_in_inferred_folder"] == pytest.approx(3 / 9)
    assert report["corrected"]["error_rate"] == 0.0
