"""Benchmark our trainer against a plain PyTorch fp32 loop and pythae's BetaVAE trainer.

Same data (the shipped sample populations, prepared with the `identity` preset), same
network (`build_model(ModelConfig(..., family="beta_vae", architecture=ARCH))`), same initial
weights (torch.manual_seed before every build), same machine, in one run:

- ours:   `brainvae.training.train` with precision "auto" (channels-last model, fused Adam);
- plain:  what a user writes by hand: the same network with channels_last=False, default
          `torch.optim.Adam`, batches read from the same memory map in the same shuffled order,
          `model.loss(x).total.backward()`, step;
- pythae: our encoder/decoder (built with channels_last=False: pythae hands the net plain
          contiguous batches) wrapped in pythae's BaseEncoder/BaseDecoder, pythae's BetaVAE
          (MSE loss, beta halved: its 0.5 * SSE + beta/2 * KL is exactly half our loss, and Adam
          does not see a constant factor) trained by pythae's own BaseTrainer.

Images per second count the training steps of every epoch but the first (a warm-up), data
reading included: for ours, from the start of an epoch to its last batch report (the per-epoch
evaluation and checkpoint come after that and are left out); for pythae, from its "train step
begin" callback to its last "train step end" (its evaluation, best-model copy and logging are
left out). A run's figure is its median epoch (a burst of other work during one epoch does
not set it); the figure printed is the median over repeats. Contenders run in turn, in a
rotating order (ABC, BCA, CAB), so background load hits each alike. Wall time per epoch,
everything included, is printed too. Default: 15 epochs per run in 2D, 5 in 3D, 3 repeats.
For figures to quote, run it on an otherwise idle machine: on a shared 2-core CPU other work
easily changes a contender's speed several-fold between repeats.

Per-epoch mean training loss of ours and plain (same weights, data order and sampling noise;
they differ only by memory layout and fused Adam) is printed with its largest relative
difference, and so is a run of ours with the precision "auto" did not choose (on a CPU "auto"
follows a short measured fp32/bf16 probe, cached per machine), with its speed ratio.

    python benchmarks/bench_training.py              # 2D 128x160 and 3D 40x48x40, ~6 min on 2 cores
    python benchmarks/bench_training.py --quick      # smoke check, under a minute
    python benchmarks/bench_training.py --dims 3 --arch flair3d --json out.json
    python benchmarks/bench_training.py --device cuda   # the same figures on a GPU

pythae is optional (`pip install pythae "torch==<the installed version>"`, so pip keeps torch);
without it the benchmark says so and still compares ours with plain.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import math
import platform
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from brainvae.data.dataset import PreparedDataset
from brainvae.data.prepare import prepare
from brainvae.data.preprocessing import PreprocessConfig
from brainvae.models import ModelConfig, build_model
from brainvae.models.base import LatentModel
from brainvae.training import train
from brainvae.training.config import TrainConfig
from brainvae.training.device import (
    autocast_dtype,
    cpu_precision,
    describe_device,
    resolve_device,
)
from brainvae.training.progress import BatchReport, EpochReport

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = {2: ROOT / "sample_data" / "population_2d", 3: ROOT / "sample_data" / "population_3d"}
GOALS = {2: 1.5, 3: 1.3}
"""The issue's goal for ours / plain on the CPU, by number of spatial axes."""
SEED = 0
LATENT_DIM = 8
BETA = 0.005  # the shipped sample model's: SSE + 0.005 KL (Gaussian NLL with sigma 0.05)
LR = 1e-3
CONTENDERS = ("ours", "plain", "pythae")


@dataclass
class RunResult:
    """One training run of one contender: per-epoch timings and mean training loss."""

    step_s: list[float] = field(default_factory=list)  # training steps only, data reading incl.
    wall_s: list[float] = field(default_factory=list)  # the whole epoch, evaluation etc. incl.
    loss: list[float] = field(default_factory=list)  # mean training loss per image
    images_per_epoch: int = 0
    own_rate: list[float] = field(default_factory=list)  # the trainer's own images/s, if any

    def images_per_s(self) -> float:
        """Throughput of the median epoch after the first (the warm-up).

        The median epoch, not the mean, so a burst of other work on a shared machine during
        one epoch does not set the figure.
        """
        timed = self.step_s[1:]
        return self.images_per_epoch / statistics.median(timed) if timed else math.nan

    def median_wall_s(self) -> float:
        """Median whole-epoch time after the warm-up, evaluation and checkpoint included."""
        return statistics.median(self.wall_s[1:]) if len(self.wall_s) > 1 else math.nan

    def median_step_s(self) -> float:
        """Median training-steps time of an epoch after the warm-up."""
        return statistics.median(self.step_s[1:]) if len(self.step_s) > 1 else math.nan


