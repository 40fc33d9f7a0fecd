"""Task 3's tools on known inputs, learning from complementary labels, and an experiment blind to MNIST's labels."""
import io
import math
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from src import task3
from src.augment import NO_AUGMENTATION
from src.data.datasets import NoisyDigits
from src.data.labelled import LabelledImages
from src.model import ModelConfig, build_model
from src.noisy_labels import (complementary_loss, confident_pseudo_labels,
                              estimate_transition_matrix, forward_corrected_loss, least_likely_folder)
from src.train import TrainConfig, predict_logits, train
from tests.generated import bar_digits, write_zip

COMPLEMENTARY = (torch.ones(10, 10) - torch.eye(10)) / 9  # never the true folder, else uniform


def test_the_losses_on_known_inputs():
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.0, 0.0, 0.0]])
    p = torch.softmax(logits, 1)
    expected = -(torch.log(1 - p[0, 0]) + math.log(1 - 1 / 3)) / 2
    assert complementary_loss(logits, torch.tensor([0, 2])).item() == pytest.approx(expected.item(), rel=1e-6)
    assert math.isfinite(complementary_loss(torch.tensor([[80.0, 0.0, 0.0]]), torch.tensor([0])).item())  # stable
    # forward correction: cross-entropy under T = I, log 9 for a sure digit in one of the nine other folders
    logits = torch.randn(16, 10, generator=torch.Generator().manual_seed(0))
    labels = torch.randint(0, 10, (16,), generator=torch.Generator().manual_seed(1))
    assert forward_corrected_loss(torch.eye(10))(logits, labels).item() == pytest.approx(
        F.cross_entropy(logits, labels).item(), rel=1e-5)
    sure = torch.full((1, 10), -30.0)
    sure[0, 2] = 30.0  # certain it is a 2: p(folder 5) = 1/9, p(folder 2) ~ 0
    assert forward_corrected_loss(COMPLEMENTARY)(sure, torch.tensor([5])).item() == pytest.approx(math.log(9), rel=1e-4)
    assert forward_corrected_loss(COMPLEMENTARY)(sure, torch.tensor([2])).item() > 20


def test_the_transition_matrix_the_argmin_of_a_folder_network_and_pseudo_labels_on_known_inputs():
    transition = estimate_transition_matrix(torch.tensor([0, 0, 0, 0, 1, 1]), torch.tensor([1, 1, 2, 0, 0, 0]), 3)
    assert transition.tolist() == [[0.25, 0.5, 0.25], [1.0, 0.0, 0.0], [pytest.approx(1 / 3)] * 3]  # no 2: uniform
    assert least_likely_folder(torch.tensor([[0.3, -2.0, 1.0], [5.0, 4.0, -1.0]])).tolist() == [1, 2]
    # pseudo-labels: the confident share, never where the answer is the folder
    logits = torch.tensor([[9.0, 0, 0], [5.0, 0, 0], [0, 3.0, 0], [0, 0, 1.0], [7.0, 0, 0]])
    keep, labels, threshold = confident_pseudo_labels(logits, torch.tensor([1, 2, 0, 0, 0]), keep_share=0.5)
    assert labels.tolist() == [0, 0, 1, 2, 0] and 0 < threshold < 1
    assert keep.tolist() == [True, True, False, False, False]  # the two most confident of the four that disagree


def test_the_held_out_measures_on_hand_made_logits():
    """Ten images; the network's answer is image k's digit k with probability 0.5 (0.5/9 for each other digit).
    Image 0 sits in folder 0, image k in folder k + 1: one in ten predicted as its own folder, so the bound is
    1 - 9 x 0.1 = 0.1. Under T = I the corrected loss is cross-entropy on the folders:
    (-log 0.5 - 9 log(0.5 / 9)) / 10."""
    assert task3.folder_bound_accuracy(0.0) == 1.0 and task3.folder_bound_accuracy(1 / 9) == pytest.approx(0.0)
    probabilities = torch.full((10, 10), 0.5 / 9)
    probabilities.fill_diagonal_(0.5)
    folders = torch.tensor([0] + [(k + 1) % 10 for k in range(1, 10)])
    measured = task3.held_out_measures(torch.eye(10))(probabilities.log(), folders)
    assert measured["folder_share"] == pytest.approx(0.1) and measured["bound_accuracy"] == pytest.approx(0.1)
    assert measured["corrected_loss"] == pytest.approx((-math.log(0.5) - 9 * math.log(0.5 / 9)) / 10, rel=1e-5)
    assert set(task3.held_out_measures(None)(probabilities.log(), folders)) == {"folder_share", "bound_accuracy"}


