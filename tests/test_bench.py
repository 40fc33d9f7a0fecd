"""The benchmark (`bench/__main__.py`): the seed network and data path are what the seed solution
describes, its training loop times only what it should, and the summary, rows and notes report the
right numbers. Time is a fake clock here, never the wall: the loop's arithmetic is what is checked."""
import json
import os
import shutil

import pytest
import torch
import torch.nn as nn

import bench.__main__ as bench
import bench.seed_pipeline as seed_pipeline
from src.runs import results_dir
from src.sources import data_dir
from src.train import LabelledImages


def unit_images(count: int, seed: int = 0) -> LabelledImages:
    """Images as our loaders hold them (bytes / 255), ten classes."""
    pixels = torch.randint(0, 256, (count, 1, 28, 28), generator=torch.Generator().manual_seed(seed))
    return LabelledImages(pixels.float() / 255, torch.arange(count) % 10)


class FakeClock:
    """Stands in for perf_counter: one second passes per reading (a test may add more to `now`)."""
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    clock = FakeClock()
    monkeypatch.setattr(seed_pipeline, "perf_counter", clock)
    return clock


def tiny_network() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(32 * 32, 10))


# ----------------------------------------------------------------------------- the seed network

def test_seed_network_keeps_32x32_through_three_single_block_stages_and_halves_it_in_the_last():
    model = seed_pipeline.build_seed_model(0).eval()
    blocks = [m for m in model if isinstance(m, seed_pipeline.BasicBlock)]
    assert [(b.conv1.in_channels, b.conv2.out_channels, b.conv1.stride) for b in blocks] == [
        (64, 64, (1, 1)), (64, 128, (1, 1)), (128, 256, (1, 1)), (256, 512, (2, 2))]
    assert isinstance(blocks[0].shortcut, nn.Identity)                   # 64 -> 64 at stride 1
    assert all(b.shortcut[0].kernel_size == (1, 1) for b in blocks[1:])  # a projection where the shape changes
    sizes = []
    for block in blocks:
        block.register_forward_hook(lambda module, inputs, output: sizes.append(tuple(output.shape[1:])))
    with torch.no_grad():
        assert model(torch.rand(3, 1, 32, 32)).shape == (3, 10)
    assert sizes == [(64, 32, 32), (128, 32, 32), (256, 32, 32), (512, 16, 16)]


def test_seed_classifier_is_three_linear_layers_with_dropout_and_weights_follow_the_seed():
    model = seed_pipeline.build_seed_model(0)
    assert [(m.in_features, m.out_features) for m in model if isinstance(m, nn.Linear)] == [
        (512, 256), (256, 128), (128, 10)]
    assert [m.p for m in model if isinstance(m, nn.Dropout)] == [0.5, 0.5]
    assert isinstance(model[-1], nn.Linear)                              # no ReLU or dropout after the logits
    same, other = seed_pipeline.build_seed_model(0), seed_pipeline.build_seed_model(1)
    assert torch.equal(model[0].weight, same[0].weight) and not torch.equal(model[0].weight, other[0].weight)


# ----------------------------------------------------------------------------- the seed data path

def test_seed_transform_gives_the_exact_bytes_resized_to_32x32_in_unit_range():
    data = unit_images(130)
    digits = seed_pipeline.PILDigits(data)
    assert torch.equal(torch.from_numpy(digits.pixels), (data.images[:, 0] * 255).round().to(torch.uint8))
    image, label = digits[7]
    assert image.shape == (1, 32, 32) and image.dtype == torch.float32 and label == 7
    expected = torch.nn.functional.interpolate(data.images[7:8], size=(32, 32), mode="bilinear", antialias=True)
    assert (image - expected[0]).abs().max() < 0.02                      # PIL's bilinear resize, no normalisation
    batches = list(seed_pipeline.seed_loader(data, seed=0))
    assert [len(labels) for _, labels in batches] == [64, 64, 2]
    assert batches[0][0].shape == (64, 1, 32, 32) and batches[0][1].dtype == torch.int64


