"""Untrusted input never crashes the process or hangs it, and re-running gives the same results.

The fuzzer mutates valid files at random (a bounded number of times) and feeds them to every data
entry point: each call must either load or raise the project's own error type.
"""
import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

import src.datasets as datasets
from src.files import DataError, decode_grayscale
from tests.generated import draw_character, png_bytes, trainpart1_entries, write_zip

MUTATIONS_PER_FORMAT = 150


def mutations(payload: bytes, seed: int):
    """Random damage: flipped bytes, truncation, inserted junk, swapped chunks."""
    generator = np.random.default_rng(seed)
    for _ in range(MUTATIONS_PER_FORMAT):
        damaged = bytearray(payload)
        kind = generator.integers(4)
        if kind == 0:
            for position in generator.integers(0, len(damaged), size=generator.integers(1, 12)):
                damaged[position] = generator.integers(256)
        elif kind == 1:
            damaged = damaged[: generator.integers(0, len(damaged))]
        elif kind == 2:
            position = generator.integers(0, len(damaged))
            damaged[position:position] = generator.integers(0, 256, size=generator.integers(1, 64), dtype=np.uint8).tobytes()
        else:
            first, second = sorted(generator.integers(0, len(damaged), size=2))
            damaged = damaged[:first] + damaged[second:] + damaged[first:second]
        yield bytes(damaged)


def fuzz(load, payload: bytes, seed: int):
    outcomes = {"loaded": 0, "refused": 0}
    for damaged in mutations(payload, seed):
        try:
            load(damaged)
            outcomes["loaded"] += 1
        except DataError:
            outcomes["refused"] += 1
    assert outcomes["refused"] > 0  # the damage was real
    return outcomes


def test_damaged_png_and_jpeg_load_or_raise_data_error():
    png = png_bytes(draw_character(3, 1))
    fuzz(lambda payload: decode_grayscale(payload, "fuzzed.png"), png, seed=0)
    buffer = io.BytesIO()
    Image.fromarray((np.random.default_rng(0).random((28, 28)) * 255).astype(np.uint8)).save(buffer, format="JPEG")
    fuzz(lambda payload: decode_grayscale(payload, "fuzzed.jpg"), buffer.getvalue(), seed=1)


def test_damaged_zip_loads_or_raises_data_error(tmp_path):
    payload = write_zip(tmp_path / "good.zip", trainpart1_entries(classes="0aA", writers=[1])).read_bytes()
    path = tmp_path / "fuzzed.zip"

    def load(damaged):
        path.write_bytes(damaged)
        datasets.read_trainpart1(path, require_all_classes=False)
    fuzz(load, payload, seed=3)


def test_decompression_bomb_image_is_refused():
    buffer = io.BytesIO()
    Image.new("1", (10_000, 10_000)).save(buffer, format="PNG")  # 100 Mpx in a few kB
    with pytest.raises(DataError, match="bomb.png"):
        decode_grayscale(buffer.getvalue(), "bomb.png")


def without_timings(value):
    """A results JSON with what a clock or the calendar decides left out: the rest must repeat exactly."""
    if isinstance(value, dict):
        return {key: without_timings(item) for key, item in value.items()
                if not any(word in key for word in ("seconds", "images_per_second", "saved_at"))}
    if isinstance(value, list):
        return [without_timings(item) for item in value]
    return value


def test_rerunning_an_experiment_gives_the_same_results_and_no_new_files(task1_on_five_writers):
    import src.task1 as task1
    from src.checkpoints import read_checkpoint
    from src.runs import checkpoint_dir, results_dir

    def run_and_list():
        task1.run_experiment("quick", progress=False)
        files = sorted(p.name for folder in (checkpoint_dir("quick"), results_dir("quick")) for p in folder.iterdir())
        stored = json.loads((results_dir("quick") / "task1.json").read_text())
        return files, stored, read_checkpoint(checkpoint_dir("quick") / "task1.pt")["state_dict"]

    first_files, first_stored, first_weights = run_and_list()
    second_files, second_stored, second_weights = run_and_list()
    assert first_files == second_files == ["task1.json", "task1.pt"]
    assert without_timings(first_stored) == without_timings(second_stored)
    assert all(torch.equal(first_weights[name], second_weights[name]) for name in first_weights)


def test_atomic_writes_get_the_usual_permissions_not_mkstemps_private_ones(tmp_path):
    import src.files
    src.files.atomic_write_bytes(tmp_path / "result.json", b"{}")
    assert (tmp_path / "result.json").stat().st_mode & 0o777 == 0o666 & ~src.files.UMASK
