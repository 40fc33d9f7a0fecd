"""Turn the benchmark's measurements into rows: a printed table and the README's headline rows.

Every row says what was measured and how (median of how many runs, extrapolated or trained,
training time only), so a number never travels without the assumption behind it.
"""
from __future__ import annotations

MNIST_EPOCH_IMAGES = 60_000
EXTRAPOLATION_NOTE = (
    "The seed pipeline is not trained to 99 % on a CPU (far too slow). Its time to 99 % is extrapolated "
    "as 60,000 images (one epoch of MNIST) / its measured throughput, i.e. it is assumed to reach 99 % "
    "test accuracy after one full epoch, an assumption favourable to the seed pipeline.")
NOT_MEASURED_WITHOUT_GPU = "not measured (no GPU)"


def seconds(value: float | None) -> str:
    if value is None:
        return "not reached"
    if value >= 2 * 3600:
        return f"{value:,.0f} s ({value / 3600:.1f} h)"
    if value >= 120:
        return f"{value:,.0f} s ({value / 60:.1f} min)"
    return f"{value:.1f} s"


def throughput(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:,.0f} images/s" if value >= 100 else f"{value:.1f} images/s"


def percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.2f} %"


def times(value: float | None) -> str:
    """A ratio to three significant figures (0.00556x rather than a rounded-away 0.01x)."""
    return "–" if value is None else f"{value:.3g}x"


def seed_over_ours(value: float | None) -> str:
    """Seed / ours as the issue asks, with its reciprocal when ours is the larger (throughput)."""
    if value is None or value >= 1 or value <= 0:
        return times(value)
    return f"{times(value)} (ours {1 / value:.0f}x the seed's)"


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def each_run(values: list, unit) -> str:
    return f" (runs: {', '.join(unit(v) for v in values)})" if len(values) > 1 else ""


def build_rows(results: dict) -> list[dict]:
    """All rows, in reading order; those with `headline` True go to the README table."""
    summary, seed, ours = results["summary"], results["seed_pipeline"], results["ours"]
    repeats = results["settings"]["repeats"]
    median_of = f"median of {repeats}"
    budget = results["settings"]["budget_seconds"]
    machine = results["machine"]
    seed_speeds = [run["images_per_second"] for run in seed["throughput_runs"]]
    our_speeds = [run["images_per_second"] for run in ours["convergence_runs"]]
    our_times = [run["time_to_target_seconds"] for run in ours["convergence_runs"]]
    rows = [
        ("machine: CPU", machine["cpu"], False),
        ("machine: GPU", machine["gpu"], False),
        ("training runs on", machine["device"], False),
        (f"training throughput, ours ({median_of}, last epoch of each run)",
         throughput(summary["our_images_per_second"]) + each_run(our_speeds, throughput), True),
        (f"training throughput, seed pipeline ({median_of}, {plural(results['settings']['seed_timed_steps'], 'step')} of 64 "
         f"incl. DataLoader + PIL transform)", throughput(summary["seed_images_per_second"]) + each_run(seed_speeds, throughput), True),
        ("throughput ratio seed/ours", seed_over_ours(summary["throughput_ratio_seed_over_ours"]), False),
        (f"time to 99 % MNIST test accuracy, ours ({median_of}, training time only)",
         seconds(summary["our_time_to_target_seconds"]) + each_run(our_times, seconds), True),
        ("time to 99 % MNIST test accuracy, seed pipeline (extrapolated from throughput, 1 epoch)",
         seconds(summary["seed_time_to_target_extrapolated_seconds"]), True),
        (f"time to 99 % MNIST test accuracy, seed pipeline (trained on the GPU, {median_of})",
         NOT_MEASURED_WITHOUT_GPU if seed["trained_to_target_runs"] is None
         else seconds(summary["seed_time_to_target_trained_seconds"]), True),
        (f"speed-up seed/ours in time to 99 % ({summary['time_ratio_basis']})", times(summary["time_ratio_seed_over_ours"]), True),
        (f"MNIST test accuracy after {budget:g} s of training, ours ({median_of}, "
         f"{ours['budget_runs'][0]['test_images']:,} test images)",
         f"{percent(summary['our_budget_accuracy'])} (trained {seconds(summary['our_budget_train_seconds'])})", True),
        (f"MNIST test accuracy after {budget:g} s of training, seed pipeline ({median_of}, "
         f"{seed['budget_runs'][0]['test_images']:,} test images)",
         f"{percent(summary['seed_budget_accuracy'])} (trained {seconds(summary['seed_budget_train_seconds'])})", True),
        trainpart1_row(results["trainpart1"]),
        ("trainPart1 source", results["trainpart1"]["source"], False),
    ]
    return [{"what": what, "value": value, "headline": headline} for what, value, headline in rows]


def trainpart1_row(timing: dict) -> tuple[str, str, bool]:
    """First and cached load against their limits, saying whether the data was real or the stand-in."""
    within = timing["first_load_within_limit"] and timing["cached_load_within_limit"]
    what = f"trainPart1 first load / cached load ({timing['images']:,} images"
    what += f", {timing['cut_files_per_class']} per class cut for --quick)" if timing["cut_files_per_class"] else ")"
    data = ("STAND-IN data (PLAYMNIST_TRAINPART1 unset, no data/trainPart1.zip)" if timing["standin"]
            else f"real data via {timing['route']}")
    value = (f"{timing['first_load_seconds']:.1f} s / {timing['cached_load_seconds']:.2f} s "
             f"(limits {timing['first_load_limit_seconds']:g} s / {timing['cached_load_limit_seconds']:g} s: "
             f"{'met' if within else 'NOT met'}; {data})")
    return what, value, True


def headline_rows(rows: list[dict], command: str, machine: str) -> list[dict]:
    """The README's shape: what, value, command, machine."""
    return [{"what": row["what"], "value": row["value"], "command": command, "machine": machine}
            for row in rows if row["headline"]]


def format_table(rows: list[dict]) -> str:
    width = max(len(row["what"]) for row in rows)
    lines = [f"{'what'.ljust(width)} | value", f"{'-' * width}-|-{'-' * 40}"]
    lines += [f"{row['what'].ljust(width)} | {row['value']}" for row in rows]
    return "\n".join(lines)
