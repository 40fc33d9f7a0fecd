"""Where each dataset comes from, and the record that says so in every output.

Every dataset is looked up in the same order: the path given, its environment variable,
`data/<file name>`, the assignment's URL, and only then (where the budget allows) a labelled
stand-in. The `DataSource` record names the route, whether the data is real, and the file's
sha256, never a machine's folders. Expensive decoding is cached under `data/cache/`, keyed by the
source's hash, so a second load is instant.
"""
from __future__ import annotations

import io
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from .files import PROJECT_ROOT, DataError, atomic_write_bytes, download, list_source_files
from .runs import on_colab, project_relative, standin_allowed


def data_dir() -> Path:
    return Path(os.environ.get("PLAYMNIST_DATA_DIR", PROJECT_ROOT / "data"))


# ----------------------------------------------------------------------------- records

@dataclass
class DataSource:
    """Where a dataset came from, in a form every report can print."""
    name: str
    kind: str               # "real" or "stand-in"
    location: str           # as published: relative to the repository, or the file name (+ sha256)
    route: str              # which lookup route found it
    sha256: str = ""
    files: int = 0
    skipped: list[str] = field(default_factory=list)
    note: str = ""
    path: str = field(default="", repr=False, compare=False)  # where it was read on this machine; never published

    @property
    def is_standin(self) -> bool:
        return self.kind != "real"

    def describe(self) -> str:
        label = "REAL data" if not self.is_standin else "STAND-IN (synthetic, not the real dataset)"
        text = f"{self.name}: {label} from {self.location} ({self.route}; {self.files} files"
        text += f", sha256 {self.sha256[:12]})" if self.sha256 else ")"
        if self.skipped:
            text += f"; skipped {len(self.skipped)} bad file(s): {', '.join(self.skipped[:5])}"
        return text + (f". {self.note}" if self.note else "")

    def to_dict(self) -> dict:
        return {key: value for key, value in asdict(self).items() if key != "path"}


def record(name: str, kind: str, source: Path, route: str, sha256: str = "", files: int = 0, note: str = "") -> DataSource:
    return DataSource(name, kind, project_relative(source), route, sha256, files, note=note, path=str(source))



# ----------------------------------------------------------------------------- caching

def cache_path(kind: str, source_hash: str, variant: str, version: int) -> Path:
    return data_dir() / "cache" / f"{kind}-{source_hash[:20]}-{variant}-v{version}.pt"


def save_cache(path: Path, content: dict) -> None:
    buffer = io.BytesIO()
    torch.save(content, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_cache(path: Path) -> dict | None:
    if not path.exists():
        return None
    try:
        return torch.load(path, weights_only=True)
    except Exception:  # a damaged cache is rebuilt, never trusted
        path.unlink(missing_ok=True)
        return None


def decode_all(names: list[str], read, decode_one, skip_bad: bool, threads: int = 2):
    """Decode in a thread pool (PIL and torch release the GIL); bad files raise or are skipped."""
    def work(name):
        try:
            return decode_one(name, read(name)), None
        except DataError as error:
            if not skip_bad:
                raise
            return None, f"{name} ({error})"
    with ThreadPoolExecutor(max_workers=threads) as pool:
        results = list(pool.map(work, names))
    kept = [(name, value) for name, (value, _) in zip(names, results) if value is not None]
    skipped = [problem for _, problem in results if problem is not None]
    return kept, skipped


# ----------------------------------------------------------------------------- lookup

def find_dataset(name: str, path, environment_variable: str, file_name: str, url: str, check_layout,
                  build_standin, standin_route: str, allow_download: bool, allow_standin: bool) -> tuple[Path, str, str]:
    """(path, route, kind) by the lookup order every dataset shares: the argument, the environment
    variable, `data/<file_name>`, the URL, and only then the stand-in (built once, then reused)."""
    if path is not None:
        if not Path(path).exists():
            raise DataError(f"{path}: no such file or folder (given as the {name} path)")
        return Path(path), "explicit path", "real"
    from_environment = os.environ.get(environment_variable)
    if from_environment:
        if not Path(from_environment).exists():
            raise DataError(f"{from_environment}: no such file or folder (from {environment_variable})")
        return Path(from_environment), environment_variable, "real"
    local = data_dir() / file_name
    if local.exists():
        return local, f"data/{file_name}", "real"
    failures = []
    if allow_download:
        try:
            _download_zip(url, local, lambda names: check_layout(names, local))
            return local, f"downloaded from {url}", "real"
        except (OSError, DataError) as error:
            failures.append(f"download from {url} failed: {error}")
    if allow_standin is None:
        allow_standin = standin_allowed()
    if not allow_standin:
        raise DataError(_not_found_message(name, file_name, environment_variable, failures))
    standin = data_dir() / file_name.replace(".zip", "-standin.zip")
    if not standin.exists():
        build_standin(standin)
    return standin, f"{standin_route} (no real {name} found: " + "; ".join(failures or ["offline"]) + ")", "stand-in"


def _not_found_message(name: str, file_name: str, environment_variable: str, failures: list[str]) -> str:
    """What to do when the real data is missing and a stand-in is not allowed (the full budget)."""
    tried = "; ".join(failures or ["no path given and downloads disabled"])
    if on_colab():
        ways = (f"upload it (run `from google.colab import files; files.upload()` and move {file_name} into "
                f"data/), or mount Google Drive (`from google.colab import drive; drive.mount('/content/drive')`) "
                f"and set {environment_variable} to the zip's path there (`%env {environment_variable}=...`)")
    else:
        ways = f"copy {file_name} to data/{file_name}, or set {environment_variable}=/path/to/{file_name}"
    return (f"{name} not found ({tried}). The full budget trains only on the real {file_name}: {ways}, then run "
            f"again. To train on a labelled synthetic stand-in instead, set PLAYMNIST_ALLOW_STANDIN=1 "
            f"(or PLAYMNIST_BUDGET=quick for a smoke run).")


def _download_zip(url: str, target: Path, check_layout) -> None:
    """Download a zip beside `target`, check it opens and has the expected layout, then rename."""
    temporary = target.with_name(target.name + ".download")
    try:
        download(url, temporary)
        names, _ = list_source_files(temporary)
        check_layout(names)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
