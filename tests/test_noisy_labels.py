"""Task 3's tools: losses on known inputs, the transition-matrix estimate, pseudo-labels, and a
network that learns the true classes from complementary labels alone."""
import io
import math
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from src.train import LabelledImages
from tests.generated import bar_digits
from src.model import ModelConfig, build_model
from src.noisy_labels import (bootstrap_transition_matrix, complementary_loss, confident_pseudo_labels,
                              estimate_transition_matrix, forward_corrected_loss, least_likely_folder)
from src.train import TrainConfig, predict_logits, train
from src.augment import NO_AUGMENTATION

COMPLEMENTARY = (torch.ones(10, 10) - torch.eye(10)) / 9  # never the true folder, else uniform


def test_complementary_loss_is_minus_log_of_one_minus_the_folders_probability():
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.0, 0.0, 0.0]])
    folders = torch.tensor([0, 2])
    probabilities = torch.softmax(logits, 1)
    expected = -(torch.log(1 - probabilities[0, 0]) + torch.log(1 - probabilities[1, 2])) / 2
    assert complementary_loss(logits, folders).item() == pytest.approx(expected.item(), rel=1e-6)
    # Stable where the network is sure of the folder: no inf, no nan.
    assert math.isfinite(complementary_loss(torch.tensor([[80.0, 0.0, 0.0]]), torch.tensor([0])).item())


def test_forward_correction_with_the_identity_is_cross_entropy():
    logits = torch.randn(16, 10, generator=torch.Generator().manual_seed(0))
    labels = torch.randint(0, 10, (16,), generator=torch.Generator().manual_seed(1))
    corrected = forward_corrected_loss(torch.eye(10))(logits, labels)
    assert corrected.item() == pytest.approx(F.cross_entropy(logits, labels).item(), rel=1e-5)


def test_forward_correction_on_a_sure_digit_gives_log_nine_for_any_other_folder():
    logits = torch.full((1, 10), -30.0)
    logits[0, 2] = 30.0  # certain it is a 2
    loss = forward_corrected_loss(COMPLEMENTARY)
    assert loss(logits, torch.tensor([5])).item() == pytest.approx(math.log(9), rel=1e-4)
    assert loss(logits, torch.tensor([2])).item() > 20  # a 2 in folder 2 is (almost) impossible


def test_transition_matrix_counts_where_each_inferred_digit_sits():
    inferred = torch.tensor([0, 0, 0, 0, 1, 1])
    folders = torch.tensor([1, 1, 2, 0, 0, 0])
    transition = estimate_transition_matrix(inferred, folders, num_classes=3)
    assert torch.allclose(transition[0], torch.tensor([0.25, 0.5, 0.25]))
    assert torch.allclose(transition[1], torch.tensor([1.0, 0.0, 0.0]))
    assert torch.allclose(transition[2], torch.full((3,), 1 / 3))  # no image inferred as 2: uniform
    assert torch.allclose(transition.sum(1), torch.ones(3))


def test_least_likely_folder_is_the_argmin():
    assert least_likely_folder(torch.tensor([[0.3, -2.0, 1.0], [5.0, 4.0, -1.0]])).tolist() == [1, 2]


def test_pseudo_labels_keep_the_confident_share_and_never_the_folder():
    logits = torch.tensor([[9.0, 0, 0], [5.0, 0, 0], [0, 3.0, 0], [0, 0, 1.0], [7.0, 0, 0]])
    folders = torch.tensor([1, 2, 0, 0, 0])  # the last image's prediction equals its folder
    keep, labels, threshold = confident_pseudo_labels(logits, folders, keep_share=0.5)
    assert labels.tolist() == [0, 0, 1, 2, 0]
    assert not keep[4]  # agrees with its folder: a likely mistake, never kept
    assert keep[:4].tolist() == [True, True, False, False]  # the two most confident of the four others
    assert 0 < threshold < 1


