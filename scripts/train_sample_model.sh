#!/usr/bin/env bash
# Reproduce the shipped sample models from a fresh clone: prepare a sample population, train a
# beta-VAE with our own trainer (fixed seed, CPU, fp32), measure how well its latents encode
# ventricle size and lesion load, and copy the model (config.json, weights.safetensors,
# history.csv; not checkpoints/) into sample_data/models/beta_vae_<2d|3d>.
# The README.md next to each model (figures, timing) is written by hand from this script's output.
#
#   bash scripts/train_sample_model.sh         # the 2D model (default)
#   bash scripts/train_sample_model.sh 3d      # the 3D model
#   bash scripts/train_sample_model.sh all     # both, one after the other
#   WORK=/somewhere MODEL_ROOT=/elsewhere bash scripts/train_sample_model.sh 2d
#
# Work files go to build/sample_model/<2d|3d>/ (git-ignored; the relative dataset path is what
# the model's config.json records). MODEL_ROOT=... copies the models elsewhere instead (e.g. to
# compare a rerun with the shipped ones).
#
# Likelihood: Gaussian with a fixed sigma = 0.05 (in units of the [0, 1] grey values) and
# beta = 1, i.e. sum of squared errors / (2 * 0.05^2) + KL: an error of 0.1 on one voxel costs 2
# nats, so ventricles and lesions weigh far more than under BCE on grey values.
set -euo pipefail
cd "$(dirname "$0")/.."
BRAINVAE="${BRAINVAE:-.venv/bin/brainvae}"
PYTHON="${PYTHON:-.venv/bin/python}"
WORK="${WORK:-build/sample_model}"
MODEL_ROOT="${MODEL_ROOT:-sample_data/models}"
WHICH="${1:-2d}"

train_one() {
    local dims="$1" epochs="$2" batch="$3" every="$4" work="$WORK/$1"
    mkdir -p "$work"
    "$BRAINVAE" prepare "sample_data/population_$dims/images" \
        --csv "sample_data/population_$dims/subjects.csv" \
        --preset identity --seed 0 --out "$work/ds" --overwrite --quiet
    local start=$SECONDS
    "$BRAINVAE" train "$work/ds" --model beta-vae --arch small --latent 8 \
        --likelihood gaussian --sigma 0.05 --beta 1 --batch "$batch" --lr 1e-3 --epochs "$epochs" \
        --seed 0 --device cpu --precision fp32 --checkpoint-every "$every" --quiet \
        --out "$work/run" --overwrite
    echo "Trained the $dims model in $((SECONDS - start)) s"
    "$PYTHON" benchmarks/sample_model_quality.py "$work/run" "$work/ds"
    mkdir -p "$MODEL_ROOT/beta_vae_$dims"
    cp "$work/run/config.json" "$work/run/weights.safetensors" "$work/run/history.csv" \
        "$MODEL_ROOT/beta_vae_$dims/"
    echo "Copied the model to $MODEL_ROOT/beta_vae_$dims (update its README.md with the figures above)"
}

case "$WHICH" in
    2d) train_one 2d 150 16 50 ;;
    3d) train_one 3d 400 8 10 ;;
    all) train_one 2d 150 16 50 && train_one 3d 400 8 10 ;;
    *) echo "usage: $0 [2d|3d|all]" >&2; exit 2 ;;
esac
