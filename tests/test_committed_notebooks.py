"""What a reader of a committed notebook may rely on: its outputs are one complete top-to-bottom run, its prose states
no number that run did not print (or that the literature did not give), and it talks about the answer, not about how
the repository was made (that lives in git history and in results' metadata). README's prose is held to its tables.

A notebook committed with no outputs at all (not yet executed at the full budget since its code last changed) is
allowed: it claims nothing from a run, and its prose is checked when it has one. Anything in between, some cells run
and others not, or run out of order, is not."""
import re

import nbformat
import pytest

from src.settings import PROJECT_ROOT

NOTEBOOKS = ["task1.ipynb", "task2.ipynb", "task3.ipynb"]
HISTORY = re.compile(r"\bissues? ?#?\d+|\(issue|\bsessions?\b|\blent\b|\bthe team\b|\bgoal was\b|\bstatus\b|"
                     r"\binternal target", re.IGNORECASE)
HEX = re.compile(r"(?<![0-9a-zA-Z])(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{7,40}(?![0-9a-zA-Z])")
NAMED_HASH = re.compile(r"(sha256 |Commit: )[0-9a-f]{7,40}")  # a data checksum, or the run's commit in the banner
# The numbers prose states about a run: percentages, p-values, times, and counts written with thousands separators.
NUMBER = re.compile(r"(?P<value>\d[\d,]*(?:\.\d+)?)\s?(?:%|s\b|seconds\b|min\b|minutes\b)|p\s?[=<]\s?(?P<p>0?\.\d+)|"
                    r"(?P<count>\d{1,3}(?:,\d{3})+)")
PLACEHOLDER = re.compile(r"\b(?:ANSWER|CONCLUSION|TEST_HISTORY)_[A-Z0-9_]+")  # prose to be written from a run
CITATION = re.compile(r"\b(?:19|20)\d{2}\b|\]\(https?://")  # (Author, 2019) or a link: a figure from elsewhere


def texts(notebook):
    """(where, text) of every markdown cell and every printed or displayed output."""
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "markdown":
            yield f"cell {index} (markdown)", cell.source
        for output in cell.get("outputs", []):
            text = output.get("text") or output.get("data", {}).get("text/markdown") or \
                output.get("data", {}).get("text/plain", "")
            yield f"cell {index} (output)", "".join(text) if isinstance(text, list) else text


def unsupported_numbers(prose: str, evidence: str) -> list[str]:
    """The numbers `prose` states that `evidence` does not contain, sentence by sentence; a sentence with a citation
    quotes its numbers from elsewhere. Code blocks are not prose."""
    prose = re.sub(r"```.*?```|`[^`]*`", "", prose, flags=re.DOTALL)
    missing = []
    for sentence in re.split(r"(?<=[.;:!?])\s+|\n\s*[-*\d.]+\s", prose):
        if CITATION.search(sentence):
            continue
        for match in NUMBER.finditer(sentence):
            number = next(group for group in match.groups() if group).rstrip(",")
            if number not in evidence and number.replace(",", "") not in evidence:
                missing.append(f"{number} ('{sentence.strip()[:80]}')")
    return missing


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
        offences += [f"{where}: the placeholder {found} was never written" for found in PLACEHOLDER.findall(text)]
        for match in HEX.finditer(NAMED_HASH.sub("", text)):
            offences.append(f"{where}: '{match.group(0)}' looks like a commit hash")
    if not never_run:
        printed = "\n".join(text for where, text in texts(notebook) if where.endswith("(output)"))
        for index, cell in enumerate(notebook.cells):
            if cell.cell_type == "markdown":
                offences += [f"cell {index}: states {found}, which no output of this run prints"
                             for found in unsupported_numbers(cell.source, printed)]
    return offences


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_a_committed_notebook_is_one_clean_run_about_its_answer(name):
    assert notebook_offences(nbformat.read(PROJECT_ROOT / name, as_version=4)) == []


def test_the_check_catches_a_rerun_cell_an_error_a_hash_history_and_an_unprinted_number():
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell("a", execution_count=1), nbformat.v4.new_code_cell("b", execution_count=3),
                      nbformat.v4.new_markdown_cell("Fixed in issue 12 at commit 39a29d7. It reads 91.2 %, p = 0.03; "
                                                    "MNIST's 60,000 images in 12 s. LeCun et al. (1998) got 99.3 %. "
                                                    "ANSWER_TASK1")]
    notebook.cells[1].outputs = [nbformat.v4.new_output("error", ename="ValueError", evalue="", traceback=[]),
                                 nbformat.v4.new_output("stream", text="Budget: full | Commit: 39a29d7 | 60000 | 12 s\n")]
    offences = notebook_offences(notebook)
    assert "not one top-to-bottom run" in offences[0] and "ValueError" in offences[1]
    assert any("ANSWER_TASK1 was never written" in o for o in offences)
    assert any("'issue 12'" in o for o in offences) and any("'39a29d7'" in o and "markdown" in o for o in offences)
    unprinted = [o for o in offences if "no output of this run prints" in o]
    assert [o.split("states ")[1].split(" ")[0] for o in unprinted] == ["91.2", "0.03"]  # 60,000 and 12 s printed; 99.3 cited


def test_a_notebook_never_run_is_allowed_but_one_run_in_part_is_not():
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell("a"), nbformat.v4.new_markdown_cell("## The answer: 99.1 %"),
                      nbformat.v4.new_code_cell("b")]
    assert notebook_offences(notebook) == []
    notebook.cells[2].execution_count = 1
    notebook.cells[2].outputs = [nbformat.v4.new_output("stream", text="99.1 %\n")]
    assert "not one top-to-bottom run" in notebook_offences(notebook)[0]
    notebook.cells[2].execution_count, notebook.cells[0].execution_count = 2, 1
    assert notebook_offences(notebook) == []


def test_readme_prose_states_only_numbers_its_generated_tables_hold():
    text = (PROJECT_ROOT / "README.md").read_text()
    tables = "\n".join(re.findall(r"<!-- \w+:start -->(.*?)<!-- \w+:end -->", text, flags=re.DOTALL))
    prose = re.sub(r"<!-- \w+:start -->.*?<!-- \w+:end -->", "", text, flags=re.DOTALL)
    assert unsupported_numbers(prose, tables) == [] and not PLACEHOLDER.search(text)
