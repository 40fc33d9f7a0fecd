"""Where a run's outputs go, which budget it runs with, and how it describes itself.

Two budgets: `quick` proves every cell runs in minutes on 2 CPU cores (CI), `full` is what the
committed outputs come from. The budget is chosen by the PLAYMNIST_BUDGET environment variable,
never by editing code. Quick runs write under `checkpoints/quick/` and `results/quick/` (ignored
by git), so a smoke test never overwrites the committed full-budget checkpoints and results.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from .checkpoints import device_name
from .files import atomic_write_bytes

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BUDGETS = ("quick", "full")


def current_budget(budget: str | None = None) -> str:
    budget = budget or os.environ.get("PLAYMNIST_BUDGET", "full")
    if budget not in BUDGETS:
        raise ValueError(f"budget must be one of {BUDGETS}, not {budget!r} (set PLAYMNIST_BUDGET)")
    return budget


def checkpoint_dir(budget: str) -> Path:
    root = Path(os.environ.get("PLAYMNIST_CHECKPOINT_DIR", PROJECT_ROOT / "checkpoints"))
    return root if budget == "full" else root / "quick"


def results_dir(budget: str) -> Path:
    root = Path(os.environ.get("PLAYMNIST_RESULTS_DIR", PROJECT_ROOT / "results"))
    return root if budget == "full" else root / "quick"


def save_results(name: str, budget: str, content: dict) -> Path:
    path = results_dir(budget) / f"{name}.json"
    atomic_write_bytes(path, (json.dumps(content, indent=1, default=_jsonable) + "\n").encode())
    return path


def load_results(name: str, budget: str = "full") -> dict | None:
    path = results_dir(budget) / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _jsonable(value):
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def banner(budget: str, sources: list) -> str:
    """The one line every notebook prints first: data, device, budget."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    data = "; ".join(source.describe() for source in sources)
    return f"Data: {data}\nDevice: {device} ({device_name(device)})\nBudget: {budget}"
