"""The network, augmentation, the training loop (fine-tuning fields included) and checkpoints."""
import os
from dataclasses import replace

import pytest
import torch
import torch.nn as nn

import src.train as train_module
from src.augment import NO_AUGMENTATION, AugmentConfig, augment_batch
from src.checkpoints import CheckpointError, finished_checkpoint, load_model, read_checkpoint, save_checkpoint
from src.data.labelled import LabelledImages
from src.model import ModelConfig, build_model, parameter_count, with_new_head
from src.train import Evaluation, TrainConfig, loss_and_accuracy, lossless_uint8, predict, predict_logits, train
from tests.generated import bar_digits as generated_bar_digits

SMALL = ModelConfig(num_classes=10, widths=(8, 16, 16))


def bar_digits(count=256, seed=0) -> LabelledImages:
    return LabelledImages(*generated_bar_digits(count, seed))


def quick_config(**changes) -> TrainConfig:
    return TrainConfig(**{**dict(epochs=3, batch_size=32, learning_rate=0.05, seed=0, augment=AugmentConfig(
        rotate_degrees=5, shear=0.05, scale=(0.95, 1.05), translate_pixels=1)), **changes})


def snapshot(module: nn.Module) -> dict:
    return {name: value.detach().clone() for name, value in module.state_dict().items()}


def same(first: dict, second: dict) -> bool:
    return first.keys() == second.keys() and all(torch.equal(first[name], second[name]) for name in first)


# ----------------------------------------------------------------------------- model and augmentation

def test_model_shapes_parameter_count_and_a_new_head_that_keeps_the_backbone():
    images = torch.rand(5, 1, 28, 28)
    trained = build_model(ModelConfig(62, geometry_features=4), seed=0)
    assert trained.eval()(images, torch.randn(5, 4)).shape == (5, 62)
    with pytest.raises(ValueError, match="geometry"):
        trained(images)
    # 3x3 convolutions without bias, each with batch norm (2 per channel); head: geometry norm 8, linear (864 + 4) x 62
    backbone = 216 + 48 + 10368 + 96 + 20736 + 96 + 41472 + 192 + 82944 + 192
    assert parameter_count(trained) == backbone + 8 + (864 + 4) * 62 + 62
    transferred, report = with_new_head(trained, num_classes=10, seed=1)
    assert all(name.startswith("backbone.") for name in report["kept"]) and "head.linear.weight" in report["new"]
    assert same(snapshot(transferred.backbone), snapshot(trained.backbone))
    assert transferred.config.geometry_features == 0 and transferred.eval()(images).shape == (5, 10)
    assert "head.linear.weight" in with_new_head(build_model(ModelConfig(10)), num_classes=10)[1]["kept"]


def test_augmentation_is_seeded_jitters_both_log_sizes_alike_and_is_the_identity_when_disabled():
    images = bar_digits(500).images
    first, _ = augment_batch(images, AugmentConfig(), torch.Generator().manual_seed(1))
    assert torch.equal(first, augment_batch(images, AugmentConfig(), torch.Generator().manual_seed(1))[0])
    assert augment_batch(images, NO_AUGMENTATION, torch.Generator())[0] is images and not NO_AUGMENTATION.enabled
    geometry = torch.tensor([[0.1, -0.2, 0.5, 0.6]]).repeat(500, 1)
    jitter = replace(NO_AUGMENTATION, geometry_log_scale=0.1)
    shift = augment_batch(images, jitter, torch.Generator().manual_seed(0), geometry)[1] - geometry
    assert torch.allclose(shift[:, 0], shift[:, 1]) and not shift[:, 2:].any()  # both log sizes alike, nothing else
    assert 0.08 < float(shift[:, 0].std()) < 0.12


# ----------------------------------------------------------------------------- training

