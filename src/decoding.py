"""Writer-consistent decoding: read a writer's drawings together, not one at a time.

In trainPart1 (and the later test set, drawn the same way: Chars74K EnglishHnd, de Campos, Babu & Varma 2009)
every writer drew each of the 62 characters exactly once, so one writer's images have distinct classes. Deciding
them jointly, as the assignment to distinct classes with the largest total log-probability (Hungarian algorithm,
Kuhn 1955, via `scipy.optimize.linear_sum_assignment`), turns "both s-shapes look like S" into "the smaller one is
s". It is transductive (an answer depends on the writer's other images in the set) and valid only where its
assumption holds, so it checks what it can and refuses otherwise, naming the writer; per-image stays the default.
"""
from __future__ import annotations

import torch
from scipy.optimize import linear_sum_assignment

from .data.files import DataError


def check_writer_groups(writers: torch.Tensor, num_classes: int, labels: torch.Tensor | None = None,
                        class_names: str | None = None) -> int:
    """Raise `DataError` naming the first writer that breaks the assumption; return the writer count. It holds when
    every image has a writer id (>= 0), no writer has more images than classes and, if labelled, no two of one class."""
    writers = writers.cpu()
    if len(writers) and int(writers.min()) < 0:
        raise DataError("writer-consistent decoding needs a writer id for every image (imgNNN-MMM.png); "
                        f"{int((writers < 0).sum())} image(s) have none")
    for writer in torch.unique(writers).tolist():
        members = writers == writer
        if int(members.sum()) > num_classes:
            raise DataError(f"writer {writer:03d} has {int(members.sum())} images but there are only {num_classes} "
                            f"classes: each writer must draw each character at most once for writer decoding")
        if labels is not None:
            counts = torch.bincount(labels.cpu()[members], minlength=num_classes)
            if int(counts.max()) > 1:
                repeated = int(counts.argmax())
                name = f" ({class_names[repeated]!r})" if class_names else ""
                raise DataError(f"writer {writer:03d} has {int(counts.max())} images of class {repeated}{name}: "
                                f"each writer must draw each character at most once for writer decoding")
    return len(torch.unique(writers))


def writer_consistent_predictions(log_probabilities: torch.Tensor, writers: torch.Tensor,
                                  labels: torch.Tensor | None = None, class_names: str | None = None) -> torch.Tensor:
    """For each writer, the assignment of its images to distinct classes that maximises the summed log-probability
    (rectangular when a writer has fewer images than classes). Logits give the same answer: each image is assigned
    exactly once, so its own normalising constant cannot change it."""
    log_probabilities = log_probabilities.detach().float().cpu()
    writers = writers.cpu()
    check_writer_groups(writers, log_probabilities.shape[1], labels, class_names)
    predictions = torch.empty(len(writers), dtype=torch.long)
    for writer in torch.unique(writers).tolist():
        members = torch.nonzero(writers == writer).flatten()
        rows, classes = linear_sum_assignment(log_probabilities[members].numpy(), maximize=True)
        predictions[members[torch.as_tensor(rows)]] = torch.as_tensor(classes, dtype=torch.long)
    return predictions
