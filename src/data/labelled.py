"""What every training run consumes: images with their labels, and optional side information per image."""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class LabelledImages:
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
