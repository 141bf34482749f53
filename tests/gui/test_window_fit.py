"""The window fits a laptop (1366 x 768) and a desktop (1920 x 1080) screen with every dock
open: no dock forces the window taller than the screen, and the canvas gets the room."""

from __future__ import annotations

import pytest

from brainvae.napari.launch import DOCK_WIDGETS, add_docks, fit_window, raise_dock

SCREENS = {"laptop": (1366, 768), "desktop": (1920, 1080)}


@pytest.mark.parametrize("screen", SCREENS, ids=list(SCREENS))
def test_every_dock_fits_the_screen_and_the_canvas_gets_the_room(screen, make_napari_viewer, qtbot):
    from qtpy.QtWidgets import QApplication

    width, height = SCREENS[screen]
    viewer = make_napari_viewer(show=True)
    add_docks(viewer)
    fit_window(viewer.window, (width, height))
    qt_window = viewer.window._qt_window
    canvas = viewer.window._qt_viewer.canvas.native
    for name in DOCK_WIDGETS:  # each dock in front in turn: none may stretch the window
        raise_dock(viewer, name)
        QApplication.processEvents()
        assert qt_window.minimumSizeHint().height() <= height, name
        assert qt_window.height() == height, name
        picture = viewer.screenshot(canvas_only=False, flash=False)
        assert picture.shape[:2] == (height, width), name
        share = canvas.width() / qt_window.width()
        # at 1920 x 1080 the canvas gets at least half the width; a laptop keeps 40 %
        assert share >= (0.5 if width >= 1920 else 0.4), (name, share)
        assert canvas.height() >= 0.6 * height, name
