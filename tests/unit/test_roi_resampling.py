"""ROI label images on another grid of the dataset's world space are resampled onto its grid.

The scans are 4 mm LAS files of 20 x 24 x 18 voxels; the ROIs a 2 mm RAS atlas of 42 x 50 x 38
voxels whose centres lie exactly half-way between the scans' (every 4 mm centre is a tie for
nearest neighbour), so the ROI file's voxel order must not decide which voxel wins.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

SCAN_SHAPE = (20, 24, 18)
SCAN_AFFINE = np.array(
    [[-4.0, 0, 0, 38], [0, 4.0, 0, -46], [0, 0, 4.0, -34], [0, 0, 0, 1]]
)  # LAS: voxel centres at x 38..-38, y -46..46, z -34..34 mm
ROI_SHAPE = (42, 50, 38)
ROI_AFFINE = np.array([[2.0, 0, 0, -41], [0, 2.0, 0, -49], [0, 0, 2.0, -37], [0, 0, 0, 1]])
BALLS = {
    1: ((-20.0, 0.0, 10.0), 10.0),
    2: ((15.0, -20.0, -10.0), 9.0),
    3: ((10.0, 25.0, 15.0), 8.0),
}
TINY_LABEL, TINY_INDEX = 4, (21, 25, 19)  # one 2 mm voxel at (1, 1, 1) mm: no 4 mm centre in it
CORONAL_SLICE = 10  # display index along posterior: world y = 46 - 4 * 10 = 6 mm


def write_labels(path: Path, labels: np.ndarray, affine: np.ndarray) -> Path:
    """A label NIfTI as an atlas tool writes it (int16, scanner codes)."""
    import nibabel as nib

    nib.save(nib.Nifti1Image(labels.astype(np.int16), affine), str(path))
    return path


def atlas_2mm(tiny: bool = True) -> np.ndarray:
    """Three balls (labels 1-3) at known world centres, plus one voxel too small for 4 mm."""
    index = np.indices(ROI_SHAPE).reshape(3, -1)
    world = (ROI_AFFINE[:3, :3] @ index + ROI_AFFINE[:3, 3:4]).reshape(3, *ROI_SHAPE)
    labels = np.zeros(ROI_SHAPE, dtype=np.int16)
    for label, (centre, radius) in BALLS.items():
        distance = np.sqrt(sum((world[a] - centre[a]) ** 2 for a in range(3)))
        labels[distance <= radius] = label
    if tiny:
        labels[TINY_INDEX] = TINY_LABEL
    return labels


def scans_at_4mm(root: Path, n: int, slice_index: int | None = None):
    """A dataset prepared (identity preset) from n 4 mm LAS scans, 3D or one coronal slice."""
    import nibabel as nib

    from brainvae.data.prepare import prepare
    from brainvae.data.preprocessing import PreprocessConfig

    source = root / "scans"
    if not source.exists():
        source.mkdir(parents=True)
        rng = np.random.default_rng(0)
        for i in range(n):
            scan = rng.random(SCAN_SHAPE).astype(np.float32)
            nib.save(nib.Nifti1Image(scan, SCAN_AFFINE), str(source / f"sub-{i:03d}_ses-1.nii.gz"))
    if slice_index is None:
        return prepare(source, root / "ds3d", PreprocessConfig.identity(), workers=1)
    config = PreprocessConfig.identity(slice_axis="coronal", slice_index=slice_index)
    return prepare(source, root / "ds2d", config, workers=1)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("roi_resampling")
    return {
        "root": root,
        "ds3d": scans_at_4mm(root, 3),
        "ds2d": scans_at_4mm(root, 3, CORONAL_SLICE),
        "atlas": write_labels(root / "atlas_2mm.nii.gz", atlas_2mm(), ROI_AFFINE),
    }


def _load(path: Path, dataset):
    from brainvae.data.roi_files import load_rois

    return load_rois(path, dataset, tuple(dataset.scan_shape))


def test_2mm_labels_land_within_a_voxel_of_their_place_and_it_is_said(setup):
    dataset = setup["ds3d"]
    image = _load(setup["atlas"], dataset)
    assert image.labels.shape == dataset.scan_shape == (18, 24, 20)  # display order
    for label, (centre, radius) in BALLS.items():
        index = np.argwhere(image.labels == label).mean(axis=0)
        world = dataset.affine[:3, :3] @ index + dataset.affine[:3, 3]
        assert np.linalg.norm(world - centre) < 4.0, (label, world)
        volume_mm3 = (image.labels == label).sum() * 4.0**3
        assert volume_mm3 == pytest.approx(4 / 3 * np.pi * radius**3, rel=0.35)
    assert image.resampling.startswith(
        "ROIs resampled from 42 x 50 x 38 at 2 mm (axes RAS) to the dataset's "
        "20 x 24 x 18 at 4 mm (axes LAS) (nearest neighbour)"
    )


@pytest.mark.parametrize("change", ["flip x (LAS)", "flip y and z (RPI)", "axes z, y, x"])
def test_another_voxel_order_gives_identical_labels(setup, change):
    labels, affine = atlas_2mm(), ROI_AFFINE.copy()
    for axis in {"flip x (LAS)": (0,), "flip y and z (RPI)": (1, 2)}.get(change, ()):
        flip = np.eye(4)
        flip[axis, axis], flip[axis, 3] = -1.0, labels.shape[axis] - 1
        labels, affine = np.flip(labels, axis), affine @ flip
    if change == "axes z, y, x":
        labels, affine = labels.transpose(2, 1, 0), affine[:, [2, 1, 0, 3]]
    other = write_labels(setup["root"] / "reordered.nii.gz", labels, affine)
    original = _load(setup["atlas"], setup["ds3d"])
    assert np.array_equal(_load(other, setup["ds3d"]).labels, original.labels)


def test_slice_dataset_takes_its_plane_of_a_3d_roi_volume(setup):
    slices, volume = setup["ds2d"], setup["ds3d"]
    image = _load(setup["atlas"], slices)
    assert image.labels.shape == slices.scan_shape == (18, 20)
    expected = _load(setup["atlas"], volume).labels[:, CORONAL_SLICE, :]
    assert np.array_equal(image.labels, expected) and expected.any()
    assert "to the dataset's 20 x 1 x 18 at 4 mm (axes LAS), its coronal slice 10" in (
        image.resampling
    )


def test_labels_too_small_for_the_grid_are_named(setup):
    image = _load(setup["atlas"], setup["ds3d"])
    assert image.vanished == (TINY_LABEL,)
    assert TINY_LABEL not in image.labels and set(np.unique(image.labels)) == {0, 1, 2, 3}
    assert "label(s) 4 vanished (smaller than the dataset's voxels" in image.resampling
    alone = np.zeros(ROI_SHAPE, dtype=np.int16)
    alone[TINY_INDEX] = TINY_LABEL
    path = write_labels(setup["root"] / "only_tiny.nii.gz", alone, ROI_AFFINE)
    from brainvae.errors import DataFileError

    with pytest.raises(DataFileError, match="no label lands on the dataset's grid"):
        _load(path, setup["ds3d"])


def test_grid_elsewhere_is_an_error_with_shapes_in_file_order(setup):
    from brainvae.errors import DataFileError

    elsewhere = ROI_AFFINE.copy()
    elsewhere[0, 3] += 500.0
    path = write_labels(setup["root"] / "elsewhere.nii.gz", atlas_2mm(), elsewhere)
    with pytest.raises(DataFileError) as caught:
        _load(path, setup["ds3d"])
    text = str(caught.value)
    assert text.startswith(f"{path}: the ROI grid 42 x 50 x 38 at 2 mm (axes RAS, the file's")
    assert "does not overlap the dataset's grid 20 x 24 x 18 at 4 mm (axes LAS, its files'" in text
    assert "x 459..541" in text and "Register them to the dataset's space" in text


def test_4d_roi_file_is_refused_with_its_own_shape(setup):
    import nibabel as nib

    from brainvae.errors import DataFileError

    stack = np.stack([atlas_2mm(), atlas_2mm()], axis=-1)
    path = setup["root"] / "stack.nii.gz"
    nib.save(nib.Nifti1Image(stack, ROI_AFFINE), str(path))
    with pytest.raises(DataFileError, match=r"is 4D \(42 x 50 x 38 x 2\)"):
        _load(path, setup["ds3d"])


def test_finer_one_slice_roi_file_serves_a_slice_dataset_wherever_it_lies(tmp_path):
    """A 0.5 mm slice ROI for 1 mm slices, 7 mm off along the normal: as before, a slice ROI
    applies whatever its position along the slice axis, and downsampling gives the labels back."""
    from brainvae.data.dataset import PreparedDataset
    from brainvae.data.io.nifti_writing import write_nifti
    from helpers.phantom_datasets import prepared_phantom

    dataset_dir, _, labels = prepared_phantom(tmp_path, (32, 40), 4, latent_dim=2)
    dataset = PreparedDataset.open(dataset_dir)
    fine = np.kron(labels, np.ones((2, 2), dtype=labels.dtype))
    affine = dataset.affine.copy()
    affine[:3, 1:3] *= 0.5
    affine[:3, 3] += -0.5 * (affine[:3, 1] + affine[:3, 2]) + 7 * dataset.affine[:3, 0]
    path = write_nifti(tmp_path / "fine.nii.gz", fine, affine, squeezed_axes=(0,))
    image = _load(path, dataset)
    assert np.array_equal(image.labels, labels)
    assert image.resampling.startswith(
        "ROIs resampled from 1 x 64 x 80 at 1 x 0.5 x 0.5 mm to the dataset's 1 x 32 x 40 at 1 mm"
    )
