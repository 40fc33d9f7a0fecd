"""`make bench` (`python -m bench [--quick]`): how much faster our MNIST training is than the seed's.

The seed's pipeline (a ResNet on 32x32 images that a DataLoader makes one PIL image at a time) and ours (Task 2's recipe
on tensors) run in one process on one device, interleaved repeat by repeat, so a machine that slows part-way slows both.
Each figure is a median of repeats, of training time only. `results/bench.json` (results/quick/ with --quick: numbers
that mean nothing) holds every run; its `rows` are README's Performance table, its `notes` their assumptions.
"""
import argparse
import itertools
import math
import os
import shutil
import statistics
import sys
import tempfile
import zipfile
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path, PurePosixPath
from time import perf_counter, strftime
from unittest import mock

import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from src.analysis import first_reaching
from src.datasets import find_trainpart1, load_trainpart1
from src.files import list_source_files
from src.mnist import load_mnist
from src.model import build_model
from src.runs import default_device, device_name, project_relative, save_results
from src.sources import data_dir
from src.splits import stratified_subset
from src.task2 import MNIST_RECIPE, MODEL
from src.train import LabelledImages, train

# ----------------------------------------------------------------------------- settings

@dataclass(frozen=True)
class Settings:
    repeats: int = 3                     # each median is over this many independent runs
    budget_seconds: float = 60.0         # training time for "accuracy after a fixed budget"
    target_accuracy: float = 0.99        # the test accuracy "time to 99 %" waits for
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
                 test_images=500, trainpart1_files_per_class=2)  # proves the code runs; its numbers mean nothing
OVERRIDABLE = {"repeats": "runs per median", "budget_seconds": "training budget for accuracy, s",
               "seed_timed_steps": "timed seed steps", "our_epochs": "epochs of our convergence runs"}  # options

SEED_BATCH_SIZE = 64                         # the seed's DataLoader(batch_size=64, shuffle=True, num_workers=0)
SEED_LEARNING_RATE = 1e-3                    # its Adam, on cross-entropy
SEED_DROPOUT = 0.5                           # between its three linear layers
SEED_STAGE_CHANNELS = (64, 128, 256, 512)    # one BasicBlock per stage
SEED_STAGE_STRIDES = (1, 1, 1, 2)            # no downsampling until the last stage: its cost is at 32x32
MNIST_EPOCH_IMAGES = 60_000                  # one epoch: the seed's time to 99 % when extrapolated
FIRST_LOAD_LIMIT_SECONDS = 60.0              # trainPart1: decode 2,480 PNGs, preprocess, write the cache
CACHED_LOAD_LIMIT_SECONDS = 1.0              # trainPart1: read that cache back
EXTRAPOLATION_NOTE = (                       # on a CPU the seed is far too slow to train to 99 %
    "The seed pipeline is not trained to 99 % on a CPU (far too slow). Its time to 99 % is extrapolated "
    "as 60,000 images (one epoch of MNIST) / its measured throughput, i.e. it is assumed to reach 99 % "
    "test accuracy after one full epoch, an assumption favourable to the seed pipeline.")
NOT_MEASURED_WITHOUT_GPU = "not measured (no GPU)"  # on a CPU: the GPU's name, and the seed trained to 99 %

# ----------------------------------------------------------------------------- the seed pipeline
# Rebuilt from the seed's description, not copied: a ResNet (He et al., 2016) with global average
# pooling and three linear layers, fed by PIL Resize((32, 32)) + ToTensor() in the training process.

