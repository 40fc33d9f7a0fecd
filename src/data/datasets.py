"""One loader per hand-made dataset: trainPart1 and testPart1 (Task 1), mnistTask3 (Task 3); MNIST is in `mnist.py`.

Each loader finds its zip or folder (`sources.find_dataset`; a labelled stand-in from `standins.py` where no real copy
exists and the budget allows), checks the layout file by file (a name that does not fit is an error naming it),
decodes and preprocesses every image once, and caches the tensors.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path, PurePosixPath

import torch

from . import preprocess, standins
from .classes import CLASS_CHARACTERS
from .files import IMAGE_SUFFIXES, DataError, SourceListing, decode_grayscale, list_source, sha256_of_source
from .mnist import load_mnist
from .preprocess import PREPROCESSINGS
from .rebuild import is_the_assignments, rebuild_from_englishhnd, rebuild_mnisttask3
from .sources import STANDIN, DataSource, cached, decode_all, find_dataset, record

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
    preprocessing: str = "mnist"  # which of PREPROCESSINGS made `images`

    def __len__(self) -> int:
        return len(self.labels)

    def raw_luminance(self, index: int):
        """The original drawing (luminance, 1 = paper) of image `index`, re-read from the source (listed once)."""
        return decode_grayscale(_reader(self.source.path)(self.files[index]), self.files[index])

    def subset(self, index) -> "CharacterImages":
        index = torch.as_tensor(index, dtype=torch.long)
        return CharacterImages(self.images[index], self.labels[index], self.geometry[index], self.ink_boxes[index],
                               self.writers[index], [self.files[i] for i in index.tolist()], self.source,
                               self.preprocessing)


@lru_cache(maxsize=4)
def _reader(path: str):
    return list_source(Path(path)).read


@dataclass
class NoisyDigits:
    """mnistTask3-layout images: the folder each image sits in, and the NNNNNN of its file name."""
    images: torch.Tensor        # [N, 1, 28, 28] float in [0, 1]
    folder_labels: torch.Tensor # [N] int64
    file_indices: torch.Tensor  # [N] int64 (-1 where the name has no number)
    source: DataSource


def _layout_problems(source: Path, found: list[tuple[str, object]]) -> None:
    problems = [problem for problem, present in found if present]
    if problems:
        raise DataError(f"{source}: " + "; ".join(problems))


def _top_level_files(names: list[str]) -> list[str]:
    return [name for name in names if "/" not in name]


# ----------------------------------------------------------------------------- trainPart1 and testPart1

def parse_trainpart1_layout(names: list[str], source: Path, require_all_classes: bool = True):
    """Map relative file names to (class index, writer); any name that does not fit is an error.
    Returns ({name: (label, writer)}, the characters of absent classes)."""
    entries, bad_folders, not_images, mismatched = {}, set(), [], []
    loose = _top_level_files(names)
    for name in [name for name in names if name not in loose]:
        path = PurePosixPath(name)
        if path.suffix.lower() != ".png":
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
        entries[name] = (label, int(file_match.group(2)) if file_match else -1)
    missing = [character for i, character in enumerate(CLASS_CHARACTERS) if i not in {l for l, _ in entries.values()}]
    _layout_problems(source, [
        (f"file(s) at the top level, outside any SampleNNN folder: {loose[:10]}", loose),
        (f"unexpected folder name(s) {sorted(bad_folders)[:10]} (expected SampleNNN, NNN = 001..062)", bad_folders),
        (f"non-image file(s) {not_images[:10]} (expected .png)", not_images),
        (f"file(s) whose imgNNN disagrees with their SampleNNN folder: {mismatched[:10]}", mismatched),
        ("no images in the trainPart1 layout (train/SampleNNN/imgNNN-MMM.png)", not names),
        (f"missing or empty class folder(s) for {missing} (Sample numbers "
         f"{[CLASS_CHARACTERS.index(c) + 1 for c in missing]})", require_all_classes and missing and entries)])
    return entries, missing


def read_trainpart1(source: Path, *, preprocessing: str = "mnist", skip_bad: bool = False,
                    require_all_classes: bool = True, kind: str = "real", route: str = "explicit path",
                    name: str = "trainPart1", listing: SourceListing | None = None) -> CharacterImages:
    """Decode and preprocess a zip or folder in the trainPart1 layout (cached by content hash). `listing`: the
    source's listing where the caller already has it (one look at an archive, handed on)."""
    source = Path(source)
    listing = listing or list_source(source)
    empty = [folder for folder in listing.empty_folders if SAMPLE_FOLDER.match(PurePosixPath(folder).name)]
    if empty:
        raise DataError(f"{source}: empty class folder(s) {empty[:10]}")
    entries, missing = parse_trainpart1_layout(listing.names, source, require_all_classes)
    if preprocessing not in PREPROCESSINGS:
        raise ValueError(f"unknown preprocessing {preprocessing!r} (use one of {PREPROCESSINGS})")
    source_hash = sha256_of_source(source)

    def build() -> dict:  # every preprocessing from one decoding (decoding is the cost)
        def transform(luminance, file):
            prepared = {variant: preprocess.prepare(luminance, variant, f"{source}: {file}")
                        for variant in PREPROCESSINGS}
            return {variant: image for variant, (image, _) in prepared.items()}, prepared["mnist"][1]

        kept, skipped = decode_all(source, list(entries), listing.read, transform, skip_bad)
        return {
            **{f"images_{variant}": torch.stack([images[variant] for _, (images, _) in kept])[:, None].contiguous()
               for variant in PREPROCESSINGS},
            "labels": torch.tensor([entries[file][0] for file, _ in kept]),
            "writers": torch.tensor([entries[file][1] for file, _ in kept]),
            "geometry": torch.tensor([box.geometry() for _, (_, box) in kept], dtype=torch.float32),
            "ink_boxes": torch.tensor([box for _, (_, box) in kept]),
            "files": [file for file, _ in kept],
            "skipped": skipped,
        }

    content = cached("trainpart1", source_hash, "+".join(PREPROCESSINGS), preprocess.PREPROCESSING_VERSION, build)
    found = record(name, kind, source, route, source_hash, len(content["files"]), skipped=content["skipped"],
                   note=f"classes absent from this set: {''.join(missing)}" if missing else "")
    return CharacterImages(content[f"images_{preprocessing}"], content["labels"], content["geometry"],
                           content["ink_boxes"], content["writers"], list(content["files"]), found, preprocessing)


