"""Repository tooling: keep README's results and checkpoint tables equal to what the runs produced.

Each task writes `results/<task>.json` with its run records (`analysis.Run`) and the summary rows its
`summary_rows` queries from them (what, value, command, machine); each checkpoint carries its metrics in its
metadata; each exploration writes its run records to `explorations/results/`. `python -m tools.readme_tables`
rewrites the README's tables and the benchmark's section between its markers from those files, and
`explorations/README.md`'s table from the explorations' records, so no number in them is typed by hand; a test
checks both READMEs are up to date.
"""
from __future__ import annotations

from pathlib import Path

from src.settings import PROJECT_ROOT, checkpoint_dir, load_results

RESULTS_MARKERS = ("<!-- results:start -->", "<!-- results:end -->")
CHECKPOINT_MARKERS = ("<!-- checkpoints:start -->", "<!-- checkpoints:end -->")
PERFORMANCE_MARKERS = ("<!-- performance:start -->", "<!-- performance:end -->")
RUNTIME_MARKERS = ("<!-- runtimes:start -->", "<!-- runtimes:end -->")
EXPLORATION_MARKERS = ("<!-- explorations:start -->", "<!-- explorations:end -->")
EXPLORATIONS_README = PROJECT_ROOT / "explorations" / "README.md"
RESULT_FILES = ("task1", "task1_test", "task2", "task3")
BENCH_README = PROJECT_ROOT / "bench" / "README.md"


def headline(name: str, results: dict) -> list[dict]:
    """A task's summary rows as its run stored them; Task 1's one evaluation on testPart1 from its report."""
    if results.get("headline"):
        return results["headline"]
    from src.task1 import test_summary_rows
    return test_summary_rows(results) if name == "task1_test" else []


def results_table() -> str:
    """One small table per task, under a line naming the command and the machine behind its rows."""
    groups = {}
    for name in RESULT_FILES:
        results = load_results(name, "full")
        for row in headline(name, results) if results else []:
            groups.setdefault(name.split("_")[0], []).append(row)
    if not groups:
        return "No full-budget results yet: `make reproduce`."
    lines = []
    for task, rows in groups.items():
        commands = " and ".join(dict.fromkeys(f"`{row['command']}`" for row in rows))
        machines = "; ".join(dict.fromkeys(row["machine"] for row in rows))
        lines += [f"**{task.replace('task', 'Task ')}**: {commands}, on {machines}", "", "| result | value |",
                  "|---|---|", *[f"| {row['what']} | {row['value']} |" for row in rows], ""]
    return "\n".join(lines + [note for note in changed_inputs().values()]).rstrip()


def changed_inputs() -> dict[str, str]:
    """A sentence per task whose results started from inputs that have changed since: the Task 1 network (task1.pt)
    or trainPart1 (Task 2's digits). Such rows, and the checkpoints the same run saved, still describe their own run,
    but not one run with Task 1's."""
    import re

    from src.data.files import sha256_of_source
    task1 = load_results("task1", "full") or {}
    network = checkpoint_dir("full") / "task1.pt"
    current = {"task1.pt": sha256_of_source(network)[:12] if network.is_file() else None,
               "trainPart1": (task1.get("data_sha256") or "")[:12] or None}
    notes = {}
    recipe_changes = changed_recipe(task1.get("recipe"))
    if recipe_changes:
        notes["task1"] = (f"The Task 1 rows come from a run of an earlier recipe (changed since: "
                          f"{'; '.join(recipe_changes)}). `make reproduce` re-runs it.")
    for name in ("task2", "task3"):
        results = load_results(name, "full")
        if not results:
            continue
        used = {"task1.pt": (results.get("task1_start") or {}).get("sha256")}
        for described in results.get("data", []):
            match = re.match(r"trainPart1: .*sha256 ([0-9a-f]{12})", described)
            if match:
                used["trainPart1"] = match.group(1)
        changed = [f"{what} (then sha256 {used[what]}, now sha256 {current[what]})" for what in used
                   if used[what] and current[what] and used[what] != current[what]]
        if changed:
            notes[name] = (f"The {name.replace('task', 'Task ')} rows come from a run whose inputs have changed since: "
                           f"{'; '.join(changed)}. `make reproduce` re-runs it.")
    return notes


