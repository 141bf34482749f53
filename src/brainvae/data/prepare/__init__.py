"""Turn a folder of volumes (+ an optional CSV) into a cached, split, memory-mapped dataset.

`prepare_dataset` is a generator of PrepareProgress updates so the napari worker and
the CLI progress bar drive the same code. Files are preprocessed in worker processes
with a bounded number of tasks in flight (`reading`), grouped by sample shape (`shapes`),
written in order into a float32 .npy with ordinary file writes (`row_writer`: resident
memory stays flat however many volumes there are; free space is checked before the first
row, and a full disk is an error naming the file, never a crash), and the dataset folder
(`folder`) is built in a hidden sibling folder that is renamed into place only when
complete: an error, a cancel or a full disk leaves nothing.
"""

from brainvae.data.prepare.pipeline import prepare, prepare_dataset
from brainvae.data.prepare.progress import PrepareProgress, SkippedFile
from brainvae.data.prepare.row_writer import check_free_space

__all__ = ["PrepareProgress", "SkippedFile", "check_free_space", "prepare", "prepare_dataset"]
