"""The files of a prepared dataset folder, by name, in one place (no imports: every data
module, the writer in prepare/ and the readers alike, can use it without a circle)."""

from __future__ import annotations

from typing import ClassVar


class DatasetFolder:
    """Names of what `brainvae prepare` writes into a dataset folder."""

    IMAGES: ClassVar[str] = "images.npy"
    METADATA: ClassVar[str] = "metadata.csv"
    DESCRIPTION: ClassVar[str] = "dataset.json"
    REPORT: ClassVar[str] = "report.json"
    PREPROCESS: ClassVar[str] = "preprocess.json"
    REQUIRED: ClassVar[tuple[str, ...]] = (IMAGES, METADATA, DESCRIPTION, REPORT)
    """The files a dataset cannot be opened without."""
