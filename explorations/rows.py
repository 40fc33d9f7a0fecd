"""What was tried beyond each task's recipe: one row per question, a query over the explorations' run records.

Each exploration script writes its runs (`analysis.Run`) to `results/<name>.json`; a row compares a variant's runs
with the baseline's runs *from the same exploration*, paired by fold (Task 1: the corrected resampled t-test, as the
folds share training drawings) or by seed (Task 2: the paired t-test). A question whose file is absent gives no row.
The notebooks print these rows, and `python -m tools.readme_tables` writes them as `explorations/README.md`'s table.

    python -m explorations.rows
"""
from __future__ import annotations

from dataclasses import dataclass

from explorations import read_report
from src import analysis
from src.analysis import Run
from src.task1 import TEST_SHARE


@dataclass(frozen=True)
class Question:
    """One row: `variant` against `baseline` (run selectors), over the runs of the file `file`."""
    task: str
    question: str
    file: str                   # results/<file>.json
    variant: dict
    baseline: dict
    measures: dict              # metric -> its label in the answer
    paired_by: str
    command: str
    baseline_name: str = "the recipe"


ACCURACIES = {"accuracy": "per image", "accuracy_case_merged": "case-merged"}
REPLICATION = ("python -m explorations.task1_recipe_choice --fold-seed 1 --seed 100 --candidates \"strokes thinned to "
               "MNIST's width\" --json explorations/results/task1_recipe_choice_fold_seed1.json")
ENSEMBLE = "python -m explorations.task1_ensemble --members 3 --out explorations/results/task1_ensemble.json"
STROKES = ("python -m explorations.task2_digit_strokes --seeds 0 1 2 3 4 "
           "--out explorations/results/task2_digit_strokes.json")
RELEASE = "python -m explorations.task2_release --seeds 0 1 2 --out explorations/results/task2_release.json"
RELEASE_STATISTICS = ("python -m explorations.task2_release --seeds 0 1 2 --statistics-only "
                      "--out explorations/results/task2_release_statistics.json")
SEARCH = "python -m explorations.task1_search --protocol PROTOCOL --repeats R ... --out explorations/results/task1_search.json"
PROTOCOL_NAMES = {"images": "seen writers", "writers": "new writers"}


def search_questions() -> list[Question]:
    """Every candidate of the recipe search, under each protocol it ran, against the recipe of the same runs."""
    report = read_report("task1_search") or {"runs": []}
    found = dict.fromkeys((run["method"], run["protocol"]) for run in report["runs"] if run["method"] != "recipe")
    return [Question("task1", f"Recipe search: {method} ({PROTOCOL_NAMES[protocol]})", "task1_search",
                     {"method": method, "protocol": protocol}, {"method": "recipe", "protocol": protocol}, ACCURACIES,
                     "fold", " && ".join(report.get("commands", [SEARCH]))) for method, protocol in found]


def questions() -> list[Question]:
    return [
        *[Question("task1", f"What if the tablet's thick strokes are thinned to MNIST's width? ({PROTOCOL_NAMES[p]}; "
                   "replicated: folds dealt afresh, other seeds)", "task1_recipe_choice_fold_seed1",
                   {"method": "strokes thinned to MNIST's width", "protocol": p}, {"method": "recipe", "protocol": p},
                   ACCURACIES, "fold", REPLICATION, "the recipe with strokes as drawn") for p in PROTOCOL_NAMES],
        *[Question("task1", f"Is an ensemble of {size} networks better than one (probabilities averaged; {size}x the "
                   "training; new writers)?", "task1_ensemble", {"method": f"ensemble of {size}"},
                   {"method": "ensemble of 1"}, ACCURACIES, "fold", ENSEMBLE) for size in (2, 3)],
        *search_questions(),
        Question("task2", "Do the 400 digits pretrain better thinned to MNIST's width (Task 1's recipe) than as drawn?",
                 "task2_digit_strokes", {"method": "thinned to MNIST's width"}, {"method": "as drawn"},
                 {"mnist_validation_accuracy_zero_shot": "MNIST validation zero-shot",
                  "linear_probe_stage3": "linear probe on stage 3"}, "seed", STROKES, "Task 2's pretraining (as drawn)"),
        Question("task2", "Is batch norm why LP-FT's scratch control loses accuracy at the release? (its statistics "
                 "recomputed on MNIST before the probe)", "task2_release", {"method": "statistics recomputed on MNIST"},
                 {"method": "statistics as initialised"}, {"validation_accuracy_at_release": "validation at the release",
                                                           "drop_after_release": "largest fall after the release",
                                                           "final_validation_accuracy": "final validation accuracy"},
                 "seed", RELEASE, "the notebook's control"),
        Question("task2", "How much of that fall do batch norm's running statistics cause alone? (after the probe, "
                 "30 augmented training batches through batch norm, no weight changes)", "task2_release_statistics",
                 {"method": "statistics recomputed on MNIST"}, {"method": "statistics as initialised"},
                 {"validation_accuracy_at_release": "validation after the probe",
                  "fall_from_statistics_alone": "fall from the statistics alone"},
                 "seed", RELEASE_STATISTICS, "the notebook's control"),
    ]


def answer(question: Question) -> dict | None:
    """The row: per measure, the variant's mean over the paired runs and the test against the baseline."""
    report = read_report(question.file)
    if not report:
        return None
    runs = [Run.from_dict(run) for run in report["runs"]]
    share = TEST_SHARE if question.paired_by == "fold" else None
    tests = {label: analysis.compare(runs, question.variant, question.baseline, metric, question.paired_by, share)
             for metric, label in question.measures.items()}
    if not all(tests.values()):
        return None
    baseline = {}  # over the same runs the test pairs with the variant's, not every run of the baseline
    for metric, label in question.measures.items():
        paired = [run.metrics[metric] for run in analysis.select(runs, **question.baseline)
                  if getattr(run, question.paired_by) in tests[label]["pairs"]]
        baseline[label] = sum(paired) / len(paired)
    return {"task": question.task, "question": question.question, "command": question.command, "tests": tests,
            "baseline": baseline, "baseline_name": question.baseline_name,
            "machine": report.get("device") or "machine not recorded in the file"}


def rows(task: str | None = None) -> list[dict]:
    return [row for row in map(answer, questions()) if row and task in (None, row["task"])]


def answer_text(row: dict) -> str:
    """'per image: 92.67 % (+0.37 points, corrected resampled t, p = 0.182, n=5) vs the recipe at 92.31 %; ...'"""
    return "; ".join(
        f"{label}: {100 * (row['baseline'][label] + test['mean_difference']):.2f} % "
        f"({100 * test['mean_difference']:+.2f} points, {test['test']}, p = {test['p_value']:.3f}, n={test['n']}) "
        f"vs {row['baseline_name']} at {100 * row['baseline'][label]:.2f} %" for label, test in row["tests"].items())


def print_rows(task: str | None = None) -> None:
    """Each row, with every test of the rows printed Holm-corrected together (one family, apart from the notebook's)."""
    found = rows(task)
    tests = analysis.with_holm([test for row in found for test in row["tests"].values()])
    for row in found:
        corrected = [tests.pop(0) for _ in row["tests"]]
        holm = ", ".join(f"{label} {test['p_holm']:.3f}" for label, test in zip(row["tests"], corrected))
        print(f"- {row['question']}\n    {answer_text(row)}\n    Holm-corrected over these rows: {holm}\n"
              f"    {row['machine']}; {row['command']}")


if __name__ == "__main__":
    print_rows()
