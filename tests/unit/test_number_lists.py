"""One parser for typed lists of numbers: the CLI and the docks accept the same forms."""

from __future__ import annotations

import pytest

from brainvae.cli.receptive import parse_weights
from brainvae.errors import ReceptiveFieldError
from brainvae.napari.widgets.projective_inputs import latent_indices
from brainvae.number_lists import number_list


@pytest.mark.parametrize(
    ("text", "kind", "prefix", "expected"),
    [
        ("1, 3", int, "", [1, 3]),
        ("z1,Z3", int, "z", [1, 3]),
        ("0.8;0.1 ; 0.1", float, "", [0.8, 0.1, 0.1]),
        ("-7,7", float, "", [-7.0, 7.0]),
        (" , ,", float, "", []),
    ],
)
def test_forms_a_user_types(text, kind, prefix, expected):
    assert number_list(text, kind, prefix) == expected


@pytest.mark.parametrize("text", ["1 2", "one", "1.5"])
def test_a_part_that_is_not_a_number_is_refused(text):
    with pytest.raises(ValueError):
        number_list(text, int)


def test_the_command_line_and_the_dock_read_a_list_alike():
    assert parse_weights("0; 0.5, 1") == [0.0, 0.5, 1.0]  # semicolons, as the dock takes them
    assert latent_indices("z1, z3", 4) == [0, 2]  # a z prefix, as --latents takes it
    with pytest.raises(ReceptiveFieldError, match="--weights must be comma-separated numbers"):
        parse_weights("0, half")
