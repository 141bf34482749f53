"""Evaluation of trained models: image quality (MSE, SSIM, CW-SSIM), the PCA-based Frechet
distance, the denoising comparison, ground-truth disentanglement metrics and the sweep report.

Each metric is a pure function over arrays in its own module; nothing is imported here."""
