"""A beta-VAE whose encoder is trained to put aging and disease along learned directions
(Ouyang et al., "Disentangling normal aging from severity of disease via weak supervision on
longitudinal MRI", IEEE TMI 2022).

Training batches hold whole subjects (brainvae.training.epoch_plan), so a batch carries pairs
of visits of one subject. For each pair of consecutive visits in a batch, dz = mu_later -
mu_earlier (posterior means). With learned unit directions tau_a (aging) and tau_d (one per
disease group), the loss per batch is

    reconstruction + beta * KL
      + w * [(1 - mean over control pairs of cos(dz, tau_a))
             + (1 - mean over patient pairs of cos(dz - (dz . tau_a) tau_a, tau_d of the group))]

with w = config.direction_weight. tau_a is learned from the controls alone: the disease term
sees it as a constant. A batch without control (or patient) pairs has no such term.

Each scan's condition row is (subject code, visit time, group code): group code 0 is a
control, k >= 1 the k-th of config.disease_labels, -1 a scan of no known group (no term).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from brainvae.errors import ModelError
from brainvae.models.base import ArrayLike
from brainvae.models.beta_vae.model import BetaVAE
from brainvae.models.config import ModelConfig
from brainvae.models.losses import LossOutput

if TYPE_CHECKING:
    import pandas as pd

CONTROL, UNKNOWN = 0, -1
"""Group codes of a control scan and of a scan whose group is missing or not trained on."""


@dataclass
class DirectionLossOutput(LossOutput):
    """The beta-VAE loss parts, plus the two cosine terms (None where the batch had no pair
    of that kind) and how many pairs each saw."""

    aging: torch.Tensor | None = None
    disease: torch.Tensor | None = None
    control_pairs: int = 0
    patient_pairs: int = 0


def consecutive_pairs(subjects: np.ndarray, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(earlier, later) positions of each subject's consecutive visits among the given rows,
    ordered by time; visits of one subject at the same time give no pair."""
    order = np.lexsort((times, subjects))
    first, second = order[:-1], order[1:]
    keep = (subjects[first] == subjects[second]) & (times[second] > times[first])
    return first[keep], second[keep]