def find_character_set(name: str, path: str | Path | None = None, allow_download: bool = True,
                       allow_standin: bool | None = None) -> tuple[Path, str, str]:
    """trainPart1.zip or testPart1.zip (the test set the assignment released later, `test/SampleNNN/imgNNN-MMM.png`),
    found in `find_dataset`'s order of routes (they have no stand-in)."""
    return find_dataset(name, path, None, "", allow_download, allow_standin,
                        rebuild=partial(rebuild_from_englishhnd, name), verify=partial(is_the_assignments, name))


def load_trainpart1(path: str | Path | None = None, *, preprocessing: str = "mnist", skip_bad: bool = False,
                    allow_download: bool = True, allow_standin: bool | None = None) -> CharacterImages:
    """The Task 1 training set, found by `find_character_set`'s order, preprocessed and cached."""
    location, route, kind = find_character_set("trainPart1", path, allow_download, allow_standin)
    return read_trainpart1(location, preprocessing=preprocessing, skip_bad=skip_bad, kind=kind, route=route)


def load_testpart1(path: str | Path | None = None, *, preprocessing: str = "mnist", skip_bad: bool = False,
                   allow_download: bool = True, allow_standin: bool | None = None) -> CharacterImages:
    """Task 1's test set: the same writers as trainPart1, the other 15 drawings of each class. Only ever measured,
    never used to choose anything."""
    location, route, kind = find_character_set("testPart1", path, allow_download, allow_standin)
    return read_trainpart1(location, preprocessing=preprocessing, skip_bad=skip_bad, kind=kind, route=route,
                           name="testPart1")


