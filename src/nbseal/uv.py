"""The one module that runs uv.

Resolution and installation both go through uv's own resolver and installer;
this module only builds the command lines, streams uv's progress lines to a
callback, and turns a failure into a :class:`~nbseal.errors.UvError` that
carries what uv said.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from nbseal.errors import ResolutionError, UvError

__all__ = ["compile_pylock", "create_venv", "sync_pylock", "uv_binary", "uv_version"]

LineCallback = Callable[[str], None]


def uv_binary() -> str:
    from uv import find_uv_bin

    return str(find_uv_bin())


def _uv_env() -> dict[str, str]:
    env = dict(os.environ)
    # nbseal drives uv; the user's virtualenv must not redirect it.
    env.pop("VIRTUAL_ENV", None)
    env.setdefault("UV_NO_PROGRESS", "1")
    return env


async def _run(args: Sequence[str], on_line: LineCallback | None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        uv_binary(),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL,
        env=_uv_env(),
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    err_lines: list[str] = []

    async def pump_stderr() -> None:
        assert proc.stderr is not None
        async for raw in proc.stderr:
            line = raw.decode(errors="replace").rstrip()
            err_lines.append(line)
            if on_line is not None and line:
                on_line(line)

    try:
        out, _ = await asyncio.gather(proc.stdout.read(), pump_stderr())
        code = await proc.wait()
    except asyncio.CancelledError:
        # An interrupted build must not leave uv writing into the store.
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise
    return code, out.decode(errors="replace"), "\n".join(err_lines)


async def uv_version() -> str:
    code, out, err = await _run(["--version"], None)
    if code != 0:
        raise UvError("uv does not run", stderr=err, hint="reinstall nbseal")
    return out.strip()


async def compile_pylock(
    requirements: Sequence[str],
    *,
    python: str,
    exclude_newer: str,
    workdir: Path,
    on_line: LineCallback | None = None,
) -> str:
    """Resolve ``requirements`` as the index stood at ``exclude_newer``.

    Returns the text of a PEP 751 ``pylock.toml``: exact versions, artifact
    URLs and SHA-256 hashes of every package.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    infile = workdir / "requirements.in"
    infile.write_text("".join(f"{r}\n" for r in requirements))
    outfile = workdir / "pylock.toml"
    code, _, err = await _run(
        [
            "pip",
            "compile",
            str(infile),
            "--format",
            "pylock.toml",
            "-o",
            str(outfile),
            "--python",
            python,
            "--exclude-newer",
            exclude_newer,
            "--no-header",
            "--quiet",
        ],
        on_line,
    )
    if code != 0:
        raise ResolutionError(
            "uv could not resolve the environment",
            stderr=_tail(err),
            hint="check the package names and versions, or pick another pin date",
        )
    return outfile.read_text()


async def create_venv(path: Path, *, python: str, on_line: LineCallback | None = None) -> None:
    code, _, err = await _run(
        ["venv", "--relocatable", "--no-project", "--python", python, str(path)], on_line
    )
    if code != 0:
        raise UvError(
            f"uv could not create a virtual environment with {python}",
            stderr=_tail(err),
            hint="check that this Python interpreter exists and runs",
        )


async def sync_pylock(
    venv: Path,
    pylock: Path,
    *,
    offline: bool = False,
    on_line: LineCallback | None = None,
) -> None:
    """Install exactly the packages of ``pylock`` into ``venv``, checking hashes."""
    args = [
        "pip",
        "sync",
        str(pylock),
        "--python",
        str(venv / "bin" / "python"),
        "--preview-features",
        "pylock",
        "--compile-bytecode",
        "--require-hashes",
    ]
    if offline:
        args.append("--offline")
    code, _, err = await _run(args, on_line)
    if code != 0:
        raise UvError(
            "uv could not install the environment from its lock",
            stderr=_tail(err),
            hint="if a hash mismatch is reported, the lock or the download was altered;"
            " re-lock the notebook with `nbseal lock`",
        )


def _tail(text: str, lines: int = 25) -> str:
    kept = text.strip().splitlines()[-lines:]
    return "\n".join(kept)
