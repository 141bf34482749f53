"""Rows of the latent explorer's form: bold section headings and rows spanning the dock."""

from __future__ import annotations

from typing import Any

from magicgui.widgets import Label


def heading(text: str) -> Label:
    """A bold section title spanning the dock (no label column)."""
    title = Label(value=f"<b>{text}</b>")
    title.label = ""
    return title


def without_label_column(widget: Any) -> None:
    """Let a row of the form span the dock's width: hide its (empty) label cell, which would
    otherwise indent it by the label column."""
    labelled = widget._labeled_widget()
    if labelled is not None:
        labelled._label_widget.visible = False
