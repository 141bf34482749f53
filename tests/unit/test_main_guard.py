"""A script without `if __name__ == "__main__":` can prepare a dataset with worker processes.

Spawned workers used to re-run such a script: each worker tried to start its own pool and
died ("...before the current process has finished its bootstrapping phase"), and a script
that opened napari hung. The data dock runs the same brainvae.data.prepare code.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = """\
from brainvae.data.prepare import prepare
from brainvae.data.preprocessing import PreprocessConfig

print("script body ran")
dataset = prepare("images", "ds", PreprocessConfig.identity(), workers=2)
print("prepared", len(dataset))
"""


@pytest.mark.parametrize("how", ["script", "module"])
def test_unguarded_script_prepares_with_two_workers(tmp_path: Path, how: str) -> None:
    """Run as `python script.py` (workers would import its path) and as `python -m` (they
    would import it by name): the body runs once and the dataset is written."""
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        np.save(images / f"sub-{i:02d}_ses-1.npy", rng.random((8, 10), dtype=np.float32))
    (tmp_path / "unguarded.py").write_text(SCRIPT, encoding="utf-8")
    command = ["unguarded.py"] if how == "script" else ["-m", "unguarded"]
    done = subprocess.run(
        [sys.executable, *command],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines() == ["script body ran", "prepared 6"]
    assert (tmp_path / "ds" / "images.npy").is_file()
