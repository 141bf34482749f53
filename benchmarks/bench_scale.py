"""The seeds' scale: prepare, train and receptive field at 500, 1,000 and 5,000 full-size volumes.

Inputs are 182 x 218 x 182 int16 .nii.gz files on the MNI152 1 mm grid. They are phantom
scans (brainvae.data.phantom, 3D: 40 x 48 x 40 at 4 mm, rendered with distinct factors per
subject) resampled (trilinear, by the affines) onto the 1 mm MNI grid: the phantom does not
render at 1 mm cheaply, and only the file size and the work of reading matter here. To keep
disk use sane, --distinct files are written and hard-linked up to N, so FILES REPEAT: file k is
original k mod --distinct (the page cache helps reading them). Every file gets its own subject
id in a metadata table (subject_id, and the original's age, sex and diagnosis), so prepare
splits by subject as it would on real data.

For each N in --sizes, three stages run, each as a fresh `python -m brainvae ...` process:
  prepare    `brainvae prepare SRC --csv subjects.csv --preset flair3d` (crop 160 x 192 x 160,
             block 4 -> 40 x 48 x 40), default workers;
  train      `brainvae train DATASET --steps S` (the default recipe; steps are rounded up to
             whole epochs, so the actual count is read from the run and reported), reading
             the memory-mapped images.npy;
  receptive  `brainvae receptive RUN DATASET --rois atlas.nii.gz` with the default
             perturbation (remove, weights -1..1) on the first 832 subjects (--subjects; all
             scans when N < 832), the phantom's atlas as ROIs.

Memory: a thread samples /proc/<pid>/status of the stage's process and of its spawned
workers every 0.1 s. "peak RSS" is the sum of their VmHWM (the kernel's own peak; an upper
bound when peaks do not coincide). Memory-mapped file pages count in RSS (and stay resident
while the page cache has room), so RSS of a process that maps a 5,000-volume images.npy grows
with N without the process owning more memory; "peak anon" is the largest sampled sum of
RssAnon (anonymous memory: what the processes own; a 0.1 s sample, so it can miss a spike).
Flatness in N is judged on peak anon.

The end of the run estimates what a GPU and a torchrun cluster would change, from this
machine's measured step time, the FLOPs per step (torch's FlopCounterMode), the number of
aten operators per step (each is at least one kernel launch on a GPU) and the gradient bytes.
These are ESTIMATES, with their assumptions printed; nothing in them is measured on a GPU.

    python benchmarks/bench_scale.py                      # 500, 1000, 5000 (tens of minutes)
    python benchmarks/bench_scale.py --sizes 20,40 --steps 20 --distinct 8   # a quick check
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from bench_prepare import MNI_AFFINE, RAW_SHAPE, make_inputs
from bench_time_to_usable import flops_per_step

RECEPTIVE_SCANS = 832
STATUS_FIELDS = ("VmHWM", "VmRSS", "RssAnon", "RssFile")


# -- inputs -----------------------------------------------------------------------------------


def phantom_originals(work: Path, distinct: int, seed: int) -> Path:
    """Render `distinct` 3D phantom scans and write them as 1 mm MNI int16 files orig-<i>.nii.gz.

    Returns the phantom folder (atlas.nii.gz, atlas_labels.csv, subjects.csv)."""
    import nibabel as nib
    from scipy import ndimage

    from brainvae.data.phantom import PopulationConfig, build_population

    phantom = work / "phantom"
    if not (phantom / "subjects.csv").is_file():
        config = PopulationConfig(dims=3, n_subjects=distinct, seed=seed, longitudinal_share=0.0)
        build_population(config, phantom, overwrite=True, workers=2, progress=False)
    scans = sorted((phantom / "images").glob("*.nii.gz"))[:distinct]
    if len(scans) < distinct:
        raise SystemExit(f"the phantom wrote {len(scans)} scans, fewer than --distinct {distinct}")
    for i, scan in enumerate(scans):
        path = work / f"orig-{i}.nii.gz"
        if path.exists():
            continue
        img = nib.load(str(scan))
        # output (MNI voxel) index -> world mm -> phantom voxel index, one affine
        to_phantom = np.linalg.inv(img.affine) @ MNI_AFFINE
        volume = ndimage.affine_transform(
            np.asarray(img.get_fdata(), np.float32),
            to_phantom[:3, :3],
            offset=to_phantom[:3, 3],
            output_shape=RAW_SHAPE,
            order=1,
            mode="constant",
        )
        data = np.clip(np.rint(volume * 1000.0), 0, 32000).astype(np.int16)
        out = nib.Nifti1Image(data, MNI_AFFINE)
        out.set_qform(MNI_AFFINE, code=4)
        out.set_sform(MNI_AFFINE, code=4)
        nib.save(out, str(path))
    (work / "sources.txt").write_text("\n".join(s.name for s in scans) + "\n")
    return phantom


def write_subjects(work: Path, phantom: Path, n: int, distinct: int) -> Path:
    """subjects-<n>.csv: one subject per file sub-<k>, with its original's phantom factors."""
    with open(phantom / "subjects.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    sources = (work / "sources.txt").read_text().split()
    by_file = {Path(r.get("filename", "")).name: r for r in rows}
    keep = [c for c in ("age", "sex", "diagnosis") if rows and c in rows[0]]
    path = work / f"subjects-{n}.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["subject_id", "original", *keep])
        for k in range(n):
            original = by_file.get(sources[k % distinct], {})
            writer.writerow([f"sub-{k:05d}", k % distinct, *(original.get(c, "") for c in keep)])
    return path


# -- measuring a child process ----------------------------------------------------------------


def read_status(pid: int) -> dict[str, float] | None:
    """VmHWM, VmRSS, RssAnon and RssFile of a process in MiB, None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    values = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in STATUS_FIELDS:
            values[key] = int(rest.split()[0]) / 1024
    return values if "VmHWM" in values else None


def spawned_workers(root: int) -> list[int]:
    """Descendants of root started by multiprocessing's spawn (not its resource tracker)."""
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        try:
            tasks = list(Path(f"/proc/{pid}/task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                children = [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
            for child in children:
                todo.append(child)
                try:
                    if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                        found.append(child)
                except OSError:
                    pass
    return found


class TreeSampler:
    """Samples a process and its spawned workers every `interval` s while it runs."""

    def __init__(self, root: int, interval: float = 0.1):
        self.root, self.interval = root, interval
        self.hwm: dict[int, float] = {}
        self.anon: dict[int, float] = {}
        self.peak_anon_total = 0.0
        self.peak_file_total = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            anon = file_ = 0.0
            for pid in (self.root, *spawned_workers(self.root)):
                status = read_status(pid)
                if status is None:
                    continue
                self.hwm[pid] = max(status["VmHWM"], self.hwm.get(pid, 0.0))
                self.anon[pid] = max(status.get("RssAnon", 0.0), self.anon.get(pid, 0.0))
                anon += status.get("RssAnon", 0.0)
                file_ += status.get("RssFile", 0.0)
            self.peak_anon_total = max(self.peak_anon_total, anon)
            self.peak_file_total = max(self.peak_file_total, file_)
            self._stop.wait(self.interval)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_stage(args: list[str], log: Path) -> dict:
    """Run `python -m brainvae ARGS` in a fresh process; time it and sample its memory."""
    command = [sys.executable, "-m", "brainvae", *args]
    with open(log, "w") as out:
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        with TreeSampler(process.pid) as sampler:
            code = process.wait()
        seconds = time.perf_counter() - start
    if code != 0:
        tail = log.read_text()[-3000:]
        raise SystemExit(f"`brainvae {args[0]}` failed ({code}):\n{tail}")
    main_hwm = sampler.hwm.get(process.pid, 0.0)
    workers = [v for pid, v in sampler.hwm.items() if pid != process.pid]
    return {
        "seconds": seconds,
        "main_peak_rss_mib": main_hwm,
        "worker_peak_rss_mib": workers,
        "peak_rss_mib": main_hwm + sum(workers),
        "main_peak_anon_mib": sampler.anon.get(process.pid, 0.0),
        "peak_anon_mib": sampler.peak_anon_total,
        "peak_file_rss_mib": sampler.peak_file_total,
        "load_1min_at_end": os.getloadavg()[0],
    }


# -- one size ---------------------------------------------------------------------------------


def trained_steps(run: Path) -> tuple[int, float]:
    """Optimiser steps the run made and the seconds its loop took (history.csv's last row)."""
    with open(run / "history.csv", newline="") as handle:
        last = list(csv.DictReader(handle))[-1]
    return int(float(last["step"])), float(last["elapsed_s"])


def one_size(work: Path, phantom: Path, n: int, distinct: int, steps: int) -> list[dict]:
    """Prepare, train and receptive field at N files; a row of figures per stage."""
    make_inputs(work, n, distinct)
    subjects = write_subjects(work, phantom, n, distinct)
    dataset, run, rf = work / f"dataset-{n}", work / f"run-{n}", work / f"rf-{n}"
    for old in (dataset, run, rf):
        shutil.rmtree(old, ignore_errors=True)
    rows = []

    prep = run_stage(
        ["prepare", str(work / f"n{n}"), "--out", str(dataset), "--csv", str(subjects),
         "--preset", "flair3d", "--quiet"],
        work / f"prepare-{n}.log",
    )  # fmt: skip
    info = json.loads((dataset / "dataset.json").read_text())
    count = int(info.get("n_samples", info.get("count", n)))
    rows.append({"stage": "prepare", "count": count, "unit": "volumes", **prep})

    fit = run_stage(
        ["train", str(dataset), "--out", str(run), "--steps", str(steps), "--quiet"],
        work / f"train-{n}.log",
    )
    steps_done, loop_s = trained_steps(run)
    rows.append({"stage": "train", "count": steps_done, "unit": "steps", "loop_s": loop_s, **fit})

    with open(dataset / "metadata.csv", newline="") as handle:
        ids = [r["subject_id"] for r in csv.DictReader(handle)]
    chosen = list(dict.fromkeys(ids))[:RECEPTIVE_SCANS]
    receptive = run_stage(
        ["receptive", str(run), str(dataset), "--rois", str(phantom / "atlas.nii.gz"),
         "--roi-names", str(phantom / "atlas_labels.csv"), "--subjects", ",".join(chosen),
         "--out", str(rf)],
        work / f"receptive-{n}.log",
    )  # fmt: skip
    rows.append({"stage": "receptive", "count": len(chosen), "unit": "scans", **receptive})
    for row in rows:
        row["n"] = n
        row["per_s"] = row["count"] / row["seconds"]
    return rows


# -- GPU and torchrun estimate ----------------------------------------------------------------


def count_ops(function) -> int:
    """aten operators dispatched by function() (each is at least one kernel launch on a GPU)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Counter(TorchDispatchMode):
        calls = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            Counter.calls += 1
            return func(*args, **(kwargs or {}))

    with Counter():
        function()
    return Counter.calls


def estimate(run: Path, dataset: Path, opts: argparse.Namespace, rows: list[dict]) -> dict:
    """Measure this CPU's step and count FLOPs, operators and gradient bytes of the trained net."""
    import torch

    from brainvae.data.dataset import PreparedDataset
    from brainvae.models import load_model

    torch.manual_seed(0)
    model = load_model(run)
    config = json.loads((run / "config.json").read_text())
    batch_size = int(_find(config, "batch_size") or 16)
    data = PreparedDataset.open(dataset)
    batch = np.asarray(data.images[:batch_size], np.float32)
    flops = flops_per_step(model, batch)
    parameters = [p for p in model.parameters() if p.requires_grad]
    n_params = sum(p.numel() for p in parameters)
    grad_bytes = sum(p.numel() * p.element_size() for p in parameters)
    optimizer = torch.optim.Adam(parameters, lr=1e-4, fused=True)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        model.loss(batch, step=10**9).total.backward()
        optimizer.step()

    model.train()
    step()
    ops = count_ops(step)
    start = time.perf_counter()
    for _ in range(opts.probe_steps):
        step()
    cpu_step = (time.perf_counter() - start) / opts.probe_steps
    with torch.no_grad():
        model.eval()
        from torch.utils.flop_counter import FlopCounterMode

        with FlopCounterMode(display=False) as counter:
            model.encode(batch)
        encode_flops = float(counter.get_total_flops()) / batch_size
        encode_ops = count_ops(lambda: model.encode(batch))
    return {
        "batch_size": batch_size,
        "flops_per_step": flops,
        "encode_flops_per_image": encode_flops,
        "encode_ops_per_batch": encode_ops,
        "ops_per_step": ops,
        "parameters": n_params,
        "gradient_bytes": grad_bytes,
        "cpu_step_s": cpu_step,
        "cpu_gflops": flops / cpu_step / 1e9,
        "batch_bytes": batch.nbytes,
    }


def _find(tree, key):
    """The first value of key anywhere in a nested dict."""
    if isinstance(tree, dict):
        if key in tree:
            return tree[key]
        for value in tree.values():
            found = _find(value, key)
            if found is not None:
                return found
    return None


def print_estimate(est: dict, rows: list[dict], opts: argparse.Namespace, work: Path) -> dict:
    """GPU and torchrun figures from est, each an estimate with its assumptions."""
    peak = opts.gpu_tflops * 1e12 * opts.gpu_utilisation
    compute = est["flops_per_step"] / peak
    launches = est["ops_per_step"] * opts.launch_us * 1e-6
    copy = est["batch_bytes"] / (opts.h2d_gbs * 1e9)
    gpu_step = max(compute, launches) + copy
    print("\nESTIMATE (not measured: no GPU or cluster was used)")
    print(
        f"  measured here: one training step (batch {est['batch_size']}, loss + backward + fused "
        f"Adam) {est['cpu_step_s'] * 1000:.0f} ms on this CPU = {est['cpu_gflops']:.1f} GFLOP/s; "
        f"counted: {est['flops_per_step'] / 1e9:.2f} GFLOP and {est['ops_per_step']} aten "
        f"operators per step (FlopCounterMode, TorchDispatchMode); {est['parameters']:,} "
        f"parameters = {est['gradient_bytes'] / 2**20:.2f} MiB of fp32 gradients"
    )
    print(
        f"  assumptions: GPU peak {opts.gpu_tflops:g} TFLOP/s (--gpu-tflops; 67 = H100/H200 "
        f"fp32 dense, bf16 autocast has more) at {opts.gpu_utilisation:.0%} utilisation "
        f"(--gpu-utilisation; small 3D convs rarely fill a GPU); >= {opts.launch_us:g} us per "
        f"operator (launch and dispatch, --launch-us); batch copied host -> device at "
        f"{opts.h2d_gbs:g} GB/s (--h2d-gbs); step = max(compute, launches) + copy"
    )
    print(
        f"  GPU step >= max({compute * 1000:.2f} ms compute, {launches * 1000:.2f} ms launches) "
        f"+ {copy * 1000:.2f} ms copy = {gpu_step * 1000:.2f} ms, vs {est['cpu_step_s'] * 1000:.0f}"
        f" ms here: ~{est['cpu_step_s'] / gpu_step:.0f}x faster per step at most; "
        + ("launch-bound" if launches > compute else "compute-bound")
    )
    out = {"gpu_step_s": gpu_step, "per_size": {}}
    for n in sorted({r["n"] for r in rows}):
        train = next(r for r in rows if r["n"] == n and r["stage"] == "train")
        prep = next(r for r in rows if r["n"] == n and r["stage"] == "prepare")
        rf = next(r for r in rows if r["n"] == n and r["stage"] == "receptive")
        gpu_train = train["count"] * gpu_step
        summary = json.loads((work / f"rf-{n}" / "summary.json").read_text())
        # receptive_streaming encodes a batch once unperturbed (weight 0 shares it), then once
        # per ROI and non-zero weight
        perturbed = sum(1 for w in summary["weights"] if w != 0.0)
        encodes = summary["n_images"] * (1 + len(summary["rois"]) * perturbed)
        rf_compute = encodes * est["encode_flops_per_image"] / peak
        rf_launches = np.ceil(encodes / 64) * est["encode_ops_per_batch"] * opts.launch_us * 1e-6
        gpu_rf = max(rf_compute, rf_launches)
        print(
            f"  N={n}: train {train['count']} steps: measured {train['seconds']:.0f} s (process: "
            f"start-up + {train['loop_s']:.0f} s loop with validation) -> GPU >= "
            f"{gpu_train:.2f} s of steps, plus start-up and validation; receptive: "
            f"{encodes:,} encodes ({summary['n_images']} scans x (1 + {len(summary['rois'])} "
            f"ROIs x {perturbed} non-zero weights)) of {est['encode_flops_per_image'] / 1e9:.3f} "
            f"GFLOP, measured {rf['seconds']:.0f} s -> GPU >= max({rf_compute:.2f} s compute, "
            f"{rf_launches:.2f} s launches in batches of 64) plus start-up and the perturbing; "
            f"prepare ({prep['seconds']:.0f} s) reads and decompresses on the CPU: no change"
        )
        out["per_size"][n] = {"gpu_train_steps_s": gpu_train, "gpu_receptive_s": gpu_rf}
    print(
        "  torchrun, k processes (data parallel, as brainvae.training.distributed does it): each "
        "rank takes 1/k of every epoch with the same per-process batch, so the steps per "
        "process fall k-fold; each step adds a ring all-reduce of the gradients, "
        "2 (k-1)/k x bytes / bandwidth:"
    )
    largest = max(r["n"] for r in rows)
    steps = next(r for r in rows if r["n"] == largest and r["stage"] == "train")["count"]
    for k in opts.ranks:
        for name, gbs in (("NVLink ~100 GB/s", 100.0), ("10 Gbit/s Ethernet", 1.25)):
            reduce_s = 2 * (k - 1) / k * est["gradient_bytes"] / (gbs * 1e9) + (
                opts.allreduce_latency_us * 1e-6 if k > 1 else 0.0
            )
            per_step = gpu_step + reduce_s
            print(
                f"    k={k} GPU(s), {name}: {steps} steps -> {int(np.ceil(steps / k))} per process x "
                f"({gpu_step * 1000:.2f} + {reduce_s * 1000:.2f} ms all-reduce) = "
                f"{np.ceil(steps / k) * per_step:.2f} s (estimate)"
            )
    print(
        f"    (all-reduce latency assumed {opts.allreduce_latency_us:g} us per step, "
        "--allreduce-latency-us; CPU ranks would split this machine's cores, so on one "
        "2-core host torchrun cannot beat one process)"
    )
    return out


# -- report -----------------------------------------------------------------------------------


def print_table(rows: list[dict]) -> None:
    """One line per size and stage, then the largest/smallest ratios."""
    print(
        f"\n{'N':>6} | {'stage':<9} | {'time':>8} | {'throughput':>18} | {'peak RSS':>10} | "
        f"{'peak anon':>10} | {'file RSS':>9} | load"
    )
    print("-" * 95)
    for r in rows:
        print(
            f"{r['n']:>6} | {r['stage']:<9} | {r['seconds']:>7.1f}s | "
            f"{r['per_s']:>8.2f} {r['unit'] + '/s':<9} | {r['peak_rss_mib']:>6.0f} MiB | "
            f"{r['peak_anon_mib']:>6.0f} MiB | {r['peak_file_rss_mib']:>5.0f} MiB | "
            + (f"{r['load_1min_at_end']:.1f}" if "load_1min_at_end" in r else "-")
        )
    for r in rows:
        if r["stage"] == "train":
            print(
                f"  N={r['n']}: train loop alone (history.csv elapsed_s, without start-up): "
                f"{r['loop_s']:.1f} s = {r['count'] / r['loop_s']:.2f} steps/s"
            )
    sizes = sorted({r["n"] for r in rows})
    if len(sizes) < 2:
        return
    small, large = sizes[0], sizes[-1]
    print(f"\nflatness: figure at N={large} / figure at N={small}")
    for stage in ("prepare", "train", "receptive"):
        a = next(r for r in rows if r["n"] == small and r["stage"] == stage)
        b = next(r for r in rows if r["n"] == large and r["stage"] == stage)
        print(
            f"  {stage:<9} time {b['seconds'] / a['seconds']:5.2f}x for "
            f"{b['count'] / a['count']:5.2f}x the {a['unit']}; throughput "
            f"{b['per_s'] / a['per_s']:5.2f}x; peak RSS {b['peak_rss_mib'] / a['peak_rss_mib']:5.2f}x;"
            f" peak anon {b['peak_anon_mib'] / a['peak_anon_mib']:5.2f}x"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="500,1000,5000", help="comma-separated N")
    parser.add_argument("--steps", type=int, default=250, help="training steps (whole epochs)")
    parser.add_argument("--distinct", type=int, default=64, help="distinct input files")
    parser.add_argument("--seed", type=int, default=3, help="phantom seed")
    parser.add_argument("--keep", type=Path, help="work here and keep the files")
    parser.add_argument("--json", type=Path, help="write every figure here")
    parser.add_argument("--probe-steps", type=int, default=10, help="timed CPU steps")
    parser.add_argument("--gpu-tflops", type=float, default=67.0)
    parser.add_argument("--gpu-utilisation", type=float, default=0.2)
    parser.add_argument("--launch-us", type=float, default=10.0)
    parser.add_argument("--h2d-gbs", type=float, default=10.0)
    parser.add_argument("--allreduce-latency-us", type=float, default=50.0)
    parser.add_argument("--ranks", default="1,2,4,8", help="torchrun process counts")
    parser.add_argument(
        "--from-json",
        type=Path,
        nargs="+",
        help="skip the stages: print the table and the estimate again from these --json files "
        "(their rows merged) and the --keep folder the runs shared",
    )
    opts = parser.parse_args(argv)
    opts.ranks = [int(k) for k in opts.ranks.split(",")]
    sizes = [int(s) for s in opts.sizes.split(",")]

    if opts.from_json:
        if opts.keep is None:
            parser.error("--from-json needs the --keep folder of that run")
        rows = [r for f in opts.from_json for r in json.loads(f.read_text())["rows"]]
        rows.sort(key=lambda r: r["n"])
        print_table(rows)
        largest = max(r["n"] for r in rows)
        est = estimate(opts.keep / f"run-{largest}", opts.keep / f"dataset-{largest}", opts, rows)
        print_estimate(est, rows, opts, opts.keep)
        return 0
    work = opts.keep or Path(tempfile.mkdtemp(prefix="bench-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        print(
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {os.cpu_count()} CPUs; "
            f"work folder {work}"
        )
        start = time.perf_counter()
        reused = (work / "sources.txt").is_file()
        phantom = phantom_originals(work, opts.distinct, opts.seed)
        made = "reused from --keep" if reused else f"made in {time.perf_counter() - start:.0f} s"
        print(
            f"inputs: {opts.distinct} distinct phantom scans (3D, 4 mm) resampled to "
            f"{RAW_SHAPE} int16 on the MNI152 1 mm grid ({made}); "
            f"the N files are hard links to them, so FILES REPEAT (file k = original k mod "
            f"{opts.distinct}), each under its own subject id"
        )
        rows: list[dict] = []
        for n in sizes:
            rows += one_size(work, phantom, n, opts.distinct, opts.steps)
            print_table(rows)
            if opts.json:  # after every size, so a run stopped early keeps what it measured
                opts.json.write_text(json.dumps({"sizes": sizes, "rows": rows}, indent=1))
        print(
            "\npeak RSS: sum of VmHWM of the stage's process and its spawned workers (upper "
            "bound); peak anon: largest sampled sum of RssAnon (what the processes own, sampled "
            "every 0.1 s); file RSS: largest sampled sum of RssFile (mapped files: libraries "
            "and the memory-mapped images.npy, which the kernel can drop at any time); load: "
            f"this machine's 1-minute load average as the stage ended ({os.cpu_count()} CPUs; "
            "above that, other work shared the cores and the times are longer)"
        )
        largest = max(sizes)
        est = estimate(work / f"run-{largest}", work / f"dataset-{largest}", opts, rows)
        gpu = print_estimate(est, rows, opts, work)
        if opts.json:
            opts.json.write_text(
                json.dumps({"sizes": sizes, "rows": rows, "estimate": est, "gpu": gpu}, indent=1)
            )
    finally:
        if opts.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
