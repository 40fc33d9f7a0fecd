"""Metrics and statistics on inputs whose answers are known by hand."""
import math

import pytest
import torch

from src import analysis
from src.classes import CLASS_CHARACTERS


def test_case_merged_accuracy_forgives_only_case_ambiguous_confusions():
    index = CLASS_CHARACTERS.index
    labels = torch.tensor([index("o"), index("x"), index("A"), index("1")])
    predictions = torch.tensor([index("0"), index("X"), index("a"), index("l")])
    assert analysis.accuracy(predictions, labels) == 0.0
    assert analysis.case_merged_accuracy(predictions, labels) == 0.75  # A/a is not shape-ambiguous


def test_confusion_matrix_and_per_class_accuracy():
    labels = torch.tensor([0, 0, 1, 1, 1])
    predictions = torch.tensor([0, 1, 1, 1, 0])
    confusion = analysis.confusion_matrix(predictions, labels, 3)
    assert confusion.tolist() == [[1, 1, 0], [1, 2, 0], [0, 0, 0]]
    recall = analysis.per_class_accuracy(confusion)
    assert recall[0] == 0.5 and recall[1] == pytest.approx(2 / 3) and math.isnan(recall[2])
    assert analysis.most_confused_pairs(confusion, "abc", 5) == [("a", "b", 1), ("b", "a", 1)]


def test_expected_calibration_error_on_a_known_input():
    # Two bins: confidence 0.9 with accuracy 0.5 (4 items), confidence 0.6 with accuracy 1.0 (4 items).
    probabilities = torch.tensor([[0.9, 0.1]] * 4 + [[0.6, 0.4]] * 4)
    labels = torch.tensor([0, 0, 1, 1, 0, 0, 0, 0])
    assert analysis.expected_calibration_error(probabilities, labels, bins=10) == pytest.approx(0.5 * 0.4 + 0.5 * 0.4)
    perfectly_calibrated = torch.tensor([[1.0, 0.0]] * 5)
    assert analysis.expected_calibration_error(perfectly_calibrated, torch.zeros(5, dtype=torch.long)) == 0.0


def test_paired_t_test_and_summary():
    result = analysis.paired_t_test([0.996, 0.997, 0.995, 0.996], [0.995, 0.996, 0.995, 0.994])
    # differences 0.001, 0.001, 0, 0.002: mean 0.001, sd 0.000816, t = 2.449 with 3 df -> p = 0.0917
    assert result["mean_difference"] == pytest.approx(0.001)
    assert result["t"] == pytest.approx(2.449, abs=1e-3)
    assert result["p_value"] == pytest.approx(0.0917, abs=1e-3)
    # 95 % interval of the mean difference: 0.001 -+ t(0.975, 3) * 0.000816 / 2 = 0.001 -+ 0.001299
    assert result["ci95"] == pytest.approx([0.001 - 0.0012991, 0.001 + 0.0012991], abs=1e-6)
    summary = analysis.summarise([1.0, 2.0, 3.0])
    assert summary["mean"] == 2.0 and summary["std"] == 1.0
    assert summary["ci95"][1] - 2.0 == pytest.approx(4.303 / math.sqrt(3), abs=1e-3)


def test_convergence_helpers():
    rows = [{"step": 100, "epoch": 0.5, "wall_seconds": 3.0, "test_accuracy": 0.97},
            {"step": 200, "epoch": 1.0, "wall_seconds": 6.0, "test_accuracy": 0.991},
            {"step": 300, "epoch": 1.5, "wall_seconds": 9.0, "test_accuracy": 0.989}]
    assert analysis.first_staying_at_or_above(rows, "test_accuracy", 0.97) == {"step": 100, "epoch": 0.5,
                                                                                "wall_seconds": 3.0}
    assert analysis.first_staying_at_or_above(rows, "test_accuracy", 0.995) is None
    assert analysis.value_at_step(rows, "test_accuracy", 250) == 0.991


def test_relative_weight_change():
    before = {"w": torch.ones(4), "bn.running_mean": torch.zeros(3)}
    after = {"w": torch.ones(4) * 1.5, "bn.running_mean": torch.ones(3)}
    assert analysis.relative_weight_change(before, after) == {"w": pytest.approx(0.5)}


