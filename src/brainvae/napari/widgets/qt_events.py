"""Run a function whenever a Qt widget receives one kind of event (resize, layout request)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def on_event(widget: Any, event_type: Any, callback: Callable[[], None]) -> None:
    """Call `callback()` each time `widget` gets an event of `event_type` (the event is not
    consumed); the filter lives as long as the widget."""
    from qtpy.QtCore import QObject

    class Watcher(QObject):
        def eventFilter(self, watched, event):  # noqa: N802 - Qt's name
            if event.type() == event_type:
                callback()
            return False

    watcher = Watcher(widget)
    widget.installEventFilter(watcher)
    watchers = getattr(widget, "_brainvae_watchers", [])
    widget._brainvae_watchers = [*watchers, watcher]
