"""Tests for the offline stand-in of trainPart1.zip (src/synthetic_characters.py)."""

import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from src import synthetic_characters
from src.synthetic_characters import CLASS_CHARACTERS, write_synthetic_trainpart1

SMALL_CANVAS = (300, 225)


def read_images(zip_path):
    """{archive name: PIL image} for every file in the zip."""
    with zipfile.ZipFile(zip_path) as archive:
        return {name: Image.open(io.BytesIO(archive.read(name))) for name in archive.namelist()}


def ink_mask(image):
    return np.asarray(image.convert("L")) < 128


def ink_box_height(image):
    rows = np.nonzero(ink_mask(image).any(axis=1))[0]
    return rows.max() - rows.min() + 1


@pytest.fixture(scope="module")
def small_zip(tmp_path_factory):
    target = tmp_path_factory.mktemp("small") / "nested" / "trainPart1.zip"
    return write_synthetic_trainpart1(target, seed=0, samples_per_class=8, canvas_size=SMALL_CANVAS, classes="0aA")


def test_archive_names_follow_trainpart1_layout(small_zip):
    with zipfile.ZipFile(small_zip) as archive:
        names = set(archive.namelist())
    expected = {
        f"train/Sample{class_number:03d}/img{class_number:03d}-{sample:03d}.png"
        for class_number in (1, 37, 11)  # '0', 'a', 'A'
        for sample in range(1, 9)
    }
    assert names == expected


def test_images_are_black_ink_on_white_inside_the_canvas(small_zip):
    for name, image in read_images(small_zip).items():
        assert image.mode == "RGB" and image.size == SMALL_CANVAS, name
        pixels = np.asarray(image)
        assert set(np.unique(pixels)) <= {0, 255}, name
        ink = ink_mask(image)
        assert 0.001 < ink.mean() < 0.2, name  # some ink, mostly white paper
        border = np.concatenate([ink[0], ink[-1], ink[:, 0], ink[:, -1]])
        assert not border.any(), f"{name}: ink touches the canvas border"


def test_lowercase_is_smaller_than_capital_for_the_same_writers(small_zip):
    images = read_images(small_zip)
    heights_a = [ink_box_height(images[f"train/Sample037/img037-{sample:03d}.png"]) for sample in range(1, 9)]
    heights_capital_a = [ink_box_height(images[f"train/Sample011/img011-{sample:03d}.png"]) for sample in range(1, 9)]
    assert np.mean(heights_a) < 0.8 * np.mean(heights_capital_a)


def test_default_size_image(tmp_path):
    zip_path = write_synthetic_trainpart1(tmp_path / "one.zip", samples_per_class=1, classes="A")
    (image,) = read_images(zip_path).values()
    assert image.mode == "RGB" and image.size == (1200, 900)
    ink = ink_mask(image)
    assert ink[0].sum() == ink[-1].sum() == ink[:, 0].sum() == ink[:, -1].sum() == 0
    assert 100 < ink_box_height(image) < 500  # capitals are roughly 270 px times a writer factor


def test_same_seed_gives_identical_bytes_and_other_seed_differs(tmp_path):
    def generate(name, seed):
        path = write_synthetic_trainpart1(tmp_path / name, seed=seed, samples_per_class=2, canvas_size=SMALL_CANVAS, classes="a7")
        return path.read_bytes()

    first = generate("first.zip", seed=3)
    assert generate("again.zip", seed=3) == first
    assert generate("other.zip", seed=4) != first


def test_an_image_does_not_depend_on_the_other_requested_classes(tmp_path, small_zip):
    alone = write_synthetic_trainpart1(tmp_path / "alone.zip", samples_per_class=2, canvas_size=SMALL_CANVAS, classes="A")
    name = "train/Sample011/img011-002.png"
    with zipfile.ZipFile(alone) as archive_alone, zipfile.ZipFile(small_zip) as archive_all:
        assert archive_alone.read(name) == archive_all.read(name)


def test_no_partial_file_is_left_behind(tmp_path):
    target = tmp_path / "out" / "trainPart1.zip"
    write_synthetic_trainpart1(target, samples_per_class=1, canvas_size=SMALL_CANVAS, classes="b")
    assert sorted(path.name for path in target.parent.iterdir()) == ["trainPart1.zip"]


def test_failed_run_keeps_the_previous_zip_and_removes_the_partial(tmp_path, monkeypatch):
    target = tmp_path / "trainPart1.zip"
    target.write_bytes(b"previous")

    def broken_renderer(*arguments, **keyword_arguments):
        raise RuntimeError("simulated failure")

    monkeypatch.setattr(synthetic_characters, "render_character_image", broken_renderer)
    with pytest.raises(RuntimeError):
        write_synthetic_trainpart1(target, samples_per_class=1, canvas_size=SMALL_CANVAS, classes="b")
    assert target.read_bytes() == b"previous"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["trainPart1.zip"]


def test_unknown_character_is_rejected(tmp_path):
    with pytest.raises(ValueError):
        write_synthetic_trainpart1(tmp_path / "x.zip", classes="A?")


def test_all_class_characters_have_a_usable_font():
    fonts = synthetic_characters.usable_font_paths()
    assert len(fonts) >= 3
    assert len(CLASS_CHARACTERS) == 62
