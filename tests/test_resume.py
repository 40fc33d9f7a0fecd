"""An interrupted experiment continues where it stopped and ends with the rows an unbroken one gives."""
from dataclasses import replace

import pytest
import torch

from src import task2
from src.checkpoints import read_checkpoint
from src.data.labelled import LabelledImages
from src.data.sources import DataSource
from src.recipes import METHODS
from src.resume import SavedProgress
from src.settings import checkpoint_dir
from tests.generated import bar_digits


def test_saved_progress_is_continued_only_by_the_same_experiment(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PLAYMNIST_PROGRESS", "1")  # what it says goes to the terminal, never into a notebook
    path = tmp_path / "in_progress" / "task2.pt"
    identity = {"task": "task2", "code": "abc", "machine": "cpu"}
    SavedProgress(path, identity).save({"seeds_done": 2, "weights": torch.arange(3.0), "rows": [{"a": 0.5}]})
    state = SavedProgress(path, identity).load()
    assert state["seeds_done"] == 2 and state["rows"] == [{"a": 0.5}] and state["weights"].tolist() == [0.0, 1.0, 2.0]
    assert "continuing" in capsys.readouterr().err
    assert SavedProgress(path, {**identity, "code": "abd", "machine": "gpu"}).load() is None
    assert "another code, machine; starting afresh" in capsys.readouterr().err and path.exists()  # kept till replaced
    path.write_bytes(b"not a checkpoint")
    assert SavedProgress(path, identity).load() is None
    assert "task2.pt: not a readable saved experiment" in capsys.readouterr().err
    SavedProgress(path, identity).remove()
    assert not path.parent.exists()  # the emptied folder goes too


class Interrupted(Exception):
    pass


def test_task2_interrupted_after_a_seed_resumes_and_matches_an_unbroken_run(tiny_mnist, monkeypatch):
    tiny = replace(task2.TASK2_BUDGETS["quick"], seeds=2, mnist_train_images=None, test_images=None, mnist_epochs=1,
                   pretrain_epochs=1, sweep_sizes=(40,), sweep_seeds=1, sweep_min_steps=2, evaluate_every_steps=1)
    monkeypatch.setitem(task2.TASK2_BUDGETS, "quick", tiny)
    for name in ("VALIDATION_IMAGES", "TRAIN_SAMPLE_IMAGES", "PROBE_IMAGES"):
        monkeypatch.setattr(task2, name, 50)
    drawings = (LabelledImages(*bar_digits(40, seed=2)),  # the 400 digit drawings' stand-in: 40 generated digits
                DataSource("trainPart1 digits", "stand-in", "tests", "bar_digits", files=40))
    monkeypatch.setattr(task2, "digit_drawings", lambda budget=None: drawings)
    saved = checkpoint_dir("quick") / "in_progress" / "task2.pt"
    saved_network = lambda: read_checkpoint(checkpoint_dir("quick") / "task2_mnist_digits400.pt")["state_dict"]  # noqa

    unbroken = task2.run_experiment("quick", progress=False)
    unbroken_network = saved_network()
    assert unbroken["resumed"] is None and not saved.exists()  # the file goes once the results are saved
    # every method from digits400 and from its control, scratch, seed by seed (no Task 1 network here)
    assert {(run.method, run.start, run.seed) for run in unbroken["runs"] if run.method in METHODS} == {
        (method, start, seed) for method in METHODS for start in ("scratch", "digits400") for seed in range(2)}

    train_on_mnist, train = task2.train_on_mnist, task2.train

    def stops_at_seed_1(network, method, recipe, *arguments, **keywords):
        if recipe.seed == 1:
            raise Interrupted
        return train_on_mnist(network, method, recipe, *arguments, **keywords)
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
    assert not [d for d in trained if "pretrain" in d or ("seed 0" in d and "images" not in d)]  # loaded, not redone

    def untimed(results: dict) -> list:
        return [(run.method, run.start, run.seed, {key: value for key, value in run.metrics.items()
                                                   if "seconds" not in key and key != "images_per_second"})
                for run in results["runs"]]
    assert untimed(resumed) == untimed(unbroken)
    resumed_network = saved_network()
    assert all(torch.equal(unbroken_network[name], resumed_network[name]) for name in unbroken_network)
