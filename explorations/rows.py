"""What was tried beyond each task's recipe: one row per question, a query over the explorations' run records.

Each exploration script writes its runs (`analysis.Run`) to `results/<name>.json`; a row compares a variant's runs
with the recipe's own runs *from the same explorations*, paired by writer fold (Task 1) or by seed (Task 3), with
`analysis.compare`. A question whose files are absent gives no row (Task 1's are to be re-run on the real trainPart1).
The notebooks print these rows, and `python -m tools.readme_tables` writes them as `explorations/README.md`'s table.

    python -m explorations.rows      # both tasks' rows
"""
from __future__ import annotations

from dataclasses import dataclass

from explorations import RESULTS, read_report
from src import analysis
from src.analysis import Run


@dataclass(frozen=True)
class Question:
    """One row: `variant` against `baseline` (run selectors), over the runs of the files matching `files`."""
    task: str
    question: str
    files: tuple[str, ...]      # file name patterns in results/, without ".json"
    variant: dict
    baseline: dict
    measures: dict              # metric -> its label in the answer
    paired_by: str
    command: str
    shown: dict | None = None   # further metrics listed per run: metric -> its label
    baseline_name: str = "the recipe"  # what `baseline` is, in the answer ("vs the recipe at 91.13 %")


TASK1_MEASURES = {"accuracy": "per image", "accuracy_case_merged": "case-merged",
                  "accuracy_writer_decoded": "writer-decoded"}
STAGES = "python -m explorations.task3_stages --seed S --out explorations/results/task3_stages_seedS.json"
SOFT = "python -m explorations.task3_stages --seed S --soft --out explorations/results/task3_soft_targets_seedS.json"
TRUTH = "python -m explorations.task3_stages --seed 0 --oracle --out explorations/results/task3_true_labels_seed0.json"


def task3_question(question: str, method: str, command: str, files: tuple[str, ...] = ()):
    """A Task 3 stage-2 variant from scratch against the recipe's two-stage network of the same seed (whose runs are
    in the stages files; the variant's own in `files`)."""
    return Question("task3", question, ("task3_stages_seed*", *files), {"method": method}, {"method": "two_stage"},
                    {"mnist_test_accuracy": "MNIST test"}, "seed", command, shown={"expected_calibration_error": "ECE"})


def task1_question(question: str, file: str, variant: str, baseline: str, command: str):
    """A Task 1 variant against the recipe's network of the same run, paired by writer fold."""
    return Question("task1", question, (file,), {"method": variant}, {"method": baseline}, TASK1_MEASURES, "fold",
                    command)


RECIPE_CHOICE = "python -m explorations.task1_recipe_choice --json explorations/results/task1_recipe_choice.json"
RECIPE_CHOICE_QUESTIONS = {  # method in task1_recipe_choice -> the question it answers
    "no test-time augmentation (same networks)": "What if each drawing is read once, without the 8 distorted views?",
    "writer's medians from the evaluated images (same networks)":
        "What if a writer's median drawing comes from the evaluated drawings, not its training drawings?",
    "height against the writer's tall and short levels":
        "What if height is also measured against the writer's capital and lowercase sizes (from its labels)?",
    "stroke-width augmentation (share 0.5)": "What if augmentation also varies the pen's width?",
    "strokes thinned to MNIST's width": "What if the tablet's thick strokes are thinned to MNIST's width?",
    "wider network (32, 64, 128)": "What if the network is wider (32, 64, 128)?",
    "100 epochs": "What if training runs 100 epochs instead of 60?",
}
PROTOCOL_NAMES = {"images": "seen writers", "writers": "new writers"}
REPLICATION = ("python -m explorations.task1_recipe_choice --fold-seed 1 --seed 100 --candidates \"strokes thinned to "
               "MNIST's width\" --json explorations/results/task1_recipe_choice_fold_seed1.json")


