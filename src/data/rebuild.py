"""The assignment's archives rebuilt from their original sources, checked file by file against the real ones.

trainPart1 and testPart1 are exactly the 3,410 images of Chars74K's EnglishHnd (de Campos, Babu & Varma, VISAPP
2009), which the dataset's home distributes as one archive, `EnglishHnd.tgz` (`English/Hnd/Img/SampleNNN/
imgNNN-MMM.png`, the assignment's file names). mnistTask3 is the 60,000 MNIST training images, each JPEG-encoded
with Pillow's defaults as `mnistTask/<folder>/image_NNNNNN.jpg` (NNNNNN = the MNIST training index). Neither source
says what only the real archives do: which 40 of each class's 55 drawings went into trainPart1, and which folder
holds each MNIST image. Those facts ship in `src/tables/`, with a digest of every real image, derived once from the
real zips by `tools/derive_data_tables.py`:

    englishhnd.txt.gz   `SampleNNN/imgNNN-MMM.png <train|test> <sha256[:8] of the real file>`, 3,410 lines
    mnisttask3.txt.gz   line i (after the `#` comments): `<folder> <sha256[:8]>` of mnistTask/<folder>/image_<i:06d>.jpg

What is pinned and what is not. Every rebuilt image is compared with the real archive's digest of the same file:
32 bits of SHA-256, enough to catch any accidental difference (another libjpeg, an edited upstream file), not a
forgery made to collide. The real EnglishHnd.tgz was never reachable where the tables were made, so its own size
and SHA-256 are not pinned: a download is checked for its declared length, a complete gzip stream and safe tar
members (`files.read_checked_tar`) before anything is used, its SHA-256 goes into the data record, and the images
inside decide. MNIST's IDX files are md5-pinned on every route (`mnist.py`).

A rebuild whose images all match is the real data: it is written as `data/<name>.zip` in the original layout, so
later runs and `evaluate` find it the ordinary way (the rebuilt trainPart1.zip is byte-identical to the team's
copy). One that differs is kept only where the budget allows a stand-in, as `data/<name>-rebuilt.zip`, labelled
with how many and which files differ; otherwise it is refused (`NotTheRealData`) and nothing is left behind.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import re
import zipfile
from pathlib import Path

import numpy as np
import PIL
from PIL import Image

from ..settings import atomic_write_bytes, data_dir, progress_enabled, project_relative, report
from .files import DataError, download, list_source, read_checked_tar, sha256_of_source, tqdm
from .mnist import load_mnist_uint8
from .sources import REAL, REBUILT_DIFFERS, NotTheRealData

CHARS74K_URL = "http://www.ee.surrey.ac.uk/CVSSP/demos/chars74k/EnglishHnd.tgz"  # the dataset's home
CHARS74K_URL_VARIABLE = "PLAYMNIST_CHARS74K_URL"  # another copy of the same archive (a mirror, a local server)
ENGLISHHND_ARCHIVE = "EnglishHnd.tgz"  # kept in data/ once it passed, so testPart1 and later rebuilds reuse it
ENGLISHHND_IMAGE = re.compile(r"^(?:\./)?English/Hnd/Img/(Sample\d{3}/img\d{3}-\d{3}\.png)$")
SPLIT_FOLDERS = {"trainPart1": "train", "testPart1": "test"}
TABLES = Path(__file__).resolve().parent / "tables"
ENGLISHHND_TABLE = TABLES / "englishhnd.txt.gz"
MNISTTASK3_TABLE = TABLES / "mnisttask3.txt.gz"
DIGEST_HEX_DIGITS = 8
ZIP_DATE = (2021, 3, 31, 0, 0, 0)  # one fixed timestamp (the assignment's date, as in the team's trainPart1.zip)
SHOWN_DIFFERENCES = 10
# The assignment's archives as the team holds them (shared/data/*.sha256): a file with this sha256 is the real one.
ASSIGNMENT_SHA256 = {"trainPart1": "a2b546b471dc1c64fd1675687e2a2091bb44b03e35e8aada25f2337f9fcfeff9",
                     "testPart1": "7663f701b8ae5354d6a4586e12c50c2948d937ee89de174db78f406772fdd22e",
                     "mnistTask3": "35bf501ccc3e7f91de853be0e794567c04917f725f86a585076b40f7e0da69b3"}


# ----------------------------------------------------------------------------- tables

def short_digest(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()[:DIGEST_HEX_DIGITS]


def _table_rows(path: Path) -> list[list[str]]:
    try:
        text = gzip.decompress(path.read_bytes()).decode()
    except (OSError, EOFError, UnicodeDecodeError) as error:
        raise DataError(f"{project_relative(path)}: unreadable table ({error})") from None
    return [line.split() for line in text.splitlines() if line and not line.startswith("#")]


def englishhnd_table() -> dict[str, tuple[str, str]]:
    """{"SampleNNN/imgNNN-MMM.png": (its folder in the assignment, "train" or "test"; digest)} of EnglishHnd."""
    return {name: (split, digest) for name, split, digest in _table_rows(ENGLISHHND_TABLE)}


def mnisttask3_table() -> tuple[list[int], list[str]]:
    """(folders, digests): for each MNIST training index, mnistTask3's folder of that image and its digest."""
    rows = _table_rows(MNISTTASK3_TABLE)
    return [int(folder) for folder, _ in rows], [digest for _, digest in rows]


