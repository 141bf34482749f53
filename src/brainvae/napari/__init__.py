"""napari side of brainvae: NIfTI reader/writer, sample data, widgets (imported lazily by npe2)."""
