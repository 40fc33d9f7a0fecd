"""The benchmark (`bench/`): the seed network and data path are what the seed solution describes, its loop times only
what it should, the summary takes ratios of medians, and the command line explains itself. Time is a fake clock here,
never the wall: the loop's arithmetic is what is checked."""
import json
import shutil

import pytest
import torch
import torch.nn as nn

import bench.__main__ as bench
import bench.seed_pipeline as seed_pipeline
from src.data.labelled import LabelledImages
from src.settings import data_dir, results_dir


def unit_images(count: int) -> LabelledImages:  # as our loaders hold images (bytes / 255), ten classes
    pixels = torch.randint(0, 256, (count, 1, 28, 28), generator=torch.Generator().manual_seed(0))
    return LabelledImages(pixels.float() / 255, torch.arange(count) % 10)


@pytest.fixture
def clock(monkeypatch):
    """Stands in for perf_counter: one second passes per reading (a test may add more to `clock.now`)."""
    class Clock:
        now = 0.0

        def __call__(self) -> float:
            self.now += 1.0
            return self.now
    monkeypatch.setattr(seed_pipeline, "perf_counter", Clock())
    return seed_pipeline.perf_counter


def tiny_network() -> nn.Module:  # stands in for the seed's ResNet where only the loop is checked
    return nn.Sequential(nn.Flatten(), nn.Linear(32 * 32, 10))


def seed_loader():
    return seed_pipeline.seed_loader(unit_images(256), 0)


def test_seed_network_is_a_resnet_downsampling_only_in_its_last_stage_with_a_three_layer_head():
    model = seed_pipeline.build_seed_model(0).eval()
    blocks = [m for m in model if isinstance(m, seed_pipeline.BasicBlock)]
    assert [(b.conv1.in_channels, b.conv2.out_channels, b.conv1.stride) for b in blocks] == [
        (64, 64, (1, 1)), (64, 128, (1, 1)), (128, 256, (1, 1)), (256, 512, (2, 2))]
    assert isinstance(blocks[0].shortcut, nn.Identity)                   # a projection only where the shape changes
    assert all(b.shortcut[0].kernel_size == (1, 1) for b in blocks[1:])
    sizes = []
    for block in blocks:
        block.register_forward_hook(lambda module, inputs, output: sizes.append(tuple(output.shape[1:])))
    with torch.no_grad():
        assert model(torch.rand(3, 1, 32, 32)).shape == (3, 10)
    assert sizes == [(64, 32, 32), (128, 32, 32), (256, 32, 32), (512, 16, 16)]
    assert [(m.in_features, m.out_features) for m in model if isinstance(m, nn.Linear)] == [
        (512, 256), (256, 128), (128, 10)]
    assert [m.p for m in model if isinstance(m, nn.Dropout)] == [0.5, 0.5] and isinstance(model[-1], nn.Linear)
    same, other = seed_pipeline.build_seed_model(0), seed_pipeline.build_seed_model(1)
    assert torch.equal(model[0].weight, same[0].weight) and not torch.equal(model[0].weight, other[0].weight)


def test_seed_transform_gives_the_exact_bytes_resized_to_32x32_and_the_loader_reshuffles_by_seed():
    data = unit_images(130)
    digits = seed_pipeline.PILDigits(data)
    assert torch.equal(torch.from_numpy(digits.pixels), (data.images[:, 0] * 255).round().to(torch.uint8))
    image, label = digits[7]
    assert image.shape == (1, 32, 32) and image.dtype == torch.float32 and label == 7
    expected = nn.functional.interpolate(data.images[7:8], size=(32, 32), mode="bilinear", antialias=True)
    assert (image - expected[0]).abs().max() < 0.02                      # PIL's bilinear resize, no normalisation
    batches = list(seed_pipeline.seed_loader(data, seed=0))
    assert [len(labels) for _, labels in batches] == [64, 64, 2] and batches[0][0].shape == (64, 1, 32, 32)
    first = batches[0][1]
    assert torch.equal(first, next(iter(seed_pipeline.seed_loader(data, seed=0)))[1])
    assert not torch.equal(first, next(iter(seed_pipeline.seed_loader(data, seed=1)))[1])


