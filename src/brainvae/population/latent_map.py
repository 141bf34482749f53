"""The latent map: every scan of the population as a point in two dimensions, chosen from
two latents, the first two discriminant axes of a classification, or a 2D embedding of the
active latents (PCA by default; UMAP when umap-learn is installed: the `umap` extra)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from brainvae.errors import PopulationAnalysisError

MAP_METHODS = ("pca", "umap", "latents", "lda")
DEFAULT_MAP = "pca"


@dataclass(frozen=True)
class LatentMap:
    """(N, 2) coordinates and what the axes are."""

    coordinates: np.ndarray
    x_label: str
    y_label: str
    method: str
    note: str = ""


def umap_available() -> bool:
    from importlib.util import find_spec

    return find_spec("umap") is not None


def latent_map(
    codes: np.ndarray,
    active: np.ndarray | None = None,
    method: str = DEFAULT_MAP,
    latents: Sequence[int] = (0, 1),
    lda_axes: np.ndarray | None = None,
    seed: int = 0,
) -> LatentMap:
    """The population's map. `latents`: the two latents (0-based) for method "latents";
    `lda_axes`: (N, k) discriminant coordinates for method "lda"."""
    codes = np.asarray(codes, dtype=np.float64)
    n, width = codes.shape
    if method not in MAP_METHODS:
        raise PopulationAnalysisError(
            f"map must be one of {', '.join(MAP_METHODS)}, not {method!r}"
        )
    if method == "latents":
        i, j = (int(v) for v in latents)
        if not (0 <= i < width and 0 <= j < width):
            raise PopulationAnalysisError(
                f"latents {i + 1} and {j + 1}: the model has {width} (z1..z{width})"
            )
        return LatentMap(codes[:, [i, j]], f"z{i + 1}", f"z{j + 1}", method)
    if method == "lda":
        if lda_axes is None:
            raise PopulationAnalysisError("an LDA map needs a classification first (--classify)")
        axes = np.asarray(lda_axes, dtype=np.float64)
        if axes.shape[1] >= 2:
            return LatentMap(axes[:, :2], "LD1", "LD2", method)
        second = _pca(codes, active, 1)[0]
        return LatentMap(
            np.column_stack([axes[:, 0], second[:, 0]]), "LD1", "PC1 of the latents", method,
            "two classes have one discriminant axis; the vertical axis is the latents' PC1",
        )  # fmt: skip
    if method == "umap":
        if not umap_available():
            raise PopulationAnalysisError(
                "a UMAP map needs umap-learn: pip install 'napari-brainvae[umap]' "
                "(or choose the PCA map)"
            )
        import umap

        used, note = _used(codes, active)
        reducer = umap.UMAP(n_components=2, random_state=seed, n_neighbors=min(15, n - 1))
        return LatentMap(reducer.fit_transform(used), "UMAP 1", "UMAP 2", method, note)
    coordinates, note = _pca(codes, active, 2)
    return LatentMap(coordinates, "PC1", "PC2", method, note)


def _used(codes: np.ndarray, active: np.ndarray | None) -> tuple[np.ndarray, str]:
    if active is None or int(np.sum(active)) < 2:
        return codes, "" if active is None else "fewer than 2 active latents: all latents used"
    return codes[:, np.asarray(active, dtype=bool)], f"{int(np.sum(active))} active latents"


def _pca(codes: np.ndarray, active: np.ndarray | None, k: int) -> tuple[np.ndarray, str]:
    used, note = _used(codes, active)
    centred = used - used.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    components = vt[:k]
    signs = np.sign(components[np.arange(len(components)), np.abs(components).argmax(axis=1)])
    coordinates = centred @ (components * signs[:, None]).T
    if coordinates.shape[1] < k:  # one latent: pad so the map still has two axes
        coordinates = np.column_stack(
            [coordinates, np.zeros((len(codes), k - coordinates.shape[1]))]
        )
    return coordinates, note
