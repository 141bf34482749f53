"""The folder of a run's evaluation, written at once (an interrupted run leaves the old folder or
the complete new one, brainvae.data.io.output_folder):

- reconstruction.csv: one row per scan of the split (row, subject_id, session, split, ...,
  then mse, ssim, cw_ssim of its reconstruction inside the brain mask);
- summary.json: the means and spreads, the PCA-based Frechet distance of the prior samples,
  the active latents, how the samples were drawn and the brain mask, plus what the caller adds
  (run, dataset);
- examples.png: a few scans, their reconstructions and prior samples, on one grey scale (3D:
  the slice across the first axis through the brain mask's centre).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from brainvae.data.io.output_folder import atomic_output_folder
from brainvae.exports.tables import write_csv, write_json

if TYPE_CHECKING:
    from brainvae.evaluation.run_evaluation import RunEvaluation

TABLE = "reconstruction.csv"
SUMMARY = "summary.json"
PICTURE = "examples.png"


def shown_slice(images: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, str]:
    """2D pictures of (K, *spatial) images: themselves in 2D; in 3D the slice across the first
    spatial axis through the brain mask's centre (and the words saying which)."""
    if images.ndim == 3:
        return images, ""
    voxels = np.argwhere(mask)
    index = int(np.round(voxels[:, 0].mean())) if len(voxels) else mask.shape[0] // 2
    return images[:, index], f" (slice {index} of the first axis)"


def examples_figure(evaluation: RunEvaluation) -> Any:
    """Rows: scans, their reconstructions, prior samples (one grey scale, from the scans)."""
    from matplotlib.figure import Figure

    scans, where = shown_slice(evaluation.shown_scans, evaluation.brain_mask)
    recon, _ = shown_slice(evaluation.shown_reconstructions, evaluation.brain_mask)
    samples, _ = shown_slice(evaluation.samples, evaluation.brain_mask)
    low, high = float(np.min(scans)), float(np.max(scans))
    columns = max(len(scans), len(samples))
    height, width = scans.shape[1:]
    figure = Figure(figsize=(1.9 * columns * width / max(height, width) + 1.2, 6.4))
    axes = figure.subplots(3, columns, squeeze=False)
    scores = evaluation.reconstruction
    rows = (
        (f"{evaluation.split} scan", scans),
        ("reconstruction", recon),
        ("prior sample", samples),
    )
    for r, (label, pictures) in enumerate(rows):
        for c in range(columns):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            for side in ax.spines.values():
                side.set_visible(False)
            if c >= len(pictures):
                continue
            ax.imshow(pictures[c], cmap="gray", vmin=low, vmax=high, interpolation="nearest")
            if r == 1:
                cw = float(np.asarray(scores.cw_ssim)[c])
                ax.set_title(f"CW-SSIM {cw:.3f}", fontsize=8)
            if c == 0:
                ax.set_ylabel(label, fontsize=9)
    fd = evaluation.pca_fd.distance
    figure.suptitle(
        f"{evaluation.model_label or evaluation.family}: reconstructions of the {evaluation.split} split{where} and prior "
        f"samples\nPCA-FD of {evaluation.n_samples} samples = {fd:.4g}",
        fontsize=9,
    )
    figure.tight_layout()
    return figure


def write_evaluation(
    out: str | Path, evaluation: RunEvaluation, info: dict[str, Any], overwrite: bool
) -> Path:
    """reconstruction.csv, summary.json (the evaluation's summary under info's entries) and
    examples.png into `out`, at once."""
    from brainvae.exports.population_folder import save_figure

    with atomic_output_folder(out, overwrite) as folder:
        write_csv(folder / TABLE, evaluation.table, index=False)
        figure = examples_figure(evaluation)
        save_figure(folder / PICTURE, figure)
        summary = {**info, **evaluation.summary(), "files": [TABLE, SUMMARY, PICTURE]}
        write_json(folder / SUMMARY, summary)
    return Path(out)
