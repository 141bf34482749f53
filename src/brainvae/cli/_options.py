"""Options and messages shared by `brainvae train` and `brainvae sweep`: the recipe, its
overrides and the training loop, turned into the ModelConfig and TrainConfig the use cases take."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from brainvae.data.dataset import PreparedDataset
    from brainvae.models import ModelConfig
    from brainvae.training import TrainConfig

ARCHITECTURES = ("small", "mouse2d", "flair3d", "ct2d")
NOT_YET = "Sweeps cover the beta-VAE; train a Soft-IntroVAE with `brainvae train`."


def add_training_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by `train` and `sweep`: the recipe, its overrides and the training loop.

    Every option left out takes the recipe's value; --help shows the default recipe's.
    """
    from brainvae.training.recipe import DEFAULT_RECIPE as d
    from brainvae.training.recipe import RECIPES

    parser.add_argument(
        "--recipe",
        choices=tuple(RECIPES),
        default=d.name,
        help=f"settings every option below defaults to (default {d.name}: "
        + d.description.replace("%", "%%")
        + "); the published recipes: "
        + "; ".join(f"{r.name}: {r.description}" for r in RECIPES.values() if r is not d),
    )
    parser.add_argument(
        "--arch",
        choices=ARCHITECTURES,
        help=f"network preset (default: the recipe's; default recipe: {d.architecture}, with more "
        "stride-2 stages for inputs over 160 voxels a side)",
    )
    parser.add_argument(
        "--likelihood",
        choices=("bernoulli", "gaussian"),
        help=f"bernoulli (BCE, data in [0, 1]) or gaussian (squared error) (default: the "
        f"recipe's; default recipe: {d.likelihood})",
    )
    parser.add_argument(
        "--sigma",
        type=float,
        help=f"gaussian: fixed noise sd in data units (NLL with this sigma) (default: the "
        f"recipe's; default recipe: {d.gaussian_sigma}; a recipe without one: plain sum of squared "
        "errors)",
    )
    parser.add_argument(
        "--learn-sigma", action="store_true", help="gaussian: learn one noise sd with the model"
    )
    parser.add_argument(
        "--kl-warmup",
        type=int,
        metavar="STEPS",
        help=f"KL weight rising from 0 to beta over STEPS optimiser steps (default: the "
        f"recipe's; default recipe: {d.kl_warmup_steps}); 0 turns it off",
    )
    parser.add_argument(
        "--capacity",
        type=float,
        metavar="NATS",
        help="capacity annealing (Burgess et al.): KL target rising from 0 to NATS (default off)",
    )
    parser.add_argument(
        "--capacity-steps",
        type=int,
        default=10000,
        help="steps over which the target rises (default %(default)s)",
    )
    parser.add_argument(
        "--capacity-gamma",
        type=float,
        default=1000.0,
        help="weight of |KL - C| (default %(default)s)",
    )
    length = parser.add_mutually_exclusive_group()
    length.add_argument(
        "--steps",
        type=int,
        help=f"optimiser steps to train for, rounded up to whole epochs (default: the "
        f"recipe's; default recipe: {d.steps})",
    )
    length.add_argument(
        "--epochs", type=int, help="passes over the train split, instead of --steps"
    )
    parser.add_argument(
        "--batch",
        type=int,
        help=f"images per step (default: the recipe's; default recipe: {d.batch_size})",
    )
    parser.add_argument(
        "--lr",
        type=float,
        help=f"Adam learning rate (default: the recipe's; default recipe: {d.lr:g})",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seeds weights and data order (default %(default)s)"
    )
    parser.add_argument("--device", default="auto", help="auto (default), cpu, mps, cuda, cuda:N")
    parser.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16"),
        default="auto",
        help="auto (default): bf16 autocast on a CUDA GPU that supports it; on a CPU, bf16 only "
        "if a short probe (about a second, run once per machine and torch version, cached in "
        "$BRAINVAE_CACHE_DIR or ~/.cache/brainvae/precision.json) measured it at least 10%% "
        "faster than fp32, else fp32; fp32 or bf16 force one",
    )
    parser.add_argument(
        "--checkpoint-every",
        type=int,
        default=1,
        metavar="N",
        help="epochs between checkpoints (default %(default)s)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def add_run_folder_options(
    parser: argparse.ArgumentParser, metavar: str, out_help: str, runs: str
) -> None:
    """--out, and --resume or --overwrite for what is already there (`runs` names it)."""
    parser.add_argument("--out", required=True, metavar=metavar, help=out_help)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--resume", action="store_true", help=f"continue {runs}")
    mode.add_argument("--overwrite", action="store_true", help=f"replace {runs}")


