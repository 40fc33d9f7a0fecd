"""Repository tooling: execute a notebook top to bottom, headless, the way `make reproduce` and the tests do.

`python -m tools.run_notebook task1.ipynb [OUTPUT]` runs every cell in a fresh kernel with the repository root as
working directory. At the full budget it writes the executed notebook in place; at the quick budget (a smoke run) to
`results/quick/<name>.ipynb`, never over the committed one. What `jupyter nbconvert --execute` would not do, and this
does: the budget comes from PLAYMNIST_BUDGET; it says what it runs and how long that took here before; the
notebook's outputs stay free of progress bars while one line per training start and end is shown on the terminal;
an interrupt ends with one line saying what was kept; the wall time is recorded per machine in
`results/runtimes.json`, from which `python -m tools.readme_tables` writes README's run-time table.
"""
from __future__ import annotations

import argparse
import fcntl
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

from src.settings import (PROJECT_ROOT, atomic_write_bytes, current_budget, default_device, device_name, load_results, results_dir,
                          save_results)

WHAT = {"task1": "Task 1: cross-validation under two protocols, ablations, the final network, testPart1 once",
        "task2": "Task 2: pretraining on 400 digits, MNIST from three starts and three methods, the data-size sweep",
        "task3": "Task 3: folders as labels, T's estimate, three methods from two starts, the audit"}


def machine() -> str:
    device = default_device()
    return f"{'GPU' if device.type == 'cuda' else 'CPU'}: {device_name(device)}"


def expected_seconds(notebook: str, budget: str) -> float | None:
    """The last recorded wall time of this notebook and budget on a machine of this kind (same device name)."""
    rows = (load_results("runtimes", budget) or {"rows": []})["rows"]
    same = [row["seconds"] for row in rows if row["notebook"] == notebook and row["machine"] == machine()]
    return same[-1] if same else None


def follow(path: Path, stop: threading.Event, started: float) -> None:
    """Print each line the kernel's training loop appends to `path`, with the minutes since the notebook began."""
    with open(path) as stream:
        while not stop.is_set():
            line = stream.readline()
            if line:
                print(f"  [{(time.perf_counter() - started) / 60:5.1f} min] {line.rstrip()}", flush=True)
            else:
                time.sleep(0.5)


def execute_notebook(path: str | Path, output: str | Path | None = None, timeout_seconds: int | None = None,
                     note: str = "") -> Path:
    import nbformat
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient


    path, budget = Path(path), current_budget()
    target = Path(output) if output else (path if budget == "full" else results_dir(budget) / path.name)
    expected = expected_seconds(path.stem, budget)
    shown = target.resolve().relative_to(PROJECT_ROOT) if target.resolve().is_relative_to(PROJECT_ROOT) else target
    timing = (f"took {expected / 60:.0f} min on this kind of machine" if expected else "no earlier run recorded on "
              "this kind of machine")
    print(f"{path.name}: {WHAT.get(path.stem, 'a notebook')}; budget {budget}; {timing} ({machine()}); writes {shown}",
          flush=True)
    notebook = nbformat.read(path, as_version=4)
    saved = {key: os.environ.get(key) for key in ("PLAYMNIST_PROGRESS", "PLAYMNIST_PROGRESS_FILE")}
    progress = Path(tempfile.mkstemp(prefix="playmnist-progress-", suffix=".txt")[1])
    os.environ.update(PLAYMNIST_PROGRESS="0", PLAYMNIST_PROGRESS_FILE=str(progress))  # the kernel inherits both
    stop, started = threading.Event(), time.perf_counter()
    follower = threading.Thread(target=follow, args=(progress, stop, started), daemon=True)
    follower.start()
    sockets = tempfile.TemporaryDirectory(prefix="playmnist-kernel-")  # local sockets: no TCP port, no warning
    kernel = KernelManager(kernel_name="python3", transport="ipc", ip=os.path.join(sockets.name, "kernel"))
    try:
        NotebookClient(notebook, km=kernel, timeout=timeout_seconds,
                       resources={"metadata": {"path": str(PROJECT_ROOT)}}).execute()
    except KeyboardInterrupt:
        kept = ("Task 2 keeps every finished seed in checkpoints/in_progress/ and continues from there; "
                if path.stem == "task2" else "")
        print(f"\nstopped: {path.name} was not written (the committed one is untouched); {kept}run the same command "
              f"again to start it again.", file=sys.stderr)
        raise SystemExit(130) from None
    finally:
        if kernel.has_kernel:
            kernel.shutdown_kernel(now=True)
        sockets.cleanup()
        stop.set()
        progress.unlink(missing_ok=True)
        for key, value in saved.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)
    seconds = time.perf_counter() - started
    atomic_write_bytes(target, nbformat.writes(notebook).encode())
    resumed = (load_results(path.stem, budget) or {}).get("resumed")
    if resumed:  # the time above is only this sitting's
        note = "; ".join(filter(None, [note, f"this sitting only: it continued a run saved after {resumed['seeds']} "
                                             f"seed(s) at {resumed['saved_at']}"]))
    record_runtime(path.stem, budget, machine(), seconds, note)
    print(f"executed {path.name} in {seconds / 60:.1f} min -> {target}", flush=True)
    return target


def record_runtime(notebook: str, budget: str, machine_name: str, seconds: float, note: str = "") -> None:
    """Keep the latest wall time of each notebook on each machine (one row per pair). A lock file serialises
    notebooks that finish at the same moment (they may run side by side)."""
    lock_path = results_dir(budget) / ".runtimes.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        runtimes = load_results("runtimes", budget) or {"rows": []}
        rows = [row for row in runtimes["rows"] if (row["notebook"], row["machine"]) != (notebook, machine_name)]
        rows.append({"notebook": notebook, "machine": machine_name, "seconds": round(seconds, 1), "budget": budget,
                     "command": f"PLAYMNIST_BUDGET={budget} python -m tools.run_notebook {notebook}.ipynb",
                     "date": time.strftime("%Y-%m-%d"), **({"note": note} if note else {})})
        save_results("runtimes", budget, {"rows": sorted(rows, key=lambda row: (row["notebook"], row["machine"]))})


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m tools.run_notebook", description="execute a notebook headless")
    parser.add_argument("notebook")
    parser.add_argument("output", nargs="?", help="default: in place (full budget) or results/quick/ (quick)")
    parser.add_argument("--note", default="", help="a remark stored with the measured run time")
    arguments = parser.parse_args()
    execute_notebook(arguments.notebook, arguments.output, note=arguments.note)
