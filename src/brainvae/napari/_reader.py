"""napari reader for .nii/.nii.gz: one layer per file, in display orientation, world-aligned.

``get_reader`` decides from the name alone (no file I/O, no heavy imports) so that
napari can ask it about every file the user drops.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, Union

PathLike = Union[str, "os.PathLike[str]"]
LayerData = tuple[Any, dict[str, Any], str]
ReaderFunction = Callable[[PathLike | Sequence[PathLike]], list[LayerData]]

_NIFTI_ENDINGS = (".nii", ".nii.gz")


def _is_nifti_name(path: Any) -> bool:
    """True for a str/Path whose name ends in .nii or .nii.gz (a bare .gz is not NIfTI)."""
    try:
        name = os.fspath(path)
    except TypeError:
        return False
    return isinstance(name, str) and name.lower().endswith(_NIFTI_ENDINGS)


def get_reader(path: PathLike | Sequence[PathLike]) -> ReaderFunction | None:
    """Return the NIfTI reader when every path is named .nii/.nii.gz, else None (fast)."""
    paths = [path] if isinstance(path, (str, os.PathLike)) else list(path)
    if not paths or not all(_is_nifti_name(p) for p in paths):
        return None
    if any(os.path.isdir(p) for p in paths):  # a folder named *.nii: not ours to read
        return None
    return read_nifti_layers


def read_nifti_layers(path: PathLike | Sequence[PathLike]) -> list[LayerData]:
    """Read each file into one image or labels layer; a bad file raises DataFileError."""
    from brainvae.data.io.nifti import read_nifti
    from brainvae.errors import DataFileError
    from brainvae.napari.layer_metadata import volume_layer_data

    paths = [path] if isinstance(path, (str, os.PathLike)) else list(path)
    layers = []
    for p in paths:
        try:
            layers.append(volume_layer_data(read_nifti(os.fspath(p))))
        except DataFileError as err:
            raise _named_first(err) from err
    return layers


def _named_first(err: Any) -> Exception:
    """The error with the file's name and the problem first and its folder last: napari's
    pop-up shows the start of a message, which for a full path is only folders."""
    from brainvae.errors import DataFileError

    if err.path is None:
        return err
    named = DataFileError(None, f"{err.path.name}: {err.problem} (in {err.path.parent})")
    named.path = err.path
    return named
