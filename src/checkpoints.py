"""Checkpoints that are safe to load and hard to lose.

A checkpoint is a plain dictionary of tensors, numbers and strings, so `torch.load(weights_only=True)` loads it
without running code hidden in a pickle. It carries what rebuilding and trusting the network needs: model
configuration, recipe, metrics, task, classes, preprocessing and torch versions, device, git commit. Writes are
atomic (a temporary file renamed into place): a crash or a full disk never leaves a half-written file.
"""
from __future__ import annotations

import io
import pickle
import tempfile
import time
import warnings
import zipfile
from pathlib import Path

import torch

from .data.files import sha256_of_source
from .data.preprocess import PREPROCESSING_VERSION
from .model import CharacterCNN, ModelConfig, build_model, with_new_head
from .settings import atomic_write_bytes, git_commit, on_colab, project_relative

FORMAT = "playmnist-checkpoint/1"


class CheckpointError(ValueError):
    """A file that is not a usable checkpoint; the message says what was expected and found."""


def check_writable(path: Path) -> None:
    """Fail before training starts, not after, if the checkpoint cannot be written there."""
    folder = Path(path).parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-").close()  # deleted on close
    except OSError as error:
        raise CheckpointError(f"{folder}: checkpoints cannot be written here ({error.strerror or error})") from None


def plain(value):
    """Metadata as exactly the types `weights_only=True` accepts (str subclasses such as
    torch.__version__, numpy numbers, paths and tuples would otherwise make the file unloadable)."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {(key if type(key) in (int, str) else str(key)): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)):
        return int(value) if isinstance(value, int) else float(value)
    if callable(getattr(value, "item", None)):  # numpy scalars
        return plain(value.item())
    return str(value)


def trained_on_standin(metadata: dict) -> bool:
    return "STAND-IN" in str(metadata.get("data", ""))


def _standin_must_not_replace(path: Path, metadata: dict) -> Path:
    """A network trained on a stand-in never replaces one trained on real data: it goes beside it,
    as `<name>-standin.pt`, with a warning (the training is kept, the real checkpoint too)."""
    if not trained_on_standin(metadata) or not path.is_file():
        return path
    try:
        if trained_on_standin(read_checkpoint(path)["metadata"]):
            return path
    except CheckpointError:
        return path
    beside = path.with_name(f"{path.stem}-standin{path.suffix}")
    warnings.warn(f"{path.name} holds a network trained on real data; this one was trained on a stand-in, "
                  f"so it is saved as {beside.name} instead", stacklevel=3)
    return beside


def cpu_state_dict(model: torch.nn.Module) -> dict:
    """The weights as plain CPU tensors: what a file keeps, whatever device or view the network trained on."""
    return {name: value.detach().cpu().contiguous() for name, value in model.state_dict().items()}


def save_checkpoint(path: Path, model: CharacterCNN, metadata: dict) -> Path:
    """Atomically write weights, model configuration and metadata. Returns where it was written (see
    `_standin_must_not_replace`)."""
    path = _standin_must_not_replace(Path(path), metadata)
    payload = {"format": FORMAT, "model_config": model.config.to_dict(),
               "state_dict": cpu_state_dict(model),
               "metadata": {"preprocessing_version": PREPROCESSING_VERSION, "torch_version": torch.__version__,
                            "git_commit": git_commit(), "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                            **metadata}}
    buffer = io.BytesIO()
    torch.save(plain(payload), buffer)
    try:
        atomic_write_bytes(path, buffer.getvalue())
    except OSError as error:
        raise CheckpointError(f"{path}: could not save the checkpoint ({error.strerror or error}); "
                              f"the previous file there, if any, is untouched") from None
    return path


def read_checkpoint(path: Path) -> dict:
    """Load a checkpoint dictionary without executing anything from the file."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path}: is a folder; give a checkpoint file such as checkpoints/task1.pt")
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise CheckpointError(f"{path}: refused to load: it holds objects other than tensors and plain values, "
                              f"which could run code (weights_only=True): {str(error).splitlines()[0][:200]}") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, KeyError, IndexError) as error:
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint (truncated or another kind of file): "
                              f"{type(error).__name__}") from None
    found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
    if found != FORMAT:
        raise CheckpointError(f"{path}: not a checkpoint of this project (expected format {FORMAT!r}, found {found!r})")
    return payload


def load_model(path: Path, num_classes: int | None = None) -> tuple[CharacterCNN, dict]:
    """Rebuild the network from a checkpoint, in evaluation mode; returns it and its metadata.
    With `num_classes`, a network of another size is a clear error."""
    payload = read_checkpoint(path)
    try:
        config = ModelConfig.from_dict(payload["model_config"])
    except (KeyError, TypeError) as error:
        raise CheckpointError(f"{path}: model configuration is damaged ({error})") from None
    if num_classes is not None and config.num_classes != num_classes:
        raise CheckpointError(f"{path}: expected a network with {num_classes} classes, "
                              f"found one with {config.num_classes}")
    model = CharacterCNN(config)
    try:
        model.load_state_dict(payload["state_dict"])
    except (RuntimeError, KeyError) as error:
        raise CheckpointError(f"{path}: weights do not fit the architecture {config}: {str(error)[:400]}") from None
    return model.eval(), payload.get("metadata", {})


