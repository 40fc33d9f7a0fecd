"""The CNN every task uses: a convolutional backbone and a small, replaceable classification head.

Sized for accuracy per unit of compute on a 2-core CPU: one cheap convolution at 28x28 (a layer there costs 4x
what it costs at 14x14), then the width goes to the cheap 14x14 and 7x7 stages. Batch normalisation (Ioffe &
Szegedy, 2015) after every convolution allows a high learning rate. For trainPart1 the head also sees the ink
box's geometry on the canvas, which carries what the 20x20 fit erased: whether a character was drawn large or small.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import torch
import torch.nn as nn

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081  # input standardisation, measured on MNIST's training set


@dataclass(frozen=True)
class ModelConfig:
    num_classes: int
    geometry_features: int = 0          # 0: image only; 4: with preprocess.GEOMETRY_NAMES
    widths: tuple[int, int, int] = (24, 48, 96)
    head_dropout: float = 0.1

    def to_dict(self) -> dict:
        return {**asdict(self), "widths": list(self.widths)}

    @classmethod
    def from_dict(cls, values: dict) -> "ModelConfig":
        return cls(**{**values, "widths": tuple(values["widths"])})


def convolution_block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class Backbone(nn.Module):
    """28x28 -> 3x3 feature map -> flat vector. Pooling to 3x3 (not 1x1) keeps where a stroke is,
    which a global pool would throw away (6 vs 9, p vs d)."""

    def __init__(self, widths: tuple[int, int, int]):
        super().__init__()
        first, second, third = widths
        self.stage1 = nn.Sequential(convolution_block(1, first), nn.MaxPool2d(2))                # 14x14
        self.stage2 = nn.Sequential(convolution_block(first, second), convolution_block(second, second),
                                    nn.MaxPool2d(2))                                             # 7x7
        self.stage3 = nn.Sequential(convolution_block(second, third), convolution_block(third, third),
                                    nn.AdaptiveMaxPool2d(3))                                     # 3x3
        self.output_features = third * 9

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.stage3(self.stage2(self.stage1(images))).flatten(1)


class ClassifierHead(nn.Module):
    """Linear classifier on [image features, standardised geometry]."""

    def __init__(self, image_features: int, geometry_features: int, num_classes: int, dropout: float):
        super().__init__()
        self.geometry_features = geometry_features
        self.geometry_norm = nn.BatchNorm1d(geometry_features) if geometry_features else None
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(image_features + geometry_features, num_classes)

    def forward(self, features: torch.Tensor, geometry: torch.Tensor | None) -> torch.Tensor:
        if self.geometry_features:
            if geometry is None:
                raise ValueError(f"this network needs {self.geometry_features} geometry features per image")
            features = torch.cat([features, self.geometry_norm(geometry.to(features.dtype))], dim=1)
        return self.linear(self.dropout(features))


class CharacterCNN(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.register_buffer("input_mean", torch.tensor(MNIST_MEAN), persistent=False)
        self.register_buffer("input_std", torch.tensor(MNIST_STD), persistent=False)
        self.backbone = Backbone(config.widths)
        self.head = ClassifierHead(self.backbone.output_features, config.geometry_features,
                                   config.num_classes, config.head_dropout)

    def forward(self, images: torch.Tensor, geometry: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.backbone((images - self.input_mean) / self.input_std), geometry)


def build_model(config: ModelConfig, seed: int | None = None) -> CharacterCNN:
    """A freshly initialised network; with `seed`, the initial weights depend on nothing else."""
    if seed is None:
        return CharacterCNN(config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return CharacterCNN(config)


def with_new_head(trained: CharacterCNN, num_classes: int, seed: int | None = None) -> tuple[CharacterCNN, dict]:
    """A copy of `trained` for transfer, without geometry inputs: the backbone's weights kept, the head
    replaced unless it already has the wanted shape. Returns the network and the names of kept and new weights."""
    network = build_model(replace(trained.config, num_classes=num_classes, geometry_features=0), seed)
    source, target = trained.state_dict(), network.state_dict()
    # The backbone always fits (same widths); a head tensor only where its shape is unchanged.
    kept = [name for name, value in target.items() if name in source and source[name].shape == value.shape]
    new = [name for name in target if name not in kept]
    network.load_state_dict({**target, **{name: source[name] for name in kept}})
    return network, {"kept": kept, "new": new}


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