def test_a_network_learns_the_true_classes_from_complementary_labels_only():
    images, truth = bar_digits(3000, seed=0)
    generator = torch.Generator().manual_seed(1)
    folders = (truth + torch.randint(1, 10, truth.shape, generator=generator)) % 10  # never the true class
    assert not (folders == truth).any()
    config = TrainConfig(epochs=6, batch_size=100, learning_rate=0.05, augment=NO_AUGMENTATION)
    model = build_model(ModelConfig(10, widths=(8, 16, 16)), seed=0)
    result = train(model, LabelledImages(images, folders), config, loss_function=forward_corrected_loss(COMPLEMENTARY),
                   progress=False, device="cpu")
    test_images, test_truth = bar_digits(500, seed=2)
    accuracy = (predict_logits(result.model, test_images).argmax(1).cpu() == test_truth).float().mean().item()
    assert accuracy > 0.9  # chance is 0.1; ordinary cross-entropy on the folders would score ~0


def test_bootstrap_bands_contain_the_estimate_and_narrow_with_more_images():
    generator = torch.Generator().manual_seed(0)
    widths = []
    for count in (200, 5000):
        digits = torch.randint(0, 10, (count,), generator=generator)
        folders = (digits + torch.randint(1, 10, (count,), generator=generator)) % 10
        estimate = estimate_transition_matrix(digits, folders)
        low, high = bootstrap_transition_matrix(digits, folders, samples=100)
        assert bool((low <= estimate + 1e-6).all() and (estimate <= high + 1e-6).all())
        widths.append(float((high - low).mean()))
    assert widths[1] < widths[0] / 3  # 25x the images: bands about 5x narrower


def test_task3_never_reads_the_mnist_training_labels(tmp_path, tiny_mnist, monkeypatch):
    """The archive's file numbers name MNIST training images; their labels would answer Task 3 by
    looking it up. The whole experiment must run with them out of reach."""
    import src.task3 as task3
    from src.mnist import load_mnist
    from tests.generated import bar_digits, write_zip
    images, digits = bar_digits(300, seed=3)
    folders = (digits + 1 + torch.arange(300) % 9) % 10  # never the digit
    entries = []
    for index in range(300):
        buffer = io.BytesIO()
        Image.fromarray((images[index, 0] * 255).round().byte().numpy()).save(buffer, format="JPEG", quality=90)
        entries.append((f"mnistTask/{int(folders[index])}/image_{index:06d}.jpg", buffer.getvalue()))
    monkeypatch.setenv("PLAYMNIST_MNISTTASK3", str(write_zip(tmp_path / "mnistTask3.zip", entries)))

    def test_split_only(split="train", *arguments, **keyword_arguments):
        if split != "test":
            raise AssertionError("Task 3 read the MNIST training labels")
        return load_mnist(split, *arguments, **keyword_arguments)
    monkeypatch.setattr(task3, "load_mnist", test_split_only)
    monkeypatch.setitem(task3.BUDGETS, "quick", replace(task3.QUICK, train_images=None))
    results = task3.run_experiment("quick", progress=False)
    assert {run.start for run in results["runs"]} == {"scratch"}  # no Task 1 network in this temporary folder
    with pytest.raises(AssertionError, match="training labels"):
        task3.audit_transition_matrix(task3.load_mnisttask3())  # the audit does read them, by design


def test_a_smaller_held_out_part_keeps_each_folders_share_and_never_meets_training():
    """The quick budget holds out fewer of mnistTask3's images: still a stratified part of the same held-out
    10 %, so nothing it measures was trained on."""
    from src.datasets import NoisyDigits
    from src.task3 import split_indices
    folders = torch.arange(1000) % 10
    noisy = NoisyDigits(torch.zeros(1000, 1, 28, 28), folders, torch.arange(1000), source=None)
    train_index, all_held_out = split_indices(noisy)
    smaller_train, held_out = split_indices(noisy, train_images=300, held_out_images=40)
    assert len(all_held_out) == 100 and len(held_out) == 40 and len(smaller_train) == 300
    assert set(held_out.tolist()) <= set(all_held_out.tolist())
    assert not set(held_out.tolist()) & set(train_index.tolist())
    assert torch.bincount(folders[held_out], minlength=10).tolist() == [4] * 10