def test_a_network_learns_the_true_classes_from_complementary_labels_only():
    images, truth = bar_digits(1000, seed=0)
    folders = (truth + torch.randint(1, 10, truth.shape, generator=torch.Generator().manual_seed(1))) % 10
    assert not (folders == truth).any()
    result = train(build_model(ModelConfig(10, widths=(8, 16, 16)), seed=0), LabelledImages(images, folders),
                   TrainConfig(epochs=6, batch_size=100, learning_rate=0.05, augment=NO_AUGMENTATION),
                   loss_function=forward_corrected_loss(COMPLEMENTARY), progress=False, device="cpu")
    test_images, test_truth = bar_digits(500, seed=2)
    accuracy = (predict_logits(result.model, test_images).argmax(1).cpu() == test_truth).float().mean().item()
    assert accuracy > 0.6  # chance is 0.1; cross-entropy on the folders would score ~0


def test_a_smaller_held_out_part_keeps_each_folders_share_and_never_meets_training():
    folders = torch.arange(1000) % 10
    noisy = NoisyDigits(torch.zeros(1000, 1, 28, 28), folders, torch.arange(1000), source=None)
    train_index, all_held_out = task3.split_indices(noisy)
    smaller_train, held_out = task3.split_indices(noisy, train_images=300, held_out_images=40)
    assert len(all_held_out) == 100 and len(held_out) == 40 and len(smaller_train) == 300
    assert torch.isin(held_out, all_held_out).all() and not torch.isin(held_out, train_index).any()
    assert torch.bincount(folders[held_out], minlength=10).tolist() == [4] * 10


def test_task3_never_reads_the_mnist_training_labels_before_its_audit(tmp_path, tiny_mnist, monkeypatch):
    """The archive's file numbers name MNIST training images; their labels would answer Task 3 by looking it up.
    The whole experiment runs with them out of reach (refused where every route reads them); only the audit,
    after all learning, reads them."""
    import src.data.mnist as mnist
    images, digits = bar_digits(200, seed=3)  # file k names MNIST training image k, whose label is k % 10
    folders = (digits + 1 + torch.arange(200) % 9) % 10  # never the digit
    entries = []
    for index in range(200):
        buffer = io.BytesIO()
        Image.fromarray((images[index, 0] * 255).round().byte().numpy()).save(buffer, format="JPEG", quality=90)
        entries.append((f"mnistTask/{int(folders[index])}/image_{index:06d}.jpg", buffer.getvalue()))
    monkeypatch.setenv("PLAYMNIST_MNISTTASK3", str(write_zip(tmp_path / "mnistTask3.zip", entries)))
    read = mnist.load_mnist_uint8

    def test_split_only(split="train", *arguments, **keyword_arguments):
        if split != "test":
            raise AssertionError("Task 3 read the MNIST training labels")
        return read(split, *arguments, **keyword_arguments)
    monkeypatch.setattr(mnist, "load_mnist_uint8", test_split_only)
    monkeypatch.setitem(task3.TASK3_BUDGETS, "quick", replace(task3.TASK3_BUDGETS["quick"], train_images=None))
    results = task3.run_experiment("quick", progress=False)
    assert {(run.method, run.start) for run in results["runs"]} == {
        ("naive", "scratch"), ("complementary", "scratch"), ("corrected", "scratch"), ("two_stage", "scratch")}
    assert results["images"] == {"archive": 200, "train": 180, "held_out": 20, "mnist_test": 100}
    with pytest.raises(AssertionError, match="training labels"):
        task3.audit(results, task3.load_mnisttask3())  # the audit does read them, by design
    monkeypatch.setattr(mnist, "load_mnist_uint8", read)
    report = task3.audit(results, task3.load_mnisttask3())
    assert report["true_share"] == 0.0 and report["truth"].diag().sum() == 0  # no image is in its digit's folder