def recipe_choice_question(method: str, protocol: str, file: str = "task1_recipe_choice", command: str = RECIPE_CHOICE,
                           note: str = "") -> Question:
    """A candidate of Task 1's recipe choice against the networks of the same run that the candidates were chosen
    against (the recipe with its strokes as drawn, `task1_recipe_choice.BASELINE`), under one protocol."""
    return Question("task1", f"{RECIPE_CHOICE_QUESTIONS[method]} ({PROTOCOL_NAMES[protocol]}{note})",
                    (file,), {"method": method, "protocol": protocol},
                    {"method": "recipe", "protocol": protocol},
                    {"accuracy": "per image", "accuracy_case_merged": "case-merged"}, "fold", command,
                    baseline_name="the recipe with strokes as drawn")


QUESTIONS = [
    *[recipe_choice_question(method, protocol) for protocol in PROTOCOL_NAMES for method in RECIPE_CHOICE_QUESTIONS],
    *[recipe_choice_question("strokes thinned to MNIST's width", protocol, "task1_recipe_choice_fold_seed1", REPLICATION,
                             "; replicated: folds dealt afresh, other seeds") for protocol in PROTOCOL_NAMES],
    *[task1_question(f"Is an ensemble of {size} networks better than one (probabilities averaged; {size}x the "
                     "training)?", "task1_ensemble", f"ensemble of {size}", "ensemble of 1",
                     "python -m explorations.task1_ensemble --members 3 --out explorations/results/task1_ensemble.json")
      for size in (2, 3)],
    task1_question("Does 40x40 input (ink fitted into 28x28) beat the recipe's 28x28?", "task1_resolution", "40x40",
                   "28x28 (recipe)", "python -m explorations.task1_resolution --out "
                   "explorations/results/task1_resolution.json --save-logits data/task1_resolution_logits.pt"),
    task1_question("Does putting a writer's two cases of a letter in one batch help read case?", "task1_case_batches",
                   "case pairs together", "random batches (recipe)",
                   "python -m explorations.task1_case_batches --out explorations/results/task1_case_batches.json"),
    *[task1_question(f"Does re-weighting the geometry on out-of-fold logits help (stacking, l2 {l2})?",
                     "task1_stacking", f"temperature + geometry (l2 {l2})", "as trained",
                     "python -m explorations.task1_stacking --logits data/task1_resolution_logits.pt "
                     "--out explorations/results/task1_stacking.json") for l2 in ("0.001", "0.01", "0.1")],
    Question("task2", "Do the 400 digits pretrain better thinned to MNIST's width (Task 1's recipe) than as drawn?",
             ("task2_digit_strokes",), {"method": "thinned to MNIST's width"}, {"method": "as drawn"},
             {"mnist_validation_accuracy_zero_shot": "MNIST validation zero-shot",
              "linear_probe_stage3": "linear probe on stage 3"}, "seed",
             "python -m explorations.task2_digit_strokes --seeds 0 1 2 3 4 "
             "--out explorations/results/task2_digit_strokes.json", baseline_name="Task 2's pretraining (as drawn)"),
    task3_question("Is the corrected stage alone (stage 1) as good as both stages?", "corrected", STAGES),
    task3_question("Does stage 2 gain from every image (no confidence cut)?", "two_stage_every_image", STAGES),
    task3_question("Does stage 2 gain without label smoothing?", "two_stage_no_smoothing", STAGES),
    task3_question("Does a third round (relabelled by the two-stage network) gain?", "three_stage", STAGES),
    task3_question("Does stage 2 on every image with soft targets p(digit | image, folder), no smoothing, gain?",
                   "soft_targets_every_image", SOFT, ("task3_soft_targets_seed*",)),
    task3_question("Soft against hard targets: the same soft targets mixed with uniform as smoothing 0.1?",
                   "smoothed_soft_targets_every_image", SOFT, ("task3_soft_targets_seed*",)),
    task3_question("Diagnostic, not a method: stage 2's recipe on the same images with their TRUE labels?",
                   "true_labels", TRUTH, ("task3_true_labels_seed0",)),
]


def reports(patterns: tuple[str, ...]) -> list[dict]:
    paths = sorted({path for pattern in patterns for path in RESULTS.glob(f"{pattern}.json")})
    return [report for report in (read_report(path.stem) for path in paths) if report]


