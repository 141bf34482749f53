"""Population analysis at the FLAIR study's size: 5,000 scans x 32 latents.

Synthetic codes with a planted structure (three classes, a numeric measure, a site that the
codes carry a little of; subjects with 1-3 scans, which share a subject effect), and 2D images
for the PCA reference made from the codes by a random linear map plus noise (5,000 x 64 x 80
float32, 100 MB). One `analyse_population` request asks everything at once (classification of
the class with a 1,000-resample bootstrap, the PCA reference, the bias check of the site, the
brain score of the measure with 1,000 permutations, the latent map); each stage is timed between
the generator's progress reports; a second run under tracemalloc gives each stage's peak of
memory allocated above what was held when the stage began (numpy's arrays are traced, BLAS
scratch space is not; tracemalloc slows Python code, hence two runs).

Baseline, measured in the same run: scikit-learn's `permutation_test_score` with a RidgeCV
estimator (the same alphas) on the same subject-grouped folds, the textbook way of getting a
permutation p-value, one refit per fold per permutation. It runs `--baseline-permutations`
permutations (default all of them); fewer are extrapolated linearly and labelled so.

    python benchmarks/bench_population.py [--scans 5000] [--latents 32] [--permutations 1000]
        [--bootstrap 1000] [--baseline-permutations N]
"""

from __future__ import annotations

import argparse
import resource
import time
import tracemalloc

import numpy as np
import pandas as pd

IMAGE_SHAPE = (64, 80)
SETUP = "setup"
CLASSES = ("healthy", "ms", "leuko")
CLASS_SHARES = (0.5, 0.3, 0.2)


def synthetic_population(n_scans: int, n_latents: int, seed: int = 0):
    """(codes (N, L) float32, table, images (N, 64, 80) float32) with a planted structure."""
    rng = np.random.default_rng(seed)
    scans_per_subject = []
    while sum(scans_per_subject) < n_scans:
        scans_per_subject.append(int(rng.integers(1, 4)))
    scans_per_subject[-1] -= sum(scans_per_subject) - n_scans
    n_subjects = len(scans_per_subject)
    subject_class = rng.choice(len(CLASSES), size=n_subjects, p=CLASS_SHARES)
    subject_age = rng.uniform(20, 90, n_subjects)
    subject_site = rng.integers(0, 3, n_subjects)
    subject_effect = rng.normal(0, 0.5, (n_subjects, n_latents))
    subject = np.repeat(np.arange(n_subjects), scans_per_subject)
    session = np.concatenate([np.arange(1, k + 1) for k in scans_per_subject])
    klass, site = subject_class[subject], subject_site[subject]
    age = subject_age[subject] + (session - 1) * 1.5
    codes = rng.normal(0, 1, (n_scans, n_latents)) + subject_effect[subject]
    class_means = rng.normal(0, 1.2, (len(CLASSES), 3))
    codes[:, :3] += class_means[klass]
    codes[:, 3] += (age - 55) / 20
    codes[:, 4] += 0.4 * (site - 1)
    codes = codes.astype(np.float32)
    table = pd.DataFrame(
        {
            "subject_id": [f"sub-{s:05d}" for s in subject],
            "session": session,
            "diagnosis": np.asarray(CLASSES)[klass],
            "age": np.round(age, 2),
            "site": site,
        }
    )
    pixels = int(np.prod(IMAGE_SHAPE))
    mapping = rng.normal(0, 1 / np.sqrt(n_latents), (n_latents, pixels)).astype(np.float32)
    images = codes @ mapping
    images += rng.normal(0, 0.5, images.shape).astype(np.float32)
    return codes, table, images.reshape(n_scans, *IMAGE_SHAPE)


def timed_stages(codes, table, images, request, trace: bool) -> tuple[list, object]:
    """[(stage, seconds, peak MiB above the stage's start or None)] between the progress
    reports (the first stage: from the call to the first report). With `trace`, tracemalloc
    runs (it slows Python-heavy code, so times come from a run without it)."""
    from brainvae.population import analyse_population

    steps = analyse_population(codes, table, np.ones(codes.shape[1], bool), request, images)
    stages = []
    if trace:
        tracemalloc.start()
    stage, start, held = SETUP, time.perf_counter(), 0
    while True:
        try:
            report = next(steps)
        except StopIteration as finished:
            analysis = finished.value
            break
        now = time.perf_counter()
        current, peak = tracemalloc.get_traced_memory() if trace else (0, 0)
        if stage != "done":
            stages.append((stage, now - start, (peak - held) / 2**20 if trace else None))
        if trace:
            tracemalloc.reset_peak()
        stage, start, held = report.stage, time.perf_counter(), current
    if trace:
        tracemalloc.stop()
    return stages, analysis


