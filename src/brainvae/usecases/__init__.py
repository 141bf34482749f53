"""Use cases shared by the command line and the napari docks: each module holds one task as
the library does it (fit and save a model, encode a dataset, the receptive and the projective
run, the recorded dataset of a run), so every entry point writes and computes the same thing.

No napari or Qt here; torch and the analyses are imported inside the functions. Long tasks are
generators yielding small progress reports and returning their result, which a command drains
under a progress line and a dock runs in a napari worker.
"""
