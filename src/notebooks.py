"""Execute a notebook top to bottom, headless, the way `make reproduce` and the tests do.

`python -m src.notebooks task1.ipynb [OUTPUT]` runs every cell in a fresh kernel with the
repository root as working directory and writes the executed notebook in place (or to OUTPUT).
The budget comes from PLAYMNIST_BUDGET, which the kernel inherits. A cell error stops the run
and is raised, with the cell's traceback.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def execute_notebook(path: str | Path, output: str | Path | None = None, timeout_seconds: int | None = None) -> Path:
    import nbformat
    from nbclient import NotebookClient

    path = Path(path)
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=timeout_seconds, kernel_name="python3",
                            resources={"metadata": {"path": str(PROJECT_ROOT)}})
    started = time.perf_counter()
    client.execute()
    target = Path(output) if output else path
    from .files import atomic_write_bytes
    atomic_write_bytes(target, nbformat.writes(notebook).encode())
    print(f"executed {path.name} in {time.perf_counter() - started:.0f} s -> {target}")
    return target


if __name__ == "__main__":
    execute_notebook(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
