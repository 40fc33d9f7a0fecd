"""The benchmark: the seed network and data path are what the seed solution describes, its
training loop times what it should, and the medians, ratios and rows report the right numbers."""
import json
import shutil
import time

import pytest
import torch
import torch.nn as nn

import bench.__main__ as bench_main
import bench.seed_measurements
from bench.medians import median, ratio, seconds_for_images
from bench.our_measurements import schedule_for_budget
from bench.report import EXTRAPOLATION_NOTE, NOT_MEASURED_WITHOUT_GPU
from bench.seed_pipeline import BasicBlock, SeedResNet, seed_loader, to_uint8_pixels, train_seed
from bench.trainpart1_timing import time_trainpart1_preparation
from src.data import data_dir
from src.runs import results_dir


# ----------------------------------------------------------------------------- the seed network

def output_sizes(model: nn.Module, images: torch.Tensor) -> dict[str, tuple]:
    sizes, hooks = {}, []
    for name, module in model.named_modules():
        if name in ("stem", "stages.0", "stages.1", "stages.2", "stages.3"):
            hooks.append(module.register_forward_hook(
                lambda module, inputs, output, name=name: sizes.__setitem__(name, tuple(output.shape[1:]))))
    model.eval()
    with torch.no_grad():
        logits = model(images)
    for hook in hooks:
        hook.remove()
    return {"logits": tuple(logits.shape), **sizes}


def test_seed_network_has_four_single_block_stages_and_keeps_32x32_until_the_last():
    model = SeedResNet()
    assert len(model.stages) == 4 and all(isinstance(stage, BasicBlock) for stage in model.stages)
    assert [stage.conv2.out_channels for stage in model.stages] == [64, 128, 256, 512]
    assert model.stem[0].in_channels == 1 and model.stem[0].out_channels == 64 and model.stem[0].kernel_size == (3, 3)
    for stage in model.stages:  # two 3x3 convolutions with batch norm each
        assert stage.conv1.kernel_size == stage.conv2.kernel_size == (3, 3)
        assert isinstance(stage.bn1, nn.BatchNorm2d) and isinstance(stage.bn2, nn.BatchNorm2d)
    assert isinstance(model.stages[0].shortcut, nn.Identity)  # 64 -> 64, stride 1
    for stage in model.stages[1:]:
        assert stage.shortcut[0].kernel_size == (1, 1)        # projection where the shape changes
    assert output_sizes(model, torch.rand(3, 1, 32, 32)) == {
        "logits": (3, 10), "stem": (64, 32, 32), "stages.0": (64, 32, 32), "stages.1": (128, 32, 32),
        "stages.2": (256, 32, 32), "stages.3": (512, 16, 16)}


def test_seed_classifier_is_three_linear_layers_with_dropout():
    linears = [m for m in SeedResNet().classifier if isinstance(m, nn.Linear)]
    dropouts = [m for m in SeedResNet().classifier if isinstance(m, nn.Dropout)]
    assert [(m.in_features, m.out_features) for m in linears] == [(512, 256), (256, 128), (128, 10)]
    assert len(dropouts) == 2 and all(m.p == 0.5 for m in dropouts)


# ----------------------------------------------------------------------------- the seed data path

def test_seed_loader_yields_32x32_batches_of_64_in_unit_range_from_28x28_bytes():
    pixels = torch.randint(0, 256, (130, 28, 28), dtype=torch.uint8)
    pixels[0] = 255
    labels = torch.arange(130) % 10
    loader = seed_loader(pixels, labels, seed=0)
    assert loader.batch_size == 64 and loader.num_workers == 0
    images, batch_labels = next(iter(loader))
    assert images.shape == (64, 1, 32, 32) and images.dtype == torch.float32
    assert batch_labels.shape == (64,) and batch_labels.dtype == torch.int64
    assert 0.0 <= float(images.min()) and float(images.max()) <= 1.0
    all_images = torch.cat([batch for batch, _ in loader])
    assert len(all_images) == 130 and float(all_images.max()) == 1.0


