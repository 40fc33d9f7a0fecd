"""The MNIST tensors both pipelines train and evaluate on, full-size or cut down for --quick."""
from __future__ import annotations

import torch

from src.data import LabelledImages, load_mnist, stratified_split


def stratified_subset(data: LabelledImages, count: int, seed: int = 0) -> LabelledImages:
    """About `count` images with every class in its original proportion (a fixed, seeded choice)."""
    if count >= len(data):
        return data
    _, chosen = stratified_split(data.labels, count / len(data), seed)
    return data.subset(chosen)


def load_benchmark_mnist(train_images: int | None = None, test_images: int | None = None):
    """MNIST's whole 60,000-image training set (no validation split: nothing is tuned here) and its
    10,000-image test set, each optionally cut to a stratified subset. Returns (train, test, source)."""
    images, labels, source = load_mnist("train")
    test_pixels, test_labels, _ = load_mnist("test")
    train = LabelledImages(images, labels)
    test = LabelledImages(test_pixels, test_labels)
    if train_images:
        train = stratified_subset(train, train_images)
    if test_images:
        test = stratified_subset(test, test_images)
    return train, test, source


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
