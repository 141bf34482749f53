"""Shared fixtures: small real NIfTI files written by nibabel, and nibabel's bundled scans."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="session")
def nibabel_data() -> Path:
    """Folder of real scans shipped with nibabel (anatomical.nii, example4d.nii.gz, ...)."""
    from nibabel.testing import data_path

    return Path(data_path)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def sample_data_dir(repo_root) -> Path:
    return repo_root / "sample_data"


@pytest.fixture
def write_nii(tmp_path):
    """Write an array as a real NIfTI file with a given affine; returns its path."""
    import nibabel as nib

    def _write(name: str, data: np.ndarray, affine: np.ndarray | None = None) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        nib.save(
            nib.Nifti1Image(np.asarray(data), np.eye(4) if affine is None else affine), str(path)
        )
        return path

    return _write


def pytest_configure(config):
    # Tests must never touch a user's napari settings.
    os.environ.setdefault(
        "NAPARI_CONFIG", str(Path(config.rootpath) / ".pytest_cache" / "napari.yaml")
    )
    # ...nor its cached precision probe (training with precision "auto" writes one).
    os.environ.setdefault(
        "BRAINVAE_CACHE_DIR", str(Path(config.rootpath) / ".pytest_cache" / "brainvae")
    )