@dataclass
class Setting:
    """What one setting trains: data, network, batch and epoch counts, device."""

    dims: int
    dataset: PreparedDataset
    arch: str
    epochs: int
    batch: int
    device: torch.device

    @property
    def shape(self) -> tuple[int, ...]:
        """Spatial shape of one sample."""
        return tuple(self.dataset.images.shape[-self.dims :])

    @property
    def label(self) -> str:
        """E.g. "2D 128x160 (small)"."""
        return f"{self.dims}D {'x'.join(map(str, self.shape))} ({self.arch})"

    def model(self, channels_last: bool) -> LatentModel:
        """The network every contender trains, from the same seed: same initial weights."""
        torch.manual_seed(SEED)
        config = ModelConfig(
            input_shape=self.shape,
            latent_dim=LATENT_DIM,
            family="beta_vae",
            architecture=self.arch,
            likelihood="gaussian",
            beta=BETA,
            channels_last=channels_last,
        )
        return build_model(config)


# -- contenders ----------------------------------------------------------------------------
def run_ours(setting: Setting, work: Path, precision: str = "auto", epochs: int = 0) -> RunResult:
    """Our trainer; step time runs from an epoch's start to its last BatchReport."""
    epochs = epochs or setting.epochs
    model = setting.model(channels_last=True)
    config = TrainConfig(
        epochs=epochs,
        batch_size=setting.batch,
        lr=LR,
        seed=SEED,
        device=str(setting.device),
        precision=precision,
    )
    run_dir = Path(tempfile.mkdtemp(prefix="ours-", dir=work))
    result = RunResult(images_per_epoch=len(setting.dataset.indices("train")))
    start = last_batch = time.perf_counter()
    for report in train(model, setting.dataset, config, run_dir):
        now = time.perf_counter()
        if isinstance(report, BatchReport):
            last_batch = now
        elif isinstance(report, EpochReport):
            result.step_s.append(last_batch - start)
            result.wall_s.append(now - start)
            result.loss.append(report.train_loss)
            result.own_rate.append(report.images_per_s)
            start = time.perf_counter()
    return result


def run_plain(setting: Setting, work: Path) -> RunResult:
    """A hand-written fp32 loop: default Adam, no channels-last, same data order and noise."""
    device = setting.device
    model = setting.model(channels_last=False).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    images, rows = setting.dataset.images, setting.dataset.indices("train")
    data_order = torch.Generator().manual_seed(SEED)
    torch.manual_seed(SEED)  # as our trainer does: the same reparameterisation noise
    n_batches = math.ceil(len(rows) / setting.batch)
    result = RunResult(images_per_epoch=len(rows))
    model.train()
    for _ in range(setting.epochs):
        start = time.perf_counter()
        order = torch.randperm(len(rows), generator=data_order)
        total = 0.0
        for b in range(n_batches):
            batch_rows = rows[order[b * setting.batch : (b + 1) * setting.batch].numpy()]
            x = torch.from_numpy(np.array(images[batch_rows], dtype=np.float32)).to(device)
            optimizer.zero_grad()
            loss = model.loss(x)
            loss.total.backward()
            optimizer.step()
            total += loss.total.item() * len(batch_rows)
        _sync(device)
        result.step_s.append(time.perf_counter() - start)
        result.wall_s.append(result.step_s[-1])
        result.loss.append(total / len(rows))
    return result


def pythae_problem() -> str | None:
    """Why pythae cannot run here (not installed, fails to import), or None when it can."""
    try:
        import pythae  # noqa: F401
        from pythae.models import BetaVAE, BetaVAEConfig  # noqa: F401
        from pythae.trainers import BaseTrainer, BaseTrainerConfig  # noqa: F401
    except Exception as error:  # any import failure means: no pythae figures, say why
        return f"{type(error).__name__}: {error}"
    return None


