"""The Colab path, tested on a CPU: a simulated Colab (a fake `google.colab` module), the rule that the full budget
never trains on a stand-in, precision chosen by GPU capability, the checkpoints section every notebook ends with, and
no machine path in anything we publish."""
from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

from src import train
from src.checkpoints import checkpoint_identity, finished_checkpoint, print_and_offer, read_checkpoint, save_checkpoint
from src.data import datasets, sources
from src.data.files import DataError
from src.data.labelled import LabelledImages
from src.model import ModelConfig, build_model
from src.settings import PROJECT_ROOT, data_dir, training_precision

NOTEBOOKS = ["task1.ipynb", "task2.ipynb", "task3.ipynb"]


def cells(name: str) -> list[dict]:
    return json.loads((PROJECT_ROOT / name).read_text())["cells"]


def source(cell: dict) -> str:
    return "".join(cell["source"])


def fake_colab(folder: Path) -> Path:
    """A `google.colab` package whose `files.download` records what it was asked to download."""
    package = folder / "google" / "colab"
    package.mkdir(parents=True)
    (folder / "google" / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "files.py").write_text("downloaded = []\ndef download(path):\n    downloaded.append(path)\n"
                                      "def upload():\n    raise RuntimeError('no browser in tests')\n")
    return folder


# ----------------------------------------------------------------------------- setup cell

def test_the_setup_cell_is_the_same_in_all_three_notebooks():
    setups = [source(cells(name)[1]) for name in NOTEBOOKS]
    assert setups[0].startswith("# Setup") and setups[0] == setups[1] == setups[2]


