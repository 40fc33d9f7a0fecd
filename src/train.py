"""One training loop for every task: tensors in, a trained network and its history out.

The whole dataset sits on the device as one tensor; each step indexes a batch, distorts it on the
device (`augment.py`) and takes one optimizer step under a one-cycle learning-rate schedule
(Smith & Topin, 2019). Precision follows the hardware (`training_precision`): bf16 autocast where
the GPU has bf16 tensor cores (compute capability >= 8.0), fp16 autocast with a gradient scaler on
older GPUs such as Colab's T4 (7.5) or a P100 (6.0), fp32 on the CPU. Every source of randomness
(order, augmentation, dropout) comes from generators whose states are saved in the per-epoch
checkpoint, so a run that is killed and resumed ends with exactly the weights an unbroken run
would have (bit-identical on CPU). On a GPU, images that are exact multiples of 1/255 (MNIST's) are
held as uint8 and normalised in the step: a quarter of the memory and the same numbers.
"""
from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import TqdmWarning

with warnings.catch_warnings():  # a kernel without ipywidgets: tqdm.auto falls back to text bars, and says so
    warnings.simplefilter("ignore", TqdmWarning)
    from tqdm.auto import tqdm

from .augment import AugmentConfig, augment_batch
from .checkpoints import CheckpointError, check_writable, read_checkpoint, save_checkpoint
from .runs import default_device, device_name, progress_enabled, training_precision


@dataclass
class LabelledImages:
    """What the training loop consumes: images, labels and optional side information."""
    images: torch.Tensor                 # [N, 1, H, W] float in [0, 1]
    labels: torch.Tensor                 # [N] int64
    geometry: torch.Tensor | None = None # [N, G] or None

    def __len__(self) -> int:
        return len(self.labels)

    def to(self, device: torch.device) -> "LabelledImages":
        return LabelledImages(self.images.to(device), self.labels.to(device),
                              None if self.geometry is None else self.geometry.to(device))

    def subset(self, index) -> "LabelledImages":
        index = torch.as_tensor(index, dtype=torch.long, device=self.labels.device)
        return LabelledImages(self.images[index], self.labels[index],
                              None if self.geometry is None else self.geometry[index])


@dataclass(frozen=True)
class TrainConfig:
    epochs: int
    batch_size: int = 128
    optimizer: str = "sgd"              # "sgd" (Nesterov momentum) or "adamw"
    learning_rate: float = 0.05         # the one-cycle peak
    momentum: float = 0.9
    weight_decay: float = 5e-4          # on convolution and linear weights only
    warmup_fraction: float = 0.2        # share of steps spent rising to the peak
    label_smoothing: float = 0.0
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    seed: int = 0
    evaluate_every_steps: int = 0       # 0: evaluate once per epoch only
    # Fine-tuning a pretrained backbone (`model.backbone`) gently; the defaults leave training exactly as without them.
    backbone_learning_rate_scale: float = 1.0  # the backbone's peak LR = this x learning_rate (discriminative LRs)
    frozen_backbone_epochs: int = 0     # the first N epochs train the head only; the backbone is not touched at all

    def to_dict(self) -> dict:
        values = {**asdict(self), "augment": self.augment.to_dict()}
        # A fine-tuning field at its default is left out, so every recipe without one keeps its digest and its stored
        # checkpoints (config_digest, resume) read as before.
        for name, default in FINE_TUNING_DEFAULTS.items():
            if values[name] == default:
                del values[name]
        return values

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        return cls(**{**values, "augment": AugmentConfig.from_dict(values["augment"])})


FINE_TUNING_DEFAULTS = {"backbone_learning_rate_scale": 1.0, "frozen_backbone_epochs": 0}
BACKBONE_PREFIX = "backbone."           # parameter names of the part the fine-tuning fields act on (model.CharacterCNN)


# The MNIST recipe Tasks 2 and 3 share (bench times it too): one recipe and one network (model.DIGIT_MODEL) for every
# MNIST run, so the two tasks' MNIST test accuracies compare like with like.
MNIST_RECIPE = TrainConfig(
    epochs=8,                   # one-cycle over 8 epochs of 55,000 images
    batch_size=128,
    optimizer="sgd",            # Nesterov momentum
    learning_rate=0.1,          # one-cycle peak (Smith & Topin 2019)
    momentum=0.9,
    weight_decay=5e-4,          # on convolution and linear weights only
    warmup_fraction=0.2,
    label_smoothing=0.1,        # Szegedy et al. 2016
    augment=AugmentConfig(rotate_degrees=10, shear=0.15, scale=(0.9, 1.1), translate_pixels=2),  # MNIST's own jitter
    evaluate_every_steps=100,   # held-out accuracy every 100 steps: convergence curves and times
)