def test_seed_loader_shuffles_with_its_seed():
    pixels = torch.zeros(128, 28, 28, dtype=torch.uint8)
    labels = torch.arange(128)
    first = next(iter(seed_loader(pixels, labels, seed=0)))[1]
    assert not torch.equal(first, torch.arange(64))
    assert torch.equal(first, next(iter(seed_loader(pixels, labels, seed=0)))[1])


def test_our_float_images_turn_back_into_the_exact_bytes():
    pixels = torch.randint(0, 256, (20, 28, 28), dtype=torch.uint8)
    assert torch.equal(to_uint8_pixels(pixels[:, None].float() / 255), pixels)


# ----------------------------------------------------------------------------- the seed training loop

def tiny_loader():
    return seed_loader(torch.randint(0, 256, (256, 28, 28), dtype=torch.uint8), torch.arange(256) % 10, seed=0)


def tiny_network():
    return nn.Sequential(nn.Flatten(), nn.Linear(32 * 32, 10))


def test_train_seed_counts_only_timed_steps():
    run = train_seed(tiny_network(), tiny_loader(), "cpu", warmup_steps=2, max_steps=5)  # crosses an epoch
    assert run.steps == 5 and run.images == 5 * 64 and run.warmup_steps == 2
    assert run.train_seconds > 0 and run.images_per_second == pytest.approx(run.images / run.train_seconds)


def test_train_seed_excludes_evaluation_time_and_stops_at_the_target():
    def slow_perfect_evaluation(model):
        time.sleep(0.3)
        return 1.0
    run = train_seed(tiny_network(), tiny_loader(), "cpu", max_steps=10, evaluate=slow_perfect_evaluation,
                     evaluate_every_steps=2, stop_at_accuracy=0.99)
    assert run.steps == 2 and run.train_seconds < 0.3
    assert run.step_evaluations == [{"step": 2, "epoch": 0.5, "wall_seconds": run.train_seconds, "test_accuracy": 1.0}]


def test_train_seed_stops_once_its_time_budget_is_spent():
    run = train_seed(tiny_network(), tiny_loader(), "cpu", max_seconds=0.05)
    assert run.steps >= 1 and run.train_seconds >= 0.05


# ----------------------------------------------------------------------------- medians, ratios, schedules

def test_median_reads_an_unreached_target_as_slower_than_any_time():
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([1.0, 2.0, 3.0, 4.0]) == 2.5
    assert median([None, 10.0, 20.0]) == 20.0
    assert median([None, None, 5.0]) is None
    assert median([]) is None


def test_ratio_and_extrapolation():
    assert ratio(10.0, 4.0) == 2.5
    assert ratio(None, 4.0) is None and ratio(4.0, None) is None and ratio(4.0, 0.0) is None
    assert seconds_for_images(60_000, 20.0) == 3000.0


def test_summary_takes_ratios_of_medians_and_extrapolates_one_epoch():
    seed = {"throughput_runs": [{"images_per_second": v} for v in (10.0, 30.0, 20.0)],
            "budget_runs": [{"test_accuracy": a, "train_seconds": 61.0} for a in (0.2, 0.4, 0.3)],
            "trained_to_target_runs": None}
    ours = {"convergence_runs": [{"images_per_second": v, "time_to_target_seconds": t}
                                 for v, t in ((1000.0, 40.0), (2000.0, None), (4000.0, 30.0))],
            "budget_runs": [{"test_accuracy": a, "train_seconds": 59.0} for a in (0.99, 0.98, 0.97)]}
    summary = bench_main.summarise(seed, ours)
    assert summary["seed_images_per_second"] == 20.0 and summary["our_images_per_second"] == 2000.0
    assert summary["throughput_ratio_seed_over_ours"] == 0.01
    assert summary["our_time_to_target_seconds"] == 40.0            # None counts as slowest
    assert summary["seed_time_to_target_extrapolated_seconds"] == 3000.0
    assert summary["time_ratio_seed_over_ours"] == 75.0 and summary["seed_time_to_target_trained_seconds"] is None
    assert summary["our_budget_accuracy"] == 0.98 and summary["seed_budget_accuracy"] == 0.3


