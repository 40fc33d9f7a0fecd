"""Task 1's two cross-validation protocols, its stroke-width choices, and the one evaluation on the test set."""
from dataclasses import replace

import pytest
import torch

from src import task1
from src.augment import NO_AUGMENTATION, vary_stroke_width
from src.datasets import read_trainpart1
from src.model import ModelConfig
from src.preprocess import stroke_width
from src.splits import stratified_kfold
from tests.generated import trainpart1_entries, write_zip


def test_image_folds_hold_out_a_share_of_every_class_and_score_each_image_once():
    labels = torch.arange(62).repeat_interleave(40)
    folds = stratified_kfold(labels, 5, seed=0)
    held_out = torch.cat([validation for _, validation in folds])
    assert sorted(held_out.tolist()) == list(range(len(labels)))
    for train_index, validation in folds:
        assert torch.bincount(labels[validation], minlength=62).tolist() == [8] * 62
        assert not set(train_index.tolist()) & set(validation.tolist())
    assert not torch.equal(folds[0][1], stratified_kfold(labels, 5, seed=1)[0][1])


def test_stroke_width_jitter_thickens_and_thins_and_leaves_share_zero_alone():
    image = torch.zeros(3, 1, 28, 28)
    image[:, 0, 8:20, 12:15] = 1.0  # a 3-pixel stroke
    varied = vary_stroke_width(image, torch.tensor([1.0, -1.0, 0.0]))
    widths = stroke_width(varied[:, 0]).tolist()
    assert widths[0] > widths[2] > widths[1] and torch.equal(varied[2], image[2])


@pytest.fixture
def eleven_writers(tmp_path):
    return read_trainpart1(write_zip(tmp_path / "train.zip", trainpart1_entries(classes="0123AaBbOo", writers=range(1, 12))),
                           require_all_classes=False, preprocessing=task1.RECIPE.preprocessing)


TINY = replace(task1.RECIPE, model=ModelConfig(62, geometry_features=4, widths=(4, 8, 8)),
               training=replace(task1.RECIPE.training, epochs=1, augment=NO_AUGMENTATION), test_time_views=0)


def test_the_images_protocol_sees_each_validation_writer_in_training_and_the_writers_protocol_never(eleven_writers):
    for protocol, seen in (("images", True), ("writers", False)):
        cv = task1.cross_validate(TINY, eleven_writers, folds_run=2, progress=False, protocol=protocol)
        for fold, (train_index, validation_index) in zip(cv["folds"], task1.folds_of(eleven_writers, protocol)):
            train_writers = set(eleven_writers.writers[train_index].tolist())
            assert all((writer in train_writers) == seen for writer in fold["validation_writers"])
        assert cv["scored"].sum() == sum(f["validation_images"] for f in cv["folds"])


def test_a_replication_deals_other_folds_that_keep_the_protocol(eleven_writers):
    """Another fold seed holds out other drawings (or writers), each still exactly once, and the writers protocol
    still keeps a writer's drawings together."""
    for protocol in ("images", "writers"):
        first, replication = (task1.folds_of(eleven_writers, protocol, fold_seed) for fold_seed in (0, 1))
        assert [v.tolist() for _, v in first] != [v.tolist() for _, v in replication]
        held_out = torch.cat([validation for _, validation in replication])
        assert sorted(held_out.tolist()) == list(range(len(eleven_writers)))
        if protocol == "writers":
            for train_index, validation_index in replication:
                assert not set(eleven_writers.writers[train_index].tolist()) & set(
                    eleven_writers.writers[validation_index].tolist())


def test_prediction_variants_are_scored_on_the_same_networks(eleven_writers):
    variants = {"same recipe": TINY, "medians from the evaluated images": replace(TINY, writer_reference="evaluated")}
    cv = task1.cross_validate(TINY, eleven_writers, folds_run=1, progress=False, protocol="images",
                              prediction_variants=variants)
    fold = cv["folds"][0]
    assert fold["variants"]["same recipe"]["accuracy"] == fold["accuracy"]
    assert set(fold["variants"]) == set(variants)


def test_a_photo_on_grey_paper_reads_like_the_same_drawing_on_white(tmp_path):
    import io

    import numpy as np
    from PIL import Image

    from src.model import build_model
    from src.recognise import png_from_data_url, recognise
    from tests.generated import draw_character, png_bytes

    clean = draw_character(CHARACTER_O, writer=3, canvas=(240, 180))
    grey = np.asarray(clean.convert("L"), dtype=np.float32) * 0.45 + 110  # grey paper (~225), soft ink (~110)
    photo = io.BytesIO()
    Image.fromarray(grey.astype(np.uint8)).save(photo, format="JPEG", quality=95)
    model = build_model(ModelConfig(62, geometry_features=4, widths=(4, 8, 8)), seed=0)
    metadata = {"geometry": "writer", "geometry_reference": [-1.0, 0.0, 0.0], "temperature": 1.0}
    from_scan, from_photo = (recognise(payload, model, metadata) for payload in (png_bytes(clean), photo.getvalue()))
    assert from_scan.image.shape == (28, 28) and len(from_scan.top5) == 5
    assert (from_scan.image - from_photo.image).abs().mean() < 0.05
    assert [c for c, _ in from_scan.top5] == [c for c, _ in from_photo.top5]
    assert from_scan.relative_log_height == pytest.approx(from_photo.relative_log_height, abs=0.05)
    import base64
    assert png_from_data_url("data:image/png;base64," + base64.b64encode(b"abc").decode()) == b"abc"


