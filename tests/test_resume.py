"""An interrupted experiment continues where it stopped and ends with the rows an unbroken one gives."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from src import task2
from src.checkpoints import read_checkpoint
from src.resume import SavedProgress
from src.runs import checkpoint_dir
from src.sources import DataSource
from src.train import LabelledImages
from tests.generated import bar_digits


def test_saved_progress_is_continued_only_by_the_same_experiment(tmp_path, capsys):
    path = tmp_path / "in_progress" / "task2.pt"
    identity = {"task": "task2", "code": "abc", "machine": "cpu"}
    SavedProgress(path, identity).save({"seeds_done": 2, "weights": torch.arange(3.0), "rows": [{"a": 0.5}]})

    state = SavedProgress(path, identity).load()
    assert state["seeds_done"] == 2 and state["rows"] == [{"a": 0.5}] and torch.equal(state["weights"], torch.arange(3.0))
    assert "continuing" in capsys.readouterr().out

    assert SavedProgress(path, {**identity, "code": "abd", "machine": "gpu"}).load() is None
    assert "another code, machine; starting afresh" in capsys.readouterr().out
    assert path.exists()  # kept until the new experiment saves over it

    path.write_bytes(b"not a checkpoint")
    assert SavedProgress(path, identity).load() is None
    assert "task2.pt: not a readable saved experiment" in capsys.readouterr().out


TINY = replace(task2.QUICK, seeds=2, mnist_train_images=None, test_images=None, mnist_epochs=1, pretrain_epochs=1,
               sweep_sizes=(40,), sweep_seeds=1, sweep_min_steps=2, evaluate_every_steps=1)


class Interrupted(Exception):
    pass


def test_task2_interrupted_after_a_seed_resumes_and_matches_an_unbroken_run(tiny_mnist, monkeypatch):
    monkeypatch.setitem(task2.BUDGETS, "quick", TINY)
    monkeypatch.setattr(task2, "VALIDATION_IMAGES", 50)
    monkeypatch.setattr(task2, "TRAIN_SAMPLE_IMAGES", 50)
    monkeypatch.setattr(task2, "PROBE_IMAGES", 50)
    images, labels = bar_digits(40, seed=2)  # the 400 digit drawings' stand-in: 40 generated digits
    drawings = LabelledImages(images, labels), DataSource("trainPart1 digits", "stand-in", "tests", "bar_digits", files=40)
    monkeypatch.setattr(task2, "digit_drawings", lambda budget=None: drawings)
    saved = checkpoint_dir("quick") / "in_progress" / "task2.pt"

    def saved_network() -> dict:
        return read_checkpoint(checkpoint_dir("quick") / "task2_mnist_digits400.pt")["state_dict"]

    unbroken = task2.run_experiment("quick", progress=False)
    unbroken_network = saved_network()
    assert unbroken["resumed"] is None and not saved.exists()  # the file goes once the results are saved

    train_on_mnist, train = task2.train_on_mnist, task2.train

    def stops_at_seed_1(network, train_set, validation, test, config, **keywords):
        if config.seed == 1:
            raise Interrupted
        return train_on_mnist(network, train_set, validation, test, config, **keywords)
    monkeypatch.setattr(task2, "train_on_mnist", stops_at_seed_1)
    with pytest.raises(Interrupted):
        task2.run_experiment("quick", progress=False)
    assert saved.exists()

    trained = []

    def counted_train(*arguments, **keywords):
        trained.append(keywords["description"])
        return train(*arguments, **keywords)
    monkeypatch.setattr(task2, "train_on_mnist", train_on_mnist)
    monkeypatch.setattr(task2, "train", counted_train)
    resumed = task2.run_experiment("quick", progress=False)

    assert resumed["resumed"]["seeds"] == 1 and not saved.exists()
    assert not [description for description in trained if "pretrain" in description]  # loaded, not repeated
    assert not [description for description in trained if description.endswith("seed 0") and "images" not in description]

    def untimed(results: dict) -> list:
        return [(run.method, run.start, run.seed,
                 {key: value for key, value in run.metrics.items() if "seconds" not in key and key != "images_per_second"})
                for run in results["runs"]]
    assert untimed(resumed) == untimed(unbroken)
    resumed_network = saved_network()
    assert all(torch.equal(unbroken_network[name], resumed_network[name]) for name in unbroken_network)
