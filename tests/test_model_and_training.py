"""The network, the training loop and checkpoints: behaviour that results depend on."""
import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch

from src.augment import NO_AUGMENTATION, AugmentConfig, augment_batch
from src.checkpoints import CheckpointError, load_model, read_checkpoint, save_checkpoint
from src.model import ModelConfig, build_model, layer_table, parameter_count, with_new_head
from src.train import LabelledImages
from tests.generated import bar_digits as generated_bar_digits
from src.train import TrainConfig, evaluate, finished_checkpoint, lossless_uint8, train

SMALL = ModelConfig(num_classes=10, widths=(8, 16, 16))


def bar_digits(count=256, seed=0) -> LabelledImages:
    return LabelledImages(*generated_bar_digits(count, seed))


def quick_config(**changes) -> TrainConfig:
    values = dict(epochs=3, batch_size=32, learning_rate=0.05, seed=0,
                  augment=AugmentConfig(rotate_degrees=5, shear=0.05, scale=(0.95, 1.05), translate_pixels=1))
    values.update(changes)
    return TrainConfig(**values)


# ----------------------------------------------------------------------------- model

def test_output_shapes_with_and_without_geometry():
    images = torch.rand(5, 1, 28, 28)
    assert build_model(ModelConfig(62, geometry_features=4)).eval()(images, torch.randn(5, 4)).shape == (5, 62)
    assert build_model(ModelConfig(10)).eval()(images).shape == (5, 10)
    with pytest.raises(ValueError, match="geometry"):
        build_model(ModelConfig(62, geometry_features=4)).eval()(images)


def test_new_head_keeps_the_backbone_and_reports_what_was_kept():
    trained = build_model(ModelConfig(62, geometry_features=4))
    transferred, report = with_new_head(trained, num_classes=10)
    assert all(name.startswith("backbone.") for name in report["kept"])
    assert any(name.startswith("head.linear") for name in report["new"])
    for name, value in transferred.backbone.state_dict().items():
        assert torch.equal(value, trained.backbone.state_dict()[name])
    same_classes, report = with_new_head(build_model(ModelConfig(10)), num_classes=10)
    assert "head.linear.weight" in report["kept"] and report["new"] == []


def test_layer_table_sums_to_the_parameter_count():
    model = build_model(ModelConfig(62, geometry_features=4))
    rows = layer_table(model)
    assert sum(row["parameters"] for row in rows) == parameter_count(model)
    assert rows[-1]["output"] == (62,)


def test_augmentation_is_seeded_and_identity_when_disabled():
    images = bar_digits(8).images
    first, _ = augment_batch(images, AugmentConfig(), torch.Generator().manual_seed(1))
    again, _ = augment_batch(images, AugmentConfig(), torch.Generator().manual_seed(1))
    assert torch.equal(first, again) and not torch.equal(first, images)
    assert augment_batch(images, NO_AUGMENTATION, torch.Generator())[0] is images
    identity = AugmentConfig(rotate_degrees=0, shear=0, scale=(1, 1), translate_pixels=0, elastic_pixels=0)
    assert not identity.enabled


def test_augmentation_rotates_by_the_drawn_angle():
    image = torch.zeros(1, 1, 28, 28)
    image[0, 0, 13:15, 4:24] = 1.0  # horizontal bar
    rotated, _ = augment_batch(image, AugmentConfig(rotate_degrees=90, shear=0, scale=(1, 1), translate_pixels=0),
                               torch.Generator().manual_seed(0))
    rows = (rotated[0, 0] > 0.5).any(1).sum()
    columns = (rotated[0, 0] > 0.5).any(0).sum()
    angle = torch.rand(1, generator=torch.Generator().manual_seed(0)) * 180 - 90
    expected_vertical = abs(float(angle)) > 45
    assert (rows > columns) == expected_vertical


# ----------------------------------------------------------------------------- training

def test_short_training_lowers_the_loss_and_learns():
    data = bar_digits()
    model = build_model(SMALL, seed=0)
    before = evaluate(model, data)
    result = train(model, data, quick_config(), evaluation_sets={"train_set": data}, progress=False)
    after = evaluate(result.model, data)
    assert after["loss"] < 0.5 * before["loss"]
    assert after["accuracy"] > 0.9
    assert [row["epoch"] for row in result.history] == [1, 2, 3]
    assert {"train_loss", "train_accuracy", "train_set_accuracy", "learning_rate", "wall_seconds",
            "images_per_second", "steps"} <= set(result.history[0])


