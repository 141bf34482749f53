#!/usr/bin/env bash
# One-time (idempotent) set-up on a fresh machine: Xvfb + the xcb libraries Qt needs,
# a virtual environment in .venv, torch pinned to the CPU wheel BEFORE anything that
# depends on it, then this package with its GUI and test extras (editable).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
TORCH_VERSION=${BRAINVAE_TORCH:-2.13.0}

# Nothing to do when the environment was set up from these very files (the package is
# installed editable, so source changes need no reinstall): napari starts in seconds.
STAMP=.venv/.brainvae-setup
fingerprint=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)-$TORCH_VERSION
if [ -z "${BRAINVAE_FORCE_SETUP:-}" ] && [ -x .venv/bin/python ] && [ -f "$STAMP" ] \
  && [ "$(cat "$STAMP")" = "$fingerprint" ] && command -v xvfb-run >/dev/null 2>&1; then
  echo "setup: environment is current (BRAINVAE_FORCE_SETUP=1 to redo it)"
  exit 0
fi
APT_PACKAGES=(xvfb xauth libxcb-icccm4 libxcb-keysyms1 libxcb-xinerama0 libxcb-cursor0
  libxkbcommon-x11-0 libxcb-randr0 libxcb-render-util0 libxcb-shape0 libxcb-image0
  libgl1 libegl1 libfontconfig1 libdbus-1-3)

missing=()
if command -v dpkg >/dev/null 2>&1; then
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing system packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PYTHON" -m venv .venv
fi
PIP=(.venv/bin/python -m pip --disable-pip-version-check -q)
# pip's notes about unreachable local package folders are noise; its exit code is kept
# (pipefail), so a failed install still stops the set-up here.
quiet() { grep -v "is ignored" || true; }
if ! .venv/bin/python -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null; then
  echo "setup: installing torch==$TORCH_VERSION"
  "${PIP[@]}" install "torch==$TORCH_VERSION" 2>&1 | quiet
fi
echo "setup: installing napari-brainvae[gui,test]"
"${PIP[@]}" install -e ".[gui,test]" 2>&1 | quiet
.venv/bin/python -c "import brainvae, napari, torch, pytest, pytestqt, pytest_xvfb, npe2; print('setup: ok (torch', torch.__version__, ', napari', napari.__version__, ')')"
.venv/bin/ruff --version >/dev/null
echo "$fingerprint" > "$STAMP"
