"""Figures for papers: arrays and result dataclasses in, a matplotlib Figure or a file out.

Matplotlib's object API on the Agg canvas only (no pyplot, no global state), imported inside
the functions, so importing brainvae stays light and a figure can be drawn in a worker thread.
"""
