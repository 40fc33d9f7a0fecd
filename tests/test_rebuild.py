"""The assignment's archives rebuilt from their original sources (src/rebuild.py), served from 127.0.0.1.

Every route runs against a real HTTP server on this machine with archives in the official layouts, generated here:
a tiny EnglishHnd.tgz and a tiny MNIST, with tables made for them. The committed tables are checked against the
real zips where those are given (PLAYMNIST_TRAINPART1, PLAYMNIST_TESTPART1, PLAYMNIST_MNISTTASK3, as in CI).
"""
import gzip
import hashlib
import io
import os
import tarfile
import threading
import urllib.parse
import urllib.request
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

import src.datasets as datasets
import src.files as files
import src.mnist as mnist
import src.rebuild as rebuild
import src.sources as sources
from src.checkpoints import save_checkpoint, trained_on_standin
from src.classes import CLASS_CHARACTERS
from src.evaluate import evaluate_checkpoint
from src.files import DataError
from src.model import ModelConfig, build_model
from tests.generated import bar_digits, englishhnd_entries, idx_bytes, trainpart1_entries, write_tgz, write_zip

# Read at import, before the autouse fixture clears them for each test.
REAL_ZIPS = {name: os.environ.get(f"PLAYMNIST_{name.upper()}") for name in ("trainPart1", "testPart1", "mnistTask3")}


# ----------------------------------------------------------------------------- a server on 127.0.0.1

class Server:
    """Serves {path: body} over HTTP; `declared` overrides a body's Content-Length (a transfer cut short)."""

    def __init__(self):
        self.bodies, self.declared, self.requests = {}, {}, []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                body = server.bodies.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(server.declared.get(self.path, len(body))))
                self.end_headers()
                self.wfile.write(body)
                self.close_connection = True

            def log_message(self, *arguments):
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.http.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.http.server_address[1]}{path}"


@pytest.fixture
def server(monkeypatch):
    """The server, and the network opened again for 127.0.0.1 only (tests/conftest.py closes it for everything)."""
    local = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def localhost_only(url, *arguments, **keyword_arguments):
        address = url.full_url if isinstance(url, urllib.request.Request) else url
        if urllib.parse.urlsplit(address).hostname != "127.0.0.1":
            raise OSError(f"tests do not use the network ({address})")
        return local.open(url, *arguments, **keyword_arguments)
    monkeypatch.setattr(urllib.request, "urlopen", localhost_only)
    running = Server()
    yield running
    running.http.shutdown()
    running.http.server_close()


# ----------------------------------------------------------------------------- a tiny EnglishHnd and MNIST

@pytest.fixture
def englishhnd(tmp_path, monkeypatch, server):
    """EnglishHnd.tgz of 62 classes x 2 writers served at $PLAYMNIST_CHARS74K_URL; writer 1 in trainPart1, writer 2
    in testPart1. Returns the real files as the assignment's zips hold them ({entry name: bytes})."""
    entries = list(englishhnd_entries())
    write_tgz(tmp_path / "EnglishHnd.tgz", entries)
    server.bodies["/chars74k/EnglishHnd.tgz"] = (tmp_path / "EnglishHnd.tgz").read_bytes()
    monkeypatch.setenv(rebuild.CHARS74K_URL_VARIABLE, server.url("/chars74k/EnglishHnd.tgz"))
    real = {}
    for member, payload in entries:
        if member.startswith("English/Hnd/Img/"):
            image = member.removeprefix("English/Hnd/Img/")
            real[("train/" if image.endswith("-001.png") else "test/") + image] = payload
    table = {name.split("/", 1)[1]: (name.split("/")[0], rebuild.short_digest(payload)) for name, payload in real.items()}
    monkeypatch.setattr(rebuild, "englishhnd_table", lambda: table)
    return real


def serve_tgz(server, tmp_path, entries, links=()):
    server.bodies["/chars74k/EnglishHnd.tgz"] = write_tgz(tmp_path / "served.tgz", entries, links).read_bytes()