@dataclass
class TrainResult:
    model: nn.Module
    history: list[dict]                  # one row per epoch
    step_evaluations: list[dict]         # one row per `evaluate_every_steps`
    config: TrainConfig
    device: str
    precision: str = "float32"


def cross_entropy(label_smoothing: float = 0.0) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    def loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, labels, label_smoothing=label_smoothing)
    return loss


PRECISIONS = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": None}


def _autocast(device: torch.device, precision: str):
    dtype = PRECISIONS[precision]
    return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)


@torch.no_grad()
def predict_logits(model: nn.Module, images: torch.Tensor, geometry: torch.Tensor | None = None,
                   batch_size: int | None = None) -> torch.Tensor:
    """Logits in float32 for every image, in evaluation mode, on the model's device. A CPU predicts fastest in
    batches that fit its caches (256: ~1.4x the images/s of 2,000 on 2 cores), a GPU in large ones."""
    device = next(model.parameters()).device
    batch_size = batch_size or (256 if device.type == "cpu" else 2000)
    precision = training_precision(device)
    was_training = model.training
    model.eval()
    outputs = []
    for start in range(0, len(images), batch_size):
        batch = images[start: start + batch_size].to(device).contiguous(memory_format=torch.channels_last)
        batch_geometry = None if geometry is None else geometry[start: start + batch_size].to(device)
        with _autocast(device, precision):
            outputs.append(model(batch, batch_geometry).float())
    model.train(was_training)
    return torch.cat(outputs) if outputs else torch.empty(0)


def predict_averaged_over_views(model: nn.Module, images: torch.Tensor, geometry: torch.Tensor | None,
                                views: int, augment: AugmentConfig, seed: int = 0) -> torch.Tensor:
    """Test-time augmentation: log of the softmax averaged over the image and `views` mildly
    distorted copies (a fixed seed, so the same input always gets the same answer)."""
    generator = torch.Generator().manual_seed(seed)
    probabilities = torch.softmax(predict_logits(model, images, geometry), dim=1)
    for _ in range(views):
        distorted, _ = augment_batch(images.cpu(), augment, generator)
        probabilities += torch.softmax(predict_logits(model, distorted, geometry), dim=1)
    return torch.log(probabilities / (views + 1))


def evaluate(model: nn.Module, data: LabelledImages) -> dict:
    logits = predict_logits(model, data.images, data.geometry)
    labels = data.labels.to(logits.device)
    return {"loss": float(F.cross_entropy(logits, labels)),
            "accuracy": float((logits.argmax(1) == labels).float().mean())}


def _optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """Weight decay on weights only. With backbone_learning_rate_scale != 1 the backbone's parameters get groups of
    their own whose `lr` (the one-cycle peak, see `_State`) is scaled: discriminative learning rates (Howard & Ruder,
    2018, *Universal language model fine-tuning for text classification*)."""
    named = list(model.named_parameters())
    if config.backbone_learning_rate_scale == 1.0:
        parts = [(named, config.learning_rate)]
    else:
        backbone = [(n, p) for n, p in named if n.startswith(BACKBONE_PREFIX)]
        if not backbone:
            raise ValueError("backbone_learning_rate_scale needs a model with a `backbone`")
        parts = [([(n, p) for n, p in named if not n.startswith(BACKBONE_PREFIX)], config.learning_rate),
                 (backbone, config.learning_rate * config.backbone_learning_rate_scale)]
    groups = []
    for part, learning_rate in parts:
        groups += [{"params": [p for n, p in part if p.ndim > 1], "weight_decay": config.weight_decay,
                    "lr": learning_rate},
                   {"params": [p for n, p in part if p.ndim <= 1], "weight_decay": 0.0, "lr": learning_rate}]
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.learning_rate, momentum=config.momentum, nesterov=True)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=config.learning_rate)
    raise ValueError(f"unknown optimizer {config.optimizer!r} (use 'sgd' or 'adamw')")


