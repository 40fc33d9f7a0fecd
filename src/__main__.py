"""Command line: `python -m src {data,train,evaluate}`; see README.md."""
from __future__ import annotations

import argparse
import importlib
import json
import sys

from .files import DataError


def command_data(arguments) -> dict:
    from .datasets import load_mnisttask3, load_testpart1, load_trainpart1
    from .mnist import ensure_mnist
    sources = {"trainPart1": load_trainpart1().source, "testPart1": load_testpart1().source, "MNIST": ensure_mnist(),
               "mnistTask3": load_mnisttask3().source}
    for source in sources.values():
        print(source.describe(), file=sys.stderr if arguments.json else sys.stdout)
    return {name: source.to_dict() for name, source in sources.items()}


def command_train(arguments) -> dict:
    """The same experiment the task's notebook runs; the budget decides how much of it."""
    from .runs import current_budget, project_relative, results_dir
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m src", description="Playing With MNIST: data, training, evaluation")
    commands = parser.add_subparsers(dest="command", required=True)
    data = commands.add_parser("data", help="fetch and prepare every dataset, print where each came from")
    train = commands.add_parser("train", help="run a task's experiment (what its notebook runs) and print its headline")
    train.add_argument("task", choices=["task1", "task2", "task3"])
    train.add_argument("--budget", choices=["quick", "full"], default=None, help="default: $PLAYMNIST_BUDGET or full")
    evaluate = commands.add_parser("evaluate", help="evaluate a checkpoint on a zip/folder or on mnist-test")
    evaluate.add_argument("--checkpoint", required=True)
    evaluate.add_argument("--data", required=True, help="zip or folder in trainPart1 or mnistTask3 layout, or mnist-test")
    evaluate.add_argument("--skip-bad", action="store_true", help="skip unreadable images (counted and reported)")
    evaluate.add_argument("--decode", choices=["image", "writer"], default="image",
                          help="image: each image on its own (default); writer: a writer's images get distinct classes "
                               "(trainPart1 layout; transductive, see src/decoding.py)")
    for command in (data, train, evaluate):
        command.add_argument("--json", action="store_true")
    arguments = parser.parse_args(argv)
    handler = {"data": command_data, "train": command_train, "evaluate": command_evaluate}[arguments.command]
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
