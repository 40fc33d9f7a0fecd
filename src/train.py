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
from dataclasses import asdict, dataclass, field
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
    decayed = [p for n, p in model.named_parameters() if p.ndim > 1]
    not_decayed = [p for n, p in model.named_parameters() if p.ndim <= 1]
    groups = [{"params": decayed, "weight_decay": config.weight_decay}, {"params": not_decayed, "weight_decay": 0.0}]
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


def train(model: nn.Module, data: LabelledImages, config: TrainConfig, *,
          evaluation_sets: dict[str, LabelledImages] | None = None,
          step_evaluation_sets: dict[str, LabelledImages] | None = None,
          loss_function: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
          checkpoint_path: str | Path | None = None, resume: bool = False, checkpoint_metadata: dict | None = None,
          device: torch.device | str | None = None, progress: bool | None = None,
          description: str = "training", compile_backend: str | None = None,
          evaluate_at_steps: Collection[int] = ()) -> TrainResult:
    """Train `model` on `data` and return it with its history.

    `evaluation_sets` are evaluated after every epoch, `step_evaluation_sets` every
    `config.evaluate_every_steps` optimizer steps and at each step in `evaluate_at_steps` (dense early
    points for convergence curves); evaluation time is
    excluded from the wall-clock seconds recorded. `loss_function(logits, labels)` replaces
    cross-entropy (Task 3 passes its own). With `checkpoint_path`, a checkpoint is written after
    every epoch; `resume=True` continues from it. `progress=None` follows `runs.progress_enabled()`.
    `compile_backend` ("inductor" on a GPU) runs the training steps through `torch.compile`; it pays only
    when a run is long enough to amortise the compile (bench measures it), so the tasks leave it off.
    """
    device = torch.device(device) if device is not None else default_device()
    progress = progress_enabled() if progress is None else progress
    precision = training_precision(device)
    # fp16 gradients can underflow: scale the loss (Micikevicius et al. 2018); bf16 and fp32 need no scaling.
    scaler = torch.amp.GradScaler("cuda", enabled=precision == "float16")
    evaluation_sets = {name: subset.to(device) for name, subset in (evaluation_sets or {}).items()}
    step_evaluation_sets = {name: subset.to(device) for name, subset in (step_evaluation_sets or {}).items()}
    loss_function = loss_function or cross_entropy(config.label_smoothing)
    if checkpoint_path is not None:
        check_writable(Path(checkpoint_path))

    torch.manual_seed(config.seed)
    model = model.to(device).to(memory_format=torch.channels_last)
    forward = torch.compile(model, backend=compile_backend) if compile_backend else model
    data = _resident(data, device)
    if len(data) == 0:
        raise ValueError(f"{description}: no training images")
    batch_size = min(config.batch_size, len(data))
    steps_per_epoch = len(data) // batch_size
    total_steps = steps_per_epoch * config.epochs
    optimizer = _optimizer(model, config)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.learning_rate, total_steps=max(total_steps, 1),
                                                   pct_start=config.warmup_fraction)
    shuffle_generator = torch.Generator().manual_seed(config.seed)
    augmentation_generator = torch.Generator(device=device).manual_seed(config.seed + 1)
    history: list[dict] = []
    step_evaluations: list[dict] = []
    first_epoch, step, trained_seconds = 0, 0, 0.0

    if resume and checkpoint_path is not None and Path(checkpoint_path).exists():
        payload = read_checkpoint(Path(checkpoint_path))
        state = payload.get("training_state")
        if state is None:
            raise CheckpointError(f"{checkpoint_path}: holds no training state to resume from")
        if state["config"] != config.to_dict():
            raise CheckpointError(f"{checkpoint_path}: was written by a run with another recipe; "
                                  f"expected {config.to_dict()}, found {state['config']}")
        model.load_state_dict(payload["state_dict"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        if "scaler" in state:
            scaler.load_state_dict(state["scaler"])
        _restore_random_state(state["random"], shuffle_generator, augmentation_generator, device)
        history, step_evaluations = list(state["history"]), list(state["step_evaluations"])
        first_epoch, step, trained_seconds = state["epoch"], state["step"], state["trained_seconds"]

    def run_evaluations(sets: dict[str, LabelledImages]) -> dict:
        row = {}
        for name, subset in sets.items():
            result = evaluate(model, subset)
            row[f"{name}_loss"], row[f"{name}_accuracy"] = result["loss"], result["accuracy"]
        return row

    bar = tqdm(total=total_steps, initial=step, desc=description, disable=not progress, leave=False)
    model.train()
    for epoch in range(first_epoch, config.epochs):
        order = torch.randperm(len(data), generator=shuffle_generator).to(device)
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device)
        epoch_seconds, started = 0.0, time.perf_counter()
        for batch_index in range(steps_per_epoch):
            index = order[batch_index * batch_size: (batch_index + 1) * batch_size]
            batch_geometry = None if data.geometry is None else data.geometry[index]
            images, geometry = augment_batch(_batch_images(data.images[index]), config.augment,
                                             augmentation_generator, batch_geometry)
            labels = data.labels[index]
            with _autocast(device, precision):
                logits = forward(images.contiguous(memory_format=torch.channels_last), geometry)
            loss = loss_function(logits.float(), labels)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            schedule.step()
            step += 1
            loss_sum += loss.detach()
            correct += (logits.argmax(1) == labels).sum()
            bar.update(1)
            every = config.evaluate_every_steps
            if step_evaluation_sets and (step in evaluate_at_steps or (every and step % every == 0)):
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                epoch_seconds += time.perf_counter() - started
                step_evaluations.append({"step": step, "epoch": step / steps_per_epoch,
                                         "wall_seconds": trained_seconds + epoch_seconds,
                                         **run_evaluations(step_evaluation_sets)})
                model.train()
                started = time.perf_counter()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        epoch_seconds += time.perf_counter() - started
        trained_seconds += epoch_seconds
        row = {"epoch": epoch + 1, "steps": step, "learning_rate": schedule.get_last_lr()[0],
               "train_loss": float(loss_sum) / steps_per_epoch,
               "train_accuracy": float(correct) / (steps_per_epoch * batch_size),
               "epoch_seconds": epoch_seconds, "wall_seconds": trained_seconds,
               "images_per_second": steps_per_epoch * batch_size / max(epoch_seconds, 1e-9),
               **run_evaluations(evaluation_sets)}
        model.train()
        history.append(row)
        bar.set_postfix(epoch=f"{epoch + 1}/{config.epochs}", loss=f"{row['train_loss']:.3f}",
                        **{k: f"{v:.4f}" for k, v in row.items() if k.endswith("_accuracy")})
        if checkpoint_path is not None:
            state = {"config": config.to_dict(), "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
                     "random": _random_state(shuffle_generator, augmentation_generator, device),
                     "scaler": scaler.state_dict(),
                     "history": history, "step_evaluations": step_evaluations,
                     "epoch": epoch + 1, "step": step, "trained_seconds": trained_seconds}
            save_checkpoint(Path(checkpoint_path), model,
                            _training_metadata(config, history, device_name(device), precision, checkpoint_metadata),
                            training_state=state)
    bar.close()
    model.eval()
    return TrainResult(model, history, step_evaluations, config, device_name(device), precision)


def _training_metadata(config: TrainConfig, history: list[dict], device: str, precision: str, extra: dict | None) -> dict:
    return {"train_config": config.to_dict(), "history": history, "device": device, "precision": precision,
            **(extra or {})}


def finished_checkpoint(path: str | Path, result: TrainResult, metadata: dict) -> Path:
    """Write the small, final checkpoint of a run (weights, recipe, history, metrics; no optimizer)."""
    return save_checkpoint(Path(path), result.model,
                           {**_training_metadata(result.config, result.history, result.device, result.precision, None),
                            **metadata})
