"""Work that must stay linear, tested without a timing assertion.

A pattern or a loop that is quadratic on hostile input does not finish a
large enough input within a minute, whatever the machine's load; a linear
one takes well under a second. Each test runs its code in a fresh
interpreter with that limit: a timeout is the failure.
"""

from __future__ import annotations

import subprocess
import sys

__all__ = ["stdout_within"]


def stdout_within(code: str, seconds: float = 60) -> str:
    """What ``python -c code`` prints; raises if it fails or takes over ``seconds``."""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=seconds, check=True
    )
    return done.stdout
