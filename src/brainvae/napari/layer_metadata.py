"""Convert a `Volume` to napari layer kwargs (scale, translate, metadata) and back.

napari places voxel ``i`` of a layer at ``translate + i * scale`` along each axis.
Volumes come in display orientation (Inferior, Posterior, Right), so each display
axis runs along one world axis (z, y or x) with a sign. Using the *signed* world
coordinate as the layer coordinate keeps scale positive and makes images of
different resolutions in the same world space overlay. The metadata keys below
hold everything the writer needs to give back the exact file affine.

Import-light on purpose: numpy only (napari reads the manifest without Qt or torch).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

# A layer's metadata holds this plugin's entries under one key (other plugins share the dict).
NAMESPACE = "brainvae"
# Keys inside layer.metadata["brainvae"] of a layer opened by this plugin (JSON-friendly values).
KIND = "kind"  # "volume" for a NIfTI file (the population stack uses "population")
AFFINE = "affine"  # 4x4 list: unsqueezed display indices (I, P, R) -> world mm
ORIGINAL_AFFINE = "original_affine"  # 4x4 list: the file's own affine (its axis order)
ORIGINAL_AXCODES = "original_axcodes"  # e.g. ["L", "A", "S"]: the file's own orientation
DISPLAY_AXCODES_KEY = "display_axcodes"  # ["I", "P", "R"]
SQUEEZED_AXES = "squeezed_axes"  # display axes dropped because they had length 1
IS_4D = "is_4d"  # True: layer axis 0 is the "volume" axis
SOURCE_PATH = "source_path"  # str path of the file read, or None
AXIS_NAMES = "axis_names"  # names of the layer's axes, e.g. ["volume", "inferior", ...]
ZOOMS = "zooms"  # voxel sizes in mm of the spatial layer axes
OBLIQUE = "oblique"  # True when the affine rotates/shears beyond permutation + flip
HEADER = "header"  # JSON-friendly header summary (descrip, units, datatype, ...)

METADATA_KEYS = (
    KIND,
    AFFINE,
    ORIGINAL_AFFINE,
    ORIGINAL_AXCODES,
    DISPLAY_AXCODES_KEY,
    SQUEEZED_AXES,
    IS_4D,
    SOURCE_PATH,
    AXIS_NAMES,
    ZOOMS,
    OBLIQUE,
    HEADER,
)

SPATIAL_UNIT = "mm"
"""Every layer on a scan's grid (a file the reader opens, a population stack, its atlas, the
ROI layers the docks make) gives its spatial axes this unit: napari warns "Inconsistent units
across layers" as soon as two layers disagree, and then shows no scale bar units."""
INDEX_UNIT = "pixel"  # a 4D file's volume axis, a population's scan axis: counted, not measured

_LABEL_WORDS = re.compile(r"atlas|label|seg|mask|parc|(?:^|[^a-z])rois?(?:[^a-z]|$)")
_STANDARD_WORLD_AXES = ((2, -1.0), (1, -1.0), (0, 1.0))  # I -> -z, P -> -y, R -> +x


