"""The training dock's loss plot: points land on the curves, and the y axis follows the later
epochs when the first ones dwarf them, until the user zooms; a sentence until the first point,
axes in the loss's own units, active latents on the right, the legend inside the plot."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest

from brainvae.napari.widgets.loss_plot import MIN_HEIGHT, LossPlot, loss_axis_label


def epoch(k: int, loss: float, active_units: int | None = None) -> SimpleNamespace:
    return SimpleNamespace(
        epoch=k,
        train_loss=loss,
        train_reconstruction=loss * 0.9,
        train_kl=loss * 0.1,
        val_loss=loss * 1.05,
        val_reconstruction=None,
        val_kl=None,
        active_units=active_units,
    )


def batch_report(k: int, batch: int, n_batches: int, loss: float) -> SimpleNamespace:
    return SimpleNamespace(epoch=k, batch=batch, n_batches=n_batches, loss=loss)


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

    plot.add_epoch(epoch(1, 10.0))
    texts = plot.legend_texts()
    assert [text for text in texts if "z = mu" in text] == ["validation (z = mu)"]
    assert "total" in texts and "reconstruction" in texts and "KL" in texts
    assert VALIDATION_NOTE in plot.widget.toolTip()
    assert "not comparable with the training loss" in VALIDATION_NOTE


def test_a_sentence_stands_in_for_the_plot_until_the_first_point(plot):
    """Issue 14: no meaningless empty axes before a run."""
    assert not plot.showing_curves and not plot.placeholder.isHidden()
    assert "once training starts" in plot.placeholder.text()
    plot.add_epoch(epoch(1, 10.0), draw=False)
    assert not plot.showing_curves  # recorded, not yet drawn
    plot.draw()
    assert plot.showing_curves and plot.placeholder.isHidden()
    plot.clear()
    assert not plot.showing_curves and not plot.placeholder.isHidden()
    plot.set_placeholder("PCA has no loss curve.")
    assert plot.placeholder.text() == "PCA has no loss curve."


def test_axes_say_their_units_without_si_prefix(plot):
    """Issue 14: ticks read as the loss's own numbers (no "(x1e+06)" rescaling), labels
    name the units, and the x axis counts what the dock's "train for" counts."""
    plot.set_axes("steps", loss_axis_label("gaussian", 0.05))
    for k in range(1, 4):
        for batch in range(1, 6):
            plot.add_batch(batch_report(k, batch, 5, 2.0e6 / (k * batch)), draw=False)
        plot.add_epoch(epoch(k, 1.0e6 / k), draw=False)
    plot.draw()
    item = plot.widget.getPlotItem()
    assert item.getAxis("bottom").labelText == "optimiser step"
    assert item.getAxis("left").labelText == "loss per image (nats)"
    for side in ("left", "bottom", "right"):
        axis = item.getAxis(side)
        assert axis.autoSIPrefixScale == 1.0 and "(x" not in axis.labelString()
    steps, _ = plot.curves["train_loss"].getData()
    assert list(steps) == [5.0, 10.0, 15.0]  # each epoch ends after its 5 steps
    batch_steps, _ = plot.curves["batch_loss"].getData()
    assert list(batch_steps) == [float(step) for step in range(1, 16)]
    plot.set_axes("epochs")
    assert item.getAxis("bottom").labelText == "epoch"
    assert list(plot.curves["train_loss"].getData()[0]) == [1.0, 2.0, 3.0]
    assert loss_axis_label("gaussian", None) == "loss per image (squared error + KL)"
    assert loss_axis_label("bernoulli", None) == "loss per image (nats)"


def test_active_latents_per_epoch_on_the_right_axis(plot):
    plot.set_axes("epochs", latent_dim=8)
    for k, active in enumerate([8, 5, 3], start=1):
        plot.add_epoch(epoch(k, 10.0 / k, active_units=active))
    xs, ys = plot.active_curve.getData()
    assert list(xs) == [1.0, 2.0, 3.0] and list(ys) == [8.0, 5.0, 3.0]
    assert "active latents" in plot.legend_texts()
    right = plot.widget.getPlotItem().getAxis("right")
    assert right.labelText == "active latents"
    low, high = plot.active_view.viewRange()[1]
    assert low <= 0.0 and 8.0 <= high < 9.0  # 0 to L, not to the loss's range
    plot.set_log(True)
    assert not right.logMode and list(plot.active_curve.getData()[1]) == [8.0, 5.0, 3.0]


def test_the_legend_stays_inside_a_small_plot(plot, qtbot):
    """Issue 14: the legend sits inside the plot area even at the dock's least height."""
    plot.panel.resize(380, MIN_HEIGHT)
    plot.panel.show()
    qtbot.waitExposed(plot.panel)
    plot.add_batch(batch_report(1, 1, 1, 12.0))
    assert plot.legend_texts() == ["each step"]  # only what is drawn is explained
    for k in range(1, 6):
        plot.add_batch(batch_report(k, 1, 1, 12.0 / k), draw=False)
        plot.add_epoch(epoch(k, 10.0 / k, active_units=3), draw=False)
    plot.draw()  # the legend is rebuilt with every entry, in order
    qtbot.wait(50)
    legend = plot.legend.sceneBoundingRect()
    area = plot.widget.getViewBox().sceneBoundingRect()
    assert plot.legend_texts() == [
        "total", "reconstruction", "KL", "validation (z = mu)", "each step", "active latents"
    ]  # fmt: skip
    assert area.contains(legend), (legend, area)


def test_a_loaded_history_is_drawn_at_its_steps(plot):
    history = pd.DataFrame(
        {
            "epoch": [1, 2, 3],
            "step": [7, 14, 21],
            "train_loss": [9.0, 5.0, 4.0],
            "val_loss": [8.0, 4.5, float("nan")],
            "active_units": [4, 3, 3],
        }
    )
    plot.set_axes("steps")
    plot.load_history(history)
    assert plot.showing_curves and plot.steps_per_epoch == 7
    assert list(plot.curves["train_loss"].getData()[0]) == [7.0, 14.0, 21.0]
    assert plot.count("val_loss") == 2 and plot.count("active_units") == 3
