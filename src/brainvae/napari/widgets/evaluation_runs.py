"""The Evaluation dock's choice of runs: the viewer's model in use (a check box) and any number
of run folders (a list with Add and Remove), each named by its folder's name as
`brainvae denoise` names it. Knows nothing of napari: the dock reads `choices(in_use)`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from magicgui.widgets import CheckBox, Container, FileEdit, PushButton

from brainvae.napari.workers.evaluation import RunChoice

IN_USE_NAME = "model in use"
"""The model in use's name when it came from no folder and has no label."""


def is_run_folder(path: Path) -> bool:
    """A folder holding a saved model (config.json beside its weights)."""
    return (Path(path) / "config.json").is_file()


class RunList:
    """The model-in-use check box, the run folders' list, a folder field and Add / Remove."""

    def __init__(self) -> None:
        from qtpy.QtWidgets import QAbstractItemView, QListWidget

        self.use_model = CheckBox(label="model in use", value=True,
                                  tooltip="compare the latent explorer's model too")  # fmt: skip
        self.folder = FileEdit(label="run folder", mode="d")
        self.add_button = PushButton(text="Add run")
        self.remove_button = PushButton(text="Remove selected")
        self.buttons = Container(
            widgets=[self.add_button, self.remove_button], layout="horizontal", labels=False
        )
        self.buttons.margins = (0, 0, 0, 0)
        self.list = QListWidget()
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.list.setMaximumHeight(96)
        self.list.setToolTip("run folders to compare, named by their folder's name")
        self.remove_button.changed.connect(lambda *_: self.remove_selected())

    @property
    def folders(self) -> list[Path]:
        """The listed run folders, in the order added."""
        from qtpy.QtCore import Qt

        role = Qt.ItemDataRole.UserRole
        return [Path(self.list.item(i).data(role)) for i in range(self.list.count())]

    def add(self, path: Any = None) -> Path:
        """Add a run folder (`path`, else the folder field's); a folder without a saved model
        or one already listed is refused with a ValueError naming it."""
        from qtpy.QtCore import Qt
        from qtpy.QtWidgets import QListWidgetItem

        from brainvae.napari.widgets.paths import optional_path

        chosen = optional_path(path if path is not None else self.folder.value)
        if chosen is None:
            raise ValueError("choose a run folder first (config.json + weights.safetensors)")
        chosen = Path(chosen).resolve()
        if not is_run_folder(chosen):
            raise ValueError(f"{chosen}: not a run folder (no config.json)")
        if chosen in self.folders:
            raise ValueError(f"{chosen.name} is already in the list")
        item = QListWidgetItem(chosen.name)
        item.setData(Qt.ItemDataRole.UserRole, str(chosen))
        item.setToolTip(str(chosen))
        self.list.addItem(item)
        return chosen

    def remove_selected(self) -> None:
        for item in self.list.selectedItems():
            self.list.takeItem(self.list.row(item))

    def clear(self) -> None:
        self.list.clear()

    def choices(self, in_use: Any) -> list[RunChoice]:
        """The runs chosen, named as `brainvae denoise` names them (each folder's name, with
        its parent's when two share one): the model in use first when ticked (`in_use`, the
        viewer state's ModelInUse or None), then the folders. A folder that is the model in
        use's own is not compared twice."""
        from brainvae.usecases.denoise_run import run_names

        folders = list(self.folders)
        model = None
        if self.use_model.value:
            if in_use is None:
                raise ValueError(
                    "no model in use: load one in the latent explorer, or untick "
                    "'model in use' and add run folders"
                )
            model = in_use
            own = None if in_use.folder is None else Path(in_use.folder).resolve()
            folders = [f for f in folders if f != own]
        if model is None and not folders:
            raise ValueError("no run chosen: tick 'model in use' or add a run folder")
        paths = ([model.folder] if model is not None and model.folder is not None else []) + folders
        names = run_names(paths) if paths else []
        found = []
        if model is not None:
            name = names.pop(0) if model.folder is not None else (model.label or IN_USE_NAME)
            found.append(RunChoice(name, model.folder, model.model))
        found += [RunChoice(name, folder) for name, folder in zip(names, folders, strict=True)]
        if len({choice.name for choice in found}) != len(found):
            raise ValueError(f"two runs share a name: {', '.join(c.name for c in found)}")
        return found

    def widgets(self) -> list[Any]:
        """The magicgui widgets in the form's order (the list is a Qt widget: see `list`)."""
        return [self.use_model, self.folder, self.buttons]
