"""A collapsible group of fields for any dock: a header button that shows or hides them.

Docks keep their rarely changed settings in one, collapsed by default, so the dock fits a
small laptop screen and the fields a new user needs stay in sight. Generic: nothing here
knows about training; pass any magicgui widgets.
"""

from __future__ import annotations

from collections.abc import Sequence

from magicgui.widgets import Container, PushButton, Widget

COLLAPSED_MARK = "\u25b8"  # a right-pointing triangle: click to open
EXPANDED_MARK = "\u25be"  # a down-pointing triangle: click to close


class CollapsibleSection(Container):
    """A checkable header button over a labelled container of fields; the fields are hidden
    while the button is up. `expanded` reads or sets the state; `fields` holds the widgets."""

    def __init__(
        self,
        title: str,
        widgets: Sequence[Widget] = (),
        *,
        expanded: bool = False,
        labels: bool = True,
        tooltip: str | None = None,
    ) -> None:
        super().__init__(labels=False)
        self.margins = (0, 0, 0, 0)
        self.title = title
        self.toggle = PushButton(text=title, tooltip=tooltip)
        self.toggle.native.setCheckable(True)
        # left-aligned like a section heading, not centred like an action button
        self.toggle.native.setStyleSheet("text-align: left; padding-left: 6px;")
        self.fields = Container(widgets=list(widgets), labels=labels)
        self.fields.margins = (0, 0, 0, 0)
        self.extend([self.toggle, self.fields])
        self.toggle.changed.connect(self._show_state)
        self.expanded = expanded

    @property
    def expanded(self) -> bool:
        """Whether the fields are shown."""
        return bool(self.toggle.value)

    @expanded.setter
    def expanded(self, value: bool) -> None:
        self.toggle.value = bool(value)
        self._show_state()

    def _show_state(self, *_args) -> None:
        self.fields.visible = self.expanded
        mark = EXPANDED_MARK if self.expanded else COLLAPSED_MARK
        self.toggle.text = f"{mark} {self.title}"


def align_label_widths(containers: Sequence[Container]) -> None:
    """One label column for labelled containers stacked in one dock (magicgui lines labels up
    within a container only), so the fields start at the same x when a section opens."""
    from magicgui.application import use_app
    from magicgui.widgets.bases import ButtonWidget

    measure = use_app().get_obj("get_text_width")
    labelled = [
        (widget, widget._labeled_widget())
        for container in containers
        for widget in container
        if not isinstance(widget, ButtonWidget)
    ]
    labelled = [(widget, row) for widget, row in labelled if row is not None]
    if not labelled:
        return
    widest = max(measure(widget.label) for widget, _ in labelled)
    for _, row in labelled:
        row.label_width = widest
