"""What a reader of a committed notebook may rely on: its outputs are one complete top-to-bottom run, and it talks
about the answer, not about how the repository was made (that lives in git history and in results' metadata).

A notebook committed with no outputs at all (not yet executed at the full budget since its code last changed) is
allowed: it claims nothing. Anything in between, some cells run and others not, or run out of order, is not."""
import re

import nbformat
import pytest

from src.files import PROJECT_ROOT

NOTEBOOKS = ["task1.ipynb", "task2.ipynb", "task3.ipynb"]
HISTORY = re.compile(r"\bissues? ?#?\d+|\(issue|\bsessions?\b|\blent\b|\bthe team\b|\bgoal was\b|\bstatus\b|"
                     r"\binternal target", re.IGNORECASE)
HEX = re.compile(r"(?<![0-9a-zA-Z])(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{7,40}(?![0-9a-zA-Z])")
NAMED_HASH = re.compile(r"(sha256 |Commit: )[0-9a-f]{7,40}")  # a data checksum, or the run's commit in the banner


def texts(notebook):
    """(where, text) of every markdown cell and every printed or displayed output."""
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "markdown":
            yield f"cell {index} (markdown)", cell.source
        for output in cell.get("outputs", []):
            text = output.get("text") or output.get("data", {}).get("text/markdown") or \
                output.get("data", {}).get("text/plain", "")
            yield f"cell {index} (output)", "".join(text) if isinstance(text, list) else text


def notebook_offences(notebook) -> list[str]:
    offences = []
    counts = [cell.execution_count for cell in notebook.cells if cell.cell_type == "code"]
    never_run = all(count is None for count in counts) and not any(cell.get("outputs") for cell in notebook.cells)
    if counts != list(range(1, len(counts) + 1)) and not never_run:
        offences.append(f"execution counts are {counts}, not 1..{len(counts)} in order: not one top-to-bottom run")
    for index, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                offences.append(f"cell {index}: an error output ({output.get('ename')})")
    for where, text in texts(notebook):
        for match in HISTORY.finditer(text):
            offences.append(f"{where}: '{match.group(0)}' talks about how the repository was made")
        for match in HEX.finditer(NAMED_HASH.sub("", text)):
            offences.append(f"{where}: '{match.group(0)}' looks like a commit hash")
    return offences


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_a_committed_notebook_is_one_clean_run_about_its_answer(name):
    assert notebook_offences(nbformat.read(PROJECT_ROOT / name, as_version=4)) == []


def test_the_check_catches_a_rerun_cell_an_error_a_hash_and_history():
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell("a", execution_count=1), nbformat.v4.new_code_cell("b", execution_count=3),
                      nbformat.v4.new_markdown_cell("Fixed in issue 12 at commit 39a29d7.")]
    notebook.cells[1].outputs = [nbformat.v4.new_output("error", ename="ValueError", evalue="", traceback=[]),
                                 nbformat.v4.new_output("stream", text="Budget: full | Commit: 39a29d7 | sha256 a2b546b471dc\n")]
    offences = notebook_offences(notebook)
    assert len(offences) == 4 and "not one top-to-bottom run" in offences[0] and "ValueError" in offences[1]
    assert any("'issue 12'" in o for o in offences) and any("'39a29d7'" in o and "markdown" in o for o in offences)


def test_a_notebook_never_run_is_allowed_but_one_run_in_part_is_not():
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell("a"), nbformat.v4.new_markdown_cell("## The answer"),
                      nbformat.v4.new_code_cell("b")]
    assert notebook_offences(notebook) == []
    notebook.cells[2].execution_count = 1
    notebook.cells[2].outputs = [nbformat.v4.new_output("stream", text="99.1 %\n")]
    assert "not one top-to-bottom run" in notebook_offences(notebook)[0]
    notebook.cells[2].execution_count, notebook.cells[0].execution_count = 2, 1
    assert notebook_offences(notebook) == []