def test_seed_loader_reshuffles_with_its_seed():
    data = unit_images(128)
    first = next(iter(seed_pipeline.seed_loader(data, seed=0)))[1]
    assert torch.equal(first, next(iter(seed_pipeline.seed_loader(data, seed=0)))[1])
    assert not torch.equal(first, next(iter(seed_pipeline.seed_loader(data, seed=1)))[1])
    assert not torch.equal(first, torch.arange(64) % 10)


# ----------------------------------------------------------------------------- the seed training loop

def test_train_seed_times_only_the_steps_after_warm_up(clock):
    model, forward_calls = tiny_network(), []
    model.register_forward_hook(lambda *_: forward_calls.append(1))
    run = seed_pipeline.train_seed(model, seed_pipeline.seed_loader(unit_images(256), 0), "cpu", warmup_steps=2,
                                   max_steps=5)
    assert len(forward_calls) == 7                                       # 2 warm-up steps trained too; 7 crosses an epoch
    assert (run.steps, run.images, run.train_seconds, run.images_per_second) == (5, 5 * 64, 5.0, 64.0)


def test_train_seed_leaves_evaluation_out_of_its_time_and_stops_at_the_target(clock):
    accuracies = iter([0.5, 0.995, 1.0])

    def slow_evaluation(model):
        clock.now += 100.0
        return next(accuracies)
    run = seed_pipeline.train_seed(tiny_network(), seed_pipeline.seed_loader(unit_images(256), 0), "cpu",
                                   max_steps=10, evaluate=slow_evaluation, evaluate_every_steps=2,
                                   stop_at_accuracy=0.99)
    assert run.step_evaluations == [{"step": 2, "epoch": 0.5, "wall_seconds": 2.0, "test_accuracy": 0.5},
                                    {"step": 4, "epoch": 1.0, "wall_seconds": 4.0, "test_accuracy": 0.995}]
    assert run.steps == 4 and run.train_seconds == 4.0


def test_train_seed_can_wait_until_the_target_has_held_for_several_evaluations(clock):
    accuracies = iter([0.995, 0.5, 0.995, 0.996, 0.2])
    run = seed_pipeline.train_seed(tiny_network(), seed_pipeline.seed_loader(unit_images(256), 0), "cpu",
                                   max_steps=10, evaluate=lambda model: next(accuracies), evaluate_every_steps=1,
                                   stop_at_accuracy=0.99, stop_after_evaluations=2)
    assert run.steps == 4                                                # 0.995 then 0.5 is not enough


def test_train_seed_counts_the_step_that_crosses_the_budget_in_full(clock):
    run = seed_pipeline.train_seed(tiny_network(), seed_pipeline.seed_loader(unit_images(256), 0), "cpu",
                                   max_seconds=2.5)
    assert run.steps == 3 and run.train_seconds == 3.0


def test_seed_trained_to_the_target_stops_once_it_held_there_and_is_timed_from_when_it_got_there(clock, monkeypatch):
    monkeypatch.setattr(seed_pipeline, "build_seed_model", lambda seed: tiny_network())
    data, test = unit_images(256), (torch.rand(20, 1, 32, 32), torch.arange(20) % 10)
    settings = bench.replace(bench.FULL, evaluate_every_steps=3, seed_max_epochs=2, target_accuracy=0.0,
                             seed_confirm_evaluations=2)
    reached = seed_pipeline.seed_time_to_accuracy(data, test, 0, settings, "cpu")
    assert reached["steps"] == 6 and reached["reached"] == {"step": 3, "epoch": 0.75, "wall_seconds": 3.0}
    assert reached["time_to_target_seconds"] == 3.0 and reached["images_per_second"] == 64.0
    assert [row["step"] for row in reached["step_evaluations"]] == [3, 6]
    never = seed_pipeline.seed_time_to_accuracy(data, test, 0, bench.replace(settings, target_accuracy=1.01), "cpu")
    assert never["steps"] == 2 * 4 and never["time_to_target_seconds"] is None and never["reached"] is None
    assert [row["step"] for row in never["step_evaluations"]] == [3, 6]


