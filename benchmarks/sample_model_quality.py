"""How well a trained model's latent means encode ventricle size and lesion load.

Loads a run (or saved model) folder and a prepared dataset, encodes every sample to its
posterior means mu_1..mu_L, and prints, for each target column (default
ventricle_volume_ml and lesion_load_ml):

- R^2 of a linear regression (ordinary least squares on all L means) on HELD-OUT subjects,
  two ways:
  * "cv": k-fold cross-validation by subject (sklearn GroupKFold, groups = subject_id, over
    all samples of the dataset): the regression is fitted on k-1 folds and predicts the
    subjects of the k-th; R^2 of the pooled out-of-fold predictions (and the mean and minimum
    over folds). The encoder itself saw the train split's images (not their labels).
  * "test": the regression fitted on the train + val splits, scored on the dataset's test
    split, whose subjects neither the encoder nor the regression saw (small: ~16 subjects in
    the 2D sample, so expect noise).
- the best single-latent |r| (Pearson, all samples; and which latent), and the same on test.
- active units: brainvae's one definition (variance of mu over the scans > 0.01).

It prints figures and asserts nothing.

    python benchmarks/sample_model_quality.py sample_data/models/beta_vae_2d DATASET
    python benchmarks/sample_model_quality.py sample_data/models/beta_vae_3d DATASET

DATASET is the sample population prepared with `--preset identity`, as
scripts/train_sample_model.sh does (build/sample_model/<2d|3d>/ds).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from brainvae.analysis.latent_activity import latent_activity

DEFAULT_TARGETS = ("ventricle_volume_ml", "lesion_load_ml")


def encode(run_dir: str, dataset_dir: str, device: str = "cpu"):
    """(latents table with mu_*, metadata table, model) for every sample of the dataset."""
    from brainvae.data.dataset import PreparedDataset
    from brainvae.models import load_model
    from brainvae.training import resolve_device
    from brainvae.usecases.encoding import encode_dataset

    model = load_model(run_dir).to(resolve_device(device))
    dataset = PreparedDataset.open(dataset_dir)
    table = encode_dataset(model, dataset)
    return table, dataset.metadata.reset_index(drop=True), model


def r2(y: np.ndarray, prediction: np.ndarray) -> float:
    """Coefficient of determination of prediction against y."""
    residual = float(np.sum((y - prediction) ** 2))
    total = float(np.sum((y - y.mean()) ** 2))
    return 1.0 - residual / total if total > 0 else float("nan")


def grouped_cv_r2(mu: np.ndarray, y: np.ndarray, groups: np.ndarray, folds: int):
    """(pooled out-of-fold R^2, per-fold R^2 list) of OLS mu -> y with GroupKFold by subject."""
    from sklearn.linear_model import LinearRegression
    from sklearn.model_selection import GroupKFold

    prediction = np.zeros_like(y)
    per_fold = []
    for train, test in GroupKFold(n_splits=folds).split(mu, y, groups):
        fit = LinearRegression().fit(mu[train], y[train])
        prediction[test] = fit.predict(mu[test])
        per_fold.append(r2(y[test], prediction[test]))
    return r2(y, prediction), per_fold


def split_r2(mu: np.ndarray, y: np.ndarray, split: np.ndarray) -> float | None:
    """R^2 on the test split of OLS fitted on train + val; None without a test split."""
    from sklearn.linear_model import LinearRegression

    test = split == "test"
    if test.sum() < 3 or (~test).sum() < mu.shape[1] + 2:
        return None
    fit = LinearRegression().fit(mu[~test], y[~test])
    return r2(y[test], fit.predict(mu[test]))


def best_abs_r(mu: np.ndarray, y: np.ndarray) -> tuple[float, int]:
    """(largest |Pearson r| between one latent mean and y, its 1-based latent index)."""
    values = []
    for j in range(mu.shape[1]):
        if np.std(mu[:, j]) == 0 or np.std(y) == 0:
            values.append(0.0)
        else:
            values.append(abs(float(np.corrcoef(mu[:, j], y)[0, 1])))
    best = int(np.argmax(values))
    return values[best], best + 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", metavar="RUN", help="run folder or saved model folder")
    parser.add_argument("dataset", metavar="DATASET", help="folder made by `brainvae prepare`")
    parser.add_argument("--targets", nargs="+", default=list(DEFAULT_TARGETS))
    parser.add_argument("--folds", type=int, default=5, help="GroupKFold folds (default 5)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)

    table, metadata, model = encode(args.run_dir, args.dataset, args.device)
    latent = model.latent_dim
    mu = table[[f"mu_{i}" for i in range(1, latent + 1)]].to_numpy(dtype=np.float64)
    subjects = metadata["subject_id"].astype(str).to_numpy()
    split = (
        metadata["split"].astype(str).to_numpy()
        if "split" in metadata.columns
        else np.array(["train"] * len(metadata))
    )
    n_subjects = len(set(subjects))
    activity = latent_activity(mu)
    n_active, variance = activity.n_active, activity.variance
    config = model.config
    print(
        f"Model {args.run_dir}: {config.family}, arch {config.architecture}, L = {latent}, "
        f"beta {config.beta:g}, likelihood {config.likelihood}"
        + (f" (sigma {config.gaussian_sigma:g})" if config.gaussian_sigma else "")
    )
    print(
        f"Dataset {args.dataset}: {len(mu)} samples of {n_subjects} subjects "
        f"(test split: {int((split == 'test').sum())} samples, "
        f"{len(set(subjects[split == 'test']))} subjects)"
    )
    print(
        f"Active units (variance of mu over the scans > 0.01): {n_active} of {latent}  "
        f"[variances: {' '.join(f'{v:.3g}' for v in variance)}]"
    )
    print(
        f"Linear decoding (OLS on all {latent} latent means), R^2 on held-out subjects; "
        f"best single latent |r|:"
    )
    for target in args.targets:
        if target not in metadata.columns:
            print(f"  {target}: not in the dataset's metadata", file=sys.stderr)
            continue
        y = metadata[target].to_numpy(dtype=np.float64)
        pooled, per_fold = grouped_cv_r2(mu, y, subjects, args.folds)
        on_test = split_r2(mu, y, split)
        r_all, j_all = best_abs_r(mu, y)
        test = split == "test"
        r_test, j_test = best_abs_r(mu[test], y[test]) if test.sum() > 2 else (float("nan"), 0)
        print(
            f"  {target}: R^2 {args.folds}-fold GroupKFold by subject {pooled:.3f} "
            f"(folds mean {np.mean(per_fold):.3f}, min {np.min(per_fold):.3f}); "
            f"R^2 test split {'n/a' if on_test is None else f'{on_test:.3f}'}; "
            f"best |r| {r_all:.3f} (mu_{j_all}, all samples), "
            f"{r_test:.3f} (mu_{j_test}, test split)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
