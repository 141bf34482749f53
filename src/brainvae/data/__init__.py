"""Data: volume I/O, preprocessing, population datasets and the phantom population."""
