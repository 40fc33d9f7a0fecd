"""Augmentation of whole batches on the device the data lives on.

Per image, one random affine map (rotation, shear, anisotropic scale, translation) and one smooth random
displacement field (elastic distortion, Simard, Steinkraus & Platt, 2003), combined into one sampling grid and
applied by one `grid_sample` call for the whole batch: no per-image Python, no PIL, no worker processes. With 40
drawings per class, this is what stands in for the writers we have not seen.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugmentConfig:
    rotate_degrees: float = 10.0      # uniform in [-r, r]
    shear: float = 0.15               # shear factor, uniform in [-s, s]
    scale: tuple[float, float] = (0.9, 1.1)  # uniform, drawn separately for x and y
    translate_pixels: float = 2.0     # uniform in [-t, t] on a 28-pixel field
    elastic_pixels: float = 0.0       # displacement amplitude (std) of the smooth field, in pixels
    elastic_grid: int = 4             # control points per side of the field (coarser = smoother)
    geometry_log_scale: float = 0.0   # std of a log-size jitter applied to geometry features
    stroke_width_jitter: float = 0.0  # pen width: blend towards a 3x3 max (thicker) or min (thinner), share in [-j, j]

    def to_dict(self) -> dict:
        return {**asdict(self), "scale": list(self.scale)}

    @classmethod
    def from_dict(cls, values: dict) -> "AugmentConfig":
        return cls(**{**values, "scale": tuple(values["scale"])})

    @property
    def enabled(self) -> bool:
        return bool(self.rotate_degrees or self.shear or self.scale != (1.0, 1.0) or self.translate_pixels
                    or self.elastic_pixels or self.geometry_log_scale or self.stroke_width_jitter)


NO_AUGMENTATION = AugmentConfig(0.0, 0.0, (1.0, 1.0), 0.0, 0.0, 4, 0.0, 0.0)


def _uniform(generator: torch.Generator, count: int, low: float, high: float, device) -> torch.Tensor:
    return torch.rand(count, generator=generator, device=device) * (high - low) + low


def vary_stroke_width(images: torch.Tensor, share: torch.Tensor) -> torch.Tensor:
    """Per image, a pen a little thicker (share > 0: towards the 3x3 grey dilation) or thinner (share < 0: towards
    the 3x3 erosion): writers' pens and pressures differ, and a 28x28 stroke is only 2-4 pixels wide."""
    thicker = F.max_pool2d(images, 3, stride=1, padding=1)
    thinner = -F.max_pool2d(-images, 3, stride=1, padding=1)
    share = share.view(-1, 1, 1, 1).to(images.dtype)
    return torch.where(share > 0, images + share * (thicker - images), images + share * (images - thinner))


def augment_batch(images: torch.Tensor, config: AugmentConfig, generator: torch.Generator,
                  geometry: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Distort a batch [B, 1, H, W] (and jitter its geometry's log sizes, if given)."""
    if not config.enabled:
        return images, geometry
    count, size, device = images.shape[0], images.shape[-1], images.device
    if config.stroke_width_jitter > 0:
        images = vary_stroke_width(images, _uniform(generator, count, -config.stroke_width_jitter,
                                                    config.stroke_width_jitter, device))
    angle = _uniform(generator, count, -config.rotate_degrees, config.rotate_degrees, device) * math.pi / 180
    shear = _uniform(generator, count, -config.shear, config.shear, device)
    scale_x = _uniform(generator, count, *config.scale, device)
    scale_y = _uniform(generator, count, *config.scale, device)
    shift = _uniform(generator, 2 * count, -config.translate_pixels, config.translate_pixels, device).view(count, 2)
    shift = shift * 2 / size  # pixels -> normalised coordinates
    cos, sin, zeros, ones = torch.cos(angle), torch.sin(angle), torch.zeros_like(angle), torch.ones_like(angle)
    rotation = torch.stack([cos, -sin, sin, cos], 1).view(count, 2, 2)
    shearing = torch.stack([ones, shear, zeros, ones], 1).view(count, 2, 2)
    inverse_scaling = torch.diag_embed(torch.stack([1 / scale_x, 1 / scale_y], 1))
    # A sampling grid ([-1, 1] coordinates) maps each output pixel back to where it is read from in the input.
    theta = torch.cat([rotation @ shearing @ inverse_scaling, shift[:, :, None]], dim=2)
    grid = F.affine_grid(theta, (count, 1, size, size), align_corners=False)
    if config.elastic_pixels > 0:
        coarse = torch.randn(count, 2, config.elastic_grid, config.elastic_grid, generator=generator, device=device)
        field = F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=True)
        grid = grid + field.permute(0, 2, 3, 1) * (config.elastic_pixels * 2 / size)
    augmented = F.grid_sample(images, grid.to(images.dtype), mode="bilinear", padding_mode="zeros", align_corners=False)
    if geometry is not None and config.geometry_log_scale > 0:
        # A writer who draws everything larger shifts both log sizes by the same amount.
        jitter = torch.randn(count, 1, generator=generator, device=device) * config.geometry_log_scale
        geometry = geometry.clone()
        geometry[:, :2] += jitter
    return augmented, geometry
