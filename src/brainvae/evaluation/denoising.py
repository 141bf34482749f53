"""The denoising comparison (the mouse-brain study's Fig. 2; METHODS.md section 4): corrupt
clean scans with each artefact, reconstruct them with several models, and score how much of
the artefact each model removed.

For every scan, artefact and model the reconstruction r of the corrupted scan c is scored
against the CLEAN scan x (inside the brain mask): CW-SSIM, SSIM and MSE
(brainvae.evaluation.image_quality). Inside the region the artefact changed (Corrupted.changed,
brain or not) two more scores:

- artefact_mse: mean (r - x)^2 over the changed voxels: the reconstruction's error against the
  clean scan where the artefact was;
- artefact_reproduced: sum (r - r0)(c - x) / sum (c - x)^2 over the changed voxels, where r0 is
  the model's reconstruction of the clean scan: the share of the artefact (c - x) that passes
  through the model into its output (a regression of the output's change on the artefact).
  1: the artefact is copied (an identity model); 0: the output does not move (removed); it can
  exceed 1 (amplified) or be negative. Measuring from r0 rather than x keeps the model's usual
  reconstruction error (blur) out of it.

Rows with artefact "none" score each model's reconstruction of the clean scan (the baseline);
the `inputs` table scores the corrupted inputs themselves (artefact_reproduced is 1 there by
definition, artefact_mse the artefact's own strength).

Arrays and models in, a DenoisingComparison out, small DenoisingProgress reports on the way;
no file I/O and no napari (brainvae.usecases.denoise_run opens runs and the dataset).
"""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from brainvae.evaluation.artefacts import ARTEFACTS, ArtefactError, check_artefacts

if TYPE_CHECKING:
    import pandas as pd

    from brainvae.models import LatentModel

NO_ARTEFACT = "none"
"""The artefact label of the rows scoring reconstructions of the clean scans."""
SCORES = ("cw_ssim", "ssim", "mse", "artefact_mse", "artefact_reproduced")
"""The per-row scores of DenoisingComparison.table, in its column order."""
MASK_FRACTION = 0.1
"""Default brain mask: the clean scans' mean above this fraction of its maximum."""


@dataclass(frozen=True)
class DenoisingProgress:
    """One step done: stage (which artefact, which scans), done of total steps."""

    stage: str
    done: int
    total: int


