"""Careful file handling shared by every data route.

Datasets arrive as zips, folders or downloads from places we do not control, so every read here
assumes the input may be wrong: each failure becomes a `DataError` naming the file and the
problem, zips are checked before anything is extracted, downloads land in a temporary file that
is renamed into place only when complete, and nothing already saved is overwritten half-way.
"""
from __future__ import annotations

import gzip
import hashlib
import http.client
import io
import os
import tarfile
import urllib.request
import warnings
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image
from tqdm import TqdmWarning

with warnings.catch_warnings():  # a kernel without ipywidgets: tqdm.auto falls back to text bars, and says so
    warnings.simplefilter("ignore", TqdmWarning)
    from tqdm.auto import tqdm

# Pillow refuses images above ~179 Mpx by default with a warning first; we make both an error.
Image.MAX_IMAGE_PIXELS = 50_000_000

MAX_ZIP_UNCOMPRESSED_BYTES = 2 * 1024**3  # the datasets here are < 100 MB unpacked (the same rule for tar members)
MAX_DOWNLOAD_BYTES = 1024**3  # the largest archive fetched here is tens of MB
OS_ARTEFACTS = ("__MACOSX", ".DS_Store", "Thumbs.db", "desktop.ini", "._")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


class DataError(ValueError):
    """Any problem with input data; the message names the file and what is wrong."""


