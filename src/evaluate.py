"""Evaluate a saved network on any set in a layout this project knows: the "test set arrives later" command.

Given a zip or folder in trainPart1's layout (`SampleNNN/imgNNN-MMM.png`) or mnistTask3's (`<digit>/image_NNNNNN.jpg`),
or `mnist-test`, it reports accuracy (also case-merged for the 62-class network), per-class accuracy, the confusion
matrix and calibration. Classes absent from the set are named, not treated as errors. A set is called REAL only when
it is the assignment's archive (by sha256, or image by image against the committed digests); anything else is the
user's data, named by its file and sha256.
"""
from __future__ import annotations

import time
from pathlib import Path, PurePosixPath

import torch

from . import task1
from .analysis import accuracy, classification_report
from .augment import AugmentConfig
from .checkpoints import CheckpointError, load_model
from .data import datasets
from .data.classes import CLASS_CHARACTERS, DIGIT_CHARACTERS
from .data.files import DataError, SourceListing, list_source, sha256_of_source
from .data.labelled import LabelledImages
from .data.mnist import load_mnist
from .data.preprocess import PREPROCESSING_VERSION, GeometryReferences, geometry_reference, network_inputs
from .data.rebuild import is_the_assignments
from .data.sources import REAL, USER
from .decoding import writer_consistent_predictions
from .settings import checkpoint_dir, device_name, load_results, project_relative, save_results, standin_allowed
from .train import predict

DECODINGS = ("image", "writer")  # per-image argmax (the classifier), or writer-consistent (src/decoding.py)
FOUND_BY_NAME = {name: lambda name=name: datasets.find_character_set(name)[0] for name in ("trainPart1", "testPart1")}


def detect_layout(listing: SourceListing) -> str:
    """'trainpart1' or 'mnisttask' from the folder names; anything else is an error that says what was found."""
    folders = {PurePosixPath(name).parent.name for name in listing.names}
    if any(datasets.SAMPLE_FOLDER.match(folder) for folder in folders):
        return "trainpart1"
    if folders and all(folder.isdigit() and len(folder) == 1 for folder in folders):
        return "mnisttask"
    found = "only files at the top level, no folders" if folders <= {""} else f"folders {sorted(folders)[:10]}"
    raise DataError(f"{listing.source}: unrecognised layout; expected SampleNNN/imgNNN-MMM.png folders (trainPart1) "
                    f"or 0..9/image_NNNNNN.jpg folders (mnistTask3), found {found}")


def reader_of(model, metadata: dict) -> dict:
    """How a checkpoint's network reads drawings, from its metadata: the settings `network_inputs` and `predict`
    take. Task 1's network stores them; a digit network has no geometry input."""
    recipe = metadata.get("recipe", {})
    return {"preprocessing": metadata.get("preprocessing", "mnist"),
            "geometry": metadata.get("geometry", "absolute") if model.config.geometry_features else "none",
            "minimum_images": recipe.get("writer_minimum_images", 10),
            "training_set": metadata.get("geometry_reference"),
            "writers": {int(writer): values for writer, values in metadata.get("writer_references", {}).items()},
            "views": metadata.get("test_time_views", 0),
            "augment": AugmentConfig.from_dict(metadata["test_time_augment"]) if metadata.get("test_time_views")
            else None, "seed": recipe.get("test_time_seed", 0), "temperature": metadata.get("temperature", 1.0)}


def read_characters(characters, reader: dict) -> LabelledImages:
    """Drawings as the network's inputs: one path for evaluation, recognition and (through task1) training."""
    references = GeometryReferences(reader["training_set"] or geometry_reference(characters.geometry),
                                    reader["writers"])
    return network_inputs(characters, reader["geometry"], references, reader["minimum_images"], known_writers=True)