def test_convergence_means_staying_above_not_touching():
    rows = [{"step": s, "epoch": s / 100, "wall_seconds": s / 10, "test_accuracy": a}
            for s, a in ((10, 0.95), (20, 0.991), (30, 0.989), (40, 0.992), (50, 0.993))]
    assert rows[1]["test_accuracy"] >= 0.99  # touched at step 20, fell back at 30: not converged there
    assert analysis.first_staying_at_or_above(rows, "test_accuracy", 0.99) == {"step": 40, "epoch": 0.4, "wall_seconds": 4.0}
    assert analysis.first_staying_at_or_above(rows[:3], "test_accuracy", 0.99) is None  # fell back at the end


def over_confident_predictions(count=6000, classes=10, sharpen=3.0, seed=0):
    """Labels drawn from softmax(z): z is calibrated, `sharpen` * z is over-confident by exactly that factor."""
    generator = torch.Generator().manual_seed(seed)
    calibrated = 2 * torch.randn(count, classes, generator=generator)
    labels = torch.multinomial(torch.softmax(calibrated, 1), 1, generator=generator).flatten()
    return sharpen * calibrated, labels


def test_temperature_scaling_recovers_the_factor_that_sharpened_calibrated_logits():
    logits, labels = over_confident_predictions(sharpen=3.0)
    assert analysis.fit_temperature(logits, labels) == pytest.approx(3.0, rel=0.1)
    assert analysis.fit_temperature(logits / 3.0, labels) == pytest.approx(1.0, rel=0.1)


def test_cross_fitted_calibration_fits_each_fold_on_the_others_and_lowers_the_error():
    from src.task1 import calibrate
    logits, labels = over_confident_predictions()
    folds = [torch.arange(start, 6000, 3) for start in range(3)]
    calibration = calibrate(logits, labels, folds)
    assert calibration["temperatures_cross_fitted"][0] == analysis.fit_temperature(
        logits[torch.cat(folds[1:])], labels[torch.cat(folds[1:])])
    assert calibration["ece_after"] < 0.5 * calibration["ece_before"]
    assert calibrate(logits, labels, folds[:1])["ece_after"] is None  # one fold: nothing to fit on elsewhere


def test_a_difference_is_stated_with_its_paired_test_and_whether_it_is_resolved():
    assert analysis.difference_text([0.90, 0.91, 0.92], [0.80, 0.81, 0.83]).startswith(
        "+9.7 points (paired by fold, n=3, p = 0.")
    assert analysis.difference_text([0.90, 0.91, 0.92], [0.80, 0.81, 0.83]).endswith(": resolved at p < 0.05)")
    assert analysis.difference_text([0.90, 0.80, 0.95], [0.85, 0.88, 0.90]).endswith(": not resolved at p < 0.05)")
    assert analysis.difference_text([0.9], [0.8]) == "+10.0 points (n=1 fold: untested)"


def test_a_small_difference_keeps_its_sign_and_runs_without_shared_seeds_get_an_unpaired_test():
    close = analysis.paired_t_test([0.9970, 0.9971, 0.9972], [0.9966, 0.9967, 0.9969])
    assert analysis.paired_test_text(close).startswith("+0.0 points")  # one decimal hides it ...
    assert analysis.paired_test_text(close, places=2).startswith("+0.04 points")  # ... two show it
    # Welch: t = (2.5 - 6) / sqrt(var1/4 + var2/5) = -3.5 / sqrt(1.6667/4 + 10/5), unequal variances, df ~ 5.4
    welch = analysis.welch_t_test([1, 2, 3, 4], [2, 4, 6, 8, 10])
    assert welch["mean_difference"] == -3.5 and welch["n"] == [4, 5]
    assert abs(welch["t"] - (-3.5 / (1.6666667 / 4 + 10 / 5) ** 0.5)) < 1e-6 and 0.05 < welch["p_value"] < 0.1


def test_linear_probes_read_separable_classes_and_not_noise():
    from src.model import ModelConfig, build_model
    from src.train import LabelledImages
    from tests.generated import bar_digits
    fit, score = LabelledImages(*bar_digits(400, seed=0)), LabelledImages(*bar_digits(200, seed=1))
    network = build_model(ModelConfig(num_classes=10, widths=(8, 16, 16)), seed=0)  # untrained: random features
    probes = analysis.linear_probe_accuracies(network, fit, score)
    assert set(probes) == {"stage1", "stage2", "stage3"} and min(probes.values()) > 0.8
    shuffled = LabelledImages(fit.images, fit.labels[torch.randperm(len(fit.labels),
                                                                    generator=torch.Generator().manual_seed(0))])
    assert analysis.linear_probe_accuracies(network, shuffled, score)["stage1"] < 0.3  # labels it cannot predict