def _freeze_backbone(model: nn.Module, frozen: bool) -> None:
    """Freeze (or release) `model.backbone`: no gradient, so no update, weight decay or momentum reaches it
    (`_training_mode` also keeps its batch-norm statistics as they are). Linear probing, then fine-tuning (Kumar et al.,
    2022, *Fine-tuning can distort pretrained features and underperform out-of-distribution*)."""
    backbone = getattr(model, "backbone", None)
    if backbone is None:
        raise ValueError("frozen_backbone_epochs needs a model with a `backbone`")
    backbone.requires_grad_(not frozen)


def _training_mode(model: nn.Module, config: TrainConfig, epoch: int) -> None:
    """model.train(), except a backbone frozen in this epoch (0-based), which stays in evaluation mode."""
    model.train()
    if epoch < config.frozen_backbone_epochs:
        model.backbone.eval()


def _resident(data: LabelledImages, device: torch.device) -> LabelledImages:
    """`data` on `device`; on a GPU as uint8 when that is lossless (`_batch_images` divides by 255 again)."""
    data = data.to(device)
    quantised = lossless_uint8(data.images) if device.type == "cuda" else None
    return data if quantised is None else LabelledImages(quantised, data.labels, data.geometry)


def lossless_uint8(images: torch.Tensor) -> torch.Tensor | None:
    """`images` as uint8 if every value is k/255 exactly (so `_batch_images` restores them bit for bit), else None."""
    if images.dtype != torch.float32:
        return None
    quantised = (images * 255).round().clamp(0, 255).to(torch.uint8)
    return quantised if torch.equal(_batch_images(quantised), images) else None


def _batch_images(images: torch.Tensor) -> torch.Tensor:
    return images.float() / 255 if images.dtype == torch.uint8 else images


