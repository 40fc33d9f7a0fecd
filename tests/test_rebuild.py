"""The assignment's archives rebuilt from their sources (src/data/rebuild.py) and what counts as REAL data: a tiny
EnglishHnd.tgz and MNIST served at 127.0.0.1, with tables made for them; the committed tables are checked against
the real zips where those are given (PLAYMNIST_TRAINPART1, PLAYMNIST_TESTPART1, PLAYMNIST_MNISTTASK3, as in CI)."""
import gzip
import hashlib
import io
import os
import tarfile
import urllib.parse
import urllib.request
import zipfile
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import src.data.datasets as datasets
import src.data.files as files
import src.data.mnist as mnist
import src.data.rebuild as rebuild
import src.data.sources as sources
from src.checkpoints import trained_on_standin
from src.data.files import DataError
from tests.generated import draw_character, englishhnd_entries, png_bytes, write_folder, write_tgz, write_zip

# Read at import, before the autouse fixture clears them for each test.
REAL_ZIPS = {name: os.environ.get(f"PLAYMNIST_{name.upper()}") for name in ("trainPart1", "testPart1", "mnistTask3")}
TGZ = "/chars74k/EnglishHnd.tgz"


@pytest.fixture
def server(monkeypatch):
    """{path: body} served at http://127.0.0.1 (`declared` overrides a Content-Length: a transfer cut short;
    `requests` lists what was asked); every other address stays closed (tests/conftest.py)."""
    served = SimpleNamespace(bodies={}, declared={}, requests=[], url=lambda path: f"http://127.0.0.1{path}")

    def urlopen(url, *arguments, **keyword_arguments):
        address = getattr(url, "full_url", url)
        parts = urllib.parse.urlsplit(address)
        if parts.hostname != "127.0.0.1" or parts.path not in served.bodies:
            raise OSError(f"tests do not use the network ({address})")
        served.requests.append(parts.path)
        response = io.BytesIO(served.bodies[parts.path])
        response.url, response.length = address, served.declared.get(parts.path, len(response.getvalue()))
        response.headers = {"Content-Length": str(response.length)}
        return response
    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    return served


@pytest.fixture
def englishhnd(tmp_path, monkeypatch, server):
    """EnglishHnd.tgz of 62 classes x 2 writers served at $PLAYMNIST_CHARS74K_URL; writer 1 in trainPart1, writer 2
    in testPart1, by a table patched in. Returns the real files as the assignment's zips hold them ({name: bytes})."""
    entries = list(englishhnd_entries())
    server.bodies[TGZ] = write_tgz(tmp_path / "EnglishHnd.tgz", entries).read_bytes()
    monkeypatch.setenv(rebuild.CHARS74K_URL_VARIABLE, server.url(TGZ))
    real = {("train/" if member.endswith("-001.png") else "test/") + member.removeprefix("English/Hnd/Img/"): payload
            for member, payload in entries if member.startswith("English/Hnd/Img/")}
    table = {name.split("/", 1)[1]: (name.split("/")[0], rebuild.short_digest(p)) for name, p in real.items()}
    monkeypatch.setattr(rebuild, "englishhnd_table", lambda: table)
    return real


@pytest.fixture
def served_mnist(monkeypatch, server, tiny_mnist):
    """tiny_mnist served as torchvision's four .gz files at $PLAYMNIST_MNIST_URL (not yet in data/), and a folder table
    for its 200 training images. Returns the real mnistTask3 files ({entry name: JPEG bytes})."""
    for name, payload in tiny_mnist.items():
        (mnist.mnist_raw_dir() / name).unlink()
        server.bodies[f"/mnist/{name}.gz"] = gzip.compress(payload)
    monkeypatch.setenv(mnist.MIRROR_VARIABLE, server.url("/mnist"))
    pixels = np.frombuffer(tiny_mnist["train-images-idx3-ubyte"][16:], dtype=np.uint8).reshape(200, 28, 28)
    folders = [(index * 7 + 3) % 10 for index in range(200)]  # any folders: the table alone decides them
    real = {f"mnistTask/{f}/image_{i:06d}.jpg": rebuild.jpeg_bytes(pixels[i]) for i, f in enumerate(folders)}
    digests = [rebuild.short_digest(payload) for payload in real.values()]
    monkeypatch.setattr(rebuild, "mnisttask3_table", lambda: (folders, digests))
    return real


def zip_files(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def left_in_data() -> list[str]:
    folder = sources.data_dir()
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if "cache" not in p.parts)


def find(name="trainPart1", **options):
    return datasets.find_character_set(name, allow_standin=False, **options)


# ----------------------------------------------------------------------------- the routes