def test_short_training_learns_records_its_evaluations_and_reports_progress(tmp_path, monkeypatch):
    data, held_out = bar_digits(), bar_digits(64, seed=1)
    progress_file = tmp_path / "progress.txt"
    monkeypatch.setenv("PLAYMNIST_PROGRESS_FILE", str(progress_file))
    model = build_model(SMALL, seed=0)
    before = loss_and_accuracy(predict_logits(model, data.images), data.labels)
    counted = Evaluation(every_epoch={"held_out": held_out}, every_steps={"held_out": held_out}, at_steps=range(1, 4),
                         measure=lambda logits, labels: {"n": len(labels), **loss_and_accuracy(logits, labels)})
    result = train(model, data, quick_config(evaluate_every_steps=10), evaluation=counted, progress=False,
                   description="bars")
    after = loss_and_accuracy(predict_logits(result.model, data.images), data.labels)
    assert after["loss"] < 0.5 * before["loss"] and after["accuracy"] > 0.9
    assert [row["epoch"] for row in result.history] == [1, 2, 3] and result.history[-1]["steps"] == 24  # 8 per epoch
    assert [row["step"] for row in result.step_evaluations] == [1, 2, 3, 10, 20]  # dense early, then every 10
    assert result.history[0]["held_out_n"] == 64 and result.step_evaluations[0]["held_out_n"] == 64  # `measure`
    lines = progress_file.read_text().splitlines()
    assert len(lines) == 2 and all(" bars: " in line for line in lines)  # one at the start, one at the end


def test_a_seed_fixes_the_weights_and_the_test_time_views():
    """A seed fixes the run; the GPU's uint8 copy of k/255 images, divided in the step, trains bit-identically."""
    data = bar_digits(64)
    exact = LabelledImages((data.images * 255).round() / 255, data.labels)
    quantised = lossless_uint8(exact.images)
    assert quantised is not None and quantised.dtype == torch.uint8 and lossless_uint8(exact.images + 1e-3) is None

    def weights(images, seed=0):
        return snapshot(train(build_model(SMALL, seed=seed), images, quick_config(epochs=1, seed=seed),
                              progress=False).model)
    first = weights(exact)
    assert same(first, weights(exact)) and same(first, weights(LabelledImages(quantised, data.labels)))
    assert not same(first, weights(exact, seed=1))


def test_a_frozen_backbone_keeps_every_weight_and_batch_norm_statistic_while_the_head_learns():
    """LP-FT's first stage. Evaluations inside the run switch the network to evaluation mode and back: the freeze,
    batch norm's included, must survive them."""
    model = build_model(SMALL, seed=0)
    backbone, head = snapshot(model.backbone), snapshot(model.head)
    assert any("running_mean" in name for name in backbone) and any("num_batches" in name for name in backbone)
    held_out = bar_digits(64, seed=1)
    result = train(model, bar_digits(192), quick_config(epochs=2, frozen_backbone=True, evaluate_every_steps=2),
                   evaluation=Evaluation(every_epoch={"held_out": held_out}, every_steps={"held_out": held_out}),
                   device="cpu", progress=False)
    assert same(snapshot(result.model.backbone), backbone) and not same(snapshot(result.model.head), head)
    assert result.step_evaluations and all(p.requires_grad for p in result.model.parameters())  # trainable again
    released = train(result.model, bar_digits(192), quick_config(epochs=1), device="cpu", progress=False)
    moved = snapshot(released.model.backbone)
    assert not torch.equal(moved["stage1.0.0.weight"], backbone["stage1.0.0.weight"])
    assert not torch.equal(moved["stage1.0.1.running_mean"], backbone["stage1.0.1.running_mean"])


def test_weight_decay_on_weights_only_and_the_backbone_learning_rate_scale_at_every_step_of_the_one_cycle():
    model = build_model(ModelConfig(62, geometry_features=4, widths=(8, 16, 16)), seed=0)
    weights = {f"{name}.weight" for name, module in model.named_modules() if isinstance(module, (nn.Conv2d, nn.Linear))}
    assert len(weights) == 6  # five convolutions and the head's linear layer; not batch norm, not biases
    for optimizer in ("sgd", "adamw"):
        groups = train_module._optimizer(model, quick_config(optimizer=optimizer, weight_decay=0.01)).param_groups
        decay = {id(p): group["weight_decay"] for group in groups for p in group["params"]}
        assert {name: decay[id(p)] for name, p in model.named_parameters()} == {
            name: 0.01 if name in weights else 0.0 for name, _ in model.named_parameters()}
    config = quick_config(backbone_learning_rate_scale=0.1)
    optimizer = train_module._optimizer(model, config)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=[g["lr"] for g in optimizer.param_groups],
                                                   total_steps=15, pct_start=config.warmup_fraction)
    backbone = {id(p) for p in model.backbone.parameters()}
    scaled = [g for g in optimizer.param_groups if all(id(p) in backbone for p in g["params"])]
    head = [g for g in optimizer.param_groups if not any(id(p) in backbone for p in g["params"])]
    assert len(scaled) == len(head) == 2 and {id(p) for g in scaled for p in g["params"]} == backbone
    peaks = []
    for _ in range(14):
        optimizer.step()
        schedule.step()
        assert all(g["lr"] == pytest.approx(0.1 * head[0]["lr"], rel=1e-9) for g in scaled)
        peaks.append(head[0]["lr"])
    assert max(peaks) == pytest.approx(0.05, rel=1e-3)  # the head keeps the recipe's peak
    # A scale of 0 and no decay: the backbone's weights never move while the head learns.
    result = train(build_model(SMALL, seed=0), bar_digits(192), quick_config(backbone_learning_rate_scale=0.0,
                                                                               weight_decay=0.0), progress=False)
    start = build_model(SMALL, seed=0)
    assert all(torch.equal(p, q) for p, q in zip(result.model.backbone.parameters(), start.backbone.parameters()))
    assert not torch.equal(result.model.head.linear.weight, start.head.linear.weight)
    assert TrainConfig.from_dict(config.to_dict()) == config


