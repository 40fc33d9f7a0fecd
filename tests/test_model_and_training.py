"""The network, the training loop and checkpoints: behaviour that results depend on."""
import os
import signal
import subprocess
import sys
import textwrap

from dataclasses import replace

import pytest
import torch
import torch.nn as nn

import src.train as train_module
from src.augment import NO_AUGMENTATION, AugmentConfig, augment_batch
from src.checkpoints import CheckpointError, load_model, read_checkpoint, save_checkpoint
from src.model import ModelConfig, build_model, layer_table, parameter_count, with_new_head
from src.train import (Checkpointing, Evaluation, LabelledImages, Step, TrainConfig, evaluate, finished_checkpoint,
                       lossless_uint8, train)
from tests.generated import bar_digits as generated_bar_digits

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


def bar_angles(images: torch.Tensor) -> torch.Tensor:
    """The direction of each image's bar in degrees (0: horizontal), from the second moments of its ink."""
    size = images.shape[-1]
    y, x = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32),
                          indexing="ij")
    weights = images[:, 0] / images[:, 0].sum((1, 2), keepdim=True)
    mean_x, mean_y = (weights * x).sum((1, 2), keepdim=True), (weights * y).sum((1, 2), keepdim=True)
    xx, yy = (weights * (x - mean_x) ** 2).sum((1, 2)), (weights * (y - mean_y) ** 2).sum((1, 2))
    xy = (weights * (x - mean_x) * (y - mean_y)).sum((1, 2))
    return torch.rad2deg(0.5 * torch.atan2(2 * xy, xx - yy))


def horizontal_bars(count: int) -> torch.Tensor:
    images = torch.zeros(count, 1, 28, 28)
    images[:, 0, 13:15, 4:24] = 1.0
    return images


def test_augmentation_rotates_within_its_range_and_uses_all_of_it():
    rotation_only = AugmentConfig(rotate_degrees=30, shear=0, scale=(1, 1), translate_pixels=0)
    angles = bar_angles(augment_batch(horizontal_bars(200), rotation_only, torch.Generator().manual_seed(0))[0])
    assert angles.abs().max() < 32  # within +-30 degrees (and a little for the pixel grid)
    assert angles.min() < -20 and angles.max() > 20 and angles.std() > 12  # uniform over +-30: std 17
    unrotated = replace(rotation_only, rotate_degrees=0, translate_pixels=1)
    assert bar_angles(augment_batch(horizontal_bars(50), unrotated, torch.Generator())[0]).abs().max() < 1


def test_elastic_distortion_bends_strokes_smoothly_and_only_as_far_as_asked():
    elastic_only = AugmentConfig(rotate_degrees=0, shear=0, scale=(1, 1), translate_pixels=0, elastic_pixels=1.0)
    bars = horizontal_bars(100)
    bent, _ = augment_batch(bars, elastic_only, torch.Generator().manual_seed(0))
    assert not torch.equal(bent, bars)
    assert abs(float(bent.sum() / bars.sum()) - 1) < 0.1  # strokes are moved and bent, not erased (on average)
    rows = torch.arange(28, dtype=torch.float32)[:, None]
    heights = (bent[:, 0] * rows).sum((1, 2)) / bent[:, 0].sum((1, 2))  # where the bar's ink sits, row 13.5 before
    assert (heights - 13.5).abs().max() < 3 and (heights - 13.5).abs().mean() > 0.1  # a field of 1 pixel std
    stronger, _ = augment_batch(bars, replace(elastic_only, elastic_pixels=3.0), torch.Generator().manual_seed(0))
    assert (stronger - bars).abs().sum() > 1.5 * (bent - bars).abs().sum()


def test_geometry_jitter_shifts_both_log_sizes_of_an_image_alike_and_nothing_else():
    geometry = torch.tensor([[0.1, -0.2, 0.5, 0.6]]).repeat(500, 1)
    jitter = AugmentConfig(rotate_degrees=0, shear=0, scale=(1, 1), translate_pixels=0, geometry_log_scale=0.1)
    _, jittered = augment_batch(horizontal_bars(500), jitter, torch.Generator().manual_seed(0), geometry)
    shift = jittered - geometry
    assert torch.allclose(shift[:, 0], shift[:, 1]) and torch.equal(shift[:, 2:], torch.zeros(500, 2))
    assert 0.08 < float(shift[:, 0].std()) < 0.12 and abs(float(shift[:, 0].mean())) < 0.02
    assert torch.equal(geometry, torch.tensor([[0.1, -0.2, 0.5, 0.6]]).repeat(500, 1))  # the input is not changed


# ----------------------------------------------------------------------------- training

def test_short_training_lowers_the_loss_and_learns():
    data = bar_digits()
    model = build_model(SMALL, seed=0)
    before = evaluate(model, data)
    result = train(model, data, quick_config(), evaluation=Evaluation(every_epoch={"train_set": data}), progress=False)
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
                   evaluation=Evaluation(every_steps={"train_set": data}, at_steps=range(1, 4)))
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
    unbroken = train(build_model(SMALL, seed=0), data, config, checkpoint=Checkpointing(tmp_path / "unbroken.pt"),
                     progress=False)
    # An interrupted run: stopped by its own hook in the middle of epoch 3, after epoch 2's checkpoint.
    partial = Checkpointing(tmp_path / "interrupted.pt", resume=True)
    with pytest.raises(Interrupted):
        train(build_model(SMALL, seed=0), data, config, checkpoint=partial, on_step=stop_in_epoch(3), progress=False)
    assert read_checkpoint(partial.path)["training_state"]["epoch"] == 2
    torch.manual_seed(123)  # the global RNG state must not matter: it is restored from the checkpoint
    resumed = train(build_model(SMALL, seed=0), data, config, checkpoint=partial, progress=False)
    for name, value in unbroken.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[name]), name
    assert [r["train_loss"] for r in resumed.history] == [r["train_loss"] for r in unbroken.history]


