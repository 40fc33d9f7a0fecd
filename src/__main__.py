"""Command line: `python -m src {data,train,evaluate,recognise}`; see README.md."""
from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

from .data.files import DataError

DEFAULT_CHECKPOINT = "checkpoints/task1.pt"


def command_data(arguments) -> dict:
    from .data.datasets import load_mnisttask3, load_testpart1, load_trainpart1
    from .data.mnist import ensure_mnist
    sources = {}
    for name, load in (("trainPart1", lambda: load_trainpart1().source), ("testPart1", lambda: load_testpart1().source),
                       ("MNIST", ensure_mnist), ("mnistTask3", lambda: load_mnisttask3().source)):
        print(f"{name}: looking ...", file=sys.stderr, flush=True)
        sources[name] = load()
        print(sources[name].describe(), file=sys.stderr if arguments.json else sys.stdout, flush=True)
    return {name: source.to_dict() for name, source in sources.items()}


def command_train(arguments) -> dict:
    """The same experiment the task's notebook runs; the budget decides how much of it."""
    from .settings import current_budget, project_relative, results_dir
    budget = current_budget(arguments.budget)
    task = importlib.import_module(f".{arguments.task}", __package__)
    results = task.run_experiment(budget, progress=not arguments.json)
    if not arguments.json:
        for row in results["headline"]:
            print(f"{row['what']}: {row['value']}")
    return {"task": arguments.task, "budget": budget,
            "results": project_relative(results_dir(budget) / f"{arguments.task}.json"),
            "seconds": results["total_seconds"], "headline": results["headline"], "runs": len(results.get("runs", ()))}


def command_evaluate(arguments) -> dict:
    from .evaluate import evaluate_checkpoint, format_report
    report = evaluate_checkpoint(arguments.checkpoint, arguments.data, skip_bad=arguments.skip_bad,
                                 decode=arguments.decode)
    if not arguments.json:
        print(format_report(report))
    return report


def command_recognise(arguments) -> dict:
    from .checkpoints import load_model
    from .recognise import recognise
    model, metadata = load_model(Path(arguments.checkpoint))
    readings = {}
    for image in arguments.images:
        path = Path(image)
        if not path.is_file():
            raise DataError(f"{image}: no such image file")
        reading = recognise(path.read_bytes(), model, metadata, name=image)
        readings[image] = {"top3": reading.top5[:3], "case_note": reading.case_note}
        if not arguments.json:
            print(f"{image}: " + ", ".join(f"'{character}' {p:.2f}" for character, p in reading.top5[:3]))
            if reading.case_note:
                print("  " + reading.case_note.replace("\n", "\n  "))
    return readings


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m src", description="Playing With MNIST: data, training, evaluation")
    commands = parser.add_subparsers(dest="command", required=True)
    data = commands.add_parser("data", help="fetch and prepare every dataset, print where each came from")
    train = commands.add_parser("train", help="run a task's experiment (what its notebook runs) and print its summary")
    train.add_argument("task", choices=["task1", "task2", "task3"])
    train.add_argument("--budget", choices=["quick", "full"], default=None, help="default: $PLAYMNIST_BUDGET or full")
    evaluate = commands.add_parser("evaluate", help="evaluate a checkpoint on a zip/folder or on mnist-test")
    evaluate.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT, help=f"default: {DEFAULT_CHECKPOINT}")
    evaluate.add_argument("--data", required=True, help="a zip or folder in trainPart1's or mnistTask3's layout; or "
                          "testPart1 / trainPart1 (found as the notebooks find them) or mnist-test")
    evaluate.add_argument("--skip-bad", action="store_true", help="skip unreadable images (counted and reported)")
    evaluate.add_argument("--decode", choices=["image", "writer"], default="image",
                          help="image: each image on its own (default); writer: a writer's images get distinct classes "
                               "(trainPart1 layout; transductive, see src/decoding.py)")
    recognise = commands.add_parser("recognise", help="read one handwritten character per image file (PNG or JPEG)")
    recognise.add_argument("images", nargs="+", help="image files, any size, dark on light or light on dark")
    recognise.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT, help=f"default: {DEFAULT_CHECKPOINT}")
    for command in (data, train, evaluate, recognise):
        command.add_argument("--json", action="store_true", help="print the result as JSON")
    arguments = parser.parse_args(argv)
    handler = {"data": command_data, "train": command_train, "evaluate": command_evaluate,
               "recognise": command_recognise}[arguments.command]
    from .checkpoints import CheckpointError
    try:
        result = handler(arguments)
    except (DataError, CheckpointError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if arguments.json:
        print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
