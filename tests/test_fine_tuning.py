"""The two fine-tuning fields of TrainConfig (Task 2's gentler fine-tuning arms): a frozen backbone is not touched at
all while frozen, a scaled learning rate reaches the backbone's parameter groups, and the defaults train exactly as
the loop did before the fields existed."""
from dataclasses import replace

import pytest
import torch

import src.train as train_module
from src.analysis import config_digest
from src.augment import AugmentConfig
from src.model import ModelConfig, build_model
from src.train import FINE_TUNING_DEFAULTS, Evaluation, LabelledImages, TrainConfig, train
from tests.generated import bar_digits

SMALL = ModelConfig(num_classes=10, widths=(8, 16, 16))


def data(count=192, seed=0) -> LabelledImages:
    return LabelledImages(*bar_digits(count, seed))


def config(**changes) -> TrainConfig:
    return TrainConfig(**{**dict(epochs=3, batch_size=32, learning_rate=0.05, seed=0,
                                 augment=AugmentConfig(rotate_degrees=5, shear=0.05, scale=(0.95, 1.05),
                                                       translate_pixels=1)), **changes})


def snapshot(module: torch.nn.Module) -> dict:
    return {name: value.detach().clone() for name, value in module.state_dict().items()}


def same(first: dict, second: dict) -> bool:
    return first.keys() == second.keys() and all(torch.equal(first[name], second[name]) for name in first)


def test_a_frozen_backbone_does_not_move_during_its_frozen_epochs_and_moves_after():
    model = build_model(SMALL, seed=0)
    start_backbone, start_head = snapshot(model.backbone), snapshot(model.head)
    seen = {}  # epoch -> (backbone, head) after that epoch's last step

    def record(step):
        seen[step.epoch] = (snapshot(step.model.backbone), snapshot(step.model.head))
        if step.epoch == 1:  # frozen: weights, batch-norm statistics and their step counters all as they started
            assert same(seen[1][0], start_backbone)
            assert not any(p.requires_grad for p in step.model.backbone.parameters())
    held_out = data(64, seed=1)
    # evaluations inside the frozen epoch switch the network to evaluation mode and back: the freeze must survive it
    result = train(model, data(), config(frozen_backbone_epochs=1, evaluate_every_steps=2), on_step=record,
                   evaluation=Evaluation(every_epoch={"held_out": held_out}, every_steps={"held_out": held_out}),
                   device="cpu", progress=False)
    assert same(seen[1][0], start_backbone) and not same(seen[1][1], start_head)  # the head learnt meanwhile
    assert not same(seen[2][0], start_backbone)  # released for the rest of the schedule
    assert all(p.requires_grad for p in result.model.parameters())  # the returned network trains like any other
    assert len(result.history) == 3 and result.step_evaluations


def test_a_frozen_backbone_gets_no_momentum_or_weight_decay_while_frozen():
    model = build_model(SMALL, seed=0)
    state = train_module._State(model, config(frozen_backbone_epochs=1), torch.device("cpu"), steps_per_epoch=4)
    train_module._freeze_backbone(model, True)
    model(torch.rand(4, 1, 28, 28)).sum().backward()
    state.optimizer.step()
    backbone = {id(p) for p in model.backbone.parameters()}
    assert all(id(p) not in backbone for p in state.optimizer.state)  # no momentum buffer for the backbone
    assert state.optimizer.state  # the head's parameters did step


