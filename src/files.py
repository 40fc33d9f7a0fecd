"""Careful file handling shared by every data route.

Datasets arrive as zips, folders or downloads from places we do not control, so every read here
assumes the input may be wrong: each failure becomes a `DataError` naming the file and the
problem, zips are checked before anything is extracted, downloads land in a temporary file that
is renamed into place only when complete, and nothing already saved is overwritten half-way.
"""
from __future__ import annotations

import hashlib
import io
import os
import tempfile
import urllib.request
import warnings
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

# Pillow refuses images above ~179 Mpx by default with a warning first; we make both an error.
Image.MAX_IMAGE_PIXELS = 50_000_000

MAX_ZIP_UNCOMPRESSED_BYTES = 2 * 1024**3  # the datasets here are < 100 MB unpacked
OS_ARTEFACTS = ("__MACOSX", ".DS_Store", "Thumbs.db", "desktop.ini", "._")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
PROJECT_ROOT = Path(__file__).resolve().parent.parent  # the repository; every published path is relative to it
UMASK = os.umask(0)  # reading the umask means setting it: done once, at import, before any threads
os.umask(UMASK)


class DataError(ValueError):
    """Any problem with input data; the message names the file and what is wrong."""


def sha256_of_source(source: Path) -> str:
    """Content hash of a file, or of a folder: relative paths and bytes of every file, in sorted order."""
    source = Path(source)
    if not source.is_dir():
        with open(source, "rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    digest = hashlib.sha256()
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        digest.update(path.relative_to(source).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def atomic_write_bytes(target: Path, payload: bytes) -> None:
    """Write to a temporary file beside `target`, then rename: readers never see half a file."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
    try:
        os.fchmod(handle, 0o666 & ~UMASK)  # mkstemp's 0600 would hide results from other users
        with os.fdopen(handle, "wb") as stream:
            stream.write(payload)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def download(url: str, target: Path, check: Callable[[Path], object], timeout_seconds: float = 30.0) -> Path:
    """Download `url` to `target`, renamed into place only when complete and `check(path)` accepts it:
    a broken transfer or wrong content leaves no file at `target`."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".download")
    try:
        with urllib.request.urlopen(url, timeout=timeout_seconds) as response, open(partial, "wb") as out:
            expected = response.headers.get("Content-Length")
            written = 0
            while chunk := response.read(1 << 20):
                out.write(chunk)
                written += len(chunk)
        if expected is not None and written != int(expected):
            raise DataError(f"{url}: download stopped after {written} of {expected} bytes")
        check(partial)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def open_checked_zip(path: Path) -> zipfile.ZipFile:
    """Open a zip after refusing entries that escape the folder and absurd unpacked sizes."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise DataError(f"{path}: not a readable zip file ({error})") from None
    for info in archive.infolist():
        name = info.filename
        parts = PurePosixPath(name.replace("\\", "/")).parts
        if name.startswith(("/", "\\")) or (parts and parts[0].endswith(":")) or ".." in parts:
            archive.close()
            raise DataError(f"{path}: entry {name!r} would be written outside the target folder; refusing the zip")
    total = sum(info.file_size for info in archive.infolist())
    if total > MAX_ZIP_UNCOMPRESSED_BYTES:
        archive.close()
        raise DataError(f"{path}: declares {total / 1e9:.1f} GB unpacked "
                        f"(limit {MAX_ZIP_UNCOMPRESSED_BYTES / 1e9:.1f} GB); refusing the zip")
    return archive


def list_source_files(source: Path) -> tuple[list[str], Callable[[str], bytes]]:
    """Relative file names in a zip or folder (OS artefacts removed with a warning) and a reader
    `read(name) -> bytes`. Zips are never extracted to disk."""
    source = Path(source)
    if not source.exists():
        raise DataError(f"{source}: no such file or folder")
    if source.is_dir():
        names = sorted(p.relative_to(source).as_posix() for p in source.rglob("*") if p.is_file())

        def read(name: str) -> bytes:
            return (source / name).read_bytes()
    else:
        archive = open_checked_zip(source)
        names = sorted(i.filename for i in archive.infolist() if not i.is_dir())

        def read(name: str) -> bytes:
            try:
                return archive.read(name)
            except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as error:
                raise DataError(f"{source}!{name}: damaged zip entry ({error})") from None
    artefacts = {n for n in names if any(part.startswith(OS_ARTEFACTS) for part in PurePosixPath(n).parts)}
    if artefacts:
        warnings.warn(f"{source}: skipped {len(artefacts)} operating-system artefact(s) such as {min(artefacts)!r}",
                      stacklevel=2)
    return [n for n in names if n not in artefacts], read


def decode_grayscale(payload: bytes, name: str) -> np.ndarray:
    """Decode PNG/JPEG bytes to a float32 array of luminance in [0, 1] (1 = white paper).

    Every mode loads the same way: palette and RGB via luminance, alpha composited onto white
    (transparent = paper), 16-bit scaled by its own range, so the same drawing saved as
    grayscale, RGB, RGBA, palette or 16-bit gives the same array.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(payload))
            image.load()
    except Exception as error:  # Pillow raises many types for damaged files
        raise DataError(f"{name}: not a readable image ({type(error).__name__}: {error})") from None
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "I;16N"):
        values = np.asarray(image, dtype=np.float32)
        scale = 65535.0 if values.max() > 255 or image.mode.startswith("I;16") else 255.0
        return np.clip(values / scale, 0.0, 1.0)
    if image.mode == "F":
        values = np.asarray(image, dtype=np.float32)
        return np.clip(values / (255.0 if values.max() > 1.0 else 1.0), 0.0, 1.0)
    if image.mode in ("P", "RGBA", "LA", "PA") or "transparency" in image.info:
        white = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, image.convert("RGBA"))
    return np.asarray(image.convert("L"), dtype=np.float32) / 255.0
