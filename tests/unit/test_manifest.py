"""The napari manifest is valid, and the reader/writer stay fast and import-light."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

HEAVY_MODULES = ("torch", "sklearn", "nilearn", "qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6")
READER_WRITER_COMMANDS = (
    "napari-brainvae.get_reader",
    "napari-brainvae.write_image",
    "napari-brainvae.write_labels",
)


def _run_python(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_npe2_validate_passes():
    npe2 = Path(sys.executable).with_name("npe2")
    command = [str(npe2)] if npe2.exists() else [sys.executable, "-m", "npe2"]
    result = subprocess.run(
        [*command, "validate", "napari-brainvae"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_reader_and_writer_commands_resolve():
    from npe2 import PluginManifest

    manifest = PluginManifest.from_distribution("napari-brainvae")
    commands = {c.id: c for c in manifest.contributions.commands}
    for command_id in READER_WRITER_COMMANDS:
        module_name, _, attribute = commands[command_id].python_name.partition(":")
        assert callable(getattr(importlib.import_module(module_name), attribute))
    [reader] = manifest.contributions.readers
    assert set(reader.filename_patterns) == {"*.nii", "*.nii.gz"}
    layer_types = {w.command: list(w.layer_types) for w in manifest.contributions.writers}
    assert layer_types["napari-brainvae.write_image"] == ["image"]
    assert layer_types["napari-brainvae.write_labels"] == ["labels"]


def test_reader_and_writer_import_light_in_a_fresh_process(nibabel_data):
    code = f"""
import json, sys
import brainvae.napari._reader as reader, brainvae.napari._writer as writer
assert reader.get_reader("scan.npy") is None
after_import = sorted(m for m in {HEAVY_MODULES!r} if m in sys.modules)
reader.get_reader("scan.nii")({str(nibabel_data / "anatomical.nii")!r})
after_read = sorted(m for m in {HEAVY_MODULES!r} if m in sys.modules)
print(json.dumps([after_import, after_read]))
"""
    after_import, after_read = json.loads(_run_python(code).strip().splitlines()[-1])
    assert after_import == [], f"importing the reader/writer pulled in {after_import}"
    assert after_read == [], f"reading a NIfTI file pulled in {after_read}"


@pytest.mark.parametrize(
    "path", ["scan.npy", "scan.gz", "notes.txt", "folder", "image.tif", ["a.png", "b.png"]]
)
def test_get_reader_declines_quickly(path):
    from brainvae.napari._reader import get_reader

    get_reader(path)  # warm up
    start = time.perf_counter()
    for _ in range(100):
        assert get_reader(path) is None
    per_call = (time.perf_counter() - start) / 100
    assert per_call < 0.010, f"get_reader took {per_call * 1000:.2f} ms"


def test_data_package_face_is_lazy_and_complete():
    code = f"""
import json, sys
import brainvae.data as data
before = sorted(m for m in {HEAVY_MODULES + ("nibabel", "scipy")!r} if m in sys.modules)
names = {{name: getattr(data, name).__module__ for name in data.__all__}}
print(json.dumps([before, names]))
"""
    before, names = json.loads(_run_python(code).strip().splitlines()[-1])
    assert before == [], f"importing brainvae.data pulled in {before}"
    assert names["PreparedDataset"] == "brainvae.data.dataset"
    assert names["prepare_dataset"].startswith("brainvae.data.prepare")
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        import brainvae.data

        brainvae.data.nothing  # noqa: B018