def test_test_time_views_average_probabilities_deterministically():
    model, data = build_model(SMALL, seed=0).eval(), bar_digits(16)
    assert torch.equal(predict(model, data), predict_logits(model, data.images))
    views = AugmentConfig(rotate_degrees=20, translate_pixels=3)
    averaged = predict(model, data, views=4, augment=views, seed=3)
    assert torch.allclose(averaged.exp().sum(1), torch.ones(16), atol=1e-5)  # log of an average of softmaxes
    assert torch.equal(averaged, predict(model, data, views=4, augment=views, seed=3))
    assert not torch.equal(averaged, predict(model, data, views=4, augment=views, seed=4))


# ----------------------------------------------------------------------------- checkpoints

def test_finished_checkpoint_round_trips_through_weights_only_load(tmp_path):
    data = LabelledImages(torch.rand(64, 1, 28, 28), torch.arange(64) % 62, torch.randn(64, 4))
    result = train(build_model(ModelConfig(62, 4, (8, 16, 16))), data, quick_config(epochs=1), progress=False)
    path = finished_checkpoint(tmp_path / "model.pt", result, {"task": "test", "classes": "abc"})
    metadata = torch.load(path, weights_only=True)["metadata"]
    assert {"task", "git_commit", "torch_version", "device", "preprocessing_version", "train_config",
            "history"} <= set(metadata) and "training_state" not in metadata
    assert TrainConfig.from_dict(metadata["train_config"]) == result.config
    model, _ = load_model(path)
    images, geometry = torch.rand(3, 1, 28, 28), torch.randn(3, 4)
    assert torch.allclose(model(images, geometry), result.model.cpu().eval()(images, geometry))


class Exploit:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_bad_checkpoints_are_clear_errors_a_pickle_never_runs_and_a_failed_save_keeps_the_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    good = save_checkpoint(tmp_path / "ten.pt", build_model(SMALL, seed=0), {"task": "t"})
    with pytest.raises(CheckpointError, match="expected a network with 62 classes, found one with 10"):
        load_model(good, num_classes=62)
    payload = torch.load(good, weights_only=True)
    payload["model_config"]["widths"] = [8, 16, 32]
    torch.save(payload, tmp_path / "mismatch.pt")
    with pytest.raises(CheckpointError, match="do not fit the architecture"):
        load_model(tmp_path / "mismatch.pt")
    torch.save({"format": "playmnist-checkpoint/1", "payload": Exploit()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="refused"):
        read_checkpoint(tmp_path / "evil.pt")
    assert not (tmp_path / "pwned").exists()
    for content in (b"", b"not a checkpoint at all", good.read_bytes()[:1000]):
        (tmp_path / "bad.pt").write_bytes(content)
        with pytest.raises(CheckpointError, match="bad.pt"):
            read_checkpoint(tmp_path / "bad.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not a checkpoint of this project"):
        read_checkpoint(tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="is a folder"):
        read_checkpoint(tmp_path)
    before = good.read_bytes()  # a failed save (a full disk) leaves the previous file as it was, and no debris

    def disk_full(*arguments, **keyword_arguments):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(CheckpointError, match="No space left"):
        save_checkpoint(good, build_model(SMALL, seed=1), {"task": "second"})
    assert good.read_bytes() == before and not list(tmp_path.glob(".*"))