def test_seed_accuracy_is_the_share_of_right_answers():
    images = torch.zeros(6, 1, 32, 32)
    images[:4, 0, 0, 0] = 1.0                                            # a network that answers 1 for these, else 0
    network = nn.Sequential(nn.Flatten(), nn.Linear(32 * 32, 2))
    with torch.no_grad():
        network[1].weight.zero_()
        network[1].bias.copy_(torch.tensor([0.5, 0.0]))
        network[1].weight[1, 0] = 1.0
    assert seed_pipeline.evaluate_seed(network, images, torch.tensor([1, 1, 1, 0, 0, 1])) == 4 / 6


# ----------------------------------------------------------------------------- medians, ratios, schedules

def test_median_reads_an_unreached_target_as_slower_than_any_time():
    assert bench.median([3.0, 1.0, 2.0]) == 2.0 and bench.median([1.0, 2.0, 3.0, 4.0]) == 2.5
    assert bench.median([None, 10.0, 20.0]) == 20.0
    assert bench.median([None, None, 5.0]) is None and bench.median([None, 5.0]) is None
    assert bench.ratio(10.0, 4.0) == 2.5
    assert bench.ratio(None, 4.0) is None and bench.ratio(4.0, None) is None and bench.ratio(4.0, 0.0) is None


def test_our_budget_schedule_fills_the_budget_without_exceeding_the_recipe():
    assert bench.schedule_for_budget(120_000, 60_000, 8) == (2, 60_000)
    assert bench.schedule_for_budget(114_000, 60_000, 8) == (2, 57_000)
    assert bench.schedule_for_budget(30_000, 60_000, 8) == (1, 30_000)
    assert bench.schedule_for_budget(10_000_000, 60_000, 8) == (8, 60_000)
    assert bench.schedule_for_budget(10, 60_000, 8) == (1, 128)


def measured(trained_to_target=None) -> dict:
    """What three CPU repeats might have measured (the seed's budget test on 2,000 images)."""
    seed = {"throughput_runs": [{"images_per_second": v} for v in (10.0, 30.0, 20.0)],
            "budget_runs": [{"test_accuracy": a, "train_seconds": 61.0, "test_images": 2000} for a in (0.2, 0.4, 0.3)],
            "trained_to_target_runs": trained_to_target}
    ours = {"convergence_runs": [{"images_per_second": v, "time_to_target_seconds": t}
                                 for v, t in ((1000.0, 40.0), (2000.0, None), (4000.0, 30.0))],
            "budget_runs": [{"test_accuracy": a, "train_seconds": 59.0, "test_images": 10_000} for a in (0.99, 0.98, 0.97)],
            "high_target_runs": [{"time_to_target_seconds": t} for t in (90.0, 80.0, None)],
            "compiled_runs": None, "compile_seconds": None}
    timing = {"images": 2480, "cut_files_per_class": None, "first_load_seconds": 18.7, "cached_load_seconds": 0.077,
              "first_load_limit_seconds": 60.0, "cached_load_limit_seconds": 1.0, "first_load_within_limit": True,
              "cached_load_within_limit": True, "standin": False, "route": "PLAYMNIST_TRAINPART1", "source": "trainPart1"}
    return {"settings": bench.asdict(bench.FULL), "summary": bench.summarise(seed, ours), "seed_pipeline": seed,
            "ours": ours, "trainpart1": timing, "machine": {"cpu": "a CPU", "gpu": bench.NOT_MEASURED_WITHOUT_GPU,
                                                            "device": "cpu", "summary": "a CPU"}}


def test_summary_takes_ratios_of_medians_and_extrapolates_one_epoch():
    summary = measured()["summary"]
    assert summary["seed_images_per_second"] == 20.0 and summary["our_images_per_second"] == 2000.0
    assert summary["throughput_ratio_seed_over_ours"] == 0.01
    assert summary["our_time_to_target_seconds"] == 40.0                # None counts as slowest
    assert summary["seed_time_to_target_extrapolated_seconds"] == 3000.0
    assert summary["time_ratio_seed_over_ours"] == 75.0 and summary["seed_time_to_target_trained_seconds"] is None
    assert summary["our_budget_accuracy"] == 0.98 and summary["seed_budget_accuracy"] == 0.3
    assert summary["our_time_to_high_target_seconds"] == 90.0
    assert summary["time_ratio_seed_published_p100_over_ours"] == pytest.approx(79.2 / 40.0)