def test_trainpart1_and_testpart1_are_rebuilt_byte_identical_from_one_download(englishhnd, server):
    train, test = datasets.load_trainpart1(), datasets.load_testpart1()
    for loaded, folder in ((train, "train"), (test, "test")):
        assert loaded.source.kind == sources.REAL and len(loaded) == 62
        assert loaded.source.describe().startswith(f"{loaded.source.name}: REAL data from {loaded.source.name}.zip")
        assert loaded.source.route.startswith("rebuilt from EnglishHnd.tgz")
        assert zip_files(sources.data_dir() / f"{loaded.source.name}.zip") == {
            name: payload for name, payload in englishhnd.items() if name.startswith(folder)}
    assert "downloaded from http://127.0.0.1" in train.source.route and "downloaded" not in test.source.route
    assert server.requests == [TGZ]  # the checked archive is kept for the second set
    first = (sources.data_dir() / "trainPart1.zip").read_bytes()
    assert find()[1:] == ("data/trainPart1.zip", sources.REAL)  # later runs: the ordinary path, verified REAL
    (sources.data_dir() / "trainPart1.zip").unlink()
    assert find()[0].read_bytes() == first  # the same archive always gives the same zip
    assert left_in_data() == ["EnglishHnd.tgz", "testPart1.zip", "trainPart1.zip"]  # no .download, no .partial
    kept = sources.data_dir() / "EnglishHnd.tgz"  # the kept archive goes bad: it names itself and how to recover
    kept.write_bytes(kept.read_bytes()[:-50])
    (sources.data_dir() / "testPart1.zip").unlink()
    with pytest.raises(DataError, match=r"EnglishHnd\.tgz: not a complete gzip file.*delete EnglishHnd\.tgz to"):
        find("testPart1")


def test_mnisttask3_is_rebuilt_byte_identical_from_a_served_mnist(served_mnist, server):
    noisy = datasets.load_mnisttask3(allow_standin=False)
    assert noisy.source.kind == sources.REAL and noisy.source.describe().startswith("mnistTask3: REAL data")
    assert noisy.source.route.startswith("rebuilt from MNIST's training images (torchvision download from http://127")
    assert zip_files(sources.data_dir() / "mnistTask3.zip") == served_mnist
    folders, _ = rebuild.mnisttask3_table()
    assert [folders[index] for index in noisy.file_indices.tolist()] == noisy.folder_labels.tolist()
    assert set(server.requests) == {f"/mnist/{name}.gz" for name in mnist.MNIST_MD5}


# ----------------------------------------------------------------------------- refusals leave nothing behind

