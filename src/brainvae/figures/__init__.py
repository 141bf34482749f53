"""Figures for papers: arrays and result dataclasses in, a matplotlib Figure out (saved as a
file by brainvae.exports.figures).

Matplotlib's object API on the Agg canvas only (no pyplot, no global state), imported inside
the functions, so importing brainvae stays light and a figure can be drawn in a worker thread.
"""
