"""One loader per hand-made dataset: trainPart1 (Task 1) and mnistTask3 (Task 3).

Each loader finds its zip or folder (`sources.find_dataset`), checks the layout file by file (a
name that does not fit is an error naming it), decodes and preprocesses every image once, and
caches the tensors by the source's sha256. Where no real copy exists and the budget allows, it
builds a labelled stand-in (`standins.py`) in the same layout and reads that the same way.
MNIST itself lives in `mnist.py`.
"""
from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import torch

from . import preprocess, standins
from .classes import CLASS_CHARACTERS
from .files import IMAGE_SUFFIXES, DataError, decode_grayscale, list_source_files, sha256_of_source
from .mnist import load_mnist
from .sources import DataSource, cache_path, decode_all, find_dataset, load_cache, record, save_cache

TRAINPART1_URL = "https://www.dropbox.com/s/pan6mutc5xj5kj0/trainPart1.zip?dl=1"
MNISTTASK3_URL = "https://www.dropbox.com/s/otc12z2w7f7xm8z/mnistTask3.zip?dl=1"
PREPROCESSINGS = ("mnist", "resize32")  # MNIST's convention; the public solutions' plain 32x32 resize

SAMPLE_FOLDER = re.compile(r"^Sample(\d{3})$")
SAMPLE_FILE = re.compile(r"^img(\d{3})-(\d{3})\.png$", re.IGNORECASE)
TASK3_FILE = re.compile(r"^image_(\d+)\.jpe?g$", re.IGNORECASE)


@dataclass
class CharacterImages:
    """trainPart1-layout images, preprocessed. `writers` holds the sample number MMM (-1 unknown)."""
    images: torch.Tensor        # [N, 1, 28, 28] float in [0, 1] (or [N, 1, 32, 32] for "resize32")
    labels: torch.Tensor        # [N] int64 index into CLASS_CHARACTERS
    geometry: torch.Tensor      # [N, 4] see preprocess.GEOMETRY_NAMES
    ink_boxes: torch.Tensor     # [N, 6] top, left, bottom, right, canvas height, canvas width
    writers: torch.Tensor       # [N] int64
    files: list[str]
    source: DataSource

    def __len__(self) -> int:
        return len(self.labels)

    def raw_luminance(self, index: int):
        """The original drawing (luminance, 1 = paper) of image `index`, re-read from the source."""
        names, read = list_source_files(Path(self.source.path))
        name = self.files[index]
        return decode_grayscale(read(name), name)

    def subset(self, index) -> "CharacterImages":
        index = torch.as_tensor(index, dtype=torch.long)
        return CharacterImages(self.images[index], self.labels[index], self.geometry[index],
                               self.ink_boxes[index], self.writers[index],
                               [self.files[i] for i in index.tolist()], self.source)


@dataclass
class NoisyDigits:
    """mnistTask3-layout images: the folder each image sits in, and the NNNNNN of its file name."""
    images: torch.Tensor        # [N, 1, 28, 28] float in [0, 1]
    folder_labels: torch.Tensor # [N] int64
    file_indices: torch.Tensor  # [N] int64 (-1 where the name has no number)
    source: DataSource


# ----------------------------------------------------------------------------- trainPart1

def parse_trainpart1_layout(names: list[str], source: Path, require_all_classes: bool = True):
    """Map relative file names to (class index, writer); any name that does not fit is an error."""
    entries, bad_folders, not_images, mismatched = [], set(), [], []
    classes_seen, folders_seen = set(), set()
    for name in names:
        path = PurePosixPath(name)
        if path.suffix.lower() not in (".png",):
            not_images.append(name)
            continue
        folder = SAMPLE_FOLDER.match(path.parent.name)
        if folder is None or not 1 <= int(folder.group(1)) <= len(CLASS_CHARACTERS):
            bad_folders.add(path.parent.as_posix())
            continue
        label = int(folder.group(1)) - 1
        file_match = SAMPLE_FILE.match(path.name)
        if file_match and int(file_match.group(1)) - 1 != label:
            mismatched.append(name)
            continue
        writer = int(file_match.group(2)) if file_match else -1
        entries.append((name, label, writer))
        classes_seen.add(label)
        folders_seen.add(path.parent.as_posix())
    problems = []
    if bad_folders:
        problems.append(f"unexpected folder name(s) {sorted(bad_folders)[:10]} (expected SampleNNN, NNN = 001..062)")
    if not_images:
        problems.append(f"non-image file(s) {not_images[:10]} (expected .png)")
    if mismatched:
        problems.append(f"file(s) whose imgNNN disagrees with their SampleNNN folder: {mismatched[:10]}")
    if not entries and not problems:
        problems.append("no images in the trainPart1 layout (train/SampleNNN/imgNNN-MMM.png)")
    missing = [CLASS_CHARACTERS[i] for i in range(len(CLASS_CHARACTERS)) if i not in classes_seen]
    if require_all_classes and missing and entries:
        problems.append(f"missing or empty class folder(s) for {missing} (Sample numbers "
                        f"{[CLASS_CHARACTERS.index(c) + 1 for c in missing]})")
    if problems:
        raise DataError(f"{source}: " + "; ".join(problems))
    return entries, missing


