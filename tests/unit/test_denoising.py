"""The denoising comparison over arrays and models (brainvae.evaluation.denoising): an
identity model copies every artefact (reproduced 1, the input's own scores), a constant model
removes it (reproduced 0), a fitted PCA lies between; the tables, the montage and the
figure agree with what was scored; models that do not take the same scans are refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_artefacts import brain_like

from brainvae.evaluation.artefacts import ARTEFACTS, corrupt_scans
from brainvae.evaluation.denoising import NO_ARTEFACT, SCORES, denoising_comparison

SHAPE = (28, 32)


def drive(steps):
    reports = []
    while True:
        try:
            reports.append(next(steps))
        except StopIteration as finished:
            return finished.value, reports


def pca_config(shape: tuple[int, ...], latent: int):
    from brainvae.models import ModelConfig

    return ModelConfig(input_shape=shape, latent_dim=latent, family="pca", likelihood="gaussian")


def identity_model(shape: tuple[int, ...]):
    """A PCA whose components are the whole pixel basis: reconstruct(x) == x."""
    from brainvae.models import build_model

    n = int(np.prod(shape))
    model = build_model(pca_config(shape, n))
    with torch.no_grad():
        model.components.copy_(torch.eye(n))
        model.explained_variance.fill_(1.0)
        model.n_samples_seen.fill_(1)
    return model.eval()


def constant_model(images: np.ndarray):
    """A PCA of one component orthogonal to every image: reconstruct(x) == the mean image."""
    from brainvae.models import build_model

    shape = images.shape[1:]
    model = build_model(pca_config(shape, 1))
    with torch.no_grad():
        model.mean.copy_(torch.from_numpy(images.mean(axis=0).ravel()))
        model.explained_variance.fill_(1.0)  # components stay 0: every code decodes to the mean
        model.n_samples_seen.fill_(1)
    return model.eval()


def fitted_pca(images: np.ndarray, latent: int = 3):
    from brainvae.models import build_model

    return build_model(pca_config(images.shape[1:], latent)).fit(images).eval()


@pytest.fixture(scope="module")
def population() -> np.ndarray:
    return np.stack([brain_like(SHAPE, i) for i in range(7)])


@pytest.fixture(scope="module")
def compared(population):
    models = {
        "identity": identity_model(SHAPE),
        "constant": constant_model(population),
        "pca": fitted_pca(population),
    }
    return drive(denoising_comparison(models, population, seed=4, batch=3))


def test_identity_copies_constant_removes_and_the_tables_hold_every_row(compared, population):
    result, reports = compared
    n, artefacts = len(population), len(ARTEFACTS)
    assert [r.done for r in reports] == list(range(1, 3 * (1 + artefacts) + 1))
    assert all(r.total == 3 * (1 + artefacts) for r in reports)
    table = result.table
    assert len(table) == n * (1 + artefacts) * 3
    assert list(table.columns) == ["scan", "artefact", "model", *SCORES, "changed_voxels"]
    assert list(dict.fromkeys(table["artefact"])) == [NO_ARTEFACT, *ARTEFACTS]
    assert len(result.inputs) == n * artefacts
    scored = table[table["artefact"] != NO_ARTEFACT]
    identity = scored[scored["model"] == "identity"].reset_index(drop=True)
    constant = scored[scored["model"] == "constant"]
    assert np.allclose(identity["artefact_reproduced"], 1.0, atol=1e-4)
    assert np.allclose(constant["artefact_reproduced"], 0.0, atol=1e-9)
    # the identity's reconstruction is the corrupted input: the same scores as the input
    inputs = result.inputs.reset_index(drop=True)
    for name in ("cw_ssim", "ssim", "mse", "artefact_mse"):
        assert np.allclose(identity[name], inputs[name], rtol=1e-4, atol=1e-7), name
    assert (scored["changed_voxels"] > 0).all()
    clean = table[table["artefact"] == NO_ARTEFACT]
    assert np.allclose(clean[clean["model"] == "identity"]["cw_ssim"], 1.0, atol=1e-6)
    assert clean[["artefact_mse", "artefact_reproduced"]].isna().all().all()
    # a fitted PCA of 3 components passes some but not all of each artefact
    pca = scored[scored["model"] == "pca"].groupby("artefact")["artefact_reproduced"].mean()
    assert ((pca > 0.0) & (pca < 0.9)).all(), pca


def test_region_scores_by_hand(compared, population):
    """artefact_mse and artefact_reproduced of one scan, recomputed from the definitions."""
    result, _ = compared
    pca = result.models["pca"]
    scan = 5
    corrupted = corrupt_scans(population[scan : scan + 1], "missing", 1.0, 4, None, [scan])
    x = population[scan].astype(np.float64)
    c = corrupted.images[0].astype(np.float64)
    region = corrupted.changed[0]
    with torch.no_grad():
        r = pca.reconstruct(corrupted.images).numpy()[0].astype(np.float64)
        r0 = pca.reconstruct(population[scan : scan + 1]).numpy()[0].astype(np.float64)
    expected_mse = ((r - x) ** 2)[region].mean()
    expected_share = ((r - r0) * (c - x))[region].sum() / ((c - x) ** 2)[region].sum()
    row = result.table.query("scan == @scan and artefact == 'missing' and model == 'pca'")
    assert row["artefact_mse"].item() == pytest.approx(expected_mse, rel=1e-5)
    assert row["artefact_reproduced"].item() == pytest.approx(expected_share, rel=1e-4)
    assert row["changed_voxels"].item() == region.sum()


def test_summary_least_reproduced_and_montage(compared, population):
    result, _ = compared
    summary = result.summary()
    assert len(summary) == (1 + len(ARTEFACTS)) * 3
    assert (summary["n_scans"] == len(population)).all()
    mean = result.table.query("artefact == 'grid' and model == 'pca'")["cw_ssim"].mean()
    assert summary.query("artefact == 'grid' and model == 'pca'")["cw_ssim"].item() == (
        pytest.approx(mean)
    )
    assert result.least_reproduced() == {a: "constant" for a in ARTEFACTS}
    assert list(result.input_summary()["artefact"]) == list(ARTEFACTS)
    montage, changed = result.pictures(2)
    assert list(montage) == list(ARTEFACTS)
    assert result.columns == ("clean", "corrupted", "identity", "constant", "pca")
    for artefact, stack in montage.items():
        assert stack.shape == (5, *SHAPE)
        again = corrupt_scans(population[2:3], artefact, 1.0, 4, None, [2])
        assert np.array_equal(stack[0], population[2])
        assert np.array_equal(stack[1], again.images[0])  # the scored corruption, bit for bit
        assert np.allclose(stack[2], again.images[0], atol=1e-5)  # the identity copies it
        assert np.allclose(stack[3], population.mean(axis=0), atol=1e-5)
        assert np.array_equal(changed[artefact], again.changed[0])
    assert np.array_equal(result.montage(2)["grid"], montage["grid"])


def test_severity_zero_scores_every_model_as_on_the_clean_scans(population):
    models = {"pca": fitted_pca(population)}
    result, _ = drive(denoising_comparison(models, population, ("grid",), severity=0.0))
    table = result.table
    clean = table[table["artefact"] == NO_ARTEFACT].reset_index(drop=True)
    grid = table[table["artefact"] == "grid"].reset_index(drop=True)
    assert np.allclose(grid["cw_ssim"], clean["cw_ssim"]) and (grid["changed_voxels"] == 0).all()
    assert grid["artefact_reproduced"].isna().all()


def test_volumes_are_compared_and_drawn(tmp_path):
    from brainvae.figures.denoising_figure import denoising_figure, row_view

    volumes = np.stack([brain_like((16, 18, 15), i) for i in range(4)])
    models = {"identity": identity_model(volumes.shape[1:]), "pca": fitted_pca(volumes, 2)}
    result, _ = drive(denoising_comparison(models, volumes, ("missing", "leakage"), seed=1))
    assert len(result.table) == 4 * 3 * 2
    montage, changed = result.pictures(1)
    assert montage["missing"].shape == (4, 16, 18, 15)
    view = row_view(changed["leakage"], brain=result.brain_mask)
    assert view.cut_axis == 0 and view.words.startswith("axial slice")  # display axes I, P, R
    assert view.picture(montage["leakage"][1]).shape == (18, 15)
    figure = denoising_figure(montage, changed, result.columns, result.summary(),
                              result.input_summary(), title="3D")  # fmt: skip
    figure.savefig(tmp_path / "m.png", dpi=60)
    assert (tmp_path / "m.png").stat().st_size > 1000


def test_a_volume_row_shows_the_slice_where_the_artefact_shows_in_the_plane():
    from brainvae.figures.denoising_figure import row_view

    shape = (12, 14, 10)
    grid = np.zeros(shape, bool)
    grid[::4] = True  # whole axial planes (a grid plane): a uniformly darker picture
    grid[:, ::4] = True
    grid[:, :, ::4] = True
    view = row_view(grid)
    assert view.cut_axis == 0 and view.index % 4 != 0 and "most artefact in view" in view.words
    band = np.zeros(shape, bool)
    band[5:8] = True  # a missing band of axial slices: no axial slice shows it beside brain
    view = row_view(band)
    assert view.cut_axis in (1, 2) and view.picture(band.astype(float)).mean() == 3 / 12
    blob = np.zeros(shape, bool)
    blob[2:5, 3:6, 3:5] = True
    blob[9, 1, 1] = True
    view = row_view(blob)
    assert view.cut_axis == 0 and 2 <= view.index <= 4
    nothing = row_view(np.zeros(shape, bool))
    assert nothing.index == 6 and "middle" in nothing.words


def test_models_that_do_not_take_these_scans_are_refused(population):
    from brainvae.errors import ModelError
    from brainvae.evaluation.artefacts import ArtefactError

    small = np.stack([brain_like((20, 20), i) for i in range(4)])
    models = {"wide": fitted_pca(population), "square": fitted_pca(small)}
    with pytest.raises(ModelError, match=r"wide.*\(28, 32\).*square.*\(20, 20\)"):
        drive(denoising_comparison(models, population))
    with pytest.raises(ModelError, match=r"square.*\(20, 20\).*\(28, 32\)"):
        drive(denoising_comparison({"square": models["square"]}, population))
    with pytest.raises(ArtefactError, match="known: leakage, missing, grid"):
        drive(denoising_comparison({"wide": models["wide"]}, population, ("blur",)))
    with pytest.raises(ModelError, match="at least one model"):
        drive(denoising_comparison({}, population))
