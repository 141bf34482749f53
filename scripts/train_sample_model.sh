#!/usr/bin/env bash
# Reproduce the shipped sample model sample_data/models/beta_vae_2d from a fresh clone:
# prepare the 2D sample population, train the beta-VAE with our own trainer (fixed seed, CPU,
# fp32), measure how well its latents encode ventricle size and lesion load, and copy the model
# (config.json, weights.safetensors, history.csv; not checkpoints/) into sample_data/models/.
# The README.md next to the model (figures, timing) is written by hand from this script's output.
# MODEL_DIR=... copies the model elsewhere instead (e.g. to check a rerun against the shipped one).
#
#   bash scripts/train_sample_model.sh            # work files in /tmp/brainvae_sample_model
#   WORK=/somewhere bash scripts/train_sample_model.sh
#
# Gaussian likelihood without a fixed sigma is the plain sum of squared errors (SSE); with
# --beta 0.005 the loss SSE + 0.005 KL equals, up to a constant factor 2 sigma^2, the Gaussian
# NLL with sigma = 0.05 and beta = 1 (2 * 0.05^2 = 0.005): errors on ventricles and lesions weigh
# far more than under BCE on grey values.
set -euo pipefail
cd "$(dirname "$0")/.."
BRAINVAE="${BRAINVAE:-.venv/bin/brainvae}"
PYTHON="${PYTHON:-.venv/bin/python}"
WORK="${WORK:-/tmp/brainvae_sample_model}"
MODEL_DIR="${MODEL_DIR:-sample_data/models/beta_vae_2d}"

mkdir -p "$WORK"
"$BRAINVAE" prepare sample_data/population_2d/images --csv sample_data/population_2d/subjects.csv \
    --preset identity --seed 0 --out "$WORK/ds" --overwrite --quiet

"$BRAINVAE" train "$WORK/ds" --model beta-vae --arch small --latent 8 \
    --likelihood gaussian --beta 0.005 --batch 16 --lr 1e-3 --epochs 500 --seed 0 \
    --device cpu --checkpoint-every 100 --quiet --out "$WORK/run" --overwrite

"$BRAINVAE" encode "$WORK/run" "$WORK/ds" --out "$WORK/latents.csv"
"$PYTHON" benchmarks/sample_model_quality.py "$WORK/run" "$WORK/ds"

mkdir -p "$MODEL_DIR"
cp "$WORK/run/config.json" "$WORK/run/weights.safetensors" "$WORK/run/history.csv" "$MODEL_DIR/"
echo "Copied the model to $MODEL_DIR (update its README.md with the figures above)"
