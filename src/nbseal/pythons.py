"""When each CPython feature release came out (facts from python.org, not a policy).

A resolution pinned before its interpreter existed holds releases that never
ran on it; ``python=auto`` would pick the interpreter current at a pin.
"""

from __future__ import annotations

__all__ = ["CPYTHON_RELEASES", "python_at", "python_release"]

# X.Y -> the day X.Y.0 was released.
CPYTHON_RELEASES = {
    "3.5": "2015-09-13T00:00:00Z",
    "3.6": "2016-12-23T00:00:00Z",
    "3.7": "2018-06-27T00:00:00Z",
    "3.8": "2019-10-14T00:00:00Z",
    "3.9": "2020-10-05T00:00:00Z",
    "3.10": "2021-10-04T00:00:00Z",
    "3.11": "2022-10-24T00:00:00Z",
    "3.12": "2023-10-02T00:00:00Z",
    "3.13": "2024-10-07T00:00:00Z",
    "3.14": "2025-10-07T00:00:00Z",
}


def python_release(version: str) -> str | None:
    """The instant CPython ``version`` (``3.11`` or ``3.11.7``) came out, if known."""
    return CPYTHON_RELEASES.get(".".join(version.split(".")[:2]))


def python_at(pin: str) -> str | None:
    """The newest CPython feature release out at ``pin`` (RFC 3339), if any is known."""
    out = [v for v, day in CPYTHON_RELEASES.items() if day <= pin]
    return max(out, key=lambda v: tuple(int(p) for p in v.split(".")), default=None)