def run_pythae(setting: Setting, work: Path) -> RunResult:
    """pythae's BetaVAE with our encoder/decoder, trained by pythae's own BaseTrainer."""
    from pythae.data.datasets import BaseDataset
    from pythae.models import BetaVAE, BetaVAEConfig
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder
    from pythae.trainers import BaseTrainer, BaseTrainerConfig
    from pythae.trainers.training_callbacks import TrainingCallback

    class Encoder(BaseEncoder):
        """Our ConvEncoder, answering in pythae's ModelOutput."""

        def __init__(self, net: torch.nn.Module):
            BaseEncoder.__init__(self)
            self.net = net

        def forward(self, x: torch.Tensor) -> ModelOutput:
            mu, logvar = self.net(x)
            return ModelOutput(embedding=mu, log_covariance=logvar)

    class Decoder(BaseDecoder):
        """Our ConvDecoder, answering in pythae's ModelOutput."""

        def __init__(self, net: torch.nn.Module):
            BaseDecoder.__init__(self)
            self.net = net

        def forward(self, z: torch.Tensor) -> ModelOutput:
            return ModelOutput(reconstruction=self.net(z))

    class Clock(TrainingCallback):
        """Timestamps of pythae's epoch and training-step events, and its logged losses."""

        def __init__(self) -> None:
            self.epoch_begin: list[float] = []
            self.steps_begin: list[float] = []
            self.last_step: list[float] = []
            self.losses: list[float] = []
            self.end = 0.0

        def on_epoch_begin(self, training_config: Any, **kwargs: Any) -> None:
            self.epoch_begin.append(time.perf_counter())

        def on_train_step_begin(self, training_config: Any, **kwargs: Any) -> None:
            self.steps_begin.append(time.perf_counter())
            self.last_step.append(self.steps_begin[-1])

        def on_train_step_end(self, training_config: Any, **kwargs: Any) -> None:
            self.last_step[-1] = time.perf_counter()

        def on_log(self, training_config: Any, logs: dict, **kwargs: Any) -> None:
            self.losses.append(float(logs["train_epoch_loss"]))

        def on_train_end(self, training_config: Any, **kwargs: Any) -> None:
            self.end = time.perf_counter()

    ours = setting.model(channels_last=False)
    channel_shape = (1, *setting.shape)
    model = BetaVAE(
        BetaVAEConfig(
            input_dim=channel_shape,
            latent_dim=LATENT_DIM,
            beta=BETA / 2,
            reconstruction_loss="mse",
        ),
        encoder=Encoder(ours.encoder),
        decoder=Decoder(ours.decoder),
    )
    images = setting.dataset.images

    def pythae_data(split: str) -> BaseDataset:
        rows = setting.dataset.indices(split)
        data = torch.from_numpy(np.array(images[rows], dtype=np.float32)).reshape(
            -1, *channel_shape
        )
        return BaseDataset(data, torch.zeros(len(rows)))

    has_val = len(setting.dataset.indices("val")) > 0
    config = BaseTrainerConfig(
        output_dir=tempfile.mkdtemp(prefix="pythae-", dir=work),
        num_epochs=setting.epochs,
        per_device_train_batch_size=setting.batch,
        per_device_eval_batch_size=setting.batch,
        learning_rate=LR,
        seed=SEED,
        no_cuda=setting.device.type != "cuda",
    )
    clock = Clock()
    chatter = io.StringIO()  # pythae's progress bars (tqdm) and console log go here, unshown
    logging.disable(logging.INFO)  # its loggers hold handlers made at import, on the real stdout
    try:
        with contextlib.redirect_stdout(chatter), contextlib.redirect_stderr(chatter):
            trainer = BaseTrainer(
                model=model,
                train_dataset=pythae_data("train"),
                eval_dataset=pythae_data("val") if has_val else None,
                training_config=config,
                callbacks=[clock],
            )
            trainer.train()
    finally:
        logging.disable(logging.NOTSET)
    result = RunResult(images_per_epoch=len(setting.dataset.indices("train")))
    result.step_s = [
        end - begin for begin, end in zip(clock.steps_begin, clock.last_step, strict=True)
    ]
    ends = [*clock.epoch_begin[1:], clock.end]
    result.wall_s = [end - begin for begin, end in zip(clock.epoch_begin, ends, strict=True)]
    result.loss = [2 * v for v in clock.losses]  # back to our scale: SSE + beta * KL
    return result