def expected_digests(name: str) -> dict[str, str]:
    """{file name in the real archive: its digest} for trainPart1, testPart1 or mnistTask3."""
    if name == "mnistTask3":
        folders, digests = mnisttask3_table()
        return {f"mnistTask/{folder}/image_{index:06d}.jpg": digest
                for index, (folder, digest) in enumerate(zip(folders, digests))}
    folder = SPLIT_FOLDERS[name]
    return {f"{folder}/{image}": digest for image, (split, digest) in englishhnd_table().items() if split == folder}


def is_the_assignments(name: str, path: Path, listing=None) -> bool:
    """Whether `path` holds the assignment's `name`: its zip byte for byte, or (an extracted folder, a zip made
    again) every image the real archive has, each with the real file's digest. Names are matched on their last two
    parts (`SampleNNN/imgNNN-MMM.png`, `<folder>/image_NNNNNN.jpg`), so a wrapping folder does not matter."""
    path = Path(path)
    if path.is_file() and sha256_of_source(path) == ASSIGNMENT_SHA256[name]:
        return True
    expected = {"/".join(file.split("/")[-2:]): digest for file, digest in expected_digests(name).items()}
    try:
        listing = listing or list_source(path)
    except DataError:
        return False
    found = {"/".join(file.split("/")[-2:]): file for file in listing.names}
    return (len(listing.names) == len(expected) and found.keys() == expected.keys()
            and all(short_digest(listing.read(found[key])) == digest for key, digest in expected.items()))


# ----------------------------------------------------------------------------- building and judging

def jpeg_bytes(image: np.ndarray) -> bytes:
    """An MNIST image ([28, 28] uint8) as the real mnistTask3 stores it: Pillow's JPEG with its defaults."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG")
    return buffer.getvalue()


def zip_bytes(entries: dict[str, bytes]) -> bytes:
    """A zip of `entries`: stored (PNG and JPEG are compressed already), names sorted, one timestamp, so the same
    files always give the same bytes (and the same sha256, which keys the cache and names the data in results)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name in sorted(entries):
            archive.writestr(zipfile.ZipInfo(name, ZIP_DATE), entries[name])
    return buffer.getvalue()


def judge(name: str, entries: dict[str, bytes], expected: dict[str, str], origin: str,
          allow_differences: bool, where_to_delete: str = "") -> tuple[str, str]:
    """(route, kind) of a rebuild: "real" where every expected file is there with its digest; REBUILT_DIFFERS,
    saying how many and which, where the budget allows that; else NotTheRealData (nothing has been kept)."""
    differing = [file for file in sorted(expected)
                 if file not in entries or short_digest(entries[file]) != expected[file]]
    if not differing:
        return f"rebuilt from {origin}; all {len(expected):,} images match the real archive's SHA-256 digests", REAL
    missing = sum(file not in entries for file in differing)
    shown = ", ".join(differing[:SHOWN_DIFFERENCES]) + (" ..." if len(differing) > SHOWN_DIFFERENCES else "")
    summary = (f"{len(differing):,} of {len(expected):,} images differ from the real archive's SHA-256 digests"
               f"{f' ({missing:,} missing)' if missing else ''}: {shown}")
    if not allow_differences:
        raise NotTheRealData(
            f"{name} rebuilt from {origin} is not the real data: {summary}. Nothing was kept{where_to_delete}. "
            f"This run trains only on real data: give the real {name}.zip (data/{name}.zip or "
            f"PLAYMNIST_{name.upper()}), or set PLAYMNIST_ALLOW_STANDIN=1 (or PLAYMNIST_BUDGET=quick) to use this "
            f"rebuild, labelled as differing in every output.")
    return f"rebuilt from {origin}; {summary}", REBUILT_DIFFERS


def keep(name: str, entries: dict[str, bytes], route: str, kind: str) -> tuple[Path, str, str]:
    """Write a judged rebuild: the real one where every run looks (`data/<name>.zip`), one that differs beside it."""
    target = data_dir() / (f"{name}.zip" if kind == REAL else f"{name}-rebuilt.zip")
    atomic_write_bytes(target, zip_bytes(entries))
    if kind == REAL:
        (data_dir() / f"{name}-rebuilt.zip").unlink(missing_ok=True)
    return target, route, kind


