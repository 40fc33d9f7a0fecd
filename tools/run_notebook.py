"""Repository tooling: execute a notebook top to bottom, headless, the way `make reproduce` and the tests do.

`python -m tools.run_notebook task1.ipynb [OUTPUT]` runs every cell in a fresh kernel with the
repository root as working directory and writes the executed notebook in place (or to OUTPUT).
What `jupyter nbconvert --execute --inplace` would not do, and this does: the budget comes from
PLAYMNIST_BUDGET, progress bars are switched off (PLAYMNIST_PROGRESS=0) so committed outputs stay
small, and the wall time is recorded per machine in `results/runtimes.json`, from which
`python -m tools.readme_tables` writes README's run-time table.
A cell error stops the run and is raised, with the cell's traceback.
"""
from __future__ import annotations

import argparse
import fcntl
import os
import time
from pathlib import Path

from src.runs import PROJECT_ROOT, current_budget, load_results, results_dir, save_results


def execute_notebook(path: str | Path, output: str | Path | None = None, timeout_seconds: int | None = None,
                     note: str = "") -> Path:
    import nbformat
    from nbclient import NotebookClient

    from src.runs import device_name
    from src.files import atomic_write_bytes
    from src.runs import default_device

    path = Path(path)
    notebook = nbformat.read(path, as_version=4)
    previous = os.environ.get("PLAYMNIST_PROGRESS")
    os.environ["PLAYMNIST_PROGRESS"] = "0"  # the kernel inherits it
    try:
        client = NotebookClient(notebook, timeout=timeout_seconds, kernel_name="python3",
                                resources={"metadata": {"path": str(PROJECT_ROOT)}})
        started = time.perf_counter()
        client.execute()
        seconds = time.perf_counter() - started
    finally:
        if previous is None:
            os.environ.pop("PLAYMNIST_PROGRESS", None)
        else:
            os.environ["PLAYMNIST_PROGRESS"] = previous
    target = Path(output) if output else path
    atomic_write_bytes(target, nbformat.writes(notebook).encode())
    budget = current_budget()
    device = default_device()
    resumed = (load_results(path.stem, budget) or {}).get("resumed")
    if resumed:  # the time above is only this sitting's
        note = "; ".join(filter(None, [note, f"this sitting only: it continued a run saved after {resumed['seeds']} "
                                             f"seed(s) at {resumed['saved_at']}"]))
    record_runtime(path.stem, budget, f"{'GPU' if device.type == 'cuda' else 'CPU'}: {device_name(device)}", seconds, note)
    print(f"executed {path.name} in {seconds:.0f} s -> {target}")
    return target


def record_runtime(notebook: str, budget: str, machine: str, seconds: float, note: str = "") -> None:
    """Keep the latest wall time of each notebook on each machine (one row per pair). A lock
    file serialises notebooks that finish at the same moment (they may run side by side)."""
    lock_path = results_dir(budget) / ".runtimes.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        runtimes = load_results("runtimes", budget) or {"rows": []}
        rows = [row for row in runtimes["rows"] if (row["notebook"], row["machine"]) != (notebook, machine)]
        rows.append({"notebook": notebook, "machine": machine, "seconds": round(seconds, 1), "budget": budget,
                     "command": f"PLAYMNIST_BUDGET={budget} python -m tools.run_notebook {notebook}.ipynb",
                     "date": time.strftime("%Y-%m-%d"), **({"note": note} if note else {})})
        save_results("runtimes", budget, {"rows": sorted(rows, key=lambda row: (row["notebook"], row["machine"]))})


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m tools.run_notebook", description="execute a notebook headless")
    parser.add_argument("notebook")
    parser.add_argument("output", nargs="?", help="default: the notebook itself, in place")
    parser.add_argument("--note", default="", help="a remark stored with the measured run time")
    arguments = parser.parse_args()
    execute_notebook(arguments.notebook, arguments.output, note=arguments.note)