class Interrupted(Exception):
    pass


def stop_in_epoch(epoch: int):
    """An `on_step` hook that interrupts the run at the second step of `epoch`, as a kill would."""
    def hook(step: Step) -> None:
        if step.epoch == epoch and step.step % 8 == 2:  # 8 steps an epoch here
            raise Interrupted
    return hook


def test_a_batch_order_hook_decides_the_order_and_keeps_the_run_resumable(tmp_path):
    data, config = bar_digits(), quick_config(epochs=2)
    seen = []

    def by_label(count: int, generator: torch.Generator) -> torch.Tensor:
        """Each epoch: the images of one class together, classes in a random order (drawn from the generator)."""
        classes = torch.randperm(10, generator=generator)
        order = torch.cat([torch.nonzero(data.labels == c).flatten() for c in classes])
        seen.append(order)
        return order

    def batch_labels(step: Step) -> None:
        seen.append(step.step)
    grouped = train(build_model(SMALL, seed=0), data, config, batch_order=by_label, on_step=batch_labels,
                    progress=False)
    assert len(seen) == 2 + 16 and seen[1:9] == list(range(1, 9))  # an order per epoch, then each of its 8 steps
    shuffled = train(build_model(SMALL, seed=0), data, config, progress=False)
    assert grouped.history[0]["train_loss"] != shuffled.history[0]["train_loss"]
    again = train(build_model(SMALL, seed=0), data, config, batch_order=by_label, progress=False)
    assert [r["train_loss"] for r in again.history] == [r["train_loss"] for r in grouped.history]


def test_weight_decay_applies_to_convolution_and_linear_weights_only():
    model = build_model(ModelConfig(62, geometry_features=4, widths=(8, 16, 16)), seed=0)
    weights = {f"{name}.weight" for name, module in model.named_modules() if isinstance(module, (nn.Conv2d, nn.Linear))}
    assert len(weights) == 6  # five convolutions and the head's linear layer
    for optimizer in ("sgd", "adamw"):
        groups = train_module._optimizer(model, quick_config(optimizer=optimizer, weight_decay=0.01)).param_groups
        decay = {id(p): group["weight_decay"] for group in groups for p in group["params"]}
        assert {name: decay[id(p)] for name, p in model.named_parameters()} == {
            name: 0.01 if name in weights else 0.0 for name, _ in model.named_parameters()}  # BatchNorm, biases: none


def test_resume_refuses_a_checkpoint_from_another_recipe(tmp_path):
    run = Checkpointing(tmp_path / "run.pt", resume=True)
    train(build_model(SMALL, seed=0), bar_digits(64), quick_config(epochs=1), checkpoint=run, progress=False)
    with pytest.raises(CheckpointError, match="another recipe"):
        train(build_model(SMALL, seed=0), bar_digits(64), quick_config(epochs=1, learning_rate=0.1), checkpoint=run,
              progress=False)


def test_killed_process_leaves_the_last_complete_checkpoint_and_resume_matches(tmp_path):
    """SIGKILL a real training process in the middle of epoch 3 (it kills itself there, so the test does not depend
    on the machine's speed); the checkpoint on disk must load, and resuming must end where an unbroken run ends."""
    path = tmp_path / "killed.pt"
    script = textwrap.dedent(f"""
        import os, signal, sys, torch
        sys.path.insert(0, {str(os.getcwd())!r})
        from pathlib import Path
        from tests.test_model_and_training import bar_digits, quick_config, SMALL
        from src.model import build_model
        from src.train import Checkpointing, train

        def kill_in_epoch_3(step):
            if step.epoch == 3 and step.step % 8 == 4:  # 8 steps an epoch: half-way through it
                os.kill(os.getpid(), signal.SIGKILL)
        train(build_model(SMALL, seed=0), bar_digits(), quick_config(epochs=6), checkpoint=Checkpointing(Path({str(path)!r})),
              on_step=kill_in_epoch_3, progress=False)
    """)
    process = subprocess.run([sys.executable, "-c", script], timeout=600)
    assert process.returncode == -signal.SIGKILL
    state = read_checkpoint(path)["training_state"]  # loads cleanly: writes are atomic
    assert state["epoch"] == 2
    assert not list(tmp_path.glob("*.partial")) and not list(tmp_path.glob(".*"))
    resumed = train(build_model(SMALL, seed=0), bar_digits(), quick_config(epochs=6),
                    checkpoint=Checkpointing(path, resume=True), progress=False)
    unbroken = train(build_model(SMALL, seed=0), bar_digits(), quick_config(epochs=6), progress=False)
    assert len(resumed.history) == 6
    assert all(torch.equal(value, resumed.model.state_dict()[name]) for name, value in unbroken.model.state_dict().items())


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
        train(build_model(SMALL, seed=0), bar_digits(64), quick_config(epochs=1),
              checkpoint=Checkpointing(blocker / "x.pt"), progress=False,
              loss_function=lambda logits, labels: started.append(1))
    assert not started  # no training step ran


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_checkpoint_folder_fails_before_training(tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    with pytest.raises(CheckpointError, match="cannot be written"):
        train(build_model(SMALL, seed=0), bar_digits(64), quick_config(epochs=1),
              checkpoint=Checkpointing(folder / "x.pt"), progress=False)


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
