"""One training loop for every task: tensors in, a trained network and its history out.

The whole dataset sits on the device as one tensor; each step indexes a batch, distorts it on the device
(`augment.py`) and takes one optimizer step under a one-cycle learning-rate schedule (Smith & Topin, 2019).
Precision follows the hardware (`settings.training_precision`): bf16 autocast where the GPU has bf16 tensor cores,
fp16 autocast with a gradient scaler on older GPUs such as Colab's T4, fp32 on the CPU. Every source of randomness
(order, augmentation, dropout) comes from generators seeded by the recipe, so a seed gives the same run. On a GPU,
images that are exact multiples of 1/255 (MNIST's) are held as uint8 and normalised in the step: a quarter of the
memory and the same numbers.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass, field, replace

import torch
import torch.nn as nn
import torch.nn.functional as F

from .augment import AugmentConfig, augment_batch
from .data.files import tqdm
from .data.labelled import LabelledImages
from .settings import default_device, device_name, progress_enabled, report, training_precision


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
    # Fine-tuning a pretrained `model.backbone` (Task 2); the defaults train every layer alike.
    backbone_learning_rate_scale: float = 1.0  # the backbone's peak = this x learning_rate (discriminative LRs)
    frozen_backbone: bool = False       # train the head only; the backbone, batch norm included, stays as it is

    def to_dict(self) -> dict:
        return {**asdict(self), "augment": self.augment.to_dict()}

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        return cls(**{**values, "augment": AugmentConfig.from_dict(values["augment"])})


@dataclass
class TrainResult:
    model: nn.Module
    history: list[dict]                  # one row per epoch
    step_evaluations: list[dict]         # one row per `evaluate_every_steps`
    config: TrainConfig
    device: str
    precision: str = "float32"


@dataclass(frozen=True)
class Evaluation:
    """What `train` measures, and when. Evaluation time is left out of the seconds it records."""
    every_epoch: dict[str, LabelledImages] = field(default_factory=dict)   # after every epoch
    every_steps: dict[str, LabelledImages] = field(default_factory=dict)   # every config.evaluate_every_steps ...
    at_steps: Collection[int] = ()                                         # ... and at these steps (dense early points)
    measure: Callable[[torch.Tensor, torch.Tensor], dict] | None = None    # logits, labels -> {name: value}; default
    #                                                                        loss and accuracy

    def due(self, step: int, every: int) -> bool:
        return bool(self.every_steps) and (step in self.at_steps or bool(every and step % every == 0))


def cross_entropy(label_smoothing: float = 0.0) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    def loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, labels, label_smoothing=label_smoothing)
    return loss


PRECISIONS = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": None}


def _autocast(device: torch.device, precision: str):
    dtype = PRECISIONS[precision]
    return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)


# ----------------------------------------------------------------------------- prediction

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
        batch = _batch_images(images[start: start + batch_size].to(device))
        batch = batch.contiguous(memory_format=torch.channels_last)
        batch_geometry = None if geometry is None else geometry[start: start + batch_size].to(device)
        with _autocast(device, precision):
            outputs.append(model(batch, batch_geometry).float())
    model.train(was_training)
    return torch.cat(outputs) if outputs else torch.empty(0)


def predict(model: nn.Module, inputs: LabelledImages, views: int = 0, augment: AugmentConfig | None = None,
            seed: int = 0) -> torch.Tensor:
    """Log-probabilities (logits where `views` is 0) of every image on the CPU. With `views`, test-time augmentation:
    the softmax averaged over the image and `views` mildly distorted copies (a fixed seed, so the same input always
    gets the same answer)."""
    logits = predict_logits(model, inputs.images, inputs.geometry)
    if not views:
        return logits.cpu()
    generator = torch.Generator().manual_seed(seed)
    probabilities = torch.softmax(logits, dim=1)
    for _ in range(views):
        distorted, _ = augment_batch(inputs.images.cpu(), augment, generator)
        probabilities += torch.softmax(predict_logits(model, distorted, inputs.geometry), dim=1)
    return torch.log(probabilities / (views + 1)).cpu()


def loss_and_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> dict:
    labels = labels.to(logits.device)
    return {"loss": float(F.cross_entropy(logits, labels)),
            "accuracy": float((logits.argmax(1) == labels).float().mean())}


# ----------------------------------------------------------------------------- training

def train(model: nn.Module, data: LabelledImages, config: TrainConfig, *,
          loss_function: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
          evaluation: Evaluation | None = None, device: torch.device | str | None = None,
          progress: bool | None = None, description: str = "training", compile_backend: str | None = None,
          on_step: Callable[[int, nn.Module], None] | None = None) -> TrainResult:
    """Train `model` on `data` and return it with its history.

    `loss_function(logits, labels)` replaces cross-entropy (Task 3 passes its own); `evaluation` says what is measured
    when; `on_step(step, model)` runs after every optimizer step (the recipe search's weight averages read it there).
    `progress=None` follows `settings.progress_enabled()`. `compile_backend` ("inductor" on a GPU) runs the
    steps through `torch.compile`; it pays only when a run is long enough to amortise the compile (bench measures it).
    """
    device = torch.device(device) if device is not None else default_device()
    precision = training_precision(device)
    progress = progress_enabled() if progress is None else progress
    evaluation = evaluation or Evaluation()
    evaluation = replace(evaluation,
                         every_epoch={name: part.to(device) for name, part in evaluation.every_epoch.items()},
                         every_steps={name: part.to(device) for name, part in evaluation.every_steps.items()})
    loss_function = loss_function or cross_entropy(config.label_smoothing)

    torch.manual_seed(config.seed)
    model = model.to(device).to(memory_format=torch.channels_last)
    if config.frozen_backbone:
        model.backbone.requires_grad_(False)
    forward = torch.compile(model, backend=compile_backend) if compile_backend else model
    data = _resident(data, device)
    if len(data) == 0:
        raise ValueError(f"{description}: no training images")
    batch_size = min(config.batch_size, len(data))
    steps_per_epoch = len(data) // batch_size
    optimizer = _optimizer(model, config)
    schedule = torch.optim.lr_scheduler.OneCycleLR(  # each group's peak: its `lr` (see `_optimizer`)
        optimizer, max_lr=[group["lr"] for group in optimizer.param_groups],
        total_steps=max(steps_per_epoch * config.epochs, 1), pct_start=config.warmup_fraction)
    # fp16 gradients can underflow: scale the loss (Micikevicius et al. 2018); bf16 and fp32 need no scaling.
    scaler = torch.amp.GradScaler("cuda", enabled=precision == "float16")
    shuffle = torch.Generator().manual_seed(config.seed)
    augmentation = torch.Generator(device=device).manual_seed(config.seed + 1)

    def training_mode() -> None:
        model.train()
        if config.frozen_backbone:
            model.backbone.eval()  # a frozen backbone keeps its batch-norm statistics too

    def take_step(index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimizer step on the images at `index`: returns its loss and its number of right answers."""
        batch_geometry = None if data.geometry is None else data.geometry[index]
        images, geometry = augment_batch(_batch_images(data.images[index]), config.augment, augmentation,
                                         batch_geometry)
        labels = data.labels[index]
        with _autocast(device, precision):
            logits = forward(images.contiguous(memory_format=torch.channels_last), geometry)
        loss = loss_function(logits.float(), labels)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        schedule.step()
        return loss.detach(), (logits.argmax(1) == labels).sum()

    history, step_evaluations, step, trained_seconds = [], [], 0, 0.0
    report(f"{description}: {config.epochs} epochs of {steps_per_epoch * batch_size:,} images")
    bar = tqdm(total=steps_per_epoch * config.epochs, desc=description, disable=not progress, leave=False)
    training_mode()
    for epoch in range(config.epochs):
        order = torch.randperm(len(data), generator=shuffle).to(device)
        loss_sum, correct = torch.zeros((), device=device), torch.zeros((), device=device)
        clock = _StopWatch(device)
        for batch_index in range(steps_per_epoch):
            loss, right = take_step(order[batch_index * batch_size: (batch_index + 1) * batch_size])
            step += 1
            loss_sum += loss
            correct += right
            bar.update(1)
            if on_step is not None:
                on_step(step, model)
            if evaluation.due(step, config.evaluate_every_steps):
                clock.pause()
                step_evaluations.append({"step": step, "epoch": step / steps_per_epoch,
                                         "wall_seconds": trained_seconds + clock.seconds,
                                         **_evaluate_all(model, evaluation.every_steps, evaluation.measure)})
                training_mode()
                clock.resume()
        clock.pause()
        trained_seconds += clock.seconds
        row = {"epoch": epoch + 1, "steps": step, "learning_rate": schedule.get_last_lr()[0],
               "train_loss": float(loss_sum) / steps_per_epoch,
               "train_accuracy": float(correct) / (steps_per_epoch * batch_size),
               "epoch_seconds": clock.seconds, "wall_seconds": trained_seconds,
               "images_per_second": steps_per_epoch * batch_size / max(clock.seconds, 1e-9),
               **_evaluate_all(model, evaluation.every_epoch, evaluation.measure)}
        training_mode()
        history.append(row)
        bar.set_postfix(epoch=f"{epoch + 1}/{config.epochs}", loss=f"{row['train_loss']:.3f}",
                        **{k: f"{v:.4f}" for k, v in row.items() if k.endswith("_accuracy")})
    bar.close()
    if config.frozen_backbone:
        model.backbone.requires_grad_(True)  # the returned network trains like any other
    model.eval()
    report(f"{description}: done in {trained_seconds:.0f} s")
    return TrainResult(model, history, step_evaluations, config, device_name(device), precision)


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


def _evaluate_all(model: nn.Module, sets: dict[str, LabelledImages], measure) -> dict:
    row = {}
    for name, subset in sets.items():
        logits = predict_logits(model, subset.images, subset.geometry)
        measured = (measure or loss_and_accuracy)(logits, subset.labels)
        row.update({f"{name}_{key}": value for key, value in measured.items()})
    return row


def _optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """Weight decay on weights only, and only trainable parameters. With backbone_learning_rate_scale != 1 the
    backbone's parameters get groups of their own whose `lr` (the one-cycle peak) is scaled: discriminative learning
    rates (Howard & Ruder, 2018, *Universal language model fine-tuning for text classification*)."""
    named = [(name, parameter) for name, parameter in model.named_parameters() if parameter.requires_grad]
    if config.backbone_learning_rate_scale == 1.0:
        parts = [(named, config.learning_rate)]
    else:
        backbone = [(n, p) for n, p in named if n.startswith("backbone.")]
        if not backbone:
            raise ValueError("backbone_learning_rate_scale needs a model with a trainable `backbone`")
        parts = [([(n, p) for n, p in named if not n.startswith("backbone.")], config.learning_rate),
                 (backbone, config.learning_rate * config.backbone_learning_rate_scale)]
    groups = []
    for part, learning_rate in parts:
        groups += [{"params": [p for _, p in part if p.ndim > 1], "weight_decay": config.weight_decay,
                    "lr": learning_rate},
                   {"params": [p for _, p in part if p.ndim <= 1], "weight_decay": 0.0, "lr": learning_rate}]
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.learning_rate, momentum=config.momentum, nesterov=True)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=config.learning_rate)
    raise ValueError(f"unknown optimizer {config.optimizer!r} (use 'sgd' or 'adamw')")


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
