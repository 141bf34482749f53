"""The base of the docks' plots (napari-matplotlib's shape): one small class owning a pyqtgraph
PlotWidget, so each concrete plot (heatmap, Gaussians, loss curves) only says what it draws.

It holds what every plot repeated: the widget with its least height (and, when asked, a size
policy that lets it grow with the dock), the mouse zoom off for a plot that is read not
explored, axes whose ticks read as plain numbers (no pyqtgraph "x0.001" prefix), hiding while
there is nothing to show (or a sentence saying what will appear instead), clearing in one call,
and saving the plot as drawn to a PNG.
"""

from __future__ import annotations

from typing import Any


class PlotPanel:
    """A pyqtgraph plot that is hidden (or replaced by `placeholder`) until it has content.

    `widget` is the plot; `panel` is what a dock places: the plot itself, or, with a
    placeholder sentence, a box holding the sentence above the plot (one of them shown).
    Subclasses draw into `widget`, call `set_shown(True)` once they have drawn, and
    define `clear_content` (clear() hides the plot after it).
    """

    def __init__(
        self,
        title: str | None = None,
        min_height: int = 200,
        zoomable: bool = False,
        plain_axes: tuple[str, ...] = (),
        grows: bool = False,
        placeholder: bool = False,
    ) -> None:
        import pyqtgraph as pg

        self.widget = pg.PlotWidget(title=title)
        self.widget.setMinimumHeight(min_height)
        if grows:  # any width the dock has, taller with the dock
            from qtpy.QtWidgets import QSizePolicy

            self.widget.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Expanding)
        if not zoomable:  # a plot to read, not to explore: no zoom, no "A" button
            self.widget.setMouseEnabled(x=False, y=False)
            self.widget.hideButtons()
        for side in plain_axes:
            self.widget.getAxis(side).enableAutoSIPrefix(False)  # ticks read as the numbers
        self.placeholder: Any = None
        self.panel: Any = self.widget
        if placeholder:
            from qtpy.QtCore import Qt
            from qtpy.QtWidgets import QLabel, QVBoxLayout, QWidget

            self.panel = QWidget()
            layout = QVBoxLayout(self.panel)
            layout.setContentsMargins(0, 0, 0, 0)
            self.placeholder = QLabel()
            self.placeholder.setWordWrap(True)
            self.placeholder.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
            layout.addWidget(self.placeholder)
            layout.addWidget(self.widget, 1)

    @property
    def shown(self) -> bool:
        """True while the plot has content to show (it is hidden before)."""
        return not self.widget.isHidden()

    def set_shown(self, shown: bool) -> None:
        """Show the plot (it has content) or hide it, the placeholder sentence in its place."""
        self.widget.setVisible(shown)
        if self.placeholder is not None:
            self.placeholder.setVisible(not shown)

    def clear_content(self) -> None:  # pragma: no cover - every plot defines it
        """Remove what the plot draws (its items, its data)."""
        raise NotImplementedError

    def clear(self) -> None:
        """Nothing to show: the content goes and the plot hides."""
        self.clear_content()
        self.set_shown(False)

    def save_png(self, path: Any) -> None:
        """The plot as drawn now (axes, legend, colour bar)."""
        if not self.widget.grab().save(str(path), "PNG"):
            raise OSError(f"{path}: could not write the PNG")
