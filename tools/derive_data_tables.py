"""Derive `src/tables/`, the facts `src/rebuild.py` needs to rebuild the assignment's archives, from the real zips.

    .venv/bin/python -m tools.derive_data_tables ../shared/data/trainPart1.zip ../shared/data/testPart1.zip \
        ../shared/data/mnistTask3.zip

(without arguments it reads $PLAYMNIST_TRAINPART1, $PLAYMNIST_TESTPART1, $PLAYMNIST_MNISTTASK3, else ../shared/data).
It writes, each as gzipped text (format in src/rebuild.py's docstring):

- `src/tables/englishhnd.txt.gz`: each of EnglishHnd's 3,410 images, whether the assignment put it in trainPart1
  or testPart1, and the first 8 hex digits of its SHA-256 in the real zip;
- `src/tables/mnisttask3.txt.gz`: for each MNIST training index, the folder the real mnistTask3 holds it in and
  the same digest of its JPEG.

Run once; tests/test_rebuild.py checks the committed tables against the real zips wherever they are given. Where
MNIST is in data/MNIST/raw, it also rebuilds mnistTask3 from it and says how many of the 60,000 JPEGs come out
byte-identical to the real archive's.
"""
from __future__ import annotations

import argparse
import gzip
import os
import re
import sys
import zipfile
from pathlib import Path, PurePosixPath

from src.data import rebuild
from src.data.mnist import load_mnist_uint8, mnist_raw_dir
from src.settings import PROJECT_ROOT, atomic_write_bytes

SHARED = PROJECT_ROOT.parent / "shared" / "data"
CHARS74K_ENTRY = re.compile(r"^(train|test)/(Sample\d{3}/img\d{3}-\d{3}\.png)$")
MNISTTASK3_ENTRY = re.compile(r"^mnistTask/(\d)/image_(\d{6})\.jpg$")


def _files(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist() if not info.is_dir()}


def englishhnd_table_text(trainpart1: Path, testpart1: Path) -> str:
    """The EnglishHnd table's text: every image of the two zips, its split, its digest; refuses any surprise."""
    rows = {}
    for path in (trainpart1, testpart1):
        for name, payload in _files(path).items():
            match = CHARS74K_ENTRY.match(name)
            if match is None or match.group(2) in rows:
                raise SystemExit(f"{path.name}: unexpected or repeated entry {name!r}")
            rows[match.group(2)] = f"{match.group(2)} {match.group(1)} {rebuild.short_digest(payload)}"
    expected = {f"Sample{c:03d}/img{c:03d}-{w:03d}.png" for c in range(1, 63) for w in range(1, 56)}
    if set(rows) != expected:
        raise SystemExit(f"the two zips hold {len(rows)} images, not EnglishHnd's 62 x 55 = 3,410")
    header = ["# EnglishHnd (Chars74K) images in the assignment's split: name, train|test, sha256[:8] of the real file.",
              "# Derived by tools/derive_data_tables.py from the real trainPart1.zip and testPart1.zip."]
    return "\n".join(header + [rows[name] for name in sorted(rows)]) + "\n"


def mnisttask3_table_text(mnisttask3: Path) -> str:
    """The mnistTask3 table's text: line i (after the comments) is the folder and digest of image_<i:06d>.jpg."""
    rows = {}
    for name, payload in _files(mnisttask3).items():
        match = MNISTTASK3_ENTRY.match(name)
        if match is None or int(match.group(2)) in rows:
            raise SystemExit(f"{mnisttask3.name}: unexpected or repeated entry {name!r}")
        rows[int(match.group(2))] = f"{match.group(1)} {rebuild.short_digest(payload)}"
    if set(rows) != set(range(60_000)):
        raise SystemExit(f"{mnisttask3.name}: image numbers are not exactly 000000..059999")
    header = ["# mnistTask3: line i after these comments is MNIST training image i: the folder the real archive puts",
              "# mnistTask/<folder>/image_<i:06d>.jpg in, and sha256[:8] of that JPEG. Derived by",
              "# tools/derive_data_tables.py from the real mnistTask3.zip."]
    return "\n".join(header + [rows[index] for index in range(60_000)]) + "\n"


def gzip_text(text: str) -> bytes:
    return gzip.compress(text.encode(), compresslevel=9, mtime=0)  # no time or name in the header: repeatable


def count_identical_mnisttask3(mnisttask3: Path) -> tuple[int, int]:
    """(identical, total): mnistTask3 rebuilt from data/MNIST/raw, compared file by file with the real zip."""
    images = load_mnist_uint8("train", allow_download=False)[0].numpy()
    real = _files(mnisttask3)
    identical = sum(rebuild.jpeg_bytes(images[int(MNISTTASK3_ENTRY.match(name).group(2))]) == payload
                    for name, payload in real.items())
    return identical, len(real)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name in ("trainPart1", "testPart1", "mnistTask3"):
        default = os.environ.get(f"PLAYMNIST_{name.upper()}") or SHARED / f"{name}.zip"
        parser.add_argument(name.lower(), nargs="?", type=Path, default=Path(default))
    arguments = parser.parse_args(argv)
    tables = {rebuild.ENGLISHHND_TABLE: englishhnd_table_text(arguments.trainpart1, arguments.testpart1),
              rebuild.MNISTTASK3_TABLE: mnisttask3_table_text(arguments.mnisttask3)}
    for path, text in tables.items():
        atomic_write_bytes(path, gzip_text(text))
        print(f"{PurePosixPath(path.relative_to(PROJECT_ROOT))}: {path.stat().st_size:,} bytes")
    if (mnist_raw_dir() / "train-images-idx3-ubyte").exists():
        identical, total = count_identical_mnisttask3(arguments.mnisttask3)
        print(f"mnistTask3 rebuilt from data/MNIST/raw: {identical:,} of {total:,} JPEGs byte-identical to the real zip")
    return 0


if __name__ == "__main__":
    sys.exit(main())