@dataclass(frozen=True, eq=False)
class DenoisingComparison:
    """The scores (see the module's docstring) and what is needed to redraw any scan.

    table: one row per scan x artefact x model: scan (position in `clean`), artefact (or
    "none"), model, cw_ssim, ssim, mse, artefact_mse, artefact_reproduced, changed_voxels.
    inputs: one row per scan x artefact: the corrupted input scored the same way.
    clean: the clean scans (N, *spatial) as given (a memory map stays one); brain_mask: where
    cw_ssim, ssim and mse were taken; placement_mask: the mask given for where the artefacts
    go (None: each scan's own brain, the artefacts module's rule).
    """

    table: pd.DataFrame
    inputs: pd.DataFrame
    models: Mapping[str, Any]
    clean: Any
    artefacts: tuple[str, ...]
    severity: float
    seed: int
    brain_mask: np.ndarray
    mask_note: str
    placement_mask: np.ndarray | None = None
    columns: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", ("clean", "corrupted", *self.models))

    @property
    def model_names(self) -> tuple[str, ...]:
        return tuple(self.models)

    @property
    def n_scans(self) -> int:
        return int(len(self.clean))

    def summary(self) -> pd.DataFrame:
        """One row per artefact x model (artefacts in order, "none" first): the mean of each
        score over the scans (NaN skipped) and the number of scans."""
        import pandas as pd

        order = (NO_ARTEFACT, *self.artefacts)
        grouped = self.table.groupby(["artefact", "model"], sort=False)[list(SCORES)].mean()
        counts = self.table.groupby(["artefact", "model"], sort=False).size()
        summary = grouped.assign(n_scans=counts).reset_index()
        summary["artefact"] = pd.Categorical(summary["artefact"], order, ordered=True)
        summary["model"] = pd.Categorical(summary["model"], self.model_names, ordered=True)
        summary = summary.sort_values(["artefact", "model"]).reset_index(drop=True)
        summary["artefact"] = summary["artefact"].astype(str)
        summary["model"] = summary["model"].astype(str)
        return summary

    def input_summary(self) -> pd.DataFrame:
        """One row per artefact: the corrupted inputs' mean scores (how bad the input is)."""
        columns = [*SCORES, "changed_voxels"]
        summary = self.inputs.groupby("artefact", sort=False)[columns].mean()
        return summary.reindex(list(self.artefacts)).reset_index()

    def least_reproduced(self) -> dict[str, str]:
        """Per artefact, the model whose reconstructions reproduce it least (lowest mean
        artefact_reproduced; ties: the lower artefact_mse)."""
        summary = self.summary()
        found = {}
        for artefact in self.artefacts:
            rows = summary[summary["artefact"] == artefact].dropna(subset=["artefact_reproduced"])
            if len(rows):
                best = rows.sort_values(["artefact_reproduced", "artefact_mse"]).iloc[0]
                found[artefact] = str(best["model"])
        return found

    def _scan(self, scan_index: int) -> np.ndarray:
        if not -self.n_scans <= scan_index < self.n_scans:
            raise ArtefactError(
                f"scan {scan_index} is not among the {self.n_scans} scans compared "
                f"(0..{self.n_scans - 1})"
            )
        return np.asarray(self.clean[scan_index % self.n_scans], dtype=np.float32)[None]

    def montage(self, scan_index: int) -> dict[str, np.ndarray]:
        """{artefact: (C, *spatial) float32}: per artefact the clean scan, the corrupted input
        and each model's reconstruction (C = len(columns), in `columns` order). Recomputed
        from the seed (the scores' own corruption, bit for bit) and the models."""
        return self.pictures(scan_index)[0]

    def changed(self, scan_index: int) -> dict[str, np.ndarray]:
        """{artefact: (*spatial) bool}: where each artefact altered this scan."""
        return self.pictures(scan_index)[1]

    def pictures(self, scan_index: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """(montage, changed) of one scan in one pass of the models."""
        from brainvae.evaluation.artefacts import corrupt_scans

        scan = self._scan(scan_index)
        position = scan_index % self.n_scans
        montage, changed = {}, {}
        for artefact in self.artefacts:
            corrupted = corrupt_scans(
                scan, artefact, self.severity, self.seed, self.placement_mask, [position]
            )
            pictures = [scan[0], corrupted.images[0]]
            pictures += [reconstruct(m, corrupted.images)[0] for m in self.models.values()]
            montage[artefact] = np.stack(pictures).astype(np.float32)
            changed[artefact] = corrupted.changed[0]
        return montage, changed


def reconstruct(model: Any, images: np.ndarray) -> np.ndarray:
    """model.reconstruct of (N, *spatial) scans in eval mode without gradients, as float32."""
    import torch

    model.eval()
    with torch.no_grad():
        out = model.reconstruct(np.asarray(images, dtype=np.float32))
    return out.float().cpu().numpy().reshape(images.shape)


def check_models(models: Mapping[str, Any], spatial: tuple[int, ...]) -> None:
    """Every model takes single-channel scans of the clean scans' shape; the error names the
    models (and their shapes) that do not."""
    from brainvae.errors import ModelError

    if not models:
        raise ModelError("the denoising comparison needs at least one model")
    shapes = {name: tuple(int(s) for s in m.config.input_shape) for name, m in models.items()}
    names = list(shapes)
    for name in names[1:]:
        if shapes[name] != shapes[names[0]]:
            raise ModelError(
                f"{names[0]} takes scans of shape {shapes[names[0]]} and {name} of shape "
                f"{shapes[name]}: compare models trained on the same grid"
            )
    for name, model in models.items():
        if int(model.config.channels) != 1:
            raise ModelError(f"{name} has {model.config.channels} channels; scans have one")
        if shapes[name] != tuple(spatial):
            raise ModelError(
                f"{name} takes scans of shape {shapes[name]}, the scans are {tuple(spatial)}"
            )


def default_brain_mask(clean: Any, batch: int = 64) -> np.ndarray:
    """The clean scans' mean above MASK_FRACTION of its maximum (read a batch at a time)."""
    from brainvae.analysis.projective_maps import brain_mask_from_images, mean_image

    return brain_mask_from_images(mean_image(clean, batch), MASK_FRACTION)


def region_scores(
    clean: np.ndarray,
    corrupted: np.ndarray,
    changed: np.ndarray,
    output: np.ndarray,
    output_clean: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """(artefact_mse, artefact_reproduced), each (N,), over each scan's changed voxels (NaN
    where nothing changed); see the module's docstring."""
    n = len(clean)
    x = clean.reshape(n, -1).astype(np.float64)
    artefact = corrupted.reshape(n, -1) - x
    region = changed.reshape(n, -1)
    count = region.sum(axis=1)
    error = ((output.reshape(n, -1) - x) ** 2 * region).sum(axis=1)
    moved = output.reshape(n, -1).astype(np.float64) - output_clean.reshape(n, -1)
    along = (moved * artefact * region).sum(axis=1)
    strength = (artefact**2 * region).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        artefact_mse = np.where(count > 0, error / np.maximum(count, 1), np.nan)
        reproduced = np.where(strength > 0, along / np.where(strength > 0, strength, 1), np.nan)
    return artefact_mse, reproduced


def _rows(
    positions: np.ndarray, artefact: str, model: str | None, scores: Any, region: tuple, changed
) -> dict[str, Any]:
    found = {"scan": positions, "artefact": artefact}
    if model is not None:
        found["model"] = model
    found.update(cw_ssim=scores.cw_ssim, ssim=scores.ssim, mse=scores.mse)
    found.update(artefact_mse=region[0], artefact_reproduced=region[1])
    found["changed_voxels"] = changed.reshape(len(positions), -1).sum(axis=1)
    return found


def _ordered(table: pd.DataFrame, artefacts: dict, models: dict | None) -> pd.DataFrame:
    """Rows by artefact (in the order asked), scan, then model (in the order given)."""
    keys = {"_artefact": table["artefact"].map(artefacts), "scan": table["scan"]}
    if models is not None:
        keys["_model"] = table["model"].map(models)
    order = np.lexsort([np.asarray(v) for v in reversed(keys.values())])
    return table.iloc[order].reset_index(drop=True)


def denoising_comparison(
    models: Mapping[str, LatentModel],
    clean: np.ndarray,
    artefacts: Sequence[str] = ARTEFACTS,
    severity: float = 1.0,
    seed: int = 0,
    brain_mask: np.ndarray | None = None,
    batch: int = 64,
) -> Generator[DenoisingProgress, None, DenoisingComparison]:
    """Yield DenoisingProgress reports; return the DenoisingComparison.

    models: {name: model} (names as the table shows them); clean: (N, *spatial) scans, 2D or
    3D, read `batch` at a time (a memory map, or anything sliced clean[a:b]); brain_mask:
    spatial bool where the scores are taken and the artefacts placed (None: the scans' mean
    above MASK_FRACTION of its maximum for the scores, each scan's own brain for placement).
    """
    import pandas as pd

    from brainvae.errors import ModelError
    from brainvae.evaluation.artefacts import check_severity, corrupt_scans
    from brainvae.evaluation.image_quality import image_scores

    chosen = check_artefacts(artefacts)
    severity = check_severity(severity)
    if batch < 1:
        raise ModelError(f"the batch must be >= 1, got {batch}")
    n = len(clean)
    if n < 1:
        raise ModelError("the denoising comparison needs at least one clean scan")
    spatial = tuple(int(s) for s in np.shape(clean)[1:])
    check_models(models, spatial)
    if brain_mask is None:
        mask, note = default_brain_mask(clean, batch), f"mean scan > {MASK_FRACTION:g} of its max"
        placement = None
    else:
        mask = np.asarray(brain_mask, dtype=bool)
        if mask.shape != spatial:
            raise ArtefactError(f"the brain mask has shape {mask.shape}, the scans {spatial}")
        note, placement = "given", mask
    starts = range(0, n, batch)
    total = len(starts) * (1 + len(chosen))
    done = 0
    rows: list[dict[str, Any]] = []
    inputs: list[dict[str, Any]] = []
    for start in starts:
        x = np.asarray(clean[start : start + batch], dtype=np.float32).reshape(-1, *spatial)
        positions = np.arange(start, start + len(x))
        outputs_clean = {name: reconstruct(m, x) for name, m in models.items()}
        nothing = np.zeros(x.shape, dtype=bool)
        for name, output in outputs_clean.items():
            scores = image_scores(x, output, mask)
            empty = (np.full(len(x), np.nan), np.full(len(x), np.nan))
            rows.append(_rows(positions, NO_ARTEFACT, name, scores, empty, nothing))
        done += 1
        yield DenoisingProgress(f"clean scans {start + 1}-{start + len(x)} of {n}", done, total)
        for artefact in chosen:
            corrupted = corrupt_scans(x, artefact, severity, seed, placement, positions)
            c, changed = corrupted.images, corrupted.changed
            region = region_scores(x, c, changed, c, x)
            inputs.append(_rows(positions, artefact, None, image_scores(x, c, mask), region,
                                changed))  # fmt: skip
            for name, model in models.items():
                output = reconstruct(model, c)
                region = region_scores(x, c, changed, output, outputs_clean[name])
                scores = image_scores(x, output, mask)
                rows.append(_rows(positions, artefact, name, scores, region, changed))
            done += 1
            yield DenoisingProgress(f"{artefact} {start + 1}-{start + len(x)} of {n}", done, total)
    artefact_rank = {name: i for i, name in enumerate((NO_ARTEFACT, *chosen))}
    model_rank = {name: i for i, name in enumerate(models)}
    table = _ordered(pd.concat([pd.DataFrame(r) for r in rows]), artefact_rank, model_rank)
    input_table = _ordered(pd.concat([pd.DataFrame(r) for r in inputs]), artefact_rank, None)
    return DenoisingComparison(
        table=table,
        inputs=input_table,
        models=dict(models),
        clean=clean,
        artefacts=chosen,
        severity=severity,
        seed=int(seed),
        brain_mask=mask,
        mask_note=note,
        placement_mask=placement,
    )
