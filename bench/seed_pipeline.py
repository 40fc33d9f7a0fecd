"""The seed solution's recipe, rebuilt as the baseline our training is measured against.

Written from its description, not copied: a ResNet (He et al., 2016) of four stages with one
BasicBlock each at 64/128/256/512 channels, stride 1 until the last stage (so three stages run at
the full 32x32 resolution, which is where its cost comes from), global average pooling and three
linear layers with dropout. Data flows the classic way: PIL images through
`Resize((32, 32))` + `ToTensor()` in a `Dataset`, batched by a `DataLoader(batch_size=64,
shuffle=True)` with num_workers=0 (the transform runs in the training process, and its cost is
part of every measured step), trained with Adam at lr 1e-3 on cross-entropy.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

BATCH_SIZE = 64
LEARNING_RATE = 1e-3
DROPOUT = 0.5
IMAGE_SIZE = 32
STAGE_CHANNELS = (64, 128, 256, 512)
STAGE_STRIDES = (1, 1, 1, 2)   # no downsampling until the last stage
CLASSIFIER_WIDTHS = (512, 256, 128, 10)


# ----------------------------------------------------------------------------- network

class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm, added to a shortcut: the identity when shapes
    match, else a strided 1x1 convolution with batch norm (He et al., 2016, option B)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class SeedResNet(nn.Module):
    """[N, 1, 32, 32] -> 10 logits. The stem is a 3x3 convolution to 64 channels (with batch norm
    and ReLU, as in the CIFAR ResNets); there is no input normalisation beyond ToTensor's [0, 1]."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, STAGE_CHANNELS[0], 3, padding=1, bias=False),
                                  nn.BatchNorm2d(STAGE_CHANNELS[0]), nn.ReLU(inplace=True))
        stages, in_channels = [], STAGE_CHANNELS[0]
        for out_channels, stride in zip(STAGE_CHANNELS, STAGE_STRIDES):
            stages.append(BasicBlock(in_channels, out_channels, stride))
            in_channels = out_channels
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        layers = []
        for index, (width_in, width_out) in enumerate(zip(CLASSIFIER_WIDTHS[:-1], CLASSIFIER_WIDTHS[1:])):
            layers.append(nn.Linear(width_in, width_out))
            if index < len(CLASSIFIER_WIDTHS) - 2:  # no ReLU/dropout after the logits
                layers += [nn.ReLU(inplace=True), nn.Dropout(DROPOUT)]
        self.classifier = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = self.pool(self.stages(self.stem(images))).flatten(1)
        return self.classifier(features)


def build_seed_model(seed: int = 0) -> SeedResNet:
    """Fresh weights that depend only on `seed`."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return SeedResNet()


# ----------------------------------------------------------------------------- data

SEED_TRANSFORM = transforms.Compose([transforms.Resize((IMAGE_SIZE, IMAGE_SIZE)), transforms.ToTensor()])


class PILDigits(Dataset):
    """28x28 uint8 digits handed out one at a time as PIL images through the seed's transform,
    as torchvision's MNIST dataset does: the per-image PIL work is the cost being measured."""

    def __init__(self, pixels: torch.Tensor, labels: torch.Tensor, transform=SEED_TRANSFORM):
        if pixels.dtype != torch.uint8 or pixels.ndim != 3:
            raise ValueError(f"expected uint8 pixels [N, H, W], got {pixels.dtype} {tuple(pixels.shape)}")
        self.pixels = pixels.numpy()
        self.labels = labels.tolist()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        return self.transform(Image.fromarray(self.pixels[index])), self.labels[index]


def to_uint8_pixels(images: torch.Tensor) -> torch.Tensor:
    """Our float [N, 1, 28, 28] in [0, 1] back to the uint8 [N, 28, 28] MNIST files hold (exact:
    the floats are bytes / 255)."""
    return (images[:, 0] * 255).round().clamp(0, 255).to(torch.uint8)


def seed_loader(pixels: torch.Tensor, labels: torch.Tensor, seed: int = 0, shuffle: bool = True) -> DataLoader:
    """The seed's DataLoader: batches of 64, reshuffled every epoch, num_workers=0."""
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(PILDigits(pixels, labels), batch_size=BATCH_SIZE, shuffle=shuffle, num_workers=0,
                      generator=generator)


def transformed_images(pixels: torch.Tensor) -> torch.Tensor:
    """Every image through the seed's transform once, stacked [N, 1, 32, 32]: for evaluation,
    whose time is never counted, so it need not be repeated at every evaluation."""
    return torch.stack([SEED_TRANSFORM(Image.fromarray(image)) for image in pixels.numpy()])


# ----------------------------------------------------------------------------- training

@dataclass
class SeedRun:
    """What one training run of the seed pipeline did; times are training only."""
    steps: int = 0
    images: int = 0
    train_seconds: float = 0.0
    warmup_steps: int = 0
    step_evaluations: list[dict] = field(default_factory=list)

    @property
    def images_per_second(self) -> float:
        return self.images / self.train_seconds if self.train_seconds > 0 else float("nan")


def endless_batches(loader: DataLoader) -> Iterator:
    """Epoch after epoch; each new epoch reshuffles, as the seed's loop over epochs does."""
    while True:
        yield from loader


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_seed(model: nn.Module, loader: DataLoader, device: torch.device | str, *, warmup_steps: int = 0,
               max_steps: int | None = None, max_seconds: float | None = None,
               evaluate: Callable[[nn.Module], float] | None = None, evaluate_every_steps: int = 0,
               stop_at_accuracy: float | None = None) -> SeedRun:
    """Train with Adam until `max_steps` timed steps or `max_seconds` of training time.

    The first `warmup_steps` steps train but are not timed (allocator, kernel selection). A timed
    step runs from asking the loader for a batch (PIL decode, resize, collate) to the end of the
    optimizer step. `evaluate(model) -> accuracy` runs every `evaluate_every_steps` with its time
    excluded; with `stop_at_accuracy`, training ends at the first evaluation reaching it.
    """
    if max_steps is None and max_seconds is None:
        raise ValueError("give max_steps or max_seconds, or training never ends")
    device = torch.device(device)
    model = model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    run = SeedRun(warmup_steps=warmup_steps)
    batches = endless_batches(loader)

    def one_step() -> int:
        images, labels = next(batches)
        images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return len(labels)

    for _ in range(warmup_steps):
        one_step()
    _synchronize(device)
    while (max_steps is None or run.steps < max_steps) and (max_seconds is None or run.train_seconds < max_seconds):
        started = time.perf_counter()
        run.images += one_step()
        _synchronize(device)
        run.train_seconds += time.perf_counter() - started
        run.steps += 1
        if evaluate is not None and evaluate_every_steps and run.steps % evaluate_every_steps == 0:
            accuracy = evaluate(model)
            model.train()
            run.step_evaluations.append({"step": run.steps, "epoch": run.images / len(loader.dataset),
                                         "wall_seconds": run.train_seconds, "test_accuracy": accuracy})
            if stop_at_accuracy is not None and accuracy >= stop_at_accuracy:
                break
    return run


@torch.no_grad()
def evaluate_seed(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 500) -> float:
    """Accuracy on already-transformed images [N, 1, 32, 32] (see `transformed_images`)."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    correct = 0
    for start in range(0, len(labels), batch_size):
        logits = model(images[start: start + batch_size].to(device))
        correct += int((logits.argmax(1).cpu() == labels[start: start + batch_size]).sum())
    model.train(was_training)
    return correct / max(len(labels), 1)
