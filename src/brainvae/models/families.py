"""The model families by name: one table for the command line, the docks and config.json.

A family is what config.json's "family" names and what brainvae.models.build_model builds
(beta_vae, soft_intro_vae, pca, age_vae, longitudinal_vae). A choice is what a person picks: the families, plus the
plain VAE, which is the beta_vae family with the KL weight fixed at 1. The command line
spells names with hyphens ("beta-vae", "soft-intro-vae"), Python with underscores; both
spellings are read everywhere. This module imports no model, so any module may read it.
"""

from __future__ import annotations

from dataclasses import dataclass

from brainvae.errors import ModelError


@dataclass(frozen=True)
class FamilyChoice:
    """One model a person can pick: its name, the words shown for it, the family it builds,
    and the KL weight it fixes (None: the person's beta is used)."""

    name: str
    label: str
    family: str
    fixed_beta: float | None = None
    conditioned: bool = False
    """Whether the model needs a condition column (age_vae: `--condition age`)."""
    paired: bool = False
    """Whether the model trains over pairs of visits (longitudinal_vae: `--group`, `--control`)."""

    @property
    def cli_name(self) -> str:
        """The command line's spelling (hyphens): "beta-vae", "soft-intro-vae"."""
        return self.name.replace("_", "-")

    def beta(self, asked: float | None) -> float | None:
        """The KL weight a model of this choice gets when `asked` was asked for."""
        return asked if self.fixed_beta is None else self.fixed_beta


FAMILY_CHOICES: tuple[FamilyChoice, ...] = (
    FamilyChoice("beta_vae", "beta-VAE", "beta_vae"),
    FamilyChoice("vae", "VAE (beta = 1)", "beta_vae", fixed_beta=1.0),
    FamilyChoice("soft_intro_vae", "Soft-IntroVAE", "soft_intro_vae", fixed_beta=1.0),
    FamilyChoice("pca", "PCA baseline", "pca", fixed_beta=1.0),
    FamilyChoice("age_vae", "age-conditioned VAE", "age_vae", conditioned=True),
    FamilyChoice(
        "longitudinal_vae", "longitudinal VAE (aging / disease)", "longitudinal_vae", paired=True
    ),
)
"""Every choice, in the order the dock and `brainvae train --model` list them."""

FAMILY_NAMES: tuple[str, ...] = tuple(dict.fromkeys(choice.family for choice in FAMILY_CHOICES))
"""The families a saved model's config.json may name."""


def family_choice(name: str) -> FamilyChoice:
    """The choice named `name`, in either spelling ("soft-intro-vae" or "soft_intro_vae")."""
    wanted = name.replace("-", "_")
    for choice in FAMILY_CHOICES:
        if choice.name == wanted:
            return choice
    known = ", ".join(choice.cli_name for choice in FAMILY_CHOICES)
    raise ModelError(f"unknown model {name!r}; known: {known}")