def test_train_seed_times_only_the_steps_after_warm_up_and_counts_the_one_crossing_the_budget(clock):
    model, forward_calls = tiny_network(), []
    model.register_forward_hook(lambda *_: forward_calls.append(1))
    run = seed_pipeline.train_seed(model, seed_loader(), "cpu", warmup_steps=2, max_steps=5)
    assert len(forward_calls) == 7                                       # warm-up steps train too, untimed
    assert (run.steps, run.images, run.train_seconds, run.images_per_second) == (5, 5 * 64, 5.0, 64.0)
    run = seed_pipeline.train_seed(tiny_network(), seed_loader(), "cpu", max_seconds=2.5)
    assert run.steps == 3 and run.train_seconds == 3.0


def test_train_seed_leaves_evaluation_out_of_its_time_and_stops_once_the_target_held(clock):
    accuracies = iter([0.5, 0.995, 0.5, 0.995, 0.996, 0.2])

    def slow_evaluation(model):  # 100 s per evaluation, none of it in the training time
        clock.now += 100.0
        return next(accuracies)
    run = seed_pipeline.train_seed(tiny_network(), seed_loader(), "cpu", max_steps=20, evaluate=slow_evaluation,
                                   evaluate_every_steps=2, stop_at_accuracy=0.99, stop_after_evaluations=2)
    assert run.step_evaluations[:2] == [{"step": 2, "epoch": 0.5, "wall_seconds": 2.0, "test_accuracy": 0.5},
                                        {"step": 4, "epoch": 1.0, "wall_seconds": 4.0, "test_accuracy": 0.995}]
    assert run.steps == 10 and run.train_seconds == 10.0                 # 0.995 then 0.5 was not enough


def test_medians_read_an_unreached_target_as_slowest_and_the_budget_schedule_keeps_to_the_recipe():
    assert [bench.median(values) for values in ([3.0, 1.0, 2.0], [None, 10.0, 20.0], [None, None, 5.0])] == [
        2.0, 20.0, None]
    assert bench.ratio(10.0, 4.0) == 2.5 and bench.ratio(None, 4.0) is None and bench.ratio(4.0, 0.0) is None
    assert [bench.schedule_for_budget(images, 60_000, 8) for images in (114_000, 10_000_000, 10)] == [
        (2, 57_000), (8, 60_000), (1, 128)]


def measured() -> dict:
    """What three CPU repeats might have measured (the seed's budget test on 2,000 images)."""
    seed = {"throughput_runs": [{"images_per_second": v} for v in (10.0, 30.0, 20.0)],
            "budget_runs": [{"test_accuracy": a, "train_seconds": 61.0, "test_images": 2000} for a in (0.2, 0.4, 0.3)],
            "trained_to_target_runs": None}
    ours = {"convergence_runs": [{"images_per_second": v, "time_to_target_seconds": t}
                                 for v, t in ((1000.0, 40.0), (2000.0, None), (4000.0, 30.0))],
            "budget_runs": [{"test_accuracy": a, "train_seconds": 59.0, "test_images": 10_000} for a in (0.99, 0.98, 0.97)],
            "high_target_runs": [{"time_to_target_seconds": t} for t in (90.0, 80.0, None)],
            "compiled_runs": None, "compile_seconds": None}
    timing = {"images": 2480, "cut_files_per_class": None, "first_load_seconds": 18.7, "cached_load_seconds": 0.077,
              "first_load_limit_seconds": 60.0, "cached_load_limit_seconds": 1.0, "first_load_within_limit": True,
              "cached_load_within_limit": True, "kind": "real", "route": "PLAYMNIST_TRAINPART1", "source": "trainPart1"}
    machine = {"cpu": "a CPU", "gpu": bench.NOT_MEASURED_WITHOUT_GPU, "device": "cpu", "summary": "a CPU"}
    return {"settings": bench.asdict(bench.FULL), "summary": bench.summarise(seed, ours), "seed_pipeline": seed,
            "ours": ours, "trainpart1": timing, "machine": machine}


def test_summary_takes_ratios_of_medians_and_the_rows_carry_them():
    summary = measured()["summary"]
    assert summary["seed_images_per_second"] == 20.0 and summary["our_images_per_second"] == 2000.0
    assert summary["throughput_ratio_seed_over_ours"] == 0.01 and summary["our_time_to_target_seconds"] == 40.0
    assert summary["seed_time_to_target_extrapolated_seconds"] == 3000.0 and summary["time_ratio_seed_over_ours"] == 75.0
    assert summary["our_budget_accuracy"] == 0.98 and summary["our_time_to_high_target_seconds"] == 90.0
    values = [row["value"] for row in bench.build_rows(measured())]
    assert {"20.0 images/s (runs: 10.0 images/s, 30.0 images/s, 20.0 images/s)", "0.01x (ours 100x the seed's)", "75x",
            "40.0 s (runs: 40.0 s, not reached, 30.0 s)",
            "18.7 s / 0.08 s (limits 60 s / 1 s: met; real data via PLAYMNIST_TRAINPART1)"} <= set(values)


