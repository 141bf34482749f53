"""A dock form that scrolls instead of forcing the window taller than the screen.

Two ways exist in this package, for two layouts: ScrollableContainer scrolls a whole form
(the Population data, Latent explorer, Receptive and Projective docks); scrolling.scroll_body
scrolls one part of a dock while another part (the Training dock's plot) keeps the spare
height.
"""

from __future__ import annotations

from typing import Any

from magicgui.widgets import Container


class ScrollableContainer(Container):
    """A labelled magicgui Container whose scroll area is what napari docks.

    napari docks a magicgui widget's `.native`; for a scrollable Container that is the inner
    form, so the scroll area would be dropped and the form's full height would become the
    window's minimum height. Here `.native` is the scroll area and `.inner` the form (add
    extra Qt widgets, such as plots, to `inner.layout()`). The area stays as wide as the
    form's widest row (rows added later, such as a model's sliders, widen it), never taller.
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("labels", True)
        super().__init__(scrollable=True, **kwargs)
        _fit_width_to_form(self.root_native_widget)

    @property
    def native(self) -> Any:
        """The scroll area (the widget napari puts in the dock)."""
        return self.root_native_widget

    @property
    def inner(self) -> Any:
        """The form inside the scroll area, with the Container's layout."""
        return self._widget._mgui_get_native_widget()


def _fit_width_to_form(area: Any) -> None:
    """Keep the scroll area as wide as its form's widest row plus the scroll bar, so no row
    is clipped on the right (magicgui sizes it once, before later rows widen the form)."""
    from qtpy.QtCore import QEvent

    from brainvae.napari.widgets.qt_events import on_event

    inner = area.widget()
    if inner is None:
        return

    def fit() -> None:
        bar = area.verticalScrollBar().sizeHint().width()
        width = inner.minimumSizeHint().width() + bar + 2 * area.frameWidth()
        if area.minimumWidth() != width:
            area.setMinimumWidth(width)

    on_event(inner, QEvent.Type.LayoutRequest, fit)
    fit()
