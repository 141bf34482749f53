"""Result folders appear whole or not at all, and an existing one survives a failed write."""

from __future__ import annotations

import pytest

from brainvae.data.io.output_folder import atomic_output_folder
from brainvae.errors import DataFileError


def test_folder_appears_only_when_the_write_finishes(tmp_path):
    out = tmp_path / "results"
    with atomic_output_folder(out, overwrite=False) as folder:
        (folder / "a.csv").write_text("1\n")
        assert not out.exists()
    assert (out / "a.csv").read_text() == "1\n"
    assert [p.name for p in tmp_path.iterdir()] == ["results"]


def test_failed_write_keeps_the_old_folder_and_leaves_no_temporary(tmp_path):
    out = tmp_path / "results"
    out.mkdir()
    (out / "old.csv").write_text("old\n")
    with pytest.raises(RuntimeError), atomic_output_folder(out, overwrite=True) as folder:
        (folder / "new.csv").write_text("half")
        raise RuntimeError("disk full")
    assert [p.name for p in out.iterdir()] == ["old.csv"]
    assert [p.name for p in tmp_path.iterdir()] == ["results"]


def test_existing_folder_is_refused_without_overwrite_and_replaced_whole_with_it(tmp_path):
    out = tmp_path / "results"
    out.mkdir()
    (out / "old.csv").write_text("old\n")
    with pytest.raises(DataFileError, match="already exists"):
        with atomic_output_folder(out, overwrite=False):
            pass
    with atomic_output_folder(out, overwrite=True) as folder:
        (folder / "new.csv").write_text("new\n")
    assert sorted(p.name for p in out.iterdir()) == ["new.csv"]
    assert [p.name for p in tmp_path.iterdir()] == ["results"]