def finished_checkpoint(path: str | Path, result, metadata: dict) -> Path:
    """The small, final checkpoint of a run (`train.TrainResult`): weights, recipe, history, metrics; no optimizer."""
    return save_checkpoint(Path(path), result.model, {
        "train_config": result.config.to_dict(), "history": result.history, "device": result.device,
        "precision": result.precision, **metadata})


# ----------------------------------------------------------------------------- what a run saved

def network_from_task1(path: Path, seed: int, num_classes: int = 10) -> CharacterCNN:
    """The Task 1 network's backbone under a new, seeded `num_classes` head: where Tasks 2 and 3
    start when they start from Task 1."""
    return with_new_head(load_model(path)[0], num_classes=num_classes, seed=seed)[0]


def start_network(start: str, seed: int, model: ModelConfig, task1_checkpoint: Path | None = None) -> CharacterCNN:
    """The network an MNIST run starts from, by the start's name: "scratch" (random weights, seeded) or "task1"
    (the Task 1 network's backbone, a new seeded head). Task 2's third start, "digits400", is trained in Task 2."""
    if start == "scratch":
        return build_model(model, seed=seed)
    if start == "task1":
        return network_from_task1(task1_checkpoint, seed, model.num_classes)
    raise ValueError(f"unknown start {start!r} (use 'scratch' or 'task1')")


# What each committed checkpoint is; its numbers come from the file itself. Starts are named by what they are:
# scratch (random initialisation), digits400 (the network pretrained on trainPart1's 400 digits), task1.
CHECKPOINT_DESCRIPTIONS = {
    "task1.pt": "Task 1: the 62-class network, the recipe trained on all 2,480 trainPart1 images; "
                "the start `task1` of Tasks 2 and 3",
    "task2_digits400.pt": "Task 2: the network trained on trainPart1's 400 digit drawings only (start `digits400`)",
    "task2_mnist_digits400.pt": "Task 2 (a): MNIST from `digits400` (seed with the best validation accuracy)",
    "task2_mnist_scratch.pt": "Task 2 (b): MNIST from random initialisation (seed with the best validation accuracy)",
    "task2_mnist_task1.pt": "Task 2 (c): MNIST from the Task 1 network, new head "
                            "(seed with the best validation accuracy)",
    "task3_naive_scratch.pt": "Task 3: mnistTask3's folders used as labels (naive), from scratch",
    "task3_naive_task1.pt": "Task 3: folders as labels (naive), from the Task 1 network",
    "task3_scratch.pt": "Task 3: corrected loss, then pseudo-labels (two-stage), from scratch "
                        "(seed with the lowest held-out corrected loss)",
    "task3_task1.pt": "Task 3: two-stage, from the Task 1 network (seed chosen the same way)",
}


def format_metric(name: str, value) -> str:
    if isinstance(value, dict) and "mean" in value:  # a summary over folds or seeds
        return f"{name} {100 * value['mean']:.2f} ± {100 * value['std']:.2f} % (n={value['n']})"
    if isinstance(value, float):
        return f"{name} {100 * value:.2f} %" if "accuracy" in name else f"{name} {value:.4f}"
    return f"{name} {value}"


def checkpoint_identity(path: Path) -> dict:
    """Which file a run started from: a later re-run of the task that saved it replaces the file, so
    results that start from a checkpoint name it by content (sha256) and by the commit that trained it."""
    metadata = read_checkpoint(path)["metadata"]
    return {"file": project_relative(path), "sha256": sha256_of_source(Path(path))[:12],
            "git_commit": metadata.get("git_commit", "unknown")[:7], "device": metadata.get("device", "unknown"),
            "saved_at": metadata.get("saved_at", "unknown")}


def describe_checkpoints(paths) -> list[dict]:
    """One row per existing checkpoint: file, what it is, its stored metrics, data, device, size."""
    rows = []
    for path in filter(Path.is_file, map(Path, paths)):
        metadata = read_checkpoint(path)["metadata"]
        rows.append({"path": path, "file": project_relative(path),
                     "what": CHECKPOINT_DESCRIPTIONS.get(path.name.replace("-standin", ""), metadata.get("task", "")),
                     "metrics": "; ".join(format_metric(key.replace("_", " "), value)
                                          for key, value in metadata.get("metrics", {}).items()),
                     "data": "stand-in" if trained_on_standin(metadata) else
                     "user data" if "USER DATA" in str(metadata.get("data", "")) else "real",
                     "device": metadata.get("device", "unknown"), "precision": metadata.get("precision", "float32"),
                     "size": f"{path.stat().st_size / 1e6:.1f} MB"})
    return rows


def print_and_offer(paths) -> list[dict]:
    """The end of every notebook: a table of the checkpoints it saved and, on Colab, one zip of
    them downloaded to the user's computer; elsewhere their paths relative to the repository."""
    rows = describe_checkpoints(paths)
    for row in rows:
        print(f"{row['file']}  ({row['size']}, {row['data']} data, trained on {row['device']}, {row['precision']})\n"
              f"    {row['what']}\n    {row['metrics'] or 'no stored metrics'}")
    if rows and on_colab():
        from google.colab import files
        bundle = rows[0]["path"].parent / f"{rows[0]['path'].stem.split('_')[0]}_checkpoints.zip"
        with zipfile.ZipFile(bundle, "w") as archive:
            for row in rows:
                archive.write(row["path"], row["path"].name)
        files.download(str(bundle))
    elif rows:
        print("\nFiles are under the repository root; load one with src.checkpoints.load_model(path).")
    return rows
