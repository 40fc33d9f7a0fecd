"""An experiment that outlives one sitting: Task 2's full run takes over two hours on 2 CPU cores, longer than a
Colab runtime may stay connected or a working session lasts. After each finished unit of work (one seed's runs) the
experiment writes what the rest of it needs (its run rows and the networks later steps use) to one file. Run again
with the same code, data, budget and machine, it loads that file and goes on with the next unit: every run is seeded
on its own (`train` seeds the generators), so a resumed experiment gives the rows an unbroken one gives. With anything
else changed it starts afresh and says why, so rows from different code or machines are never mixed. The experiment
removes the file once its results are saved.
"""
from __future__ import annotations

import io
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from .checkpoints import cpu_state_dict, plain
from .data.files import sha256_of_source
from .model import ModelConfig, build_model
from .settings import atomic_write_bytes, project_relative, report
from .train import TrainConfig, TrainResult


def code_digest() -> str:
    """sha256 over the package's own source files: any change to them starts an experiment afresh."""
    return sha256_of_source(Path(__file__).parent, "*.py")[:16]


def source_identity(source) -> str:
    """A dataset as the identity of a run compares it: by content where its sha256 is known."""
    return f"{source.name}: {source.kind}, {source.sha256 or source.location}, {source.files} files"


@dataclass(frozen=True)
class SavedProgress:
    """The file an unfinished experiment leaves behind, and what must match for it to be continued."""
    path: Path
    identity: dict              # e.g. task, budget, code digest, data, machine; compared field by field

    def load(self) -> dict | None:
        """The saved state when it is this experiment's, else None (the reason on the terminal; results["resumed"]
        records a continuation)."""
        if not self.path.exists():
            return None
        name = project_relative(self.path)
        try:
            saved = torch.load(self.path, map_location="cpu", weights_only=True)
            saved_identity, state, saved_at = saved["identity"], saved["state"], saved["saved_at"]
        except Exception as error:  # truncated, or not such a file: the experiment starts afresh and replaces it
            report(f"{name}: not a readable saved experiment ({type(error).__name__}); starting afresh")
            return None
        changed = [key for key in sorted(set(self.identity) | set(saved_identity))
                   if saved_identity.get(key) != self.identity.get(key)]
        if changed:
            report(f"{name}: saved by an experiment with another {', '.join(changed)}; starting afresh")
            return None
        report(f"{name}: continuing an experiment saved at {saved_at}")
        return {**state, "saved_at": saved_at}

    def save(self, state: dict) -> None:
        buffer = io.BytesIO()
        torch.save(plain({"identity": self.identity, "state": state,
                          "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}), buffer)
        atomic_write_bytes(self.path, buffer.getvalue())

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
        try:
            self.path.parent.rmdir()  # the folder too, when nothing else is in it
        except OSError:
            pass


def result_state(result: TrainResult) -> dict:
    """What a finished run leaves for later steps: its weights and curves (its recipe is the caller's to know)."""
    return {"state_dict": cpu_state_dict(result.model),
            "history": result.history, "step_evaluations": result.step_evaluations, "device": result.device,
            "precision": result.precision}


def restored_result(state: dict, model: ModelConfig, config: TrainConfig) -> TrainResult:
    """The finished run back, as later steps (choosing, saving a checkpoint) use it."""
    network = build_model(model)
    network.load_state_dict(state["state_dict"])
    return TrainResult(network, state["history"], state["step_evaluations"], config, state["device"],
                       state["precision"])