def _random_state(shuffle: torch.Generator, augmentation: torch.Generator, device: torch.device) -> dict:
    state = {"shuffle": shuffle.get_state(), "augmentation": augmentation.get_state(), "torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _restore_random_state(state: dict, shuffle: torch.Generator, augmentation: torch.Generator, device) -> None:
    shuffle.set_state(state["shuffle"])
    augmentation.set_state(state["augmentation"])
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


BatchOrder = Callable[[int, torch.Generator], torch.Tensor]  # (images, shuffle generator) -> the epoch's order


def random_order(count: int, generator: torch.Generator) -> torch.Tensor:
    """The default batch order: a fresh random permutation every epoch."""
    return torch.randperm(count, generator=generator)


@dataclass(frozen=True)
class Evaluation:
    """What `train` measures, and when. Evaluation time is left out of the seconds it records."""
    every_epoch: dict[str, LabelledImages] = field(default_factory=dict)   # after every epoch
    every_steps: dict[str, LabelledImages] = field(default_factory=dict)   # every config.evaluate_every_steps ...
    at_steps: Collection[int] = ()                                         # ... and at these steps (dense early points)

    def due(self, step: int, every: int) -> bool:
        return bool(self.every_steps) and (step in self.at_steps or bool(every and step % every == 0))


@dataclass(frozen=True)
class Checkpointing:
    """A checkpoint after every epoch at `path`; with `resume`, a run continues from the one there."""
    path: Path
    resume: bool = False
    metadata: dict | None = None     # added to the checkpoint's metadata


@dataclass(frozen=True)
class Step:
    """What an `on_step` hook sees after each optimizer step (the loss stays on the device until read)."""
    step: int                        # optimizer steps taken so far
    epoch: int                       # the epoch this step belongs to, from 1
    loss: torch.Tensor
    model: nn.Module


class _State:
    """Everything a resumed run needs besides the weights: optimizer, schedule, scaler, generators, history."""

    def __init__(self, model: nn.Module, config: TrainConfig, device: torch.device, steps_per_epoch: int):
        self.config, self.device = config, device
        self.optimizer = _optimizer(model, config)
        self.schedule = torch.optim.lr_scheduler.OneCycleLR(  # each group's peak: its `lr` (see `_optimizer`)
            self.optimizer, max_lr=[group["lr"] for group in self.optimizer.param_groups],
            total_steps=max(steps_per_epoch * config.epochs, 1),
            pct_start=config.warmup_fraction)
        # fp16 gradients can underflow: scale the loss (Micikevicius et al. 2018); bf16 and fp32 need no scaling.
        self.scaler = torch.amp.GradScaler("cuda", enabled=training_precision(device) == "float16")
        self.shuffle = torch.Generator().manual_seed(config.seed)
        self.augmentation = torch.Generator(device=device).manual_seed(config.seed + 1)
        self.history: list[dict] = []
        self.step_evaluations: list[dict] = []
        self.epoch, self.step, self.trained_seconds = 0, 0, 0.0

    def to_dict(self) -> dict:
        return {"config": self.config.to_dict(), "optimizer": self.optimizer.state_dict(),
                "schedule": self.schedule.state_dict(),
                "random": _random_state(self.shuffle, self.augmentation, self.device),
                "scaler": self.scaler.state_dict(), "history": self.history, "step_evaluations": self.step_evaluations,
                "epoch": self.epoch, "step": self.step, "trained_seconds": self.trained_seconds}

    def resume(self, model: nn.Module, path: Path) -> None:
        payload = read_checkpoint(path)
        state = payload.get("training_state")
        if state is None:
            raise CheckpointError(f"{path}: holds no training state to resume from")
        if state["config"] != self.config.to_dict():
            raise CheckpointError(f"{path}: was written by a run with another recipe; "
                                  f"expected {self.config.to_dict()}, found {state['config']}")
        model.load_state_dict(payload["state_dict"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        if "scaler" in state:
            self.scaler.load_state_dict(state["scaler"])
        _restore_random_state(state["random"], self.shuffle, self.augmentation, self.device)
        self.history, self.step_evaluations = list(state["history"]), list(state["step_evaluations"])
        self.epoch, self.step, self.trained_seconds = state["epoch"], state["step"], state["trained_seconds"]


def train(model: nn.Module, data: LabelledImages, config: TrainConfig, *,
          loss_function: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
          evaluation: Evaluation | None = None, checkpoint: Checkpointing | None = None,
          batch_order: BatchOrder = random_order, on_step: Callable[[Step], None] | None = None,
          device: torch.device | str | None = None, progress: bool | None = None, description: str = "training",
          compile_backend: str | None = None) -> TrainResult:
    """Train `model` on `data` and return it with its history.

    `loss_function(logits, labels)` replaces cross-entropy (Task 3 passes its own). `evaluation` says what is
    measured when; `checkpoint` writes (and resumes from) a checkpoint after every epoch. Two extension points, so
    an experiment never patches this loop: `batch_order(images, generator)` gives each epoch's order of the images
    (draw only from `generator`, whose state the checkpoint keeps, and a resumed run stays bit-identical), and
    `on_step(Step)` runs after every optimizer step. `progress=None` follows `runs.progress_enabled()`.
    `compile_backend` ("inductor" on a GPU) runs the training steps through `torch.compile`; it pays only when a
    run is long enough to amortise the compile (bench measures it), so the tasks leave it off.
    Two recipe fields fine-tune a pretrained `model.backbone` gently (Task 2): `backbone_learning_rate_scale` scales
    its one-cycle peak, and `frozen_backbone_epochs` trains the head alone for the first epochs of the same schedule.
    """
    device = torch.device(device) if device is not None else default_device()
    precision = training_precision(device)
    progress = progress_enabled() if progress is None else progress
    evaluation = evaluation or Evaluation()
    evaluation = replace(evaluation,
                         every_epoch={name: part.to(device) for name, part in evaluation.every_epoch.items()},
                         every_steps={name: part.to(device) for name, part in evaluation.every_steps.items()})
    loss_function = loss_function or cross_entropy(config.label_smoothing)
    if checkpoint is not None:
        check_writable(Path(checkpoint.path))

    torch.manual_seed(config.seed)
    model = model.to(device).to(memory_format=torch.channels_last)
    forward = torch.compile(model, backend=compile_backend) if compile_backend else model
    data = _resident(data, device)
    if len(data) == 0:
        raise ValueError(f"{description}: no training images")
    batch_size = min(config.batch_size, len(data))
    steps_per_epoch = len(data) // batch_size
    state = _State(model, config, device, steps_per_epoch)
    if checkpoint is not None and checkpoint.resume and Path(checkpoint.path).exists():
        state.resume(model, Path(checkpoint.path))

    def take_step(index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimizer step on the images at `index`: returns its loss and its number of right answers."""
        batch_geometry = None if data.geometry is None else data.geometry[index]
        images, geometry = augment_batch(_batch_images(data.images[index]), config.augment, state.augmentation,
                                         batch_geometry)
        labels = data.labels[index]
        with _autocast(device, precision):
            logits = forward(images.contiguous(memory_format=torch.channels_last), geometry)
        loss = loss_function(logits.float(), labels)
        state.optimizer.zero_grad(set_to_none=True)
        state.scaler.scale(loss).backward()
        state.scaler.step(state.optimizer)
        state.scaler.update()
        state.schedule.step()
        return loss.detach(), (logits.argmax(1) == labels).sum()

    bar = tqdm(total=steps_per_epoch * config.epochs, initial=state.step, desc=description, disable=not progress,
               leave=False)
    model.train()
    for epoch in range(state.epoch, config.epochs):
        if config.frozen_backbone_epochs:
            _freeze_backbone(model, epoch < config.frozen_backbone_epochs)
            _training_mode(model, config, epoch)
        order = batch_order(len(data), state.shuffle).to(device)
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device)
        clock = _StopWatch(device)
        for batch_index in range(steps_per_epoch):
            loss, right = take_step(order[batch_index * batch_size: (batch_index + 1) * batch_size])
            state.step += 1
            loss_sum += loss
            correct += right
            bar.update(1)
            if evaluation.due(state.step, config.evaluate_every_steps):
                clock.pause()
                state.step_evaluations.append({"step": state.step, "epoch": state.step / steps_per_epoch,
                                               "wall_seconds": state.trained_seconds + clock.seconds,
                                               **_evaluate_all(model, evaluation.every_steps)})
                _training_mode(model, config, epoch)
                clock.resume()
            if on_step is not None:
                on_step(Step(state.step, epoch + 1, loss, model))
        clock.pause()
        state.trained_seconds += clock.seconds
        row = {"epoch": epoch + 1, "steps": state.step, "learning_rate": state.schedule.get_last_lr()[0],
               "train_loss": float(loss_sum) / steps_per_epoch,
               "train_accuracy": float(correct) / (steps_per_epoch * batch_size),
               "epoch_seconds": clock.seconds, "wall_seconds": state.trained_seconds,
               "images_per_second": steps_per_epoch * batch_size / max(clock.seconds, 1e-9),
               **_evaluate_all(model, evaluation.every_epoch)}
        _training_mode(model, config, epoch)
        state.history.append(row)
        state.epoch = epoch + 1
        bar.set_postfix(epoch=f"{epoch + 1}/{config.epochs}", loss=f"{row['train_loss']:.3f}",
                        **{k: f"{v:.4f}" for k, v in row.items() if k.endswith("_accuracy")})
        if checkpoint is not None:
            save_checkpoint(Path(checkpoint.path), model,
                            _training_metadata(config, state.history, device_name(device), precision,
                                               checkpoint.metadata),
                            training_state=state.to_dict())
    bar.close()
    if config.frozen_backbone_epochs:
        _freeze_backbone(model, False)  # the returned network trains like any other
    model.eval()
    return TrainResult(model, state.history, state.step_evaluations, config, device_name(device), precision)


class _StopWatch:
    """Seconds of training in one epoch: paused while evaluating, and synchronised with the GPU when read."""

    def __init__(self, device: torch.device):
        self.device, self.seconds, self.started = device, 0.0, time.perf_counter()

    def pause(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.seconds += time.perf_counter() - self.started

    def resume(self) -> None:
        self.started = time.perf_counter()


def _evaluate_all(model: nn.Module, sets: dict[str, LabelledImages]) -> dict:
    row = {}
    for name, subset in sets.items():
        result = evaluate(model, subset)
        row[f"{name}_loss"], row[f"{name}_accuracy"] = result["loss"], result["accuracy"]
    return row


def _training_metadata(config: TrainConfig, history: list[dict], device: str, precision: str, extra: dict | None) -> dict:
    return {"train_config": config.to_dict(), "history": history, "device": device, "precision": precision,
            **(extra or {})}


def finished_checkpoint(path: str | Path, result: TrainResult, metadata: dict) -> Path:
    """Write the small, final checkpoint of a run (weights, recipe, history, metrics; no optimizer)."""
    return save_checkpoint(Path(path), result.model,
                           {**_training_metadata(result.config, result.history, result.device, result.precision, None),
                            **metadata})
