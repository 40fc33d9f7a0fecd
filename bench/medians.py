"""Medians and ratios over repeated runs, where a run may not have reached its target.

A run that never reached 99 % counts as slower than any run that did (its time is unknown but
larger), so the median stays honest: it is None only when half the runs or more never got there.
"""
from __future__ import annotations

import math


def median(values: list[float | None]) -> float | None:
    """Median with None read as +infinity; None when that median is infinite or there are no values."""
    if not values:
        return None
    ordered = sorted(math.inf if value is None else float(value) for value in values)
    middle = len(ordered) // 2
    value = ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
    return None if math.isinf(value) or math.isnan(value) else value


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator, or None when either is unknown or the denominator is zero."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


def seconds_for_images(images: int, images_per_second: float | None) -> float | None:
    """How long `images` take at a measured throughput (the seed's time-to-99 % extrapolation)."""
    return ratio(images, images_per_second)
