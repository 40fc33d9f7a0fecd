"""The seed solution's pipeline for `python -m bench`, rebuilt from its description (not copied), and its measurements.

A ResNet (He et al., 2016) with global average pooling and three linear layers, fed by PIL Resize((32, 32)) + ToTensor()
in the training process. Each measurement (`s`: the bench's Settings) starts from fresh seeded weights and a fresh
DataLoader, so repeats are independent runs."""
import itertools
import math
from dataclasses import dataclass, field
from time import perf_counter

import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from src.analysis import first_staying_at_or_above
from src.data.labelled import LabelledImages

class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm plus a shortcut: the identity, or a strided 1x1 projection (option B)."""
    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Identity() if stride == 1 and in_channels == out_channels else nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm2d(out_channels))
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))) + self.shortcut(x))

def build_seed_model(seed: int) -> nn.Sequential:
    """[N, 1, 32, 32] in [0, 1] -> 10 logits, its weights depending only on `seed`. One BasicBlock per stage, with no
    downsampling until the last stage (its cost is at 32x32), and dropout between its three linear layers."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        stages = map(BasicBlock, (64, 64, 128, 256), (64, 128, 256, 512), (1, 1, 1, 2))
        return nn.Sequential(nn.Conv2d(1, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
                             *stages, nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                             nn.Linear(512, 256), nn.ReLU(inplace=True), nn.Dropout(0.5),
                             nn.Linear(256, 128), nn.ReLU(inplace=True), nn.Dropout(0.5), nn.Linear(128, 10))

class PILDigits(Dataset):
    """The exact MNIST bytes, one PIL image at a time through the seed's transform: that work is in every step."""
    transform = transforms.Compose([transforms.Resize((32, 32)), transforms.ToTensor()])
    def __init__(self, data: LabelledImages):
        self.pixels = (data.images[:, 0].cpu() * 255).round().clamp(0, 255).to(torch.uint8).numpy()
        self.labels = data.labels.tolist()
    def __len__(self) -> int:
        return len(self.labels)
    def __getitem__(self, index: int):
        return self.transform(Image.fromarray(self.pixels[index])), self.labels[index]

def seed_loader(data: LabelledImages, seed: int) -> DataLoader:
    return DataLoader(PILDigits(data), batch_size=64, shuffle=True, num_workers=0,  # the seed's settings
                      generator=torch.Generator().manual_seed(seed))

@dataclass
class SeedRun:
    steps: int = 0
    images: int = 0
    train_seconds: float = 0.0           # timed steps only: no warm-up, no evaluation
    step_evaluations: list[dict] = field(default_factory=list)
    @property
    def images_per_second(self) -> float:
        return self.images / self.train_seconds if self.train_seconds > 0 else float("nan")

def train_seed(model: nn.Module, loader: DataLoader, device, *, warmup_steps=0, max_steps=math.inf,
               max_seconds=math.inf, evaluate=None, evaluate_every_steps=0, stop_at_accuracy=math.inf,
               stop_after_evaluations=1) -> SeedRun:
    """Adam. A timed step runs from asking the loader for a batch (PIL decode, resize, collate) to the end of the
    optimizer step; warm-up steps and `evaluate(model)` are untimed, and the step crossing `max_seconds` counts.
    Stops once the last `stop_after_evaluations` evaluations are all >= `stop_at_accuracy`."""
    device = torch.device(device)
    model = model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)  # the seed's, on cross-entropy
    batches = itertools.chain.from_iterable(itertools.repeat(loader))  # epoch after epoch, each reshuffled
    run = SeedRun()
    def step() -> int:
        images, labels = (tensor.to(device, non_blocking=True) for tensor in next(batches))
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(images), labels).backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return len(labels)
    for _ in range(warmup_steps):
        step()
    while run.steps < max_steps and run.train_seconds < max_seconds:
        started = perf_counter()
        run.images += step()
        run.train_seconds += perf_counter() - started
        run.steps += 1
        if evaluate is not None and evaluate_every_steps and run.steps % evaluate_every_steps == 0:
            accuracy = evaluate(model)
            model.train()
            run.step_evaluations.append({"step": run.steps, "epoch": run.images / len(loader.dataset),
                                         "wall_seconds": run.train_seconds, "test_accuracy": accuracy})
            recent = [row["test_accuracy"] for row in run.step_evaluations[-stop_after_evaluations:]]
            if len(recent) == stop_after_evaluations and min(recent) >= stop_at_accuracy:
                break
    return run

@torch.no_grad()
def evaluate_seed(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Accuracy on images already through the seed's transform and on the model's device."""
    model.eval()
    predictions = torch.cat([model(batch).argmax(1).cpu() for batch in images.split(500)])
    return int((predictions == labels).sum()) / len(labels)

def seed_throughput(data, seed: int, s, device) -> dict:
    run = train_seed(build_seed_model(seed), seed_loader(data, seed), device, warmup_steps=s.seed_warmup_steps,
                     max_steps=s.seed_timed_steps)
    return {"seed": seed, "warmup_steps": s.seed_warmup_steps, "timed_steps": run.steps, "images": run.images,
            "seconds": run.train_seconds, "images_per_second": run.images_per_second}

def seed_accuracy_after_budget(data, test: tuple, seed: int, s, device) -> dict:
    model = build_seed_model(seed)
    run = train_seed(model, seed_loader(data, seed), device, max_seconds=s.budget_seconds)
    return {"seed": seed, "budget_seconds": s.budget_seconds, "train_seconds": run.train_seconds, "steps": run.steps,
            "images": run.images, "test_accuracy": evaluate_seed(model, *test), "test_images": len(test[1])}

def seed_time_to_accuracy(data, test: tuple, seed: int, s, device) -> dict:
    """GPU only: trained until the test accuracy has stayed at or above the target for `seed_confirm_evaluations`
    evaluations in a row, or for `seed_max_epochs`; its time is when it started staying there."""
    loader = seed_loader(data, seed)
    run = train_seed(build_seed_model(seed), loader, device, max_steps=s.seed_max_epochs * len(loader),
                     evaluate=lambda model: evaluate_seed(model, *test), evaluate_every_steps=s.evaluate_every_steps,
                     stop_at_accuracy=s.target_accuracy, stop_after_evaluations=s.seed_confirm_evaluations)
    reached = first_staying_at_or_above(run.step_evaluations, "test_accuracy", s.target_accuracy)
    return {"seed": seed, "max_epochs": s.seed_max_epochs, "steps": run.steps, "train_seconds": run.train_seconds,
            "images_per_second": run.images_per_second, "time_to_target_seconds": reached and reached["wall_seconds"],
            "reached": reached, "step_evaluations": run.step_evaluations}