def test_the_scaled_learning_rate_reaches_the_backbones_parameter_groups_at_every_step():
    model = build_model(SMALL, seed=0)
    state = train_module._State(model, config(backbone_learning_rate_scale=0.1), torch.device("cpu"),
                                steps_per_epoch=5)
    backbone = {id(p) for p in model.backbone.parameters()}
    groups = state.optimizer.param_groups
    scaled = [group for group in groups if all(id(p) in backbone for p in group["params"])]
    head = [group for group in groups if not any(id(p) in backbone for p in group["params"])]
    assert len(scaled) + len(head) == len(groups) == 4  # each part: weights (decayed) and the rest (not)
    assert {id(p) for group in scaled for p in group["params"]} == backbone
    assert {group["weight_decay"] for group in scaled} == {group["weight_decay"] for group in head} == {5e-4, 0.0}
    peaks = []
    for _ in range(15):  # through warm-up and annealing: the ratio holds at every step
        state.optimizer.step()
        state.schedule.step()
        for group in scaled:
            assert group["lr"] == pytest.approx(0.1 * head[0]["lr"], rel=1e-9)
        peaks.append(head[0]["lr"])
    assert max(peaks) == pytest.approx(0.05, rel=1e-3)  # the head keeps the recipe's one-cycle peak
    # and in training: with the backbone's peak at 0, its weights never move while the head learns
    result = train(build_model(SMALL, seed=0), data(), config(backbone_learning_rate_scale=0.0, weight_decay=0.0),
                   device="cpu", progress=False)
    start = build_model(SMALL, seed=0)
    assert all(torch.equal(p, q) for p, q in zip(result.model.backbone.parameters(), start.backbone.parameters()))
    assert not torch.equal(result.model.head.linear.weight, start.head.linear.weight)


def old_optimizer(model, config):
    """The optimizer as it was before the fine-tuning fields existed (two groups, one learning rate)."""
    decayed = [p for n, p in model.named_parameters() if p.ndim > 1]
    not_decayed = [p for n, p in model.named_parameters() if p.ndim <= 1]
    groups = [{"params": decayed, "weight_decay": config.weight_decay}, {"params": not_decayed, "weight_decay": 0.0}]
    return torch.optim.SGD(groups, lr=config.learning_rate, momentum=config.momentum, nesterov=True)


class OldState(train_module._State):
    """The training state as it was: a scalar one-cycle peak over the old optimizer's groups."""

    def __init__(self, model, config, device, steps_per_epoch):
        super().__init__(model, config, device, steps_per_epoch)
        self.optimizer = old_optimizer(model, config)
        self.schedule = torch.optim.lr_scheduler.OneCycleLR(
            self.optimizer, max_lr=config.learning_rate, total_steps=max(steps_per_epoch * config.epochs, 1),
            pct_start=config.warmup_fraction)


def test_the_defaults_train_bit_identically_to_the_loop_before_the_fields(monkeypatch):
    held_out = data(64, seed=1)
    measured = Evaluation(every_epoch={"held_out": held_out}, every_steps={"held_out": held_out})
    new = train(build_model(SMALL, seed=0), data(), config(evaluate_every_steps=3), evaluation=measured,
                device="cpu", progress=False)
    monkeypatch.setattr(train_module, "_State", OldState)
    old = train(build_model(SMALL, seed=0), data(), config(evaluate_every_steps=3), evaluation=measured,
                device="cpu", progress=False)
    assert same(snapshot(new.model), snapshot(old.model))
    drop = ("epoch_seconds", "wall_seconds", "images_per_second")
    assert [{k: v for k, v in row.items() if k not in drop} for row in new.history] == \
        [{k: v for k, v in row.items() if k not in drop} for row in old.history]


def test_a_recipe_without_fine_tuning_keeps_its_dictionary_and_digest():
    plain = config()
    assert not FINE_TUNING_DEFAULTS.keys() & plain.to_dict().keys()  # stored recipes and digests read as before
    assert TrainConfig.from_dict(plain.to_dict()) == plain
    gentle = replace(plain, backbone_learning_rate_scale=0.1, frozen_backbone_epochs=1)
    assert gentle.to_dict()["backbone_learning_rate_scale"] == 0.1 and TrainConfig.from_dict(gentle.to_dict()) == gentle
    assert len({config_digest(plain), config_digest(gentle), config_digest(replace(plain, frozen_backbone_epochs=1))}) == 3
