"""`python -m bench [--quick]`: measure our training and the seed pipeline side by side, print a
table and write results/bench.json (results/quick/bench.json with --quick).

Both pipelines run in the same process on the same device, interleaved repeat by repeat, so a
machine that slows down part-way slows both. Each repeat uses its own seed for weights and order.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict, dataclass, replace

import torch

from src.checkpoints import device_name
from src.runs import save_results

from . import our_measurements, seed_measurements
from .data import default_device, load_benchmark_mnist, stratified_subset
from .medians import median, ratio, seconds_for_images
from .report import (EXTRAPOLATION_NOTE, MNIST_EPOCH_IMAGES, NOT_MEASURED_WITHOUT_GPU, build_rows, format_table,
                     headline_rows)
from .trainpart1_timing import time_trainpart1_preparation


@dataclass(frozen=True)
class Settings:
    repeats: int = 3                     # each median is over this many independent runs
    budget_seconds: float = 60.0         # training time for "accuracy after a fixed budget"
    target_accuracy: float = 0.99
    seed_warmup_steps: int = 3           # untimed, before the seed's throughput steps
    seed_timed_steps: int = 20           # timed steps of 64 for the seed's throughput
    our_epochs: int = 2                  # our convergence run: one-cycle over this many epochs
    evaluate_every_steps: int = 50       # test accuracy every N steps, for time to 99 %
    seed_evaluation_images: int = 2000   # CPU only: stratified test subset for the seed's budget accuracy
    seed_max_epochs: int = 5             # GPU only: the seed trained to 99 % stops here if it never gets there
    train_images: int | None = None      # None: all 60,000
    test_images: int | None = None       # None: all 10,000
    trainpart1_files_per_class: int | None = None  # None: the whole set


FULL = Settings()
QUICK = Settings(repeats=1, budget_seconds=1.0, seed_warmup_steps=0, seed_timed_steps=1, our_epochs=1,
                 evaluate_every_steps=5, seed_evaluation_images=100, seed_max_epochs=1, train_images=2560,
                 test_images=500, trainpart1_files_per_class=2)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def machine_description(device: torch.device) -> dict:
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else NOT_MEASURED_WITHOUT_GPU
    cpu = device_name("cpu")
    return {"device": device.type, "cpu": cpu, "gpu": gpu, "torch": torch.__version__,
            "summary": f"{gpu} (host: {cpu})" if device.type == "cuda" else cpu}


def run_benchmark(settings: Settings, device: torch.device) -> dict:
    train, test, mnist_source = load_benchmark_mnist(settings.train_images, settings.test_images)
    seed_train = seed_measurements.SeedData(train)
    seed_test = test if device.type == "cuda" else stratified_subset(test, settings.seed_evaluation_images)
    seed_evaluation = seed_measurements.SeedData(seed_test).evaluation_tensors(device)
    seed = {"throughput_runs": [], "budget_runs": [], "trained_to_target_runs": [] if device.type == "cuda" else None,
            "extrapolation_assumption": EXTRAPOLATION_NOTE}
    ours = {"convergence_runs": [], "budget_runs": []}

    for repeat in range(settings.repeats):
        step = f"repeat {repeat + 1}/{settings.repeats}"
        log(f"{step}: seed pipeline throughput ({settings.seed_warmup_steps} warm-up + {settings.seed_timed_steps} timed steps)")
        seed["throughput_runs"].append(seed_measurements.throughput(
            seed_train, seed=repeat, warmup_steps=settings.seed_warmup_steps, timed_steps=settings.seed_timed_steps,
            device=device))
        log(f"{step}: ours, {settings.our_epochs} epoch(s) with test accuracy every {settings.evaluate_every_steps} steps")
        convergence = our_measurements.convergence_run(
            train, test, seed=repeat, epochs=settings.our_epochs, evaluate_every_steps=settings.evaluate_every_steps,
            target_accuracy=settings.target_accuracy, device=device)
        ours["convergence_runs"].append(convergence)
        log(f"{step}: seed pipeline for a {settings.budget_seconds:g} s budget")
        seed["budget_runs"].append(seed_measurements.accuracy_after_budget(
            seed_train, seed_evaluation, seed=repeat, budget_seconds=settings.budget_seconds, device=device))
        log(f"{step}: ours for a {settings.budget_seconds:g} s budget")
        ours["budget_runs"].append(our_measurements.accuracy_after_budget(
            train, test, seed=repeat, budget_seconds=settings.budget_seconds,
            images_per_second=convergence["images_per_second"], device=device))
        if device.type == "cuda":
            log(f"{step}: seed pipeline trained to {100 * settings.target_accuracy:g} % (at most {settings.seed_max_epochs} epochs)")
            seed["trained_to_target_runs"].append(seed_measurements.time_to_accuracy(
                seed_train, seed_evaluation, seed=repeat, target_accuracy=settings.target_accuracy,
                evaluate_every_steps=settings.evaluate_every_steps, max_epochs=settings.seed_max_epochs, device=device))

    log("trainPart1: first load into an empty cache, then a cached load")
    trainpart1 = time_trainpart1_preparation(files_per_class=settings.trainpart1_files_per_class)
    return {"data": {"mnist": mnist_source.describe(), "train_images": len(train), "test_images": len(test),
                     "seed_evaluation_images": len(seed_test)},
            "seed_pipeline": seed, "ours": ours, "trainpart1": trainpart1,
            "summary": summarise(seed, ours)}


def summarise(seed: dict, ours: dict) -> dict:
    """Medians over the repeats, and the seed/ours ratios built from those medians."""
    seed_speed = median([run["images_per_second"] for run in seed["throughput_runs"]])
    our_speed = median([run["images_per_second"] for run in ours["convergence_runs"]])
    our_time = median([run["time_to_target_seconds"] for run in ours["convergence_runs"]])
    extrapolated = seconds_for_images(MNIST_EPOCH_IMAGES, seed_speed)
    trained_runs = seed["trained_to_target_runs"]
    trained = None if trained_runs is None else median([run["time_to_target_seconds"] for run in trained_runs])
    return {
        "seed_images_per_second": seed_speed, "our_images_per_second": our_speed,
        "throughput_ratio_seed_over_ours": ratio(seed_speed, our_speed),
        "our_time_to_target_seconds": our_time,
        "seed_time_to_target_extrapolated_seconds": extrapolated,
        "seed_time_to_target_trained_seconds": trained,
        "time_ratio_seed_over_ours_extrapolated": ratio(extrapolated, our_time),
        "time_ratio_seed_over_ours": ratio(extrapolated if trained_runs is None else trained, our_time),
        "time_ratio_basis": ("seed extrapolated from throughput, 1 epoch" if trained_runs is None
                             else "seed trained on the GPU"),
        "our_budget_accuracy": median([run["test_accuracy"] for run in ours["budget_runs"]]),
        "seed_budget_accuracy": median([run["test_accuracy"] for run in seed["budget_runs"]]),
        "our_budget_train_seconds": median([run["train_seconds"] for run in ours["budget_runs"]]),
        "seed_budget_train_seconds": median([run["train_seconds"] for run in seed["budget_runs"]]),
    }


def notes(settings: Settings, device: torch.device, data: dict, quick: bool) -> list[str]:
    lines = [
        EXTRAPOLATION_NOTE if device.type == "cpu" else
        "On the GPU the seed pipeline is trained until its test accuracy reaches 99 % (at most "
        f"{settings.seed_max_epochs} epochs), measured as ours; the one-epoch extrapolation "
        "(60,000 images / throughput, favourable to the seed) is reported beside it.",
        "Seed pipeline: DataLoader(batch_size=64, shuffle=True, num_workers=0); the PIL Resize((32,32)) + "
        "ToTensor() transform runs in the training process and its cost is inside every timed step.",
        f"Ours: src.train.train with src.task2.MNIST_RECIPE and MODEL from scratch on {data['train_images']:,} "
        f"MNIST training images (no validation split: nothing is tuned here), its "
        f"one-cycle schedule over {settings.our_epochs} epoch(s) (the run stops there); test accuracy every "
        f"{settings.evaluate_every_steps} steps; its wall seconds exclude evaluation. Throughput is read from "
        "each run's last epoch.",
        f"Accuracy after {settings.budget_seconds:g} s: the seed trains until its training time crosses the budget "
        "(the crossing step counts in full); ours runs its recipe with the one-cycle schedule sized, from the "
        "measured throughput, to end within the budget (never more than the recipe's own epochs).",
        "All times are training only: evaluation is excluded for both pipelines.",
    ]
    if device.type == "cpu":
        lines.append(f"On a CPU the seed's accuracy after the budget is measured on a fixed stratified subset of "
                     f"{data['seed_evaluation_images']:,} test images (its network costs ~2.2 GMAC per image); "
                     f"ours on {data['test_images']:,}.")
    if quick:
        lines.append("--quick: tiny settings that prove the code runs; its numbers mean nothing.")
    return lines


def parse_arguments(argv=None) -> tuple[Settings, bool]:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny settings, 1 repeat; writes results/quick/bench.json")
    parser.add_argument("--repeats", type=int, help=f"runs per median (default {FULL.repeats})")
    parser.add_argument("--budget-seconds", type=float, help=f"training budget for accuracy (default {FULL.budget_seconds:g})")
    parser.add_argument("--seed-timed-steps", type=int, help=f"timed seed steps (default {FULL.seed_timed_steps})")
    parser.add_argument("--our-epochs", type=int, help=f"epochs of our convergence runs (default {FULL.our_epochs})")
    arguments = parser.parse_args(argv)
    settings = QUICK if arguments.quick else FULL
    changes = {name: value for name, value in (("repeats", arguments.repeats), ("budget_seconds", arguments.budget_seconds),
                                                ("seed_timed_steps", arguments.seed_timed_steps),
                                                ("our_epochs", arguments.our_epochs)) if value is not None}
    if changes.get("repeats", 1) < 1:
        parser.error("--repeats must be at least 1")
    return replace(settings, **changes), arguments.quick


def main(argv=None) -> int:
    settings, quick = parse_arguments(argv)
    device = default_device()
    machine = machine_description(device)
    command = "python -m bench --quick" if quick else "make bench"
    log(f"on {machine['summary']} ({device.type}); settings {asdict(settings)}")
    results = {"benchmark": "our training (src.train + src.task2.MNIST_RECIPE) vs the seed solution's pipeline",
               "budget": "quick" if quick else "full", "command": command, "machine": machine,
               "settings": asdict(settings), **run_benchmark(settings, device)}
    results["notes"] = notes(settings, device, results["data"], quick)
    rows = build_rows(results)
    results["rows"] = rows
    results["headline"] = headline_rows(rows, command, machine["summary"])
    path = save_results("bench", results["budget"], results)
    print(format_table(rows))
    print()
    print("\n".join(f"- {line}" for line in results["notes"]))
    print(f"\nwritten: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
