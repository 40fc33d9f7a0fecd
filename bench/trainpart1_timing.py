"""How long Task 1's data takes to prepare: the first load (decode 2,480 PNGs, preprocess, write
the cache) must stay under 60 s and a cached load under 1 s.

The first load runs with PLAYMNIST_DATA_DIR pointed at an empty temporary folder (plus a copy of
the zip when it lives inside data/), so it is a true cache miss and the project's own cache under
data/cache is left untouched. Downloads are switched off: this times preparation, not a network.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
import zipfile
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from src.data import data_dir, find_trainpart1, load_trainpart1
from src.runs import project_relative
from src.files import list_source_files

FIRST_LOAD_LIMIT_SECONDS = 60.0
CACHED_LOAD_LIMIT_SECONDS = 1.0


@contextmanager
def data_folder(folder: Path):
    """PLAYMNIST_DATA_DIR set to `folder` for the duration, then put back as it was."""
    previous = os.environ.get("PLAYMNIST_DATA_DIR")
    os.environ["PLAYMNIST_DATA_DIR"] = str(folder)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("PLAYMNIST_DATA_DIR", None)
        else:
            os.environ["PLAYMNIST_DATA_DIR"] = previous


def write_cut(source: Path, files_per_class: int, target: Path) -> Path:
    """A zip in the trainPart1 layout holding the first `files_per_class` images of every class
    folder of `source` (for --quick: the same code path, a fraction of the work)."""
    names, read = list_source_files(source)
    kept: dict[str, int] = {}
    with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as archive:
        for name in names:
            folder = PurePosixPath(name).parent.as_posix()
            if kept.get(folder, 0) < files_per_class:
                archive.writestr(name, read(name))
                kept[folder] = kept.get(folder, 0) + 1
    return target


def _timed(load) -> tuple[float, object]:
    started = time.perf_counter()
    characters = load()
    return time.perf_counter() - started, characters


def time_trainpart1_preparation(source: Path | None = None, files_per_class: int | None = None) -> dict:
    """First (uncached) and cached `load_trainpart1()` times, and where the data came from."""
    location, route, kind = find_trainpart1(source, allow_download=False)
    with tempfile.TemporaryDirectory(prefix="bench-trainpart1-") as temporary:
        empty_data = Path(temporary) / "data"
        empty_data.mkdir()
        path = source
        if files_per_class is not None:
            path = write_cut(location, files_per_class, Path(temporary) / "trainPart1-cut.zip")
        elif source is None and location.parent.resolve() == data_dir().resolve():
            shutil.copy2(location, empty_data / location.name)  # found where load_trainpart1() looks
        with data_folder(empty_data):
            first_seconds, characters = _timed(lambda: load_trainpart1(path, allow_download=False))
            cached_seconds, _ = _timed(lambda: load_trainpart1(path, allow_download=False))
    if files_per_class is None:  # the record names the file and its sha256, never a machine's folder
        described = characters.source.describe()
    else:
        described = (f"{len(characters)} images ({files_per_class} per class) cut from {project_relative(location)} "
                     f"({'STAND-IN' if kind != 'real' else 'real data'}, found via: {route})")
    return {"source": described, "route": route, "standin": kind != "real", "images": len(characters),
            "cut_files_per_class": files_per_class,
            "first_load_seconds": first_seconds, "cached_load_seconds": cached_seconds,
            "first_load_limit_seconds": FIRST_LOAD_LIMIT_SECONDS, "cached_load_limit_seconds": CACHED_LOAD_LIMIT_SECONDS,
            "first_load_within_limit": first_seconds < FIRST_LOAD_LIMIT_SECONDS,
            "cached_load_within_limit": cached_seconds < CACHED_LOAD_LIMIT_SECONDS}