def answer(question: Question) -> dict | None:
    """The row: per measure, the variant's mean over the paired runs and the paired test against the recipe."""
    found = reports(question.files)
    runs = [Run.from_dict(run) for report in found for run in report.get("runs", [])]
    tests = {metric: analysis.compare(runs, question.variant, question.baseline, metric, question.paired_by)
             for metric in question.measures}
    if not all(tests.values()):
        return None
    pairs = next(iter(tests.values()))["pairs"]
    variant = [run for run in analysis.select(runs, **question.variant) if getattr(run, question.paired_by) in pairs]
    baseline = [run for run in analysis.select(runs, **question.baseline) if getattr(run, question.paired_by) in pairs]
    machines = sorted({report["device"] for report in found if report.get("device")})
    return {"question": question.question, "task": question.task, "command": question.command,
            "baseline_name": question.baseline_name,
            "machine": "; ".join(machines) or "machine not recorded in the file",
            question.paired_by + "s": pairs, "tests": {question.measures[metric]: test for metric, test in tests.items()},
            "measures": {label: versus_recipe([run.metrics[metric] for run in variant], tests[metric])
                         for metric, label in question.measures.items()},
            "baseline": {label: sum(run.metrics[metric] for run in baseline) / len(baseline)
                         for metric, label in question.measures.items()},
            "shown": {label: " / ".join(f"{run.metrics[metric]:.3f}" for run in variant)
                      for metric, label in (question.shown or {}).items()},
            "per_pair": {label: {"variant": [run.metrics[metric] for run in _in_order(variant, question.paired_by)],
                                 "baseline": [run.metrics[metric] for run in _in_order(baseline, question.paired_by)]}
                         for metric, label in question.measures.items()}}


def _in_order(runs: list[Run], paired_by: str) -> list[Run]:
    return sorted(runs, key=lambda run: getattr(run, paired_by))


def versus_recipe(values: list[float], test: dict) -> str:
    """'92.82 % (+0.24 points, p = 0.235)': the variant's mean, then its paired difference to the recipe."""
    p_value = "untested" if test["n"] < 2 else f"p = {test['p_value']:.3f}"
    return f"{100 * sum(values) / len(values):.2f} % ({100 * test['mean_difference']:+.2f} points, {p_value})"


def rows(task: str | None = None) -> list[dict]:
    return [row for row in map(answer, QUESTIONS) if row and task in (None, row["task"])]


def answer_text(row: dict) -> str:
    """The README's answer cell: each measure against its baseline's runs (their mean first), over which pairs."""
    paired = "seeds" if "seeds" in row else "folds"
    return "; ".join(f"{label}: {text} vs {row['baseline_name']} at {100 * row['baseline'][label]:.2f} %"
                     for label, text in row["measures"].items()) + f"; {paired} {row[paired]}"


def resolved_better(rows_: list[dict]) -> list[str]:
    return [f"{row['question']} ({metric})" for row in rows_ for metric, test in row["tests"].items()
            if test["n"] >= 2 and test["p_value"] < 0.05 and test["mean_difference"] > 0]


def print_rows(rows_: list[dict]) -> None:
    """Each row, then which variants the tests resolve as better than the recipe (p < 0.05), if any."""
    for row in rows_:
        paired = "seeds" if "seeds" in row else "folds"
        print(f"- {row['question']}")
        print("    the recipe's own runs: " + "; ".join(f"{label} {100 * value:.2f} %"
                                                       for label, value in row["baseline"].items()))
        print("    this variant: " + "; ".join([f"{label}: {text}" for label, text in row["measures"].items()]
                                 + [f"{paired}: {row[paired]}"] + [f"{metric}: {values}" for metric, values in
                                                                   row["shown"].items()]))
        print(f"    {row['machine']}; {row['command']}")
    better = resolved_better(rows_)
    print("Resolved as better than the recipe (paired test, p < 0.05): " + ("; ".join(better) if better else "none"))


# ----------------------------------------------------------------------------- Task 1's measurements without training