def _sync(device: torch.device) -> None:
    """Wait for the GPU so wall-clock times cover the work queued on it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# -- one setting ---------------------------------------------------------------------------
def bench_setting(setting: Setting, repeats: int, precision_epochs: int, work: Path) -> dict:
    """All contenders for `repeats` rounds in rotating order; loss and precision checks."""
    problem = pythae_problem()
    runners: dict[str, Callable[[Setting, Path], RunResult]] = {
        "ours": run_ours,
        "plain": run_plain,
    }
    if problem is None:
        runners["pythae"] = run_pythae
    same = same_initial_weights(setting)
    runs: dict[str, list[RunResult]] = {name: [] for name in runners}
    names = list(runners)
    print(
        f"\n== {setting.label}: {setting.dataset.indices('train').size} training images, "
        f"batch {setting.batch}, {setting.epochs} epochs per run (first one warm-up), "
        f"{repeats} repeat(s)",
        flush=True,
    )
    for repeat in range(repeats):
        order = names[repeat % len(names) :] + names[: repeat % len(names)]
        for name in order:
            try:
                result = runners[name](setting, work)
            except Exception as error:
                if name != "pythae":
                    raise
                problem = f"pythae training failed: {type(error).__name__}: {error}"
                traceback.print_exc()
                runners.pop(name)
                names.remove(name)
                continue
            runs[name].append(result)
            print(
                f"  repeat {repeat + 1} {name:6s} {result.images_per_s():8.1f} images/s; "
                f"epoch wall s {_fmt(result.wall_s, '.2f')}",
                flush=True,
            )
    runs = {name: found for name, found in runs.items() if found}
    precision = compare_precision(setting, runs["ours"][0], precision_epochs, work)
    result = summarise(setting, runs, problem, precision)
    result["same_initial_weights"] = same
    return result


def same_initial_weights(setting: Setting) -> bool:
    """Whether the channels-last and the plain build start from exactly the same weights."""
    first = setting.model(channels_last=True).state_dict()
    second = setting.model(channels_last=False).state_dict()
    return first.keys() == second.keys() and all(
        torch.equal(first[name], second[name]) for name in first
    )


def compare_precision(setting: Setting, auto: RunResult, epochs: int, work: Path) -> dict:
    """Ours with the precision "auto" did not pick, against the auto run's first epochs."""
    chosen = autocast_dtype("auto", setting.device, setting.dims)
    chosen_name = "bf16" if chosen is not None else "fp32"
    other = "fp32" if chosen is not None else "bf16"
    epochs = max(2, min(epochs, setting.epochs))
    result = run_ours(setting, work, precision=other, epochs=epochs)
    reference = RunResult(
        auto.step_s[:epochs], auto.wall_s[:epochs], auto.loss[:epochs], auto.images_per_epoch
    )
    return {
        "auto_chose": chosen_name,
        "other": other,
        "epochs": epochs,
        "loss_auto": reference.loss,
        "loss_other": result.loss,
        "max_rel_diff": _max_rel_diff(reference.loss, result.loss),
        "images_per_s_auto": reference.images_per_s(),
        "images_per_s_other": result.images_per_s(),
    }


def summarise(
    setting: Setting, runs: dict[str, list[RunResult]], problem: str | None, precision: dict
) -> dict:
    """Medians, ratios, goal verdict and loss curves of one setting, JSON-ready."""
    rates = {name: [r.images_per_s() for r in found] for name, found in runs.items()}
    median = {name: statistics.median(values) for name, values in rates.items()}
    goal = GOALS[setting.dims] if setting.device.type == "cpu" else None
    vs_plain = median["ours"] / median["plain"]
    return {
        "setting": setting.label,
        "dims": setting.dims,
        "shape": list(setting.shape),
        "arch": setting.arch,
        "device": describe_device(setting.device),
        "n_train": int(setting.dataset.indices("train").size),
        "batch": setting.batch,
        "epochs": setting.epochs,
        "images_per_s": rates,
        "median_images_per_s": median,
        "ours_own_images_per_s": statistics.median(v for r in runs["ours"] for v in r.own_rate[1:])
        if setting.epochs > 1
        else math.nan,
        "median_epoch_wall_s": {
            name: statistics.median(r.median_wall_s() for r in found)
            for name, found in runs.items()
        },
        "median_epoch_step_s": {
            name: statistics.median(r.median_step_s() for r in found)
            for name, found in runs.items()
        },
        "runs": runs,
        "ours_over_plain": vs_plain,
        "ours_over_pythae": median["ours"] / median["pythae"] if "pythae" in median else None,
        "goal_ours_over_plain": goal,
        "goal_met": None if goal is None else vs_plain >= goal,
        "pythae_problem": problem,
        "loss_ours": runs["ours"][0].loss,
        "loss_plain": runs["plain"][0].loss,
        "loss_max_rel_diff": _max_rel_diff(runs["ours"][0].loss, runs["plain"][0].loss),
        "loss_pythae": runs["pythae"][0].loss if "pythae" in runs else None,
        "precision": precision,
    }


