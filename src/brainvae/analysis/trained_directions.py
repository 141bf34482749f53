"""How well a longitudinal VAE's learned directions describe its scans' visit-to-visit changes.

direction_agreement is the pure core: codes, each scan's (subject, time, group) row and the
learned directions in, the mean cosine of each pair's change with its direction out (controls:
cos(dz, tau_a); a disease group: cos(dz - (dz . tau_a) tau_a, tau_d)), as the training loss
measures it. dataset_direction_agreement scores a prepared dataset's held-out splits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from brainvae.errors import ModelError

HELD_OUT = ("val", "test")
"""The splits scored (subjects the model never trained on); train when they hold no pair."""


@dataclass(frozen=True)
class GroupAgreement:
    """Mean (and sd) cosine of n pairs' changes with the group's direction."""

    group: str
    direction: str
    n_pairs: int
    mean_cosine: float
    sd_cosine: float


@dataclass(frozen=True)
class DirectionAgreement:
    """Per group (controls first), the agreement of its pairs with its direction; the angle
    between tau_a and each tau_d in degrees; the splits scored."""

    groups: list[GroupAgreement]
    angles_degrees: dict[str, float] = field(default_factory=dict)
    splits: tuple[str, ...] = ()

    def describe(self) -> str:
        """Lines for the command line and the docks."""
        where = "+".join(self.splits) or "given"
        lines = [
            f"Learned directions on the {where} split(s) (cosine of each visit pair's change):"
        ]
        for g in self.groups:
            shown = f"mean {g.mean_cosine:.3f} (sd {g.sd_cosine:.3f})" if g.n_pairs else "no pairs"
            lines.append(f"  {g.group}: {g.direction}, {g.n_pairs} pairs, {shown}")
        for label, angle in self.angles_degrees.items():
            lines.append(f"  angle between tau_a and tau_d of {label}: {angle:.1f} degrees")
        return "\n".join(lines)


def direction_agreement(
    codes: np.ndarray,
    table: np.ndarray,
    directions: dict[str, np.ndarray],
    control: str = "control",
    splits: tuple[str, ...] = (),
) -> DirectionAgreement:
    """codes (N, L); table (N, 3) rows (subject code, time, group code: 0 control, k the k-th
    disease direction after "aging", -1 none); directions {"aging": tau_a, label: tau_d...}."""
    from brainvae.models.longitudinal_vae.model import consecutive_pairs

    codes = np.asarray(codes, np.float64)
    table = np.asarray(table, np.float64)
    if codes.ndim != 2 or table.shape != (len(codes), 3):
        raise ModelError(f"codes {codes.shape} and condition rows {table.shape} do not match")
    earlier, later = consecutive_pairs(table[:, 0], table[:, 1])
    groups = table[earlier, 2].astype(np.int64)
    keep = groups == table[later, 2].astype(np.int64)
    earlier, later, groups = earlier[keep], later[keep], groups[keep]
    change = codes[later] - codes[earlier]
    names = list(directions)
    tau_a = _unit(np.asarray(directions[names[0]], np.float64))
    results = []
    for k, name in enumerate(names):
        chosen = change[groups == k]
        if k:
            chosen = chosen - (chosen @ tau_a)[:, None] * tau_a[None, :]
        tau = _unit(np.asarray(directions[name], np.float64))
        norms = np.linalg.norm(chosen, axis=1)
        cosines = np.where(norms > 0, chosen @ tau / np.maximum(norms, 1e-300), 0.0)
        results.append(
            GroupAgreement(
                control if k == 0 else name,
                "aging (tau_a)" if k == 0 else "disease (tau_d, aging removed)",
                len(cosines),
                float(cosines.mean()) if len(cosines) else float("nan"),
                float(cosines.std()) if len(cosines) else float("nan"),
            )
        )
    angles = {
        name: float(np.degrees(np.arccos(np.clip(tau_a @ _unit(directions[name]), -1, 1))))
        for name in names[1:]
    }
    return DirectionAgreement(results, angles, splits)


def dataset_direction_agreement(model: Any, dataset: Any, batch: int = 256) -> DirectionAgreement:
    """direction_agreement of a longitudinal VAE on the dataset's val and test subjects (the
    train split when those hold no visit pair)."""
    import torch

    from brainvae.models.longitudinal_vae.model import consecutive_pairs

    splits: tuple[str, ...] = HELD_OUT
    rows = np.concatenate([dataset.indices(split) for split in splits])
    table = model.condition_table(dataset.metadata, None, where=dataset.path)
    if not len(consecutive_pairs(table[rows, 0], table[rows, 1])[0]):
        splits, rows = ("train",), dataset.indices("train")
    table = model.condition_table(dataset.metadata, rows, where=dataset.path)[rows]
    model.eval()
    codes = []
    with torch.no_grad():
        for start in range(0, len(rows), batch):
            chunk = np.asarray(dataset.images[rows[start : start + batch]], dtype=np.float32)
            codes.append(model.encode(chunk)[0].float().cpu().numpy())
    codes = np.concatenate(codes) if codes else np.zeros((0, model.latent_dim))
    control = f"{model.config.group_column} = {model.config.control_label}"
    return direction_agreement(codes, table, model.learned_directions(), control, splits)


def _unit(vector: np.ndarray) -> np.ndarray:
    vector = np.asarray(vector, np.float64)
    return vector / max(float(np.linalg.norm(vector)), 1e-300)