def _find_empty_folders(source: Path, names: list[str]) -> list[str]:
    """Folders that exist but hold no file (a zip lists them as entries ending in '/')."""
    if source.is_dir():
        return sorted(p.relative_to(source).as_posix() for p in source.rglob("Sample*")
                      if p.is_dir() and not any(p.iterdir()))
    with zipfile.ZipFile(source) as archive:
        folders = {i.filename.rstrip("/") for i in archive.infolist() if i.is_dir()}
    used = {PurePosixPath(n).parent.as_posix() for n in names}
    return sorted(f for f in folders if SAMPLE_FOLDER.match(PurePosixPath(f).name) and f not in used)


def read_trainpart1(source: Path, *, preprocessing: str = "mnist", skip_bad: bool = False,
                    require_all_classes: bool = True, kind: str = "real", route: str = "explicit path",
                    name: str = "trainPart1") -> CharacterImages:
    """Decode and preprocess a zip or folder in the trainPart1 layout (cached by content hash)."""
    source = Path(source)
    names, read = list_source_files(source)
    empty = _find_empty_folders(source, names)
    if empty:
        raise DataError(f"{source}: empty class folder(s) {empty[:10]}")
    entries, missing = parse_trainpart1_layout(names, source, require_all_classes)
    source_hash = sha256_of_source(source)
    found = record(name, kind, source, route, source_hash, len(entries))
    if missing:
        found.note = f"classes absent from this set: {''.join(missing)}"
    if preprocessing not in PREPROCESSINGS:
        raise ValueError(f"unknown preprocessing {preprocessing!r} (use one of {PREPROCESSINGS})")
    cache = cache_path("trainpart1", source_hash, "+".join(PREPROCESSINGS), preprocess.PREPROCESSING_VERSION)
    cached = load_cache(cache)
    if cached is None:
        cached = _preprocess_trainpart1(entries, read, skip_bad, source)
        if not cached["skipped"]:
            save_cache(cache, cached)
    found.skipped = list(cached["skipped"])
    found.files = len(cached["files"])
    return CharacterImages(cached[f"images_{preprocessing}"], cached["labels"], cached["geometry"], cached["ink_boxes"],
                           cached["writers"], list(cached["files"]), found)


def _preprocess_trainpart1(entries, read, skip_bad: bool, source: Path) -> dict:
    """Decode every image once and produce every preprocessing from it (decoding is the cost)."""
    labels_by_name = {name: (label, writer) for name, label, writer in entries}

    def decode_one(name, payload):
        luminance = decode_grayscale(payload, f"{source}!{name}" if source.is_file() else str(source / name))
        image, box = preprocess.to_mnist_convention(luminance, f"{source}: {name}")
        return {"mnist": image, "resize32": preprocess.plain_resize(luminance, 32)}, box

    previous_threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the pool's threads each run one image; avoid oversubscription
    try:
        kept, skipped = decode_all([e[0] for e in entries], read, decode_one, skip_bad)
    finally:
        torch.set_num_threads(previous_threads)
    if not kept:
        raise DataError(f"{source}: no readable images")
    boxes = [box for _, (_, box) in kept]
    return {
        **{f"images_{variant}": torch.stack([images[variant] for _, (images, _) in kept])[:, None].contiguous()
           for variant in PREPROCESSINGS},
        "labels": torch.tensor([labels_by_name[name][0] for name, _ in kept]),
        "writers": torch.tensor([labels_by_name[name][1] for name, _ in kept]),
        "geometry": torch.tensor([box.geometry() for box in boxes], dtype=torch.float32),
        "ink_boxes": torch.tensor([[b.top, b.left, b.bottom, b.right, b.canvas_height, b.canvas_width] for b in boxes]),
        "files": [name for name, _ in kept],
        "skipped": skipped,
    }


def find_trainpart1(path: str | Path | None = None, allow_download: bool = True,
                    allow_standin: bool | None = None) -> tuple[Path, str, str]:
    return find_dataset("trainPart1", path, "PLAYMNIST_TRAINPART1", "trainPart1.zip", TRAINPART1_URL,
                         parse_trainpart1_layout, lambda target: standins.write_trainpart1_standin(target, seed=0),
                        "synthetic stand-in", allow_download, allow_standin)


