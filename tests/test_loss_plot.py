"""The training dock's loss plot: points land on the curves, and the y axis follows the later
epochs when the first ones dwarf them, until the user zooms."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from brainvae.napari.widgets.loss_plot import LossPlot


def epoch(k: int, loss: float) -> SimpleNamespace:
    return SimpleNamespace(
        epoch=k,
        train_loss=loss,
        train_reconstruction=loss * 0.9,
        train_kl=loss * 0.1,
        val_loss=loss * 1.05,
        val_reconstruction=None,
        val_kl=None,
    )


@pytest.fixture
def plot(qtbot):
    plot = LossPlot()
    qtbot.addWidget(plot.widget)
    return plot


def y_range(plot: LossPlot) -> tuple[float, float]:
    low, high = plot.widget.getViewBox().viewRange()[1]
    return low, high


def test_points_are_drawn_only_when_asked(plot):
    plot.add_epoch(epoch(1, 10.0), draw=False)
    assert plot.count("train_loss") == 1
    assert len(plot.curves["train_loss"].getData()[0] or []) == 0
    plot.draw()
    assert list(plot.curves["train_loss"].getData()[1]) == [10.0]


def test_the_y_axis_follows_later_epochs_until_the_user_zooms(plot):
    losses = [1.0e6, 2.0e4] + [100.0 - k for k in range(18)]  # epoch 1 dwarfs the rest
    for k, loss in enumerate(losses, start=1):
        plot.add_epoch(epoch(k, loss), draw=False)
    plot.draw()
    low, high = plot.focus_range()
    assert high < 200.0 and low == pytest.approx(min(losses) * 0.1)  # the KL series
    view_low, view_high = y_range(plot)
    assert view_high < 1000.0 and view_low <= low  # not stretched to 1e6
    plot.widget.getViewBox().sigRangeChangedManually.emit([False, True])  # a user's zoom
    plot.widget.setYRange(0.0, 2.0e6, padding=0)
    plot.draw()
    assert y_range(plot)[1] == pytest.approx(2.0e6)  # the user's range stays
    plot.clear()
    assert plot.focus and plot.focus_range() is None


def test_short_runs_and_log_scale_use_the_whole_range(plot):
    plot.add_epoch(epoch(1, 1.0e6))
    plot.add_epoch(epoch(2, 10.0))
    plot.draw()
    assert plot.focus_range() is None  # fewer than 3 epochs: nothing is cut
    plot.set_log(True)
    assert plot.count("train_loss") == 2


def test_validation_series_say_they_are_at_the_posterior_mean(plot):
    """Issue 12.6.3: validation is scored at z = mu (no sampling), training samples z; the
    legend and the plot's tooltip must not let the two pass for comparable numbers."""
    from brainvae.training.progress import VALIDATION_NOTE

    labels = {label.text: None for _, label in plot.widget.getPlotItem().legend.items}
    val_labels = [text for text in labels if text.startswith("val")]
    assert len(val_labels) == 3 and all("z = mu" in text for text in val_labels)
    assert not any("z = mu" in text for text in labels if text.startswith("train"))
    assert VALIDATION_NOTE in plot.widget.toolTip()
    assert "not comparable with the training loss" in VALIDATION_NOTE