@pytest.fixture
def served_mnist(monkeypatch, server):
    """A 50/20-image MNIST served as torchvision's four .gz files at $PLAYMNIST_MNIST_URL (md5s patched to match);
    a folder table for it. Returns the real mnistTask3 files ({entry name: JPEG bytes})."""
    files_served = {}
    for prefix, count in (("train", 50), ("t10k", 20)):
        images, labels = bar_digits(count, seed=0 if prefix == "train" else 1)
        files_served[f"{prefix}-images-idx3-ubyte"] = idx_bytes((images[:, 0] * 255).round().numpy())
        files_served[f"{prefix}-labels-idx1-ubyte"] = idx_bytes(labels.numpy())
    for name, payload in files_served.items():
        server.bodies[f"/mnist/{name}.gz"] = gzip.compress(payload)
    monkeypatch.setattr(mnist, "MNIST_MD5", {name: hashlib.md5(p).hexdigest() for name, p in files_served.items()})
    monkeypatch.setattr(mnist, "_from_npm", refuse_npm)
    monkeypatch.setenv(mnist.MIRROR_VARIABLE, server.url("/mnist"))
    pixels = np.frombuffer(files_served["train-images-idx3-ubyte"][16:], dtype=np.uint8).reshape(50, 28, 28)
    folders = [(index * 7 + 3) % 10 for index in range(50)]  # any folders: the table alone decides them
    real = {f"mnistTask/{folder}/image_{index:06d}.jpg": rebuild.jpeg_bytes(pixels[index])
            for index, folder in enumerate(folders)}
    monkeypatch.setattr(rebuild, "mnisttask3_table",
                        lambda: (folders, [rebuild.short_digest(payload) for payload in real.values()]))
    return real


def refuse_npm():
    raise OSError("tests do not use the network (npm)")


