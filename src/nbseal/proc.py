"""Running a program whose output is told line by line, and which goes when its caller does.

What Linux says of a running process is in :mod:`nbseal.procfs`.

uv, guix and mmdebstrap run so: what they print as they work becomes
progress, what they printed is kept for the error if they fail, and an
interrupted build (the cell's task cancelled) stops the program rather than
leave it writing into the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

__all__ = ["Ran", "run_telling"]


@dataclass(frozen=True)
class Ran:
    """A finished program: its exit code, its stdout, and the lines it told."""

    returncode: int
    stdout: str
    lines: list[str]


async def run_telling(
    argv: Sequence[str],
    on_line: Callable[[str], None],
    *,
    env: Mapping[str, str] | None = None,
    pass_fds: Sequence[int] = (),
    merged: bool = False,
    own_group: bool = False,
) -> Ran:
    """Run ``argv``, telling ``on_line`` each line of its stderr as it comes.

    With ``merged``, stdout goes with stderr (told, not kept apart). With
    ``own_group`` the program leads a process group of its own, and the
    whole group is killed if the caller is cancelled or fails; else the
    program alone is.
    """
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT if merged else asyncio.subprocess.PIPE,
        env=env,
        pass_fds=pass_fds,
        start_new_session=own_group,
    )
    assert process.stdout is not None
    lines: list[str] = []

    async def tell(stream: asyncio.StreamReader) -> None:
        async for raw in stream:
            line = raw.decode(errors="replace").rstrip()
            lines.append(line)
            on_line(line)

    try:
        if merged:
            out = b""
            await tell(process.stdout)
        else:
            assert process.stderr is not None
            out, _ = await asyncio.gather(process.stdout.read(), tell(process.stderr))
        code = await process.wait()
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            if own_group:
                os.killpg(process.pid, 9)  # its children too, even after it exited
            elif process.returncode is None:
                process.kill()
        await process.wait()
        raise
    return Ran(code, out.decode(errors="replace"), lines)