@pytest.fixture
def data_trainpart1(small_trainpart1_zip):
    """A generated trainPart1 where it is looked for without an environment variable: data/trainPart1.zip."""
    data_dir().mkdir(parents=True, exist_ok=True)
    return shutil.copy(small_trainpart1_zip, data_dir() / "trainPart1.zip")


def test_trainpart1_first_load_misses_an_empty_cache_and_leaves_the_project_cache_alone(data_trainpart1, monkeypatch):
    project_data, caches_seen, load = data_dir(), [], bench.load_trainpart1

    def watched_load(*arguments, **keywords):
        caches_seen.append((data_dir(), sorted(path.name for path in (data_dir() / "cache").glob("*"))))
        return load(*arguments, **keywords)
    monkeypatch.setattr(bench, "load_trainpart1", watched_load)
    timing = bench.time_trainpart1_preparation()
    (first_folder, first_cache), (second_folder, second_cache) = caches_seen
    assert first_folder == second_folder != project_data and first_cache == [] and second_cache != []
    assert timing["images"] == 124 and timing["route"] == "data/trainPart1.zip" and timing["kind"] == "user data"
    assert "USER DATA" in timing["source"] and "from trainPart1.zip (data/trainPart1.zip;" in timing["source"]
    assert str(project_data) not in timing["source"]                     # no machine path in what the README prints
    assert data_dir() == project_data and not (project_data / "cache").exists()
    cut = bench.time_trainpart1_preparation(bench.locate_trainpart1(data_trainpart1), files_per_class=1)
    assert cut["images"] == 62 and "62 images (1 per class) cut from" in cut["source"]


def test_quick_run_writes_the_file_the_readme_reads(tiny_mnist, data_trainpart1, monkeypatch, capsys):
    """End to end on the tiny fake MNIST, the seed's ResNet swapped for a tiny network so the test stays fast."""
    if torch.cuda.is_available():
        pytest.skip("checks the CPU path's wording")
    monkeypatch.setattr(seed_pipeline, "build_seed_model", lambda seed: tiny_network())
    assert bench.main(["--quick", "--budget-seconds", "0.2"]) == 0
    printed = capsys.readouterr().out
    results = json.loads((results_dir("quick") / "bench.json").read_text())
    assert results["budget"] == "quick" and results["command"] == "python -m bench --quick"
    assert results["settings"] == {**bench.asdict(bench.QUICK), "budget_seconds": 0.2}
    assert results["data"]["train_images"] == 200 and results["data"]["seed_evaluation_images"] == 100
    assert [len(results["seed_pipeline"][key]) for key in ("throughput_runs", "budget_runs")] == [1, 1]
    assert bench.EXTRAPOLATION_NOTE in results["notes"] and bench.EXTRAPOLATION_NOTE in printed
    assert results["headline"] == [{"what": row["what"], "value": row["value"], "command": "python -m bench --quick",
                                    "machine": results["machine"]["summary"]} for row in results["rows"] if row["headline"]]
    assert results["trainpart1"]["images"] == 124 and results["trainpart1"]["cut_files_per_class"] == 2


def test_help_renders_every_option(capsys):
    with pytest.raises(SystemExit) as exit:
        bench.main(["--help"])
    printed = capsys.readouterr().out
    assert exit.value.code == 0 and "99.6 % runs" in printed and "--budget-seconds" in printed and "{" not in printed


def test_without_trainpart1_one_line_says_how_to_give_it_before_anything_runs(monkeypatch, capsys):
    monkeypatch.setattr(bench, "run_benchmark", lambda *_: pytest.fail("ran before trainPart1 was found"))
    assert bench.main(["--quick"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1 and "full budget" not in err
    assert "PLAYMNIST_TRAINPART1" in err and "data/trainPart1.zip" in err


def test_zero_repeats_is_refused_before_anything_runs(capsys):
    with pytest.raises(SystemExit):
        bench.main(["--repeats", "0"])
    assert "--repeats must be at least 1" in capsys.readouterr().err