# ----------------------------------------------------------------------------- trainPart1 and testPart1

def englishhnd_images(archive: Path, shown: str) -> dict[str, bytes]:
    """{"SampleNNN/imgNNN-MMM.png": bytes} of the handwritten images in EnglishHnd.tgz. Its other members (pen
    trajectories, lists) pass the same safety checks but are not read."""
    payloads = read_checked_tar(archive, lambda member: ENGLISHHND_IMAGE.match(member) is not None, shown)
    images = {ENGLISHHND_IMAGE.match(member).group(1): payload for member, payload in payloads.items()}
    if len(images) != len(payloads):
        raise DataError(f"{shown}: the same image appears under two member names; refusing the archive")
    if not images:
        raise DataError(f"{shown}: no English/Hnd/Img/SampleNNN/imgNNN-MMM.png member; not Chars74K's EnglishHnd.tgz")
    return images


def rebuild_from_englishhnd(name: str, allow_download: bool, allow_differences: bool) -> tuple[Path, str, str]:
    """trainPart1 or testPart1 (`name`) as `data/<name>.zip`, from data/EnglishHnd.tgz, else from a download of it
    ($PLAYMNIST_CHARS74K_URL or the dataset's home), and the committed split table. Returns (path, route, kind)."""
    expected = expected_digests(name)
    archive, judged = data_dir() / ENGLISHHND_ARCHIVE, {}

    def build(path: Path, shown: str, where_to_delete: str = "") -> None:
        images = englishhnd_images(path, shown)
        judged["entries"] = {file: images[file.split("/", 1)[1]] for file in expected
                             if file.split("/", 1)[1] in images}
        origin = (f"{shown} (sha256 {sha256_of_source(path)[:12]}) and the assignment's split "
                  f"({project_relative(ENGLISHHND_TABLE)})")
        judged["route"], judged["kind"] = judge(name, judged["entries"], expected, origin, allow_differences,
                                                where_to_delete)

    if archive.exists() or allow_download:
        report(f"{name}: rebuilding from Chars74K's {ENGLISHHND_ARCHIVE} and the assignment's split ...")
    if archive.exists():
        shown = project_relative(archive)
        try:
            build(archive, shown, f" but {shown}, from an earlier run or put there: delete it to download again")
        except NotTheRealData:
            raise
        except DataError as error:
            raise DataError(f"{error} (delete {shown} to download it again)") from None
    elif allow_download:
        url = os.environ.get(CHARS74K_URL_VARIABLE) or CHARS74K_URL
        shown = f"{ENGLISHHND_ARCHIVE} " + ("from a file URL" if url.startswith("file:") else f"downloaded from {url}")
        try:
            download(url, archive, lambda partial: build(partial, shown), progress=progress_enabled())
        except NotTheRealData:
            raise
        except (OSError, DataError) as error:
            raise DataError(f"{error} (offline, put {ENGLISHHND_ARCHIVE} in data/ to rebuild from it)") from None
    else:
        raise DataError(f"no {project_relative(archive)} to rebuild {name} from, and downloads are disabled")
    return keep(name, judged["entries"], judged["route"], judged["kind"])


# ----------------------------------------------------------------------------- mnistTask3

def rebuild_mnisttask3(allow_download: bool, allow_differences: bool) -> tuple[Path, str, str]:
    """mnistTask3 as `data/mnistTask3.zip`, from MNIST's training images (any route of `mnist.py`) and the committed
    folder table. MNIST's labels are not read into the rebuild: the folders come from the table alone."""
    images, _, mnist_source = load_mnist_uint8("train", allow_download)
    folders, digests = mnisttask3_table()
    report("mnistTask3: rebuilding from MNIST's 60,000 training images and the committed folder table ...")
    if len(images) != len(folders):
        raise DataError(f"MNIST's training set here has {len(images):,} images; {project_relative(MNISTTASK3_TABLE)} "
                        f"places {len(folders):,}, so this is not the MNIST the real archive was made from")
    names = [f"mnistTask/{folder}/image_{index:06d}.jpg" for index, folder in enumerate(folders)]
    entries = {file: jpeg_bytes(image) for file, image in tqdm(zip(names, images.numpy()), total=len(names),
                                                                   desc="JPEG-encoding", disable=not progress_enabled(),
                                                                   leave=False)}
    origin = (f"MNIST's training images ({mnist_source.route}), as JPEGs by Pillow {PIL.__version__}'s defaults, in "
              f"the real archive's folders ({project_relative(MNISTTASK3_TABLE)})")
    route, kind = judge("mnistTask3", entries, dict(zip(names, digests)), origin, allow_differences)
    return keep("mnistTask3", entries, route, kind)