def baseline_seconds(codes, values, groups, request, n_permutations: int) -> float:
    """scikit-learn's permutation_test_score, RidgeCV on the analysis's own grouped folds."""
    from sklearn.linear_model import RidgeCV
    from sklearn.metrics import make_scorer
    from sklearn.model_selection import permutation_test_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from brainvae.population.brain_scores import RIDGE_ALPHAS
    from brainvae.population.validation import plan_folds

    folds = plan_folds(groups, None, None, "cv", request.folds, request.seed, "baseline")
    splits = list(zip(folds.train, folds.test, strict=True))
    pearson = make_scorer(lambda truth, predicted: np.corrcoef(truth, predicted)[0, 1])
    start = time.perf_counter()
    permutation_test_score(
        make_pipeline(StandardScaler(), RidgeCV(alphas=RIDGE_ALPHAS)), codes, values,
        cv=splits, n_permutations=n_permutations, scoring=pearson, random_state=0, n_jobs=1,
    )  # fmt: skip
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scans", type=int, default=5000)
    parser.add_argument("--latents", type=int, default=32)
    parser.add_argument("--permutations", type=int, default=1000)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument(
        "--baseline-permutations",
        type=int,
        help="permutations the scikit-learn baseline runs (default: as many as --permutations)",
    )
    args = parser.parse_args()

    from brainvae.population import PopulationRequest
    from brainvae.population.columns import subject_groups

    made = time.perf_counter()
    codes, table, images = synthetic_population(args.scans, args.latents)
    made = time.perf_counter() - made
    request = PopulationRequest(
        classify="diagnosis", regress=("age",), nuisance=("site",), validation="cv",
        n_bootstrap=args.bootstrap, n_permutations=args.permutations, map_method="pca",
    )  # fmt: skip
    warm = slice(0, min(args.scans, 300))  # imports and first calls, outside the timings
    timed_stages(codes[warm], table[warm], images[warm], request, trace=False)
    total = time.perf_counter()
    stages, analysis = timed_stages(codes, table, images, request, trace=False)
    total = time.perf_counter() - total
    memory = [peak for _, _, peak in timed_stages(codes, table, images, request, True)[0]]
    groups = subject_groups(table)
    baseline_n = args.baseline_permutations or args.permutations
    baseline = baseline_seconds(codes, table["age"].to_numpy(float), groups, request, baseline_n)
    baseline_full = baseline * args.permutations / baseline_n

    n_subjects = len(np.unique(groups))
    print(
        f"### Population analysis: {args.scans} scans ({n_subjects} subjects, 1-3 scans each) x "
        f"{args.latents} latents, images {IMAGE_SHAPE[0]}x{IMAGE_SHAPE[1]} float32 "
        f"({images.nbytes / 2**20:.0f} MiB; made in {made:.1f} s)\n"
    )
    print(f"Validation: {analysis.classification.validation}.\n")
    print("| stage | time (s) | peak memory above the stage's start (MiB) |")
    print("|---|---:|---:|")
    names = {
        "classification from the latents": (
            f"classification from the latents (LDA + {args.bootstrap} bootstrap resamples)"
        ),
        "PCA reference": f"PCA reference ({args.latents} components of the images + LDA)",
        "acquisition-bias check": "acquisition-bias check (site)",
        "brain score of age": f"brain score of age (ridge, {args.permutations} permutations)",
        "latent map": "latent map (PCA)",
        SETUP: "setup (class labels, subject-grouped stratified folds)",
    }
    for (stage, seconds, _), peak in zip(stages, memory, strict=True):
        print(f"| {names.get(stage, stage)} | {seconds:.2f} | {peak:.0f} |")
    print(f"| **all of the above** | **{total:.2f}** | |")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nPeak resident memory of the whole process (data included): {rss:.0f} MiB.\n")
    ours = dict((stage, seconds) for stage, seconds, _ in stages)["brain score of age"]
    label = (
        f"{baseline_full:.1f} (measured {baseline:.1f} s for {baseline_n} permutations, "
        f"extrapolated linearly)"
        if baseline_n != args.permutations
        else f"{baseline:.1f}"
    )
    print("| brain score with a permutation p-value | time (s) |")
    print("|---|---:|")
    print(
        f"| scikit-learn `permutation_test_score` (RidgeCV, the same {request.folds} grouped "
        f"folds, {args.permutations} permutations) | {label} |"
    )
    print(f"| brainvae `brain_score` (all permutations as targets of one ridge per fold) | "
          f"{ours:.2f} |")  # fmt: skip
    print(f"| **ratio (scikit-learn / brainvae)** | **{baseline_full / ours:.0f}x** |")
    score = analysis.scores[0]
    print(
        f"\nChecks on the planted structure: {analysis.classification.describe()}; "
        f"{score.describe()}; bias warnings: {len(analysis.warnings())}."
    )


if __name__ == "__main__":
    main()