def test_same_seed_same_weights_other_seed_other_weights():
    def weights(seed):
        return train(build_model(SMALL, seed=seed), bar_digits(), quick_config(epochs=1, seed=seed),
                     progress=False).model.state_dict()
    first, again, other = weights(0), weights(0), weights(1)
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)


def test_uint8_images_normalised_in_the_step_train_bit_identically():
    """The GPU keeps MNIST-like images as uint8; the step's division by 255 must give the float run's weights."""
    data = bar_digits(64)
    exact = LabelledImages((data.images * 255).round() / 255, data.labels)
    quantised = lossless_uint8(exact.images)
    assert quantised is not None and quantised.dtype == torch.uint8
    assert lossless_uint8(exact.images + 1e-3) is None  # not k/255: stays float
    runs = [train(build_model(SMALL, seed=0), images, quick_config(epochs=1), progress=False).model.state_dict()
            for images in (exact, LabelledImages(quantised, data.labels))]
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])


def test_compiled_training_steps_match_eager_ones():
    """The compile path (bench on a GPU uses inductor) traced with the eager backend: same ops, same weights."""
    def weights(backend):
        return train(build_model(SMALL, seed=0), bar_digits(64), quick_config(epochs=1), progress=False,
                     compile_backend=backend).model.state_dict()
    plain, compiled = weights(None), weights("eager")
    assert all(torch.equal(plain[k], compiled[k]) for k in plain)


def test_step_evaluations_come_at_the_dense_early_steps_and_every_n_after():
    data = bar_digits(256)  # 8 steps of 32 per epoch
    result = train(build_model(SMALL, seed=0), data, quick_config(epochs=2, evaluate_every_steps=6), progress=False,
                   step_evaluation_sets={"train_set": data}, evaluate_at_steps=range(1, 4))
    assert [row["step"] for row in result.step_evaluations] == [1, 2, 3, 6, 12]


def test_custom_loss_function_is_used():
    calls = []

    def counting_loss(logits, labels):
        calls.append(len(labels))
        return torch.nn.functional.cross_entropy(logits, labels)
    train(build_model(SMALL, seed=0), bar_digits(64), quick_config(epochs=1), loss_function=counting_loss, progress=False)
    assert calls == [32, 32]


def test_resumed_run_matches_an_unbroken_run_bit_for_bit(tmp_path):
    data, config = bar_digits(), quick_config(epochs=4)
    unbroken = train(build_model(SMALL, seed=0), data, config, checkpoint_path=tmp_path / "unbroken.pt", progress=False)
    # An interrupted run: train 2 epochs' worth, by running with the same recipe and stopping.
    partial_path = tmp_path / "interrupted.pt"
    torch.manual_seed(123)  # the global RNG state must not matter: it is restored from the checkpoint
    _train_epochs_then_stop(build_model(SMALL, seed=0), data, config, partial_path, stop_after=2)
    assert read_checkpoint(partial_path)["training_state"]["epoch"] == 2
    resumed = train(build_model(SMALL, seed=0), data, config, checkpoint_path=partial_path, resume=True, progress=False)
    for name, value in unbroken.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[name]), name
    assert [r["train_loss"] for r in resumed.history] == [r["train_loss"] for r in unbroken.history]


def _train_epochs_then_stop(model, data, config, path, stop_after):
    """Run `train` but raise out of it once `stop_after` epochs are checkpointed (like a kill)."""
    import src.train as train_module
    real_save = train_module.save_checkpoint

    class Stop(Exception):
        pass

    def save_then_maybe_stop(*arguments, **keyword_arguments):
        real_save(*arguments, **keyword_arguments)
        if keyword_arguments["training_state"]["epoch"] == stop_after:
            raise Stop
    train_module.save_checkpoint = save_then_maybe_stop
    try:
        with pytest.raises(Stop):
            train(model, data, config, checkpoint_path=path, progress=False)
    finally:
        train_module.save_checkpoint = real_save


def test_resume_refuses_a_checkpoint_from_another_recipe(tmp_path):
    path = tmp_path / "run.pt"
    train(build_model(SMALL, seed=0), bar_digits(64), quick_config(epochs=1), checkpoint_path=path, progress=False)
    with pytest.raises(CheckpointError, match="another recipe"):
        train(build_model(SMALL, seed=0), bar_digits(64), quick_config(epochs=1, learning_rate=0.1), checkpoint_path=path,
              resume=True, progress=False)


