"""MIG, SAP, DCI and the Gaussian total correlation: each against a transcription of
disentanglement_lib's definition written here with plain loops (no code shared with the
module; scikit-learn's classifiers are the definitions' own), on the same random arrays to
1e-6; then the known extremes (a permuted identity encoder, an encoder mixing every factor
into every latent) and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from brainvae.errors import DatasetError
from brainvae.evaluation.disentanglement_metrics import (
    dci,
    discretize,
    factor_labels,
    gaussian_total_correlation,
    mig,
    mutual_information_matrix,
    sap,
)

TOLERANCE = 1e-6


# --- the reference: disentanglement_lib's definitions, transcribed with loops -------------


def reference_bins(column, n_bins):
    """Histogram discretisation: n_bins equal-width bins over the column's range (a constant
    column spans value +- 0.5, as numpy's histogram does); label = number of left edges at or
    below the value (1..n_bins)."""
    low, high = float(min(column)), float(max(column))
    if low == high:
        low, high = low - 0.5, high + 0.5
    edges = np.linspace(low, high, n_bins + 1)
    return [sum(1 for edge in edges[:-1] if value >= edge) for value in column]


def reference_classes(train, test, n_bins):
    """Our rule for factors: at most n_bins distinct values are the classes themselves, else
    equal-width bins set on the training values (the end bins take anything beyond them)."""
    distinct = sorted(set(train) | set(test))
    if len(distinct) <= n_bins:
        return [distinct.index(v) for v in train], [distinct.index(v) for v in test]
    low, high = min(train), max(train)
    inner = np.linspace(low, high, n_bins + 1)[1:-1]

    def label(value):
        return sum(1 for edge in inner if value >= edge)

    return [label(v) for v in train], [label(v) for v in test]


def reference_mutual_information(a, b):
    """Plug-in mutual information (nats) of two label lists from their joint counts."""
    n = len(a)
    joint, count_a, count_b = {}, {}, {}
    for x, y in zip(a, b, strict=True):
        joint[(x, y)] = joint.get((x, y), 0) + 1
        count_a[x] = count_a.get(x, 0) + 1
        count_b[y] = count_b.get(y, 0) + 1
    total = 0.0
    for (x, y), count in joint.items():
        total += count / n * math.log(count * n / (count_a[x] * count_b[y]))
    return total


def reference_entropy(weights, base):
    """1 - entropy check helper: Shannon entropy (in `base`) of weights + 1e-11, normalised."""
    smoothed = [w + 1e-11 for w in weights]
    total = sum(smoothed)
    return -sum(p / total * math.log(p / total) for p in smoothed) / math.log(base)


def reference_mig(codes, factors, n_bins):
    n_codes, n_factors = codes.shape[1], factors.shape[1]
    code_labels = [reference_bins(list(codes[:, i]), n_bins) for i in range(n_codes)]
    factor_classes = [
        reference_classes(list(factors[:, j]), [], n_bins)[0] for j in range(n_factors)
    ]
    gaps = []
    for j in range(n_factors):
        informations = sorted(
            (
                reference_mutual_information(factor_classes[j], code_labels[i])
                for i in range(n_codes)
            ),
            reverse=True,
        )
        entropy = reference_mutual_information(factor_classes[j], factor_classes[j])
        gaps.append((informations[0] - informations[1]) / entropy)
    return sum(gaps) / len(gaps)


def reference_sap_continuous(codes, factors):
    n = codes.shape[0]
    gaps = []
    for j in range(factors.shape[1]):
        scores = []
        y = list(factors[:, j])
        mean_y = sum(y) / n
        var_y = sum((v - mean_y) ** 2 for v in y) / (n - 1)
        for i in range(codes.shape[1]):
            z = list(codes[:, i])
            mean_z = sum(z) / n
            var_z = sum((v - mean_z) ** 2 for v in z) / (n - 1)
            cov = sum((a - mean_z) * (b - mean_y) for a, b in zip(z, y, strict=True)) / (n - 1)
            scores.append(cov**2 / (var_z * var_y) if var_z > 1e-12 else 0.0)
        scores.sort()
        gaps.append(scores[-1] - scores[-2])
    return sum(gaps) / len(gaps)


def reference_sap_discrete(codes, factors, codes_test, factors_test):
    from sklearn.svm import LinearSVC

    gaps = []
    for j in range(factors.shape[1]):
        y, y_test = reference_classes(list(factors[:, j]), list(factors_test[:, j]), 20)
        scores = []
        for i in range(codes.shape[1]):
            svm = LinearSVC(C=0.01, class_weight="balanced", random_state=0)
            svm.fit(codes[:, i : i + 1], y)
            predicted = svm.predict(codes_test[:, i : i + 1])
            scores.append(
                sum(int(p == t) for p, t in zip(predicted, y_test, strict=True)) / len(y_test)
            )
        scores.sort()
        gaps.append(scores[-1] - scores[-2])
    return sum(gaps) / len(gaps)


def reference_dci(codes, factors, codes_test, factors_test, n_bins, seed):
    from sklearn.ensemble import GradientBoostingClassifier

    n_codes, n_factors = codes.shape[1], factors.shape[1]
    importance = [[0.0] * n_factors for _ in range(n_codes)]
    train_accuracy, test_accuracy = [], []
    for j in range(n_factors):
        y, y_test = reference_classes(list(factors[:, j]), list(factors_test[:, j]), n_bins)
        model = GradientBoostingClassifier(random_state=seed).fit(codes, y)
        for i in range(n_codes):
            importance[i][j] = abs(model.feature_importances_[i])
        train_accuracy.append(np.mean(model.predict(codes) == np.array(y)))
        test_accuracy.append(np.mean(model.predict(codes_test) == np.array(y_test)))
    total = sum(sum(row) for row in importance)
    disentanglement = sum(
        (1 - reference_entropy(importance[i], n_factors)) * sum(importance[i]) / total
        for i in range(n_codes)
    )
    columns = [[importance[i][j] for i in range(n_codes)] for j in range(n_factors)]
    completeness = sum(
        (1 - reference_entropy(columns[j], n_codes)) * sum(columns[j]) / total
        for j in range(n_factors)
    )
    return (
        disentanglement,
        completeness,
        sum(train_accuracy) / n_factors,
        sum(test_accuracy) / n_factors,
        importance,
    )


def reference_total_correlation(codes):
    """KL divergence from N(0, S) to N(0, diag S), S the sample covariance (ddof 1) built by
    loops: 0.5 * (trace(D^-1 S) - L + log(det D / det S))."""
    n, size = codes.shape
    means = [sum(codes[:, i]) / n for i in range(size)]
    cov = np.array(
        [
            [
                sum((codes[r, a] - means[a]) * (codes[r, b] - means[b]) for r in range(n)) / (n - 1)
                for b in range(size)
            ]
            for a in range(size)
        ]
    )
    diagonal = np.diag(np.diag(cov))
    trace = sum(cov[i, i] / diagonal[i, i] for i in range(size))
    return 0.5 * (trace - size + math.log(np.linalg.det(diagonal) / np.linalg.det(cov)))


# --- shared random arrays ----------------------------------------------------------------


def random_codes_and_factors(n, seed=0):
    """Codes partly driven by three factors of each kind we use: continuous (uniform), a
    3-level class (site-like) and a binary flag, plus noise; and a pure-noise latent."""
    rng = np.random.default_rng(seed)
    factors = np.column_stack(
        [rng.uniform(20, 90, n), rng.integers(0, 3, n).astype(float), rng.integers(0, 2, n)]
    )
    scaled = (factors - factors.mean(0)) / factors.std(0)
    codes = np.column_stack(
        [
            scaled[:, 0] + 0.5 * rng.normal(size=n),
            scaled[:, 1] + 0.3 * scaled[:, 0] + 0.8 * rng.normal(size=n),
            scaled[:, 2] - 0.4 * scaled[:, 1] + rng.normal(size=n),
            rng.normal(size=n),
        ]
    )
    return codes, factors


# --- against the reference ---------------------------------------------------------------


def test_discretize_matches_histogram_bins():
    codes, _ = random_codes_and_factors(200)
    codes[:, 3] = 1.5  # a constant column
    labels = discretize(codes, 7)
    for i in range(codes.shape[1]):
        assert labels[:, i].tolist() == reference_bins(list(codes[:, i]), 7)
    assert labels[:, 0].min() == 1 and labels[:, 0].max() == 7


def test_factor_labels_keep_classes_and_bin_continuous_factors():
    _, factors = random_codes_and_factors(150)
    train, test = factors[:100], factors[100:]
    labels, labels_test = factor_labels(train, 6, test)
    for j in range(3):
        expected, expected_test = reference_classes(list(train[:, j]), list(test[:, j]), 6)
        assert labels[:, j].tolist() == expected
        assert labels_test[:, j].tolist() == expected_test
    assert sorted(set(labels[:, 1])) == [0, 1, 2]  # the 3-level factor keeps its classes


def test_mutual_information_and_mig_match_the_reference():
    codes, factors = random_codes_and_factors(300)
    information = mutual_information_matrix(codes, factors, n_bins=20)
    for i in range(codes.shape[1]):
        code_labels = reference_bins(list(codes[:, i]), 20)
        for j in range(factors.shape[1]):
            classes = reference_classes(list(factors[:, j]), [], 20)[0]
            expected = reference_mutual_information(classes, code_labels)
            assert information[i, j] == pytest.approx(expected, abs=TOLERANCE)
    result = mig(codes, factors, n_bins=20, factor_names=("age", "site", "flag"))
    assert result.score == pytest.approx(reference_mig(codes, factors, 20), abs=TOLERANCE)
    assert result.factor_names == ("age", "site", "flag")
    assert result.mutual_information.shape == (4, 3)
    assert result.factor_entropy[2] == pytest.approx(
        reference_mutual_information(*(2 * [factors[:, 2].tolist()])), abs=TOLERANCE
    )
    assert 0.0 < result.score < 1.0


def test_sap_matches_the_reference_for_continuous_and_discrete_factors():
    codes, factors = random_codes_and_factors(400, seed=1)
    train, test = slice(0, 250), slice(250, None)
    continuous = sap(codes[train], factors[train], codes[test], factors[test], True)
    assert continuous.score == pytest.approx(
        reference_sap_continuous(codes[train], factors[train]), abs=TOLERANCE
    )
    discrete = sap(codes[train], factors[train], codes[test], factors[test], False)
    assert discrete.score == pytest.approx(
        reference_sap_discrete(codes[train], factors[train], codes[test], factors[test]),
        abs=TOLERANCE,
    )
    assert continuous.score_matrix.shape == discrete.score_matrix.shape == (4, 3)
    # One flag per factor: the continuous age by R^2, the two class factors by the SVM.
    mixed = sap(codes[train], factors[train], codes[test], factors[test], [True, False, False])
    np.testing.assert_allclose(mixed.score_matrix[:, 0], continuous.score_matrix[:, 0], atol=0)
    np.testing.assert_allclose(mixed.score_matrix[:, 1:], discrete.score_matrix[:, 1:], atol=0)
    assert mixed.score == pytest.approx(
        (continuous.per_factor[0] + discrete.per_factor[1:].sum()) / 3, abs=TOLERANCE
    )


def test_dci_matches_the_reference():
    codes, factors = random_codes_and_factors(240, seed=2)
    codes = codes[:, :3]
    train, test = slice(0, 160), slice(160, None)
    result = dci(codes[train], factors[train], codes[test], factors[test], n_bins=5, seed=3)
    d, c, i_train, i_test, importance = reference_dci(
        codes[train], factors[train], codes[test], factors[test], 5, 3
    )
    assert result.disentanglement == pytest.approx(d, abs=TOLERANCE)
    assert result.completeness == pytest.approx(c, abs=TOLERANCE)
    assert result.informativeness_train == pytest.approx(i_train, abs=TOLERANCE)
    assert result.informativeness_test == pytest.approx(i_test, abs=TOLERANCE)
    np.testing.assert_allclose(result.importance, importance, atol=TOLERANCE)


def test_total_correlation_matches_the_gaussian_kl_divergence():
    codes, _ = random_codes_and_factors(200, seed=4)
    assert gaussian_total_correlation(codes) == pytest.approx(
        reference_total_correlation(codes), abs=TOLERANCE
    )


# --- known extremes ----------------------------------------------------------------------


def independent_factors(n, k=4, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, (n, k))


def identity_encoder(factors, seed=0):
    """Each latent = one factor (in a shuffled order) plus noise far below a bin width."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(factors.shape[1])
    return factors[:, order] + rng.normal(0, 1e-3, factors.shape)


