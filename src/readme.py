"""Keep README's results and checkpoint tables equal to what the runs produced.

Each task writes `results/<task>.json` with a `headline` list of rows (what, value, command,
machine), and each checkpoint carries its metrics in its metadata. `python -m src report`
rewrites those tables and the benchmark's section between the README's markers from those files, so no number in them is
typed by hand; a test checks the README is up to date.
"""
from __future__ import annotations

import os
from pathlib import Path

from .runs import PROJECT_ROOT, load_results

RESULTS_MARKERS = ("<!-- results:start -->", "<!-- results:end -->")
CHECKPOINT_MARKERS = ("<!-- checkpoints:start -->", "<!-- checkpoints:end -->")
PERFORMANCE_MARKERS = ("<!-- performance:start -->", "<!-- performance:end -->")
RESULT_FILES = ("task1", "task2", "task3", "bench")

# What each committed checkpoint is; its numbers come from the file itself.
CHECKPOINT_DESCRIPTIONS = {
    "task1.pt": "Task 1: the 62-class network, the recipe trained on all 2,480 trainPart1 images; "
                "the pretrained start of Task 2 (c) and Task 3",
    "task2_digits_pretrained.pt": "Task 2: the network trained on trainPart1's 400 digit drawings only",
    "task2_mnist_pretrained.pt": "Task 2 (a): MNIST from the 400-digit network (seed with the best validation accuracy)",
    "task2_mnist_scratch.pt": "Task 2 (b): MNIST from random initialisation (seed with the best validation accuracy)",
    "task2_mnist_from_task1.pt": "Task 2 (c): MNIST from the Task 1 network, new head (seed with the best validation accuracy)",
    "task3_naive_scratch.pt": "Task 3: mnistTask3's folders used as labels (naive), from scratch",
    "task3_naive_pretrained.pt": "Task 3: folders as labels (naive), from the Task 1 network",
    "task3_scratch.pt": "Task 3: corrected loss, then pseudo-labels (two-stage), from scratch "
                        "(seed with the lowest held-out corrected loss)",
    "task3_pretrained.pt": "Task 3: two-stage, from the Task 1 network (seed chosen the same way)",
}


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


def _format_metric(name: str, value) -> str:
    if isinstance(value, dict) and "mean" in value:
        return f"{name} {100 * value['mean']:.2f} ± {100 * value['std']:.2f} % (n={value['n']})"
    if isinstance(value, float):
        return f"{name} {100 * value:.2f} %" if "accuracy" in name else f"{name} {value:.4f}"
    return f"{name} {value}"


def checkpoint_folder() -> Path:
    return Path(os.environ.get("PLAYMNIST_CHECKPOINT_DIR", PROJECT_ROOT / "checkpoints"))


def checkpoints_table() -> str:
    from .checkpoints import read_checkpoint
    lines = ["| file | what it is | metrics stored in it | data | size |", "|---|---|---|---|---|"]
    for name, description in CHECKPOINT_DESCRIPTIONS.items():
        path = checkpoint_folder() / name
        if not path.exists():
            continue
        metadata = read_checkpoint(path)["metadata"]
        metrics = "; ".join(_format_metric(key.replace("_", " "), value)
                            for key, value in metadata.get("metrics", {}).items())
        data = "stand-in" if "STAND-IN" in str(metadata.get("data", "")) else "real"
        lines.append(f"| `checkpoints/{name}` | {description} | {metrics} | {data} | {path.stat().st_size / 1e6:.1f} MB |")
    if len(lines) == 2:
        lines.append("| – | no full-budget checkpoints yet (`make reproduce`) | | | |")
    return "\n".join(lines)


def performance_section() -> str:
    """Every row of `results/bench.json` (not only the headline ones) and the notes that qualify them."""
    bench = load_results("bench", "full")
    if not bench:
        return "No benchmark run yet: `make bench` writes `results/bench.json`, then `python -m src report`."
    lines = [f"Measured with `{bench['command']}` on {bench['machine']['summary']} (torch {bench['machine']['torch']}).", "",
             "| what | value |", "|---|---|"]
    lines += [f"| {row['what']} | {row['value']} |" for row in bench["rows"]]
    lines += [""] + [f"- {note}" for note in bench["notes"]]
    return "\n".join(lines)


def _replace_between(text: str, markers: tuple[str, str], content: str) -> str:
    start, end = markers
    if start not in text or end not in text:
        raise ValueError(f"README.md lacks the markers {start} ... {end}")
    before, rest = text.split(start, 1)
    _, after = rest.split(end, 1)
    return f"{before}{start}\n{content}\n{end}{after}"


def updated_readme(text: str) -> str:
    text = _replace_between(text, RESULTS_MARKERS, results_table())
    text = _replace_between(text, PERFORMANCE_MARKERS, performance_section())
    return _replace_between(text, CHECKPOINT_MARKERS, checkpoints_table())


def update_readme(path: Path = PROJECT_ROOT / "README.md") -> bool:
    text = path.read_text()
    new = updated_readme(text)
    if new != text:
        path.write_text(new)
    return new != text