class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm plus a shortcut: the identity, or a strided 1x1 projection (option B)."""
    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Identity() if stride == 1 and in_channels == out_channels else nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm2d(out_channels))
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))) + self.shortcut(x))

def build_seed_model(seed: int) -> nn.Sequential:
    """[N, 1, 32, 32] in [0, 1] -> 10 logits, its weights depending only on `seed`."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        stages = map(BasicBlock, (64,) + SEED_STAGE_CHANNELS[:-1], SEED_STAGE_CHANNELS, SEED_STAGE_STRIDES)
        return nn.Sequential(nn.Conv2d(1, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
                             *stages, nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                             nn.Linear(512, 256), nn.ReLU(inplace=True), nn.Dropout(SEED_DROPOUT),
                             nn.Linear(256, 128), nn.ReLU(inplace=True), nn.Dropout(SEED_DROPOUT), nn.Linear(128, 10))

class PILDigits(Dataset):
    """The exact MNIST bytes, one PIL image at a time through the seed's transform: that work is in every step."""
    transform = transforms.Compose([transforms.Resize((32, 32)), transforms.ToTensor()])
    def __init__(self, data: LabelledImages):
        self.pixels = (data.images[:, 0].cpu() * 255).round().clamp(0, 255).to(torch.uint8).numpy()
        self.labels = data.labels.tolist()
    def __len__(self) -> int:
        return len(self.labels)
    def __getitem__(self, index: int):
        return self.transform(Image.fromarray(self.pixels[index])), self.labels[index]

def seed_loader(data: LabelledImages, seed: int) -> DataLoader:
    return DataLoader(PILDigits(data), batch_size=SEED_BATCH_SIZE, shuffle=True, num_workers=0,
                      generator=torch.Generator().manual_seed(seed))

@dataclass
class SeedRun:
    steps: int = 0
    images: int = 0
    train_seconds: float = 0.0           # timed steps only: no warm-up, no evaluation
    step_evaluations: list[dict] = field(default_factory=list)
    @property
    def images_per_second(self) -> float:
        return self.images / self.train_seconds if self.train_seconds > 0 else float("nan")

def train_seed(model: nn.Module, loader: DataLoader, device, *, warmup_steps=0, max_steps=math.inf,
               max_seconds=math.inf, evaluate=None, evaluate_every_steps=0, stop_at_accuracy=math.inf) -> SeedRun:
    """Adam. A timed step runs from asking the loader for a batch (PIL decode, resize, collate) to the end of the
    optimizer step; warm-up steps and `evaluate(model)` are untimed, and the step crossing `max_seconds` counts."""
    device = torch.device(device)
    model = model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=SEED_LEARNING_RATE)
    batches = itertools.chain.from_iterable(itertools.repeat(loader))  # epoch after epoch, each reshuffled
    run = SeedRun()
    def step() -> int:
        images, labels = (tensor.to(device, non_blocking=True) for tensor in next(batches))
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(images), labels).backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return len(labels)
    for _ in range(warmup_steps):
        step()
    while run.steps < max_steps and run.train_seconds < max_seconds:
        started = perf_counter()
        run.images += step()
        run.train_seconds += perf_counter() - started
        run.steps += 1
        if evaluate is not None and evaluate_every_steps and run.steps % evaluate_every_steps == 0:
            accuracy = evaluate(model)
            model.train()
            run.step_evaluations.append({"step": run.steps, "epoch": run.images / len(loader.dataset),
                                         "wall_seconds": run.train_seconds, "test_accuracy": accuracy})
            if accuracy >= stop_at_accuracy:
                break
    return run

