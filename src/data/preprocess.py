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
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from .files import DataError
from .labelled import LabelledImages

PREPROCESSING_VERSION = 4  # bump when the output of any function here changes; it keys the cache

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


def _disc(radius: float) -> torch.Tensor:
    size = 2 * math.ceil(radius) + 1
    offsets = torch.arange(size, dtype=torch.float32) - size // 2
    return ((offsets[:, None] ** 2 + offsets[None, :] ** 2) <= radius**2 + 0.25).float()[None, None]


def _crop_to_ink(image: torch.Tensor) -> torch.Tensor:
    rows, columns = _inked_rows_and_columns(image, INK_THRESHOLD / 2)
    return image[rows[0]: rows[-1] + 1, columns[0]: columns[-1] + 1]


def to_mnist_convention(luminance: np.ndarray, name: str = "<image>", thin_thick_strokes: bool = False,
                        field: int = FIELD, fit: int = FIT) -> tuple[torch.Tensor, InkBox]:
    """A [H, W] luminance image (any polarity) -> a 28x28 MNIST-style image and its ink box. Thin strokes are always
    thickened to MNIST's width; with `thin_thick_strokes`, strokes thicker than it are also eroded down to it. A larger
    `field` and `fit` give the same convention at a finer resolution (centre of mass in the middle, strokes as thick
    relative to the fit)."""
    ink = ink_from_luminance(luminance)
    box = find_ink_box(ink, name)
    crop = ink[box.top: box.bottom, box.left: box.right]

    # 1. Shrink to 4x the final size with max pooling, so no stroke disappears, leaving room for
    #    the thickening below (a crop smaller than that is enlarged smoothly instead).
    target_width = THICKENED_STROKE_WIDTH * SUPERSAMPLE * (fit / FIT)
    scale = (fit * SUPERSAMPLE - target_width) / max(crop.shape)
    height, width = max(1, round(crop.shape[0] * scale)), max(1, round(crop.shape[1] * scale))
    if height <= crop.shape[0] and width <= crop.shape[1]:
        large = F.adaptive_max_pool2d(crop[None, None], (height, width))[0, 0]
    else:
        large = F.interpolate(crop[None, None], size=(height, width), mode="bilinear", align_corners=False)[0, 0]

    # 2. Thicken strokes to MNIST's measured width (dilation with a disc), then crop to the ink again.
    #    With `thin_thick_strokes`, a stroke thicker than that is eroded (a pixel stays ink only if the whole disc
    #    around it is ink) by the disc whose result measures closest to the target; a disc is discrete, so the
    #    radius is chosen by measuring rather than computed. An erosion that leaves no ink is never chosen.
    missing = target_width - float(stroke_width(large))
    binary = (large > INK_THRESHOLD).float()[None, None]
    if missing > 1:
        disc = _disc(missing / 2)
        large = _crop_to_ink((F.conv2d(F.pad(binary, (disc.shape[-1] // 2,) * 4), disc) > 0).float()[0, 0])
    elif thin_thick_strokes and missing < -1:
        candidates = []
        for radius in torch.arange(0.5, -missing / 2 + 1.01, 0.5).tolist():
            disc = _disc(radius)
            eroded = (F.conv2d(F.pad(binary, (disc.shape[-1] // 2,) * 4), disc) >= disc.sum() - 0.5).float()[0, 0]
            if eroded.any():
                candidates.append((abs(float(stroke_width(eroded)) - target_width), radius, eroded))
        if candidates:
            large = _crop_to_ink(min(candidates, key=lambda candidate: candidate[:2])[2])

    # 3. Average down to fit 20x20 keeping the aspect ratio (anti-aliased, like MNIST's grey edges).
    fit_scale = fit / max(large.shape)
    height, width = max(1, round(large.shape[0] * fit_scale)), max(1, round(large.shape[1] * fit_scale))
    small = F.interpolate(large[None, None], size=(height, width), mode="bilinear", antialias=True,
                          align_corners=False)[0, 0].clamp(0, 1)
    small = small / small.max().clamp(min=1e-6)

    # 4. Place in 28x28 with the centre of mass at MNIST's centre (integer shift, as in MNIST).
    centre_row, centre_column = map(float, centre_of_mass(small))
    centre = [coordinate * field / FIELD for coordinate in MNIST_CENTRE_OF_MASS]
    top = min(max(round(centre[0] - centre_row), 0), field - height)
    left = min(max(round(centre[1] - centre_column), 0), field - width)
    canvas = torch.zeros(field, field)
    canvas[top: top + height, left: left + width] = small
    return canvas, box


def plain_resize(luminance: np.ndarray, size: int = 32) -> torch.Tensor:
    """The public solutions' preprocessing (resize the whole canvas), kept for the ablation.
    Only the polarity is flipped, so the comparison isolates cropping and centring."""
    ink = ink_from_luminance(luminance)[None, None]
    return F.interpolate(ink, size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0, 0].clamp(0, 1)


def geometry_reference(geometry: torch.Tensor) -> list[float]:
    """Median log height, centre x and centre y of a set: what an average drawing looks like."""
    return [float(geometry[:, 0].median()), float(geometry[:, 2].median()), float(geometry[:, 3].median())]


def writer_references(geometry: torch.Tensor, writers: torch.Tensor,
                      minimum_images: int = 10) -> dict[int, list[float]]:
    """`geometry_reference` of each writer (id >= 0) with at least `minimum_images` images in the set: how large and
    where that writer draws an average character. A network stores its training writers' references, so a later
    drawing by one of them is measured against the writer's training drawings (no labels are used)."""
    references = {}
    for writer in torch.unique(writers).tolist():
        members = writers == writer
        if writer >= 0 and int(members.sum()) >= minimum_images:
            references[int(writer)] = geometry_reference(geometry[members])
    return references


def writer_relative_geometry(geometry: torch.Tensor, writers: torch.Tensor, fallback_reference: list[float],
                             minimum_images: int = 10,
                             known_references: dict[int, list[float]] | None = None) -> torch.Tensor:
    """Each ink box's size and position relative to its writer's medians (no labels used).

    Writers differ more in overall size than capitals differ from lowercase, so size relative to the
    same writer's median character says much more about case than absolute size; likewise for where
    a writer tends to draw. A writer's medians come from `known_references` (the training set's, for a writer the
    network was trained on), else from the writer's images in this set when there are at least `minimum_images`
    (transductive), else `fallback_reference` (`geometry_reference` of the training set; also for unknown writers, -1).
    """
    known_references = known_references or {}
    own = writer_references(geometry, writers, minimum_images)
    relative = geometry.clone()
    for writer in torch.unique(writers).tolist():
        members = writers == writer
        height, centre_x, centre_y = known_references.get(writer) or own.get(writer) or fallback_reference
        shift = torch.tensor([height, height, centre_x, centre_y], dtype=geometry.dtype, device=geometry.device)
        relative[members] -= shift
    return relative


GEOMETRY_MODES = ("none", "absolute", "writer")
PREPROCESSINGS = ("mnist", "mnist_thinned", "resize32")  # MNIST's convention; with thick strokes thinned; plain resize


def prepare(luminance: np.ndarray, preprocessing: str, name: str = "<image>") -> tuple[torch.Tensor, InkBox]:
    """One drawing as a network's image input, by the preprocessing its network was trained with, and its ink box."""
    if preprocessing == "resize32":
        return plain_resize(luminance, 32), find_ink_box(ink_from_luminance(luminance), name)
    if preprocessing not in PREPROCESSINGS:
        raise ValueError(f"unknown preprocessing {preprocessing!r} (use one of {PREPROCESSINGS})")
    return to_mnist_convention(luminance, name, thin_thick_strokes=preprocessing == "mnist_thinned")


@dataclass
class GeometryReferences:
    """What a drawing's ink box is measured against, all from training drawings: the training set's median drawing
    (the fallback) and each training writer's median drawing. A network stores them, so a later drawing by one of its
    training writers is measured against that writer's training drawings (no labels are used)."""
    training_set: list[float]
    writers: dict[int, list[float]]

    @classmethod
    def measure(cls, geometry: torch.Tensor, writers: torch.Tensor, minimum_images: int) -> "GeometryReferences":
        return cls(geometry_reference(geometry), writer_references(geometry, writers, minimum_images))


def network_inputs(characters, geometry_mode: str, references: GeometryReferences, minimum_images: int = 10,
                   known_writers: bool = True) -> LabelledImages:
    """Task 1's network inputs for drawings (anything with images, labels, geometry and writers): the images and the
    geometry side input of `geometry_mode`. A drawing by a training writer is measured against that writer's training
    drawings when `known_writers`, else against the writer's drawings in this set where it has `minimum_images`, else
    against the training set. Training, `evaluate` and `recognise` all read drawings through this function."""
    geometry = geometry_inputs(characters.geometry, characters.writers, geometry_mode, references.training_set,
                               minimum_images, references.writers if known_writers else None)
    return LabelledImages(characters.images, characters.labels, geometry)


def geometry_inputs(geometry: torch.Tensor, writers: torch.Tensor, mode: str, fallback_reference: list[float],
                    minimum_images: int = 10, known_references: dict[int, list[float]] | None = None
                    ) -> torch.Tensor | None:
    """The side input a network gets, by mode: nothing, the ink box as measured, or its size and place relative to
    the writer (`writer_relative_geometry`)."""
    if mode == "none":
        return None
    if mode == "absolute":
        return geometry
    if mode == "writer":
        return writer_relative_geometry(geometry, writers, fallback_reference, minimum_images, known_references)
    raise ValueError(f"unknown geometry mode {mode!r}; use one of {GEOMETRY_MODES}")
