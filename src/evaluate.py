"""Evaluate a saved network on any set in a layout this project knows: the "test set arrives later" command.

Given a zip or folder in trainPart1's layout (`SampleNNN/imgNNN-MMM.png`) or mnistTask3's (`<digit>/image_NNNNNN.jpg`),
or `mnist-test`, it reports accuracy (also case-merged for the 62-class network), per-class accuracy, the confusion
matrix and calibration. Classes absent from the set are named, not treated as errors.
"""
from __future__ import annotations

from pathlib import Path, PurePosixPath

import torch

from . import datasets
from .analysis import accuracy, classification_report
from .augment import AugmentConfig
from .checkpoints import CheckpointError, load_model
from .classes import CLASS_CHARACTERS, DIGIT_CHARACTERS
from .decoding import writer_consistent_predictions
from .files import DataError, SourceListing, list_source
from .mnist import load_mnist
from .preprocess import PREPROCESSING_VERSION, describe_geometry_reference, geometry_inputs, geometry_reference
from .runs import project_relative
from .train import predict_averaged_over_views, predict_logits


def detect_layout(source: Path | SourceListing) -> str:
    """'trainpart1' or 'mnisttask' from the folder names; anything else is an error. Give the source's listing
    where you have it (`files.list_source`), so an archive is listed once and handed on."""
    listing = source if isinstance(source, SourceListing) else list_source(Path(source))
    source = listing.source
    folders = {PurePosixPath(n).parent.name for n in listing.names}
    if any(datasets.SAMPLE_FOLDER.match(f) for f in folders):
        return "trainpart1"
    if folders and all(f.isdigit() and len(f) == 1 for f in folders):
        return "mnisttask"
    raise DataError(f"{source}: unrecognised layout; expected SampleNNN/imgNNN-MMM.png folders (trainPart1) "
                    f"or 0..9/image_NNNNNN.jpg folders (mnistTask3), found folders {sorted(folders)[:10]}")


DECODINGS = ("image", "writer")  # per-image argmax (the classifier), or writer-consistent (src/decoding.py)


def evaluate_checkpoint(checkpoint: str | Path, data: str | Path, skip_bad: bool = False, decode: str = "image",
                        name: str = "evaluation set") -> dict:
    if decode not in DECODINGS:
        raise ValueError(f"decode must be one of {DECODINGS}, not {decode!r}")
    model, metadata = load_model(Path(checkpoint))
    num_classes, recipe = model.config.num_classes, metadata.get("recipe", {})
    if metadata.get("preprocessing_version", PREPROCESSING_VERSION) != PREPROCESSING_VERSION:
        raise CheckpointError(f"{checkpoint}: trained with preprocessing version {metadata['preprocessing_version']}, "
                              f"this code applies version {PREPROCESSING_VERSION}; results would not be comparable")
    classes = metadata.get("classes") or (CLASS_CHARACTERS if num_classes == 62 else DIGIT_CHARACTERS)
    note, geometry, writers, reference = "", None, None, "none (no geometry input)"
    if str(data) == "mnist-test":
        images, labels, source = load_mnist("test")
    elif detect_layout(listing := list_source(Path(data))) == "trainpart1":
        characters = datasets.read_trainpart1(Path(data), preprocessing=metadata.get("preprocessing", "mnist"),
                                              skip_bad=skip_bad, require_all_classes=False, name=name,
                                              listing=listing)
        images, labels, source, writers = characters.images, characters.labels, characters.source, characters.writers
        mode, minimum = metadata.get("geometry", "absolute"), recipe.get("writer_minimum_images", 10)
        # A writer the network was trained on is measured against its training drawings (stored in the checkpoint).
        known = {int(writer): reference for writer, reference in metadata.get("writer_references", {}).items()}
        cases = {int(writer): levels for writer, levels in metadata.get("writer_case_heights", {}).items()}
        geometry = geometry_inputs(characters.geometry, writers, mode,
                                   metadata.get("geometry_reference", geometry_reference(characters.geometry)), minimum,
                                   known, cases, metadata.get("case_height_offsets"))
        reference = describe_geometry_reference(writers, mode if model.config.geometry_features else "none", minimum,
                                                known_writers=known)
    else:
        noisy = datasets.read_mnisttask3(Path(data), skip_bad=skip_bad, listing=listing)
        images, labels, source = noisy.images, noisy.folder_labels, noisy.source
        note = "labels are the folder names of this set"
    if model.config.geometry_features and geometry is None:
        raise CheckpointError(f"{checkpoint}: this network needs the ink-box geometry of trainPart1-layout images; "
                              f"{data} does not provide it")
    geometry = geometry if model.config.geometry_features else None
    if labels.max() >= num_classes:
        keep = labels < num_classes
        note = f"{int((~keep).sum())} images of classes this {num_classes}-class network does not know were left out"
        images, labels, geometry, writers = (t if t is None else t[keep] for t in (images, labels, geometry, writers))
    if decode == "writer" and writers is None:
        raise DataError(f"{data}: writer-consistent decoding needs a set in trainPart1's layout "
                        f"(imgNNN-MMM.png, MMM = writer)")
    if metadata.get("test_time_views"):
        logits = predict_averaged_over_views(model, images, geometry, metadata["test_time_views"],
                                             AugmentConfig.from_dict(metadata["test_time_augment"]),
                                             recipe.get("test_time_seed", 0))
    else:
        logits = predict_logits(model, images, geometry)
    temperature = metadata.get("temperature", 1.0)  # fitted on Task 1's CV; changes calibration and decoding only
    logits = logits / temperature
    report = {**classification_report(logits, labels, classes[:num_classes]), "decoding": decode,
              "geometry_reference": reference, "temperature": temperature}
    if decode == "writer":
        decoded = writer_consistent_predictions(logits, writers, labels, classes)
        report["accuracy_writer_decoded"] = accuracy(decoded, labels)
        report["writers"] = len(torch.unique(writers))
    return {**report, "checkpoint": project_relative(checkpoint), "data": source.describe(), "note": note,
            "task": metadata.get("task", "")}


def format_report(report: dict) -> str:
    lines = [f"checkpoint: {report['checkpoint']} ({report['task']})", f"data: {report['data']}",
             f"images: {report['n']}", f"accuracy: {report['accuracy']:.4f}"]
    if "accuracy_case_merged" in report:
        lines.append(f"accuracy, case-ambiguous classes merged: {report['accuracy_case_merged']:.4f}")
    if "accuracy_writer_decoded" in report:
        lines.append(f"accuracy, writer-consistent decoding ({report['writers']} writers, each image's class distinct "
                     f"within its writer): {report['accuracy_writer_decoded']:.4f}")
    lines.append(f"expected calibration error: {report['expected_calibration_error']:.4f} "
                 f"(logits divided by temperature {report['temperature']:.3g})")
    lines.append(f"geometry input measured against: {report['geometry_reference']}")
    if report["absent_classes"]:
        lines.append(f"classes absent from this set: {report['absent_classes']}")
    if report["note"]:
        lines.append(f"note: {report['note']}")
    worst = sorted(((v, c) for c, v in report["per_class"].items() if v is not None))[:8]
    lines.append("lowest per-class accuracy: " + ", ".join(f"{c} {v:.2f}" for v, c in worst))
    return "\n".join(lines)
