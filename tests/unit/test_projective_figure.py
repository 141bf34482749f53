"""The projective-field publication figure (issue 14, point 3): panels per latent (one in 2D,
axial + coronal + sagittal in 3D through the slices of largest variance), sides and positions
read from the affine, a key naming the bands, inactive latents marked, 180 mm at 300 dpi."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from brainvae.analysis.projective_colour import colour_composite
from brainvae.analysis.projective_field import projective_field
from brainvae.analysis.projective_sweep import SweepSettings
from brainvae.data.io.nifti import display_affine
from brainvae.exports.figures import save_projective_figure
from brainvae.figures.panels import FigureError, Geometry, max_variance_slices
from brainvae.figures.projective_figure import (
    DEFAULT_DPI,
    DEFAULT_WIDTH_MM,
    PANEL_LABEL,
    projective_figure,
)
from helpers.projective_fixtures import PatternModel

SETTINGS = SweepSettings(low=-1.0, high=1.0, step=0.25, split=0.5, units="prior")
SHAPE_3D = (12, 14, 10)
CENTRES_3D = ((3, 9, 6), (8, 4, 2))
"""Where each latent's pattern peaks: the slices of largest variance."""


def _blob(shape: tuple[int, ...], centre: tuple[int, ...], width: float = 1.5) -> np.ndarray:
    grid = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    distance = sum((axis - c) ** 2 for axis, c in zip(grid, centre, strict=True))
    return np.exp(-distance / (2 * width**2))