def evaluate_checkpoint(checkpoint: str | Path, data: str | Path, skip_bad: bool = False, decode: str = "image",
                        name: str = "evaluation set") -> dict:
    if decode not in DECODINGS:
        raise ValueError(f"decode must be one of {DECODINGS}, not {decode!r}")
    model, metadata = load_model(Path(checkpoint))
    num_classes, reader = model.config.num_classes, reader_of(model, metadata)
    if metadata.get("preprocessing_version", PREPROCESSING_VERSION) != PREPROCESSING_VERSION:
        raise CheckpointError(f"{checkpoint}: trained with preprocessing version {metadata['preprocessing_version']}, "
                              f"this code applies version {PREPROCESSING_VERSION}; results would not be comparable")
    classes = metadata.get("classes") or (CLASS_CHARACTERS if num_classes == 62 else DIGIT_CHARACTERS)
    note, writers, layout = "", None, "mnist-test"
    if str(data) in FOUND_BY_NAME:  # a dataset named, found by the loaders' usual routes
        data = FOUND_BY_NAME[str(data)]()
    if str(data) == "mnist-test":
        images, labels, source = load_mnist("test")
        inputs = LabelledImages(images, labels)
    else:
        listing = list_source(Path(data))
        layout = detect_layout(listing)
        names = ("trainPart1", "testPart1") if layout == "trainpart1" else ("mnistTask3",)
        kind = REAL if any(is_the_assignments(known, Path(data), listing) for known in names) else USER
        if layout == "trainpart1":
            characters = datasets.read_trainpart1(Path(data), preprocessing=reader["preprocessing"], skip_bad=skip_bad,
                                                  require_all_classes=False, name=name, listing=listing, kind=kind)
            inputs, source, writers = read_characters(characters, reader), characters.source, characters.writers
        else:
            noisy = datasets.read_mnisttask3(Path(data), skip_bad=skip_bad, listing=listing, kind=kind)
            inputs, source = LabelledImages(noisy.images, noisy.folder_labels), noisy.source
            note = ("the labels are this set's folder names; in mnistTask3 a folder is almost never the image's digit "
                    "(task3.ipynb), so a network that reads the digits scores near 0 here, one that learnt the "
                    "folders near 10 %")
    if model.config.geometry_features and inputs.geometry is None:
        raise CheckpointError(f"{checkpoint}: this network needs the ink-box geometry of trainPart1-layout images; "
                              f"{data} does not provide it")
    if inputs.labels.max() >= num_classes:
        keep = inputs.labels < num_classes
        note = f"{int((~keep).sum())} images of classes this {num_classes}-class network does not know were left out"
        inputs, writers = inputs.subset(torch.nonzero(keep).flatten()), None if writers is None else writers[keep]
    if decode == "writer" and writers is None:
        raise DataError(f"{data}: writer-consistent decoding needs a set in trainPart1's layout "
                        f"(imgNNN-MMM.png, MMM = writer)")
    logits = predict(model, inputs, reader["views"], reader["augment"], reader["seed"]) / reader["temperature"]
    report = {**classification_report(logits, inputs.labels, classes[:num_classes]), "decoding": decode,
              "layout": layout, "temperature": reader["temperature"], "preprocessing": reader["preprocessing"]}
    if decode == "writer":
        report["accuracy_writer_decoded"] = accuracy(writer_consistent_predictions(logits, writers, inputs.labels,
                                                                                   classes), inputs.labels)
        report["writers"] = len(torch.unique(writers))
    return {**report, "checkpoint": project_relative(checkpoint), "checkpoint_sha256": sha256_of_source(
        Path(checkpoint))[:12], "data": source.describe(), "note": note, "task": metadata.get("task", "")}


def format_report(report: dict) -> str:
    against = " (against the folder names)" if report["layout"] == "mnisttask" else ""
    lines = [f"checkpoint: {report['checkpoint']} ({report['task']})", f"data: {report['data']}",
             f"images: {report['n']}", f"accuracy{against}: {report['accuracy']:.4f}"]
    if report["note"]:
        lines.append(f"  note: {report['note']}")
    if "accuracy_case_merged" in report:
        lines.append(f"accuracy, case-ambiguous classes merged: {report['accuracy_case_merged']:.4f}")
    if "accuracy_writer_decoded" in report:
        lines.append(f"accuracy, writer-consistent decoding ({report['writers']} writers, each image's class distinct "
                     f"within its writer): {report['accuracy_writer_decoded']:.4f}")
    lines.append(f"expected calibration error: {report['expected_calibration_error']:.4f} "
                 f"(logits divided by temperature {report['temperature']:.3g})")
    if report["absent_classes"]:
        lines.append(f"classes absent from this set: {report['absent_classes']}")
    worst = sorted(((v, c) for c, v in report["per_class"].items() if v is not None))[:8]
    lines.append("lowest per-class accuracy: " + ", ".join(f"{c} {v:.2f}" for v, c in worst))
    return "\n".join(lines)


def judge_testpart1(budget: str, checkpoint=None) -> dict:
    """testPart1, measured once with the network the CV chose (the code path of `python -m src evaluate`): per image,
    case-merged, per class, the confusion matrix, and the writer-decoded reading of the same logits (transductive, a
    property of the split). Saved as results/task1_test.json; a reading of a network not read before is added to
    testpart1_readings.json beside it, the log of every time testPart1 was read."""
    checkpoint = checkpoint or checkpoint_dir(budget) / "task1.pt"
    test_set = datasets.load_testpart1(allow_standin=standin_allowed(budget))
    report = evaluate_checkpoint(checkpoint, test_set.source.path, decode="writer", name="testPart1")
    report.update(data_sha256=test_set.source.sha256, device=device_name(), budget=budget)
    report["public_solutions"] = [{"repository": name, "url": url, "accuracy": accuracy}
                                  for name, url, accuracy in task1.PUBLIC_SOLUTIONS_ON_TESTPART1]
    report["headline"] = task1.test_summary_rows(report)
    save_results("task1_test", budget, report)
    readings = load_results("testpart1_readings", budget) or {"readings": []}
    if not any(row["checkpoint_sha256"] == report["checkpoint_sha256"] for row in readings["readings"]):
        readings["readings"].append({key: report[key] for key in (
            "checkpoint_sha256", "accuracy", "accuracy_case_merged")} | {"date": time.strftime("%Y-%m-%d"),
                                                                       "preprocessing": report["preprocessing"]})
        save_results("testpart1_readings", budget, readings)
    report["readings"] = readings["readings"]
    return report
