"""The README states only what the committed results say, and CI runs the README's test command."""
import re

from src.readme import updated_readme
from src.runs import PROJECT_ROOT


def test_results_table_is_what_the_committed_results_produce(monkeypatch):
    monkeypatch.delenv("PLAYMNIST_RESULTS_DIR")  # the committed results/, not the test's temporary folder
    text = (PROJECT_ROOT / "README.md").read_text()
    assert updated_readme(text) == text, "README is stale: run `python -m src report`"


def test_quick_start_has_two_commands_and_ci_runs_the_test_command():
    text = (PROJECT_ROOT / "README.md").read_text()
    quick_start = text.split("## Quick start", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in quick_start.strip().splitlines()]
    assert commands == ["make reproduce", "make test"]
    assert re.search(r"^make test$", (PROJECT_ROOT / ".ci" / "run").read_text(), re.MULTILINE)