def test_killed_process_leaves_the_last_complete_checkpoint_and_resume_matches(tmp_path):
    """SIGKILL a real training process mid-run; the checkpoint on disk must load and resume."""
    path = tmp_path / "killed.pt"
    script = textwrap.dedent(f"""
        import sys, torch
        sys.path.insert(0, {str(os.getcwd())!r})
        from tests.test_model_and_training import bar_digits, quick_config, SMALL
        from src.model import build_model
        from src.train import train
        torch.set_num_threads(1)
        train(build_model(SMALL, seed=0), bar_digits(2048), quick_config(epochs=40), checkpoint_path={str(path)!r}, progress=False)
    """)
    process = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = 120
        import time
        started = time.time()
        while time.time() - started < deadline:
            if path.exists() and read_checkpoint(path)["training_state"]["epoch"] >= 2:
                break
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    state = read_checkpoint(path)["training_state"]  # loads cleanly: writes are atomic
    assert 2 <= state["epoch"] < 40
    assert not list(tmp_path.glob("*.partial"))
    torch.set_num_threads(1)
    try:
        resumed = train(build_model(SMALL, seed=0), bar_digits(2048), quick_config(epochs=40), checkpoint_path=path,
                        resume=True, progress=False)
    finally:
        torch.set_num_threads(os.cpu_count() or 1)
    assert len(resumed.history) == 40


# ----------------------------------------------------------------------------- checkpoints

def test_checkpoint_round_trips_through_weights_only_load(tmp_path):
    result = train(build_model(ModelConfig(62, 4, (8, 16, 16))),
                   LabelledImages(torch.rand(64, 1, 28, 28), torch.arange(64) % 62, torch.randn(64, 4)),
                   quick_config(epochs=1), progress=False)
    path = finished_checkpoint(tmp_path / "model.pt", result, {"task": "test", "classes": "abc"})
    payload = torch.load(path, weights_only=True)
    assert payload["metadata"]["task"] == "test" and "git_commit" in payload["metadata"]
    assert {"torch_version", "device", "preprocessing_version", "train_config", "history"} <= set(payload["metadata"])
    model, metadata = load_model(path)
    images, geometry = torch.rand(3, 1, 28, 28), torch.randn(3, 4)
    result.model.eval()
    assert torch.allclose(model(images, geometry), result.model.cpu()(images, geometry))


def test_wrong_class_count_or_architecture_is_a_clear_error(tmp_path):
    path = save_checkpoint(tmp_path / "ten.pt", build_model(SMALL, seed=0), {"task": "t"})
    with pytest.raises(CheckpointError, match="expected a network with 62 classes, found one with 10"):
        load_model(path, num_classes=62)
    payload = torch.load(path, weights_only=True)
    payload["model_config"]["widths"] = [8, 16, 32]
    torch.save(payload, tmp_path / "mismatch.pt")
    with pytest.raises(CheckpointError, match="do not fit the architecture"):
        load_model(tmp_path / "mismatch.pt")


class Exploit:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_malicious_pickle_is_refused_and_not_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pt"
    torch.save({"format": "playmnist-checkpoint/1", "payload": Exploit()}, path)
    with pytest.raises(CheckpointError, match="refused"):
        read_checkpoint(path)
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", None])
def test_truncated_or_foreign_files_are_clear_errors(tmp_path, content):
    path = tmp_path / "bad.pt"
    if content is None:
        good = save_checkpoint(tmp_path / "good.pt", build_model(SMALL, seed=0), {})
        content = good.read_bytes()[:1000]
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="bad.pt"):
        read_checkpoint(path)
    torch.save({"weights": torch.zeros(2)}, path)
    with pytest.raises(CheckpointError, match="not a checkpoint of this project"):
        read_checkpoint(path)


def test_checkpoint_path_that_cannot_be_created_fails_before_training(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    started = []
    with pytest.raises(CheckpointError, match="cannot be written"):
        train(build_model(SMALL, seed=0), bar_digits(64), quick_config(epochs=1), checkpoint_path=blocker / "x.pt",
              progress=False, loss_function=lambda logits, labels: started.append(1))
    assert not started  # no training step ran


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_checkpoint_folder_fails_before_training(tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    with pytest.raises(CheckpointError, match="cannot be written"):
        train(build_model(SMALL, seed=0), bar_digits(64), quick_config(epochs=1), checkpoint_path=folder / "x.pt", progress=False)


def test_failed_save_leaves_the_previous_checkpoint_untouched(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "model.pt", build_model(SMALL, seed=0), {"task": "first"})
    before = path.read_bytes()
    import src.files as files

    def disk_full(*arguments, **keyword_arguments):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(files.os, "fsync", disk_full)
    with pytest.raises(CheckpointError, match="No space left"):
        save_checkpoint(path, build_model(SMALL, seed=0), {"task": "second"})
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]
