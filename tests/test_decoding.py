"""Writer-consistent decoding: known answers on small inputs, and a clear refusal, naming the writer,
wherever its assumption (each writer draws each character at most once) does not hold."""
import json
import math

import pytest
import torch

from src import analysis
from src.__main__ import main
from src.checkpoints import save_checkpoint
from src.classes import CLASS_CHARACTERS
from src.decoding import check_writer_groups, writer_consistent_predictions
from src.files import DataError
from src.model import ModelConfig, build_model
from src.preprocess import describe_geometry_reference
from tests.generated import draw_character, png_bytes, trainpart1_entries, write_zip


def log(*probabilities):
    return [math.log(p) for p in probabilities]


def test_two_drawings_that_both_look_like_one_class_are_split_by_the_likelier_assignment():
    # writer 7: both images say "class 0" first; the second prefers class 1 over class 2.
    # writer 9: one image, alone, keeps its own best class.
    scores = torch.tensor([log(0.7, 0.2, 0.1), log(0.6, 0.35, 0.05), log(0.5, 0.1, 0.4)])
    writers = torch.tensor([7, 7, 9])
    assert scores.argmax(1).tolist() == [0, 0, 0]
    assert writer_consistent_predictions(scores, writers).tolist() == [0, 1, 0]


def test_the_joint_optimum_can_move_the_more_confident_image():
    # Keeping image 0 on class 0 costs image 1 dearly (0.9 -> 0.01); the best total swaps image 0.
    scores = torch.tensor([log(0.6, 0.39, 0.01), log(0.9, 0.01, 0.09)])
    predictions = writer_consistent_predictions(scores, torch.tensor([1, 1]))
    assert predictions.tolist() == [1, 0]


def test_logits_and_log_probabilities_give_the_same_assignment():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(30, 62, generator=generator) * 3
    writers = torch.arange(30) // 10
    assert torch.equal(writer_consistent_predictions(logits, writers),
                       writer_consistent_predictions(torch.log_softmax(logits, 1), writers))
    predictions = writer_consistent_predictions(logits, writers)
    for writer in range(3):  # distinct classes within each writer
        assert len(set(predictions[writers == writer].tolist())) == 10


def test_refuses_a_writer_with_more_images_than_classes():
    with pytest.raises(DataError, match="writer 005 has 4 images but there are only 3 classes"):
        writer_consistent_predictions(torch.zeros(4, 3), torch.tensor([5, 5, 5, 5]))


def test_refuses_a_labelled_writer_with_two_images_of_one_class():
    with pytest.raises(DataError, match="writer 012 has 2 images of class 1"):
        check_writer_groups(torch.tensor([3, 12, 12]), 62, labels=torch.tensor([1, 1, 1]))


def test_refuses_images_without_a_writer():
    with pytest.raises(DataError, match="writer id"):
        writer_consistent_predictions(torch.zeros(2, 3), torch.tensor([-1, 4]))


