"""Benchmark receptive_field against a straightforward per-image loop, at the paper's scale.

The paper's scale: 832 images, 6 ROIs, 5 weights (-1, -0.5, 0, 0.5, 1), 8 latents; 2D 128 x 160
and 3D 40 x 48 x 40. Images are the shipped sample populations (244 2D, 83 3D scans), tiled to
832 and stored as a .npy file that every contender loads; ROIs are six regions of the
sample atlas. The model is a randomly initialised `small` beta-VAE (timing does not depend on
training), the same weights for every contender (torch.manual_seed before each build).

Contenders, each in its own process (so peak memory is its own):
- loop: what one writes by hand: for each ROI, weight and image, perturb that one image, one
  encode call, keep every code; then means, variances, KL. Contiguous (NCHW) model.
- ours (contiguous): receptive_field, batch 64, with the same contiguous model. Besides
  batching, it encodes the unperturbed images (w = 0, the same for every ROI) once per batch:
  26 encodes per image instead of the loop's 30.
- ours (channels_last): the library default layout.
- ours (channels_last + bf16): the same under torch.autocast(bfloat16); its impact matrix is
  compared with fp32 (largest relative difference, whether each ROI's top latent agrees).

Seconds are wall time of the computation (model built and images loaded into memory before the
clock starts; the library reads a memory map just as well, but its touched pages would then
count as resident memory). Peak memory: the process's peak resident set (VmHWM, reset just
before the clock; ru_maxrss where Linux does not offer it) minus its resident set just before
the computation, and tracemalloc's peak of Python/numpy allocations during it (torch's own
buffers are not seen by tracemalloc, they are in the RSS figure). The loop's "everything kept"
codes are R x W x N x L floats: small at this scale; the library keeps R x W x L sums.

    python benchmarks/bench_receptive_field.py              # 2D and 3D at full scale
    python benchmarks/bench_receptive_field.py --quick      # 208 images: a few minutes
    python benchmarks/bench_receptive_field.py --dims 3 --loop-n 208 --no-bf16

Measured on the shared 2-core CPU (torch 2.13, 832 images, batch 64): 2D loop 39-49 s, ours
8.3-9.5 s channels_last (4.4-5.5x), 8.6-12.9 s contiguous; 3D loop 93-108 s (scaled from 208
images), ours 20-21 s channels_last (4.7-5.3x). bf16 autocast (emulated on this CPU): 55.6 s 2D
and 112.7 s 3D (0.75-0.83x of the loop: slower), impacts up to 55-95 % off (median 3-4 %),
top latent per ROI unchanged. Extra peak RSS: loop 5-9 MB, ours 55-75 MB (2D) and ~170 MB (3D):
the encoder's activations for one batch, whatever the number of images, ROIs and weights.

--loop-n runs the loop on the first N images only and scales its time by n / loop-n (the loop
is linear in the images; the scaled figure is marked "scaled"). On a shared 2-core CPU other
work changes timings: run it on an otherwise idle machine for figures to quote.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np

from peak_memory import peak_rss_mb, reset_peak_rss, rss_mb

ROOT = Path(__file__).resolve().parents[1]
ROIS = ("ventricles", "hippocampus", "thalamus", "striatum", "white_matter", "lesion_zone")
WEIGHTS = (-1.0, -0.5, 0.0, 0.5, 1.0)
LATENTS = 8


def population(dims: int, n: int, folder: Path) -> tuple[Path, np.ndarray, list[str]]:
    """The sample population tiled to n images in a .npy file, the atlas masks and names."""
    import pandas as pd

    from brainvae.data.io.nifti import read_nifti

    source = ROOT / "sample_data" / f"population_{dims}d"
    table = pd.read_csv(source / "subjects.csv")
    scans = np.stack([read_nifti(source / name).data for name in table["filename"]])
    images = np.resize(scans.astype(np.float32), (n, *scans.shape[1:]))
    path = folder / f"images_{dims}d.npy"
    np.save(path, images)
    atlas = read_nifti(source / "atlas.nii.gz").data
    labels = pd.read_csv(source / "atlas_labels.csv").set_index("name")["label"]
    masks = np.stack([atlas == labels[name] for name in ROIS])
    return path, masks, list(ROIS)


def build(shape: tuple[int, ...], channels_last: bool):
    import torch

    from brainvae.models import ModelConfig, build_model

    torch.manual_seed(0)
    config = ModelConfig(
        input_shape=shape, latent_dim=LATENTS, architecture="small", channels_last=channels_last
    )
    return build_model(config).eval()


def per_image_loop(model, images: np.ndarray, masks: np.ndarray, n: int) -> np.ndarray:
    """The straightforward version: one image, one encode call; every code kept; then KL."""
    import torch

    from brainvae.analysis.receptive_kl import impact_from_gaussians

    codes = np.zeros((len(masks), len(WEIGHTS), n, LATENTS))
    with torch.no_grad():
        for r, mask in enumerate(masks):
            for j, weight in enumerate(WEIGHTS):
                for i in range(n):
                    image = np.array(images[i], dtype=np.float32)
                    perturbed = image + weight * (-image * mask)
                    codes[r, j, i] = model.encode(perturbed[None])[0][0].numpy()
    impact, _ = impact_from_gaussians(codes.mean(axis=2), codes.var(axis=2))
    return impact


def contender(name: str, path: str, masks: np.ndarray, n: int, queue) -> None:
    """Run one contender in this (child) process and put its figures on the queue."""
    import torch

    from brainvae.analysis.receptive_field import receptive_field

    images = np.load(path)  # in memory before the clock: its pages are not the contender's
    shape = tuple(images.shape[1:])
    model = build(shape, channels_last="channels_last" in name)
    with torch.inference_mode():  # warm-up: first calls allocate and pick kernels
        model.encode(np.asarray(images[:2], dtype=np.float32))
    reset_peak_rss()
    rss_before = rss_mb()
    tracemalloc.start()
    start = time.perf_counter()
    if name == "loop":
        impact = per_image_loop(model, images, masks, n)
    else:
        dtype = torch.bfloat16 if "bf16" in name else None
        result = receptive_field(
            model, images[:n], masks, list(ROIS), weights=WEIGHTS, batch_size=64,
            autocast_dtype=dtype,
        )  # fmt: skip
        impact = result.impact
    seconds = time.perf_counter() - start
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    queue.put(
        {
            "seconds": seconds,
            "peak_rss_mb": max(peak_rss_mb() - rss_before, 0.0),
            "traced_peak_mb": traced_peak / 2**20,
            "impact": impact.tolist(),
        }
    )


def run_one(name: str, path: Path, masks: np.ndarray, n: int) -> dict[str, Any]:
    context = mp.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=contender, args=(name, str(path), masks, n, queue))
    process.start()
    figures = queue.get()
    process.join()
    return figures


CONTENDERS = ("loop", "ours (contiguous)", "ours (channels_last)", "ours (channels_last+bf16)")


def bench(dims: int, n: int, loop_n: int, folder: Path, bf16: bool = True) -> dict[str, Any]:
    path, masks, _ = population(dims, n, folder)
    rows: dict[str, Any] = {}
    for name in CONTENDERS if bf16 else CONTENDERS[:3]:
        count = loop_n if name == "loop" else n
        figures = run_one(name, path, masks, count)
        figures["scaled"] = name == "loop" and count != n
        if figures["scaled"]:
            figures["seconds_measured"] = figures["seconds"]
            figures["seconds"] *= n / count
        rows[name] = figures
        note = f" (measured on {count} images, scaled)" if figures["scaled"] else ""
        print(
            f"  {name:27s} {figures['seconds']:8.1f} s{note}   peak RSS +"
            f"{figures['peak_rss_mb']:7.1f} MB   tracemalloc peak {figures['traced_peak_mb']:7.1f} MB",
            flush=True,
        )
    loop = rows["loop"]["seconds"]
    for name in list(rows)[1:]:
        print(f"  speed-up of {name} over the loop: {loop / rows[name]['seconds']:.2f}x")
    if bf16:
        fp32 = np.asarray(rows["ours (channels_last)"]["impact"])
        low = np.asarray(rows["ours (channels_last+bf16)"]["impact"])
        relative = np.abs(low - fp32) / np.maximum(np.abs(fp32), 1e-12)
        agree = (fp32.argmax(axis=1) == low.argmax(axis=1)).mean()
        print(
            f"  bf16 vs fp32 impact: largest relative difference {relative.max():.3g}, median "
            f"{np.median(relative):.3g}; top latent per ROI agrees for {agree:.0%} of ROIs"
        )
    if not rows["loop"]["scaled"]:
        loop_impact = np.asarray(rows["loop"]["impact"])
        contiguous = np.asarray(rows["ours (contiguous)"]["impact"])
        print(
            f"  loop vs ours (contiguous) impact: max |diff| {np.abs(loop_impact - contiguous).max():.3g}"
        )
    return {"dims": dims, "n": n, "loop_n": loop_n, "contenders": rows}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", choices=("2", "3", "both"), default="both")
    parser.add_argument("--n", type=int, default=832, help="images (default 832)")
    parser.add_argument("--loop-n", type=int, help="images for the loop (default: --n)")
    parser.add_argument("--quick", action="store_true", help="208 images, loop on 52 (scaled)")
    parser.add_argument("--no-bf16", action="store_true", help="skip the bf16 contender")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    n = 208 if args.quick else args.n
    loop_n = 52 if args.quick and args.loop_n is None else (args.loop_n or n)
    import torch

    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, python {sys.version.split()[0]}"
    )
    print(f"{len(ROIS)} ROIs x {len(WEIGHTS)} weights x {LATENTS} latents, {n} images")
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for dims in (2, 3) if args.dims == "both" else (int(args.dims),):
            print(f"{dims}D:", flush=True)
            results.append(bench(dims, n, min(loop_n, n), Path(folder), not args.no_bf16))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
