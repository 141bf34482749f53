"""Disentanglement scores of latent codes against known generating factors (MIG, SAP, DCI)
and the label-free Gaussian total correlation of the codes.

Each score follows google-research/disentanglement_lib's definition (evaluation/metrics:
mig.py, sap_score.py, dci.py, unsupervised_metrics.py), as pure functions over arrays:
`codes` are (N, L) latent means, one row per scan; `factors` are (N, K) ground-truth factor
values on the same rows. disentanglement_lib's factors are already discrete (indices of a
dSprites grid); ours may be continuous (age), so where a definition needs classes (MIG's
entropy, the classifiers of DCI and of discrete SAP) each factor column is turned into labels
by `factor_labels`: a column with at most `n_bins` distinct values keeps them as its classes,
any other is cut into `n_bins` equal-width bins, like the codes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from brainvae.errors import DatasetError

DEFAULT_BINS = 20
"""Bins per code (and per continuous factor), as in disentanglement_lib's MIG configuration."""
SAP_SVM_C = 0.01
"""Regularisation of SAP's per-(latent, factor) linear SVM (disentanglement_lib's value)."""
DCI_SMOOTHING = 1e-11
"""Added to the importances before their entropies (disentanglement_lib's value): a code
that no tree uses counts as spread evenly, not as a division by zero."""
VARIANCE_FLOOR = 1e-12
"""A latent whose variance is at most this explains no factor in continuous SAP."""


def _matrix(values, what: str) -> np.ndarray:
    """(N, columns) float64 array of finite values; a 1-D array is one column."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise DatasetError(f"{what} must be a (scans, columns) table, not shape {array.shape}")
    if array.shape[0] < 2 or array.shape[1] < 1:
        raise DatasetError(f"{what} hold {array.shape[0]} row(s) x {array.shape[1]} column(s)")
    bad = ~np.isfinite(array)
    if bad.any():
        row, column = np.argwhere(bad)[0]
        raise DatasetError(
            f"{what} hold {int(bad.sum())} missing or infinite value(s) "
            f"(first: row {row}, column {column})"
        )
    return array


def _paired(codes, factors, which: str = "") -> tuple[np.ndarray, np.ndarray]:
    """Codes and factors as float tables with one row per scan each, the same scans."""
    codes = _matrix(codes, f"{which}codes".strip())
    factors = _matrix(factors, f"{which}factors".strip())
    if len(codes) != len(factors):
        raise DatasetError(
            f"{which}codes hold {len(codes)} scans but {which}factors hold {len(factors)}: "
            "give one factor row per encoded scan, in the same order"
        )
    return codes, factors


def _names(factor_names, count: int) -> tuple[str, ...]:
    """The factors' names, or factor_0 ... when none are given."""
    if factor_names is None:
        return tuple(f"factor_{j}" for j in range(count))
    names = tuple(str(name) for name in factor_names)
    if len(names) != count:
        raise DatasetError(f"{len(names)} factor names given for {count} factor columns")
    return names


def _need_latents(codes: np.ndarray, score: str) -> None:
    """Gap scores compare a factor's best latent with its second best: two at least."""
    if codes.shape[1] < 2:
        raise DatasetError(f"{score} compares the two best latents per factor: needs 2 or more")


def _edges(column: np.ndarray, n_bins: int) -> np.ndarray:
    """n_bins + 1 equal-width edges over the column's range (numpy's histogram edges)."""
    return np.histogram_bin_edges(column, bins=n_bins)


def discretize(values: np.ndarray, n_bins: int = DEFAULT_BINS) -> np.ndarray:
    """Each column cut into `n_bins` equal-width bins over its own range, labels 1..n_bins
    (disentanglement_lib's histogram discretisation: the bin's left edge at or below the value,
    the maximum in the last bin); why: MIG's mutual information is between discrete variables."""
    if n_bins < 1:
        raise DatasetError(f"n_bins must be 1 or more, not {n_bins}")
    array = np.asarray(values, dtype=np.float64)
    table = _matrix(array, "values")
    labels = np.empty(table.shape, dtype=np.int64)
    for j in range(table.shape[1]):
        labels[:, j] = np.digitize(table[:, j], _edges(table[:, j], n_bins)[:-1])
    return labels.reshape(array.shape)


