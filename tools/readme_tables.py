"""Repository tooling: keep README's results and checkpoint tables equal to what the runs produced.

Each task writes `results/<task>.json` with a `headline` list of rows (what, value, command,
machine), and each checkpoint carries its metrics in its metadata. `python -m tools.readme_tables`
rewrites those tables and the benchmark's section between the README's markers from those files, so no number in them is
typed by hand; a test checks the README is up to date.
"""
from __future__ import annotations

from pathlib import Path

from src.runs import PROJECT_ROOT, checkpoint_dir, load_results

RESULTS_MARKERS = ("<!-- results:start -->", "<!-- results:end -->")
CHECKPOINT_MARKERS = ("<!-- checkpoints:start -->", "<!-- checkpoints:end -->")
PERFORMANCE_MARKERS = ("<!-- performance:start -->", "<!-- performance:end -->")
RUNTIME_MARKERS = ("<!-- runtimes:start -->", "<!-- runtimes:end -->")
NOTEBOOKS = ("task1", "task2", "task3")
RESULT_FILES = ("task1", "task2", "task3", "bench")


def results_table() -> str:
    lines = ["| task | result | value | command | machine |", "|---|---|---|---|---|"]
    for name in RESULT_FILES:
        results = load_results(name, "full")
        if not results:
            continue
        for row in results.get("headline", []):
            lines.append(f"| {name} | {row['what']} | {row['value']} | `{row['command']}` | {row['machine']} |")
    if len(lines) == 2:
        lines.append("| – | no full-budget results yet | | `make reproduce` | |")
    return "\n".join(lines)


def runtimes_table(notebook: str | None = None) -> str:
    """Measured wall time of each notebook at the full budget, per machine (`results/runtimes.json`,
    written by `tools.run_notebook` after each headless execution)."""
    runtimes = load_results("runtimes", "full") or {"rows": []}
    rows = [row for row in runtimes["rows"] if notebook in (None, row["notebook"])]
    if not rows:
        return "No full-budget run time measured yet (`make reproduce`)."
    lines = ["| notebook | machine | wall time, full budget | command | measured |", "|---|---|---|---|---|"]
    for row in rows:
        minutes = f"{row['seconds'] / 60:.1f} min" if row["seconds"] >= 60 else f"{row['seconds']:.0f} s"
        measured = row["date"] + (f", {row['note']}" if row.get("note") else "")
        lines.append(f"| {row['notebook']}.ipynb | {row['machine']} | {minutes} | `{row['command']}` | {measured} |")
    return "\n".join(lines)


def update_notebook_runtimes() -> list[str]:
    """Write each notebook's own run-time table into its first (markdown) cell; returns those changed."""
    import nbformat
    changed = []
    for name in NOTEBOOKS:
        path = PROJECT_ROOT / f"{name}.ipynb"
        notebook = nbformat.read(path, as_version=4)
        first = notebook.cells[0]
        new = _replace_between(first.source, RUNTIME_MARKERS, runtimes_table(name))
        if new != first.source:
            first.source = new
            path.write_text(nbformat.writes(notebook))
            changed.append(path.name)
    return changed


def checkpoints_table() -> str:
    from src.checkpoints import CHECKPOINT_DESCRIPTIONS, describe_checkpoints
    rows = describe_checkpoints([checkpoint_dir("full") / name for name in CHECKPOINT_DESCRIPTIONS])
    lines = ["| file | what it is | metrics stored in it | data | trained on | size |", "|---|---|---|---|---|---|"]
    lines += [f"| `{r['file']}` | {r['what']} | {r['metrics']} | {r['data']} | {r['device']} ({r['precision']}) | {r['size']} |"
              for r in rows]
    if len(lines) == 2:
        lines.append("| – | no full-budget checkpoints yet (`make reproduce`) | | | | |")
    return "\n".join(lines)


def performance_section() -> str:
    """Every row of `results/bench.json` (not only the headline ones) and the notes that qualify them."""
    bench = load_results("bench", "full")
    if not bench:
        return "No benchmark run yet: `make bench` writes `results/bench.json`, then `python -m tools.readme_tables`."
    lines = [f"Measured with `{bench['command']}` on {bench['machine']['summary']} (torch {bench['machine']['torch']}).", "",
             "| what | value |", "|---|---|"]
    lines += [f"| {row['what']} | {row['value']} |" for row in bench["rows"]]
    lines += [""] + [f"- {note}" for note in bench["notes"]]
    return "\n".join(lines)


def _replace_between(text: str, markers: tuple[str, str], content: str) -> str:
    start, end = markers
    if start not in text or end not in text:
        raise ValueError(f"the text lacks the markers {start} ... {end}")
    before, rest = text.split(start, 1)
    _, after = rest.split(end, 1)
    return f"{before}{start}\n{content}\n{end}{after}"


def updated_readme(text: str) -> str:
    text = _replace_between(text, RESULTS_MARKERS, results_table())
    text = _replace_between(text, PERFORMANCE_MARKERS, performance_section())
    text = _replace_between(text, RUNTIME_MARKERS, runtimes_table())
    return _replace_between(text, CHECKPOINT_MARKERS, checkpoints_table())


def update_readme(path: Path = PROJECT_ROOT / "README.md") -> bool:
    text = path.read_text()
    new = updated_readme(text)
    if new != text:
        path.write_text(new)
    return new != text


if __name__ == "__main__":
    changed = update_readme()
    notebooks = update_notebook_runtimes()
    print("README tables " + ("updated" if changed else "already up to date") +
          (f"; run times rewritten in {', '.join(notebooks)}" if notebooks else ""))