@pytest.mark.parametrize("damage, error", [
    ("cut short", "download stopped after"), ("html", "not a complete gzip file"),
    ("too large", "unpacks to more than .*refusing the archive"),
    ("../../../escaped.png", "member 'English/Hnd/Img/../../../escaped.png' would be written outside"),
    ("symlink", "member 'English/Hnd/Img/Sample001/img001-009.png' is a symbolic link; refusing the archive"),
    ("hardlink", "member 'English/Hnd/Img/Sample001/img001-009.png' is a hard link; refusing the archive"),
])
def test_a_bad_download_or_archive_is_refused_and_leaves_nothing(englishhnd, server, tmp_path, monkeypatch, damage,
                                                                  error):
    body = server.bodies[TGZ]
    if damage == "cut short":
        server.bodies[TGZ], server.declared[TGZ] = body[: len(body) // 2], len(body)
    elif damage == "html":  # a complete transfer of the wrong content
        server.bodies[TGZ] = b"<html>moved</html>"
    elif damage == "too large":
        monkeypatch.setattr(files, "MAX_ZIP_UNCOMPRESSED_BYTES", 10_000)
    else:  # a member that escapes the folder, or a link to outside it
        link = {"symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE}.get(damage)
        member = "English/Hnd/Img/" + ("Sample001/img001-009.png" if link else damage)
        entries = [*englishhnd_entries(), *([] if link else [(member, b"x")])]
        server.bodies[TGZ] = write_tgz(tmp_path / "served.tgz", entries,
                                       [(member, "../../outside.png", link)] if link else []).read_bytes()
    with pytest.raises(DataError, match=error):
        find()
    assert left_in_data() == [] and not (tmp_path.parent / "escaped.png").exists()


OTHER_DRAWING = png_bytes(draw_character(10, 9))  # replaces Sample011/img011-001.png in a tampered copy


def test_a_tampered_image_is_named_refused_without_the_opt_in_and_kept_beside_with_it(englishhnd, server, tmp_path):
    server.bodies[TGZ] = write_tgz(tmp_path / "served.tgz", [
        (name, OTHER_DRAWING if name.endswith("Sample011/img011-001.png") else p) for name, p in englishhnd_entries()]
    ).read_bytes()
    with pytest.raises(sources.NotTheRealData, match=r"1 of 62 images differ.*train/Sample011/img011-001\.png") as no:
        find()
    assert "PLAYMNIST_ALLOW_STANDIN=1" in str(no.value) and left_in_data() == []
    train = datasets.load_trainpart1(allow_standin=True)
    described = train.source.describe()
    assert train.source.kind == sources.REBUILT_DIFFERS and train.source.is_standin
    assert "1 of 62 images differ" in described and "train/Sample011/img011-001.png" in described
    assert trained_on_standin({"data": described})  # a network trained on it never replaces a real one
    assert Path(train.source.path).name == "trainPart1-rebuilt.zip" and "trainPart1.zip" not in left_in_data()
    assert find("testPart1")[2] == sources.REAL  # its images are intact: real, from the same kept archive


# ----------------------------------------------------------------------------- what counts as REAL

def test_a_remade_copy_is_real_only_when_every_image_matches_the_tables_or_the_zip_is_the_assignments(
        englishhnd, tmp_path, monkeypatch):
    train = {name: payload for name, payload in englishhnd.items() if name.startswith("train/")}
    deflated = tmp_path / "deflated.zip"  # other bytes, other order, a wrapping folder: the images decide
    with zipfile.ZipFile(deflated, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(train, reverse=True):
            archive.writestr(f"trainPart1/{name}", train[name])
    assert rebuild.is_the_assignments("trainPart1", deflated) and not rebuild.is_the_assignments("testPart1", deflated)
    assert rebuild.is_the_assignments("trainPart1", write_folder(tmp_path / "folder", zip_files(deflated).items()))
    assert datasets.load_trainpart1(deflated).source.kind == sources.REAL
    edited = write_zip(tmp_path / "edited.zip", {**train, "train/Sample011/img011-001.png": OTHER_DRAWING}.items())
    (tmp_path / "broken.zip").write_bytes(b"not a zip")
    for remade in (edited, write_zip(tmp_path / "missing.zip", list(train.items())[1:]), tmp_path / "broken.zip",
                   write_zip(tmp_path / "extra.zip", [*train.items(), ("train/Sample001/x.png", b"")])):
        assert not rebuild.is_the_assignments("trainPart1", remade), remade.name
    loaded = datasets.load_trainpart1(edited)
    assert loaded.source.kind == sources.USER and "USER DATA" in loaded.source.describe()
    monkeypatch.setitem(rebuild.ASSIGNMENT_SHA256, "trainPart1", hashlib.sha256(edited.read_bytes()).hexdigest())
    assert rebuild.is_the_assignments("trainPart1", edited)  # the assignment's zip itself, byte for byte
    assert not rebuild.is_the_assignments("testPart1", edited)
    assert not rebuild.is_the_assignments("trainPart1", write_folder(tmp_path / "edited", zip_files(edited).items()))


def test_a_real_set_with_a_second_tree_of_other_images_is_not_real(englishhnd, tmp_path):
    train = {name: payload for name, payload in englishhnd.items() if name.startswith("train/")}
    doubled = write_zip(tmp_path / "doubled.zip", [*train.items(), *((f"aaa/{name}", b"other") for name in train)])
    assert not rebuild.is_the_assignments("trainPart1", doubled)


@pytest.mark.skipif(not all(REAL_ZIPS.values()), reason="the real zips are not given (PLAYMNIST_TRAINPART1, ...)")
def test_the_real_zips_are_real_and_the_committed_tables_match_them(tmp_path):
    for name, path in REAL_ZIPS.items():
        assert rebuild.is_the_assignments(name, Path(path)), name
    copy = write_zip(tmp_path / "testPart1.zip", zip_files(Path(REAL_ZIPS["testPart1"])).items())  # other bytes ...
    assert hashlib.sha256(copy.read_bytes()).hexdigest() != rebuild.ASSIGNMENT_SHA256["testPart1"]
    assert rebuild.is_the_assignments("testPart1", copy) and not rebuild.is_the_assignments("trainPart1", copy)
    from tools.derive_data_tables import englishhnd_table_text, mnisttask3_table_text
    assert gzip.decompress(rebuild.ENGLISHHND_TABLE.read_bytes()).decode() == englishhnd_table_text(
        Path(REAL_ZIPS["trainPart1"]), Path(REAL_ZIPS["testPart1"]))
    assert gzip.decompress(rebuild.MNISTTASK3_TABLE.read_bytes()).decode() == mnisttask3_table_text(
        Path(REAL_ZIPS["mnistTask3"]))


def test_the_committed_tables_describe_the_assignments_split_and_folders():
    table = rebuild.englishhnd_table()
    assert len(table) == 3410 and {len(digest) for _, digest in table.values()} == {rebuild.DIGEST_HEX_DIGITS}
    per_class = Counter((name[:9], split) for name, (split, _) in table.items())
    assert len(per_class) == 124 and {(split, n) for (_, split), n in per_class.items()} == {("train", 40),
                                                                                            ("test", 15)}
    folders, digests = rebuild.mnisttask3_table()
    assert len(folders) == len(digests) == 60_000
    assert np.bincount(folders).tolist() == [5980, 5807, 6009, 6037, 5914, 6139, 6037, 5954, 6129, 5994]
    assert len(rebuild.expected_digests("trainPart1")) == 2480 and len(rebuild.expected_digests("testPart1")) == 930
