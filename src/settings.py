"""Where a run reads and writes, which budget, device and precision it runs with, and the line that says so.

The floor every other module stands on (it imports nothing of this package). PLAYMNIST_BUDGET picks the budget, never
a code edit: `full` makes the committed outputs; `quick` proves every cell runs in minutes on 2 CPU cores and writes
under `checkpoints/quick/` and `results/quick/` (ignored by git), so a smoke run never overwrites the committed ones.
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

PROJECT_ROOT = Path(__file__).resolve().parent.parent  # the repository; every published path is relative to it
BUDGETS = ("quick", "full")
UMASK = os.umask(0)  # reading the umask means setting it: done once, at import, before any threads
os.umask(UMASK)


def current_budget(budget: str | None = None) -> str:
    budget = budget or os.environ.get("PLAYMNIST_BUDGET", "full")
    if budget not in BUDGETS:
        raise ValueError(f"budget must be one of {BUDGETS}, not {budget!r} (set PLAYMNIST_BUDGET)")
    return budget


def standin_allowed(budget: str | None = None) -> bool:
    """The full budget trains only on real data unless the user opts in with PLAYMNIST_ALLOW_STANDIN=1; the quick
    (smoke) budget may use a stand-in."""
    return os.environ.get("PLAYMNIST_ALLOW_STANDIN") == "1" or current_budget(budget) == "quick"


def on_colab() -> bool:
    return "google.colab" in sys.modules


def progress_enabled() -> bool:
    """The one switch for progress bars: PLAYMNIST_PROGRESS=0/1 when set (headless runs set 0 so the committed
    notebooks stay small), otherwise on in Jupyter/Colab kernels and terminals."""
    if "PLAYMNIST_PROGRESS" in os.environ:
        return os.environ["PLAYMNIST_PROGRESS"] == "1"
    return "ipykernel" in sys.modules or sys.stderr.isatty()


def report(line: str) -> None:
    """A progress line for the person waiting (a training started or ended, a dataset being rebuilt): appended to
    $PLAYMNIST_PROGRESS_FILE where set (`tools.run_notebook` shows that file on the terminal while a notebook runs
    headless, so the notebook's own outputs stay free of it), else on stderr where progress is shown at all."""
    path = os.environ.get("PLAYMNIST_PROGRESS_FILE")
    if path:
        with open(path, "a") as stream:
            stream.write(f"{time.strftime('%H:%M:%S')} {line}\n")
    elif progress_enabled():
        print(line, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- paths

def data_dir() -> Path:
    return Path(os.environ.get("PLAYMNIST_DATA_DIR", PROJECT_ROOT / "data"))


def checkpoint_dir(budget: str) -> Path:
    root = Path(os.environ.get("PLAYMNIST_CHECKPOINT_DIR", PROJECT_ROOT / "checkpoints"))
    return root if budget == "full" else root / "quick"


def results_dir(budget: str) -> Path:
    root = Path(os.environ.get("PLAYMNIST_RESULTS_DIR", PROJECT_ROOT / "results"))
    return root if budget == "full" else root / "quick"


def project_relative(path: str | Path) -> str:
    """A path as we publish it: relative to the repository root, or only its name when it lies outside (the data
    record adds its sha256), so no machine's folders appear in outputs."""
    path = Path(path)
    try:
        return path.resolve().relative_to(PROJECT_ROOT).as_posix()
    except ValueError:
        return path.name


def atomic_write_bytes(target: Path, payload: bytes) -> None:
    """Write to a temporary file beside `target`, then rename: readers never see half a file, and a failed write
    leaves what was there before."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
    try:
        os.fchmod(handle, 0o666 & ~UMASK)  # mkstemp's 0600 would hide results from other users
        with os.fdopen(handle, "wb") as stream:
            stream.write(payload)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


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
    if callable(getattr(value, "to_dict", None)):  # run records, configs
        return value.to_dict()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


# ----------------------------------------------------------------------------- device, precision, provenance

def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def training_precision(device: torch.device | str) -> str:
    """"bfloat16" where the GPU has bf16 tensor cores (compute capability >= 8.0), "float16" on older GPUs (T4,
    P100: bf16 there is emulated or missing), "float32" on the CPU."""
    device = torch.device(device)
    if device.type != "cuda":
        return "float32"
    major, _ = torch.cuda.get_device_capability(device)
    return "bfloat16" if major >= 8 and torch.cuda.is_bf16_supported() else "float16"


def device_name(device: torch.device | str | None = None) -> str:
    device = torch.device(device or default_device())
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        processor = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                         if line.startswith("model name"))
    except (OSError, StopIteration):
        processor = platform.processor() or platform.machine()
    return f"{processor}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"


def git_commit() -> str:
    """HEAD of the repository, marked when src/ has uncommitted changes. A copy of the tree whose .git is missing or
    not its own (a GPU machine) names its commit in PLAYMNIST_GIT_COMMIT."""
    if os.environ.get("PLAYMNIST_GIT_COMMIT"):
        return os.environ["PLAYMNIST_GIT_COMMIT"]

    def git(*arguments: str) -> str:
        return subprocess.run(["git", *arguments], cwd=PROJECT_ROOT, capture_output=True, text=True,
                              timeout=10).stdout.strip()
    try:
        commit = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no", "src")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (commit + ("+uncommitted-src-changes" if dirty else "")) if commit else "unknown"


def banner(budget: str, sources: list) -> str:
    """The line every notebook prints first: budget, device, precision, the code's commit, and the data."""
    device, commit = default_device(), git_commit()
    commit = commit[:7] + (" with uncommitted changes to src/" if "uncommitted" in commit else "")
    smoke = " (a smoke run: its numbers differ from the committed outputs and the prose)" if budget == "quick" else ""
    data = "; ".join(source.describe() for source in sources)
    return (f"Budget: {budget}{smoke} | Device: {device.type} ({device_name(device)}) | Precision: "
            f"{training_precision(device)} | Commit: {commit} | Data: {data}")