def recipe_of(args: argparse.Namespace) -> Any:
    """The recipe named by --recipe (the default recipe when the parser has no such option)."""
    from brainvae.training.recipe import DEFAULT_RECIPE, get_recipe

    name = getattr(args, "recipe", None)
    return DEFAULT_RECIPE if name is None else get_recipe(name)


def model_config(
    args: argparse.Namespace,
    dataset: PreparedDataset,
    *,
    family: str,
    latent: int,
    beta: float | None,
) -> ModelConfig:
    """The ModelConfig for this dataset: the recipe, overridden by the options given."""
    from brainvae.models import ModelError
    from brainvae.usecases.fit_and_save import model_config_for

    if (args.sigma is not None or args.learn_sigma) and (
        args.likelihood or recipe_of(args).likelihood
    ) != "gaussian":
        raise ModelError("--sigma and --learn-sigma need --likelihood gaussian")
    extra: dict[str, Any] = {}
    condition = getattr(args, "condition", None)
    if family == "age_vae":
        if not condition:
            raise ModelError(
                "--model age-vae needs --condition COLUMN: the metadata column to regress "
                "and condition on (e.g. --condition age)"
            )
        extra = {"condition": condition}
    elif condition is not None:
        raise ModelError(
            f"--condition is for --model age-vae only; a {family.replace('_', '-')} model "
            "takes no condition"
        )
    pairing = {
        "subject_column": getattr(args, "subject_column", None),
        "time_column": getattr(args, "time_column", None),
        "group_column": getattr(args, "group", None),
        "control_label": getattr(args, "control", None),
    }
    if family == "longitudinal_vae":
        extra = {**pairing, "direction_weight": args.direction_weight}
    elif any(value is not None for value in pairing.values()):
        raise ModelError(
            "--group, --control, --subject-column and --time-column are for --model "
            f"longitudinal-vae only; a {family.replace('_', '-')} model pairs no visits"
        )
    if family == "soft_intro_vae":
        extra = {
            name: getattr(args, name)
            for name in ("intro_variant", "beta_rec", "beta_kl", "beta_neg", "gamma_r")
            + ("margin", "w_neg")
        }
    return model_config_for(
        recipe_of(args),
        dataset,
        family=family,
        latent_dim=latent,
        architecture=args.arch,
        likelihood=args.likelihood,
        gaussian_sigma=args.sigma,
        learn_sigma=args.learn_sigma,
        beta=beta,
        kl_warmup_steps=getattr(args, "kl_warmup", None),
        capacity_max=args.capacity,
        capacity_anneal_steps=args.capacity_steps,
        capacity_gamma=args.capacity_gamma,
        **extra,
    )


def train_config(args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig from the command-line options (the recipe's where none is given)."""
    from brainvae.training import TrainConfig

    recipe = recipe_of(args)
    return TrainConfig(
        epochs=args.epochs,
        steps=None if args.epochs is not None else (args.steps or recipe.steps),
        batch_size=args.batch if args.batch is not None else recipe.batch_size,
        lr=args.lr if args.lr is not None else recipe.lr,
        seed=args.seed,
        device=args.device,
        precision=args.precision,
        checkpoint_every=args.checkpoint_every,
    )


def cli_words(message: str) -> str:
    """The trainer's Python option names (resume=True) as this command's flags (--resume)."""
    for name in ("resume", "overwrite"):
        message = message.replace(f"{name}=True", f"--{name}")
    return message


def request_defaults(request_class: type) -> dict[str, Any]:
    """A request dataclass's defaults by field name: the one set every front end shares."""
    from dataclasses import MISSING, fields

    found = {}
    for item in fields(request_class):
        if item.default is not MISSING:
            found[item.name] = item.default
        elif item.default_factory is not MISSING:
            found[item.name] = item.default_factory()
    return found


def add_output_options(parser: argparse.ArgumentParser) -> None:
    """--device, --out (required), --overwrite and --quiet: every analysis command's last
    options, spelled and explained once."""
    parser.add_argument("--device", default="cpu", help="cpu (default), auto, mps, cuda, cuda:N")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing DIR")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
