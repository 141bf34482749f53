"""Open napari with the plugin's docks and the sample population: `python -m brainvae.napari.launch`.

`--screenshot FILE` saves a picture of the whole window and quits, which is how the
README's screenshot is made and how a headless session checks what a user sees.
"""

from __future__ import annotations

import argparse
from pathlib import Path

PLUGIN = "napari-brainvae"
DOCK_WIDGETS = (
    "Population data",
    "Training",
    "Latent explorer",
    "Receptive fields",
    "Projective fields",
)


def build_viewer(dims: int = 2, load_sample: bool = True):
    """A viewer with every dock of the plugin and (optionally) the sample population open."""
    import napari

    viewer = napari.Viewer(title="napari-brainvae")
    viewer.window._qt_window.resize(1500, 900)
    docks = {}
    qt_docks = {}
    for widget_name in DOCK_WIDGETS:
        # Training and the explorer share one tabbed area, so the window fits a laptop screen
        tabify = widget_name in ("Latent explorer", "Receptive fields", "Projective fields")
        dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, widget_name, tabify=tabify)
        docks[widget_name], qt_docks[widget_name] = widget, dock
    qt_docks["Latent explorer"].raise_()  # what a new user wants first: sliders on a model
    if load_sample:
        data_widget = docks["Population data"]
        data_widget.source.value = (
            "Sample population (2D)" if dims == 2 else "Sample population (3D)"
        )
        data_widget.start_loading()
        explorer = docks["Latent explorer"]  # the shipped model of the same dimensionality
        explorer.model_source.value = (
            "Sample model (2D beta-VAE)" if dims == 2 else "Sample model (3D beta-VAE)"
        )
        explorer.load_chosen_model()
    return viewer, docks


def _screenshot_when_ready(viewer, docks, path: Path, timeout_s: float, scan: int) -> None:
    """Wait for the sample to load (or time out), save a window screenshot, then quit."""
    import time

    from qtpy.QtCore import QTimer
    from qtpy.QtWidgets import QApplication

    started = time.monotonic()
    widget = docks["Population data"]

    def check() -> None:
        busy = widget._worker is not None
        if busy and time.monotonic() - started < timeout_s:
            QTimer.singleShot(200, check)
            return
        viewer.dims.set_current_step(0, scan)
        QApplication.processEvents()
        viewer.screenshot(str(path), canvas_only=False, flash=False)
        print(f"screenshot written to {path}")
        viewer.close()

    QTimer.singleShot(500, check)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dims", type=int, choices=(2, 3), default=2, help="sample population to load"
    )
    parser.add_argument("--no-sample", action="store_true", help="open the docks only")
    parser.add_argument(
        "--screenshot", type=Path, help="save a window screenshot to this PNG and quit"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        help="seconds to wait for loading before a screenshot",
    )
    parser.add_argument("--scan", type=int, default=0, help="scan shown in the screenshot")
    args = parser.parse_args(argv)

    import napari

    viewer, docks = build_viewer(args.dims, load_sample=not args.no_sample)
    if args.screenshot is not None:
        _screenshot_when_ready(viewer, docks, args.screenshot, args.timeout, args.scan)
    napari.run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