def unit(vectors: torch.Tensor) -> torch.Tensor:
    return vectors / vectors.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def mean_cosine(changes: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
    """Mean over rows of cos(changes[i], directions[i]); a zero change counts as cos 0."""
    return (unit(changes) * directions).sum(-1).mean()


class LongitudinalVAE(BetaVAE):
    """beta-VAE + learned aging / disease directions, trained over pairs of visits."""

    family = "longitudinal_vae"
    batches_by_subject = True
    """Training batches hold every training visit of a subject together (epoch_plan)."""

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        n = 1 + len(config.disease_labels or ())
        # free vectors: row 0 is tau_a, row k the k-th disease group's tau_d (normalised)
        self.direction_parameters = torch.nn.Parameter(torch.randn(n, config.latent_dim))

    # -- the directions ---------------------------------------------------------------------
    def directions(self) -> torch.Tensor:
        """Unit rows: tau_a, then tau_d of each of config.disease_labels, (1 + D, latent_dim)."""
        return unit(self.direction_parameters)

    def learned_directions(self) -> dict[str, np.ndarray]:
        """{"aging": tau_a, <disease label>: tau_d, ...} as numpy vectors."""
        rows = self.directions().detach().float().cpu().numpy()
        names = ("aging", *(self.config.disease_labels or ()))
        return {name: rows[i] for i, name in enumerate(names)}

    # -- the condition rows -----------------------------------------------------------------
    @property
    def condition_column(self) -> str:
        """What training reads per scan (named in messages): the pairing columns."""
        config = self.config
        return f"{config.subject_column}/{config.time_column}/{config.group_column}"

    def condition_table(
        self, metadata: pd.DataFrame, rows: np.ndarray | None, where: object = "the dataset"
    ) -> np.ndarray:
        """(N, 3) float64 rows (subject code, time, group code) for every scan of metadata;
        refuses missing columns (naming those there are) and, among `rows`, times that are
        missing or not numbers and a subject's visits that share one time (naming it)."""
        import pandas as pd

        config = self.config
        columns = (config.subject_column, config.time_column, config.group_column)
        absent = [str(c) for c in columns if c not in metadata.columns]
        if absent:
            raise ModelError(
                f"{where}: the longitudinal VAE pairs visits by the column(s) "
                f"{', '.join(map(repr, absent))}, which the dataset's metadata lacks "
                f"(columns: {', '.join(map(str, metadata.columns))})"
            )
        subjects = metadata[config.subject_column].astype(str).to_numpy()
        codes = np.unique(subjects, return_inverse=True)[1].astype(np.float64)
        times = pd.to_numeric(metadata[config.time_column], errors="coerce").to_numpy(np.float64)
        labels = metadata[config.group_column].astype("string").fillna("").to_numpy(str)
        groups = np.full(len(metadata), float(UNKNOWN))
        groups[labels == config.control_label] = CONTROL
        for k, label in enumerate(config.disease_labels or (), start=1):
            groups[labels == label] = k
        if rows is not None:
            used = np.unique(rows)
            missing = used[~np.isfinite(times[used])]
            if len(missing):
                raise ModelError(
                    f"{where}: {len(missing)} of the {len(used)} scans to train and evaluate on "
                    f"have no numeric {config.time_column!r} value (first: subject "
                    f"{subjects[missing[0]]}); fill it in or leave those scans out"
                )
            key = pd.DataFrame({"s": subjects[used], "t": times[used]})
            twice = key[key.duplicated(keep=False)]
            if len(twice):
                raise ModelError(
                    f"{where}: subject {twice['s'].iloc[0]} has two visits with the same "
                    f"{config.time_column!r} ({twice['t'].iloc[0]:g}), so their order is "
                    f"unknown; correct {config.time_column!r} or order the visits by another "
                    "column"
                )
        return np.stack([codes, times, groups], axis=1)

    # -- loss -------------------------------------------------------------------------------
    def loss(self, x: ArrayLike, step: int = 0, condition: ArrayLike | None = None) -> LossOutput:
        """reconstruction + beta * KL + w * (the aging and disease cosine terms)."""
        if condition is None:
            raise ModelError(
                "a longitudinal VAE's loss needs each scan's (subject, time, group) row "
                "(loss(x, condition=...)); training reads it from the metadata columns "
                f"{self.condition_column}"
            )
        batch, _ = self.prepare_input(x)
        table = torch.as_tensor(condition).detach().to("cpu", torch.float64).numpy()
        if table.shape != (len(batch), 3):
            raise ModelError(f"condition must be ({len(batch)}, 3) rows, got {table.shape}")
        self.reconstruction_term.check_target(batch)
        out = self._forward(batch)
        reconstruction = self.reconstruction_term(batch, out.decoder_output, self.log_sigma())
        base = self._beta_vae_total(out, reconstruction, step)
        aging, disease, n_control, n_patient = self._direction_terms(out.mu.float(), table)
        total = base.total
        weight = self.config.direction_weight
        for term in (aging, disease):
            if term is not None:
                total = total + weight * term
        if not torch.isfinite(total):
            raise ModelError(
                f"the loss became {float(total.detach())} (reconstruction "
                f"{float(reconstruction.detach())}, KL {float(base.kl.detach())}): lower the "
                "learning rate or check the data"
            )
        return DirectionLossOutput(
            total,
            reconstruction,
            base.kl,
            base.kl_per_latent,
            base.beta,
            base.capacity,
            aging=aging,
            disease=disease,
            control_pairs=n_control,
            patient_pairs=n_patient,
        )

    def _direction_terms(
        self, mu: torch.Tensor, table: np.ndarray
    ) -> tuple[torch.Tensor | None, torch.Tensor | None, int, int]:
        """(1 - mean cos) over control pairs and over patient pairs, with the pair counts."""
        earlier, later = consecutive_pairs(table[:, 0], table[:, 1])
        groups = table[earlier, 2].astype(np.int64)
        both = groups == table[later, 2].astype(np.int64)  # a pair keeps one group
        earlier, later, groups = earlier[both], later[both], groups[both]
        directions = self.directions()
        change = mu[torch.from_numpy(later)] - mu[torch.from_numpy(earlier)]
        control = torch.from_numpy(groups == CONTROL)
        patient = torch.from_numpy(groups > CONTROL)
        aging = disease = None
        tau_a = directions[0]
        if bool(control.any()):
            aging = 1.0 - mean_cosine(change[control], tau_a.expand(int(control.sum()), -1))
        if bool(patient.any()):
            fixed = tau_a.detach()
            change_d = change[patient]
            change_d = change_d - (change_d @ fixed)[:, None] * fixed[None, :]
            tau_d = directions[torch.from_numpy(groups[groups > CONTROL])]
            disease = 1.0 - mean_cosine(change_d, tau_d)
        return aging, disease, int(control.sum()), int(patient.sum())
