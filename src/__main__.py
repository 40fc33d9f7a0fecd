"""Command line: `python -m src {data,train,evaluate,report}`; see README.md."""
from __future__ import annotations

import argparse
import importlib
import json
import sys

from .files import DataError


def command_data(arguments) -> dict:
    from . import data
    sources = {"trainPart1": data.load_trainpart1().source, "MNIST": data.ensure_mnist(),
               "mnistTask3": data.load_mnisttask3().source}
    for source in sources.values():
        print(source.describe(), file=sys.stderr if arguments.json else sys.stdout)
    return {name: source.to_dict() for name, source in sources.items()}


def command_train(arguments) -> dict:
    from .runs import current_budget
    task = importlib.import_module(f".{arguments.task}", __package__)
    return task.run_headline(current_budget(arguments.budget), seed=arguments.seed, progress=not arguments.json)


def command_evaluate(arguments) -> dict:
    from .evaluate import evaluate_checkpoint, format_report
    report = evaluate_checkpoint(arguments.checkpoint, arguments.data, skip_bad=arguments.skip_bad,
                                 decode=arguments.decode)
    if not arguments.json:
        print(format_report(report))
    return report


def command_report(arguments) -> dict:
    from .readme import update_notebook_runtimes, update_readme
    changed = update_readme()
    notebooks = update_notebook_runtimes()
    print("README tables " + ("updated" if changed else "already up to date") +
          (f"; run times rewritten in {', '.join(notebooks)}" if notebooks else ""))
    return {"changed": changed, "notebooks": notebooks}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m src", description="Playing With MNIST: data, training, evaluation")
    commands = parser.add_subparsers(dest="command", required=True)
    data = commands.add_parser("data", help="fetch and prepare every dataset, print where each came from")
    data.add_argument("--json", action="store_true")
    train = commands.add_parser("train", help="run a task's headline training and print its final metrics")
    train.add_argument("task", choices=["task1", "task2", "task3"])
    train.add_argument("--budget", choices=["quick", "full"], default=None, help="default: $PLAYMNIST_BUDGET or full")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--json", action="store_true")
    evaluate = commands.add_parser("evaluate", help="evaluate a checkpoint on a zip/folder or on mnist-test")
    evaluate.add_argument("--checkpoint", required=True)
    evaluate.add_argument("--data", required=True, help="zip or folder in trainPart1 or mnistTask3 layout, or mnist-test")
    evaluate.add_argument("--skip-bad", action="store_true", help="skip unreadable images (counted and reported)")
    evaluate.add_argument("--decode", choices=["image", "writer"], default="image",
                          help="image: each image on its own (default); writer: a writer's images get distinct classes "
                               "(trainPart1 layout; transductive, see src/decoding.py)")
    evaluate.add_argument("--json", action="store_true")
    commands.add_parser("report", help="rewrite README's tables and the notebooks' run times from results/ and checkpoints/")
    arguments = parser.parse_args(argv)
    handler = {"data": command_data, "train": command_train, "evaluate": command_evaluate,
               "report": command_report}[arguments.command]
    from .checkpoints import CheckpointError
    try:
        result = handler(arguments)
    except (DataError, CheckpointError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if getattr(arguments, "json", False):
        print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
