"""What every brainvae dock has: its viewer and the viewer's shared state, a status line,
errors said there and in a notification, background workers it starts and cancels, and a
guard so that a worker's late signals never touch a dock that was closed.

A mixin for the docks' magicgui containers (they differ: some scroll, one keeps its plot
outside the scroll area); each dock calls `setup_dock` first in its __init__.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from magicgui.widgets import Label

from brainvae.napari.viewer_state import state_of


def wrapping(label: Label, min_width: int = 120) -> Label:
    """A label that wraps at the dock's width instead of widening the dock."""
    from qtpy.QtWidgets import QSizePolicy

    label.native.setWordWrap(True)
    label.native.setMinimumWidth(min_width)
    label.native.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
    return label


def fixed_lines(label: Label, lines: int) -> None:
    """Wrap a label's text within a fixed height and the dock's width, so a new status text
    never re-lays out the dock (each layout pass is one more window repaint). The height
    follows the label's font: napari's stylesheet sets it only once the dock is shown."""
    from qtpy.QtCore import QEvent, QObject, QRect, Qt
    from qtpy.QtWidgets import QSizePolicy

    native = label.native
    native.setWordWrap(True)
    native.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
    native.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)

    def fit() -> None:  # laid-out lines are whole pixels: measure them, not lineSpacing * n
        text = native.fontMetrics().boundingRect(
            QRect(0, 0, 10_000, 10_000), Qt.TextFlag.TextWordWrap, "\n".join(["Xg"] * lines)
        )
        margins = native.contentsMargins()
        padding = margins.top() + margins.bottom() + 2 * native.margin() + 4
        native.setFixedHeight(text.height() + padding)

    class FontWatcher(QObject):
        def eventFilter(self, watched, event):  # noqa: N802 - Qt's name
            if event.type() in (QEvent.Type.FontChange, QEvent.Type.StyleChange):
                fit()
            return False

    native._font_watcher = FontWatcher(native)  # kept alive with the label
    native.installEventFilter(native._font_watcher)
    fit()


class DockBase:
    """Shared plumbing of the five docks (see the module docstring)."""

    native: Any  # the magicgui container's Qt widget

    def setup_dock(self, napari_viewer: Any, prompt: str) -> None:
        """Remember the viewer and its state, make the status line, watch for closing."""
        self._viewer = napari_viewer
        self._state = state_of(napari_viewer)
        self._closed = False
        self._worker: Any = None
        self.status = wrapping(Label(label="status", value=prompt))
        self.native.destroyed.connect(self._on_dock_destroyed)

    @property
    def closed(self) -> bool:
        """Whether the dock's widget is gone (late worker signals are then ignored)."""
        return self._closed

    def _on_dock_destroyed(self, *_args: Any) -> None:
        self._closed = True
        self.closing()  # first: a dock may stop its work cleanly (training: a checkpoint)
        self.cancel_worker()

    def closing(self) -> None:
        """Hook: let go of callbacks and stop work when the dock closes."""

    def fail(self, err: BaseException) -> None:
        """An input or computation problem: the status line says it, and a notification."""
        if self._closed:
            return
        from napari.utils.notifications import show_error

        self.status.value = f"Error: {err}"
        show_error(f"brainvae: {err}")

    def guarded(self, callback: Callable[..., Any]) -> Callable[..., Any]:
        """`callback`, skipped once the dock is closed (for worker signals)."""

        def call(*args: Any) -> Any:
            if not self._closed:
                return callback(*args)
            return None

        return call

    def start_worker(
        self,
        function: Callable[..., Any],
        *args: Any,
        yielded: Callable[..., Any] | None = None,
        returned: Callable[..., Any] | None = None,
        finished: Callable[[], Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Run a generator (or plain) function in a napari worker: its yields and result go to
        `yielded`/`returned` while the dock is open, errors to `fail`, and `_worker` is the
        running worker until it finishes (then `finished` is called, closed or not)."""
        from napari.qt.threading import create_worker

        def done() -> None:
            self._worker = None
            if finished is not None:
                finished()

        connect: dict[str, Any] = {"errored": self.fail, "finished": done}
        if yielded is not None:
            connect["yielded"] = self.guarded(yielded)
        if returned is not None:
            connect["returned"] = self.guarded(returned)
        self._worker = create_worker(function, *args, _connect=connect, **kwargs)
        return self._worker

    def cancel_worker(self) -> bool:
        """Ask the running worker to stop; whether there was one."""
        if self._worker is None:
            return False
        self._worker.quit()
        return True
