"""Where the shipped sample population lives (inside a wheel, or at the repository root)."""

from __future__ import annotations

from pathlib import Path

from brainvae.errors import DatasetError

POPULATIONS = {2: "population_2d", 3: "population_3d"}


def sample_data_dir() -> Path:
    """The sample_data folder: packaged copy first, then the source checkout's."""
    package_copy = Path(__file__).resolve().parents[1] / "sample_data"
    checkout_copy = Path(__file__).resolve().parents[3] / "sample_data"
    for candidate in (package_copy, checkout_copy):
        if (candidate / POPULATIONS[2]).is_dir():
            return candidate
    raise DatasetError(
        f"sample data not found (looked in {package_copy} and {checkout_copy}); "
        "regenerate it with scripts/make_sample_data.sh"
    )


def sample_population_dir(dims: int) -> Path:
    """Folder of the 2D or 3D sample population (phantom layout: subjects.csv, images/, atlas)."""
    if dims not in POPULATIONS:
        raise DatasetError(f"sample populations exist for dims 2 and 3, not {dims}")
    return sample_data_dir() / POPULATIONS[dims]
