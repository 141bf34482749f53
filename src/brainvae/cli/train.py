"""`brainvae train`: train a beta-VAE, VAE or Soft-IntroVAE (or fit PCA), with a progress bar."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from brainvae.data.dataset import PreparedDataset
    from brainvae.models import LatentModel, ModelConfig
    from brainvae.training import TrainConfig

MODELS = ("beta-vae", "vae", "soft-intro-vae", "pca")
ARCHITECTURES = ("small", "mouse2d", "flair3d", "ct2d")
DEFAULT_BETA = 1.0
"""The default recipe's beta (training.recipe.DEFAULT_RECIPE; checked by the tests)."""
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


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the `train` sub-command."""
    parser = subparsers.add_parser(
        "train",
        help="train a model on a prepared dataset",
        description=(
            "Train a beta-VAE (or plain VAE, beta = 1) or a Soft-IntroVAE (two Adam "
            "optimisers, encoder and decoder) on the train split of DATASET, "
            "evaluating on its val split each epoch, or fit the PCA baseline. RUN receives "
            "config.json + weights.safetensors (the model), history.csv and checkpoints/. "
            "Ctrl-C stops after the current batch with a checkpoint; --resume continues."
        ),
    )
    parser.add_argument("dataset", metavar="DATASET", help="folder made by `brainvae prepare`")
    parser.add_argument(
        "--model", choices=MODELS, default="beta-vae", help="model family (default %(default)s)"
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
    add_training_options(parser)
    parser.add_argument("--out", required=True, metavar="RUN", help="run folder to write")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--resume", action="store_true", help="continue the run in RUN")
    mode.add_argument("--overwrite", action="store_true", help="replace the run in RUN")
    parser.set_defaults(func=run)
    return parser


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
    from brainvae.training.recipe import model_config_from_recipe

    if (args.sigma is not None or args.learn_sigma) and (
        args.likelihood or recipe_of(args).likelihood
    ) != "gaussian":
        raise ModelError("--sigma and --learn-sigma need --likelihood gaussian")
    extra: dict[str, Any] = {}
    if family == "soft_intro_vae":
        extra = {
            name: getattr(args, name)
            for name in ("intro_variant", "beta_rec", "beta_kl", "beta_neg", "gamma_r")
            + ("margin", "w_neg")
        }
    return model_config_from_recipe(
        recipe_of(args),
        tuple(dataset.sample_shape),
        latent_dim=latent,
        family=family,
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


def run(args: argparse.Namespace) -> int:
    """Train (or fit PCA), print a summary; 130 when stopped by Ctrl-C.

    Under torchrun every process runs this; rank 0 alone shows progress and prints.
    """
    from brainvae.data.dataset import PreparedDataset
    from brainvae.training.distributed import leave, ranks_from_environment

    ranks = ranks_from_environment()
    dataset = PreparedDataset.open(args.dataset)
    if args.model == "pca":
        if not ranks.writes:  # PCA is one fit: rank 0 does it, the others have nothing to do
            return 0
        return fit_pca(args, dataset)
    try:
        return train_model(args, dataset, quiet=args.quiet or not ranks.writes, talk=ranks.writes)
    finally:
        leave()


def train_model(
    args: argparse.Namespace, dataset: PreparedDataset, *, quiet: bool, talk: bool
) -> int:
    """Build the model, train it under a progress bar, print the summary when talk is set."""
    import torch

    from brainvae.models import ModelError, build_model
    from brainvae.training.verdict import dataset_verdict

    beta = 1.0 if args.model in ("vae", "soft-intro-vae") else args.beta  # None: the recipe's
    family = "soft_intro_vae" if args.model == "soft-intro-vae" else "beta_vae"
    config = model_config(args, dataset, family=family, latent=args.latent, beta=beta)
    training = train_config(args)
    torch.manual_seed(training.seed)
    model = build_model(config)
    try:
        result = train_with_progress(
            model,
            dataset,
            training,
            args.out,
            resume=args.resume,
            overwrite=args.overwrite,
            quiet=quiet,
        )
    except ModelError as error:
        raise ModelError(cli_words(str(error))) from error
    if result.reason == "cancelled":
        if talk:
            print(interrupted_message(result, args.out))
        return 130
    if talk:
        print(summary(model, result))
        print(dataset_verdict(model, dataset, result.step).describe())
    return 0


def cli_words(message: str) -> str:
    """The trainer's Python option names (resume=True) as this command's flags (--resume)."""
    for name in ("resume", "overwrite"):
        message = message.replace(f"{name}=True", f"--{name}")
    return message


def train_with_progress(
    model: LatentModel,
    dataset: PreparedDataset,
    config: TrainConfig,
    run_dir: str | Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    quiet: bool = False,
    description: str = "train",
):
    """Drain train() under a tqdm bar; the first Ctrl-C asks the trainer to stop cleanly.

    The trainer then writes a checkpoint and returns a "cancelled" result; a second Ctrl-C
    interrupts at once (the last checkpoint written stays usable).
    """
    import threading

    from brainvae.training import BatchReport, EpochReport, train

    cancel = threading.Event()
    generator = train(
        model, dataset, config, run_dir, resume=resume, overwrite=overwrite, cancel=cancel
    )
    bar = None
    with CtrlCSetsEvent(cancel):
        try:
            while True:
                try:
                    report = next(generator)
                except StopIteration as stop:
                    return stop.value
                if quiet:
                    continue
                if isinstance(report, BatchReport):
                    bar = show_batch(bar, report, description)
                elif isinstance(report, EpochReport) and bar is not None:
                    bar.set_postfix(_epoch_postfix(report), refresh=True)
        finally:
            if bar is not None:
                bar.close()


def show_batch(bar: Any, report: Any, description: str) -> Any:
    """Advance the progress bar (one bar per epoch); a new bar when a new epoch starts."""
    from tqdm import tqdm

    if bar is None or bar.epoch != report.epoch:
        if bar is not None:
            bar.close()
        bar = tqdm(total=report.n_batches, desc=f"{description} epoch {report.epoch}", unit="batch")
        bar.epoch = report.epoch
        bar.update(report.batch - 1)
    bar.update(report.batch - bar.n)
    bar.set_postfix(loss=f"{report.loss:.4g}", img_s=f"{report.images_per_s:.0f}", refresh=False)
    return bar


def _epoch_postfix(report: Any) -> dict[str, str]:
    from brainvae.training.progress import VALIDATION_TAG

    values = {"loss": f"{report.train_loss:.4g}", "active": str(report.active_units)}
    if report.val_loss is not None:
        values[f"val {VALIDATION_TAG}"] = f"{report.val_loss:.4g}"
    return values


class CtrlCSetsEvent:
    """Context: SIGINT sets the event (the trainer then checkpoints); a second one interrupts."""

    def __init__(self, event: Any):
        self.event = event
        self.previous = None

    def __enter__(self) -> CtrlCSetsEvent:
        import signal

        def handler(signum, frame):
            if self.event.is_set():
                raise KeyboardInterrupt
            self.event.set()

        try:
            self.previous = signal.signal(signal.SIGINT, handler)
        except ValueError:  # not the main thread: leave Ctrl-C alone
            self.previous = None
        return self

    def __exit__(self, *exc: object) -> None:
        import signal

        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


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


def _number(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):.4g}"


# -- PCA -----------------------------------------------------------------------------------
def fit_pca(args: argparse.Namespace, dataset: PreparedDataset) -> int:
    """Fit the PCA baseline on the train split and save it to RUN (config.json + weights)."""
    import numpy as np

    from brainvae.data.fingerprint import TRAINING_DATA_KEY, dataset_fingerprint
    from brainvae.data.run_dataset import dataset_record
    from brainvae.models import ModelError, build_model
    from brainvae.training import bernoulli_entropy_floor

    run_dir = Path(args.out)
    if args.resume:
        raise ModelError("PCA is fitted in one go: there is nothing to resume (drop --resume)")
    _check_pca_folder(run_dir, args.overwrite)
    config = model_config(args, dataset, family="pca", latent=args.latent, beta=1.0)
    model = build_model(config)
    train_rows = dataset.indices("train")
    if len(train_rows) == 0:
        raise ModelError(f"{dataset.path}: the dataset has no training split to fit on")
    model.fit(np.asarray(dataset.images[train_rows], dtype=np.float32), random_state=args.seed)
    val_rows = dataset.indices("val")
    rows, split = (val_rows, "val") if len(val_rows) else (train_rows, "train")
    loss = float(model.loss(np.asarray(dataset.images[rows], dtype=np.float32)).total)
    ratio = model.config.training["explained_variance_ratio"]
    floor = (
        bernoulli_entropy_floor(dataset.images, rows) if config.likelihood == "bernoulli" else None
    )
    model.config.preprocessing = dataset.config.to_dict()
    model.save(
        run_dir,
        training={
            **model.config.training,
            "dataset": dataset_record(dataset.path, run_dir),
            TRAINING_DATA_KEY: dataset_fingerprint(dataset),
            f"final_{split}_loss": loss,
            "entropy_floor": floor,
        },
    )
    print(
        f"Fitted PCA, L = {config.latent_dim}, on {len(train_rows)} training images of shape "
        f"{' x '.join(map(str, config.input_shape))}: the components explain "
        f"{100 * sum(ratio):.1f}% of the variance\n"
        f"Reconstruction loss on {split}: {loss:.4g} per image ({config.likelihood})"
        + ("" if floor is None else f", {loss - floor:.4g} nats above the entropy floor")
        + "\n"
        f"Wrote {run_dir}: config.json, weights.safetensors"
    )
    return 0


def _check_pca_folder(run_dir: Path, overwrite: bool) -> None:
    """Refuse a folder holding something unless --overwrite and it is a brainvae run."""
    from brainvae.models import ModelError

    if run_dir.exists() and not run_dir.is_dir():
        raise ModelError(f"{run_dir}: exists and is not a folder; a run is a folder")
    if not run_dir.is_dir() or not any(run_dir.iterdir()):
        return
    is_run = (run_dir / "config.json").is_file() or (run_dir / "run.json").is_file()
    if not overwrite:
        what = "a training run" if is_run else "other files"
        raise ModelError(
            f"{run_dir}: already holds {what}; pass --overwrite to replace it or choose an "
            "empty folder"
        )
    if not is_run:
        raise ModelError(
            f"{run_dir}: is not a brainvae run folder; not deleting its contents even with "
            "--overwrite"
        )
    import shutil

    shutil.rmtree(run_dir)
