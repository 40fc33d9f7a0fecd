"""Every notebook runs top to bottom with the quick budget, on the real data where it is given, and still learns.

Executed into a temporary copy with data, checkpoints and results in temporary folders shared by the three (Task 3
starts from the Task 1 network the first one saves), so neither the committed outputs nor the user's data/ are touched.
"""
import os

import nbformat
import pytest

from src import analysis
from src.settings import load_results
from tools.run_notebook import PROJECT_ROOT, execute_notebook

NOTEBOOKS = ["task1.ipynb", "task2.ipynb", "task3.ipynb"]


@pytest.fixture(scope="module")
def shared_folders(tmp_path_factory):
    return {name: tmp_path_factory.mktemp(name) for name in ("data", "checkpoints", "results")}


@pytest.mark.notebook
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_with_the_quick_budget(name, tmp_path, monkeypatch, shared_folders, capsys):
    monkeypatch.setenv("PLAYMNIST_BUDGET", "quick")
    for kind, folder in shared_folders.items():
        monkeypatch.setenv(f"PLAYMNIST_{kind.upper()}_DIR", str(folder))
    with capsys.disabled():  # its line per training reaches the terminal: minutes of silence would look like a hang
        print()
        output = execute_notebook(PROJECT_ROOT / name, tmp_path / name, timeout_seconds=1200)  # per cell
    notebook = nbformat.read(output, as_version=4)
    printed = "\n".join(o.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                        for o in cell.get("outputs", []) if o.get("output_type") == "stream")
    assert "Budget: quick (a smoke run" in printed
    if os.environ.get("PLAYMNIST_TRAINPART1") and name == "task1.ipynb":
        assert "trainPart1: REAL data" in printed
    if os.environ.get("PLAYMNIST_MNISTTASK3") and name == "task3.ipynb":
        # Even the quick budget learns MNIST from the archive's folders alone, from scratch, through both stages
        # (chance is 10 %; the folders read as labels give about 0 %).
        assert "mnistTask3: REAL data" in printed
        runs = analysis.runs_of(load_results("task3", "quick"))
        assert analysis.over_runs(runs, "mnist_test_accuracy", method="two_stage", start="scratch")["mean"] >= 0.95