def changed_recipe(stored: dict | None) -> list[str]:
    """What differs between the Task 1 recipe a run stored and today's (`src.task1.recipe_for("full")`), as
    "preprocessing 'mnist' -> 'mnist_thinned'"."""
    if not stored:
        return []
    from src.task1 import recipe_for

    def flat(value, prefix=""):
        if isinstance(value, dict):
            return {key: leaf for name, part in value.items() for key, leaf in flat(part, f"{prefix}{name}.").items()}
        return {prefix.rstrip("."): value}
    before, now = flat(stored), flat(recipe_for("full").to_dict())
    # A field the stored recipe lacks was added since, at a value that keeps the old behaviour: not a change.
    return [f"{key} {before.get(key)!r} -> {now.get(key)!r}" for key in sorted(before)
            if before.get(key) != now.get(key)]


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


def checkpoints_table() -> str:
    """Every full-budget checkpoint with what it stores; a task's checkpoints whose run started from inputs that have
    changed since (`changed_inputs`) are marked stale, like that task's result rows."""
    from src.checkpoints import CHECKPOINT_DESCRIPTIONS, describe_checkpoints
    rows = describe_checkpoints([checkpoint_dir("full") / name for name in CHECKPOINT_DESCRIPTIONS])
    stale_tasks = changed_inputs()
    lines = ["| file | what it is | metrics stored in it | size |", "|---|---|---|---|"]
    tasks = [Path(r["file"]).stem.split("_")[0] for r in rows]  # task1.pt, task2_digits400.pt -> task1, task2
    for r, task in zip(rows, tasks):
        stale = " **Stale:** saved by the run that the note below names." if task in stale_tasks else ""
        data = "" if r["data"] == "real" else f" (trained on {r['data']})"
        lines.append(f"| `{r['file']}` | {r['what']}{data}{stale} | {r['metrics']} | {r['size']} |")
    if len(lines) == 2:
        lines.append("| – | no full-budget checkpoints yet (`make reproduce`) | | |")
    return "\n".join(lines + [f"\n{note}" for task, note in stale_tasks.items() if task in tasks])


def performance_section(everything: bool = False) -> str:
    """`results/bench.json`'s headline rows for README, or every row and the notes that qualify them for
    bench/README.md."""
    bench = load_results("bench", "full")
    if not bench:
        return "No benchmark run yet: `make bench` writes `results/bench.json`, then `python -m tools.readme_tables`."
    # README: the headline rows that hold a measurement; bench/README.md: every row, "not measured" ones included
    rows = [row for row in bench["rows"] if everything or (row.get("headline") and not row["value"].startswith(
        "not measured"))]
    lines = [f"Measured with `{bench['command']}` on {bench['machine']['summary']} (torch {bench['machine']['torch']})"
             + ("" if everything else "; every row and its assumptions: [bench/README.md](bench/README.md)") + ".",
             "", "| what | value |", "|---|---|", *[f"| {row['what']} | {row['value']} |" for row in rows]]
    return "\n".join(lines + ([""] + [f"- {note}" for note in bench["notes"]] if everything else []))


def _replace_between(text: str, markers: tuple[str, str], content: str) -> str:
    start, end = markers
    if start not in text or end not in text:
        raise ValueError(f"the text lacks the markers {start} ... {end}")
    before, rest = text.split(start, 1)
    _, after = rest.split(end, 1)
    return f"{before}{start}\n{content}\n{end}{after}"


def explorations_table() -> str:
    """One row per exploration question that has been answered: question, answer, command, machine."""
    from explorations.rows import answer_text, rows
    lines = ["| question | answer (against the recipe's own runs, paired) | command | machine |", "|---|---|---|---|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in (
                 f"{row['task'].replace('task', 'Task ')}: {row['question']}", answer_text(row), f"`{row['command']}`",
                 row["machine"])) + " |" for row in rows()]
    return "\n".join(lines)


def updated_explorations_readme(text: str) -> str:
    return _replace_between(text, EXPLORATION_MARKERS, explorations_table())


def updated_readme(text: str) -> str:
    text = _replace_between(text, RESULTS_MARKERS, results_table())
    text = _replace_between(text, PERFORMANCE_MARKERS, performance_section())
    text = _replace_between(text, RUNTIME_MARKERS, runtimes_table())
    return _replace_between(text, CHECKPOINT_MARKERS, checkpoints_table())


def update_readme(path: Path = PROJECT_ROOT / "README.md", update=updated_readme) -> bool:
    text = path.read_text()
    new = update(text)
    if new != text:
        path.write_text(new)
    return new != text


def updated_bench_readme(text: str) -> str:
    return _replace_between(text, PERFORMANCE_MARKERS, performance_section(everything=True))


if __name__ == "__main__":
    changed = (update_readme() | update_readme(EXPLORATIONS_README, updated_explorations_readme)
               | update_readme(BENCH_README, updated_bench_readme))
    print("README tables " + ("updated" if changed else "already up to date"))
