"""Generators for small test data in each dataset's layout."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from src.data.classes import CLASS_CHARACTERS


def draw_character(label: int, writer: int, canvas=(240, 180), scale: float = 1.0) -> Image.Image:
    """A distinct stroke pattern per class (a polyline through class-seeded points), placed and
    sized per writer; black ink on white, like trainPart1."""
    generator = np.random.default_rng(label)
    points = generator.uniform(0.0, 1.0, size=(4, 2))
    size = 60 * scale * (1.0 if label < 36 else 0.6) * (0.8 + 0.05 * (writer % 8))
    left, top = 40 + 7 * (writer % 5), 30 + 5 * (writer % 4)
    image = Image.new("RGB", canvas, "white")
    draw = ImageDraw.Draw(image)
    draw.line([(left + x * size, top + y * size) for x, y in points], fill="black", width=3)
    return image


def bar_digits(count: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A learnable ten-class toy in MNIST's convention: images [N, 1, 28, 28] in [0, 1] whose class
    (label = index % 10) is the row of a bright bar, on seeded noise of up to 0.2."""
    labels = torch.arange(count) % 10
    images = torch.rand(count, 1, 28, 28, generator=torch.Generator().manual_seed(seed)) * 0.2
    for index, label in enumerate(labels.tolist()):
        images[index, 0, 4 + 2 * label: 6 + 2 * label, 6:22] = 1.0
    return images, labels


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def trainpart1_entries(classes: str = CLASS_CHARACTERS, writers=range(1, 3), prefix: str = "train/"):
    for character in classes:
        number = CLASS_CHARACTERS.index(character) + 1
        for writer in writers:
            image = draw_character(number - 1, writer)
            yield f"{prefix}Sample{number:03d}/img{number:03d}-{writer:03d}.png", png_bytes(image)


def write_zip(path: Path, entries) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        for name, payload in entries:
            archive.writestr(name, payload)
    return path


def write_folder(root: Path, entries) -> Path:
    for name, payload in entries:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(payload)
    return root


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def englishhnd_entries(writers=range(1, 3)):
    """A tiny EnglishHnd in the official archive's layout (`English/Hnd/Img/SampleNNN/imgNNN-MMM.png`), with a
    pen-trajectory file beside it as the real archive has other folders: (member name, bytes)."""
    for name, payload in trainpart1_entries(writers=writers, prefix=""):
        yield f"English/Hnd/Img/{name}", payload
    yield "English/Hnd/Trj/Sample001/img001-001.txt", b"0 0\n1 1\n"


def write_tgz(path: Path, entries, links=()) -> Path:
    """A .tgz of (name, bytes) files, plus (name, target, tarfile type) link members for the refusal tests."""
    import tarfile
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as archive:
        for name, payload in entries:
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))
        for name, target, kind in links:
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, target
            archive.addfile(info)
    return path
