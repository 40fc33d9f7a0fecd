"""What was tried beyond each task's recipe, as rows read from the exploration tools' JSON in results/explore/.

Those runs are outside every notebook's budget (a CPU, one command each, given in each tool's docstring and in the
rows); the notebooks print these rows so that what did not help is shown with its paired test, not just mentioned.
Each row compares a variant with the recipe's own network *from the same run*, paired by writer fold (Task 1) or by
seed (Task 3). A file that is absent gives no row.

    python -m tools.explorations      # both tables
"""
from __future__ import annotations

import json

from src import analysis
from src.runs import PROJECT_ROOT

EXPLORE = PROJECT_ROOT / "results" / "explore"
GEOMETRY_FEATURES = "the recipe's 4 geometry features"
TASK1_MEASURES = (("accuracy", "per image"), ("accuracy_case_merged", "case-merged"),
                  ("accuracy_writer_decoded", "writer-decoded"))


def _read(name: str) -> dict | None:
    path = EXPLORE / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _versus(values: list[float], baseline: list[float]) -> dict:
    """The paired test, and its text: '92.82 % (+0.24 points, p = 0.235)' (the variant's mean first)."""
    test = analysis.paired_t_test(values, baseline)
    p_value = "untested" if test["n"] < 2 else f"p = {test['p_value']:.3f}"
    return {**test, "text": f"{100 * sum(values) / len(values):.2f} % ({100 * test['mean_difference']:+.2f} points, "
                            f"{p_value})"}


def task1_rows() -> list[dict]:
    """Per variant: each measure against the recipe's network of the same run (mean over folds, paired by fold)."""
    rows = []

    def add(what: str, variant_folds: list[dict], recipe_folds: list[dict], variant_key: str, recipe_key: str,
            command: str, device: str):
        rows.append({"what": what, "command": command, "machine": device, **{
            label: _versus([f[variant_key.format(m)] for f in variant_folds], [f[recipe_key.format(m)] for f in
                                                                                 recipe_folds])
            for m, label in TASK1_MEASURES}})

    ensemble = _read("task1_ensemble")
    if ensemble:
        for size in range(2, ensemble["members"] + 1):
            add(f"ensemble of {size} networks (probabilities averaged; {size}x the training)", ensemble["folds"],
                ensemble["folds"], f"{{}}_{size}", "{}_1",
                "python -m tools.explore_task1_ensemble --members 3 --out results/explore/task1_ensemble.json",
                ensemble["device"])
    resolution = _read("task1_resolution")
    if resolution and len(resolution["variants"]) == 2:
        (_, recipe), (name, finer) = resolution["variants"].items()
        cost = sum(f["train_seconds"] for f in finer["folds"]) / sum(f["train_seconds"] for f in recipe["folds"])
        add(f"input {name} (ink fitted into {finer['image_size'] * 20 // 28}x{finer['image_size'] * 20 // 28}; "
            f"{cost:.1f}x the training)", finer["folds"], recipe["folds"], "{}", "{}",
            "python -m tools.explore_task1_resolution --out results/explore/task1_resolution.json "
            "--save-logits data/task1_resolution_logits.pt", resolution["device"])
    case_batches = _read("task1_case_batches")
    if case_batches and len(case_batches["variants"]) == 2:
        (_, recipe), (_, grouped) = case_batches["variants"].items()
        together = case_batches["share_of_images_with_their_other_case_in_the_batch"]
        add("case pairs together in batches (a writer's s beside the same writer's S: "
            f"{100 * together['case pairs together']:.0f} % of images have their other case in the batch, "
            f"random batches {100 * together['random batches (recipe)']:.0f} %)", grouped["folds"], recipe["folds"],
            "{}", "{}", "python -m tools.explore_task1_case_batches --out results/explore/task1_case_batches.json",
            case_batches["device"])
    stacking = _read("task1_stacking")
    if stacking:
        recipe = stacking["methods"]["as trained"]["folds"]
        for method, result in stacking["methods"].items():
            if method.startswith("temperature + geometry"):
                add(f"geometry re-weighted on out-of-fold logits (stacking: {method})", result["folds"], recipe,
                    "{}", "{}", "python -m tools.explore_task1_stacking --logits data/task1_resolution_logits.pt "
                    "--out results/explore/task1_stacking.json", "no training (the resolution run's logits)")
    return rows


