"""Where each dataset comes from, and the record that says so in every output.

Every dataset is looked up in the same order (`find_dataset`). The `DataSource` record names the route, what the data
is, and the file's sha256, never a machine's folders. "REAL" means verified: the assignment's own archive by its
sha256, or every image matching the real archive's digest (`rebuild.verify`). Anything else a user points at is their
own data, named by file and sha256; a rebuild that differs and a synthetic stand-in are labelled as such. Decoding is
cached under `data/cache/`, keyed by the source's hash, so a second load is instant.
"""
from __future__ import annotations

import io
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from ..settings import (atomic_write_bytes, data_dir, on_colab, progress_enabled, project_relative, report,
                        standin_allowed)
from .files import DataError, decode_grayscale, tqdm

REAL, USER, STANDIN, REBUILT_DIFFERS = "real", "user data", "stand-in", "rebuilt, differs"
LABELS = {REAL: "REAL data", USER: "USER DATA (not the assignment's archive; named by its sha256)",
          STANDIN: "STAND-IN (synthetic, not the real dataset)",
          REBUILT_DIFFERS: "REBUILT, NOT IDENTICAL TO THE REAL DATA (treated as a STAND-IN)"}


class NotTheRealData(DataError):
    """A rebuild that differs from the real archive, refused by the full budget. It is the answer, not a reason to
    try the next route: the message says which files differ and how to opt in."""


@dataclass
class DataSource:
    """Where a dataset came from, in a form every report can print."""
    name: str
    kind: str               # REAL, USER, STANDIN or REBUILT_DIFFERS
    location: str           # as published: relative to the repository, or the file name (+ sha256)
    route: str              # which lookup route found it
    sha256: str = ""
    files: int = 0
    skipped: list[str] = field(default_factory=list)
    note: str = ""
    path: str = field(default="", repr=False, compare=False)  # where it was read on this machine; never published

    @property
    def is_standin(self) -> bool:
        return self.kind in (STANDIN, REBUILT_DIFFERS)

    def describe(self) -> str:
        label = LABELS.get(self.kind, LABELS[STANDIN])
        text = f"{self.name}: {label} from {self.location} ({self.route}; {self.files} files"
        text += f", sha256 {self.sha256[:12]})" if self.sha256 else ")"
        if self.skipped:
            text += f"; skipped {len(self.skipped)} bad file(s): {', '.join(self.skipped[:5])}"
        return text + (f". {self.note}" if self.note else "")

    def to_dict(self) -> dict:
        return {key: value for key, value in asdict(self).items() if key != "path"}


def record(name: str, kind: str, source: Path, route: str, sha256: str = "", files: int = 0, note: str = "",
           skipped=()) -> DataSource:
    return DataSource(name, kind, project_relative(source), route, sha256, files, list(skipped), note, str(source))


def cached(kind: str, source_hash: str, variant: str, version: int, build) -> dict:
    """The tensors cached for this source, or `build()`'s, saved unless a file was skipped."""
    path = data_dir() / "cache" / f"{kind}-{source_hash[:20]}-{variant}-v{version}.pt"
    if path.exists():
        try:
            return torch.load(path, weights_only=True)
        except Exception:  # a damaged cache is rebuilt, never trusted
            path.unlink(missing_ok=True)
    content = build()
    if not content["skipped"]:
        buffer = io.BytesIO()
        torch.save(content, buffer)
        atomic_write_bytes(path, buffer.getvalue())
    return content


def decode_all(source: Path, names: list[str], read, transform, skip_bad: bool, threads: int = 2):
    """`transform(luminance, name)` of every image, decoded in a thread pool (PIL and torch release the GIL). A bad
    file raises, or with `skip_bad` is reported. Returns ([(name, value)], [problem])."""
    def work(name):
        try:
            shown = f"{source}!{name}" if source.is_file() else str(source / name)
            return transform(decode_grayscale(read(name), shown), name), None
        except DataError as error:
            if not skip_bad:
                raise
            return None, f"{name} ({error})"
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the pool's threads each run one image; avoid oversubscription
    try:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            results = list(tqdm(pool.map(work, names), total=len(names), desc=f"decoding {source.name}",
                                disable=not progress_enabled(), leave=False))
    finally:
        torch.set_num_threads(previous_threads)
    kept = [(name, value) for name, (value, _) in zip(names, results) if value is not None]
    if not kept:
        raise DataError(f"{source}: no readable images")
    return kept, [problem for _, problem in results if problem is not None]


def find_dataset(name: str, path, build_standin, standin_route: str, allow_download: bool,
                 allow_standin: bool | None, rebuild=None, verify=None) -> tuple[Path, str, str]:
    """(path, route, kind) of `<name>.zip` by the lookup order every dataset shares: the argument, the environment
    variable PLAYMNIST_<NAME>, `data/<name>.zip`, the rebuild from the dataset's original sources
    (`rebuild(allow_download, allow_differences) -> (path, route, kind)`), and only then the stand-in where the dataset
    has one (built once, then reused). A file found on the first three routes is REAL only if `verify(path)` says so."""
    file_name, environment_variable = f"{name}.zip", f"PLAYMNIST_{name.upper()}"
    given = [(path, "explicit path", f"given as the {name} path"),
             (os.environ.get(environment_variable), environment_variable, f"from {environment_variable}"),
             (data_dir() / file_name, f"data/{file_name}", None)]
    for candidate, route, where in given:
        if not candidate:
            continue
        if Path(candidate).exists():
            kind = REAL if verify is None or verify(Path(candidate)) else USER
            return Path(candidate), route, kind
        if where:
            raise DataError(f"{candidate}: no such file or folder ({where})")
    allowed = standin_allowed() if allow_standin is None else allow_standin
    failures = []
    if rebuild is not None:
        try:
            return rebuild(allow_download, allowed)
        except NotTheRealData:
            raise
        except (OSError, DataError) as error:
            failures.append(f"rebuild from the original sources failed: {error}")
    if not allowed or build_standin is None:
        tried = "; ".join(failures or ["no path given and downloads disabled"])
        if on_colab():
            ways = (f"upload it (run `from google.colab import files; files.upload()` and move {file_name} into "
                    f"data/), or mount Google Drive (`from google.colab import drive; drive.mount('/content/drive')`) "
                    f"and set {environment_variable} to the zip's path there (`%env {environment_variable}=...`)")
        else:
            ways = f"copy {file_name} to data/{file_name}, or set {environment_variable}=/path/to/{file_name}"
        standin = (" To train on a labelled synthetic stand-in instead, set PLAYMNIST_ALLOW_STANDIN=1 (or "
                   "PLAYMNIST_BUDGET=quick for a smoke run)." if build_standin is not None else "")
        raise DataError(f"{name} not found ({tried}). Every run needs the real {file_name}: {ways}, then run "
                        f"again.{standin}")
    standin = data_dir() / f"{name}-standin.zip"
    if not standin.exists():
        report(f"{name}: building the synthetic stand-in {project_relative(standin)} ...")
        build_standin(standin)
    return standin, f"{standin_route} (no real {name} found: " + "; ".join(failures or ["offline"]) + ")", STANDIN