def test_evaluate_decode_writer_reports_both_accuracies_and_the_writer_count(tmp_path, character_checkpoint, capsys):
    test_set = write_zip(tmp_path / "later.zip", trainpart1_entries(writers=range(41, 44)))
    code = main(["evaluate", "--checkpoint", str(character_checkpoint), "--data", str(test_set),
                 "--decode", "writer", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["decoding"] == "writer" and report["writers"] == 3 and report["n"] == 186
    per_image = main(["evaluate", "--checkpoint", str(character_checkpoint), "--data", str(test_set), "--json"])
    assert per_image == 0 and json.loads(capsys.readouterr().out)["accuracy"] == report["accuracy"]
    assert isinstance(report["accuracy_writer_decoded"], float)


def test_evaluate_decode_writer_refuses_a_set_that_breaks_the_assumption(tmp_path, character_checkpoint, capsys):
    twice = ("train/Sample011/IMG011-041.png", png_bytes(draw_character(10, 41)))  # writer 041 drew "A" twice
    without_b = [entry for entry in trainpart1_entries(writers=[41]) if "Sample012" not in entry[0]]
    test_set = write_zip(tmp_path / "later.zip", [*without_b, twice])
    code = main(["evaluate", "--checkpoint", str(character_checkpoint), "--data", str(test_set), "--decode", "writer"])
    assert code == 2 and "writer 041 has 2 images of class 10 ('A')" in capsys.readouterr().err
    assert main(["evaluate", "--checkpoint", str(character_checkpoint), "--data", str(test_set)]) == 0  # per image: fine


def test_cross_validation_reports_writer_decoding_beside_per_image_accuracy(tmp_path):
    from dataclasses import replace

    from src import datasets, task1
    recipe = task1.recipe_for("quick")
    recipe = replace(recipe, test_time_views=0, training=replace(recipe.training, epochs=1))
    characters = datasets.read_trainpart1(write_zip(tmp_path / "five.zip", trainpart1_entries(writers=range(1, 6))),
                                          preprocessing=recipe.preprocessing)
    cv = task1.cross_validate(recipe, characters, folds_run=2, progress=False)
    assert cv["accuracy_writer_decoded"]["n"] == 2
    for fold in cv["folds"]:  # what each fold reports is the decoding of its own out-of-fold logits
        index = torch.isin(characters.writers, torch.tensor(fold["validation_writers"]))
        writers, labels = characters.writers[index], characters.labels[index]
        decoded = writer_consistent_predictions(cv["out_of_fold_logits"][index], writers, labels, CLASS_CHARACTERS)
        assert fold["accuracy_writer_decoded"] == analysis.accuracy(decoded, labels)


@pytest.mark.parametrize("writers, dropped, expected", [
    (range(41, 44), None, "the writer's images in this set (3 writers, 62-62 images each; transductive"),
    (range(41, 43), "Sample011", "the writer's images in this set (2 writers, 61-61 images each"),  # a class missing
    (range(41, 46), "one each", "the training set (5 images: writer unknown to the network"),
])
def test_evaluate_says_what_the_geometry_was_measured_against(tmp_path, character_checkpoint, capsys, writers,
                                                               dropped, expected):
    entries = list(trainpart1_entries(writers=writers))
    if dropped == "one each":  # writer 041 drew only "0", 042 only "1", ...: no writer median to measure against
        entries = [e for e in entries if int(e[0].split("-")[-1][:3]) - 41 == int(e[0].split("Sample")[1][:3]) - 1]
    elif dropped:
        entries = [e for e in entries if dropped not in e[0]]
    test_set = write_zip(tmp_path / "later.zip", entries)
    code = main(["evaluate", "--checkpoint", str(character_checkpoint), "--data", str(test_set), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["geometry_reference"].startswith(expected)


def test_a_set_mixing_known_writers_enough_and_too_few_images_names_every_reference():
    writers = torch.tensor([1] * 12 + [2] * 3 + [-1] * 2 + [4] * 5)
    text = describe_geometry_reference(writers, "writer", minimum_images=10, known_writers=[4])
    assert text.startswith("the writer's drawings in the training set (1 writers, 5 images; inductive)")
    assert "this set (1 writers, 12-12 images each" in text and "the training set (5 images" in text
    assert describe_geometry_reference(writers, "absolute") == "absolute (the ink box as measured)"


def test_evaluate_measures_a_known_writer_against_the_references_stored_in_the_checkpoint(tmp_path, capsys):
    model = build_model(ModelConfig(62, geometry_features=4, widths=(8, 16, 16)), seed=0).eval()
    test_set = write_zip(tmp_path / "later.zip", trainpart1_entries(writers=[3, 4]))
    reports = []
    for known in ({}, {3: [0.5, 0.1, 0.1], 4: [-3.0, -0.2, 0.2]}):
        checkpoint = save_checkpoint(tmp_path / f"known{len(known)}.pt", model, {
            "task": "task1", "classes": CLASS_CHARACTERS, "preprocessing": "mnist", "geometry": "writer",
            "geometry_reference": [-1.5, 0.0, 0.0], "writer_references": known})
        assert main(["evaluate", "--checkpoint", str(checkpoint), "--data", str(test_set), "--json"]) == 0
        reports.append(json.loads(capsys.readouterr().out))
    own, stored = reports
    assert own["geometry_reference"].startswith("the writer's images in this set (2 writers")
    assert stored["geometry_reference"].startswith("the writer's drawings in the training set (2 writers, 124 images")
    assert own["expected_calibration_error"] != stored["expected_calibration_error"]  # other inputs, other outputs


def test_evaluate_divides_the_logits_by_the_stored_temperature(tmp_path, capsys):
    model = build_model(ModelConfig(62, geometry_features=4, widths=(8, 16, 16)), seed=0).eval()
    test_set = write_zip(tmp_path / "later.zip", trainpart1_entries(writers=range(41, 43)))
    reports = []
    for temperature in (1.0, 4.0):
        checkpoint = save_checkpoint(tmp_path / f"t{temperature}.pt", model, {
            "task": "task1", "classes": CLASS_CHARACTERS, "preprocessing": "mnist", "geometry": "writer",
            "temperature": temperature})
        assert main(["evaluate", "--checkpoint", str(checkpoint), "--data", str(test_set), "--json"]) == 0
        reports.append(json.loads(capsys.readouterr().out))
    plain, scaled = reports
    assert scaled["temperature"] == 4.0 and scaled["accuracy"] == plain["accuracy"]  # argmax unchanged
    assert scaled["expected_calibration_error"] != plain["expected_calibration_error"]
