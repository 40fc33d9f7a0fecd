"""The offline stand-ins (src/standins.py): trainPart1's layout and case cue, mnistTask3's folders."""
import io
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

import src.standins as standins
from src.classes import CLASS_CHARACTERS
from src.files import decode_grayscale

CANVAS = (240, 180)
CLASSES = "0AaBbOo"
WRITERS = 16


def read_zip(path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def ink_of(payload: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(payload)).convert("L")) < 128


def ink_box(payload: bytes) -> tuple[int, int, float, float]:
    """Height, width and centre (x, y) of the ink."""
    rows, columns = np.nonzero(ink_of(payload))
    return np.ptp(rows) + 1, np.ptp(columns) + 1, (columns.min() + columns.max()) / 2, (rows.min() + rows.max()) / 2


def name_of(character: str, writer: int) -> str:
    number = CLASS_CHARACTERS.index(character) + 1
    return f"train/Sample{number:03d}/img{number:03d}-{writer:03d}.png"


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    path = standins.write_trainpart1_standin(tmp_path_factory.mktemp("standin") / "nested" / "trainPart1.zip",
                                             seed=0, writers=WRITERS, canvas_size=CANVAS, classes=CLASSES)
    return path, read_zip(path)


# ----------------------------------------------------------------------------- trainPart1

def test_layout_and_file_names_are_trainpart1s(small):
    path, entries = small
    assert path.name == "trainPart1.zip"
    assert set(entries) == {name_of(character, writer) for character in CLASSES for writer in range(1, WRITERS + 1)}
    assert name_of("0", 1) == "train/Sample001/img001-001.png" and name_of("z", 40) == "train/Sample062/img062-040.png"


def test_images_are_black_ink_on_white_rgb_inside_the_canvas(small):
    for name, payload in small[1].items():
        image = Image.open(io.BytesIO(payload))
        assert image.format == "PNG" and image.mode == "RGB" and image.size == CANVAS, name
        pixels = np.asarray(image)
        assert set(np.unique(pixels)) <= {0, 255} and (pixels == pixels[..., :1]).all(), name
        ink = ink_of(payload)
        assert 0.002 < ink.mean() < 0.3, name
        margin = standins.MARGIN
        assert not ink[:margin].any() and not ink[-margin:].any() and not ink[:, :margin].any() and not ink[:, -margin:].any(), name
        assert np.array_equal(decode_grayscale(payload, name) < 0.5, ink), name  # the loaders read it as drawn


def test_lowercase_is_drawn_smaller_than_capitals_and_ascenders_taller(small):
    heights = {character: np.mean([ink_box(small[1][name_of(character, writer)])[0] for writer in range(1, WRITERS + 1)])
               for character in CLASSES}
    assert heights["a"] < 0.8 * heights["A"] and heights["o"] < 0.8 * heights["O"]
    assert heights["b"] > 1.2 * heights["a"]  # an ascender letter is nearly capital height


def test_each_writer_keeps_a_size_and_a_place(small):
    boxes = {character: np.array([ink_box(small[1][name_of(character, writer)]) for writer in range(1, WRITERS + 1)])
             for character in "0A"}
    for measure in (0, 2, 3):  # height, centre x, centre y of '0' and 'A' by the same writers
        assert np.corrcoef(boxes["0"][:, measure], boxes["A"][:, measure])[0, 1] > 0.5, measure
    assert len({small[1][name_of("A", writer)] for writer in range(1, WRITERS + 1)}) == WRITERS


def test_same_seed_same_bytes_other_seed_other_images(tmp_path, small):
    again = standins.write_trainpart1_standin(tmp_path / "again.zip", seed=0, writers=WRITERS, canvas_size=CANVAS, classes=CLASSES)
    assert again.read_bytes() == small[0].read_bytes()
    other = read_zip(standins.write_trainpart1_standin(tmp_path / "other.zip", seed=1, writers=WRITERS, canvas_size=CANVAS,
                                                       classes=CLASSES))
    assert set(other) == set(small[1]) and all(other[name] != small[1][name] for name in other)


def test_an_image_does_not_depend_on_the_other_classes_requested(tmp_path, small):
    alone = read_zip(standins.write_trainpart1_standin(tmp_path / "b.zip", seed=0, writers=WRITERS, canvas_size=CANVAS,
                                                       classes="b"))
    assert alone == {name: payload for name, payload in small[1].items() if name.startswith("train/Sample038/")}


def test_full_size_canvas_and_capital_height(tmp_path):
    entries = read_zip(standins.write_trainpart1_standin(tmp_path / "full.zip", writers=3, classes="A"))
    for payload in entries.values():
        assert Image.open(io.BytesIO(payload)).size == (1200, 900)
        assert 0.2 * 900 < ink_box(payload)[0] < 0.8 * 900  # real capitals: 250-605 px per writer


def test_a_character_too_big_for_its_canvas_shrinks_and_keeps_the_margin(tmp_path):
    entries = read_zip(standins.write_trainpart1_standin(tmp_path / "narrow.zip", writers=8, canvas_size=(40, 300), classes="W"))
    margin = standins.MARGIN
    for name, payload in entries.items():
        ink = ink_of(payload)
        assert ink.any() and not ink[:, :margin].any() and not ink[:, -margin:].any(), name


