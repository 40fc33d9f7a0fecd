"""Research explorations: questions beyond the notebooks, each a script that writes its runs to `results/`.

Apart from the notebooks (which never train these) and from repository tooling (`tools/`). Each script's docstring
gives its command; `explorations/README.md` is one table of question, answer, command and machine, written by
`python -m tools.readme_tables` from the run records in `results/` (`rows.py` holds the queries).
"""
from __future__ import annotations

import json
from pathlib import Path

from src import analysis
from src.analysis import Run
from src.settings import atomic_write_bytes

EXPLORATIONS = Path(__file__).resolve().parent
RESULTS = EXPLORATIONS / "results"


def write_report(path: str | Path, report: dict) -> None:
    """An exploration's JSON: its settings, its runs (`analysis.Run` rows) and anything else it measured."""
    text = json.dumps(report, indent=1, default=lambda value: value.to_dict() if isinstance(value, Run) else str(value))
    atomic_write_bytes(Path(path), (text + "\n").encode())


def read_report(name: str) -> dict | None:
    """`results/<name>.json`, or None where that exploration has not been run (yet)."""
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


TASK1_MEASURES = ("accuracy", "accuracy_case_merged", "accuracy_writer_decoded")


def cv_runs(method: str, cross_validation: dict) -> list[Run]:
    """A Task 1 cross-validation (`task1.cross_validate`'s result) as run records: one per fold, paired by fold."""
    return [Run("task1", method, "scratch", seed=row["fold"], fold=row["fold"],
                config=analysis.config_digest(cross_validation["recipe"]), protocol=cross_validation.get("protocol"),
                metrics={**{key: row[key] for key in TASK1_MEASURES}, "train_seconds": row["train_seconds"]})
            for row in cross_validation["folds"]]
