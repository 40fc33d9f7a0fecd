"""Metrics and statistics on inputs whose answers are known by hand."""
import json
import math
from dataclasses import replace

import pytest
import torch

from src import analysis
from src.data.classes import CLASS_CHARACTERS
from src.recipes import MNIST_RECIPE


def test_accuracy_views_confusion_per_class_recall_and_calibration_error_on_known_inputs():
    index = CLASS_CHARACTERS.index
    labels = torch.tensor([index("o"), index("x"), index("A"), index("1")])
    predictions = torch.tensor([index("0"), index("X"), index("a"), index("l")])
    assert analysis.accuracy(predictions, labels) == 0.0
    assert analysis.case_merged_accuracy(predictions, labels) == 0.75  # A/a is not shape-ambiguous
    confusion = analysis.confusion_matrix(torch.tensor([0, 1, 1, 1, 0]), torch.tensor([0, 0, 1, 1, 1]), 3)
    assert confusion.tolist() == [[1, 1, 0], [1, 2, 0], [0, 0, 0]]
    recall = analysis.per_class_accuracy(confusion)
    assert recall[0] == 0.5 and recall[1] == pytest.approx(2 / 3) and math.isnan(recall[2])
    assert analysis.most_confused_pairs(confusion, "abc", 5) == [("a", "b", 1), ("b", "a", 1)]
    # Two bins: confidence 0.9 with accuracy 0.5 (4 items), confidence 0.6 with accuracy 1.0 (4 items).
    probabilities = torch.tensor([[0.9, 0.1]] * 4 + [[0.6, 0.4]] * 4)
    labels = torch.tensor([0, 0, 1, 1, 0, 0, 0, 0])
    assert analysis.expected_calibration_error(probabilities, labels, bins=10) == pytest.approx(0.5 * 0.4 + 0.5 * 0.4)
    assert analysis.expected_calibration_error(torch.tensor([[1.0, 0.0]] * 5), torch.zeros(5, dtype=torch.long)) == 0


def test_paired_t_test_and_summary():
    result = analysis.paired_t_test([0.996, 0.997, 0.995, 0.996], [0.995, 0.996, 0.995, 0.994])
    # differences 0.001, 0.001, 0, 0.002: mean 0.001, sd 0.000816, t = 0.001 / (0.000816 / 2) = 2.449, 3 df: p = 0.0917
    assert result["mean_difference"] == pytest.approx(0.001) and result["t"] == pytest.approx(2.449, abs=1e-3)
    assert result["p_value"] == pytest.approx(0.0917, abs=1e-3)
    assert result["ci95"] == pytest.approx([0.001 - 0.0012991, 0.001 + 0.0012991], abs=1e-6)  # t(.975, 3) = 3.182
    summary = analysis.summarise([1.0, 2.0, 3.0])
    assert summary["mean"] == 2.0 and summary["std"] == 1.0
    assert summary["ci95"][1] - 2.0 == pytest.approx(4.303 / math.sqrt(3), abs=1e-3)


def test_corrected_resampled_t_test_widens_the_variance_by_the_test_share():
    """Five folds: differences 0.02, 0.03, 0.01, 0.04, 0.00. Mean 0.02; sample variance
    (0 + 1e-4 + 1e-4 + 4e-4 + 4e-4) / 4 = 2.5e-4. Nadeau & Bengio with n_test / n_train = 1/4:
    (1/5 + 1/4) * 2.5e-4 = 1.125e-4, t = 0.02 / sqrt(1.125e-4) = 1.8856, 4 df: p = 0.1324.
    The plain paired t-test would use 2.5e-4 / 5 = 5e-5: t = 2.8284, p = 0.0474 (wrongly 'resolved')."""
    first, second = [0.92, 0.93, 0.91, 0.94, 0.90], [0.90] * 5
    test = analysis.corrected_resampled_t_test(first, second, test_share=0.25)
    assert test["mean_difference"] == pytest.approx(0.02) and test["n"] == 5
    assert test["t"] == pytest.approx(1.8856, abs=1e-4) and test["p_value"] == pytest.approx(0.1324, abs=1e-4)
    plain = analysis.paired_t_test(first, second)
    assert plain["t"] == pytest.approx(2.8284, abs=1e-4) and plain["p_value"] == pytest.approx(0.0474, abs=1e-4)
    assert analysis.corrected_resampled_t_test(first, first, 0.25)["p_value"] == 1.0  # no difference at all
    assert math.isnan(analysis.corrected_resampled_t_test([0.9], [0.8], 0.25)["p_value"])  # one fold: untested
    runs = [analysis.Run("task1", method, "scratch", seed=fold, fold=fold, metrics={"accuracy": value})
            for method, values in (("recipe", first), ("ablation", second)) for fold, value in enumerate(values)]
    with pytest.raises(ValueError, match="test_share"):  # compare over folds: only the corrected test, never plain
        analysis.compare(runs, {"method": "recipe"}, {"method": "ablation"}, "accuracy", paired_by="fold")
    folds = analysis.compare(runs, {"method": "recipe"}, {"method": "ablation"}, "accuracy", "fold", test_share=0.25)
    assert folds["test"] == "corrected resampled t" and folds["p_value"] == pytest.approx(0.1324, abs=1e-4)