def _field(shape: tuple[int, ...], centres: tuple[tuple[int, ...], ...]):
    """(result, colour, limits, mean) of a linear model whose latent k moves a blob at
    centres[k] on a grey template, and its bands bent so the colours differ."""
    template = np.full(shape, 0.5)
    write = np.stack([_blob(shape, c) for c in centres])
    model = PatternModel(template, write, write)
    result = projective_field(model, range(len(centres)), np.zeros(len(centres)), SETTINGS)
    colour, limits = colour_composite(result.colour_bands)
    mean = template + 0.3 * _blob(shape, tuple(n // 2 for n in shape), width=3.0)
    return result, colour, limits, mean


@pytest.fixture(scope="module")
def volume():
    return _field(SHAPE_3D, CENTRES_3D)


@pytest.fixture(scope="module")
def slice_2d():
    return _field((20, 24), ((6, 8), (14, 16), (10, 5)))


def _panels(figure) -> list:
    return [axes for axes in figure.axes if axes.get_label().startswith(PANEL_LABEL)]


def _texts(figure) -> list[str]:
    words = [text.get_text() for text in figure.texts]
    for axes in figure.axes:
        words += [text.get_text() for text in axes.texts]
    return words


def test_a_volume_gets_three_orthogonal_slices_per_latent_through_its_largest_variance(volume):
    result, colour, limits, mean = volume
    affine = display_affine((2.0, 2.0, 2.0))
    affine[:3, 3] = (-10.0, 14.0, 11.0)
    picks = max_variance_slices(result.total_variance)
    np.testing.assert_array_equal(picks, CENTRES_3D)
    figure = projective_figure(result, colour, limits, mean_image=mean, affine=affine)
    panels = _panels(figure)
    assert len(panels) == 3 * result.n_latents
    assert all(len(axes.images) == 1 for axes in panels)
    assert [axes.get_label() for axes in panels[:3]] == [
        f"{PANEL_LABEL} z1 axial",
        f"{PANEL_LABEL} z1 coronal",
        f"{PANEL_LABEL} z1 sagittal",
    ]
    # each panel is the slice through the blob: full colour at its centre, dim far off
    axial = np.asarray(panels[0].images[0].get_array())
    assert axial.shape[:2] == (SHAPE_3D[1], SHAPE_3D[2])  # rows posterior, columns right
    assert axial[CENTRES_3D[0][1:]].max() == pytest.approx(1.0, abs=1e-6)
    assert axial[0, -1].max() < 0.36
    words = _texts(figure)
    assert {"slice 3", "slice 9", "slice 6"} <= set(words)  # z1's slices, from 0 as in napari
    # positions in mm from the affine: axis 0 runs along -z, 2 mm a voxel, from z = 11 mm
    assert "axial, z = 5 mm" in words  # 11 - 2 x 3
    assert "coronal, y = \u22124 mm" in words  # 14 - 2 x 9
    assert "sagittal, x = 2 mm" in words  # -10 + 2 x 6
    sides = [w for axes in panels[:3] for w in (t.get_text() for t in axes.texts) if len(w) == 1]
    assert sides == ["L", "R", "L", "R", "A", "P"]


def test_sides_come_from_the_affine_not_from_habit():
    flipped = display_affine()
    flipped[0, 2] = -1.0  # the columns walk towards the subject's left
    assert Geometry.of(flipped).axcodes == ("I", "P", "L")
    assert Geometry.of(None).axcodes == ("I", "P", "R")  # the reader's display orientation
    with pytest.raises(FigureError, match="finite 4 x 4"):
        Geometry.of(np.eye(3))


def test_chosen_slices_and_latents(volume):
    result, colour, limits, mean = volume
    figure = projective_figure(result, colour, limits, slices=(5, 6, 7), latents=[1])
    panels = _panels(figure)
    assert [axes.get_label() for axes in panels] == [
        f"{PANEL_LABEL} z2 axial",
        f"{PANEL_LABEL} z2 coronal",
        f"{PANEL_LABEL} z2 sagittal",
    ]
    assert {"slice 5", "slice 6", "slice 7"} <= set(_texts(figure))
    assert any("slices as chosen" in words for words in _texts(figure))
    with pytest.raises(FigureError, match="slice 12 on axis 0 is outside the grid"):
        projective_figure(result, colour, limits, slices=(12, 0, 0))
    with pytest.raises(FigureError, match="latents must be positions 0..1"):
        projective_figure(result, colour, limits, latents=[2])


def test_a_slice_gets_one_panel_per_latent_and_the_key_names_the_bands(slice_2d):
    result, colour, limits, mean = slice_2d
    coronal = display_affine((1.5, 1.5, 1.5))
    figure = projective_figure(
        result, colour, limits, mean_image=mean, affine=coronal, squeezed_axes=(1,),
        active=[True, False, True],
    )  # fmt: skip
    panels = _panels(figure)
    assert len(panels) == result.n_latents == 3
    assert all(len(axes.images) == 1 for axes in panels)
    assert panels[0].get_label() == f"{PANEL_LABEL} z1 coronal"
    words = _texts(figure)
    assert "coronal, y = 0 mm" in words
    for band in ("cyan: small positive c", "magenta: small negative c", "yellow: large |c|"):
        assert band in words
    assert "0 to 0.5 prior units" in words and "\u22120.5 to 0 prior units" in words
    assert any("grey/white = all three alike" in line for line in words)
    assert any("Colour limits per latent" in line for line in words)
    # the inactive latent: titled so, in grey, its panel framed in grey
    title = next(text for text in figure.texts if text.get_text().startswith("z2"))
    assert "inactive" in title.get_text() and title.get_color() != "black"
    assert panels[1].spines["left"].get_visible() and not panels[0].spines["left"].get_visible()
    # the key's ramps end at each band's colour
    strips = [axes for axes in figure.axes if axes.get_label().startswith("key")]
    ends = [tuple(np.round(axes.images[0].get_array()[0, -1], 3)) for axes in strips]
    assert ends == [(0.0, 1.0, 1.0), (1.0, 0.0, 1.0), (1.0, 1.0, 0.0)]


def test_the_colours_are_blended_over_the_dimmed_mean(slice_2d):
    result, colour, limits, mean = slice_2d
    figure = projective_figure(result, colour, limits, mean_image=mean)
    picture = np.asarray(_panels(figure)[0].images[0].get_array())
    strength = colour[0].max(axis=-1)
    weak = strength < 0.01  # far from the blob: the dimmed brain, grey, at most 0.35
    assert np.allclose(picture[weak][:, 0], picture[weak][:, 2], atol=0.02)
    assert 0.1 < picture[weak].max() <= 0.36
    strong = np.unravel_index(np.argmax(strength), strength.shape)
    np.testing.assert_allclose(picture[strong], colour[0][strong], atol=1e-6)  # full opacity


def test_saved_png_is_a_double_column_at_300_dpi_and_vector_formats_by_suffix(
    volume, slice_2d, tmp_path
):
    expected = round(DEFAULT_WIDTH_MM / 25.4 * DEFAULT_DPI)
    for name, (result, colour, limits, mean) in (("volume", volume), ("slice", slice_2d)):
        path = save_projective_figure(
            tmp_path / f"{name}.png", result, colour, limits, mean_image=mean
        )
        with Image.open(path) as picture:
            assert abs(picture.size[0] - expected) <= 1
            assert picture.size[1] > 300
            assert picture.info["dpi"][0] == pytest.approx(DEFAULT_DPI, abs=0.01)
    result, colour, limits, mean = slice_2d
    draft = save_projective_figure(tmp_path / "draft.png", result, colour, limits, dpi=150)
    with Image.open(draft) as picture:  # the dpi asked for, the same 180 mm
        assert abs(picture.size[0] - expected / 2) <= 1
    svg = save_projective_figure(tmp_path / "figure.svg", result, colour, limits)
    assert "<svg" in svg.read_text()[:1000]
    pdf = save_projective_figure(tmp_path / "figure.pdf", result, colour, limits)
    assert pdf.read_bytes()[:5] == b"%PDF-"
    with pytest.raises(FigureError, match="figure.jpg: a figure is saved as .png, .pdf, .svg"):
        save_projective_figure(tmp_path / "figure.jpg", result, colour, limits)
    assert not (tmp_path / "figure.jpg").exists()