def test_our_budget_schedule_fills_the_budget_without_exceeding_the_recipe():
    assert schedule_for_budget(120_000, 60_000, 8) == (2, 60_000)
    assert schedule_for_budget(114_000, 60_000, 8) == (2, 57_000)
    assert schedule_for_budget(30_000, 60_000, 8) == (1, 30_000)
    assert schedule_for_budget(10_000_000, 60_000, 8) == (8, 60_000)
    assert schedule_for_budget(10, 60_000, 8) == (1, 128)


# ----------------------------------------------------------------------------- trainPart1 timing

def install_as_data_trainpart1(zip_path):
    """Put a zip where `load_trainpart1()` looks without an environment variable."""
    data_dir().mkdir(parents=True, exist_ok=True)
    shutil.copy(zip_path, data_dir() / "trainPart1.zip")


def test_trainpart1_first_load_misses_the_cache_and_leaves_the_project_cache_alone(small_trainpart1_zip):
    install_as_data_trainpart1(small_trainpart1_zip)
    before = data_dir()
    timing = time_trainpart1_preparation()
    assert timing["images"] == 124 and timing["route"] == "data/trainPart1.zip" and not timing["standin"]
    assert timing["cached_load_seconds"] < timing["first_load_seconds"]
    assert timing["first_load_within_limit"] and timing["cached_load_within_limit"]
    assert "from trainPart1.zip (data/trainPart1.zip;" in timing["source"] and "REAL data" in timing["source"]
    assert str(data_dir()) not in timing["source"]  # no machine path in what the README prints
    assert data_dir() == before and not (before / "cache").exists()


def test_trainpart1_quick_cut_keeps_every_class(small_trainpart1_zip):
    timing = time_trainpart1_preparation(small_trainpart1_zip, files_per_class=1)
    assert timing["images"] == 62 and "(1 per class) cut from" in timing["source"]


# ----------------------------------------------------------------------------- the whole run

def test_quick_run_writes_headline_rows_and_says_what_was_not_measured(tiny_mnist, small_trainpart1_zip,
                                                                        monkeypatch, capsys):
    """End to end on the tiny fake MNIST, with the seed's ResNet swapped for a tiny network so the
    test stays fast (the real network is checked above)."""
    if torch.cuda.is_available():
        pytest.skip("checks the CPU path's wording")
    install_as_data_trainpart1(small_trainpart1_zip)
    monkeypatch.setattr(bench.seed_measurements, "build_seed_model", lambda seed: tiny_network())
    assert bench_main.main(["--quick", "--budget-seconds", "0.2"]) == 0
    printed = capsys.readouterr().out
    results = json.loads((results_dir("quick") / "bench.json").read_text())
    assert results["budget"] == "quick" and results["settings"]["repeats"] == 1
    assert EXTRAPOLATION_NOTE in results["notes"] and EXTRAPOLATION_NOTE in printed
    assert results["machine"]["gpu"] == NOT_MEASURED_WITHOUT_GPU and NOT_MEASURED_WITHOUT_GPU in printed
    assert results["headline"] and all(set(row) == {"what", "value", "command", "machine"} for row in results["headline"])
    whats = " | ".join(row["what"] for row in results["headline"])
    for expected in ("time to 99 % MNIST test accuracy, ours", "seed pipeline (extrapolated from throughput, 1 epoch)",
                     "speed-up seed/ours", "trainPart1 first load / cached load", "training throughput, seed pipeline"):
        assert expected in whats
    summary = results["summary"]
    assert summary["seed_time_to_target_extrapolated_seconds"] == pytest.approx(60_000 / summary["seed_images_per_second"])