def task1_geometry_ceiling() -> str | None:
    """How well the ink box's geometry alone (no image) tells each look-alike letter pair apart, on unseen writers."""
    sizes = read_report("task1_case_size")
    if not sizes or "mean_over_pairs_writer_grouped_cv_logistic" not in sizes:
        return None
    means = sizes["mean_over_pairs_writer_grouped_cv_logistic"]
    text = (f"- geometry alone (no image), a logistic regression per look-alike letter pair, writer-grouped CV, mean "
            f"over {len(sizes['pairs'])} pairs: "
            + "; ".join(f"{name} {100 * value:.1f} %" for name, value in means.items())
            + "\n    python -m explorations.task1_case_size --out explorations/results/task1_case_size.json")
    resolution = read_report("task1_resolution")
    if resolution:
        network = resolution["pair_accuracy"]["28x28 (recipe)"]
        alone = {pair: row["writer_grouped_cv_logistic_accuracy"]["the recipe's 4 geometry features"]
                 for pair, row in sizes["pairs"].items()}
        text += ("\n- per pair, the recipe's network of the resolution run (out-of-fold, its two logits) | "
                 "geometry alone (its 4 features):\n    "
                 + ", ".join(f"{pair[0]}/{pair[1]} {100 * network[pair]:.0f} | {100 * alone[pair]:.0f}"
                             for pair in alone if pair in network))
    return text


def task1_look_alikes() -> str | None:
    """What limits writer-consistent decoding: its errors inside the glyph triplets, and how consistently one writer's
    two look-alike drawings are ordered by the best single geometry feature."""
    stacking, sizes = read_report("task1_stacking"), read_report("task1_case_size")
    if not stacking or not sizes or "glyph_pairs_within_writer_order" not in sizes:
        return None
    errors = stacking["decoded_errors_as_trained"]
    inside = ", ".join(f"{count} inside {'/'.join(name.split()[-1])}"
                       for name, count in errors.items() if name != "total")
    order = ", ".join(f"{pair[0]}/{pair[1]} {100 * max(row.values()):.0f} % ({max(row, key=row.get)})"
                      for pair, row in sizes["glyph_pairs_within_writer_order"].items())
    return (f"- writer-decoded errors of the resolution run's recipe network: {errors['total']}, of which {inside}\n"
            f"- within one writer, the share of writers whose two look-alike drawings the best single geometry feature "
            f"orders the same way:\n    {order}")


def print_task1() -> None:
    print("Task 1, 5-fold CV on trainPart1: each variant against the recipe's networks of the same run, paired by fold")
    found = rows("task1")
    if not found:
        print("(none yet: Task 1's explorations are to be re-run on the real trainPart1; see explorations/README.md)")
    print_rows(found)
    for text in (task1_geometry_ceiling(), task1_look_alikes()):
        if text:
            print(text)


def print_task3() -> None:
    """Task 3's appendix: per question, the recipe's two-stage networks of the same exploration runs (the baseline)
    and the variant, in one table, seed by seed, with the paired difference. MNIST test accuracy is only measured
    here: nothing in the recipe was chosen by these rows."""
    print("Task 3 from scratch, MNIST test accuracy (%) of each stage-2 variant and, on the line above it, of the "
          "recipe's two-stage network from the same exploration runs (same seeds, same corrected network).")
    print("These runs are not this notebook's: compare a variant with its own baseline line, not with section 4.\n")
    header = f"  {'':60s} {'mean ± sd':>14s}   per seed"
    for row in rows("task3"):
        seeds = row["seeds"]
        values = row["per_pair"]["MNIST test"]
        test = row["tests"]["MNIST test"]
        print(f"{row['question']}")
        print(header)
        for name, column in (("baseline: the recipe's two-stage", values["baseline"]), ("variant", values["variant"])):
            spread = analysis.summarise(column)
            shown = (f"{100 * spread['mean']:6.2f} ± {100 * spread['std']:4.2f} %" if spread["n"] > 1
                     else f"{100 * spread['mean']:6.2f} % (n=1)")
            print(f"  {name:60s} {shown:>14s}   "
                  + ", ".join(f"seed {seed}: {100 * value:.2f}" for seed, value in zip(seeds, column)))
        print(f"  {'variant minus baseline':60s} " + analysis.paired_test_text(test, "seed", places=2))
        print(f"  {row['machine']}; {row['command']}\n")


if __name__ == "__main__":
    print_task1()
    print()
    print_task3()