def load_trainpart1(path: str | Path | None = None, *, preprocessing: str = "mnist", skip_bad: bool = False,
                    allow_download: bool = True, allow_standin: bool | None = None) -> CharacterImages:
    """The Task 1 training set, found by `find_trainpart1`'s order, preprocessed and cached."""
    location, route, kind = find_trainpart1(path, allow_download, allow_standin)
    return read_trainpart1(location, preprocessing=preprocessing, skip_bad=skip_bad, kind=kind, route=route)


# ----------------------------------------------------------------------------- mnistTask3

def parse_mnisttask3_layout(names: list[str], source: Path):
    entries, bad_folders, not_images = [], set(), []
    for name in names:
        path = PurePosixPath(name)
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            not_images.append(name)
            continue
        if not re.fullmatch(r"\d", path.parent.name):
            bad_folders.add(path.parent.as_posix())
            continue
        match = TASK3_FILE.match(path.name)
        entries.append((name, int(path.parent.name), int(match.group(1)) if match else -1))
    problems = []
    if bad_folders:
        problems.append(f"unexpected folder name(s) {sorted(bad_folders)[:10]} (expected mnistTask/0 .. mnistTask/9)")
    if not_images:
        problems.append(f"non-image file(s) {not_images[:10]}")
    missing = sorted(set(range(10)) - {label for _, label, _ in entries})
    if missing and not problems:
        problems.append(f"missing or empty digit folder(s) {missing}")
    if problems:
        raise DataError(f"{source}: " + "; ".join(problems))
    return entries


def read_mnisttask3(source: Path, *, skip_bad: bool = False, kind: str = "real", route: str = "explicit path",
                    note: str = "") -> NoisyDigits:
    source = Path(source)
    names, read = list_source_files(source)
    entries = parse_mnisttask3_layout(names, source)
    source_hash = sha256_of_source(source)
    found = record("mnistTask3", kind, source, route, source_hash, len(entries), note=note)
    cache = cache_path("mnisttask3", source_hash, "28", preprocess.PREPROCESSING_VERSION)
    cached = load_cache(cache)
    if cached is None:
        by_name = {name: (label, index) for name, label, index in entries}

        def decode_one(name, payload):
            luminance = decode_grayscale(payload, f"{source}!{name}" if source.is_file() else str(source / name))
            if luminance.shape != (28, 28):
                raise DataError(f"{source}: {name} is {luminance.shape[1]}x{luminance.shape[0]}, expected 28x28")
            return torch.from_numpy(luminance)

        kept, skipped = decode_all([e[0] for e in entries], read, decode_one, skip_bad)
        cached = {
            "images": torch.stack([image for _, image in kept])[:, None].contiguous(),
            "folder_labels": torch.tensor([by_name[name][0] for name, _ in kept]),
            "file_indices": torch.tensor([by_name[name][1] for name, _ in kept]),
            "skipped": skipped,
        }
        if not skipped:
            save_cache(cache, cached)
    found.skipped = list(cached["skipped"])
    found.files = len(cached["folder_labels"])
    return NoisyDigits(cached["images"], cached["folder_labels"], cached["file_indices"], found)


def find_mnisttask3(path: str | Path | None = None, allow_download: bool = True,
                    allow_standin: bool | None = None) -> tuple[Path, str, str]:
    return find_dataset("mnistTask3", path, "PLAYMNIST_MNISTTASK3", "mnistTask3.zip", MNISTTASK3_URL,
                         parse_mnisttask3_layout, _build_mnisttask3_standin,
                         "stand-in built from the MNIST training images", allow_download, allow_standin)


def load_mnisttask3(path: str | Path | None = None, *, skip_bad: bool = False, allow_download: bool = True,
                    allow_standin: bool | None = None) -> NoisyDigits:
    """The Task 3 training set: images, the folder each sits in, and its file number."""
    location, route, kind = find_mnisttask3(path, allow_download, allow_standin)
    note = ""
    if kind == "stand-in":
        note = (f"labels follow the guide's description: true folder with probability "
                f"{standins.TRUE_FOLDER_PROBABILITY}, else uniform over the other nine")
    return read_mnisttask3(location, skip_bad=skip_bad, kind=kind, route=route, note=note)


def _build_mnisttask3_standin(target: Path) -> None:
    images, labels, _ = load_mnist("train")
    standins.write_mnisttask3_standin(target, images, labels, seed=0)
