"""Time to a usable model: the default recipe on a fresh phantom population unlike the sample.

Renders a population nobody tuned on (2D: an axial slice, 144 x 120 at 1.25 mm, ~340 scans of
230 subjects; 3D: 60 volumes of 60 subjects at 4 mm, no repeat visits, another seed), prepares
it with the default preprocessing, trains the default recipe (TrainConfig() and
model_config_from_recipe(DEFAULT_RECIPE, ...), exactly what `brainvae train DATASET` does) and,
every --check-every steps, pauses the clock and checks the bar of
brainvae.analysis.factor_recovery on the held-out scans (val + test): at least half the
latents active, the ventricle-volume latent active with |r| >= 0.8, ranked first for the
ventricle ROI by the receptive field, and enriched >= 3x there in its projective field.
Prints the training time until the bar is first met, and how far the training ran from this
machine's measured arithmetic throughput (the net's FLOPs per step, counted by torch, against
a timed matmul and conv probe measured in the same run).

    python benchmarks/bench_time_to_usable.py --dims 2
    python benchmarks/bench_time_to_usable.py --dims 3
    python benchmarks/bench_time_to_usable.py --dims 2 --device cuda   # on a GPU
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np


def population(dims: int, folder: Path, workers: int, ventricles: str = "age") -> Path:
    """Render (once) the phantom population unlike the sample, then prepare it by default.

    ventricles: "age" (the phantom's default: ventricle volume follows age at r = 0.97, so no
    latent can hold the ventricles apart from aging) or "independent" (a planted factor)."""
    from brainvae.data.phantom import PopulationConfig, build_population
    from brainvae.data.prepare import prepare

    tag = f"{dims}d_{ventricles}"
    raw, prepared = folder / f"phantom_{tag}", folder / f"dataset_{tag}"
    if not (raw / "subjects.csv").is_file():
        if dims == 2:
            config = PopulationConfig(dims=2, orientation="axial", n_subjects=230, seed=11,
                                      ventricles=ventricles)  # fmt: skip
        else:
            config = PopulationConfig(dims=3, n_subjects=60, seed=5, longitudinal_share=0.0,
                                      ventricles=ventricles)  # fmt: skip
        build_population(config, raw, overwrite=True, workers=workers, progress=False)
    if not (prepared / "dataset.json").is_file():
        prepare(raw / "images", prepared, csv=raw / "subjects.csv", overwrite=True, workers=1)
    return raw


def probe_flops_per_second(device: str, dims: int) -> float:
    """The best of a timed 1024^3 matmul and a timed 3x3 conv (32 -> 32 channels) in fp32."""
    import torch

    def timed(function, flops: float, repeats: int = 10) -> float:
        function()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(repeats):
            function()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return flops * repeats / (time.perf_counter() - start)

    a = torch.randn(1024, 1024, device=device)
    b = torch.randn(1024, 1024, device=device)
    matmul = timed(lambda: a @ b, 2.0 * 1024**3)
    conv = (torch.nn.Conv2d if dims == 2 else torch.nn.Conv3d)(32, 32, 3, padding=1).to(device)
    x = torch.randn((16, 32, 32, 32) if dims == 2 else (16, 32, 16, 16, 16), device=device)
    with torch.no_grad():
        convolution = timed(lambda: conv(x), 2.0 * 32 * 32 * 9 * x[0, 0].numel() * 16)
    return max(matmul, convolution)


def flops_per_step(model, batch) -> float:
    """Forward + backward FLOPs of one training step, counted by torch's FlopCounterMode."""
    from torch.utils.flop_counter import FlopCounterMode

    model.train()
    with FlopCounterMode(display=False) as counter:
        model.loss(batch, step=10**9).total.backward()
    model.zero_grad(set_to_none=True)
    return float(counter.get_total_flops())


