"""Generator functions run in napari workers; they yield small progress reports and never touch layers."""
