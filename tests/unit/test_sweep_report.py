"""The sweep report: the inflection rule (a pure function), gathering whatever cells exist and
the figures, on metrics.json files written the way `brainvae sweep` writes them."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from brainvae.cli import main
from brainvae.errors import DataFileError
from brainvae.evaluation.sweep_report import (
    CELL_FORMAT,
    METRICS_FILE,
    gather_sweep,
    grid_record,
    inflection_lines,
    inflection_point,
    run_name,
)


def test_inflection_is_where_later_steps_improve_less_than_the_fraction_of_the_range():
    # CW-SSIM over L = 2, 4, 8, 16, 32: range 0.4; steps 0.3, 0.06, 0.03, 0.01 (75, 15, 7.5
    # and 2.5 % of the range)
    x = [2, 4, 8, 16, 32]
    y = [0.5, 0.8, 0.86, 0.89, 0.9]
    found = inflection_point(x, y, higher_is_better=True, fraction=0.1)
    assert found.x == 8 and found.index == 2 and found.plateau_reached
    assert found.total_range == pytest.approx(0.4)
    np.testing.assert_allclose(found.improvements, [0.3, 0.06, 0.03, 0.01])
    # a 20 % rule also calls the step 4 -> 8 flat; a 5 % rule not the step 8 -> 16
    assert inflection_point(x, y, True, fraction=0.2).x == 4
    assert inflection_point(x, y, True, fraction=0.05).x == 16


def test_inflection_for_a_lower_is_better_metric_and_unsorted_input():
    # MSE falling then flat, given out of order
    found = inflection_point([16, 4, 8, 2], [0.0101, 0.012, 0.0102, 0.03], False, 0.1)
    assert found.x == 4 and found.plateau_reached
    # the same numbers read as higher-is-better: every step is a loss, so flat from the start
    assert inflection_point([16, 4, 8, 2], [0.0101, 0.012, 0.0102, 0.03], True, 0.1).x == 2


def test_a_series_still_improving_at_its_end_has_no_plateau():
    found = inflection_point([1, 3, 10], [0.2, 0.3, 0.9], True, 0.1)
    assert found.x == 10 and not found.plateau_reached


def test_steps_are_measured_against_the_sweeps_range_when_given():
    # two betas giving almost the same MSE: 100 % of the series' own range, 0.1 % of the sweep's
    assert not inflection_point([1, 3], [0.0075, 0.0074], False, 0.1).plateau_reached
    found = inflection_point([1, 3], [0.0075, 0.0074], False, 0.1, scale=0.1)
    assert found.x == 1 and found.plateau_reached and found.total_range == 0.1


def test_flat_and_short_series_and_missing_values():
    assert inflection_point([1, 2, 3], [0.5, 0.5, 0.5], True).x == 1  # no range: flat
    assert inflection_point([1], [0.5], True).x is None
    found = inflection_point([1, 2, 3, 4], [0.1, np.nan, 0.9, 0.91], True, 0.1)
    assert found.x == 3  # the NaN point left out: steps 1->3 (0.8), 3->4 (0.01)
    with pytest.raises(ValueError, match="fraction"):
        inflection_point([1, 2], [1, 2], True, fraction=1.5)


def write_cell(sweep, beta, latent, cell, metrics, training=None):
    """A cell folder with a metrics.json as `brainvae sweep` writes it."""
    folder = sweep / run_name(beta, latent)
    folder.mkdir(parents=True, exist_ok=True)
    record = {
        "format": CELL_FORMAT,
        "cell": cell,
        "beta": beta,
        "latent_dim": latent,
        "run": folder.name,
        "training": training or {"reason": "completed", "epochs": 3},
        "measurements": {},
        "metrics": metrics,
    }
    (folder / METRICS_FILE).write_text(json.dumps(record), encoding="utf-8")


def curve(latent, beta):
    """A saturating CW-SSIM and a falling MSE: better with L, levelling off at 8."""
    cw = {2: 0.5, 4: 0.75, 8: 0.88, 16: 0.89}[latent] - 0.02 * beta
    return {"cw_ssim": cw, "mse": 0.1 - cw / 10, "active_latents": min(latent, 6)}


@pytest.fixture
def sweep_dir(tmp_path):
    """A 2 x 4 grid (betas 1, 3; L 2..16) with cell beta 3, L 16 missing."""
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    betas, latents = [1.0, 3.0], [2, 4, 8, 16]
    (sweep / "sweep.json").write_text(json.dumps(grid_record(betas, latents)), encoding="utf-8")
    cell = 0
    for beta in betas:
        for latent in latents:
            cell += 1
            if (beta, latent) != (3.0, 16):
                write_cell(sweep, beta, latent, cell, curve(latent, beta))
    return sweep


def test_gather_names_the_missing_cells_and_finds_the_inflections(sweep_dir):
    sweep = gather_sweep(sweep_dir)
    assert sweep.missing == ("beta-3_latent-16",)
    assert len(sweep.table) == 7 and list(sweep.table["cell"]) == [1, 2, 3, 4, 5, 6, 7]
    assert sweep.metrics() == ["cw_ssim", "mse", "active_latents"]
    found = sweep.inflection("cw_ssim", "latent_dim")
    # the sweep's CW-SSIM range: 0.44 (beta 3, L 2) to 0.87 (beta 1, L 16)
    assert found[1.0].total_range == pytest.approx(0.43)
    assert found[1.0].x == 8 and found[1.0].plateau_reached  # 8 -> 16 gains 0.01
    assert found[3.0].x == 8 and not found[3.0].plateau_reached  # its L 16 is missing
    assert sweep.inflection("active_latents") == {}  # neither direction is better
    table = sweep.inflection_table()
    row = table[(table.metric == "mse") & (table.along == "latent_dim") & (table.beta == 1.0)]
    assert float(row["inflection"].iloc[0]) == 8
    lines = inflection_lines(sweep)
    assert any(
        line.startswith("CW-SSIM of reconstructions against L: beta = 1: L = 8") for line in lines
    )


def test_gather_without_grid_file_uses_the_cell_names(sweep_dir):
    (sweep_dir / "sweep.json").unlink()
    sweep = gather_sweep(sweep_dir)
    assert sweep.betas == (1.0, 3.0) and sweep.latents == (2, 4, 8, 16)
    assert sweep.missing == ("beta-3_latent-16",)  # the folder is not there at all


def test_a_folder_with_no_cells_is_refused(tmp_path):
    with pytest.raises(DataFileError, match="no cell"):
        gather_sweep(tmp_path)
    with pytest.raises(DataFileError, match="no such sweep folder"):
        gather_sweep(tmp_path / "nothing")
    (tmp_path / "beta-1_latent-2").mkdir()  # a cell that never finished
    with pytest.raises(DataFileError, match="none of its 1 cells"):
        gather_sweep(tmp_path)


def test_a_damaged_metrics_file_is_named(sweep_dir):
    path = sweep_dir / "beta-1_latent-4" / METRICS_FILE
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(DataFileError, match="metrics.json"):
        gather_sweep(sweep_dir)


def test_sweep_report_writes_tables_and_figures(sweep_dir, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["sweep-report", str(sweep_dir), "--out", str(out), "--plateau", "10"]) == 0
    printed = capsys.readouterr().out
    assert "7 of 8 cells have results" in printed and "Missing: beta-3_latent-16" in printed
    assert "CW-SSIM of reconstructions against L: beta = 1: L = 8" in printed
    for name in ("report.csv", "inflections.csv", "summary.json"):
        assert (out / name).is_file(), name
    for stem in ("metrics_vs_latent", "metrics_vs_beta"):
        assert (out / f"{stem}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (out / f"{stem}.pdf").read_bytes()[:5] == b"%PDF-"
    assert len(pd.read_csv(out / "report.csv")) == 7
    summary = json.loads((out / "summary.json").read_text())
    assert summary["missing"] == ["beta-3_latent-16"] and "10 %" in summary["inflection_rule"]
    assert "range over the sweep" in summary["inflection_rule"]
    assert main(["sweep-report", str(sweep_dir), "--out", str(out)]) == 2  # exists
    assert "--overwrite" in capsys.readouterr().err


def test_sweep_report_figure_marks_one_ring_per_series(sweep_dir):
    from brainvae.figures.sweep_figures import sweep_figure

    sweep = gather_sweep(sweep_dir)
    figure = sweep_figure(sweep, "latent_dim")
    panels = [ax for ax in figure.axes if ax.get_visible()]
    assert len(panels) == 3  # cw_ssim, mse, active latents
    cw_panel = panels[0]
    rings = [line for line in cw_panel.lines if line.get_markersize() >= 14]
    assert len(rings) == 2  # one per beta
    assert {ring.get_marker() for ring in rings} == {"o", "s"}  # levelled off / not within grid
    assert [ring.get_xdata()[0] for ring in rings] == [8, 8]
    assert panels[2].lines and not [ln for ln in panels[2].lines if ln.get_markersize() >= 14]


def test_sweep_report_help_shows_the_default_plateau(capsys):
    with pytest.raises(SystemExit):
        main(["sweep-report", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default 10)" in text and "smallest value from which every later step" in text
