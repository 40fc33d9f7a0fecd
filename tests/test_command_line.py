"""`python -m src evaluate`: the command a later test set will be run with."""
import json
import subprocess
import sys

import pytest
import torch

from src import analysis
from src.__main__ import main
from src.checkpoints import save_checkpoint
from src.classes import CLASS_CHARACTERS
from src.model import ModelConfig, build_model
from tests.generated import trainpart1_entries, write_folder, write_zip


def run_json(arguments, capsys):
    code = main(arguments + ["--json"])
    output = capsys.readouterr().out
    return code, (json.loads(output) if code == 0 else None)


def always_zero_checkpoint(path, **metadata):
    """A 62-class network whose every answer is class 0 ("0"): its accuracy on any set is known in advance."""
    model = build_model(ModelConfig(62, geometry_features=4, widths=(8, 16, 16)), seed=0).eval()
    with torch.no_grad():
        model.head.linear.weight.zero_()
        model.head.linear.bias.copy_(-torch.arange(62.0))
    return save_checkpoint(path, model, {"task": "task1", "classes": CLASS_CHARACTERS, "preprocessing": "mnist",
                                         "geometry": "writer", **metadata})


def test_evaluate_on_unseen_writers_with_a_missing_class(tmp_path, capsys):
    entries = [e for e in trainpart1_entries(writers=range(41, 43)) if "Sample011" not in e[0]]
    test_set = write_zip(tmp_path / "later_test_set.zip", entries)
    checkpoint = always_zero_checkpoint(tmp_path / "zero.pt")
    code, report = run_json(["evaluate", "--checkpoint", str(checkpoint), "--data", str(test_set)], capsys)
    assert code == 0
    assert report["n"] == 122 and report["absent_classes"] == "A" and report["per_class"]["A"] is None
    assert len(report["confusion"]) == 62 and sum(map(sum, report["confusion"])) == 122
    # Every answer is "0": right for the two drawings of "0"; merged with O and o, for six.
    assert report["accuracy"] == pytest.approx(2 / 122) and report["accuracy_case_merged"] == pytest.approx(6 / 122)
    assert report["per_class"]["0"] == 1.0 and report["per_class"]["O"] == 0.0


def test_evaluate_averages_the_test_time_views_the_checkpoint_names(tmp_path, character_checkpoint, capsys):
    from src.augment import AugmentConfig
    from src.checkpoints import load_model
    from src.datasets import read_trainpart1
    from src.preprocess import geometry_inputs, geometry_reference
    from src.train import predict_averaged_over_views, predict_logits
    test_set = write_zip(tmp_path / "later.zip", trainpart1_entries(writers=range(41, 43)))
    views = AugmentConfig(rotate_degrees=20, shear=0.2, scale=(0.8, 1.2), translate_pixels=3)
    model, _ = load_model(character_checkpoint)
    averaged = save_checkpoint(tmp_path / "views.pt", model, {
        "task": "task1", "classes": CLASS_CHARACTERS, "preprocessing": "mnist", "geometry": "writer",
        "test_time_views": 4, "test_time_augment": views.to_dict(), "recipe": {"test_time_seed": 3}})
    characters = read_trainpart1(test_set)
    geometry = geometry_inputs(characters.geometry, characters.writers, "writer",
                               geometry_reference(characters.geometry), 10)
    expected = {"views.pt": predict_averaged_over_views(model, characters.images, geometry, 4, views, seed=3),
                "task1.pt": predict_logits(model, characters.images, geometry)}
    for checkpoint in (averaged, character_checkpoint):
        code, report = run_json(["evaluate", "--checkpoint", str(checkpoint), "--data", str(test_set)], capsys)
        predictions = expected[checkpoint.name].argmax(1)
        assert code == 0 and report["accuracy"] == analysis.accuracy(predictions, characters.labels)
    assert not torch.equal(expected["views.pt"].argmax(1), expected["task1.pt"].argmax(1))  # the views mattered


def test_evaluate_refuses_a_network_trained_on_other_preprocessing(tmp_path, small_trainpart1_zip, capsys):
    from src.preprocess import PREPROCESSING_VERSION
    older = always_zero_checkpoint(tmp_path / "older.pt", preprocessing_version=PREPROCESSING_VERSION - 1)
    code = main(["evaluate", "--checkpoint", str(older), "--data", str(small_trainpart1_zip)])
    error = capsys.readouterr().err
    assert code == 2 and f"preprocessing version {PREPROCESSING_VERSION - 1}" in error and "older.pt" in error


def test_evaluate_fails_clearly_on_the_wrong_layout(tmp_path, character_checkpoint, capsys):
    wrong = write_folder(tmp_path / "wrong", [(f"letters/{name.split('/')[-1]}", payload)
                                              for name, payload in trainpart1_entries(classes="ab", writers=[1])])
    code = main(["evaluate", "--checkpoint", str(character_checkpoint), "--data", str(wrong)])
    error = capsys.readouterr().err
    assert code == 2 and "unrecognised layout" in error and "letters" in error


def test_evaluate_fails_clearly_on_a_bad_checkpoint(tmp_path, small_trainpart1_zip, capsys):
    bogus = tmp_path / "bogus.pt"
    bogus.write_bytes(b"definitely not a checkpoint")
    code = main(["evaluate", "--checkpoint", str(bogus), "--data", str(small_trainpart1_zip)])
    assert code == 2 and "bogus.pt" in capsys.readouterr().err


def test_digit_network_on_a_character_set_says_what_it_left_out(tmp_path, small_trainpart1_zip, capsys):
    digits = save_checkpoint(tmp_path / "digits.pt", build_model(ModelConfig(10, widths=(8, 16, 16)), seed=0).eval(),
                             {"task": "task2", "classes": CLASS_CHARACTERS[:10], "preprocessing": "mnist"})
    code, report = run_json(["evaluate", "--checkpoint", str(digits), "--data", str(small_trainpart1_zip)], capsys)
    assert code == 0 and report["n"] == 20 and "104 images" in report["note"]


def test_module_runs_as_a_program(tmp_path, character_checkpoint, small_trainpart1_zip):
    result = subprocess.run([sys.executable, "-m", "src", "evaluate", "--checkpoint", str(character_checkpoint),
                             "--data", str(small_trainpart1_zip)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "accuracy, case-ambiguous classes merged" in result.stdout
