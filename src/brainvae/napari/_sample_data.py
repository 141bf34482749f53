"""Sample data contributions: the shipped phantom populations and their template + atlas."""

from __future__ import annotations


def _population(dims: int, with_scans: bool):
    from brainvae.data.population_folder import read_population_folder
    from brainvae.data.sample import sample_population_dir
    from brainvae.napari.population_layers import folder_layer_data

    population = read_population_folder(
        sample_population_dir(dims), max_scans=None if with_scans else 1
    )
    layers = folder_layer_data(population, name=f"population (sample {dims}D)")
    if not with_scans:
        layers = layers[1:]
        for _data, kwargs, _kind in layers:
            kwargs["visible"] = True
    return layers


def population_2d():
    """The 2D coronal phantom population as a stack, with template and ROI atlas."""
    return _population(2, with_scans=True)


def population_3d():
    """The 3D phantom population as a stack of volumes, with template and ROI atlas."""
    return _population(3, with_scans=True)


def atlas_2d():
    """Template and ROI atlas on the 2D working grid."""
    return _population(2, with_scans=False)


def atlas_3d():
    """Template and ROI atlas on the 3D working grid."""
    return _population(3, with_scans=False)