def mixing_encoder(factors):
    """Every latent = the same share of every factor (a normalised 4x4 Hadamard rotation)."""
    hadamard = np.array([[1, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]]) / 2
    return factors @ hadamard


def test_a_permuted_identity_encoder_scores_near_one():
    factors = independent_factors(2000)
    codes = identity_encoder(factors)
    # 20 bins and 2000 scans: the identity's MI is H(factor) ~ log 20, an unrelated latent's
    # plug-in MI is ~ (20-1)^2 / (2 * 2000) ~ 0.09 nats, so MIG ~ 0.97.
    assert mig(codes, factors).score > 0.9
    train, test = slice(0, 500), slice(1500, None)
    result = dci(codes[train], factors[train], codes[test], factors[test], n_bins=5)
    assert result.disentanglement > 0.95 and result.completeness > 0.95
    assert result.informativeness_test > 0.95
    assert sap(codes[train], factors[train], codes[test], factors[test], True).score > 0.95
    # Discrete SAP on balanced binary factors: the own latent's SVM is right 0.95-0.98 of the
    # time, any other latent's at chance (~0.5), so the gap tops out near 0.5, not 1.
    binary = (factors > 0.5).astype(float)
    discrete = sap(codes[train], binary[train], codes[test], binary[test], False)
    assert discrete.score > 0.4
    assert np.all(np.sort(discrete.score_matrix, axis=0)[-1] > 0.9)


