"""`python -m brainvae ...` (also what `torchrun -m brainvae` runs)."""

from brainvae.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
