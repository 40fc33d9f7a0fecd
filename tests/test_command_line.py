"""`python -m src`: the commands a later test set and a user's own drawing will be run with."""
import json
import subprocess
import sys

import pytest
import torch

from src.__main__ import main
from src.checkpoints import load_model, save_checkpoint
from src.data.classes import CLASS_CHARACTERS
from src.data.preprocess import PREPROCESSING_VERSION
from src.model import ModelConfig, build_model
from src.recognise import recognise
from tests.generated import draw_character, png_bytes, trainpart1_entries, write_folder, write_zip


def always_zero_checkpoint(path, **metadata):
    """A 62-class network whose every answer is class 0 ("0"): its accuracy on any set is known in advance."""
    model = build_model(ModelConfig(62, geometry_features=4, widths=(8, 16, 16)), seed=0).eval()
    with torch.no_grad():
        model.head.linear.weight.zero_()
        model.head.linear.bias.copy_(-torch.arange(62.0))
    return save_checkpoint(path, model, {"task": "task1", "classes": CLASS_CHARACTERS, "preprocessing": "mnist",
                                         "geometry": "writer", **metadata})


def test_evaluate_on_unseen_writers_with_a_missing_class_and_a_digit_network_on_them(tmp_path, capsys):
    test_set = write_zip(tmp_path / "later.zip", [e for e in trainpart1_entries(writers=range(41, 43))
                                                  if "Sample011" not in e[0]])
    assert main(["evaluate", "--checkpoint", str(always_zero_checkpoint(tmp_path / "zero.pt")), "--data",
                 str(test_set), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == 122 and report["absent_classes"] == "A" and report["per_class"]["A"] is None
    assert len(report["confusion"]) == 62 and sum(map(sum, report["confusion"])) == 122
    # Every answer is "0": right for the two drawings of "0"; merged with O and o, for six.
    assert report["accuracy"] == pytest.approx(2 / 122) and report["accuracy_case_merged"] == pytest.approx(6 / 122)
    digits = save_checkpoint(tmp_path / "digits.pt", build_model(ModelConfig(10, widths=(8, 16, 16)), seed=0).eval(),
                             {"task": "task2", "classes": CLASS_CHARACTERS[:10], "preprocessing": "mnist"})
    assert main(["evaluate", "--checkpoint", str(digits), "--data", str(test_set), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)  # a digit network on a character set: says what it left out
    assert report["n"] == 20 and "102 images" in report["note"]  # 2 writers x 51 letters (no A)


@pytest.mark.parametrize("checkpoint, data, expected", [
    ("older", "set", [f"preprocessing version {PREPROCESSING_VERSION - 1}", "older.pt"]),
    ("bogus", "set", ["bogus.pt"]),
    ("folder", "set", ["is a folder"]),
    ("character", "wrong", ["unrecognised layout", "letters"]),
])
def test_evaluate_fails_clearly_and_says_why(tmp_path, character_checkpoint, small_trainpart1_zip, capsys,
                                             checkpoint, data, expected):
    (tmp_path / "bogus.pt").write_bytes(b"definitely not a checkpoint")
    paths = {"older": always_zero_checkpoint(tmp_path / "older.pt", preprocessing_version=PREPROCESSING_VERSION - 1),
             "bogus": tmp_path / "bogus.pt", "folder": tmp_path, "character": character_checkpoint}
    sets = {"set": small_trainpart1_zip, "wrong": write_folder(tmp_path / "wrong", [
        (f"letters/{name.split('/')[-1]}", image) for name, image in trainpart1_entries(classes="ab", writers=[1])])}
    assert main(["evaluate", "--checkpoint", str(paths[checkpoint]), "--data", str(sets[data])]) == 2
    error = capsys.readouterr().err
    assert all(text in error for text in expected), error


@pytest.mark.parametrize("command", [[], ["data"], ["train"], ["evaluate"], ["recognise"]])
def test_the_help_of_every_command_renders(command, capsys):
    with pytest.raises(SystemExit) as exit_status:
        main([*command, "--help"])
    assert exit_status.value.code == 0 and "usage: python -m src" in capsys.readouterr().out


def test_recognise_prints_the_networks_top_three_for_a_drawing(tmp_path, character_checkpoint, capsys):
    drawing = tmp_path / "my_A.png"
    drawing.write_bytes(png_bytes(draw_character(CLASS_CHARACTERS.index("A"), writer=3)))
    result = subprocess.run([sys.executable, "-m", "src", "recognise", str(drawing), "--checkpoint",
                             str(character_checkpoint)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    model, metadata = load_model(character_checkpoint)
    top3 = recognise(drawing.read_bytes(), model, metadata).top5[:3]
    assert result.stdout.splitlines()[0] == f"{drawing}: " + ", ".join(f"'{c}' {p:.2f}" for c, p in top3)
    assert [p for _, p in top3] == sorted((p for _, p in top3), reverse=True) and len({c for c, _ in top3}) == 3
    assert main(["recognise", str(tmp_path / "none.png"), "--checkpoint", str(character_checkpoint)]) == 2
    assert "no such image file" in capsys.readouterr().err
