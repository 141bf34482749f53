"""The population questions asked together of one encoded population: classification of a class
column (from the latents, and from PCA of the raw images for reference), the acquisition-bias
check, brain scores of numeric columns and the latent map. A generator of small progress reports
that returns a PopulationAnalysis (the command line and the dock both drain it)."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from brainvae.errors import PopulationAnalysisError
from brainvae.population.acquisition_bias import BiasCheck, acquisition_bias
from brainvae.population.brain_scores import BrainScore, brain_score, weights_table
from brainvae.population.classification import Classification, classify, lda_factory
from brainvae.population.columns import class_labels, measure, subject_groups
from brainvae.population.latent_map import LatentMap, latent_map
from brainvae.population.request import PopulationRequest, check_request
from brainvae.population.validation import plan_folds


@dataclass(frozen=True)
class PopulationProgress:
    """One step done of `total`: `stage` names what is being computed."""

    stage: str
    done: int
    total: int


@dataclass(frozen=True)
class PopulationAnalysis:
    """Everything one request computed. `rows` are the scans classified (indices into the
    population); brain scores carry their own `keep` masks."""

    request: PopulationRequest
    latent_names: tuple[str, ...]
    used: np.ndarray  # (L,) bool: latents the analyses used
    classification: Classification | None
    reference: Classification | None
    bias: BiasCheck | None
    scores: tuple[BrainScore, ...]
    map: LatentMap
    rows: np.ndarray | None  # scans with a class (into the population)
    notes: tuple[str, ...] = field(default_factory=tuple)

    def weights(self, field: str = "weights") -> pd.DataFrame | None:
        """Latent x measure: standardised regression weights, or field="correlations"."""
        if not self.scores:
            return None
        names = [n for n, u in zip(self.latent_names, self.used, strict=True) if u]
        return weights_table(self.scores, names, field)

    def warnings(self) -> tuple[str, ...]:
        return () if self.bias is None else self.bias.warnings


def used_latents(active: np.ndarray, all_latents: bool) -> np.ndarray:
    """Which latents the analyses use: the active ones unless all are asked for."""
    active = np.asarray(active, dtype=bool)
    if all_latents:
        return np.ones_like(active)
    if not active.any():
        raise PopulationAnalysisError(
            "no latent is active (code variance over the scans > 0.01): the model has "
            "collapsed, so the latents carry nothing to analyse; use all latents to see that "
            "for yourself, or train again"
        )
    return active


def analyse_population(
    codes: np.ndarray,
    table: pd.DataFrame,
    active: np.ndarray,
    request: PopulationRequest,
    images: Any = None,
) -> Generator[PopulationProgress, None, PopulationAnalysis]:
    """Ask `request`'s questions of (N, L) posterior means `codes` with one `table` row per
    scan; `images` (N, ...) is needed for the PCA reference only."""
    codes = np.asarray(codes, dtype=np.float64)
    if len(table) != len(codes):
        raise PopulationAnalysisError(
            f"the subjects table has {len(table)} rows for {len(codes)} scans"
        )
    table = table.reset_index(drop=True)
    check_request(request, table)
    if request.map_method == "latents" and max(request.map_latents) > codes.shape[1]:
        raise PopulationAnalysisError(
            f"map latents {request.map_latents[0]},{request.map_latents[1]}: the model has "
            f"{codes.shape[1]} latents (1..{codes.shape[1]})"
        )
    used = used_latents(active, request.all_latents)
    features = codes[:, used]
    names = tuple(f"z{i + 1}" for i in range(codes.shape[1]))
    groups = subject_groups(table)
    split = table["split"].astype(str).to_numpy() if "split" in table.columns else None
    total = (3 if request.classify else 0) + len(request.regress) + 1
    done = 0
    notes: list[str] = []
    classification = reference = bias = None
    rows = None
    if request.classify:
        labels = class_labels(table, request.classify, request.merge)
        rows = np.flatnonzero(labels.keep)
        truth = np.searchsorted(np.asarray(labels.classes, dtype=object), labels.labels)
        folds = plan_folds(
            groups[rows], labels.labels, None if split is None else split[rows],
            request.validation, request.folds, request.seed, f"classify {request.classify}",
        )  # fmt: skip
        if labels.note():
            notes.append(labels.note())
        yield PopulationProgress("classification from the latents", done, total)
        classification = classify(
            features[rows], truth, labels.classes, groups[rows], folds,
            f"latents ({int(used.sum())} of {len(used)})", lda_factory(request.shrinkage),
            request.n_bootstrap, request.seed,
        )  # fmt: skip
        done += 1
        yield PopulationProgress("PCA reference", done, total)
        if request.reference and images is not None:
            reference = classify(
                _ImageRows(images, rows), truth, labels.classes, groups[rows], folds,
                f"PCA of the images ({int(used.sum())} components)",
                _pca_lda(int(used.sum()), request.shrinkage, request.seed),
                request.n_bootstrap, request.seed,
            )  # fmt: skip
        elif request.reference:
            notes.append("no images given: the PCA reference was not computed")
        done += 1
        yield PopulationProgress("acquisition-bias check", done, total)
        bias = acquisition_bias(
            features[rows], table.iloc[rows].reset_index(drop=True), truth, labels.classes,
            groups[rows], folds, request.classify, classification.balanced_accuracy,
            request.nuisance, request.n_bootstrap, request.n_permutations, request.seed,
        )  # fmt: skip
        done += 1
    scores = []
    for column in request.regress:
        yield PopulationProgress(f"brain score of {column}", done, total)
        values = measure(table, column)
        keep = values.keep
        folds = plan_folds(
            groups[keep], None, None if split is None else split[keep], request.validation,
            request.folds, request.seed, f"regress {column}",
        )  # fmt: skip
        scores.append(
            brain_score(
                features[keep], values.values, groups[keep], folds, column, request.regression,
                request.n_permutations, request.seed, keep, values.n_missing,
            )
        )  # fmt: skip
        if values.note():
            notes.append(values.note())
        done += 1
    yield PopulationProgress("latent map", done, total)
    axes = None
    if classification is not None and request.map_method == "lda":
        axes = np.full((len(codes), classification.axes.shape[1]), np.nan)
        axes[rows] = classification.axes
    x, y = (int(i) - 1 for i in request.map_latents)
    the_map = latent_map(codes, used, request.map_method, (x, y), axes, request.seed)
    yield PopulationProgress("done", total, total)
    return PopulationAnalysis(
        request=request,
        latent_names=names,
        used=used,
        classification=classification,
        reference=reference,
        bias=bias,
        scores=tuple(scores),
        map=the_map,
        rows=rows,
        notes=tuple(notes),
    )


class _ImageRows:
    """The classified scans of an image stack, indexed like an array (read when asked)."""

    def __init__(self, images: Any, rows: np.ndarray):
        self.images, self.rows = images, rows

    def __getitem__(self, index: np.ndarray) -> np.ndarray:
        wanted = self.rows[index]
        order = np.argsort(wanted)
        taken = np.empty((len(wanted), *np.shape(self.images)[1:]), dtype=np.float32)
        taken[order] = np.asarray(self.images[wanted[order]], dtype=np.float32)
        return taken


def _pca_lda(components: int, shrinkage, seed: int):
    """PCA of the flattened images (fitted inside each fold) followed by the same LDA."""
    from sklearn.decomposition import PCA
    from sklearn.pipeline import make_pipeline

    lda = lda_factory(shrinkage)
    return lambda: make_pipeline(
        PCA(n_components=components, svd_solver="randomized", random_state=seed), lda()
    )