def test_an_encoder_mixing_every_factor_scores_near_zero():
    factors = independent_factors(2000)
    codes = mixing_encoder(factors)
    assert mig(codes, factors).score < 0.1
    train, test = slice(0, 500), slice(1500, None)
    result = dci(codes[train], factors[train], codes[test], factors[test], n_bins=5)
    assert result.disentanglement < 0.1 and result.completeness < 0.1
    assert sap(codes[train], factors[train], codes[test], factors[test], True).score < 0.1
    binary = (factors > 0.5).astype(float)
    assert sap(codes[train], binary[train], codes[test], binary[test], False).score < 0.1


def codes_with_covariance(covariance, n, seed=0):
    """n codes whose sample covariance (ddof 1) is exactly `covariance`: whitened noise,
    then coloured by the covariance's Cholesky factor."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(size=(n, len(covariance)))
    noise -= noise.mean(0)
    whitening = np.linalg.cholesky(np.cov(noise, rowvar=False))
    white = np.linalg.solve(whitening, noise.T).T
    return white @ np.linalg.cholesky(covariance).T


def test_total_correlation_of_independent_correlated_and_known_codes():
    rng = np.random.default_rng(5)
    independent = rng.normal(size=(20000, 4)) * [1.0, 3.0, 0.2, 10.0]
    assert 0 <= gaussian_total_correlation(independent) < 2e-3
    correlated = independent[:, :2].copy()
    correlated[:, 1] = correlated[:, 0] + 0.1 * rng.normal(size=20000)
    assert gaussian_total_correlation(correlated) > 2.0  # r ~ 0.995: -0.5 log(1 - r^2) ~ 2.3
    # S with correlations 0.6 (a, b) and 0 elsewhere: TC = -0.5 log det R = -0.5 log 0.64.
    covariance = np.array([[4.0, 1.2, 0.0], [1.2, 1.0, 0.0], [0.0, 0.0, 9.0]])
    codes = codes_with_covariance(covariance, 500)
    assert gaussian_total_correlation(codes) == pytest.approx(-0.5 * math.log(0.64), abs=1e-9)


def test_total_correlation_leaves_out_flat_latents_and_is_infinite_for_a_copied_one():
    rng = np.random.default_rng(6)
    codes = rng.normal(size=(500, 3))
    with_flat = np.column_stack([codes, np.full(500, 0.7)])
    assert gaussian_total_correlation(with_flat) == pytest.approx(
        gaussian_total_correlation(codes), abs=1e-12
    )
    copied = np.column_stack([codes, codes[:, 0] - 2 * codes[:, 1]])
    assert gaussian_total_correlation(copied) > 10  # singular, or nearly so in floating point


# --- bad input ---------------------------------------------------------------------------


def test_codes_and_factors_of_different_lengths_are_refused():
    codes, factors = random_codes_and_factors(100)
    with pytest.raises(DatasetError, match="codes hold 100 scans but factors hold 99"):
        mig(codes, factors[:99])
    with pytest.raises(DatasetError, match="test codes hold 40 scans but test factors hold 39"):
        dci(codes[:60], factors[:60], codes[60:], factors[61:])
    with pytest.raises(DatasetError, match="training codes hold 60 scans"):
        sap(codes[:60], factors[:59], codes[60:], factors[60:])


def test_bad_values_and_shapes_are_refused_with_what_is_wrong():
    codes, factors = random_codes_and_factors(100)
    broken = codes.copy()
    broken[7, 2] = np.nan
    with pytest.raises(DatasetError, match=r"missing or infinite value\(s\) \(first: row 7, "):
        mig(broken, factors)
    flat = factors.copy()
    flat[:, 1] = 2.0
    with pytest.raises(DatasetError, match="factor_1 take one value on every scan"):
        mig(codes, flat)
    with pytest.raises(DatasetError, match="needs 2 or more"):
        mig(codes[:, :1], factors)
    with pytest.raises(DatasetError, match="2 factor names given for 3 factor columns"):
        mig(codes, factors, factor_names=("age", "site"))
    with pytest.raises(DatasetError, match="training set has 4 latents and 3 factors, test"):
        dci(codes[:60], factors[:60], codes[60:, :3], factors[60:])
    with pytest.raises(DatasetError, match="factor site takes one value on every training"):
        dci(codes[:60], flat[:60], codes[60:], flat[60:], factor_names=("age", "site", "flag"))
    with pytest.raises(DatasetError, match="2 continuous_factors flags given for 3 factors"):
        sap(codes[:60], factors[:60], codes[60:], factors[60:], [True, False])
    with pytest.raises(DatasetError, match="needs more than 4 scans, got 3"):
        gaussian_total_correlation(codes[:3])
