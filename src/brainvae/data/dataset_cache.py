"""Where the docks keep the datasets they prepare, keyed by everything the result depends on.

The Population data dock prepares a folder of scans into a per-user cache folder, and the
Training dock does the same for a population opened from a folder (File > Open Sample): one
key, so both reuse one prepared dataset and an edited folder is prepared again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from brainvae.user_cache import user_cache_dir


def default_cache_root() -> Path:
    """Where prepared datasets are cached unless the user picks a folder."""
    return user_cache_dir("datasets")


@dataclass(frozen=True)
class PrepareRequest:
    """What one prepare depends on: the scans, their table, the recipe and the options."""

    source: Path
    csv: Path | None
    config: Any  # PreprocessConfig
    skip_bad: bool = False
    allow_unmatched: bool = False
    id_column: str | None = None

    def cache_folder(self, root: Path | None = None) -> Path:
        """A folder named by a key of the source files' names, sizes and modification times,
        the CSV's (or a BIDS root's .tsv files), the recipe and the options."""
        from brainvae.data.file_matching import find_image_files

        files = [self.csv] if self.csv is not None else []
        if self.csv is None:  # a BIDS root's tables are read without being named
            files += sorted(self.source.glob("participants.tsv"))
            files += sorted(self.source.glob("sub-*/sub-*_sessions.tsv"))
        files += find_image_files(self.source)
        key = json.dumps(
            {
                "source": str(self.source.resolve()),
                "files": [_file_identity(path) for path in files],
                "config": self.config.to_dict(),
                "skip_bad": self.skip_bad,
                "allow_unmatched": self.allow_unmatched,
                "id_column": self.id_column,
            },
            sort_keys=True,
        )
        digest = hashlib.sha1(key.encode()).hexdigest()[:10]
        return (root or default_cache_root()) / f"{self.source.name}-{digest}"


def folder_request(folder: Path, ndim: int) -> PrepareRequest:
    """The request for a population folder (scans in images/, table in subjects.csv) whose
    scans are already on their working grid, as the samples and phantoms are: prepared
    as they are, with the expected number of dimensions checked."""
    from brainvae.data.preprocessing import PreprocessConfig

    config = PreprocessConfig.identity().with_changes(expected_ndim=ndim)
    return PrepareRequest(folder / "images", folder / "subjects.csv", config)


def _file_identity(path: Path) -> list:
    """(path, size, modification time) of a file: changes when the file does."""
    stat = Path(path).stat()
    return [str(path), stat.st_size, stat.st_mtime_ns]
