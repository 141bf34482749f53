"""Receptive vs projective fields compared like with like (issue 12, point 3), inactive latents
never flagged as findings, and the far sides' asymmetry (point 5), on real linear models whose
encoder and decoder patterns are known."""

from __future__ import annotations

import numpy as np
import pytest

from brainvae.analysis.projective_field import projective_field
from brainvae.analysis.projective_maps import band_asymmetry, field_agreement, projective_matrix
from brainvae.analysis.projective_sweep import SweepSettings
from brainvae.analysis.receptive_field import receptive_field
from brainvae.analysis.roi_masks import roi_masks
from brainvae.errors import ProjectiveFieldError
from helpers.projective_fixtures import (
    SHARED_AMPLITUDES,
    HingeModel,
    PatternModel,
    pattern_population,
    sized_rois,
)

SWEEP = SweepSettings(low=-2.0, high=2.0, step=0.25, split=1.0, units="prior")


def _pattern(labels: np.ndarray, amplitudes) -> np.ndarray:
    """A per-voxel weight that is constant inside each ROI (label l gets amplitudes[l - 1])."""
    pattern = np.zeros(labels.shape)
    for label, amplitude in enumerate(amplitudes, start=1):
        pattern[labels == label] = amplitude
    return pattern


def _both_fields(model: PatternModel, labels: np.ndarray):
    """(enrichment (R, L), receptive field) of a model over the four sized ROIs."""
    names = {1: "big", 2: "medium", 3: "small", 4: "tiny"}
    images = pattern_population(model)
    receptive = receptive_field(model, images, labels, names, kind="add")
    masks, _ = roi_masks(labels, names, labels.shape)
    projective = projective_field(model, range(model.latent_dim), np.zeros(model.latent_dim), SWEEP)
    brain = np.ones(labels.shape, dtype=bool)
    return projective_matrix(projective.total_variance, masks, brain), receptive


def test_shared_pattern_agrees_per_voxel_though_raw_impact_ranks_it_backwards():
    """Encoder reads and decoder writes one pattern over ROIs of 600, 150, 36 and 9 voxels:
    rho = +1 per ROI voxel, not flagged; the raw impact (what was compared before) gives -1."""
    labels, template = sized_rois()
    shared = _pattern(labels, SHARED_AMPLITUDES)[None]
    enrichment, receptive = _both_fields(PatternModel(template, shared, shared), labels)
    assert receptive.roi_sizes.tolist() == [600, 150, 36, 9]
    agreement = field_agreement(enrichment, receptive.impact, receptive.roi_sizes)
    assert agreement.rho[0] == pytest.approx(1.0) and not agreement.disagree[0]
    np.testing.assert_allclose(agreement.impact_per_voxel, receptive.impact_per_voxel)
    raw = field_agreement(enrichment, receptive.impact, np.ones(4))  # sizes ignored: raw
    assert raw.rho[0] == pytest.approx(-1.0) and raw.disagree[0]


def test_encoder_and_decoder_on_different_regions_are_flagged():
    labels, template = sized_rois()
    reads = _pattern(labels, (0.0, 0.0, 1.0, 0.5))[None]  # the encoder looks at small, tiny
    writes = _pattern(labels, (0.3, 0.6, 0.0, 0.0))[None]  # the decoder paints big, medium
    enrichment, receptive = _both_fields(PatternModel(template, reads, writes), labels)
    agreement = field_agreement(enrichment, receptive.impact, receptive.roi_sizes)
    assert agreement.rho[0] < 0 and agreement.disagree.tolist() == [True]


def test_inactive_latents_are_reported_not_flagged():
    impact = np.array([[3.0, 1.0], [1.0, 2.0], [2.0, 3.0]])
    projective = np.array([[5.0, 3.0], [1.0, 2.0], [2.0, 1.0]])
    sizes = np.ones(3)
    both = field_agreement(projective, impact, sizes)
    np.testing.assert_allclose(both.rho, [1.0, -1.0])
    assert both.disagree.tolist() == [False, True]
    one_dead = field_agreement(projective, impact, sizes, active=[True, False])
    assert one_dead.disagree.tolist() == [False, False]  # reported as inactive instead
    assert one_dead.inactive.tolist() == [False, True] and one_dead.rho[1] == pytest.approx(-1)
    constant = field_agreement(np.ones((3, 2)), impact, sizes)
    assert np.all(np.isnan(constant.rho)) and constant.disagree.all()
    with pytest.raises(ProjectiveFieldError, match="needs at least 3"):
        field_agreement(projective[:2], impact[:2], sizes[:2])
    with pytest.raises(ProjectiveFieldError, match="3 positive voxel counts"):
        field_agreement(projective, impact, [4, 0, 2])


def test_a_bend_far_on_the_negative_side_shows_as_asymmetry_where_it_bends():
    """A decoder linear in c except for an artefact beyond c = -1 in one ROI: per unit var(c)
    the large-negative band outweighs the large-positive one, and the surplus sits in that ROI;
    the linear twin is symmetric (ratio 1)."""
    labels, template = sized_rois()
    pattern = _pattern(labels, (0.2, 0.2, 0.2, 0.2))[None]
    bend = (labels == 2).astype(float)  # the artefact appears only in "medium"
    names = {1: "big", 2: "medium", 3: "small", 4: "tiny"}
    masks, _ = roi_masks(labels, names, labels.shape)
    brain = np.ones(labels.shape, dtype=bool)
    for model, bent in ((HingeModel(template, pattern, pattern, bend, 1.0), True),
                        (PatternModel(template, pattern, pattern), False)):  # fmt: skip
        result = projective_field(model, [0], np.zeros(1), SWEEP)
        normalised = result.normalised_band_variance
        ratio, surplus = band_asymmetry(normalised, brain)
        if bent:
            assert ratio[0] > 3.0
            where = projective_matrix(surplus, masks, brain)[:, 0]
            assert int(np.argmax(where)) == 1  # medium
            assert surplus[0][labels != 2].max() < 1e-4 * surplus.max()  # float32 rounding
        else:
            assert ratio[0] == pytest.approx(1.0, rel=1e-4)
            assert surplus.max() < 1e-6 * normalised.max()
    with pytest.raises(ProjectiveFieldError, match=r"must be \(K, 4, \*spatial\)"):
        band_asymmetry(normalised[:, :3], brain)