def zip_files(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def left_in_data() -> list[str]:
    folder = sources.data_dir()
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")) if folder.exists() else []


# ----------------------------------------------------------------------------- the routes

def test_trainpart1_and_testpart1_are_rebuilt_byte_identical_from_the_served_archive(englishhnd, server, capsys,
                                                                                      monkeypatch):
    monkeypatch.setenv("PLAYMNIST_PROGRESS", "1")
    train = datasets.load_trainpart1()
    assert capsys.readouterr().err.count("EnglishHnd.tgz") >= 1  # the download shows its progress
    test = datasets.load_testpart1()
    for loaded, folder in ((train, "train"), (test, "test")):
        assert loaded.source.kind == "real" and len(loaded) == 62
        assert loaded.source.describe().startswith(f"{loaded.source.name}: REAL data, rebuilt from EnglishHnd.tgz")
        assert zip_files(sources.data_dir() / f"{loaded.source.name}.zip") == {
            name: payload for name, payload in englishhnd.items() if name.startswith(folder)}
    # One download for both sets (the checked archive is kept), and later runs take the ordinary path.
    assert server.requests == ["/chars74k/EnglishHnd.tgz"]
    assert datasets.find_trainpart1()[1:] == ("data/trainPart1.zip", "real")
    kept = left_in_data()
    assert {"EnglishHnd.tgz", "trainPart1.zip", "testPart1.zip"} <= set(kept)
    assert not [name for name in kept if name.endswith((".download", ".partial"))]


def test_the_same_archive_always_gives_the_same_zip(englishhnd):
    first = datasets.find_trainpart1()[0].read_bytes()
    (sources.data_dir() / "trainPart1.zip").unlink()
    assert datasets.find_trainpart1()[0].read_bytes() == first


def test_mnisttask3_is_rebuilt_byte_identical_from_a_served_mnist(served_mnist, server):
    noisy = datasets.load_mnisttask3()
    assert noisy.source.kind == "real" and "REAL data, rebuilt from MNIST" in noisy.source.describe()
    assert "torchvision download from http://127.0.0.1" in noisy.source.route
    assert zip_files(sources.data_dir() / "mnistTask3.zip") == served_mnist
    folders, _ = rebuild.mnisttask3_table()
    assert [folders[index] for index in noisy.file_indices.tolist()] == noisy.folder_labels.tolist()
    assert sorted(set(server.requests)) == sorted(f"/mnist/{name}.gz" for name in mnist.MNIST_MD5)


def test_an_mnist_that_is_not_the_tables_falls_through_to_the_stand_in(tiny_mnist, monkeypatch):
    monkeypatch.setattr(datasets, "_build_mnisttask3_standin", lambda target: target.write_bytes(b"stand-in"))
    path, route, kind = datasets.find_mnisttask3()
    assert kind == "stand-in" and "200 images" in route and "60,000" in route


# ----------------------------------------------------------------------------- refusals leave nothing behind

def test_a_truncated_download_is_refused_and_leaves_nothing(englishhnd, server):
    body = server.bodies["/chars74k/EnglishHnd.tgz"]
    server.bodies["/chars74k/EnglishHnd.tgz"] = body[: len(body) // 2]
    server.declared["/chars74k/EnglishHnd.tgz"] = len(body)
    with pytest.raises(DataError, match="download stopped after"):
        datasets.find_trainpart1(allow_standin=False)
    assert left_in_data() == []


def test_a_truncated_archive_served_whole_is_refused_and_leaves_nothing(englishhnd, server):
    body = server.bodies["/chars74k/EnglishHnd.tgz"]
    server.bodies["/chars74k/EnglishHnd.tgz"] = body[: len(body) - 100]
    with pytest.raises(DataError, match="not a complete gzip file"):
        datasets.find_trainpart1(allow_standin=False)
    assert left_in_data() == []


def tampered(englishhnd_files):
    """The tiny archive with one image edited (one pixel of Sample011/img011-001.png)."""
    from PIL import Image
    entries = []
    for name, payload in englishhnd_entries():
        if name.endswith("Sample011/img011-001.png"):
            image = Image.open(io.BytesIO(payload)).convert("RGB")
            image.putpixel((0, 0), (250, 250, 250))
            buffer = io.BytesIO()
            image.save(buffer, format="PNG")
            payload = buffer.getvalue()
        entries.append((name, payload))
    return entries


def test_a_tampered_image_is_named_and_refused_by_the_full_budget(englishhnd, server, tmp_path):
    serve_tgz(server, tmp_path, tampered(englishhnd))
    with pytest.raises(sources.NotTheRealData, match=r"1 of 62 images differ.*train/Sample011/img011-001\.png") as refused:
        datasets.find_trainpart1(allow_standin=False)
    assert "PLAYMNIST_ALLOW_STANDIN=1" in str(refused.value)
    assert left_in_data() == []


def test_a_tampered_image_with_the_opt_in_is_kept_beside_and_labelled_like_a_stand_in(englishhnd, server, tmp_path):
    serve_tgz(server, tmp_path, tampered(englishhnd))
    train = datasets.load_trainpart1(allow_standin=True)
    described = train.source.describe()
    assert train.source.kind == sources.REBUILT_DIFFERS and train.source.is_standin
    assert "1 of 62 images differ" in described and "train/Sample011/img011-001.png" in described
    assert trained_on_standin({"data": described})  # a network trained on it never replaces a real one
    assert not (sources.data_dir() / "trainPart1.zip").exists()
    assert Path(train.source.path).name == "trainPart1-rebuilt.zip"
    # testPart1's images are all intact: it is real, from the same kept archive.
    assert datasets.find_testpart1(allow_standin=False)[2] == "real"


def test_a_changed_mnist_jpeg_is_named_and_refused_by_the_full_budget(served_mnist, monkeypatch):
    folders, digests = rebuild.mnisttask3_table()
    digests = ["00000000"] + digests[1:]
    monkeypatch.setattr(rebuild, "mnisttask3_table", lambda: (folders, digests))
    with pytest.raises(sources.NotTheRealData, match=r"1 of 50 images differ.*mnistTask/3/image_000000\.jpg"):
        datasets.find_mnisttask3(allow_standin=False)
    assert not (sources.data_dir() / "mnistTask3.zip").exists()
    assert not (sources.data_dir() / "mnistTask3-rebuilt.zip").exists()


@pytest.mark.parametrize("member, link", [
    ("English/Hnd/Img/../../../escaped.png", None),
    ("/tmp/absolute.png", None),
    ("English/Hnd/Img/Sample001/img001-001.png", (tarfile.SYMTYPE, "/etc/passwd")),
    ("English/Hnd/Img/Sample001/img001-002.png", (tarfile.LNKTYPE, "../../outside.png")),
])
def test_a_member_escaping_the_folder_or_a_link_is_refused_before_anything_is_written(englishhnd, server, tmp_path,
                                                                                      member, link):
    entries = [entry for entry in englishhnd_entries() if entry[0] != member]
    links = [(member, link[1], link[0])] if link else []
    if link is None:
        entries.append((member, b"\x89PNG not really"))
    serve_tgz(server, tmp_path, entries, links)
    with pytest.raises(DataError, match=f"member {member!r}.*refusing the archive"):
        datasets.find_trainpart1(allow_standin=False)
    assert left_in_data() == []
    assert not (tmp_path / "escaped.png").exists() and not (tmp_path.parent / "escaped.png").exists()


def test_an_archive_that_unpacks_too_large_is_refused(englishhnd, monkeypatch):
    monkeypatch.setattr(files, "MAX_ZIP_UNCOMPRESSED_BYTES", 10_000)
    with pytest.raises(DataError, match="unpacks to more than .*refusing the archive"):
        datasets.find_trainpart1(allow_standin=False)
    assert left_in_data() == []


def test_a_kept_archive_that_went_bad_names_itself_and_how_to_recover(englishhnd):
    datasets.find_trainpart1()
    kept = sources.data_dir() / "EnglishHnd.tgz"
    kept.write_bytes(kept.read_bytes()[:-50])
    with pytest.raises(DataError, match=r"EnglishHnd\.tgz: not a complete gzip file.*delete EnglishHnd\.tgz to download"):
        datasets.find_testpart1(allow_standin=False)


# ----------------------------------------------------------------------------- the committed tables

def test_the_committed_tables_describe_the_assignments_split_and_folders():
    table = rebuild.englishhnd_table()
    assert len(table) == 3410 and sum(split == "train" for split, _ in table.values()) == 2480
    per_class = {}
    for name, (split, digest) in table.items():
        per_class.setdefault((name[:9], split), 0)
        per_class[(name[:9], split)] += 1
        assert len(digest) == rebuild.DIGEST_HEX_DIGITS
    assert {count for (_, split), count in per_class.items() if split == "train"} == {40}
    assert {count for (_, split), count in per_class.items() if split == "test"} == {15}
    folders, digests = rebuild.mnisttask3_table()
    assert len(folders) == len(digests) == 60_000
    assert np.bincount(folders).tolist() == [5980, 5807, 6009, 6037, 5914, 6139, 6037, 5954, 6129, 5994]
    size = rebuild.ENGLISHHND_TABLE.stat().st_size + rebuild.MNISTTASK3_TABLE.stat().st_size
    assert size < 500_000


@pytest.mark.skipif(not all(REAL_ZIPS.values()), reason="the real zips are not given (PLAYMNIST_TRAINPART1, ...)")
def test_the_committed_tables_match_the_real_zips():
    from tools.derive_data_tables import englishhnd_table_text, mnisttask3_table_text
    committed = {path: gzip.decompress(path.read_bytes()).decode()
                 for path in (rebuild.ENGLISHHND_TABLE, rebuild.MNISTTASK3_TABLE)}
    assert committed[rebuild.ENGLISHHND_TABLE] == englishhnd_table_text(Path(REAL_ZIPS["trainPart1"]),
                                                                        Path(REAL_ZIPS["testPart1"]))
    assert committed[rebuild.MNISTTASK3_TABLE] == mnisttask3_table_text(Path(REAL_ZIPS["mnistTask3"]))


# ----------------------------------------------------------------------------- evaluate lists a source once

def test_evaluate_lists_its_source_once(tmp_path, monkeypatch):
    test_set = write_zip(tmp_path / "later_test_set.zip", trainpart1_entries(writers=range(41, 43)))
    model = build_model(ModelConfig(62, geometry_features=4, widths=(8, 16, 16)), seed=0).eval()
    checkpoint = save_checkpoint(tmp_path / "task1.pt", model, {"task": "task1", "classes": CLASS_CHARACTERS,
                                                                 "preprocessing": "mnist"})
    opened = []
    real_open = files.open_checked_zip
    monkeypatch.setattr(files, "open_checked_zip", lambda path: opened.append(path) or real_open(path))
    report = evaluate_checkpoint(checkpoint, test_set)
    assert report["n"] == 124 and opened == [test_set]