def task1_geometry_ceiling() -> str | None:
    """How well the ink box's geometry alone (no image) tells each look-alike letter pair apart, on unseen writers."""
    sizes = _read("task1_case_size")
    if not sizes or "mean_over_pairs_writer_grouped_cv_logistic" not in sizes:
        return None
    means = sizes["mean_over_pairs_writer_grouped_cv_logistic"]
    text = (f"- geometry alone (no image), a logistic regression per look-alike letter pair, writer-grouped CV, mean "
            f"over {len(sizes['pairs'])} pairs: "
            + "; ".join(f"{name} {100 * value:.1f} %" for name, value in means.items())
            + "\n    python -m tools.explore_task1_case_size --out results/explore/task1_case_size.json")
    resolution = _read("task1_resolution")
    if resolution:
        network = next(iter(resolution["variants"].values()))["pair_accuracy"]
        alone = {pair: row["writer_grouped_cv_logistic_accuracy"][GEOMETRY_FEATURES]
                 for pair, row in sizes["pairs"].items()}
        text += ("\n- per pair, the recipe's network of the resolution run (out-of-fold, its two logits) | "
                 "geometry alone (its 4 features):\n    "
                 + ", ".join(f"{pair[0]}/{pair[1]} {100 * network[pair]:.0f} | {100 * alone[pair]:.0f}"
                             for pair in alone if pair in network))
    return text


def task1_look_alikes() -> str | None:
    """What limits writer-consistent decoding: its errors inside the glyph triplets, and how consistently one writer's
    two look-alike drawings are ordered by the best single geometry feature."""
    stacking, sizes = _read("task1_stacking"), _read("task1_case_size")
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


def task3_rows() -> list[dict]:
    """Stage-2 variants from scratch against the recipe's two-stage network of the same seed's run (paired by seed)."""
    stages = [s for s in (_read(f"task3_stages_seed{seed}") for seed in range(10)) if s]
    soft = {s["seed"]: s for s in (_read(f"task3_soft_targets_seed{seed}") for seed in range(10)) if s}
    recipe = {s["seed"]: s["A_two_stage"]["mnist_test_accuracy"] for s in stages if "A_two_stage" in s}
    variants = {"D_two_stage_every_image": "stage 2 on every image (no confidence cut)",
                "B_two_stage_no_smoothing": "stage 2 without label smoothing",
                "C_three_stage": "a third round (relabelled by the two-stage network)"}
    rows = []

    def add(what: str, runs: dict[int, dict], key: str, command: str):
        seeds = sorted(seed for seed, run in runs.items() if key in run and seed in recipe)
        if seeds:
            machine = runs[seeds[0]].get("device", "machine not recorded in the file")
            rows.append({"what": what, "seeds": seeds, "command": command, "machine": machine,
                         "MNIST test": _versus([runs[s][key]["mnist_test_accuracy"] for s in seeds],
                                               [recipe[s] for s in seeds]),
                         "ECE": " / ".join(f"{runs[s][key]['ece']:.3f}" for s in seeds)})

    by_seed = {s["seed"]: s for s in stages}
    stages_command = "python -m tools.explore_task3_stages --seed S --out results/explore/task3_stages_seedS.json"
    add("the recipe's corrected stage alone (stage 1)", by_seed, "corrected", stages_command)
    for key, what in variants.items():
        add(what, by_seed, key, stages_command)
    soft_command = ("python -m tools.explore_task3_stages --seed S --soft "
                    "--out results/explore/task3_soft_targets_seedS.json")
    add("stage 2 on every image with soft targets p(digit | image, folder), no smoothing", soft,
        "E_soft_targets_every_image", soft_command)
    add("the same soft targets mixed with uniform as smoothing 0.1 (soft against the recipe's hard targets)", soft,
        "E_smoothed_soft_targets_every_image", soft_command)
    truth = _read("task3_true_labels_seed0")
    if truth:
        add("diagnostic, not a method: stage 2's recipe on the same images with their TRUE labels",
            {truth["seed"]: truth}, "F_true_labels_jpeg",
            "python -m tools.explore_task3_stages --seed 0 --oracle --out results/explore/task3_true_labels_seed0.json")
    return rows


def print_rows(rows: list[dict], tested: tuple[str, ...], other: tuple[str, ...] = ()) -> None:
    """Each row, then which of its measures the tests resolve as better than the recipe (p < 0.05), if any."""
    for row in rows:
        print(f"- {row['what']}")
        print("    " + "; ".join([f"{column}: {row[column]['text']}" for column in tested]
                                 + [f"{column}: {row[column]}" for column in other]))
        print(f"    {row['machine']}; {row['command']}")
    better = [f"{row['what']} ({column})" for row in rows for column in tested
              if row[column]["n"] >= 2 and row[column]["p_value"] < 0.05 and row[column]["mean_difference"] > 0]
    print("Resolved as better than the recipe (paired test, p < 0.05): " + ("; ".join(better) if better else "none"))


def print_task1() -> None:
    print("Task 1, writer-grouped 5-fold CV: each variant against the recipe's network of the same run, paired by fold")
    print_rows(task1_rows(), tuple(label for _, label in TASK1_MEASURES))
    print(task1_geometry_ceiling() or "")
    print(task1_look_alikes() or "")


def print_task3() -> None:
    print("Task 3 from scratch, MNIST test accuracy: each variant against the recipe's two-stage network of the same "
          "seed's run")
    print_rows(task3_rows(), ("MNIST test",), ("seeds", "ECE"))


def main() -> None:
    print_task1()
    print()
    print_task3()


if __name__ == "__main__":
    main()