def test_on_a_gpu_the_speed_up_uses_the_seed_trained_to_the_target():
    summary = measured([{"time_to_target_seconds": t} for t in (100.0, None, 80.0)])["summary"]
    assert summary["seed_time_to_target_trained_seconds"] == 100.0 and summary["time_ratio_seed_over_ours"] == 2.5
    assert summary["time_ratio_seed_over_ours_extrapolated"] == 75.0 and summary["time_ratio_basis"] == "seed trained on the GPU"


def row(rows: list[dict], *words: str) -> dict:
    """The one row whose description holds all `words`: rows are found by what they measure, not by their prose."""
    found = [r for r in rows if all(word in r["what"] for word in words)]
    assert len(found) == 1, (words, [r["what"] for r in rows])
    return found[0]


def test_rows_carry_the_measured_numbers_and_how_many_runs_each_is_the_median_of():
    rows = bench.build_rows(measured())
    expected = {  # (words of the description, value, headline)
        ("throughput, seed", "median of 3"): ("20.0 images/s (runs: 10.0 images/s, 30.0 images/s, 20.0 images/s)", True),
        ("throughput ratio seed/ours",): ("0.01x (ours 100x the seed's)", False),
        ("time to 99 %", "ours (median of 3"): ("40.0 s (runs: 40.0 s, not reached, 30.0 s)", True),
        ("time to 99 %", "seed pipeline (extrapolated"): ("3,000 s (50.0 min)", True),
        ("time to 99 %", "seed pipeline (trained on the GPU"): (bench.NOT_MEASURED_WITHOUT_GPU, True),
        ("speed-up seed/ours", "extrapolated"): ("75x", True),
        ("time to 99.6 %", "ours", "8 epochs"): ("90.0 s (runs: 90.0 s, 80.0 s, not reached)", True),
        ("time to 99 %", "torch.compile"): (bench.NOT_MEASURED_WITHOUT_GPU, True),
        ("cross-hardware", "P100 (79.2 s)"): ("1.98x", True),
        ("after 60 s of training", "seed", "2,000 test images"): ("30.00 % (trained 61.0 s)", True),
        ("trainPart1 first load", "2,480 images"): (
            "18.7 s / 0.08 s (limits 60 s / 1 s: met; real data via PLAYMNIST_TRAINPART1)", True),
    }
    for words, value in expected.items():
        found = row(rows, *words)
        assert (found["value"], found["headline"]) == value, words


def test_trainpart1_row_says_when_a_limit_is_missed_or_the_data_is_a_stand_in():
    results = measured()
    results["trainpart1"].update(cut_files_per_class=2, images=124, standin=True, cached_load_within_limit=False)
    found = row(bench.build_rows(results), "trainPart1 first load")
    assert "124 images" in found["what"] and "2 per class cut" in found["what"]
    assert "NOT met" in found["value"] and "STAND-IN" in found["value"]


def test_notes_say_how_the_seed_time_was_obtained_on_each_device():
    data = {"train_images": 60_000, "test_images": 10_000, "seed_evaluation_images": 2000}
    on_cpu = bench.notes(bench.FULL, torch.device("cpu"), data, quick=False)
    on_gpu = bench.notes(bench.FULL, torch.device("cuda"), data, quick=True)
    assert bench.EXTRAPOLATION_NOTE in on_cpu and bench.EXTRAPOLATION_NOTE not in on_gpu
    assert any("2,000 test images" in note for note in on_cpu) and not any("2,000 test images" in n for n in on_gpu)
    assert any("5 epochs" in note for note in on_gpu)  # the GPU's seed runs: trained, up to seed_max_epochs
    assert any("--quick" in note for note in on_gpu) and not any("--quick" in note for note in on_cpu)


# ----------------------------------------------------------------------------- trainPart1 timing

def install_as_data_trainpart1(zip_path):
    """Put a zip where `load_trainpart1()` looks without an environment variable."""
    data_dir().mkdir(parents=True, exist_ok=True)
    shutil.copy(zip_path, data_dir() / "trainPart1.zip")