def layer_name(path: str | Path) -> str:
    """File name without .nii/.nii.gz: the layer's name."""
    name = Path(path).name
    for suffix in (".nii.gz", ".nii"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def layer_units(axis_names) -> list[str]:
    """napari units of a layer's axes: a volume or scan axis is counted, the others are mm."""
    return [INDEX_UNIT if name in ("volume", "scan") else SPATIAL_UNIT for name in axis_names]


def looks_like_labels(name: str, dtype: np.dtype) -> bool:
    """Integer data whose name says atlas/label/seg/mask/aseg/parc/roi opens as a labels layer."""
    return np.dtype(dtype).kind in "iu" and _LABEL_WORDS.search(name.lower()) is not None


def world_axes(affine: np.ndarray) -> list[tuple[int, float]]:
    """For each display axis, the world axis it mostly runs along and the direction's sign."""
    linear = np.asarray(affine, dtype=float)[:3, :3]
    out = []
    for column in linear.T:
        world = int(np.argmax(np.abs(column)))
        out.append((world, 1.0 if column[world] >= 0 else -1.0))
    return out


def is_oblique(affine: np.ndarray, tolerance: float = 1e-6) -> bool:
    """True when the affine rotates or shears, not just scales, permutes and flips."""
    linear = np.abs(np.asarray(affine, dtype=float)[:3, :3])
    off_axis = linear.sum(axis=0) - linear.max(axis=0)
    return bool(np.any(off_axis > tolerance * linear.max(axis=0)))


def spatial_scale_translate(affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Voxel sizes and signed world position of voxel 0 for the three display axes."""
    affine = np.asarray(affine, dtype=float)
    scale = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    translate = np.array([sign * affine[world, 3] for world, sign in world_axes(affine)])
    return scale, translate


def layer_scale_translate(
    affine: np.ndarray, squeezed_axes=(), is_4d: bool = False
) -> tuple[list[float], list[float]]:
    """Layer scale and translate: spatial axes not squeezed, with (1, 0) for a volume axis."""
    scale, translate = spatial_scale_translate(affine)
    keep = [a for a in range(3) if a not in set(squeezed_axes)]
    scale_list = [float(scale[a]) for a in keep]
    translate_list = [float(translate[a]) for a in keep]
    if is_4d:
        scale_list, translate_list = [1.0, *scale_list], [0.0, *translate_list]
    return scale_list, translate_list


def affine_from_scale_translate(
    scale, translate, squeezed_axes=(), is_4d: bool = False, template: np.ndarray | None = None
) -> np.ndarray:
    """Display affine that the reader turns back into this scale and translate.

    Squeezed axes take their voxel size and slice position from ``template`` when
    given (1 mm at 0 otherwise).
    """
    scale = [float(s) for s in scale][1 if is_4d else 0 :]
    translate = [float(t) for t in translate][1 if is_4d else 0 :]
    full_scale, full_translate = [1.0, 1.0, 1.0], [0.0, 0.0, 0.0]
    if template is not None:
        template_scale, template_translate = spatial_scale_translate(template)
        full_scale, full_translate = list(template_scale), list(template_translate)
    keep = [a for a in range(3) if a not in set(squeezed_axes)]
    for position, axis in enumerate(keep):
        full_scale[axis] = abs(scale[position]) or 1.0
        full_translate[axis] = translate[position]
    affine = np.eye(4)
    affine[:3, :3] = 0.0
    for axis, (world, sign) in enumerate(_STANDARD_WORLD_AXES):
        affine[world, axis] = sign * full_scale[axis]
        affine[world, 3] = sign * full_translate[axis]
    return affine


def affine_placement(
    affine: np.ndarray,
    spatial_shape: tuple[int, ...] | None = None,
    axis_names: tuple[str, ...] | None = None,
    squeezed_axes: tuple[int, ...] | None = None,
) -> dict[str, list]:
    """``scale``, ``translate``, ``axis_labels`` and ``units`` (mm, as the reader gives them) of
    the spatial layer axes of a display affine.

    Which display axes were squeezed comes from ``squeezed_axes``, else from the spatial
    ``axis_names`` (e.g. ("inferior", "right") for coronal slices), else from a 3D shape.
    """
    from brainvae.data.io.nifti import AXIS_NAMES as DISPLAY_NAMES
    from brainvae.data.io.nifti import DISPLAY_AXCODES

    display_names = [DISPLAY_NAMES[code] for code in DISPLAY_AXCODES]
    if squeezed_axes is None and axis_names is not None:
        spatial = [n for n in axis_names if n in display_names]
        squeezed_axes = tuple(a for a, n in enumerate(display_names) if n not in spatial)
    if squeezed_axes is None:
        if spatial_shape is not None and len(spatial_shape) != 3:
            raise ValueError(
                f"cannot tell which display axes a {len(spatial_shape)}D shape keeps: "
                "give axis_names or squeezed_axes"
            )
        squeezed_axes = ()
    scale, translate = layer_scale_translate(affine, squeezed_axes)
    keep = [a for a in range(3) if a not in set(squeezed_axes)]
    if spatial_shape is not None and len(spatial_shape) != len(keep):
        raise ValueError(f"shape {tuple(spatial_shape)} does not match the {len(keep)} kept axes")
    return {
        "scale": scale,
        "translate": translate,
        "axis_labels": [display_names[a] for a in keep],
        "units": [SPATIAL_UNIT] * len(keep),
    }


def volume_placement(volume) -> dict[str, list]:
    """``scale``, ``translate``, ``axis_labels`` and ``units`` of a Volume's spatial axes (no
    volume axis)."""
    return affine_placement(volume.affine, squeezed_axes=tuple(volume.squeezed_axes))


def _matrix(value) -> list[list[float]] | None:
    return None if value is None else np.asarray(value, dtype=float).tolist()


def stored_metadata(layer_metadata: dict[str, Any] | None) -> dict[str, Any]:
    """This plugin's entries of a layer's metadata (empty for a layer made elsewhere)."""
    entries = (layer_metadata or {}).get(NAMESPACE)
    return entries if isinstance(entries, dict) else {}


def volume_metadata(volume) -> dict[str, Any]:
    """JSON-friendly entries (layer.metadata["brainvae"]) that let the writer rebuild the file."""
    from brainvae.data.io.nifti import DISPLAY_AXCODES

    return {
        KIND: "volume",
        AFFINE: _matrix(volume.affine),
        ORIGINAL_AFFINE: _matrix(volume.original_affine),
        ORIGINAL_AXCODES: list(volume.original_axcodes) if volume.original_axcodes else None,
        DISPLAY_AXCODES_KEY: list(DISPLAY_AXCODES),
        SQUEEZED_AXES: [int(a) for a in volume.squeezed_axes],
        IS_4D: bool(volume.is_4d),
        SOURCE_PATH: str(volume.source) if volume.source is not None else None,
        AXIS_NAMES: list(volume.axis_names),
        ZOOMS: [float(z) for z in volume.zooms],
        OBLIQUE: is_oblique(volume.affine),
        HEADER: dict(volume.header),
    }


def contrast_limits(data: np.ndarray, max_samples: int = 1_000_000) -> list[float]:
    """Robust display range (0.5 and 99.5 percentiles of finite values, on a subsample)."""
    flat = np.asarray(data).reshape(-1)
    if flat.size > max_samples:
        flat = flat[:: flat.size // max_samples + 1]
    flat = flat[np.isfinite(flat)] if flat.dtype.kind == "f" else flat
    if flat.size == 0:
        return [0.0, 1.0]
    low, high = (float(v) for v in np.percentile(flat, [0.5, 99.5]))
    if high <= low:
        low, high = float(flat.min()), float(flat.max())
    if high <= low:
        high = low + 1.0
    return [low, high]


def volume_layer_data(
    volume, name: str | None = None, layer_type: str | None = None
) -> tuple[np.ndarray, dict[str, Any], str]:
    """napari LayerData tuple (data, kwargs, "image" or "labels") for a Volume."""
    if name is None:
        name = layer_name(volume.source) if volume.source is not None else "volume"
    if layer_type is None:
        layer_type = "labels" if looks_like_labels(name, volume.data.dtype) else "image"
    scale, translate = layer_scale_translate(volume.affine, volume.squeezed_axes, volume.is_4d)
    kwargs: dict[str, Any] = {
        "name": name,
        "scale": scale,
        "translate": translate,
        "metadata": {NAMESPACE: volume_metadata(volume)},
        "axis_labels": list(volume.axis_names),
        "units": layer_units(volume.axis_names),
    }
    if layer_type == "image":
        kwargs["rgb"] = False  # napari would take a last axis of length 3 or 4 for colour
        kwargs["colormap"] = "gray"
        kwargs["contrast_limits"] = contrast_limits(volume.data)
    return volume.data, kwargs, layer_type


def _has_leading_axis(metadata: dict[str, Any]) -> bool:
    """A 4D file's "volume" axis, or a population stack's "scan" axis, comes first."""
    return bool(metadata.get(IS_4D)) or metadata.get(KIND) == "population"


def _metadata_fits(metadata: dict[str, Any], ndim: int) -> bool:
    """True when the metadata's squeezed axes and volume axis match the layer's dimensions."""
    try:
        affine = np.asarray(metadata[AFFINE], dtype=float)
        squeezed = [int(a) for a in metadata.get(SQUEEZED_AXES, [])]
    except (KeyError, TypeError, ValueError):
        return False
    expected = 3 - len(squeezed) + (1 if _has_leading_axis(metadata) else 0)
    return affine.shape == (4, 4) and np.all(np.isfinite(affine)) and expected == ndim


def _display_shape(layout) -> tuple[int, ...]:
    """The three display-axis lengths of a file with this layout (reader's reorientation)."""
    from nibabel.orientations import axcodes2ornt, ornt_transform

    from brainvae.data.io.nifti import DISPLAY_AXCODES

    shape = (tuple(layout.shape) + (1, 1, 1))[:3]
    transform = ornt_transform(axcodes2ornt(layout.axcodes), axcodes2ornt(DISPLAY_AXCODES))
    display = [0, 0, 0]
    for axis, (target, _) in enumerate(transform):
        display[int(target)] = shape[axis]
    return tuple(display)


def source_layout(metadata: dict[str, Any], shape: tuple[int, ...] | None):
    """The source file's FileLayout when a layer of this shape still fits its grid, else None."""
    from brainvae.data.io.nifti import file_layout

    if shape is None or metadata.get(KIND) != "volume":
        return None
    layout = file_layout(
        metadata.get(ORIGINAL_AFFINE), metadata.get(ORIGINAL_AXCODES), metadata.get(HEADER)
    )
    if layout is None:
        return None
    try:
        display = _display_shape(layout)
    except (ValueError, KeyError):
        return None
    squeezed = {int(a) for a in metadata.get(SQUEEZED_AXES, [])}
    spatial = tuple(shape[1:] if _has_leading_axis(metadata) else shape)
    kept = tuple(n for a, n in enumerate(display) if a not in squeezed)
    return layout if spatial == kept else None


def nifti_write_args(
    ndim: int, meta: dict[str, Any], shape: tuple[int, ...] | None = None
) -> dict[str, Any]:
    """``affine``, ``squeezed_axes``, ``is_4d`` and ``original`` for write_nifti, from a layer.

    The metadata's affine is used as it is while the layer's scale and translate still
    match it (exact round trip, oblique affines included); then ``original`` is the
    source file's FileLayout (when the layer's ``shape`` still fits that file's grid) so
    the file is written back in its own voxel order, affine, codes and type. Otherwise
    the affine is rebuilt from scale and translate and ``original`` is None; a layer
    without metadata is taken as (inferior, posterior, right), a 2D one as an axial
    slice, a 4D one as volumes.
    """
    metadata = stored_metadata(meta.get("metadata"))
    scale = np.asarray(meta.get("scale", np.ones(ndim)), dtype=float)
    translate = np.asarray(meta.get("translate", np.zeros(ndim)), dtype=float)
    if _metadata_fits(metadata, ndim):
        squeezed = tuple(int(a) for a in metadata.get(SQUEEZED_AXES, []))
        is_4d = _has_leading_axis(metadata)
        affine = np.asarray(metadata[AFFINE], dtype=float)
        stored_scale, stored_translate = layer_scale_translate(affine, squeezed, is_4d)
        if np.allclose(stored_scale, scale, rtol=1e-6, atol=1e-6) and np.allclose(
            stored_translate, translate, rtol=1e-6, atol=1e-4
        ):
            original = source_layout(metadata, shape)
            return {
                "affine": affine,
                "squeezed_axes": squeezed,
                "is_4d": is_4d,
                "original": original,
            }
        rebuilt = affine_from_scale_translate(scale, translate, squeezed, is_4d, template=affine)
        return {"affine": rebuilt, "squeezed_axes": squeezed, "is_4d": is_4d, "original": None}
    if ndim not in (2, 3, 4):
        raise ValueError(f"a {ndim}D layer cannot be saved as NIfTI (expected 2, 3 or 4 axes)")
    squeezed = (0,) if ndim == 2 else ()
    is_4d = ndim == 4
    affine = affine_from_scale_translate(scale, translate, squeezed, is_4d)
    return {"affine": affine, "squeezed_axes": squeezed, "is_4d": is_4d, "original": None}


def layer_volume(data: Any, meta: dict[str, Any]):
    """A `Volume` (display orientation, affine) from a layer's data and state, e.g. to save it."""
    from brainvae.data.io.nifti import AXIS_NAMES as DISPLAY_NAMES
    from brainvae.data.io.nifti import DISPLAY_AXCODES, Volume

    array = np.asarray(data)
    args = nifti_write_args(array.ndim, meta, array.shape)
    metadata = stored_metadata(meta.get("metadata"))
    keep = [a for a in range(3) if a not in args["squeezed_axes"]]
    scale, _ = spatial_scale_translate(args["affine"])
    names = [DISPLAY_NAMES[DISPLAY_AXCODES[a]] for a in keep]
    original = metadata.get(ORIGINAL_AFFINE)
    source = metadata.get(SOURCE_PATH)
    return Volume(
        data=array,
        affine=args["affine"],
        zooms=tuple(float(scale[a]) for a in keep),
        axis_names=tuple(["volume", *names] if args["is_4d"] else names),
        squeezed_axes=tuple(args["squeezed_axes"]),
        source=Path(source) if source else None,
        original_affine=None if original is None else np.asarray(original, dtype=float),
        original_axcodes=tuple(metadata[ORIGINAL_AXCODES])
        if metadata.get(ORIGINAL_AXCODES)
        else None,
        header=dict(metadata.get(HEADER) or {}),
    )
