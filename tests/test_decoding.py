"""Writer-consistent decoding: known answers, and refusals naming the writer where its assumption (each writer draws
each character at most once) fails; the writer references and temperature `evaluate` reads from a checkpoint."""
import json
import math

import pytest
import torch

from src.__main__ import main
from src.checkpoints import save_checkpoint
from src.data.classes import CLASS_CHARACTERS
from src.data.files import DataError
from src.decoding import check_writer_groups, writer_consistent_predictions
from src.model import ModelConfig, build_model
from tests.generated import draw_character, png_bytes, trainpart1_entries, write_zip


def log(*probabilities):
    return [math.log(p) for p in probabilities]


@pytest.mark.parametrize("scores, writers, expected", [
    # writer 7: both images say class 0 first, the second prefers 1 over 2; writer 9 alone keeps its own best
    ([log(0.7, 0.2, 0.1), log(0.6, 0.35, 0.05), log(0.5, 0.1, 0.4)], [7, 7, 9], [0, 1, 0]),
    # keeping image 0 on class 0 costs image 1 dearly (0.9 -> 0.01): the best total moves the more confident image
    ([log(0.6, 0.39, 0.01), log(0.9, 0.01, 0.09)], [1, 1], [1, 0]),
])
def test_the_likeliest_assignment_to_distinct_classes(scores, writers, expected):
    assert writer_consistent_predictions(torch.tensor(scores), torch.tensor(writers)).tolist() == expected


def test_logits_and_log_probabilities_give_the_same_distinct_assignment():
    logits = torch.randn(30, 62, generator=torch.Generator().manual_seed(0)) * 3
    writers = torch.arange(30) // 10
    predictions = writer_consistent_predictions(logits, writers)
    assert torch.equal(predictions, writer_consistent_predictions(torch.log_softmax(logits, 1), writers))
    assert all(len(set(predictions[writers == writer].tolist())) == 10 for writer in range(3))


@pytest.mark.parametrize("writers, labels, message", [
    ([5, 5, 5, 5], None, "writer 005 has 4 images but there are only 3 classes"),
    ([3, 12, 12], [1, 1, 1], "writer 012 has 2 images of class 1"),
    ([-1, 4], None, "writer id"),
])
def test_refuses_where_the_assumption_does_not_hold(writers, labels, message):
    with pytest.raises(DataError, match=message):
        check_writer_groups(torch.tensor(writers), 3, None if labels is None else torch.tensor(labels))


def evaluate_json(capsys, *arguments) -> dict:
    assert main(["evaluate", *map(str, arguments), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_evaluate_decode_writer_reports_both_accuracies_and_refuses_a_set_that_breaks_the_assumption(
        tmp_path, character_checkpoint, capsys):
    test_set = write_zip(tmp_path / "later.zip", trainpart1_entries(writers=range(41, 44)))
    report = evaluate_json(capsys, "--checkpoint", character_checkpoint, "--data", test_set, "--decode", "writer")
    assert report["decoding"] == "writer" and report["writers"] == 3 and report["n"] == 186
    per_image = evaluate_json(capsys, "--checkpoint", character_checkpoint, "--data", test_set)
    assert per_image["accuracy"] == report["accuracy"] and "accuracy_writer_decoded" not in per_image
    twice = ("train/Sample011/IMG011-041.png", png_bytes(draw_character(10, 41)))  # writer 041 drew "A" twice
    without_b = [entry for entry in trainpart1_entries(writers=[41]) if "Sample012" not in entry[0]]
    broken = write_zip(tmp_path / "broken.zip", [*without_b, twice])
    code = main(["evaluate", "--checkpoint", str(character_checkpoint), "--data", str(broken), "--decode", "writer"])
    assert code == 2 and "writer 041 has 2 images of class 10 ('A')" in capsys.readouterr().err
    assert main(["evaluate", "--checkpoint", str(character_checkpoint), "--data", str(broken)]) == 0  # per image: fine


def test_evaluate_reads_the_writer_references_and_the_temperature_stored_in_the_checkpoint(tmp_path, capsys):
    model = build_model(ModelConfig(62, geometry_features=4, widths=(8, 16, 16)), seed=0).eval()
    test_set = write_zip(tmp_path / "later.zip", trainpart1_entries(writers=[3, 4]))
    reports = {}
    for name, extra in (("own", {}), ("stored", {"writer_references": {3: [0.5, 0.1, 0.1], 4: [-3.0, -0.2, 0.2]}}),
                        ("hot", {"temperature": 4.0})):
        checkpoint = save_checkpoint(tmp_path / f"{name}.pt", model, {
            "task": "task1", "classes": CLASS_CHARACTERS, "preprocessing": "mnist", "geometry": "writer",
            "geometry_reference": [-1.5, 0.0, 0.0], **extra})
        reports[name] = evaluate_json(capsys, "--checkpoint", checkpoint, "--data", test_set)
    # a known writer is measured against its stored training medians: other inputs, other outputs
    assert reports["own"]["expected_calibration_error"] != reports["stored"]["expected_calibration_error"]
    # dividing the logits by a temperature changes the confidence, never the answer
    assert reports["hot"]["temperature"] == 4.0 and reports["hot"]["accuracy"] == reports["own"]["accuracy"]
    assert reports["hot"]["confusion"] == reports["own"]["confusion"]
    assert reports["hot"]["expected_calibration_error"] != reports["own"]["expected_calibration_error"]
