"""SHA-256 digests as people write them: hex, SRI base64, and Guix's nix-base32.

Pure functions (but :func:`sha256_file`, which reads a file); every form is
normalised to lowercase hex, the store's key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re

__all__ = ["nix_base32_decode", "nix_base32_encode", "sha256_file", "sha256_hex"]

_CHUNK = 1 << 20

_NIX_ALPHABET = "0123456789abcdfghijklmnpqrsvwxyz"  # no e, o, u, t
_SHA256_BYTES = 32
_NIX_LENGTH = (_SHA256_BYTES * 8 - 1) // 5 + 1  # 52


def nix_base32_encode(digest: bytes) -> str:
    """Encode as Nix and Guix print hashes (least significant 5-bit group last)."""
    size = len(digest)
    length = (size * 8 - 1) // 5 + 1
    chars = []
    for n in range(length - 1, -1, -1):
        bit = n * 5
        i, j = divmod(bit, 8)
        value = digest[i] >> j
        if i < size - 1:
            value |= digest[i + 1] << (8 - j)
        chars.append(_NIX_ALPHABET[value & 0x1F])
    return "".join(chars)


def nix_base32_decode(text: str, size: int = _SHA256_BYTES) -> bytes:
    if len(text) != (size * 8 - 1) // 5 + 1:
        raise ValueError(f"a nix-base32 digest of {size} bytes has {(size * 8 - 1) // 5 + 1} chars")
    out = bytearray(size)
    for n in range(len(text)):
        char = text[len(text) - n - 1]
        digit = _NIX_ALPHABET.find(char)
        if digit < 0:
            raise ValueError(f"{char!r} is not a nix-base32 character")
        i, j = divmod(n * 5, 8)
        out[i] |= (digit << j) & 0xFF
        carry = digit >> (8 - j)
        if i < size - 1:
            out[i + 1] |= carry
        elif carry:
            raise ValueError("the nix-base32 digest has bits beyond its size")
    return bytes(out)


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The SHA-256 of a file's bytes, as lowercase hex (read in chunks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_hex(text: str) -> str:
    """Normalise ``sha256:HEX``, ``sha256:NIXBASE32``, ``sha256-BASE64`` or a bare form.

    Raises ValueError naming the forms that are accepted.
    """
    value = text.strip()
    body = re.sub(r"^sha256[:-]", "", value)
    if re.fullmatch(r"[0-9a-fA-F]{64}", body):
        return body.lower()
    if len(body) == _NIX_LENGTH and re.fullmatch(f"[{_NIX_ALPHABET}]+", body):
        return nix_base32_decode(body).hex()
    if re.fullmatch(r"[A-Za-z0-9+/]{43}=?", body):
        try:
            raw = base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
        except binascii.Error:
            raw = b""
        if len(raw) == _SHA256_BYTES:
            return raw.hex()
    raise ValueError(
        f"{text!r} is not a SHA-256 digest: use sha256:HEX (64 hex digits), "
        "sha256-BASE64 (SRI) or a Guix nix-base32 hash (52 chars)"
    )
