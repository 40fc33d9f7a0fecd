"""Bring a drawn character to the MNIST convention, and keep what that convention throws away.

MNIST digits are white ink on black, their ink box fitted into 20x20 pixels keeping the aspect
ratio, then placed in a 28x28 field with the centre of mass at the centre (LeCun et al., 1998).
Tasks 2 and 3 transfer networks between trainPart1 and MNIST, so trainPart1 must look the same:
same polarity, scale, centring, and stroke width (the tablet strokes are ~5 px on a 1200x900
canvas; shrunk 14x they would be a third of a pixel, far thinner than MNIST's ~2.8 px).

Fitting every character into 20x20 erases its size on the canvas, which is what separates many
capitals from their lowercase twins (o/O, x/X, ...). So the ink box's size and position on the
canvas are returned beside the image as side information (`geometry`).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from .files import DataError

PREPROCESSING_VERSION = 3  # bump when the output of any function here changes; it keys the cache

# Measured on the MNIST training set with `stroke_width` below: median 2.84 px, 10-90 % 2.2-4.0 px.
MNIST_STROKE_WIDTH = 2.84
MNIST_CENTRE_OF_MASS = (14.0, 14.0)  # (row, column), measured mean over MNIST training images
FIELD = 28
FIT = 20
SUPERSAMPLE = 4  # strokes are thickened at 4x the final resolution, then averaged down
# Width (in final pixels) to thicken to before the anti-aliased shrink, which thins strokes a
# little; calibrated so that trainPart1's median `stroke_width` after preprocessing is MNIST's.
THICKENED_STROKE_WIDTH = 2.55
INK_THRESHOLD = 0.5

GEOMETRY_NAMES = ("log_height", "log_width", "centre_x", "centre_y")


class InkBox(NamedTuple):
    """The ink's bounding box on the source canvas, in pixels (end exclusive)."""
    top: int
    left: int
    bottom: int
    right: int
    canvas_height: int
    canvas_width: int

    def geometry(self) -> list[float]:
        """Size relative to the canvas height (log, so a writer's scale is an additive shift) and
        centre position relative to the canvas (0 = centre)."""
        return [
            math.log((self.bottom - self.top) / self.canvas_height),
            math.log((self.right - self.left) / self.canvas_height),
            (self.left + self.right) / 2 / self.canvas_width - 0.5,
            (self.top + self.bottom) / 2 / self.canvas_height - 0.5,
        ]


def ink_from_luminance(luminance: np.ndarray) -> torch.Tensor:
    """Ink intensity in [0, 1]; the paper colour is read off the border, so either polarity works."""
    border = np.concatenate([luminance[0], luminance[-1], luminance[:, 0], luminance[:, -1]])
    ink = torch.from_numpy(np.ascontiguousarray(luminance, dtype=np.float32))
    return 1.0 - ink if np.median(border) >= 0.5 else ink