# ----------------------------------------------------------------------------- mnistTask3

def parse_mnisttask3_layout(names: list[str], source: Path) -> dict[str, tuple[int, int]]:
    """{name: (folder digit, NNNNNN of image_NNNNNN.jpg or -1)}; any name that does not fit is an error."""
    entries, bad_folders, not_images = {}, set(), []
    loose = _top_level_files(names)
    for name in [name for name in names if name not in loose]:
        path = PurePosixPath(name)
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            not_images.append(name)
        elif not re.fullmatch(r"\d", path.parent.name):
            bad_folders.add(path.parent.as_posix())
        else:
            match = TASK3_FILE.match(path.name)
            entries[name] = (int(path.parent.name), int(match.group(1)) if match else -1)
    missing = sorted(set(range(10)) - {label for label, _ in entries.values()})
    _layout_problems(source, [
        (f"file(s) at the top level, outside the digit folders: {loose[:10]}", loose),
        (f"unexpected folder name(s) {sorted(bad_folders)[:10]} (expected mnistTask/0 .. mnistTask/9)", bad_folders),
        (f"non-image file(s) {not_images[:10]}", not_images),
        (f"missing or empty digit folder(s) {missing}", missing and not bad_folders and not not_images)])
    return entries


def read_mnisttask3(source: Path, *, skip_bad: bool = False, kind: str = "real", route: str = "explicit path",
                    note: str = "", listing: SourceListing | None = None) -> NoisyDigits:
    """Decode a zip or folder in mnistTask3's layout (cached by content hash); `listing` as in `read_trainpart1`."""
    source = Path(source)
    listing = listing or list_source(source)
    entries = parse_mnisttask3_layout(listing.names, source)
    source_hash = sha256_of_source(source)

    def build() -> dict:
        def transform(luminance, file):
            if luminance.shape != (28, 28):
                raise DataError(f"{source}: {file} is {luminance.shape[1]}x{luminance.shape[0]}, expected 28x28")
            return torch.from_numpy(luminance)

        kept, skipped = decode_all(source, list(entries), listing.read, transform, skip_bad)
        return {"images": torch.stack([image for _, image in kept])[:, None].contiguous(),
                "folder_labels": torch.tensor([entries[file][0] for file, _ in kept]),
                "file_indices": torch.tensor([entries[file][1] for file, _ in kept]), "skipped": skipped}

    content = cached("mnisttask3", source_hash, "28", preprocess.PREPROCESSING_VERSION, build)
    found = record("mnistTask3", kind, source, route, source_hash, len(content["folder_labels"]), note,
                   content["skipped"])
    return NoisyDigits(content["images"], content["folder_labels"], content["file_indices"], found)


def load_mnisttask3(path: str | Path | None = None, *, skip_bad: bool = False, allow_download: bool = True,
                    allow_standin: bool | None = None) -> NoisyDigits:
    """The Task 3 training set: images, the folder each sits in, and its file number."""
    def build_standin(target: Path) -> None:
        images, labels, _ = load_mnist("train")
        standins.write_mnisttask3_standin(target, images, labels, seed=0)
    location, route, kind = find_dataset("mnistTask3", path, build_standin,
                                         "stand-in built from the MNIST training images", allow_download,
                                         allow_standin, rebuild=rebuild_mnisttask3,
                                         verify=partial(is_the_assignments, "mnistTask3"))
    note = (f"labels follow the guide's description: true folder with probability "
            f"{standins.TRUE_FOLDER_PROBABILITY}, else uniform over the other nine") if kind == STANDIN else ""
    return read_mnisttask3(location, skip_bad=skip_bad, kind=kind, route=route, note=note)