def main(argv: list[str] | None = None) -> int:
    import torch

    from brainvae.analysis.factor_recovery import factor_recovery
    from brainvae.data.dataset import PreparedDataset
    from brainvae.data.roi_files import read_roi_names, read_rois
    from brainvae.models import build_model
    from brainvae.training import BatchReport, EpochReport, TrainConfig, train
    from brainvae.training.recipe import DEFAULT_RECIPE, model_config_from_recipe

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dims", type=int, choices=(2, 3), default=2)
    parser.add_argument("--work", type=Path, default=Path("build/bench_time_to_usable"))
    parser.add_argument("--check-every", type=int, default=250, help="steps between checks")
    parser.add_argument("--max-steps", type=int, default=2 * DEFAULT_RECIPE.steps)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--workers", type=int, default=2, help="phantom rendering processes")
    parser.add_argument(
        "--ventricles",
        choices=("independent", "age"),
        default="independent",
        help="ventricle size a planted factor apart from age (default), or following age",
    )
    parser.add_argument(
        "--keep-going", action="store_true", help="check up to --max-steps, not only until met"
    )
    args = parser.parse_args(argv)

    raw = population(args.dims, args.work, args.workers, args.ventricles)
    dataset = PreparedDataset.open(args.work / f"dataset_{args.dims}d_{args.ventricles}")
    held_out = np.concatenate([dataset.indices("val"), dataset.indices("test")])
    images = np.asarray(dataset.images)[np.sort(held_out)]
    ventricles = dataset.metadata["ventricle_volume_ml"].to_numpy()[np.sort(held_out)]
    spatial = tuple(dataset.scan_shape)
    labels = read_rois(raw / "atlas.nii.gz", dataset, spatial)
    names = {k: v for k, v in read_roi_names(raw / "atlas_labels.csv").items()
             if k in set(np.unique(labels).tolist())}  # fmt: skip
    n_train = len(dataset.indices("train"))
    print(
        f"{args.dims}D population: {len(dataset)} scans of {spatial} ({n_train} train, "
        f"{len(held_out)} held out); default recipe: {DEFAULT_RECIPE.description}"
    )

    torch.manual_seed(0)
    config = TrainConfig(device=args.device, steps=args.max_steps, checkpoint_every=10**6)
    model = build_model(
        model_config_from_recipe(DEFAULT_RECIPE, spatial)  # what `brainvae train DATASET` builds
    )
    flops = flops_per_step(model, np.asarray(dataset.images[: config.batch_size]))
    peak = probe_flops_per_second(args.device, args.dims)
    run_dir = args.work / f"run_{args.dims}d"
    training_seconds, next_check, last_step, met = 0.0, args.check_every, 0, None
    last_check = None
    started = time.perf_counter()
    generator = train(model, dataset, config, run_dir, overwrite=True)
    for report in generator:
        if isinstance(report, BatchReport):
            last_step += 1
        if not isinstance(report, EpochReport) or last_step < next_check:
            continue
        training_seconds += time.perf_counter() - started
        next_check = last_step + args.check_every
        model.eval()
        check = factor_recovery(model, images, ventricles, labels, names, "ventricles",
                                factor="ventricle volume")  # fmt: skip
        model.train()
        achieved = flops * last_step / training_seconds
        print(
            f"step {last_step:5d}, {training_seconds:6.1f} s training: {check.describe()}; "
            f"{achieved / 1e9:.1f} GFLOP/s = {achieved / peak:.0%} of the probe's "
            f"{peak / 1e9:.1f}"
        )
        last_check = check
        if check.meets_bar and met is None:
            met = (last_step, training_seconds)
        if met is not None and not args.keep_going:
            generator.close()
            break
        started = time.perf_counter()
    if args.keep_going and last_check is not None:
        verdict = "meets" if last_check.meets_bar else "does NOT meet"
        print(f"The model at the last check (step {last_step}) {verdict} the bar.")
    if met is None:
        print(f"The bar was NOT met within {last_step} steps ({training_seconds:.0f} s).")
        return 1
    goal = 120 if args.dims == 2 else 600
    print(
        f"Time to a usable model ({args.dims}D, {args.device}): {met[1]:.0f} s, {met[0]} steps "
        f"(goal <= {goal} s: {'met' if met[1] <= goal else 'NOT met'}); {flops / 1e9:.2f} GFLOP "
        "per step"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
