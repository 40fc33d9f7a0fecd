"""The offline stand-in for mnistTask3.zip, for a clone that has neither the archive nor a way to rebuild it.

It exercises the code, it is not the science, and every result trained on it says STAND-IN: the MNIST training images
as JPEGs in mnistTask3's layout, each in its true digit's folder with probability p, else in one of the other nine
uniformly (the structure the team's guide describes). trainPart1 and testPart1 have no stand-in: without the archives
or Chars74K's EnglishHnd.tgz to rebuild them from, the loaders stop and say how to get them.
"""
import io
import zipfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..settings import atomic_write_bytes

ZIP_DATE = (2020, 1, 1, 0, 0, 0)       # fixed entry dates: the same seed gives the same bytes
TRUE_FOLDER_PROBABILITY = 0.001        # an image sits in its own digit's folder


def mnisttask3_standin_folders(labels: torch.Tensor, seed: int = 0,
                               true_folder_probability: float = TRUE_FOLDER_PROBABILITY) -> torch.Tensor:
    """Each image's folder: its true digit with probability p, else one of the other nine uniformly."""
    labels, generator = labels.numpy(), np.random.default_rng(seed)
    keep_true = generator.random(len(labels)) < true_folder_probability
    other = (labels + generator.integers(1, 10, len(labels))) % 10
    return torch.from_numpy(np.where(keep_true, labels, other))


def write_mnisttask3_standin(target_zip, images: torch.Tensor, labels: torch.Tensor, seed: int = 0,
                             true_folder_probability: float = TRUE_FOLDER_PROBABILITY) -> Path:
    """Images float [N, 1, 28, 28] in [0, 1] as `mnistTask/<folder>/image_<index:06d>.jpg` (quality 75)."""
    folders = mnisttask3_standin_folders(labels, seed, true_folder_probability).tolist()
    pixels = (images[:, 0] * 255).round().to(torch.uint8).numpy()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for index, folder in enumerate(folders):
            encoded = io.BytesIO()
            Image.fromarray(pixels[index]).save(encoded, format="JPEG", quality=75)
            archive.writestr(zipfile.ZipInfo(f"mnistTask/{folder}/image_{index:06d}.jpg", ZIP_DATE), encoded.getvalue())
    atomic_write_bytes(Path(target_zip), buffer.getvalue())
    return Path(target_zip)
