"""`brainvae train`: train a beta-VAE, VAE, Soft-IntroVAE, age-conditioned VAE or longitudinal
VAE (or fit PCA), with a progress bar."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from brainvae.cli._options import add_run_folder_options, add_training_options

if TYPE_CHECKING:
    from brainvae.data.dataset import PreparedDataset
    from brainvae.models import LatentModel

DEFAULT_BETA = 1.0
"""The default recipe's beta (training.recipe.DEFAULT_RECIPE; checked by the tests)."""


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the `train` sub-command."""
    from brainvae.models.families import FAMILY_CHOICES

    parser = subparsers.add_parser(
        "train",
        help="train a model on a prepared dataset",
        description=(
            "Train a beta-VAE (or plain VAE, beta = 1), a Soft-IntroVAE (two Adam "
            "optimisers, encoder and decoder), an age-conditioned VAE (--condition age) "
            "or a longitudinal VAE (aging and disease directions over visit pairs: --group, "
            "--control) on the train split of DATASET, "
            "evaluating on its val split each epoch, or fit the PCA baseline. RUN receives "
            "config.json + weights.safetensors (the model), history.csv and checkpoints/. "
            "Ctrl-C stops after the current batch with a checkpoint; --resume continues."
        ),
    )
    parser.add_argument("dataset", metavar="DATASET", help="folder made by `brainvae prepare`")
    parser.add_argument(
        "--model",
        choices=[choice.cli_name for choice in FAMILY_CHOICES],
        default="beta-vae",
        help="model family (default %(default)s)",
    )
    parser.add_argument("--latent", type=int, default=8, help="latent size L (default 8)")
    parser.add_argument(
        "--beta",
        type=float,
        help=f"KL weight (beta-vae; default: the recipe's; default recipe: {DEFAULT_BETA:g})",
    )
    intro = parser.add_argument_group(
        "soft-intro-vae options (Daniel & Tamar 2021; margin: Huang 2018)"
    )
    intro.add_argument(
        "--intro-variant", choices=("soft", "margin"), default="soft", help="(default %(default)s)"
    )
    intro.add_argument(
        "--beta-rec", type=float, default=1.0, help="reconstruction weight (default %(default)s)"
    )
    intro.add_argument(
        "--beta-kl", type=float, default=1.0, help="KL weight of real images (default %(default)s)"
    )
    intro.add_argument(
        "--beta-neg",
        type=float,
        default=256.0,
        help="KL weight of generated ones (default %(default)s)",
    )
    intro.add_argument(
        "--gamma-r", type=float, default=1e-8, help="weight of fakes' reconstruction"
    )
    intro.add_argument(
        "--margin",
        type=float,
        default=120.0,
        help="margin variant: hinge margin (default %(default)s)",
    )
    intro.add_argument(
        "--w-neg",
        type=float,
        default=0.5,
        help="margin variant: hinge weight (the hinge is also scaled by --beta-kl, as in "
        "Huang et al.'s code; default %(default)s)",
    )
    age = parser.add_argument_group("age-vae options (Zhao et al. 2019)")
    age.add_argument(
        "--condition",
        metavar="COLUMN",
        help="age-vae (required): the metadata column the model regresses and conditions its "
        "prior on, e.g. age; after training the regressor's 'brain age' is scored on the test "
        "split (Pearson r, mean absolute error)",
    )
    add_pairing_options(parser)
    add_training_options(parser)
    add_run_folder_options(parser, "RUN", "run folder to write", "the run in RUN")
    parser.set_defaults(func=run)
    return parser


def add_pairing_options(parser: argparse.ArgumentParser) -> None:
    """The longitudinal VAE's options; their defaults are `brainvae longitudinal`'s."""
    from brainvae.longitudinal.request import LongitudinalRequest
    from brainvae.models.config import DEFAULT_DIRECTION_WEIGHT

    asked = LongitudinalRequest()
    pairs = parser.add_argument_group(
        "longitudinal-vae options (Ouyang et al. 2022): batches hold whole subjects; the "
        "changes between a subject's consecutive visits are pulled onto a learned aging "
        "direction (controls) and a disease direction per other group"
    )
    pairs.add_argument(
        "--group",
        metavar="COLUMN",
        help=f"the column giving each subject's group (default: {asked.group})",
    )
    pairs.add_argument(
        "--control",
        metavar="VALUE",
        help=f"the group value of the healthy controls (default: {asked.control})",
    )
    pairs.add_argument(
        "--subject-column",
        metavar="COLUMN",
        help=f"the column naming each scan's subject (default: {asked.subject})",
    )
    pairs.add_argument(
        "--time-column",
        metavar="COLUMN",
        help=f"the numeric column ordering a subject's visits (default: {asked.age})",
    )
    pairs.add_argument(
        "--direction-weight",
        type=float,
        default=DEFAULT_DIRECTION_WEIGHT,
        help="weight of the two cosine terms, nats per unit of (1 - cos) (default %(default)s)",
    )


def run(args: argparse.Namespace) -> int:
    """Train (or fit PCA), print a summary; 130 when stopped by Ctrl-C.

    Under torchrun every process runs this; rank 0 alone shows progress and prints.
    """
    from brainvae.data.dataset import PreparedDataset
    from brainvae.training.distributed import leave, ranks_from_environment

    ranks = ranks_from_environment()
    dataset = PreparedDataset.open(args.dataset)
    if args.model == "pca" and not ranks.writes:
        return 0  # PCA is one fit: rank 0 does it, the others have nothing to do
    try:
        return train_model(args, dataset, quiet=args.quiet or not ranks.writes, talk=ranks.writes)
    finally:
        if args.model != "pca":
            leave()


def train_model(
    args: argparse.Namespace, dataset: PreparedDataset, *, quiet: bool, talk: bool
) -> int:
    """Build the model, fit it under a progress bar, print the summary when talk is set."""
    import threading

    from brainvae.cli._console import CtrlCSetsEvent, epoch_postfix, show_batch
    from brainvae.cli._options import cli_words, model_config, train_config
    from brainvae.models import ModelError, family_choice
    from brainvae.training import BatchReport, EpochReport
    from brainvae.training.verdict import dataset_verdict
    from brainvae.usecases.fit_and_save import PcaFit, fit_and_save, new_model

    choice = family_choice(args.model)
    beta = choice.beta(args.beta)  # None: the recipe's
    config = model_config(args, dataset, family=choice.family, latent=args.latent, beta=beta)
    training = train_config(args)
    model = new_model(config, training.seed)
    cancel = threading.Event()
    reports = fit_and_save(
        model, dataset, training, args.out, resume=args.resume, overwrite=args.overwrite,
        cancel=cancel,
    )  # fmt: skip
    bar = None
    try:
        with CtrlCSetsEvent(cancel):  # the first Ctrl-C: a clean stop with a checkpoint
            while True:
                try:
                    report = next(reports)
                except StopIteration as stop:
                    result = stop.value
                    break
                if quiet:
                    continue
                if isinstance(report, BatchReport):
                    bar = show_batch(bar, report, "train")
                elif isinstance(report, EpochReport) and bar is not None:
                    bar.set_postfix(epoch_postfix(report), refresh=True)
    except ModelError as error:
        raise ModelError(cli_words(str(error))) from error
    finally:
        if bar is not None:
            bar.close()
    if isinstance(result, PcaFit):
        if talk:
            print(pca_summary(model, result))
        return 0
    if result.reason == "cancelled":
        if talk:
            print(interrupted_message(result, args.out))
        return 130
    if talk:
        print(summary(model, result))
        print(dataset_verdict(model, dataset, result.step).describe())
        if config.family == "age_vae":
            from brainvae.analysis.brain_age import dataset_brain_age

            print(dataset_brain_age(model, dataset).describe())
        if config.family == "longitudinal_vae":
            from brainvae.analysis.trained_directions import dataset_direction_agreement

            print(dataset_direction_agreement(model, dataset).describe())
    return 0


def interrupted_message(result: Any, run_dir: str | Path) -> str:
    """What was kept and how to continue after Ctrl-C."""
    from brainvae.training import latest_checkpoint

    checkpoint = latest_checkpoint(run_dir)
    return (
        f"Interrupted after {result.epochs_completed} complete epoch(s); checkpoint "
        f"{checkpoint} and the model so far are in {run_dir}.\n"
        "To continue, run the same command again with --resume added."
    )


def summary(model: LatentModel, result: Any) -> str:
    """Epochs, final losses, reconstruction net of the entropy floor, active units, files."""
    from brainvae.training.progress import VALIDATION_NOTE

    info = model.config.training
    config = model.config
    last = result.history[-1] if result.history else {}
    seconds = last.get("elapsed_s") or 0.0
    what = "VAE" if config.beta == 1 else f"beta-VAE (beta {config.beta:g})"
    if config.family == "soft_intro_vae":
        what = "Soft-IntroVAE" if config.intro_variant == "soft" else "IntroVAE (margin)"
    if config.family == "age_vae":
        what = f"VAE conditioned on {config.condition} (beta {config.beta:g})"
    if config.family == "longitudinal_vae":
        what = (
            f"longitudinal VAE (beta {config.beta:g}, directions weighted "
            f"{config.direction_weight:g}; controls: {config.group_column} = "
            f"{config.control_label})"
        )
    lines = [
        f"Trained a {what}, L = {config.latent_dim}, arch {config.architecture}, input "
        f"{' x '.join(map(str, config.input_shape))}: {result.epochs_completed} epoch(s), "
        f"{result.step} steps, {seconds:.1f} s on {info.get('device')}"
        + (f" x {info['processes']} processes" if info.get("processes", 1) > 1 else "")
        + f", {info.get('precision')}",
        f"Final loss per image: train {_number(last.get('train_loss'))} (z sampled), "
        f"val {_number(last.get('val_loss'))} nats ({VALIDATION_NOTE})",
    ]
    net, floor = last.get("reconstruction_net"), info.get("entropy_floor")
    if net is not None and floor is not None:
        lines.append(
            f"Reconstruction: {_number(net)} nats above the data's entropy floor "
            f"({_number(floor)} nats/image, the least BCE a perfect model reaches)"
        )
    else:
        lines.append(f"Reconstruction: {_number(last.get('val_reconstruction'))} per image")
    lines.append(
        f"Active latents: {last.get('active_units')} of {config.latent_dim} "
        "(variance of the posterior means over the validation scans > 0.01)"
    )
    lines.append(
        f"Wrote {result.run_dir}: config.json, weights.safetensors, history.csv, checkpoints/"
    )
    return "\n".join(lines)


def pca_summary(model: LatentModel, fit: Any) -> str:
    """What the PCA explains, its reconstruction loss (net of the entropy floor), the files."""
    config = model.config
    floor = fit.entropy_floor
    return (
        f"Fitted PCA, L = {config.latent_dim}, on {fit.n_train} training images of shape "
        f"{' x '.join(map(str, config.input_shape))}: the components explain "
        f"{100 * sum(fit.explained_variance_ratio):.1f}% of the variance\n"
        f"Reconstruction loss on {fit.split}: {fit.loss:.4g} per image ({config.likelihood})"
        + ("" if floor is None else f", {fit.loss - floor:.4g} nats above the entropy floor")
        + "\n"
        f"Wrote {fit.run_dir}: config.json, weights.safetensors"
    )


def _number(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):.4g}"