def test_setup_cell_on_a_simulated_colab_clones_once_installs_once_and_imports_src(tmp_path):
    repository = tmp_path / "repository.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(PROJECT_ROOT), str(repository)], check=True)
    colab_home = tmp_path / "content"
    colab_home.mkdir()
    fake_colab(tmp_path / "fake")
    setup = source(cells("task1.ipynb")[1])
    program = ("import google.colab\n" + setup +
               "\nimport src, os\nprint('SRC', os.path.dirname(src.__file__))\nprint('CWD', os.getcwd())\n")
    environment = {**os.environ, "PYTHONPATH": str(tmp_path / "fake"), "PLAYMNIST_REPOSITORY": str(repository),
                   "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    runs = []
    for _ in range(2):  # the second run is what a "Restart runtime" (a fresh process) does
        result = subprocess.run([sys.executable, "-c", program], cwd=colab_home, env=environment,
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
        runs.append(result.stdout)
    clone = (colab_home / "playing-with-mnist").resolve()
    for output in runs:
        assert f"SRC {clone / 'src'}" in output and f"CWD {clone}" in output
    assert "installing requirements.txt" in runs[0]
    assert "installing requirements.txt" not in runs[1]  # nothing installed twice
    assert sorted(p.name for p in colab_home.iterdir()) == ["playing-with-mnist"]  # no second clone


def test_setup_cell_does_nothing_outside_colab(tmp_path):
    setup = source(cells("task2.ipynb")[1])
    result = subprocess.run([sys.executable, "-c", setup + "\nimport os\nprint(os.getcwd())"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == str(tmp_path) and not list(tmp_path.iterdir())


# ----------------------------------------------------------------------------- real data or a clear stop

@pytest.mark.parametrize("finder, variable, file_name, has_standin", [
    (lambda: datasets.find_character_set("trainPart1"), "PLAYMNIST_TRAINPART1", "trainPart1.zip", False),
    (lambda: datasets.find_character_set("testPart1"), "PLAYMNIST_TESTPART1", "testPart1.zip", False),
    (datasets.load_mnisttask3, "PLAYMNIST_MNISTTASK3", "mnistTask3.zip", True)])
def test_full_budget_refuses_a_stand_in_and_says_what_to_do(monkeypatch, finder, variable, file_name, has_standin):
    monkeypatch.delenv("PLAYMNIST_ALLOW_STANDIN")
    monkeypatch.setenv("PLAYMNIST_BUDGET", "full")
    with pytest.raises(DataError) as refused:
        finder()
    message = str(refused.value)
    assert variable in message and file_name in message and ("PLAYMNIST_ALLOW_STANDIN=1" in message) == has_standin
    assert not (data_dir() / file_name.replace(".zip", "-standin.zip")).exists()  # nothing built
    monkeypatch.setitem(sys.modules, "google.colab", type(sys)("google.colab"))
    with pytest.raises(DataError, match=r"files\.upload\(\).*drive\.mount"):
        finder()


def test_quick_budget_and_the_opt_in_allow_a_stand_in(monkeypatch):
    monkeypatch.delenv("PLAYMNIST_ALLOW_STANDIN")

    def find():
        return sources.find_dataset("mnistTask3", None, lambda target: None, "stand-in", allow_download=False,
                                    allow_standin=None)[2]
    monkeypatch.setenv("PLAYMNIST_BUDGET", "quick")
    assert find() == sources.STANDIN
    monkeypatch.setenv("PLAYMNIST_BUDGET", "full")
    monkeypatch.setenv("PLAYMNIST_ALLOW_STANDIN", "1")
    assert find() == sources.STANDIN


def test_a_stand_in_network_never_replaces_a_real_one(tmp_path):
    model = build_model(ModelConfig(num_classes=10), seed=0)
    path = tmp_path / "task1.pt"
    save_checkpoint(path, model, {"data": "trainPart1: REAL data from trainPart1.zip"})
    real_bytes = path.read_bytes()
    with pytest.warns(UserWarning, match="task1-standin.pt"):
        written = save_checkpoint(path, model, {"data": "trainPart1: STAND-IN (synthetic, not the real dataset)"})
    assert written == tmp_path / "task1-standin.pt" and path.read_bytes() == real_bytes
    assert "STAND-IN" in read_checkpoint(written)["metadata"]["data"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # real over real, and stand-in over stand-in, replace as usual
        assert save_checkpoint(path, model, {"data": "REAL"}) == path
        assert save_checkpoint(written, model, {"data": "STAND-IN"}) == written


# ----------------------------------------------------------------------------- precision

@pytest.mark.parametrize("capability, bf16_supported, expected", [
    ((6, 0), False, "float16"), ((7, 5), False, "float16"), ((8, 0), True, "bfloat16"), ((9, 0), True, "bfloat16"),
    ((7, 5), True, "float16")])  # torch may report emulated bf16 on a T4: capability decides
def test_precision_follows_the_gpu_capability(monkeypatch, capability, bf16_supported, expected):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16_supported)
    assert training_precision("cuda") == expected
    assert training_precision("cpu") == "float32"


def test_a_checkpoint_is_named_by_its_content_and_the_commit_that_trained_it(tmp_path, monkeypatch):
    """Tasks 2 and 3 record which task1.pt they started from: a re-run of Task 1 replaces the file."""
    digits = LabelledImages(torch.rand(32, 1, 28, 28), torch.arange(32) % 10)
    config = train.TrainConfig(epochs=1, batch_size=16)
    monkeypatch.setenv("PLAYMNIST_GIT_COMMIT", "abcdef0123456789")
    path = tmp_path / "task1.pt"
    identities = []
    for seed in (0, 1):
        result = train.train(build_model(ModelConfig(num_classes=10), seed=seed), digits, config, device="cpu",
                             progress=False)
        finished_checkpoint(path, result, {"task": "test"})
        identities.append(checkpoint_identity(path))
    assert identities[1]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    assert identities[0]["sha256"] != identities[1]["sha256"]
    assert identities[1]["git_commit"] == "abcdef0" and identities[1]["device"] == result.device
    assert read_checkpoint(path)["metadata"]["precision"] == "float32" == result.precision


# ----------------------------------------------------------------------------- progress

def test_no_notebook_turns_its_progress_bars_off_by_hand():
    for name in NOTEBOOKS:
        assert not any("progress=False" in source(cell) for cell in cells(name)), name


# ----------------------------------------------------------------------------- checkpoints section

def test_every_notebook_ends_with_its_checkpoints_and_the_download_call():
    for name in NOTEBOOKS:
        *_, heading, code = cells(name)
        assert source(heading).startswith("## Checkpoints") and "print_and_offer(" in source(code)
        assert "load_model(" in source(code), name


def test_on_colab_the_checkpoints_are_zipped_and_downloaded(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(fake_colab(tmp_path / "fake")))
    for module in [m for m in sys.modules if m == "google" or m.startswith("google.")]:
        monkeypatch.delitem(sys.modules, module)
    for module in ("google", "google.colab", "google.colab.files"):  # the fake goes when the test ends
        monkeypatch.setitem(sys.modules, module, None)
        monkeypatch.delitem(sys.modules, module)
    import google.colab.files as colab_files
    folder = tmp_path / "checkpoints"
    for name in ("task3_scratch.pt", "task3_task1.pt"):
        save_checkpoint(folder / name, build_model(ModelConfig(num_classes=10), seed=0),
                        {"task": "task3", "data": "REAL", "metrics": {"mnist_test_accuracy": 0.99}, "device": "cpu"})
    rows = print_and_offer(sorted(folder.glob("*.pt")))
    assert [row["data"] for row in rows] == ["real", "real"] and "99.00 %" in rows[0]["metrics"]
    assert len(colab_files.downloaded) == 1
    import zipfile
    assert sorted(zipfile.ZipFile(colab_files.downloaded[0]).namelist()) == ["task3_scratch.pt", "task3_task1.pt"]


# ----------------------------------------------------------------------------- no machine paths

ABSOLUTE_PATH = re.compile(r"(?<![\w.:/])(/(?:work|tmp|home|root|content|Users|var|mnt|opt)/[\w.-]+|[A-Z]:\\\\[\w.-]+)")


def published_texts():
    for name in NOTEBOOKS:
        yield name, (PROJECT_ROOT / name).read_text()
    for path in sorted((PROJECT_ROOT / "results").glob("*.json")):
        yield f"results/{path.name}", path.read_text()
    for path in sorted((PROJECT_ROOT / "checkpoints").glob("*.pt")):
        yield f"checkpoints/{path.name}", json.dumps(read_checkpoint(path)["metadata"], default=str)


def test_nothing_we_publish_holds_an_absolute_path():
    found = {name: ABSOLUTE_PATH.findall(text)[:3] for name, text in published_texts()}
    assert not {name: paths for name, paths in found.items() if paths}
