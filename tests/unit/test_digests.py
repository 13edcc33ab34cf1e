"""SHA-256 digests in the forms people write them, and the data directive."""

from __future__ import annotations

import base64
import hashlib
import os

import pytest

from nbseal.digests import nix_base32_decode, nix_base32_encode, sha256_hex
from nbseal.directives import DataDirective, parse_cell
from nbseal.errors import DirectiveError

EMPTY = hashlib.sha256(b"").digest()
# `guix hash` / `nix hash to-base32` of the empty file's SHA-256.
EMPTY_NIX = "0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73"


def test_nix_base32_matches_the_form_guix_prints() -> None:
    assert nix_base32_encode(EMPTY) == EMPTY_NIX
    assert nix_base32_decode(EMPTY_NIX) == EMPTY


def test_nix_base32_round_trips() -> None:
    for _ in range(100):
        digest = os.urandom(32)
        assert nix_base32_decode(nix_base32_encode(digest)) == digest


@pytest.mark.parametrize(
    "written",
    [
        f"sha256:{EMPTY.hex()}",
        f"sha256:{EMPTY.hex().upper()}",
        f"sha256-{base64.b64encode(EMPTY).decode()}",
        f"sha256:{EMPTY_NIX}",
        EMPTY_NIX,
    ],
)
def test_every_form_normalises_to_hex(written: str) -> None:
    assert sha256_hex(written) == EMPTY.hex()


@pytest.mark.parametrize(
    "written",
    ["sha256:abc", "sha256:" + "g" * 64, "md5:" + "0" * 32, "sha256-" + "A" * 10, "e" * 52],
)
def test_other_text_is_refused_naming_the_accepted_forms(written: str) -> None:
    with pytest.raises(ValueError, match="sha256:HEX"):
        sha256_hex(written)


def test_the_data_directive_carries_the_hex_digest() -> None:
    cell = parse_cell(f"#seal data iris.csv <- https://x.org/iris.csv sha256:{EMPTY_NIX}\nx = 1")
    (directive,) = cell.directives
    assert isinstance(directive, DataDirective)
    assert directive.sha256 == EMPTY.hex()
    assert directive.url == "https://x.org/iris.csv"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("#seal data x/../y <- https://x.org/a sha256:" + EMPTY.hex(), "may not start with / or"),
        ("#seal data /etc/x <- https://x.org/a sha256:" + EMPTY.hex(), "may not start with / or"),
        ("#seal data x <- https://x.org/a sha256:abc", "is not a SHA-256 digest"),
        ("#seal data x <- https://x.org/a md5:abc", "is not a SHA-256 digest"),
        ("#seal data x https://x.org/a sha256:" + EMPTY.hex(), "malformed data directive"),
    ],
)
def test_malformed_data_directives_name_the_line(line: str, message: str) -> None:
    with pytest.raises(DirectiveError) as info:
        parse_cell(line)
    assert message in info.value.message
    assert info.value.line == 1
