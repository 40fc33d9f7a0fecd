"""Tasks 2 and 3 as queries over their run records: which runs pair with which, and what the summaries and headline
rows say, on records whose answers are known by hand."""
import random

import pytest
import torch

from src import task2, task3
from src.analysis import Run, over_runs
from src.model import build_model
from src.runs import load_results, save_results


def task2_records(shuffled: bool = False) -> dict:
    """Three seeds; digits400 beats scratch by 0.2 points on all 4,000 images and by 10, 9, 8 points on 100."""
    runs = []
    for seed in range(3):
        runs += [Run("task2", "mnist", "digits400", seed, metrics={"final_test_accuracy": 0.990 + seed / 1000,
                                                                   "steps_to_0.99": 300 + seed}),
                 Run("task2", "mnist", "scratch", seed, metrics={"final_test_accuracy": 0.988 + seed / 1000,
                                                                 "steps_to_0.99": None if seed == 1 else 400}),
                 Run("task2", "mnist_100_images", "digits400", seed, metrics={"final_test_accuracy": 0.80 + seed / 100}),
                 Run("task2", "mnist_100_images", "scratch", seed, metrics={"final_test_accuracy": 0.70 + seed / 50}),
                 Run("task2", "linear_probe", "scratch", seed, metrics={"stage3": 0.5})]
    if shuffled:
        random.Random(0).shuffle(runs)
    return {"runs": runs, "device": "test machine", "budget": "quick", "mnist_train_images": 4000}


def test_task2_compares_each_start_with_scratch_seed_by_seed_whatever_the_order():
    for results in (task2_records(), task2_records(shuffled=True)):
        final = task2.versus_scratch(results["runs"], "digits400", "final_test_accuracy")
        assert final["pairs"] == [0, 1, 2] and final["mean_difference"] == pytest.approx(0.002)
        assert task2.versus_scratch(results["runs"], "digits400", "steps_to_0.99") is None  # seed 1 never held 99 %
        small = task2.versus_scratch(results["runs"], "digits400", "final_test_accuracy", "mnist_100_images")
        assert small["mean_difference"] == pytest.approx(0.09) and small["n"] == 3  # 0.10, 0.09, 0.08 per seed
        assert task2.versus_scratch(results["runs"], "task1", "final_test_accuracy") is None  # no such start here


def test_task2_sweep_reads_its_largest_size_from_the_main_runs():
    runs = task2_records()["runs"]
    assert task2.sweep_sizes(runs, 4000) == [100, 4000]
    assert task2.sweep_method(100, 4000) == "mnist_100_images" and task2.sweep_method(4000, 4000) == "mnist"
    assert over_runs(runs, "final_test_accuracy", method=task2.sweep_method(4000, 4000), start="scratch")["n"] == 3


def test_task2_headline_rows_are_queries_over_the_records():
    rows = {row["what"]: row["value"] for row in task2.headline_rows(task2_records(shuffled=True))}
    assert rows["MNIST test accuracy, from random initialisation (scratch)"] == "98.90 ± 0.10 % (n=3)"
    assert rows["digits400 minus scratch, paired by seed"].startswith("+0.200 points, p = 0.00")
    assert rows["optimizer steps (batch 128) until validation accuracy stays >= 99 %: digits400 / scratch"] == (
        "301 ± 1 / 400 ± 0")  # scratch: the two seeds that held 99 %
    assert rows["with 100 MNIST training images: digits400 minus scratch, paired by seed"].startswith(
        "+9.00 points") and "(n=3)" in rows["with 100 MNIST training images: digits400 minus scratch, paired by seed"]
    assert not any("Task 1" in what for what in rows)  # no task1 runs, no task1 row


def test_task2_seed_k_starts_from_pretraining_run_k_and_each_run_from_its_own_copy():
    digits400 = [build_model(task2.MODEL, seed=10 + seed) for seed in range(3)]
    for seed in range(3):
        started = task2.mnist_start("digits400", seed, digits400)
        assert started is not digits400[seed]
        assert all(torch.equal(value, digits400[seed].state_dict()[name])
                   for name, value in started.state_dict().items())
        scratch = task2.mnist_start("scratch", seed, digits400).state_dict()
        assert all(torch.equal(value, build_model(task2.MODEL, seed=seed).state_dict()[name])
                   for name, value in scratch.items())


def test_task2_times_with_pretraining_add_what_the_start_cost():
    metrics = {f"seconds_to_{t}": None if t == 0.995 else 10.0 for t in task2.THRESHOLDS}
    digits400 = task2.with_pretraining_seconds(metrics, 5.0)
    assert digits400["seconds_with_pretraining_to_0.99"] == 15.0 and digits400["seconds_with_pretraining_to_0.995"] is None
    assert task2.with_pretraining_seconds(metrics, None)["seconds_with_pretraining_to_0.98"] is None  # task1


