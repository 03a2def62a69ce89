"""The CPU threads a piece of training runs on (a fold process's share of the cores)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import cv2
import torch


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """torch's (and OpenCV's) compute threads set to ``threads`` inside, restored after; None: unchanged."""
    if threads is None:
        yield
        return
    before, before_cv = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
        cv2.setNumThreads(before_cv)
