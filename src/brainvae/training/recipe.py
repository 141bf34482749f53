"""Training recipes: the one default that the CLI, the Python API and the Training dock share,
and the published recipes as named presets.

The default learns on populations of ~50 to 5,000 scans in 2D and 3D (measured on phantom
populations unlike the sample: docs/benchmarks.md "Time to a usable model"):
- a small conv net (three stride-2 stages, more for large inputs: sized_network) whose few
  parameters a small population can fit;
- a Gaussian likelihood with sigma 0.05 in [0, 1] grey values: an error of 0.1 on a voxel costs
  2 nats, so ventricles and lesions weigh far more than under BCE on grey values, whose entropy
  floor hides them;
- beta 1 with a linear KL warm-up over the first 300 steps (Bowman et al. 2016;
  Sonderby et al. 2016): while the decoder still learns the mean image, a full KL weight pushes
  every posterior onto the prior and the latents may never come back (posterior collapse);
- training length in optimiser steps, not epochs: 48 training volumes at batch 16 are 3 steps
  an epoch, so "100 epochs" is 300 steps on a small population and 30,000 on a large one. The
  default, 3,000 steps at batch 16 and lr 1e-3, is what the smallest population needs.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Recipe:
    """Model and loop settings of one recipe (the CLI's flags override single values).

    steps: optimiser steps to train for (epochs follow from the training split's size);
    kl_warmup_steps: steps over which the KL weight rises from 0 to beta (fixed, not a share
    of the run, so a resumed run that trains longer keeps the same model).
    """

    name: str
    description: str
    architecture: str
    likelihood: str
    gaussian_sigma: float | None
    beta: float
    batch_size: int
    lr: float
    steps: int
    kl_warmup_steps: int

    def to_dict(self) -> dict:
        return asdict(self)


DEFAULT_RECIPE = Recipe(
    name="default",
    description="small net sized to the input, Gaussian sigma 0.05, beta 1 with a KL warm-up "
    "over the first 300 of 3,000 steps, batch 16, lr 1e-3: learns on 50 to 5,000 scans",
    architecture="small",
    likelihood="gaussian",
    gaussian_sigma=0.05,
    beta=1.0,
    batch_size=16,
    lr=1e-3,
    steps=3000,
    kl_warmup_steps=300,
)


def _published(name: str, description: str, architecture: str, beta: float) -> Recipe:
    """A published recipe: its net and beta; Bernoulli, batch 64, Adam 2e-4, no warm-up."""
    return Recipe(
        name=name,
        description=description,
        architecture=architecture,
        likelihood="bernoulli",
        gaussian_sigma=None,
        beta=beta,
        batch_size=64,
        lr=2e-4,
        steps=DEFAULT_RECIPE.steps,
        kl_warmup_steps=0,
    )


RECIPES: dict[str, Recipe] = {
    "default": DEFAULT_RECIPE,
    "mouse2d-published": _published(
        "mouse2d-published",
        "Liu et al.'s mouse-brain beta-VAE: mouse2d net, Bernoulli, beta 3, batch 64, lr 2e-4 "
        "(their population had 1,700 brains)",
        "mouse2d",
        3.0,
    ),
    "flair3d-published": _published(
        "flair3d-published",
        "Vogelsanger's 3D FLAIR VAE: flair3d net, Bernoulli, beta 1, batch 64, lr 2e-4",
        "flair3d",
        1.0,
    ),
    "ct2d-published": _published(
        "ct2d-published",
        "Ponomareva's CT beta-VAE: ct2d net, Bernoulli, beta 1, batch 64, lr 2e-4",
        "ct2d",
        1.0,
    ),
}


def get_recipe(name: str) -> Recipe:
    """The recipe called name; a ValueError lists the known ones."""
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; known: {', '.join(RECIPES)}")
    return RECIPES[name]


def steps_per_epoch(n_train: int, batch_size: int, drop_last: bool = False) -> int:
    """Optimiser steps in one pass over n_train scans."""
    if n_train < 1 or batch_size < 1:
        raise ValueError(f"need >= 1 training scan and batch size, got {n_train}, {batch_size}")
    return n_train // batch_size if drop_last else math.ceil(n_train / batch_size)


def epochs_for_steps(steps: int, n_train: int, batch_size: int, drop_last: bool = False) -> int:
    """Whole epochs that give at least `steps` optimiser steps (the trainer counts epochs, so
    resume stays exact; the run trains up to one epoch's steps past the target)."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    per_epoch = max(steps_per_epoch(n_train, batch_size, drop_last), 1)
    return math.ceil(steps / per_epoch)


def model_config_from_recipe(
    recipe: Recipe,
    input_shape: tuple[int, ...],
    *,
    latent_dim: int = 8,
    family: str = "beta_vae",
    architecture: str | None = None,
    likelihood: str | None = None,
    gaussian_sigma: float | None = None,
    learn_sigma: bool = False,
    beta: float | None = None,
    kl_warmup_steps: int | None = None,
    **extra: Any,
) -> Any:
    """The ModelConfig a recipe gives for this input, each None taking the recipe's value.

    The "small" net is sized to the input (sized_network); the sigma is the recipe's only
    when the likelihood is the recipe's too.
    """
    from brainvae.models import ModelConfig
    from brainvae.models.networks.presets import sized_network

    architecture = architecture or recipe.architecture
    likelihood = likelihood or recipe.likelihood
    if gaussian_sigma is None and likelihood == recipe.likelihood == "gaussian":
        gaussian_sigma = None if learn_sigma else recipe.gaussian_sigma
    if kl_warmup_steps is None:
        kl_warmup_steps = recipe.kl_warmup_steps
    neural = family != "pca"
    return ModelConfig(
        input_shape=tuple(int(s) for s in input_shape),
        latent_dim=latent_dim,
        family=family,
        architecture=architecture,
        network=sized_network(input_shape) if neural and architecture == "small" else None,
        likelihood=likelihood,
        gaussian_sigma=gaussian_sigma if likelihood == "gaussian" else None,
        learn_sigma=learn_sigma,
        beta=recipe.beta if beta is None else beta,
        kl_warmup_steps=int(kl_warmup_steps) if family == "beta_vae" else 0,
        **extra,
    )