def task3_records() -> dict:
    runs = [Run("task3", "naive", start, 0, metrics={"mnist_test_accuracy": 0.02}) for start in ("scratch", "task1")]
    for seed in range(3):
        for start, accuracy in (("scratch", 0.98), ("task1", 0.99)):
            runs += [Run("task3", method, start, seed, metrics={"mnist_test_accuracy": accuracy + seed / 1000 + bonus})
                     for method, bonus in (("complementary", 0.0), ("corrected", 0.001), ("two_stage", 0.002))]
    return {"runs": runs, "is_standin": False, "device": "test machine", "budget": "full",
            "folder_is_digit_probability": 0.0012, "refined_folder_is_digit_probability": 0.0009}


def test_task3_headline_rows_and_comparisons_are_queries_over_the_records():
    results = task3_records()
    rows = {row["what"]: row for row in task3.headline_rows(results)}
    assert rows["naive (folders as labels), from scratch, MNIST test accuracy (real archive)"]["value"] == "2.00 %"
    assert rows["two-stage, from the Task 1 network, MNIST test accuracy (real archive)"]["value"] == (
        "99.30 ± 0.10 % (n=3)")
    assert all(row["command"] == "make reproduce  # task3.ipynb" for row in rows.values())
    test = task3.task1_minus_scratch(results["runs"], "two_stage")
    assert test["pairs"] == [0, 1, 2] and test["mean_difference"] == pytest.approx(0.01)
    assert not any(what.startswith("true P") for what in rows)  # no audit recorded yet
    audited = {row["what"][:6]: row["value"] for row in task3.headline_rows(
        {**results, "true_folder_is_digit_probability": 0.0006})}
    assert audited["true P"] == "0.0006 (estimates 2.0x / 1.5x the truth)"
    without_task1 = {**results, "runs": [run for run in results["runs"] if run.start == "scratch"]}
    assert not any("Task 1" in row["what"] for row in task3.headline_rows(without_task1))
    assert task3.task1_minus_scratch(without_task1["runs"], "two_stage") is None


def test_task3_counts_every_stage_a_method_needs():
    metrics = {"train_seconds": 30.0, "seconds_to_0.98": 20.0, "seconds_to_0.99": None}
    two_stage = task3.with_earlier_stages(metrics, 100.0)
    assert two_stage["seconds_all_stages"] == 130.0 and two_stage["seconds_all_stages_to_0.98"] == 120.0
    assert two_stage["seconds_all_stages_to_0.99"] is None and two_stage["seconds_to_0.98"] == 20.0


def test_every_task3_method_trains_with_its_own_recipe_and_the_budget_changes_only_epochs():
    assert set(task3.QUICK.epochs) == set(task3.RECIPES) == {"naive", *task3.METHODS}
    assert task3.FULL.epochs == {method: recipe.epochs for method, recipe in task3.RECIPES.items()}
    for recipe in task3.RECIPES.values():  # the network and augmentation of Task 2's MNIST runs
        assert recipe.augment == task2.MNIST_RECIPE.augment and recipe.batch_size == task2.MNIST_RECIPE.batch_size
    assert task3.MODEL == task2.MODEL


# ----------------------------------------------------------------------------- the notebooks' answers, from the records

def words(markdown: str) -> int:
    return len(markdown.replace("**", "").split())


def task2_arms_records(gain: float = 0.0) -> dict:
    """Five seeds of every condition: scratch 99.00 + seed/100 %, digits400 the same plus `gain`, both gentler arms
    +0.01 points over scratch in every seed but one; digits400 30 steps ahead by 10 points; +9 points on 100 images."""
    runs = []
    for seed in range(5):
        noise = (seed % 2) * 0.0002
        for method, start, accuracy, early in (("mnist", "scratch", 0.99, 0.50), ("mnist", "digits400", 0.99 + gain, 0.60),
                                               ("lower_backbone_lr", "digits400", 0.9901 - 2 * noise, 0.58),
                                               ("frozen_first_epoch", "digits400", 0.9901 - 2 * noise, 0.40)):
            runs.append(Run("task2", method, start, seed, metrics={
                "final_test_accuracy": accuracy + seed / 10000 + (noise if start == "digits400" else 0),
                "accuracy_after_30_steps": early + seed / 1000, "steps_to_0.99": 500 + seed}))
        runs += [Run("task2", "mnist_100_images", "digits400", seed, metrics={"final_test_accuracy": 0.80 + seed / 100}),
                 Run("task2", "mnist_100_images", "scratch", seed, metrics={"final_test_accuracy": 0.71 + seed / 100})]
    return {"runs": runs, "device": "test machine", "budget": "quick", "mnist_train_images": 55000}