def test_every_class_character_has_a_glyph_in_every_font():
    for font in standins.FONTS:
        missing = standins.glyph_tile("\U0010ffff", font)  # a code point no font has: the placeholder
        for character in CLASS_CHARACTERS:
            tile = standins.glyph_tile(character, font)
            assert tile.max() > 0.9 and not torch.equal(tile, missing), (font, character)


@pytest.mark.parametrize("arguments", [{"classes": "A?"}, {"classes": "AbA"}, {"classes": "Ä"}, {"writers": 0},
                                       {"canvas_size": (20, 20)}])
def test_bad_requests_raise_value_error(tmp_path, arguments):
    with pytest.raises(ValueError):
        standins.write_trainpart1_standin(tmp_path / "x.zip", **{"classes": "A", **arguments})
    assert not list(tmp_path.iterdir())


def test_a_failed_build_keeps_the_previous_zip_and_leaves_nothing_else(tmp_path, monkeypatch):
    target = tmp_path / "trainPart1.zip"
    target.write_bytes(b"previous")

    def broken(*arguments):
        raise RuntimeError("simulated failure half-way")
    monkeypatch.setattr(standins, "ink_on_paper_png", broken)
    with pytest.raises(RuntimeError):
        standins.write_trainpart1_standin(target, writers=2, canvas_size=CANVAS, classes="ab")
    assert target.read_bytes() == b"previous" and [path.name for path in tmp_path.iterdir()] == ["trainPart1.zip"]


# ----------------------------------------------------------------------------- mnistTask3

def test_folders_are_rarely_the_true_digit_and_otherwise_uniform_over_the_other_nine():
    count, p = 1_000_000, standins.TRUE_FOLDER_PROBABILITY
    labels = torch.from_numpy(np.random.default_rng(1).integers(0, 10, count))
    folders = standins.mnisttask3_standin_folders(labels, seed=3)
    in_true_folder = (folders == labels).float().mean().item()
    assert abs(in_true_folder - p) < 5 * np.sqrt(p * (1 - p) / count)
    counts = torch.zeros(10, 10).index_put_((labels, folders), torch.ones(count), accumulate=True)
    for digit in range(10):
        others = torch.cat([counts[digit, :digit], counts[digit, digit + 1:]])
        expected = others.sum() / 9
        assert ((others - expected).abs() < 5 * expected.sqrt()).all(), digit
    assert not torch.equal(folders, standins.mnisttask3_standin_folders(labels, seed=4))
    assert torch.equal(folders, standins.mnisttask3_standin_folders(labels, seed=3))


def test_transition_matrix_is_the_normalised_counts():
    labels = torch.from_numpy(np.random.default_rng(2).integers(0, 10, 5000))
    matrix = standins.standin_transition_matrix(labels, seed=5, true_folder_probability=0.2)
    folders = standins.mnisttask3_standin_folders(labels, seed=5, true_folder_probability=0.2)
    assert torch.allclose(matrix.sum(dim=1), torch.ones(10))
    for digit in range(10):
        row = torch.bincount(folders[labels == digit], minlength=10).float()
        assert torch.allclose(matrix[digit], row / row.sum())
    assert 0.15 < matrix.diagonal().mean() < 0.25


def test_mnisttask3_zip_holds_the_images_in_their_folders(tmp_path):
    count = 60
    images = torch.zeros(count, 1, 28, 28)
    for index in range(count):  # a bright bar whose place and length vary, like a stroke
        images[index, 0, 4 + index % 20: 8 + index % 20, 6: 10 + index % 12] = 1.0
    labels = torch.arange(count) % 10
    path = standins.write_mnisttask3_standin(tmp_path / "mnistTask3.zip", images, labels, seed=7, true_folder_probability=0.3)
    folders = standins.mnisttask3_standin_folders(labels, seed=7, true_folder_probability=0.3)
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
        assert [info.filename for info in infos] == [f"mnistTask/{folders[i]}/image_{i:06d}.jpg" for i in range(count)]
        assert {info.date_time for info in infos} == {standins.ZIP_DATE}
        for index, info in enumerate(infos):
            payload = archive.read(info)
            assert Image.open(io.BytesIO(payload)).format == "JPEG"
            decoded = torch.from_numpy(decode_grayscale(payload, info.filename))
            assert decoded.shape == (28, 28)
            assert (decoded - images[index, 0]).abs().mean() < 0.03  # within JPEG error
            reference = io.BytesIO()  # exactly the 8-bit image at JPEG quality 75, as the archive's
            Image.fromarray((images[index, 0] * 255).round().to(torch.uint8).numpy()).save(reference, format="JPEG", quality=75)
            assert payload == reference.getvalue()
    again = standins.write_mnisttask3_standin(tmp_path / "again.zip", images, labels, seed=7, true_folder_probability=0.3)
    assert again.read_bytes() == path.read_bytes()