@torch.no_grad()
def evaluate_seed(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Accuracy on images already through the seed's transform and on the model's device."""
    model.eval()
    predictions = torch.cat([model(batch).argmax(1).cpu() for batch in images.split(500)])
    return int((predictions == labels).sum()) / len(labels)

# Each measurement starts from fresh seeded weights and a fresh DataLoader: repeats are independent runs.

def seed_throughput(data, seed: int, s: Settings, device) -> dict:
    run = train_seed(build_seed_model(seed), seed_loader(data, seed), device, warmup_steps=s.seed_warmup_steps,
                     max_steps=s.seed_timed_steps)
    return {"seed": seed, "warmup_steps": s.seed_warmup_steps, "timed_steps": run.steps, "images": run.images,
            "seconds": run.train_seconds, "images_per_second": run.images_per_second}

def seed_accuracy_after_budget(data, test: tuple, seed: int, s: Settings, device) -> dict:
    model = build_seed_model(seed)
    run = train_seed(model, seed_loader(data, seed), device, max_seconds=s.budget_seconds)
    return {"seed": seed, "budget_seconds": s.budget_seconds, "train_seconds": run.train_seconds, "steps": run.steps,
            "images": run.images, "test_accuracy": evaluate_seed(model, *test), "test_images": len(test[1])}

def seed_time_to_accuracy(data, test: tuple, seed: int, s: Settings, device) -> dict:
    """GPU only: trained until the test accuracy first reaches the target, or for `seed_max_epochs`."""
    loader = seed_loader(data, seed)
    run = train_seed(build_seed_model(seed), loader, device, max_steps=s.seed_max_epochs * len(loader),
                     evaluate=lambda model: evaluate_seed(model, *test), evaluate_every_steps=s.evaluate_every_steps,
                     stop_at_accuracy=s.target_accuracy)
    reached = first_reaching(run.step_evaluations, "test_accuracy", s.target_accuracy)
    return {"seed": seed, "max_epochs": s.seed_max_epochs, "steps": run.steps, "train_seconds": run.train_seconds,
            "images_per_second": run.images_per_second, "time_to_target_seconds": reached and reached["wall_seconds"],
            "reached": reached, "step_evaluations": run.step_evaluations}

# ----------------------------------------------------------------------------- our measurement
# The project's own loop with Task 2's recipe and network, from scratch: what the notebooks run.

def train_ours(data, test, seed: int, device, epochs: int, evaluate_every_steps: int):
    config = replace(MNIST_RECIPE, epochs=epochs, seed=seed, evaluate_every_steps=evaluate_every_steps)
    return train(build_model(MODEL, seed=seed), data, config, evaluation_sets={"test": test}, device=device,
                 step_evaluation_sets={"test": test} if evaluate_every_steps else None, progress=False)

def our_convergence_run(data, test, seed: int, s: Settings, device) -> dict:
    """Throughput over the last epoch (start-up left out, as the seed's warm-up is), and the time to the target."""
    result = train_ours(data, test, seed, device, s.our_epochs, s.evaluate_every_steps)
    reached, last = first_reaching(result.step_evaluations, "test_accuracy", s.target_accuracy), result.history[-1]
    return {"seed": seed, "epochs": s.our_epochs, "train_images": len(data), "images_per_second": last["images_per_second"],
            "time_to_target_seconds": reached and reached["wall_seconds"], "reached": reached,
            "train_seconds": last["wall_seconds"], "final_test_accuracy": last["test_accuracy"],
            "step_evaluations": result.step_evaluations}

def schedule_for_budget(affordable_images: float, dataset_images: int, max_epochs: int) -> tuple[int, int]:
    """(epochs, images per epoch): whole epochs where they fit, a smaller stratified set for the fraction."""
    epochs = min(max_epochs, max(1, math.ceil(affordable_images / dataset_images)))
    return epochs, min(dataset_images, max(MNIST_RECIPE.batch_size, round(affordable_images / epochs)))

def our_accuracy_after_budget(data, test, seed: int, s: Settings, device, images_per_second: float) -> dict:
    """Our one-cycle schedule sized from the measured throughput to end within the budget (meant to end, not be cut)."""
    epochs, images = schedule_for_budget(s.budget_seconds * images_per_second, len(data), MNIST_RECIPE.epochs)
    subset = stratified_subset(data, images, seed=seed)
    last = train_ours(subset, test, seed, device, epochs, evaluate_every_steps=0).history[-1]
    return {"seed": seed, "budget_seconds": s.budget_seconds, "train_seconds": last["wall_seconds"], "epochs": epochs,
            "train_images": len(subset), "steps": last["steps"], "test_accuracy": last["test_accuracy"],
            "test_images": len(test)}

# ----------------------------------------------------------------------------- Task 1's data preparation
# The first load runs with PLAYMNIST_DATA_DIR on an empty folder, so it is a true cache miss and the
# project's own data/cache is untouched; no downloads: this times preparation, not a network.

def write_cut(source: Path, files_per_class: int, target: Path) -> Path:
    """A trainPart1-layout zip of the first `files_per_class` images of each class folder (--quick)."""
    names, read = list_source_files(source)
    kept = Counter()
    with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as archive:
        for name in names:
            if kept[PurePosixPath(name).parent] < files_per_class:
                kept[PurePosixPath(name).parent] += 1
                archive.writestr(name, read(name))
    return target

def time_trainpart1_preparation(source: Path | None = None, files_per_class: int | None = None) -> dict:
    location, route, kind = find_trainpart1(source, allow_download=False)
    with tempfile.TemporaryDirectory(prefix="bench-trainpart1-") as temporary:
        empty_data, path, loads = Path(temporary) / "data", source, []
        empty_data.mkdir()
        if files_per_class is not None:
            path = write_cut(location, files_per_class, Path(temporary) / "trainPart1-cut.zip")
        elif source is None and location.parent.resolve() == data_dir().resolve():
            shutil.copy2(location, empty_data / location.name)  # found where load_trainpart1() looks
        with mock.patch.dict(os.environ, {"PLAYMNIST_DATA_DIR": str(empty_data)}):
            for _ in range(2):  # into the empty cache, then from it
                started = perf_counter()
                loads.append((load_trainpart1(path, allow_download=False), perf_counter() - started))
    (characters, first), (_, cached) = loads
    described = characters.source.describe() if files_per_class is None else (  # never a machine's folder
        f"{len(characters)} images ({files_per_class} per class) cut from {project_relative(location)} "
        f"({'STAND-IN' if kind != 'real' else 'real data'}, found via: {route})")
    return {"source": described, "route": route, "standin": kind != "real", "images": len(characters),
            "cut_files_per_class": files_per_class, "first_load_seconds": first, "cached_load_seconds": cached,
            "first_load_limit_seconds": FIRST_LOAD_LIMIT_SECONDS, "cached_load_limit_seconds": CACHED_LOAD_LIMIT_SECONDS,
            "first_load_within_limit": first < FIRST_LOAD_LIMIT_SECONDS,
            "cached_load_within_limit": cached < CACHED_LOAD_LIMIT_SECONDS}

# ----------------------------------------------------------------------------- the run

def log(message: str) -> None:
    print(f"[bench {strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

def run_benchmark(s: Settings, device: torch.device) -> dict:
    """Every measurement, interleaved repeat by repeat; repeat r seeds weights and order with r."""
    *train_set, mnist_source = load_mnist("train")
    data = stratified_subset(LabelledImages(*train_set), s.train_images)
    test = stratified_subset(LabelledImages(*load_mnist("test")[:2]), s.test_images)
    on_gpu = device.type == "cuda"
    digits = PILDigits(test if on_gpu else stratified_subset(test, s.seed_evaluation_images))
    # through the seed's transform once, up front: evaluation is never timed, and the images are the same each time
    seed_test = (torch.stack([digits[i][0] for i in range(len(digits))]).to(device), torch.tensor(digits.labels))
    seed = {"throughput_runs": [], "budget_runs": [], "trained_to_target_runs": [] if on_gpu else None,
            "extrapolation_assumption": EXTRAPOLATION_NOTE}
    ours = {"convergence_runs": [], "budget_runs": []}
    for r in range(s.repeats):
        step = f"repeat {r + 1}/{s.repeats}"
        log(f"{step}: seed pipeline throughput ({s.seed_warmup_steps} warm-up + {s.seed_timed_steps} timed steps)")
        seed["throughput_runs"].append(seed_throughput(data, r, s, device))
        log(f"{step}: ours, {s.our_epochs} epoch(s) with test accuracy every {s.evaluate_every_steps} steps")
        ours["convergence_runs"].append(our_convergence_run(data, test, r, s, device))
        log(f"{step}: seed pipeline, then ours, for a {s.budget_seconds:g} s budget")
        seed["budget_runs"].append(seed_accuracy_after_budget(data, seed_test, r, s, device))
        ours["budget_runs"].append(our_accuracy_after_budget(
            data, test, r, s, device, images_per_second=ours["convergence_runs"][-1]["images_per_second"]))
        if on_gpu:
            log(f"{step}: seed pipeline trained to {100 * s.target_accuracy:g} % (at most {s.seed_max_epochs} epochs)")
            seed["trained_to_target_runs"].append(seed_time_to_accuracy(data, seed_test, r, s, device))
    log("trainPart1: first load into an empty cache, then a cached load")
    return {"data": {"mnist": mnist_source.describe(), "train_images": len(data), "test_images": len(test),
                     "seed_evaluation_images": len(seed_test[1])}, "seed_pipeline": seed, "ours": ours,
            "trainpart1": time_trainpart1_preparation(files_per_class=s.trainpart1_files_per_class),
            "summary": summarise(seed, ours)}

# ----------------------------------------------------------------------------- report

def median(values: list) -> float | None:
    """A run that never reached the target (None) counts as slower than any that did; None if the median is such."""
    value = statistics.median(math.inf if v is None else v for v in values)
    return value if math.isfinite(value) else None

def ratio(numerator: float | None, denominator: float | None) -> float | None:
    return None if numerator is None or not denominator else numerator / denominator

def summarise(seed: dict, ours: dict) -> dict:
    """Medians over the repeats, and the seed/ours ratios of those medians."""
    def of(runs: list[dict] | None, key: str) -> float | None:
        return None if runs is None else median([run[key] for run in runs])
    on_gpu = seed["trained_to_target_runs"] is not None
    seed_speed = of(seed["throughput_runs"], "images_per_second")
    our_speed = of(ours["convergence_runs"], "images_per_second")
    our_time = of(ours["convergence_runs"], "time_to_target_seconds")
    extrapolated = ratio(MNIST_EPOCH_IMAGES, seed_speed)
    trained = of(seed["trained_to_target_runs"], "time_to_target_seconds")
    return {"seed_images_per_second": seed_speed, "our_images_per_second": our_speed,
            "throughput_ratio_seed_over_ours": ratio(seed_speed, our_speed),
            "our_time_to_target_seconds": our_time, "seed_time_to_target_extrapolated_seconds": extrapolated,
            "seed_time_to_target_trained_seconds": trained,
            "time_ratio_seed_over_ours_extrapolated": ratio(extrapolated, our_time),
            "time_ratio_seed_over_ours": ratio(trained if on_gpu else extrapolated, our_time),
            "time_ratio_basis": "seed trained on the GPU" if on_gpu else "seed extrapolated from throughput, 1 epoch",
            "our_budget_accuracy": of(ours["budget_runs"], "test_accuracy"),
            "seed_budget_accuracy": of(seed["budget_runs"], "test_accuracy"),
            "our_budget_train_seconds": of(ours["budget_runs"], "train_seconds"),
            "seed_budget_train_seconds": of(seed["budget_runs"], "train_seconds")}

def seconds(value: float | None) -> str:
    if value is None:
        return "not reached"
    unit, size = ("h", 3600) if value >= 7200 else ("min", 60)
    return f"{value:,.0f} s ({value / size:.1f} {unit})" if value >= 120 else f"{value:.1f} s"

def throughput(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f} images/s" if value >= 100 else f"{value:.1f} images/s"

def times(value: float | None, reciprocal: bool = False) -> str:
    """Three significant figures (0.00556x, not a rounded-away 0.01x); `reciprocal` adds ours/seed below 1."""
    if value is None:
        return "–"
    return f"{value:.3g}x" + (f" (ours {1 / value:.0f}x the seed's)" if reciprocal and 0 < value < 1 else "")

def build_rows(results: dict) -> list[dict]:
    """Every row in reading order, each saying how it was measured; `headline` rows go to README's table."""
    summary, seed, ours, machine = results["summary"], results["seed_pipeline"], results["ours"], results["machine"]
    settings, timing = results["settings"], results["trainpart1"]
    median_of, steps = f"median of {settings['repeats']}", settings["seed_timed_steps"]
    to_99 = "time to 99 % MNIST test accuracy"
    def with_runs(runs: list[dict], key: str, unit) -> str:  # the median, then each run's value
        each = [run[key] for run in runs]
        return unit(median(each)) + (f" (runs: {', '.join(map(unit, each))})" if len(each) > 1 else "")
    def after_budget(who: str, runs: dict, name: str) -> tuple[str, str, bool]:
        what = (f"MNIST test accuracy after {settings['budget_seconds']:g} s of training, {name} ({median_of}, "
                f"{runs['budget_runs'][0]['test_images']:,} test images)")
        accuracy, trained = summary[f"{who}_budget_accuracy"], summary[f"{who}_budget_train_seconds"]
        return what, f"{100 * accuracy:.2f} % (trained {seconds(trained)})", True
    cut = f", {timing['cut_files_per_class']} per class cut for --quick" if timing["cut_files_per_class"] else ""
    met = "met" if timing["first_load_within_limit"] and timing["cached_load_within_limit"] else "NOT met"
    data = ("STAND-IN data (PLAYMNIST_TRAINPART1 unset, no data/trainPart1.zip)" if timing["standin"]
            else f"real data via {timing['route']}")
    rows = [
        ("machine: CPU", machine["cpu"], False), ("machine: GPU", machine["gpu"], False),
        ("training runs on", machine["device"], False),
        (f"training throughput, ours ({median_of}, last epoch of each run)",
         with_runs(ours["convergence_runs"], "images_per_second", throughput), True),
        (f"training throughput, seed pipeline ({median_of}, {steps} step{'s' * (steps != 1)} of 64 incl. DataLoader "
         "+ PIL transform)", with_runs(seed["throughput_runs"], "images_per_second", throughput), True),
        ("throughput ratio seed/ours", times(summary["throughput_ratio_seed_over_ours"], reciprocal=True), False),
        (f"{to_99}, ours ({median_of}, training time only)",
         with_runs(ours["convergence_runs"], "time_to_target_seconds", seconds), True),
        (f"{to_99}, seed pipeline (extrapolated from throughput, 1 epoch)",
         seconds(summary["seed_time_to_target_extrapolated_seconds"]), True),
        (f"{to_99}, seed pipeline (trained on the GPU, {median_of})", NOT_MEASURED_WITHOUT_GPU
         if seed["trained_to_target_runs"] is None else seconds(summary["seed_time_to_target_trained_seconds"]), True),
        (f"speed-up seed/ours in time to 99 % ({summary['time_ratio_basis']})",
         times(summary["time_ratio_seed_over_ours"]), True),
        after_budget("our", ours, "ours"), after_budget("seed", seed, "seed pipeline"),
        (f"trainPart1 first load / cached load ({timing['images']:,} images{cut})",
         f"{timing['first_load_seconds']:.1f} s / {timing['cached_load_seconds']:.2f} s (limits "
         f"{timing['first_load_limit_seconds']:g} s / {timing['cached_load_limit_seconds']:g} s: {met}; {data})", True),
        ("trainPart1 source", timing["source"], False)]
    return [{"what": what, "value": value, "headline": headline} for what, value, headline in rows]

def notes(settings: Settings, device: torch.device, data: dict, quick: bool) -> list[str]:
    """The assumptions behind the rows, printed under README's Performance table."""
    on_cpu = device.type == "cpu"
    lines = [
        EXTRAPOLATION_NOTE if on_cpu else "On the GPU the seed pipeline is trained until its test accuracy reaches "
        f"99 % (at most {settings.seed_max_epochs} epochs), measured as ours; the one-epoch extrapolation (60,000 "
        "images / throughput, favourable to the seed) is reported beside it.",
        "Seed pipeline: DataLoader(batch_size=64, shuffle=True, num_workers=0); the PIL Resize((32,32)) + ToTensor() "
        "transform runs in the training process and its cost is inside every timed step.",
        f"Ours: src.train.train with src.task2.MNIST_RECIPE and MODEL from scratch on {data['train_images']:,} MNIST "
        "training images (no validation split: nothing is tuned here), its one-cycle schedule over "
        f"{settings.our_epochs} epoch(s) (the run stops there); test accuracy every {settings.evaluate_every_steps} "
        "steps; its wall seconds exclude evaluation. Throughput is read from each run's last epoch.",
        f"Accuracy after {settings.budget_seconds:g} s: the seed trains until its training time crosses the budget "
        "(the crossing step counts in full); ours runs its recipe with the one-cycle schedule sized, from the measured "
        "throughput, to end within the budget (never more than the recipe's own epochs).",
        "All times are training only: evaluation is excluded for both pipelines.",
        on_cpu and f"On a CPU the seed's accuracy after the budget is measured on a fixed stratified subset of "
        f"{data['seed_evaluation_images']:,} test images (its network costs ~2.2 GMAC per image); ours on "
        f"{data['test_images']:,}.",
        quick and "--quick: tiny settings that prove the code runs; its numbers mean nothing."]
    return [line for line in lines if line]

# ----------------------------------------------------------------------------- main

def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny settings, 1 repeat; writes results/quick/bench.json")
    for name, meaning in OVERRIDABLE.items():
        default = getattr(FULL, name)
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(default), help=f"{meaning} (default {default:g})")
    arguments = parser.parse_args(argv)
    chosen = {name: getattr(arguments, name) for name in OVERRIDABLE if getattr(arguments, name) is not None}
    settings = replace(QUICK if arguments.quick else FULL, **chosen)
    if settings.repeats < 1:
        parser.error("--repeats must be at least 1")
    device, cpu, quick = default_device(), device_name("cpu"), arguments.quick
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else NOT_MEASURED_WITHOUT_GPU
    machine = {"device": device.type, "cpu": cpu, "gpu": gpu, "torch": torch.__version__,
               "summary": f"{gpu} (host: {cpu})" if device.type == "cuda" else cpu}
    command = "python -m bench --quick" if quick else "make bench"
    log(f"on {machine['summary']} ({device.type}); settings {asdict(settings)}")
    results = {"benchmark": "our training (src.train + src.task2.MNIST_RECIPE) vs the seed solution's pipeline",
               "budget": "quick" if quick else "full", "command": command, "machine": machine,
               "settings": asdict(settings), **run_benchmark(settings, device)}
    results["notes"] = notes(settings, device, results["data"], quick)
    results["rows"] = build_rows(results)
    results["headline"] = [{"what": row["what"], "value": row["value"], "command": command, "machine": machine["summary"]}
                           for row in results["rows"] if row["headline"]]
    path = save_results("bench", results["budget"], results)
    width = max(len(row["what"]) for row in results["rows"])
    print("\n".join([f"{'what'.ljust(width)} | value", f"{'-' * width}-|-{'-' * 40}"]
                    + [f"{row['what'].ljust(width)} | {row['value']}" for row in results["rows"]]))
    print("\n" + "\n".join(f"- {line}" for line in results["notes"]) + f"\n\nwritten: {path}")
    return 0

if __name__ == "__main__":
    sys.exit(main())
