"""`python -m src evaluate`: the command a later test set will be run with."""
import json
import subprocess
import sys

import pytest

from src.__main__ import main
from src.checkpoints import save_checkpoint
from src.classes import CLASS_CHARACTERS
from src.model import ModelConfig, build_model
from tests.generated import trainpart1_entries, write_folder, write_zip


@pytest.fixture
def character_checkpoint(tmp_path):
    model = build_model(ModelConfig(62, geometry_features=4, widths=(8, 16, 16)), seed=0).eval()
    return save_checkpoint(tmp_path / "task1.pt", model, {"task": "task1", "classes": CLASS_CHARACTERS,
                                                           "preprocessing": "mnist"})


def run_json(arguments, capsys):
    code = main(arguments + ["--json"])
    output = capsys.readouterr().out
    return code, (json.loads(output) if code == 0 else None)


def test_evaluate_on_unseen_writers_with_a_missing_class(tmp_path, character_checkpoint, capsys):
    entries = [e for e in trainpart1_entries(writers=range(41, 43)) if "Sample011" not in e[0]]
    test_set = write_zip(tmp_path / "later_test_set.zip", entries)
    code, report = run_json(["evaluate", "--checkpoint", str(character_checkpoint), "--data", str(test_set)], capsys)
    assert code == 0
    assert report["n"] == 122 and report["absent_classes"] == "A" and report["per_class"]["A"] is None
    assert {"accuracy", "n", "per_class", "confusion", "accuracy_case_merged"} <= set(report)
    assert len(report["confusion"]) == 62 and sum(map(sum, report["confusion"])) == 122
    assert 0.0 <= report["accuracy"] <= report["accuracy_case_merged"] <= 1.0


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