# ----------------------------------------------------------------------------- the record of runs

def runs_of_two_starts(shuffled=False):
    """Three seeds of two starts; the digits400 run of seed s scores 0.9 + s / 100 + 0.01, scratch 0.9 + s / 100."""
    runs = [analysis.Run("task2", "mnist", start, seed, config="abc", metrics={"accuracy": 0.9 + seed / 100 + bonus,
                                                                               "steps_to_0.99": None if seed == 2 and
                                                                               start == "scratch" else 100 * seed})
            for seed in range(3) for start, bonus in (("digits400", 0.01), ("scratch", 0.0))]
    return runs[::-1] if shuffled else runs


def test_compare_pairs_runs_by_seed_whatever_their_order():
    for runs in (runs_of_two_starts(), runs_of_two_starts(shuffled=True)):
        test = analysis.compare(runs, {"start": "digits400"}, {"start": "scratch"}, "accuracy")
        assert test["pairs"] == [0, 1, 2] and test["n"] == 3 and test["paired_by"] == "seed"
        assert test["mean_difference"] == pytest.approx(0.01) and test["p_value"] < 1e-6  # every pair differs by 0.01
    unpaired = analysis.welch_t_test([0.90, 0.91, 0.92], [0.89, 0.90, 0.91])
    assert unpaired["p_value"] > 0.2  # the same numbers without the pairing: nothing resolved


def test_compare_leaves_out_a_metric_some_run_lacks_and_refuses_ambiguous_pairs():
    runs = runs_of_two_starts()
    assert analysis.compare(runs, {"start": "digits400"}, {"start": "scratch"}, "steps_to_0.99") is None
    assert analysis.compare(runs, {"start": "digits400"}, {"start": "task1"}, "accuracy") is None  # no such runs
    assert analysis.compare(runs, {"start": "digits400"}, {"start": "scratch", "seed": 1}, "accuracy")["n"] == 1
    with pytest.raises(ValueError, match="share"):
        analysis.compare(runs, {"method": "mnist"}, {"start": "scratch"}, "accuracy")  # six runs, three seeds


def test_folds_pair_like_seeds():
    runs = [analysis.Run("task1", method, "scratch", seed=fold, fold=fold, metrics={"accuracy": value})
            for method, values in (("recipe", [0.90, 0.92, 0.91]), ("no augmentation", [0.85, 0.88, 0.86]))
            for fold, value in enumerate(values)]
    test = analysis.compare(runs, {"method": "recipe"}, {"method": "no augmentation"}, "accuracy", paired_by="fold")
    assert test["paired_by"] == "fold" and test["mean_difference"] == pytest.approx(0.0466667)
    assert analysis.paired_test_text(test).startswith("+4.7 points (paired by fold, n=3")


def test_over_runs_counts_the_runs_and_those_with_a_value():
    summary = analysis.over_runs(runs_of_two_starts(), "steps_to_0.99", start="scratch")
    assert summary["of"] == 3 and summary["n"] == 2 and summary["mean"] == 50.0
    assert analysis.format_mean_std(analysis.over_runs(runs_of_two_starts(), "accuracy", start="scratch"),
                                    unit=" %") == "91.00 ± 1.00 % (n=3)"


def test_run_records_survive_json_and_name_their_recipe_without_the_seed():
    import json
    from dataclasses import replace

    from src.train import MNIST_RECIPE
    run = analysis.Run("task3", "two_stage", "task1", 2, config=analysis.config_digest(MNIST_RECIPE),
                       metrics={"mnist_test_accuracy": 0.99, "seconds_to_0.99": None}, history="two_stage/task1/seed2")
    assert analysis.runs_of({"runs": json.loads(json.dumps([run.to_dict()]))}) == [run]
    assert analysis.config_digest(replace(MNIST_RECIPE, seed=7)) == run.config
    assert analysis.config_digest(replace(MNIST_RECIPE, learning_rate=0.05)) != run.config


def test_one_count_matrix_serves_confusions_and_transitions():
    from src.noisy_labels import estimate_transition_matrix
    rows, columns = torch.tensor([0, 0, 1, 2, 2, 2]), torch.tensor([1, 1, 0, 2, 0, 2])
    assert analysis.count_matrix(rows, columns, 3).tolist() == [[0, 2, 0], [1, 0, 0], [1, 0, 2]]
    assert torch.allclose(estimate_transition_matrix(rows, columns, 3)[2], torch.tensor([1 / 3, 0, 2 / 3]))