# -- printing ------------------------------------------------------------------------------
def print_summary(result: dict) -> None:
    """The table, loss curves and precision comparison of one setting."""
    median, rates = result["median_images_per_s"], result["images_per_s"]
    print(
        f"\n{result['setting']} on {result['device']}, batch {result['batch']}, "
        f"{result['n_train']} training images, median of {len(rates['ours'])} repeat(s)"
    )
    print(
        f"  {'contender':10s} {'images/s':>9s}  {'each repeat':24s} {'epoch: steps s':>14s} "
        f"{'wall s':>7s}"
    )
    for name in CONTENDERS:
        if name in median:
            print(
                f"  {name:10s} {median[name]:9.1f}  {_fmt(rates[name], '.1f'):24s} "
                f"{result['median_epoch_step_s'][name]:14.3f} "
                f"{result['median_epoch_wall_s'][name]:7.3f}"
            )
        else:
            print(f"  {name:10s} {'n/a':>9s}  {result['pythae_problem']}")
    print(
        "  (images/s: training steps with data reading, median epoch after the warm-up, "
        "median of repeats;\n   wall: the whole epoch incl. ours' evaluation + history + "
        "checkpoint, pythae's evaluation + best-model copy + logging)"
    )
    print(
        f"  (ours' own BatchReport rate, steps without data reading: "
        f"{result['ours_own_images_per_s']:.1f} images/s)"
    )
    goal = result["goal_ours_over_plain"]
    verdict = (
        "no CPU goal on this device"
        if goal is None
        else f"goal >= {goal:.1f}x: {'met' if result['goal_met'] else 'NOT met'}"
    )
    print(f"  ours / plain  = {result['ours_over_plain']:.2f}x   ({verdict})")
    if result["ours_over_pythae"] is not None:
        print(f"  ours / pythae = {result['ours_over_pythae']:.2f}x")
    print(
        "  mean training loss per epoch (SSE + beta KL per image), same data order; initial "
        f"weights identical: {'yes' if result['same_initial_weights'] else 'NO'}"
    )
    print(f"    ours   {_fmt(result['loss_ours'], '.2f')}")
    print(f"    plain  {_fmt(result['loss_plain'], '.2f')}")
    print(f"    max relative difference ours vs plain: {result['loss_max_rel_diff']:.2e}")
    if result["loss_pythae"] is not None:
        print(
            f"    pythae {_fmt(result['loss_pythae'], '.2f')}  (x2 to our scale; mean of batch "
            "means, its own shuffling: for reference only)"
        )
    p = result["precision"]
    print(f"  precision: auto chose {p['auto_chose']}; {p['other']} for {p['epochs']} epochs:")
    print(f"    {p['auto_chose']:5s} {_fmt(p['loss_auto'], '.2f')}")
    print(f"    {p['other']:5s} {_fmt(p['loss_other'], '.2f')}")
    ratio = p["images_per_s_other"] / p["images_per_s_auto"]
    print(
        f"    max relative difference {p['max_rel_diff']:.2e}; speed {p['other']}/"
        f"{p['auto_chose']} = {ratio:.2f}x ({p['images_per_s_other']:.1f} vs "
        f"{p['images_per_s_auto']:.1f} images/s, epochs after the first)"
    )


def print_header(device: torch.device, dims_list: tuple[int, ...]) -> None:
    """Device, CPU, library versions and why "auto" picks the precision it does."""
    cpu = _cpu_name()
    print(f"device: {describe_device(device)}; CPU: {cpu}, {torch.get_num_threads()} torch threads")
    print(
        f"torch {torch.__version__}, python {platform.python_version()}, "
        f"pythae {_version('pythae')}"
    )
    for dims in dims_list:
        chosen = autocast_dtype("auto", device, dims)
        if device.type == "cpu":
            probe = cpu_precision(dims)
            why = (
                f"the {dims}D probe measured {probe.fp32_s * 1e3:.1f} ms/step fp32, "
                f"{probe.bf16_s * 1e3:.1f} ms/step bf16" + (" (cached)" if probe.cached else "")
            )
        elif device.type == "cuda":
            why = "the GPU " + ("supports" if torch.cuda.is_bf16_supported() else "lacks") + " bf16"
        else:
            why = "autocast is only used on CPU and CUDA"
        print(f'precision "auto" ({dims}D) -> {"bf16" if chosen is not None else "fp32"}: {why}')


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def _fmt(values: list[float], spec: str) -> str:
    return " ".join(format(v, spec) for v in values)