def test_a_case_pair_on_top_is_explained_by_redrawing_the_same_shape_larger_and_smaller():
    from src.recognise import _case_note

    class SizeReader(torch.nn.Module):  # 'O' when drawn large, 'o' when small: size alone decides
        config = ModelConfig(62, geometry_features=4)

        def forward(self, images, geometry):
            logits = torch.full((len(images), 62), -10.0)
            logits[:, CHARACTER_O] = 5 * geometry[:, 0]
            logits[:, CHARACTER_O + 26] = -5 * geometry[:, 0]
            return logits
    note = _case_note(SizeReader(), torch.zeros(28, 28), torch.zeros(1, 4), 1.0, [("O", 0.5), ("o", 0.5)], 0.0)
    larger, smaller = note.splitlines()[1:]
    assert "larger: P('O') = 0.9" in larger and "smaller: P('O') = 0.0" in smaller
    assert _case_note(SizeReader(), torch.zeros(28, 28), torch.zeros(1, 4), 1.0, [("O", 0.5), ("0", 0.5)], 0.0) == ""


CHARACTER_O = 24  # "0-9A-Z": 'O' is index 10 + 14


def fake_results_and_test():
    from src.analysis import Run
    runs = [Run("task1", method, "scratch", seed=fold, fold=fold, protocol=protocol,
                metrics={"accuracy": base + 0.01 * fold, "accuracy_case_merged": base + 0.05})
            for protocol, base in (("images", 0.90), ("writers", 0.88))
            for method in ("recipe", "no geometry input") for fold in range(5)]
    results = {"runs": runs, "data": "trainPart1: REAL data", "device": "cpu", "budget": "full",
               "checkpoint": "checkpoints/task1.pt",
               "calibration": {"images": {"ece_before": 0.1, "ece_after": 0.01, "temperature": 0.6}}}
    test = {"n": 930, "accuracy": 0.9312, "accuracy_case_merged": 0.9871, "accuracy_writer_decoded": 0.9903,
            "expected_calibration_error": 0.02, "data": "testPart1: REAL data", "confusion": torch.eye(62).tolist(),
            "public_solutions": [{"repository": r, "url": "", "accuracy": a} for r, a in (("a/b", 0.6344), ("c/d", 0.5237))]}
    return results, test


def test_the_answer_box_is_short_and_carries_this_runs_numbers():
    results, test = fake_results_and_test()
    box = task1.answer_box(results, test)
    assert len(box.split()) <= 120
    for number in ("93.1 %", "98.7 %", "63.4 %", "52.4 %", "92.0 ± 1.6 % (n=5 folds)", "90.0 ± 1.6 % (n=5 folds)", "99.0 %"):
        assert number in box


def test_the_conclusions_state_each_ablation_with_its_paired_test():
    results, test = fake_results_and_test()
    text = task1.conclusions(results, test)
    assert text.count("no geometry input: +0.0 points (paired by fold, n=5") == 2  # once per protocol
    assert "T = 0.60" in text and "93.12 %" in text and "(writer-consistent decoding) gives 99.03 %" in text


def test_the_test_set_is_judged_once_by_the_evaluate_command_path_and_saved(tmp_path, monkeypatch):
    from src.checkpoints import save_checkpoint
    from src.classes import CLASS_CHARACTERS
    from src.model import build_model
    from src.runs import load_results
    test_zip = write_zip(tmp_path / "testPart1.zip", trainpart1_entries(writers=[3, 4], prefix="test/"))
    monkeypatch.setenv("PLAYMNIST_TESTPART1", str(test_zip))
    checkpoint = save_checkpoint(tmp_path / "task1.pt", build_model(ModelConfig(62, 4, (4, 8, 8)), seed=0), {
        "task": "task1", "classes": CLASS_CHARACTERS, "preprocessing": "mnist", "geometry": "writer",
        "geometry_reference": [-1.0, 0.0, 0.0]})
    report = task1.judge_on_test_set("full", checkpoint)
    assert report["n"] == 124 and report["writers"] == 2 and len(report["public_solutions"]) == 2
    assert load_results("task1_test", "full")["accuracy"] == report["accuracy"]
    assert [row["what"][:9] for row in task1.testpart1_headline_rows(report)] == ["testPart1", "testPart1"]


def test_the_recipe_and_each_ablation_train_on_the_images_their_own_preprocessing_makes(task1_on_five_writers,
                                                                                        monkeypatch):
    """The recipe thins the strokes and its ablation keeps them as drawn: each cross-validation, and the final network,
    gets trainPart1 in its own preprocessing, and the checkpoint says which one `evaluate` must apply."""
    from src.checkpoints import read_checkpoint
    from src.runs import checkpoint_dir
    five_writers, requested = task1_on_five_writers
    monkeypatch.setitem(task1.BUDGETS, "quick", {**task1.BUDGETS["quick"],
                                                 "ablations": ["strokes as drawn (not thinned)"]})
    results = task1.run_experiment("quick", progress=False)
    assert task1.RECIPE.preprocessing == "mnist_thinned" == results["recipe"]["preprocessing"]
    assert set(requested) == {"mnist_thinned", "mnist"}
    assert read_checkpoint(checkpoint_dir("quick") / "task1.pt")["metadata"]["preprocessing"] == "mnist_thinned"
    with pytest.raises(ValueError, match="mnist_thinned.*'mnist'"):
        task1.cross_validate(task1.RECIPE, read_trainpart1(five_writers), folds_run=1, progress=False)
