"""Untrusted input never crashes the process or hangs it: files damaged at random (a bounded number of times) either
load or raise the project's own error type, naming the file; a failed write leaves what was there."""
import io

import numpy as np
import pytest
from PIL import Image

import src.data.datasets as datasets
import src.data.files as files
import src.settings as settings
from src.data.files import DataError, decode_grayscale
from src.data.rebuild import jpeg_bytes
from tests.generated import draw_character, englishhnd_entries, png_bytes, trainpart1_entries, write_tgz, write_zip


def mutations(payload: bytes, seed: int, count: int = 150):
    """Random damage: flipped bytes, truncation, inserted junk, swapped chunks."""
    generator = np.random.default_rng(seed)
    for _ in range(count):
        damaged, kind = bytearray(payload), generator.integers(4)
        first, second = sorted(generator.integers(0, len(damaged), size=2))
        if kind == 0:
            for position in generator.integers(0, len(damaged), size=generator.integers(1, 12)):
                damaged[position] = generator.integers(256)
        elif kind == 1:
            damaged = damaged[:first]
        elif kind == 2:
            damaged[first:first] = generator.integers(0, 256, size=generator.integers(1, 64), dtype=np.uint8).tobytes()
        else:
            damaged = damaged[:first] + damaged[second:] + damaged[first:second]
        yield bytes(damaged)


@pytest.mark.parametrize("kind", ["png", "jpeg", "zip", "tgz"])
def test_a_damaged_file_loads_or_raises_data_error_naming_it(tmp_path, kind):
    path = tmp_path / f"fuzzed.{kind}"
    payload, load = {
        "png": (png_bytes(draw_character(3, 1)), lambda: decode_grayscale(path.read_bytes(), path.name)),
        "jpeg": (jpeg_bytes((np.random.default_rng(0).random((28, 28)) * 255).astype(np.uint8)),
                 lambda: decode_grayscale(path.read_bytes(), path.name)),
        "zip": (write_zip(tmp_path / "zip", trainpart1_entries(classes="0aA", writers=[1])).read_bytes(),
                lambda: datasets.read_trainpart1(path, require_all_classes=False)),
        "tgz": (write_tgz(tmp_path / "tgz", list(englishhnd_entries(writers=[1]))[:5]).read_bytes(),
                lambda: files.read_checked_tar(path, lambda name: True))}[kind]
    refused = 0
    for damaged in mutations(payload, seed={"png": 0, "jpeg": 1, "zip": 3, "tgz": 4}[kind]):
        path.write_bytes(damaged)
        try:
            load()
        except DataError as error:
            refused += 1
            assert "fuzzed" in str(error)
    assert refused > 0  # the damage was real


def test_decompression_bomb_image_is_refused():
    buffer = io.BytesIO()
    Image.new("1", (10_000, 10_000)).save(buffer, format="PNG")  # 100 Mpx in a few kB
    with pytest.raises(DataError, match="bomb.png"):
        decode_grayscale(buffer.getvalue(), "bomb.png")


def test_atomic_writes_get_the_usual_permissions_and_a_failed_one_leaves_the_previous_file(tmp_path, monkeypatch):
    settings.atomic_write_bytes(tmp_path / "result.json", b"previous")
    assert (tmp_path / "result.json").stat().st_mode & 0o777 == 0o666 & ~settings.UMASK  # not mkstemp's 0600
    monkeypatch.setattr(settings.os, "fsync", lambda descriptor: (_ for _ in ()).throw(OSError(28, "No space left")))
    with pytest.raises(OSError, match="No space left"):
        settings.atomic_write_bytes(tmp_path / "result.json", b"new")
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]
    assert (tmp_path / "result.json").read_bytes() == b"previous"