def _max_rel_diff(a: list[float], b: list[float]) -> float:
    pairs = list(zip(a, b, strict=True))
    return max(abs(x - y) / max(abs(x), abs(y), 1e-12) for x, y in pairs) if pairs else math.nan


# -- data and main -------------------------------------------------------------------------
def open_data(dims: int, data_dir: Path | None, work: Path) -> PreparedDataset:
    """The sample population prepared with the identity preset (reused from --data-dir)."""
    if data_dir is not None and (data_dir / f"{dims}d" / "dataset.json").is_file():
        return PreparedDataset.open(data_dir / f"{dims}d")
    out = (data_dir or work) / f"{dims}d"
    out.parent.mkdir(parents=True, exist_ok=True)
    sample = SAMPLES[dims]
    return prepare(
        sample / "images",
        out,
        PreprocessConfig.identity(),
        csv=sample / "subjects.csv",
        workers=1,
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; --quick shrinks everything to a smoke check."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dims", choices=("2", "3", "both"), default="both")
    parser.add_argument(
        "--arch",
        default="small",
        help="network preset: small (default), mouse2d (2D) or flair3d (3D); "
        "with --dims both, mouse2d or flair3d means each setting's published net",
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="epochs per run, the first a warm-up (default 2D: 15, 3D: 5)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs per contender (median)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument(
        "--precision-epochs", type=int, default=3, help="epochs of the fp32 vs bf16 comparison"
    )
    parser.add_argument(
        "--device",
        default="auto",
        help="cpu, cuda[:N], or auto (default): the CPU, then the GPU if any",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="prepare the data here once and reuse it (default: a temp folder)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--quick", action="store_true", help="tiny run, a smoke check")
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.repeats, args.precision_epochs = args.epochs or 2, 1, 2
    if args.epochs is not None and args.epochs < 2:
        parser.error("--epochs must be at least 2 (the first is a warm-up)")
    return args


def main(argv: list[str] | None = None) -> int:
    """Prepare the data, benchmark each setting, print tables, optionally write JSON."""
    args = parse_args(argv)
    devices = [torch.device("cpu")] if args.device == "auto" else [resolve_device(args.device)]
    if args.device == "auto" and torch.cuda.is_available():
        devices.append(resolve_device("cuda"))
    dims_list = (2, 3) if args.dims == "both" else (int(args.dims),)
    for device in devices:
        print_header(device, dims_list)
    problem = pythae_problem()
    if problem is not None:
        print(f"pythae: NOT available, comparing ours with plain only ({problem})")
    results = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_training-") as tmp:
        work = Path(tmp)
        datasets = {dims: open_data(dims, args.data_dir, work) for dims in dims_list}
        for device in devices:
            for dims in dims_list:
                arch = args.arch
                if args.dims == "both" and arch in ("mouse2d", "flair3d"):
                    arch = "mouse2d" if dims == 2 else "flair3d"
                epochs = args.epochs or (15 if dims == 2 else 5)
                setting = Setting(dims, datasets[dims], arch, epochs, args.batch, device)
                results.append(bench_setting(setting, args.repeats, args.precision_epochs, work))
    print("\n" + "=" * 88)
    for result in results:
        print_summary(result)
    print(f"\ntotal benchmark time {time.perf_counter() - started:.0f} s")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        header = [_header_dict(device) for device in devices]
        args.json.write_text(
            json.dumps({"header": header, "settings": results}, indent=2, default=_json_default)
            + "\n"
        )
        print(f"wrote {args.json}")
    return 0


def _header_dict(device: torch.device) -> dict[str, Any]:
    return {
        "device": describe_device(device),
        "cpu": _cpu_name(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "pythae": _version("pythae"),
        "auto_precision": "bf16" if autocast_dtype("auto", device) is not None else "fp32",
        "argv": sys.argv[1:],
    }


def _json_default(value: Any) -> Any:
    if isinstance(value, RunResult):
        return asdict(value)
    return str(value)


if __name__ == "__main__":
    sys.exit(main())
