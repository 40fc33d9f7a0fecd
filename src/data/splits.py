"""How a dataset is divided: validation held out by class, subsets, writer-grouped and image-stratified folds.

Every split is seeded and stratified, so the same call gives the same indices on every machine and
small subsets keep the classes in their original proportions.
"""
from __future__ import annotations

import torch


def stratified_split(labels: torch.Tensor, validation_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Train/validation indices with each class split in the same proportion."""
    generator = torch.Generator().manual_seed(seed)
    train, validation = [], []
    for label in torch.unique(labels):
        members = torch.nonzero(labels == label).flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        count = round(len(members) * validation_fraction)
        validation.append(members[:count])
        train.append(members[count:])
    return torch.sort(torch.cat(train)).values, torch.sort(torch.cat(validation)).values


def stratified_sample(labels: torch.Tensor, count: int | None, seed: int = 0) -> torch.Tensor:
    """Indices of `count` of `labels` with the classes in their original proportions (all of them if None)."""
    if count is None or count >= len(labels):
        return torch.arange(len(labels))
    keep, _ = stratified_split(labels, 1 - count / len(labels), seed)
    return keep


def stratified_subset(data, count: int | None, seed: int = 0):
    """`count` images of `data` (anything with `.labels` and `.subset`) with the classes in their
    original proportions (all of them if None)."""
    if count is None or count >= len(data):
        return data
    return data.subset(stratified_sample(data.labels, count, seed))


def grouped_kfold(groups: torch.Tensor, folds: int, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """k folds where every group (writer) sits wholly in one validation fold, so validation
    writers are unseen in training; groups are dealt round-robin after a seeded shuffle."""
    unique = torch.unique(groups)
    if len(unique) < folds:
        raise ValueError(f"{len(unique)} groups cannot fill {folds} folds")
    shuffled = unique[torch.randperm(len(unique), generator=torch.Generator().manual_seed(seed))]
    validation = [torch.isin(groups, shuffled[fold::folds]) for fold in range(folds)]
    return [(torch.nonzero(~is_validation).flatten(), torch.nonzero(is_validation).flatten())
            for is_validation in validation]


def stratified_kfold(labels: torch.Tensor, folds: int, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """k folds that each hold out 1/k of every class's images, drawn at random: the protocol of a test set split by
    image (testPart1), where a held-out drawing's writer drew other characters in the training folds."""
    generator = torch.Generator().manual_seed(seed)
    assignment = torch.empty(len(labels), dtype=torch.long)
    for label in torch.unique(labels):
        members = torch.nonzero(labels == label).flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        assignment[members] = torch.arange(len(members)) % folds
    return [(torch.nonzero(assignment != fold).flatten(), torch.nonzero(assignment == fold).flatten())
            for fold in range(folds)]
