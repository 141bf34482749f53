"""Tiny real NIfTI scans and the `brainvae prepare` call the table tests share."""

from __future__ import annotations

import nibabel as nib
import numpy as np

from brainvae.cli import main

SHAPE = (6, 8, 5)


def write_scan(path, seed: int) -> None:
    """A tiny volume: a bright box in noise, saved with nibabel."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.random.default_rng(seed).random(SHAPE).astype(np.float32)
    data[1:5, 2:6, 1:4] += 2.0
    nib.save(nib.Nifti1Image(data, np.eye(4)), str(path))


def prepare(src, out, *extra: str) -> int:
    """`brainvae prepare SRC --out OUT` on one worker, quietly; the exit code."""
    return main(["prepare", str(src), "--workers", "1", "--quiet", "--out", str(out), *extra])