def test_task2_answer_box_is_short_and_carries_the_numbers_it_is_given():
    results = task2_arms_records()
    box = task2.answer_box(results)
    assert words(box) <= 120
    for number in ("99.02 ±", "n=5", "+10.0 points", "+9.0 points", "55,000", "with 100,"):
        assert number in box, number
    assert "does not measurably change final test accuracy, whether" in box and "frozen for epoch 1" in box
    resolved = task2.answer_box(task2_arms_records(gain=0.002))
    assert "raises final test accuracy when fine-tuned like scratch; it does not measurably change it" in resolved
    assert words(resolved) <= 120


def test_task2_arms_pair_with_scratch_and_with_plain_fine_tuning_by_seed():
    runs = task2_arms_records()["runs"]
    assert task2.conditions(runs) == ["scratch", "digits400", "lower_backbone_lr", "frozen_first_epoch"]
    against_scratch = task2.versus(runs, "lower_backbone_lr", "scratch", "final_test_accuracy")
    against_plain = task2.versus(runs, "frozen_first_epoch", "digits400", "final_test_accuracy")
    assert against_scratch["pairs"] == against_plain["pairs"] == [0, 1, 2, 3, 4]
    assert against_scratch["mean_difference"] == pytest.approx(0.0001 - 2 * 0.0002 / 5, abs=1e-9)  # seeds 1, 3 lower
    assert task2.sweep_sizes(runs, 55000) == [100, 55000]  # the arms' method names are not sweep sizes
    assert task2.where("lower_backbone_lr") == {"method": "lower_backbone_lr", "start": "digits400"}
    assert task2.where("scratch") == {"method": "mnist", "start": "scratch"}


def test_task2_loss_jump_text_states_only_what_every_seed_shows():
    text = task2.loss_jump_text([1.0, 2.6, 1.2], [3.0, 2.5, 4.0])
    assert "in 2 of 3 seeds" in text and "seed 1: 2.5x -> 2.6x" in text
    assert "never climbs back (jump <= 1.05x) in 1 of 3" in text


def test_the_fine_tuning_arms_change_only_the_backbone_fields_of_the_recipe():
    for method, changes in task2.FINE_TUNING.items():
        assert set(changes) <= {"backbone_learning_rate_scale", "frozen_backbone_epochs"}
        assert method in task2.LABELS and not method.startswith("mnist_")
    assert task2.FINE_TUNING["lower_backbone_lr"]["backbone_learning_rate_scale"] == 0.1
    assert task2.FINE_TUNING["frozen_first_epoch"]["frozen_backbone_epochs"] == 1


def test_task3_answer_box_is_short_and_carries_the_numbers_it_is_given():
    results = {**task3_records(), "refined_folder_is_digit_probability": 0.0026}
    box = task3.answer_box(results)
    assert words(box) <= 120
    for number in ("2.0 %", "98.30 ± 0.10 % (n=3)", "98.10 ± 0.10 % (n=3)", "0.0026"):
        assert number in box, number
    assert "stand-in" in task3.answer_box({**results, "is_standin": True})


def test_task3_audit_explains_the_estimates_bias_by_the_readings_errors(monkeypatch):
    """40 held-out images, all truly outside their digit's folder; the first reading errs on 9 of them, three of
    which sit in the folder of the digit they were taken for: the whole estimated diagonal comes from those errors."""
    from src.datasets import NoisyDigits
    digits = torch.arange(40) % 10
    folders = (digits + 1 + torch.arange(40) // 10) % 10  # never the digit
    inferred = digits.clone()
    inferred[:9] = (digits[:9] + 5) % 10  # wrong, ...
    inferred[:3] = folders[:3]  # ... and three of them taken for their folder's digit
    noisy = NoisyDigits(torch.zeros(40, 1, 28, 28), folders, torch.arange(40), source=None)
    monkeypatch.setattr(task3, "load_mnist", lambda split="train", *a, **k: (None, digits, None))
    estimate = task3.estimate_transition_matrix(inferred, folders)
    results = {"_models": {"validation_index": torch.arange(40), "inferred": inferred, "refined_inferred": digits},
               "transition_matrix": estimate.tolist(), "refined_transition_matrix": task3.estimate_transition_matrix(
                   digits, folders).tolist(), "folder_is_digit_probability": 0.075,
               "refined_folder_is_digit_probability": 0.0,
               "transition_matrix_ci95": [estimate.tolist(), estimate.tolist()], "budget": "full"}
    save_results("task3", "full", {"budget": "full"})
    report = task3.audit(results, noisy)
    assert report["true_share"] == 0.0 and report["truth"].diag().sum() == 0
    assert load_results("task3", "full") == {"budget": "full", "true_folder_is_digit_probability": 0.0}  # for README
    first = report["naive"]
    assert first["error_rate"] == pytest.approx(9 / 40) and first["wrong_in_inferred_folder"] == pytest.approx(3 / 9)
    assert first["diagonal_from_wrong"] == pytest.approx(3 / 40) and first["diagonal_from_right"] == 0.0
    assert report["corrected"]["error_rate"] == 0.0 and report["corrected"]["diagonal_from_wrong"] == 0.0
