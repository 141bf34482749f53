"""Open napari with the plugin's docks and the sample population: `python -m brainvae.napari.launch`.

`--screenshot FILE` saves a picture of the whole window and quits, which is how the
README's screenshot is made and how a headless session checks what a user sees.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

PLUGIN = "napari-brainvae"
DOCK_WIDGETS = (
    "Population data",
    "Training",
    "Latent explorer",
    "Receptive fields",
    "Projective fields",
    "Population analysis",
    "Aging and disease",
    "Evaluation",
)
DOCK_ALIASES = {
    "data": "Population data",
    "training": "Training",
    "explorer": "Latent explorer",
    "receptive": "Receptive fields",
    "projective": "Projective fields",
    "population": "Population analysis",
    "aging": "Aging and disease",
    "evaluation": "Evaluation",
}
"""Short names `--dock` also accepts (e.g. `--dock population`)."""


DOCK_SHARE = 0.3
"""Share of the window's width the tabbed docks take (the canvas keeps at least half)."""
DOCK_MIN_WIDTH = 400
"""Below this the docks' forms wrap badly: on a small screen they take more than DOCK_SHARE."""


def fit_window(window: Any, size: tuple[int, int] | None = None) -> tuple[int, int]:
    """Size the main window to `size` or to the screen's available area, then give the
    tabbed docks DOCK_SHARE of its width; returns the window's (width, height)."""
    from qtpy.QtCore import Qt
    from qtpy.QtWidgets import QApplication, QDockWidget

    qt_window = window._qt_window
    if size is None:
        screen = qt_window.screen() or QApplication.primaryScreen()
        available = screen.availableGeometry()
        size = (available.width(), available.height())
    width, height = (int(v) for v in size)
    qt_window.resize(width, height)
    plugin_docks = [
        dock
        for dock in qt_window.findChildren(QDockWidget)
        if qt_window.dockWidgetArea(dock) == Qt.DockWidgetArea.RightDockWidgetArea
    ]
    if plugin_docks:
        dock_width = max(int(DOCK_SHARE * width), min(DOCK_MIN_WIDTH, width // 2))
        qt_window.resizeDocks(plugin_docks, [dock_width] * len(plugin_docks), Qt.Horizontal)
    return width, height


def add_docks(viewer) -> tuple[dict, dict]:
    """Every dock of the plugin in one tabbed area, so each gets the window's full height
    and the canvas the width; returns ({name: widget}, {name: QDockWidget})."""
    docks, qt_docks = {}, {}
    for number, widget_name in enumerate(DOCK_WIDGETS):
        dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, widget_name, tabify=number > 0)
        docks[widget_name], qt_docks[widget_name] = widget, dock
    viewer.window._brainvae_qt_docks = qt_docks  # for raise_dock
    return docks, qt_docks


def build_viewer(dims: int = 2, load_sample: bool = True, size: tuple[int, int] | None = None):
    """A viewer with every dock of the plugin, tabbed in one area, the window fitted to the
    screen (or to `size`), and (optionally) the sample population open."""
    import napari

    viewer = napari.Viewer(title="napari-brainvae")
    docks, qt_docks = add_docks(viewer)
    fit_window(viewer.window, size)
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


def raise_dock(viewer, name: str) -> None:
    """Bring one of the plugin's tabbed docks to the front."""
    from qtpy.QtWidgets import QApplication

    docks = getattr(viewer.window, "_brainvae_qt_docks", {})
    if name not in docks:
        raise ValueError(f"no dock {name!r}; docks: {', '.join(docks)}")
    QApplication.processEvents()  # the tab bar exists once the window is laid out
    docks[name].raise_()


def dock_busy(widget: Any) -> bool:
    """True while a dock has background work running (loading, encoding, training...)."""
    if hasattr(widget, "busy"):
        return bool(widget.busy)
    return getattr(widget, "_worker", None) is not None


ANALYSIS_DOCKS = (
    "Receptive fields",
    "Projective fields",
    "Population analysis",
    "Aging and disease",
)
"""Docks whose Run `--run` presses (on the sample atlas) before the screenshot."""


def run_analysis(docks: dict, name: str) -> None:
    """Press Run on an analysis dock, with the loaded atlas as its ROI layer when it has one
    (the sample's `ROI atlas`): what a user does to see a result."""
    widget = docks[name]
    roi_layer = getattr(widget, "roi_layer", None) or getattr(widget, "rois", None)
    if roi_layer is not None:
        widget.reset_choices()
        atlas = [c for c in roi_layer.choices if isinstance(c, str) and "atlas" in c.lower()]
        if atlas:
            roi_layer.value = atlas[0]
    widget.run()


def show_population_example(docks: dict, scan: int) -> None:
    """After a population analysis: click scan `scan` on the latent map, and compare the
    first two classes as groups A and B (what a user does to see the linked map)."""
    widget = docks["Population analysis"]
    run = widget.last_run
    if run is None or run.analysis.classification is None:
        return
    widget.select_scan(scan)
    column = run.analysis.request.classify
    classes = run.analysis.classification.classes
    if len(classes) >= 2:
        widget.select_class_groups(column, classes[0], classes[1])
    widget.scroll_to_map()


def show_aging_example(docks: dict) -> None:
    """After an aging and disease run: move the age slider to the trajectory's middle age, so
    the groups' brains and their change since the first age show a step of aging."""
    widget = docks["Aging and disease"]
    ages = widget.ages
    if ages.size:
        widget.set_age(float(ages[len(ages) // 2]))


def _screenshot_when_ready(
    viewer, docks, path: Path, timeout_s: float, scan: int, run: str | None = None
) -> None:
    """Wait until every dock is idle (the sample loaded, the population encoded), press Run
    on the `run` dock and wait again, or until the timeout passes; save a window screenshot,
    then quit."""
    import time

    from qtpy.QtCore import QTimer
    from qtpy.QtWidgets import QApplication

    started = time.monotonic()
    pending = []
    if run:
        pending.append(lambda: run_analysis(docks, run))
        if run == "Population analysis":
            pending.append(lambda: show_population_example(docks, scan))
        if run == "Aging and disease":
            pending.append(lambda: show_aging_example(docks))

    def check() -> None:
        busy = [name for name, widget in docks.items() if dock_busy(widget)]
        if busy and time.monotonic() - started < timeout_s:
            QTimer.singleShot(200, check)
            return
        if busy:
            print(f"screenshot: still busy after {timeout_s:g} s: {', '.join(busy)}")
        if viewer.layers:
            viewer.dims.set_current_step(0, scan)
        if pending:
            pending.pop(0)()
            QTimer.singleShot(500, check)
            return
        for _ in range(5):  # let the last results and the canvas draw
            QApplication.processEvents()
            time.sleep(0.1)
        viewer.screenshot(str(path), canvas_only=False, flash=False)
        print(f"screenshot written to {path}")
        viewer.close()

    QTimer.singleShot(500, check)


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected WIDTHxHEIGHT, e.g. 1366x768, got {text!r}"
        ) from None
    if width < 200 or height < 200:
        raise argparse.ArgumentTypeError(f"window size {text} is too small")
    return width, height


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
    parser.add_argument(
        "--size",
        type=_size,
        help="window size WIDTHxHEIGHT (default: the screen's available area)",
    )
    parser.add_argument(
        "--dock",
        type=lambda text: DOCK_ALIASES.get(text, text),
        choices=DOCK_WIDGETS,
        default="Latent explorer",
        help="dock in front (default: Latent explorer); short names: " + ", ".join(DOCK_ALIASES),
    )
    parser.add_argument(
        "--ndisplay", type=int, choices=(2, 3), default=2, help="2D slices or 3D rendering"
    )
    parser.add_argument(
        "--run",
        action="store_true",
        help="with --screenshot and an analysis dock (receptive, projective, population, "
        "aging): press Run on the sample first, so the picture shows a result (the population "
        "dock then clicks --scan on its map and compares the first two classes; the aging dock "
        "moves its age slider to the middle age)",
    )
    args = parser.parse_args(argv)

    import napari

    viewer, docks = build_viewer(args.dims, load_sample=not args.no_sample, size=args.size)
    raise_dock(viewer, args.dock)
    viewer.dims.ndisplay = args.ndisplay
    if args.screenshot is not None:
        if args.run and args.dock not in ANALYSIS_DOCKS:
            parser.error(f"--run needs --dock {' or '.join(ANALYSIS_DOCKS)}")
        run = args.dock if args.run else None
        _screenshot_when_ready(viewer, docks, args.screenshot, args.timeout, args.scan, run)
    napari.run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
