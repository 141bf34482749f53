#!/usr/bin/env bash
# Set up everything, then open napari with the plugin's widgets docked and the sample
# population loaded. Without a display (a headless node) it runs under Xvfb.
# Extra arguments go to `python -m brainvae.napari.launch` (try --help).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
  echo "napari: no display found, running under Xvfb (pass --screenshot FILE to see it)"
  exec xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python -m brainvae.napari.launch "$@"
fi
exec .venv/bin/python -m brainvae.napari.launch "$@"
