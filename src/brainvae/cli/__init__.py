"""`brainvae` command line: one module per subcommand, each with add_parser() and run()."""

from __future__ import annotations

import argparse
import importlib
import sys

from brainvae import __version__

# Each name is a module brainvae.cli.<name> (a dash spelled _) defining add_parser(subparsers)
# that registers a sub-parser whose `func` default is called with the parsed args.
SUBCOMMANDS: tuple[str, ...] = (
    "phantom",
    "prepare",
    "train",
    "encode",
    "decode",
    "sweep",
    "receptive",
    "projective",
    "resample-rois",
    "population",
    "longitudinal",
    "evaluate",
    "sweep-report",
    "denoise",
)


def build_parser() -> argparse.ArgumentParser:
    """The full parser; subcommand modules import only argparse-light code at this point."""
    parser = argparse.ArgumentParser(
        prog="brainvae",
        description="Learn and interrogate latent spaces of brain-image populations.",
    )
    parser.add_argument("--version", action="version", version=f"brainvae {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in SUBCOMMANDS:
        importlib.import_module(f"brainvae.cli.{name.replace('-', '_')}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; a BrainVAEError prints one clear line and exits with 2, and so
    does no room to write (disk full, quota, file-size limit) wherever it happens."""
    from brainvae.errors import BrainVAEError, as_disk_full, is_no_room

    args = build_parser().parse_args(argv)
    try:
        result = args.func(args)
    except BrainVAEError as err:
        print(f"brainvae {args.command}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        if not is_no_room(err):
            raise
        print(f"brainvae {args.command}: error: {as_disk_full(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"brainvae {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)
