"""Learning when the label is (almost) never the truth: Task 3's tools.

A folder other than the image's digit is a *complementary label*: it says which class the image is not
(Ishida et al., 2017). Cross-entropy on such folders learns p(folder | image), about 1/9 for every folder
but the digit y and near 0 for y: its argmax is a wrong digit, its argmin the right one. Here: the losses
that learn from such labels (complementary loss -log(1 - p_folder), Kim et al., 2019 and Chou et al., 2020;
forward correction through a transition matrix T, Patrini et al., 2017 and Yu et al., 2018), and the
estimate of T[true digit, folder] from predictions on held-out images, which needs no clean label.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F



def complementary_loss(logits: torch.Tensor, complementary_labels: torch.Tensor) -> torch.Tensor:
    """Mean of -log(1 - p[complementary label]), computed stably in log space:
    log(1 - p_k) = logsumexp(logits without k) - logsumexp(logits)."""
    masked = logits.masked_fill(F.one_hot(complementary_labels, logits.shape[1]).bool(), float("-inf"))
    return (torch.logsumexp(logits, dim=1) - torch.logsumexp(masked, dim=1)).mean()


def forward_corrected_loss(transition: torch.Tensor) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Cross-entropy of the observed folder under p(folder | x) = softmax(logits) @ T, where
    T[true, folder] is the probability that an image of `true` sits in `folder` (Patrini et al.)."""
    def loss(logits: torch.Tensor, folder_labels: torch.Tensor) -> torch.Tensor:
        folder_probabilities = torch.softmax(logits, dim=1) @ transition.to(logits.device, logits.dtype)
        chosen = folder_probabilities.gather(1, folder_labels[:, None]).squeeze(1)
        return -torch.log(chosen.clamp(min=1e-12)).mean()
    return loss


def least_likely_folder(folder_logits: torch.Tensor) -> torch.Tensor:
    """The digit a folder-trained network reveals: the folder it finds least likely."""
    return folder_logits.argmin(dim=1)


def estimate_transition_matrix(inferred_digits: torch.Tensor, folder_labels: torch.Tensor,
                               num_classes: int = 10) -> torch.Tensor:
    """T[i, j] = share of the images inferred to be digit i that sit in folder j (rows without images: uniform).
    Use it on images the inferring network did not train on: its own training folders are memorised."""
    index = inferred_digits.cpu().long() * num_classes + folder_labels.cpu().long()
    counts = torch.bincount(index, minlength=num_classes**2).reshape(num_classes, num_classes).float()
    totals = counts.sum(dim=1, keepdim=True)
    return torch.where(totals > 0, counts / totals.clamp(min=1), torch.full_like(counts, 1 / num_classes))


def confident_pseudo_labels(logits: torch.Tensor, folder_labels: torch.Tensor, keep_share: float):
    """Pseudo-labels for a second, ordinary training stage: the argmax on the `keep_share` of images the network
    is most confident about, only where it differs from the folder (agreement marks a likely mistake). A share,
    not a confidence threshold, works however sharp the outputs are. Returns (keep mask, labels, threshold)."""
    confidence, labels = torch.softmax(logits.float(), dim=1).max(dim=1)
    disagrees = labels != folder_labels.to(labels.device)
    threshold = float(torch.quantile(confidence[disagrees], 1 - keep_share)) if disagrees.any() else 1.0
    keep = disagrees & (confidence >= threshold)
    return keep, labels, threshold


def bootstrap_transition_matrix(inferred_digits: torch.Tensor, folder_labels: torch.Tensor, samples: int = 200,
                                seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """95 % percentile bands of every entry of `estimate_transition_matrix`, resampling the images
    with replacement: how much of an estimate is the sample it was made from. Sampling noise only: where the inferred
    digits are systematically wrong (a bias every resample shares), the band sits around the biased value."""
    generator = torch.Generator().manual_seed(seed)
    count = len(folder_labels)
    estimates = torch.stack([estimate_transition_matrix(inferred_digits[resample], folder_labels[resample])
                             for resample in torch.randint(0, count, (samples, count), generator=generator)])
    return torch.quantile(estimates, 0.025, dim=0), torch.quantile(estimates, 0.975, dim=0)