def _inked_rows_and_columns(image: torch.Tensor, threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    inked = image > threshold
    return torch.nonzero(inked.any(dim=1)).flatten(), torch.nonzero(inked.any(dim=0)).flatten()


def find_ink_box(ink: torch.Tensor, name: str) -> InkBox:
    rows, columns = _inked_rows_and_columns(ink, INK_THRESHOLD)
    if rows.numel() == 0:
        raise DataError(f"{name}: no ink found (the image is blank)")
    return InkBox(int(rows[0]), int(columns[0]), int(rows[-1]) + 1, int(columns[-1]) + 1, *ink.shape)


def stroke_width(ink: torch.Tensor) -> torch.Tensor:
    """Mean stroke width of images [..., H, W]: a stroke of width w and length L covers w*L pixels
    and has about 2L boundary pixels, so w ~ 2 * area / boundary."""
    mask = (ink > INK_THRESHOLD).float().reshape(-1, 1, *ink.shape[-2:])
    padded = F.pad(mask, (1, 1, 1, 1))
    interior = torch.minimum(torch.minimum(padded[..., :-2, 1:-1], padded[..., 2:, 1:-1]),
                             torch.minimum(padded[..., 1:-1, :-2], padded[..., 1:-1, 2:]))  # all four neighbours ink
    boundary = (mask * (1 - interior)).sum(dim=(-1, -2))
    return (2 * mask.sum(dim=(-1, -2)) / boundary.clamp(min=1)).reshape(ink.shape[:-2])


def centre_of_mass(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(row, column) of the ink's centre of mass of images [..., H, W], in pixels."""
    mass = images.sum(dim=(-2, -1))
    rows = (images.sum(dim=-1) * torch.arange(images.shape[-2])).sum(dim=-1) / mass
    columns = (images.sum(dim=-2) * torch.arange(images.shape[-1])).sum(dim=-1) / mass
    return rows, columns


def to_mnist_convention(luminance: np.ndarray, name: str = "<image>") -> tuple[torch.Tensor, InkBox]:
    """A [H, W] luminance image (any polarity) -> a 28x28 MNIST-style image and its ink box."""
    ink = ink_from_luminance(luminance)
    box = find_ink_box(ink, name)
    crop = ink[box.top: box.bottom, box.left: box.right]

    # 1. Shrink to 4x the final size with max pooling, so no stroke disappears, leaving room for
    #    the thickening below (a crop smaller than that is enlarged smoothly instead).
    target_width = THICKENED_STROKE_WIDTH * SUPERSAMPLE
    scale = (FIT * SUPERSAMPLE - target_width) / max(crop.shape)
    height, width = max(1, round(crop.shape[0] * scale)), max(1, round(crop.shape[1] * scale))
    if height <= crop.shape[0] and width <= crop.shape[1]:
        large = F.adaptive_max_pool2d(crop[None, None], (height, width))[0, 0]
    else:
        large = F.interpolate(crop[None, None], size=(height, width), mode="bilinear", align_corners=False)[0, 0]

    # 2. Thicken strokes to MNIST's measured width (dilation with a disc), then crop to the ink again.
    missing = target_width - float(stroke_width(large))
    if missing > 1:
        radius = missing / 2
        size = 2 * math.ceil(radius) + 1
        offsets = torch.arange(size, dtype=torch.float32) - size // 2
        disc = ((offsets[:, None] ** 2 + offsets[None, :] ** 2) <= radius**2 + 0.25).float()[None, None]
        binary = (large > INK_THRESHOLD).float()[None, None]
        large = (F.conv2d(F.pad(binary, (size // 2,) * 4), disc) > 0).float()[0, 0]
        rows, columns = _inked_rows_and_columns(large, INK_THRESHOLD / 2)
        large = large[rows[0]: rows[-1] + 1, columns[0]: columns[-1] + 1]

    # 3. Average down to fit 20x20 keeping the aspect ratio (anti-aliased, like MNIST's grey edges).
    fit_scale = FIT / max(large.shape)
    height, width = max(1, round(large.shape[0] * fit_scale)), max(1, round(large.shape[1] * fit_scale))
    small = F.interpolate(large[None, None], size=(height, width), mode="bilinear", antialias=True,
                          align_corners=False)[0, 0].clamp(0, 1)
    small = small / small.max().clamp(min=1e-6)

    # 4. Place in 28x28 with the centre of mass at MNIST's centre (integer shift, as in MNIST).
    centre_row, centre_column = map(float, centre_of_mass(small))
    top = min(max(round(MNIST_CENTRE_OF_MASS[0] - centre_row), 0), FIELD - height)
    left = min(max(round(MNIST_CENTRE_OF_MASS[1] - centre_column), 0), FIELD - width)
    field = torch.zeros(FIELD, FIELD)
    field[top: top + height, left: left + width] = small
    return field, box


def plain_resize(luminance: np.ndarray, size: int = 32) -> torch.Tensor:
    """The public solutions' preprocessing (resize the whole canvas), kept for the ablation.
    Only the polarity is flipped, so the comparison isolates cropping and centring."""
    ink = ink_from_luminance(luminance)[None, None]
    return F.interpolate(ink, size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0, 0].clamp(0, 1)


def geometry_reference(geometry: torch.Tensor) -> list[float]:
    """Median log height, centre x and centre y of a set: what an average drawing looks like."""
    return [float(geometry[:, 0].median()), float(geometry[:, 2].median()), float(geometry[:, 3].median())]


def writer_relative_geometry(geometry: torch.Tensor, writers: torch.Tensor, fallback_reference: list[float],
                             minimum_images: int = 10) -> torch.Tensor:
    """Each ink box's size and position relative to its writer's medians over this set (no labels used).

    Writers differ more in overall size than capitals differ from lowercase, so size relative to the
    same writer's median character says much more about case than absolute size; likewise for where
    a writer tends to draw. Unknown writers (-1) and writers with fewer than `minimum_images` images
    are measured against `fallback_reference` (`geometry_reference` of the training set).
    """
    relative = geometry.clone()
    for writer in torch.unique(writers).tolist():
        members = writers == writer
        enough = writer >= 0 and int(members.sum()) >= minimum_images
        height, centre_x, centre_y = geometry_reference(geometry[members]) if enough else fallback_reference
        shift = torch.tensor([height, height, centre_x, centre_y], dtype=geometry.dtype, device=geometry.device)
        relative[members] -= shift
    return relative


def describe_geometry_reference(writers: torch.Tensor, mode: str, minimum_images: int = 10) -> str:
    """What the geometry input of an evaluated set was measured against, for reports: the writer-relative
    input is transductive (it uses the writer's other images in the same set) where a writer has enough images."""
    if mode != "writer":
        return "none (no geometry input)" if mode == "none" else "absolute (the ink box as measured)"
    counts = {w: int((writers == w).sum()) for w in torch.unique(writers).tolist()}
    enough = {w: n for w, n in counts.items() if w >= 0 and n >= minimum_images}
    fallback = sum(counts.values()) - sum(enough.values())
    why = f"their writer has fewer than {minimum_images} images here or no writer id"
    if not enough:
        return f"training set (fallback for all {fallback} images: {why})"
    own = (f"writer ({len(enough)} writers, {min(enough.values())}-{max(enough.values())} images each; "
           "transductive: each image is measured against its writer's other images in this set)")
    return own if not fallback else f"{own}; training set for {fallback} images (fallback: {why})"


GEOMETRY_MODES = ("none", "absolute", "writer")


def geometry_inputs(geometry: torch.Tensor, writers: torch.Tensor, mode: str,
                    fallback_reference: list[float], minimum_images: int = 10) -> torch.Tensor | None:
    """The side input a network gets, by mode: nothing, the ink box as measured, or its size
    relative to the writer (see `writer_relative_geometry`)."""
    if mode == "none":
        return None
    if mode == "absolute":
        return geometry
    if mode == "writer":
        return writer_relative_geometry(geometry, writers, fallback_reference, minimum_images)
    raise ValueError(f"unknown geometry mode {mode!r}; use one of {GEOMETRY_MODES}")
