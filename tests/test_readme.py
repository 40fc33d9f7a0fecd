"""The README states only what the committed results say, and CI runs the README's test command."""
import re
from pathlib import Path

from tools.readme_tables import updated_readme
from src.runs import PROJECT_ROOT


def test_results_table_is_what_the_committed_results_produce(monkeypatch):
    monkeypatch.delenv("PLAYMNIST_RESULTS_DIR")  # the committed results/ and checkpoints/, not the test's temporary folders
    monkeypatch.delenv("PLAYMNIST_CHECKPOINT_DIR")
    text = (PROJECT_ROOT / "README.md").read_text()
    assert updated_readme(text) == text, "README is stale: run `python -m tools.readme_tables`"


def test_explorations_table_is_what_their_run_records_give():
    from tools.readme_tables import EXPLORATIONS_README, updated_explorations_readme
    text = EXPLORATIONS_README.read_text()
    assert updated_explorations_readme(text) == text, "explorations/README.md is stale: run `python -m tools.readme_tables`"


def test_quick_start_has_two_commands_and_ci_runs_the_test_command():
    text = (PROJECT_ROOT / "README.md").read_text()
    quick_start = text.split("## Quick start", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in quick_start.strip().splitlines()]
    assert commands == ["make reproduce", "make test"]
    assert re.search(r"^make test$", (PROJECT_ROOT / ".ci" / "run").read_text(), re.MULTILINE)


def test_every_test_the_robustness_table_names_exists():
    import ast
    section = (PROJECT_ROOT / "README.md").read_text().split("## Robustness", 1)[1].split("\n## ", 1)[0]
    names_by_file, current = {}, None
    for reference in re.findall(r"`([\w./]*::[\w*]+)`", section):
        file, name = reference.split("::")
        current = file or current
        names_by_file.setdefault(current, []).append(name)
    assert len(names_by_file) >= 5
    for file, names in names_by_file.items():
        tree = ast.parse((PROJECT_ROOT / "tests" / file).read_text())
        defined = {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
        for name in names:
            pattern = re.compile(name.replace("*", ".*") + "$")
            assert any(pattern.match(d) for d in defined), f"README names {file}::{name}, which does not exist"


def test_results_and_checkpoints_of_a_run_from_an_older_task1_network_are_marked_stale(tmp_path, monkeypatch):
    """Task 2 started from a task1.pt that has since been replaced: its rows and its checkpoints say so; Task 3, which
    started from today's task1.pt, is not marked."""
    import json

    import src.checkpoints
    from src.files import sha256_of_source
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
    assert list(notes) == ["task2"]
    assert f"then sha256 1b414c47b7ce, now sha256 {today}" in notes["task2"]

    def described(paths):
        return [{"file": f"checkpoints/{Path(path).name}", "what": "a network", "metrics": "", "data": "real",
                 "device": "cpu", "precision": "float32", "size": "0.7 MB"}
                for path in paths if Path(path).name in ("task2_mnist_scratch.pt", "task3_task1.pt")]
    monkeypatch.setattr(src.checkpoints, "describe_checkpoints", described)
    table = readme_tables.checkpoints_table()
    row = {line.split("|")[1].strip(): line for line in table.splitlines() if line.startswith("| `")}
    assert "Stale" in row["`checkpoints/task2_mnist_scratch.pt`"]
    assert "Stale" not in row["`checkpoints/task3_task1.pt`"]
    assert notes["task2"] in table


def test_task1_rows_from_an_earlier_recipe_say_what_changed():
    from dataclasses import replace

    from src.task1 import recipe_for
    from tools.readme_tables import changed_recipe
    today = recipe_for("full")
    assert changed_recipe(today.to_dict()) == []
    earlier = replace(today, preprocessing="resize32", training=replace(today.training, epochs=40))
    assert changed_recipe(earlier.to_dict()) == [f"preprocessing 'resize32' -> {today.preprocessing!r}",
                                                 f"training.epochs 40 -> {today.training.epochs}"]