def test_trainpart1_first_load_misses_an_empty_cache_and_leaves_the_project_cache_alone(small_trainpart1_zip,
                                                                                      monkeypatch):
    install_as_data_trainpart1(small_trainpart1_zip)
    project_data, caches_seen, load = data_dir(), [], bench.load_trainpart1

    def watched_load(*arguments, **keywords):
        caches_seen.append((data_dir(), sorted(path.name for path in (data_dir() / "cache").glob("*"))))
        return load(*arguments, **keywords)
    monkeypatch.setattr(bench, "load_trainpart1", watched_load)
    timing = bench.time_trainpart1_preparation()
    (first_folder, first_cache), (second_folder, second_cache) = caches_seen
    assert first_folder == second_folder != project_data and first_cache == [] and second_cache != []
    assert timing["images"] == 124 and timing["route"] == "data/trainPart1.zip" and not timing["standin"]
    assert "from trainPart1.zip (data/trainPart1.zip;" in timing["source"] and "REAL data" in timing["source"]
    assert str(project_data) not in timing["source"]                     # no machine path in what the README prints
    assert data_dir() == project_data and not (project_data / "cache").exists()
    assert os.environ["PLAYMNIST_DATA_DIR"] == str(project_data)


def test_trainpart1_quick_cut_keeps_every_class(small_trainpart1_zip):
    timing = bench.time_trainpart1_preparation(small_trainpart1_zip, files_per_class=1)
    assert timing["images"] == 62 and timing["cut_files_per_class"] == 1
    assert "62 images (1 per class) cut from" in timing["source"]


# ----------------------------------------------------------------------------- the whole run

def test_quick_run_writes_the_file_the_readme_reads(tiny_mnist, small_trainpart1_zip, monkeypatch, capsys):
    """End to end on the tiny fake MNIST, with the seed's ResNet swapped for a tiny network so the
    test stays fast (the real network is checked above)."""
    if torch.cuda.is_available():
        pytest.skip("checks the CPU path's wording")
    install_as_data_trainpart1(small_trainpart1_zip)
    monkeypatch.setattr(seed_pipeline, "build_seed_model", lambda seed: tiny_network())
    assert bench.main(["--quick", "--budget-seconds", "0.2"]) == 0
    printed = capsys.readouterr().out
    results = json.loads((results_dir("quick") / "bench.json").read_text())
    assert set(results) == {"benchmark", "budget", "command", "machine", "settings", "data", "seed_pipeline", "ours",
                            "trainpart1", "summary", "notes", "rows", "headline"}
    assert results["budget"] == "quick" and results["command"] == "python -m bench --quick"
    assert results["settings"] == {**bench.asdict(bench.QUICK), "budget_seconds": 0.2}
    assert results["data"]["train_images"] == 200 and results["data"]["seed_evaluation_images"] == 100
    assert [len(results["seed_pipeline"][key]) for key in ("throughput_runs", "budget_runs")] == [1, 1]
    assert results["seed_pipeline"]["trained_to_target_runs"] is None
    assert results["ours"]["budget_runs"][0]["test_images"] == 100
    assert bench.EXTRAPOLATION_NOTE in results["notes"] and bench.EXTRAPOLATION_NOTE in printed
    assert results["machine"]["gpu"] == bench.NOT_MEASURED_WITHOUT_GPU and bench.NOT_MEASURED_WITHOUT_GPU in printed
    assert results["headline"] == [{"what": row["what"], "value": row["value"], "command": "python -m bench --quick",
                                    "machine": results["machine"]["summary"]} for row in results["rows"] if row["headline"]]
    assert results["trainpart1"]["images"] == 124 and results["trainpart1"]["cut_files_per_class"] == 2
    summary = results["summary"]
    assert summary["seed_time_to_target_extrapolated_seconds"] == pytest.approx(60_000 / summary["seed_images_per_second"])


def test_zero_repeats_is_refused_before_anything_runs(capsys):
    with pytest.raises(SystemExit):
        bench.main(["--repeats", "0"])
    assert "--repeats must be at least 1" in capsys.readouterr().err
