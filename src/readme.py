"""Keep README's results table equal to what the runs produced.

Each task writes `results/<task>.json` with a `headline` list of rows (what, value, command,
machine). `python -m src report` rewrites the table between the README's markers from those
files, so no number in it is typed by hand; a test checks the README is up to date.
"""
from __future__ import annotations

from pathlib import Path

from .runs import PROJECT_ROOT, load_results

START, END = "<!-- results:start -->", "<!-- results:end -->"
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


def updated_readme(text: str) -> str:
    if START not in text or END not in text:
        raise ValueError(f"README.md lacks the markers {START} ... {END}")
    before, rest = text.split(START, 1)
    _, after = rest.split(END, 1)
    return f"{before}{START}\n{results_table()}\n{END}{after}"


def update_readme(path: Path = PROJECT_ROOT / "README.md") -> bool:
    text = path.read_text()
    new = updated_readme(text)
    if new != text:
        path.write_text(new)
    return new != text