def sha256_of_source(source: Path, pattern: str = "*") -> str:
    """Content hash of a file, or of a folder: relative paths and bytes of every file (matching `pattern`, at any
    depth), in sorted order."""
    source = Path(source)
    if not source.is_dir():
        with open(source, "rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    digest = hashlib.sha256()
    for path in sorted(p for p in source.rglob(pattern) if p.is_file()):
        digest.update(path.relative_to(source).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def download(url: str, target: Path, check: Callable[[Path], object], timeout_seconds: float = 30.0,
             progress: bool = False, max_bytes: int = MAX_DOWNLOAD_BYTES) -> Path:
    """Download `url` to `target`, renamed into place only when complete and `check(path)` accepts it:
    a broken transfer or wrong content leaves no file at `target`. Downloads are not resumed: a failed one
    is deleted and the next call starts cleanly (the archives here are tens of MB). `progress` shows a bar."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".download")
    written, expected = 0, None
    try:
        try:
            with urllib.request.urlopen(url, timeout=timeout_seconds) as response, open(partial, "wb") as out, \
                    tqdm(desc=target.name, unit="B", unit_scale=True, disable=not progress) as bar:
                expected = response.headers.get("Content-Length")
                if expected is not None and (not expected.isdigit() or int(expected) > max_bytes):
                    raise DataError(f"{url}: declares Content-Length {expected!r} (limit {max_bytes} bytes); "
                                    f"refusing the download")
                bar.total = int(expected) if expected is not None else None
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    written += len(chunk)
                    bar.update(len(chunk))
                    if written > max_bytes:
                        raise DataError(f"{url}: more than {max_bytes} bytes; refusing the download")
        except http.client.HTTPException as error:  # a connection cut mid-body (IncompleteRead) is not an OSError
            raise DataError(f"{url}: download stopped after {written} of {expected or 'unknown'} bytes "
                            f"({type(error).__name__})") from None
        if expected is not None and written != int(expected):
            raise DataError(f"{url}: download stopped after {written} of {expected} bytes")
        check(partial)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def escapes_folder(name: str) -> bool:
    """Whether an archive member named `name` would land outside the folder it is extracted into."""
    parts = PurePosixPath(name.replace("\\", "/")).parts
    return name.startswith(("/", "\\")) or bool(parts and parts[0].endswith(":")) or ".." in parts


def open_checked_zip(path: Path) -> zipfile.ZipFile:
    """Open a zip after refusing entries that escape the folder and absurd unpacked sizes."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, NotImplementedError) as error:
        raise DataError(f"{path}: not a readable zip file ({error})") from None
    for info in archive.infolist():
        name = info.filename
        if escapes_folder(name):
            archive.close()
            raise DataError(f"{path}: entry {name!r} would be written outside the target folder; refusing the zip")
    total = sum(info.file_size for info in archive.infolist())
    if total > MAX_ZIP_UNCOMPRESSED_BYTES:
        archive.close()
        raise DataError(f"{path}: declares {total / 1e9:.1f} GB unpacked "
                        f"(limit {MAX_ZIP_UNCOMPRESSED_BYTES / 1e9:.1f} GB); refusing the zip")
    return archive


def _check_gzip_stream(path: Path, shown: str) -> None:
    """Read a gzip file to its end, so a truncated or damaged one (CRC, length) is refused before any use,
    and one that unpacks beyond MAX_ZIP_UNCOMPRESSED_BYTES is refused before it fills the disk or memory."""
    unpacked = 0
    try:
        with gzip.open(path, "rb") as stream:
            while chunk := stream.read(1 << 20):
                unpacked += len(chunk)
                if unpacked > MAX_ZIP_UNCOMPRESSED_BYTES:
                    raise DataError(f"{shown}: unpacks to more than {MAX_ZIP_UNCOMPRESSED_BYTES / 1e9:.1f} GB; "
                                    f"refusing the archive")
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(f"{shown}: not a complete gzip file ({type(error).__name__}: {error}); "
                        f"refusing the archive") from None


TAR_MEMBER_KINDS = {tarfile.SYMTYPE: "a symbolic link", tarfile.LNKTYPE: "a hard link",
                    tarfile.CHRTYPE: "a character device", tarfile.BLKTYPE: "a block device", tarfile.FIFOTYPE: "a FIFO"}


def read_checked_tar(path: Path, wanted: Callable[[str], bool], shown: str | None = None) -> dict[str, bytes]:
    """{member name: bytes} of the regular files of a .tar.gz that `wanted(name)` picks, read into memory.

    The whole archive is checked first, by the zip rules and more: the gzip stream complete, no member that
    escapes the folder, no link, device or other special file, no wanted name twice, at most
    MAX_ZIP_UNCOMPRESSED_BYTES unpacked. Nothing is written to disk, so a refused archive leaves nothing.
    Errors name the archive as `shown` (default: its path)."""
    path = Path(path)
    shown = shown or str(path)
    _check_gzip_stream(path, shown)
    try:
        with tarfile.open(path, "r:gz") as archive:
            members = archive.getmembers()
            for member in members:
                if escapes_folder(member.name):
                    raise DataError(f"{shown}: member {member.name!r} would be written outside the target folder; "
                                    f"refusing the archive")
                if not (member.isreg() or member.isdir()):
                    kind = TAR_MEMBER_KINDS.get(member.type, f"a special file (type {member.type!r})")
                    raise DataError(f"{shown}: member {member.name!r} is {kind}; refusing the archive")
            total = sum(member.size for member in members if member.isreg())
            if total > MAX_ZIP_UNCOMPRESSED_BYTES:
                raise DataError(f"{shown}: declares {total / 1e9:.1f} GB unpacked "
                                f"(limit {MAX_ZIP_UNCOMPRESSED_BYTES / 1e9:.1f} GB); refusing the archive")
            payloads = {}
            for member in members:
                if member.isreg() and wanted(member.name):
                    if member.name in payloads:
                        raise DataError(f"{shown}: member {member.name!r} appears twice; refusing the archive")
                    payloads[member.name] = archive.extractfile(member).read()
    except (tarfile.TarError, OSError, EOFError, zlib.error) as error:
        raise DataError(f"{shown}: not a readable .tar.gz ({type(error).__name__}: {error})") from None
    return payloads


@dataclass(frozen=True)
class SourceListing:
    """One look at a zip or folder, to hand on rather than repeat: the relative file names (OS artefacts
    removed), the folders that hold no file at any depth, and a reader `read(name) -> bytes`."""
    source: Path
    names: list[str]
    empty_folders: list[str]
    read: Callable[[str], bytes]


def _is_artefact(name: str) -> bool:
    return any(part.startswith(OS_ARTEFACTS) for part in PurePosixPath(name).parts)


def list_source(source: Path) -> SourceListing:
    """The listing of a zip or folder (OS artefacts skipped with a warning). Zips are never extracted to disk."""
    source = Path(source)
    if not source.exists():
        raise DataError(f"{source}: no such file or folder")
    if source.is_dir():
        names = sorted(p.relative_to(source).as_posix() for p in source.rglob("*") if p.is_file())
        folders = {p.relative_to(source).as_posix() for p in source.rglob("*") if p.is_dir()}

        def read(name: str) -> bytes:
            return (source / name).read_bytes()
    else:
        archive = open_checked_zip(source)
        names = sorted(i.filename for i in archive.infolist() if not i.is_dir())
        folders = {i.filename.rstrip("/") for i in archive.infolist() if i.is_dir()}

        def read(name: str) -> bytes:
            try:
                return archive.read(name)
            except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError, RuntimeError) as error:
                raise DataError(f"{source}!{name}: damaged or unsupported zip entry ({error})") from None
    artefacts = {n for n in names if _is_artefact(n)}
    if artefacts:
        warnings.warn(f"{source}: skipped {len(artefacts)} operating-system artefact(s) such as {min(artefacts)!r}",
                      stacklevel=2)
    names = [n for n in names if n not in artefacts]
    holding_files = {parent.as_posix() for n in names for parent in PurePosixPath(n).parents}
    empty = sorted(f for f in folders if f not in holding_files and not _is_artefact(f))
    return SourceListing(source, names, empty, read)


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