def _column_labels(train: np.ndarray, test: np.ndarray, n_bins: int):
    """Class labels of one factor column on two sets: its own values when the two sets hold
    at most n_bins distinct ones, else equal-width bins fixed on the training set (test values
    beyond its range fall in the end bins), so a label means the same on both sets."""
    distinct, inverse = np.unique(np.concatenate([train, test]), return_inverse=True)
    if len(distinct) <= n_bins:
        return inverse[: len(train)], inverse[len(train) :]
    inner = _edges(train, n_bins)[1:-1]
    return np.digitize(train, inner), np.digitize(test, inner)


def factor_labels(
    factors: np.ndarray, n_bins: int = DEFAULT_BINS, test: np.ndarray | None = None
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """(N, K) integer classes of the factors: a column with at most n_bins distinct values
    (site, an artefact flag, a severity) keeps them as classes, a continuous one (age) is cut
    into n_bins equal-width bins. With `test`, returns (train labels, test labels) binned
    alike, the edges set on `factors`."""
    train = _matrix(factors, "factors")
    other = train[:0] if test is None else _matrix(test, "test factors")
    if other.shape[1] != train.shape[1] and test is not None:
        raise DatasetError(
            f"test factors have {other.shape[1]} columns but training factors {train.shape[1]}"
        )
    train_labels = np.empty(train.shape, dtype=np.int64)
    test_labels = np.empty(other.shape, dtype=np.int64)
    for j in range(train.shape[1]):
        train_labels[:, j], test_labels[:, j] = _column_labels(train[:, j], other[:, j], n_bins)
    return train_labels if test is None else (train_labels, test_labels)


def mutual_information_matrix(codes, factors, n_bins: int = DEFAULT_BINS) -> np.ndarray:
    """(L, K) mutual information (nats) between each binned code and each factor's classes
    (scikit-learn's mutual_info_score on the labels, as disentanglement_lib computes it)."""
    from sklearn.metrics import mutual_info_score

    codes, factors = _paired(codes, factors)
    code_labels = discretize(codes, n_bins)
    labels = factor_labels(factors, n_bins)
    information = np.empty((codes.shape[1], factors.shape[1]))
    for i in range(codes.shape[1]):
        for j in range(factors.shape[1]):
            information[i, j] = mutual_info_score(labels[:, j], code_labels[:, i])
    return information


@dataclass(frozen=True)
class MIGResult:
    """Mutual information gap: per factor, the best latent's information minus the second
    best's, over the factor's entropy; score = their mean (1: each factor in one latent)."""

    score: float
    per_factor: np.ndarray  # (K,)
    mutual_information: np.ndarray  # (L, K) nats
    factor_entropy: np.ndarray  # (K,) nats, of the factor's classes
    factor_names: tuple[str, ...]


def mig(codes, factors, n_bins: int = DEFAULT_BINS, factor_names=None) -> MIGResult:
    """MIG of codes against factors (Chen et al. 2018, disentanglement_lib's discrete_mig):
    why: a high score needs each factor captured by a single latent, not shared out."""
    from sklearn.metrics import mutual_info_score

    codes, factors = _paired(codes, factors)
    names = _names(factor_names, factors.shape[1])
    _need_latents(codes, "MIG")
    information = mutual_information_matrix(codes, factors, n_bins)
    labels = factor_labels(factors, n_bins)
    entropy = np.array([mutual_info_score(column, column) for column in labels.T])
    constant = [name for name, value in zip(names, entropy, strict=True) if value <= 0]
    if constant:
        raise DatasetError(
            f"factor(s) {', '.join(constant)} take one value on every scan: MIG divides by a "
            "factor's entropy, so leave constant factors out"
        )
    ranked = np.sort(information, axis=0)[::-1]
    per_factor = (ranked[0] - ranked[1]) / entropy
    return MIGResult(float(per_factor.mean()), per_factor, information, entropy, names)


@dataclass(frozen=True)
class SAPResult:
    """Separated attribute predictability: per factor, the best latent's predictability minus
    the second best's; score = their mean."""

    score: float
    per_factor: np.ndarray  # (K,)
    score_matrix: np.ndarray  # (L, K): R^2 (continuous) or balanced-SVM test accuracy
    factor_names: tuple[str, ...]


def _squared_correlation(code: np.ndarray, factor: np.ndarray) -> float:
    """R^2 of a one-latent linear fit: cov^2 / (var code * var factor), 0 for a flat code."""
    covariance = np.cov(code, factor, ddof=1)
    if covariance[0, 0] <= VARIANCE_FLOOR:
        return 0.0
    return float(covariance[0, 1] ** 2 / (covariance[0, 0] * covariance[1, 1]))


def _svm_accuracy(code, labels, code_test, labels_test) -> float:
    """Test accuracy of a linear SVM predicting the factor's class from one latent (a factor
    with one class on the training scans: the share of test scans in that class)."""
    from sklearn.svm import LinearSVC

    if len(np.unique(labels)) < 2:
        return float(np.mean(labels_test == labels[0]))
    classifier = LinearSVC(C=SAP_SVM_C, class_weight="balanced", random_state=0)
    classifier.fit(code[:, None], labels)
    return float(np.mean(classifier.predict(code_test[:, None]) == labels_test))


def _continuous_columns(continuous_factors, count: int) -> np.ndarray:
    """(K,) whether each factor is scored as continuous: one flag for all, or one each."""
    flags = np.atleast_1d(np.asarray(continuous_factors, dtype=bool))
    if flags.size == 1:
        return np.repeat(flags, count)
    if flags.size != count:
        raise DatasetError(f"{flags.size} continuous_factors flags given for {count} factors")
    return flags


def sap(
    codes_train,
    factors_train,
    codes_test,
    factors_test,
    continuous_factors: bool | Sequence[bool] = False,
    factor_names=None,
) -> SAPResult:
    """SAP (Kumar et al. 2018, disentanglement_lib's sap_score): continuous factors score each
    latent by its squared correlation with the factor on the training set (the test set is not
    used); discrete ones by a balanced linear SVM's test accuracy (factor_labels' classes).
    `continuous_factors` is one flag for all factors or one per factor (e.g. the negation of
    FactorTable.discrete); the gap is taken per factor, so the two kinds can be mixed. A
    linear SVM on one latent can only threshold it: keep the SVM for factors with few classes."""
    codes, factors = _paired(codes_train, factors_train, "training ")
    codes_test, factors_test = _paired(codes_test, factors_test, "test ")
    _same_width(codes, codes_test, factors, factors_test)
    names = _names(factor_names, factors.shape[1])
    _need_latents(codes, "SAP")
    continuous = _continuous_columns(continuous_factors, factors.shape[1])
    labels, labels_test = factor_labels(factors, DEFAULT_BINS, factors_test)
    matrix = np.empty((codes.shape[1], factors.shape[1]))
    for i in range(codes.shape[1]):
        for j in range(factors.shape[1]):
            if continuous[j]:
                matrix[i, j] = _squared_correlation(codes[:, i], factors[:, j])
            else:
                matrix[i, j] = _svm_accuracy(
                    codes[:, i], labels[:, j], codes_test[:, i], labels_test[:, j]
                )
    ranked = np.sort(matrix, axis=0)
    per_factor = ranked[-1] - ranked[-2]
    return SAPResult(float(per_factor.mean()), per_factor, matrix, names)


def _same_width(codes, codes_test, factors, factors_test) -> None:
    """Training and test sets must have the same latents and the same factors."""
    if codes.shape[1] != codes_test.shape[1] or factors.shape[1] != factors_test.shape[1]:
        raise DatasetError(
            f"training set has {codes.shape[1]} latents and {factors.shape[1]} factors, test "
            f"set {codes_test.shape[1]} latents and {factors_test.shape[1]} factors"
        )


@dataclass(frozen=True)
class DCIResult:
    """Disentanglement (each latent important for one factor), completeness (each factor
    carried by one latent), informativeness (classification accuracy of the factors' classes
    from all latents, on the training and the test set)."""

    disentanglement: float
    completeness: float
    informativeness_train: float
    informativeness_test: float
    importance: np.ndarray  # (L, K): gradient-boosted trees' feature importance
    factor_names: tuple[str, ...]


def _one_minus_entropy(weights: np.ndarray) -> np.ndarray:
    """Per column: 1 - entropy of the (smoothed, normalised) weights in base = rows."""
    from scipy.stats import entropy

    return 1.0 - entropy(weights + DCI_SMOOTHING, base=weights.shape[0], axis=0)


def disentanglement_per_code(importance: np.ndarray) -> np.ndarray:
    """(L,) 1 - entropy of each latent's importance over the factors (1: one factor only)."""
    return _one_minus_entropy(np.asarray(importance, np.float64).T)


def completeness_per_factor(importance: np.ndarray) -> np.ndarray:
    """(K,) 1 - entropy of each factor's importance over the latents (1: one latent only)."""
    return _one_minus_entropy(np.asarray(importance, np.float64))


def _weighted(per_item: np.ndarray, importance: np.ndarray, axis: int) -> float:
    """Mean of per-item scores weighted by each item's share of all importance (even weights
    when nothing is important)."""
    if importance.sum() == 0:
        importance = np.ones_like(importance)
    share = importance.sum(axis=axis) / importance.sum()
    return float(np.sum(per_item * share))


def dci(
    codes_train,
    factors_train,
    codes_test,
    factors_test,
    n_bins: int = DEFAULT_BINS,
    seed: int = 0,
    factor_names=None,
) -> DCIResult:
    """DCI (Eastwood & Williams 2018, disentanglement_lib's dci): one scikit-learn
    GradientBoostingClassifier per factor predicts its classes (factor_labels, bins fixed on
    the training set) from all latents; its feature importances fill the importance matrix."""
    from sklearn.ensemble import GradientBoostingClassifier

    codes, factors = _paired(codes_train, factors_train, "training ")
    codes_test, factors_test = _paired(codes_test, factors_test, "test ")
    _same_width(codes, codes_test, factors, factors_test)
    names = _names(factor_names, factors.shape[1])
    if codes.shape[1] < 2 or factors.shape[1] < 2:
        raise DatasetError(
            "DCI spreads importance over latents and factors: needs 2 or more of each "
            f"(got {codes.shape[1]} latent(s), {factors.shape[1]} factor(s))"
        )
    labels, labels_test = factor_labels(factors, n_bins, factors_test)
    importance = np.zeros((codes.shape[1], factors.shape[1]))
    accuracy_train, accuracy_test = [], []
    for j in range(factors.shape[1]):
        if len(np.unique(labels[:, j])) < 2:
            raise DatasetError(
                f"factor {names[j]} takes one value on every training scan: no classifier "
                "can learn it; leave it out"
            )
        model = GradientBoostingClassifier(random_state=seed)
        model.fit(codes, labels[:, j])
        importance[:, j] = np.abs(model.feature_importances_)
        accuracy_train.append(np.mean(model.predict(codes) == labels[:, j]))
        accuracy_test.append(np.mean(model.predict(codes_test) == labels_test[:, j]))
    return DCIResult(
        disentanglement=_weighted(disentanglement_per_code(importance), importance, axis=1),
        completeness=_weighted(completeness_per_factor(importance), importance, axis=0),
        informativeness_train=float(np.mean(accuracy_train)),
        informativeness_test=float(np.mean(accuracy_test)),
        importance=importance,
        factor_names=names,
    )


def gaussian_total_correlation(codes) -> float:
    """Total correlation of a Gaussian fitted to the codes (their sample covariance S):
    0.5 * (sum log diag S - log det S), in nats; 0 when the latents are uncorrelated, inf when
    one latent is a linear combination of others. Latents that never vary carry nothing and
    are left out. Why: a label-free check that the latents are statistically independent."""
    table = _matrix(codes, "codes")
    table = table[:, np.ptp(table, axis=0) > 0]
    if table.shape[1] == 0:
        return 0.0
    if table.shape[0] <= table.shape[1]:
        raise DatasetError(
            f"the covariance of {table.shape[1]} varying latents needs more than "
            f"{table.shape[1]} scans, got {table.shape[0]}"
        )
    covariance = np.atleast_2d(np.cov(table, rowvar=False))
    sign, log_determinant = np.linalg.slogdet(covariance)
    if sign <= 0 or not np.isfinite(log_determinant):
        return float("inf")
    return float(0.5 * (np.sum(np.log(np.diag(covariance))) - log_determinant))