def test_holm_on_a_known_family():
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04 -> monotone: 0.02, 0.03, 0.06, 0.06
    assert analysis.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    adjusted = analysis.holm([float("nan"), 0.02, 0.5])  # NaN stays NaN and does not count: m = 2
    assert math.isnan(adjusted[0]) and adjusted[1:] == pytest.approx([0.04, 0.5])
    assert analysis.holm([0.6, 0.7]) == [1.0, 1.0]  # 1.2 capped at 1, and monotone
    family = analysis.with_holm([{"p_value": 0.01}, {"p_value": 0.04}, {"p_value": 0.03}, {"p_value": 0.005}])
    assert [test["resolved"] for test in family] == [True, False, False, True]


def test_convergence_means_staying_above_not_touching():
    rows = [{"step": s, "epoch": s / 100, "wall_seconds": s / 10, "acc": a}
            for s, a in ((10, 0.95), (20, 0.991), (30, 0.989), (40, 0.992), (50, 0.993))]
    assert analysis.first_staying_at_or_above(rows, "acc", 0.99) == {"step": 40, "epoch": 0.4, "wall_seconds": 4.0}
    assert analysis.first_staying_at_or_above(rows[:3], "acc", 0.99) is None  # touched at 20, fell back at 30
    assert analysis.value_at_step(rows, "acc", 25) == 0.991 and analysis.value_at_step(rows, "acc", 5) is None
    before = {"w": torch.ones(4), "bn.running_mean": torch.zeros(3)}
    after = {"w": torch.ones(4) * 1.5, "bn.running_mean": torch.ones(3)}
    assert analysis.relative_weight_change(before, after) == {"w": pytest.approx(0.5)}


def over_confident_predictions(count=6000, classes=10, sharpen=3.0, seed=0):
    """Labels drawn from softmax(z): z is calibrated, `sharpen` * z is over-confident by exactly that factor."""
    generator = torch.Generator().manual_seed(seed)
    calibrated = 2 * torch.randn(count, classes, generator=generator)
    labels = torch.multinomial(torch.softmax(calibrated, 1), 1, generator=generator).flatten()
    return sharpen * calibrated, labels


def test_temperature_scaling_recovers_the_sharpening_and_cross_fitting_lowers_the_error():
    from src.task1 import calibrate
    logits, labels = over_confident_predictions(sharpen=3.0)
    assert analysis.fit_temperature(logits, labels) == pytest.approx(3.0, rel=0.1)
    assert analysis.fit_temperature(logits / 3.0, labels) == pytest.approx(1.0, rel=0.1)
    folds = [torch.arange(start, 6000, 3) for start in range(3)]
    calibration = calibrate(logits, labels, folds)  # fold k's temperature is fitted on the other folds only
    assert calibration["temperatures_cross_fitted"][0] == analysis.fit_temperature(
        logits[torch.cat(folds[1:])], labels[torch.cat(folds[1:])])
    assert calibration["ece_after"] < 0.5 * calibration["ece_before"]
    assert calibrate(logits, labels, folds[:1])["ece_after"] is None  # one fold: nothing to fit on elsewhere


# ----------------------------------------------------------------------------- the record of runs

def two_starts(shuffled=False):
    """Three seeds; digits400 scores 0.9 + seed / 100 + 0.01, scratch 0.9 + seed / 100 (its seed 2 never held 99 %)."""
    runs = [analysis.Run("task2", "recipe", start, seed, metrics={
        "accuracy": 0.9 + seed / 100 + bonus, "steps_to_0.99": None if (seed, start) == (2, "scratch") else 100 * seed})
        for seed in range(3) for start, bonus in (("digits400", 0.01), ("scratch", 0.0))]
    return runs[::-1] if shuffled else runs


@pytest.mark.parametrize("shuffled", [False, True])
def test_compare_pairs_runs_by_seed_whatever_their_order(shuffled):
    runs = two_starts(shuffled)
    test = analysis.compare(runs, {"start": "digits400"}, {"start": "scratch"}, "accuracy")
    assert test["pairs"] == [0, 1, 2] and test["n"] == 3 and test["test"] == "paired t"
    assert test["mean_difference"] == pytest.approx(0.01) and test["p_value"] < 1e-6  # every pair differs by 0.01
    assert analysis.compare(runs, {"start": "digits400"}, {"start": "scratch"}, "steps_to_0.99") is None
    assert analysis.compare(runs, {"start": "digits400"}, {"start": "task1"}, "accuracy") is None  # no such runs
    assert analysis.compare(runs, {"start": "digits400"}, {"start": "scratch", "seed": 1}, "accuracy")["n"] == 1
    with pytest.raises(ValueError, match="share"):
        analysis.compare(runs, {"method": "recipe"}, {"start": "scratch"}, "accuracy")  # six runs, three seeds
    summary = analysis.over_runs(runs, "steps_to_0.99", start="scratch")
    assert summary["of"] == 3 and summary["n"] == 2 and summary["mean"] == 50.0
    assert analysis.format_mean_std(analysis.over_runs(runs, "accuracy", start="scratch"), unit=" %") == \
        "91.00 ± 1.00 % (n=3)"
    # run records survive JSON and name their recipe without the seed
    run = analysis.Run("task3", "two_stage", "task1", 2, config=analysis.config_digest(MNIST_RECIPE),
                       metrics={"mnist_test_accuracy": 0.99, "seconds_to_0.99": None}, history="two_stage/task1/seed2")
    assert analysis.runs_of({"runs": json.loads(json.dumps([run.to_dict()]))}) == [run]
    assert analysis.config_digest(replace(MNIST_RECIPE, seed=7)) == run.config
    assert analysis.config_digest(replace(MNIST_RECIPE, learning_rate=0.05)) != run.config
