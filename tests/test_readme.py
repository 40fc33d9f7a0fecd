"""The README states only what the committed results say, and CI runs the README's test command."""
import re

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

