"""The README states only what the committed results say, its commands run as written, and CI runs its test command."""
import json
import re
import shutil
from pathlib import Path

import pytest

from src.settings import PROJECT_ROOT
from tests.generated import png_bytes, draw_character, trainpart1_entries, write_zip
from tools.readme_tables import (BENCH_README, EXPLORATIONS_README, updated_bench_readme, updated_explorations_readme,
                                 updated_readme)

README = PROJECT_ROOT / "README.md"


def test_every_generated_table_is_what_the_committed_results_produce(monkeypatch):
    monkeypatch.delenv("PLAYMNIST_RESULTS_DIR")  # the committed results/ and checkpoints/, not the test's folders
    monkeypatch.delenv("PLAYMNIST_CHECKPOINT_DIR")
    for path, update in ((README, updated_readme), (EXPLORATIONS_README, updated_explorations_readme),
                         (BENCH_README, updated_bench_readme)):
        text = path.read_text()
        assert update(text) == text, f"{path.name} is stale: run `python -m tools.readme_tables`"


def test_the_answers_come_first_the_quick_start_has_two_commands_and_ci_runs_the_test_command():
    text = README.read_text()
    first_lines = "\n".join(text.splitlines()[:30])
    assert all(f"**Task {n}**" in first_lines for n in (1, 2, 3)) and first_lines.count("%") >= 5
    assert len(text.split()) <= 2500
    quick_start = text.split("## Quick start", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    assert [line.split("#")[0].strip() for line in quick_start.strip().splitlines()] == ["make reproduce", "make test"]
    assert re.search(r"^make test$", (PROJECT_ROOT / ".ci" / "run").read_text(), re.MULTILINE)


def readme_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(), flags=re.DOTALL)


@pytest.fixture
def user_folder(tmp_path, monkeypatch, character_checkpoint):
    """A folder a user runs README's commands from: the committed checkpoints' names (Task 1's network an untrained
    one of the same kind), their own drawing, and a testPart1 found where the loaders look."""
    (tmp_path / "checkpoints").mkdir()
    shutil.copy(character_checkpoint, tmp_path / "checkpoints" / "task1.pt")
    (tmp_path / "my_drawing.png").write_bytes(png_bytes(draw_character(10, writer=1)))
    monkeypatch.setenv("PLAYMNIST_TESTPART1", str(write_zip(tmp_path / "testPart1.zip", trainpart1_entries(
        writers=range(1, 3), prefix="test/"))))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_fast_commands_of_the_command_line_section_run_as_written(user_folder, capsys):
    """Every `python -m src evaluate` and `recognise` line of README's command block runs, on generated data, and
    exits 0; the slow ones (data, train, bench) are only parsed."""
    from src.__main__ import main
    commands = [line.split("#")[0].split() for block in readme_blocks("bash") for line in block.splitlines()
                if line.startswith("python -m src ")]
    assert {command[3] for command in commands} >= {"data", "train", "evaluate", "recognise"}
    for command in commands:
        if command[3] in ("evaluate", "recognise") and "mnist-test" not in command:
            assert main(command[3:]) == 0, " ".join(command)
            assert "error" not in capsys.readouterr().err
        else:
            with pytest.raises(SystemExit) as parsed:  # argparse accepts the command as written
                main([*command[3:], "--help"])
            assert parsed.value.code == 0


def test_the_python_example_runs_as_written(user_folder, capsys):
    (example,) = readme_blocks("python")
    exec(compile(example, "README.md", "exec"), {})
    assert "[(" in capsys.readouterr().out  # its top 3: (character, probability) pairs


def test_every_test_the_robustness_table_names_exists():
    import ast
    section = README.read_text().split("## Robustness", 1)[1].split("\n## ", 1)[0]
    references = re.findall(r"`([\w./]+)::([\w*]+)`", section)
    assert len(references) >= 8
    for file, name in references:
        defined = {node.name for node in ast.walk(ast.parse((PROJECT_ROOT / "tests" / file).read_text()))
                   if isinstance(node, ast.FunctionDef)}
        assert any(re.fullmatch(name.replace("*", ".*"), d) for d in defined), f"README names {file}::{name}"


def test_results_and_checkpoints_of_a_run_from_an_older_task1_network_are_marked_stale(tmp_path, monkeypatch):
    """Task 2 started from a task1.pt that has since been replaced: its rows and its checkpoints say so; Task 3, which
    started from today's task1.pt, is not marked."""
    import src.checkpoints
    from src.data.files import sha256_of_source
    from tools import readme_tables
    checkpoints, results = tmp_path / "checkpoints", tmp_path / "results"
    checkpoints.mkdir()
    results.mkdir()
    (checkpoints / "task1.pt").write_bytes(b"today's Task 1 network")
    today = sha256_of_source(checkpoints / "task1.pt")[:12]
    (results / "task1.json").write_text(json.dumps({"data_sha256": "a2b546b471dc" + "0" * 52}))
    for task, started_from in (("task2", "1b414c47b7ce"), ("task3", today)):
        (results / f"{task}.json").write_text(json.dumps({"task1_start": {"sha256": started_from}, "data": [
            "trainPart1: REAL data from trainPart1.zip (2480 files, sha256 a2b546b471dc)"]}))
    notes = readme_tables.changed_inputs()
    assert list(notes) == ["task2"] and f"then sha256 1b414c47b7ce, now sha256 {today}" in notes["task2"]

    def described(paths):
        return [{"file": f"checkpoints/{Path(path).name}", "what": "a network", "metrics": "", "data": "real",
                 "device": "cpu", "precision": "float32", "size": "0.7 MB"}
                for path in paths if Path(path).name in ("task2_mnist_scratch.pt", "task3_task1.pt")]
    monkeypatch.setattr(src.checkpoints, "describe_checkpoints", described)
    row = {line.split("|")[1].strip(): line for line in readme_tables.checkpoints_table().splitlines()
           if line.startswith("| `")}
    assert "Stale" in row["`checkpoints/task2_mnist_scratch.pt`"] and "Stale" not in row["`checkpoints/task3_task1.pt`"]


def test_task1_rows_from_an_earlier_recipe_say_what_changed_and_a_field_added_since_is_no_change():
    from dataclasses import replace

    from src.task1 import recipe_for
    from tools.readme_tables import changed_recipe
    today = recipe_for("full")
    assert changed_recipe(today.to_dict()) == []
    earlier = replace(today, preprocessing="resize32", training=replace(today.training, epochs=40)).to_dict()
    del earlier["training"]["frozen_backbone"]  # a run from before the field existed
    assert changed_recipe(earlier) == [f"preprocessing 'resize32' -> {today.preprocessing!r}",
                                       f"training.epochs 40 -> {today.training.epochs}"]
