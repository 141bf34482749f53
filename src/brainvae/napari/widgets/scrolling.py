"""A vertical scroll area that works inside a napari dock, for any magicgui dock.

napari docks a magicgui Container's inner widget (`container.native`), so the QScrollArea
that `Container(scrollable=True)` wraps around it is left behind: the dock still asks for
the form's whole height and, on a 768-pixel screen, pushes the window off the screen. Here
the scroll area sits inside `container.native` instead, around one child Container (the
body), which stays a magicgui child: reset_choices, iteration and visibility work as before.
"""

from __future__ import annotations

from typing import Any

from magicgui.widgets import Container


def scroll_body(container: Container, body: Container) -> Any:
    """Move `body` (already a child of `container`) into a vertical scroll area in its place.

    The area asks for the body's width but almost no height: the dock can be as short as
    the screen allows, and the body's stretchy parts (a plot) grow when it is taller.
    Returns the QScrollArea.
    """
    from qtpy.QtCore import QEvent, QObject, Qt
    from qtpy.QtWidgets import QFrame, QScrollArea

    class BodyScrollArea(QScrollArea):
        """Minimum width: the body's; minimum height: a scroll bar's worth."""

        def minimumSizeHint(self):  # noqa: N802 - Qt's name
            hint = super().minimumSizeHint()
            inner = self.widget()
            if inner is not None:
                bar = self.verticalScrollBar().sizeHint().width()
                hint.setWidth(inner.minimumSizeHint().width() + bar + 2 * self.frameWidth())
            return hint

        def sizeHint(self):  # noqa: N802 - Qt's name
            inner = self.widget()
            return super().sizeHint() if inner is None else inner.sizeHint()

    class LayoutWatcher(QObject):
        """The body's layout changed (a section opened or closed): fit the body to the area
        again (QScrollArea leaves it at its old size) and let the dock re-read our hints."""

        def eventFilter(self, watched, event):  # noqa: N802 - Qt's name
            if event.type() == QEvent.Type.LayoutRequest:
                area.setWidgetResizable(True)  # re-fits the body: its least size changed
                area.updateGeometry()
            return False

    layout = container.native.layout()
    index = layout.indexOf(body.native)
    if index < 0:
        raise ValueError("body must be a child of container")
    layout.removeWidget(body.native)
    area = BodyScrollArea()
    area.setWidgetResizable(True)  # the body fills the area's width and any spare height
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    area.setWidget(body.native)
    layout.insertWidget(index, area, 1)
    watcher = LayoutWatcher(area)
    body.native.installEventFilter(watcher)
    area._layout_watcher = watcher  # kept alive with the area
    return area
