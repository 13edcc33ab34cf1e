"""The one module that runs uv.

Resolution and installation both go through uv's own resolver and installer;
this module only builds the command lines, streams uv's progress lines to a
callback, and turns a failure into a :class:`~nbseal.errors.UvError` that
carries what uv said.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from nbseal.errors import ResolutionError, UvError
from nbseal.paths import cache_root
from nbseal.proc import run_telling
from nbseal.rootcause import root_cause
from nbseal.sandbox.identity import sandbox_identity

__all__ = [
    "cached_pylock",
    "compile_pylock",
    "create_venv",
    "find_python",
    "sync_pylock",
    "uv_binary",
    "uv_version",
]

LineCallback = Callable[[str], None]

# PyPI's file host, and the index that lists its files (PEP 751's ``packages.index``).
PYPI_FILES = "files.pythonhosted.org"
PYPI_INDEX = "https://pypi.org/simple"


def uv_binary() -> str:
    from uv import find_uv_bin

    return str(find_uv_bin())


def _uv_env() -> dict[str, str]:
    env = dict(os.environ)
    # nbseal drives uv; the user's virtualenv must not redirect it.
    env.pop("VIRTUAL_ENV", None)
    env.setdefault("UV_NO_PROGRESS", "1")
    return env


def uv_cache_dir() -> Path:
    """Where uv keeps nbseal's cache: ``$UV_CACHE_DIR``, else ``uv`` in
    ``$NBSEAL_CACHE_DIR`` when that is set (one setting holds everything
    nbseal writes), else uv's default (XDG).

    Run by root, builds run as the sandbox's unprivileged uid (see
    :mod:`nbseal.sandbox.build`), which must not write root's own cache:
    nbseal then keeps one of its own beside it (``~/.cache/uv-nbseal``, or
    ``$UV_CACHE_DIR-nbseal``), owned by that uid.
    """
    if os.environ.get("UV_CACHE_DIR"):
        path = Path(os.environ["UV_CACHE_DIR"])
    elif os.environ.get("NBSEAL_CACHE_DIR"):
        path = cache_root() / "uv"
    else:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        path = Path(base) / "uv"
    if sandbox_identity().drops:
        return path.with_name(f"{path.name}-nbseal")
    return path


def prepared_cache() -> Path:
    """uv's cache, made if missing and writable by the uid builds run as."""
    cache = uv_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    identity = sandbox_identity()
    if identity.drops and cache.stat().st_uid != identity.host_uid:
        identity.hand_over_tree(cache)  # nbseal's own cache, made by an older nbseal as root
    return cache


@dataclass(frozen=True)
class Seal:
    """What a uv step that may build packages sees (see nbseal.sandbox.build)."""

    readable: tuple[Path, ...]
    writable: tuple[Path, ...]
    cwd: Path


def python_prefixes(python: str) -> list[Path]:
    """Every installation an interpreter runs from: each link of the way, and venv homes.

    A venv's python links to its base's (which may itself be a venv's), and
    the standard library is found from ``pyvenv.cfg``: all must be readable.
    """
    found = shutil.which(python)
    if found is None:
        return []
    prefixes: list[Path] = []
    path = Path(found)
    for _ in range(16):  # links to links, bounded
        prefix = Path(os.path.realpath(path.parent.parent))
        if prefix not in prefixes:
            prefixes.append(prefix)
        cfg = prefix / "pyvenv.cfg"
        if cfg.is_file():
            for line in cfg.read_text().splitlines():
                key, _, value = line.partition("=")
                if key.strip() == "home" and value.strip():
                    home = Path(os.path.realpath(value.strip())).parent
                    if home not in prefixes:
                        prefixes.append(home)
        if not path.is_symlink():
            break
        path = Path(os.path.join(path.parent, os.readlink(path)))
    return [p for p in prefixes if p != Path("/usr") and Path("/usr") not in p.parents]


def _lock_files(pylock: Path) -> list[Path]:
    """Local artifacts a pylock.toml names (``path`` keys, ``file://`` URLs): build inputs."""
    from nbseal._toml import tomllib

    found: list[Path] = []

    def walk(value: object, key: str = "") -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, str(k))
        elif isinstance(value, list):
            for item in value:
                walk(item, key)
        elif isinstance(value, str):
            if value.startswith("file://"):
                found.append(Path(unquote(urlsplit(value).path)))
            elif key == "path":
                found.append((pylock.parent / value).resolve())

    with contextlib.suppress(OSError, ValueError):
        walk(tomllib.loads(pylock.read_text()))
    return found


def cached_pylock(pylock: str) -> str:
    """``pylock`` with PyPI named as the index of every package whose files are PyPI's.

    uv 0.13 installs a lock's package that names no index as a file at a bare
    URL: it revalidates the URL, downloads and unpacks the file again at every
    install, and its cache keeps each copy (a rebuild of a 30-package lock
    added about 50 MB). With the index named, the package is a registry
    package to uv, found in its cache by name and file name, and the file's
    SHA-256 is still checked against the lock's. Packages with an index of
    their own, or with any file elsewhere (a mirror, a path, ``file://``), or
    a direct URL, VCS or directory source, are left as they are.
    """
    from nbseal._toml import tomllib

    try:
        packages = tomllib.loads(pylock).get("packages", [])
    except tomllib.TOMLDecodeError:
        return pylock  # uv says what is wrong with it
    lines = pylock.splitlines(keepends=True)
    headers = [i for i, line in enumerate(lines) if line.strip() == "[[packages]]"]
    if not isinstance(packages, list) or len(headers) != len(packages):
        return pylock  # not written as uv writes locks: left to uv as it is
    named = [_from_pypi(package) for package in packages]
    for header, name_it in reversed(list(zip(headers, named, strict=True))):
        if name_it:
            lines.insert(header + 1, f'index = "{PYPI_INDEX}"\n')
    text = "".join(lines)
    # Each index must have landed in its own package (a "[[packages]]" line inside a
    # multi-line string would shift them): else the lock goes to uv as it was.
    expected = [
        {**p, "index": PYPI_INDEX} if n else p for n, p in zip(named, packages, strict=True)
    ]
    return text if tomllib.loads(text).get("packages") == expected else pylock


def _from_pypi(package: object) -> bool:
    """Whether a pylock package names no index, and every file it has is PyPI's."""
    if not isinstance(package, dict) or "index" in package:
        return False
    if any(key in package for key in ("archive", "vcs", "directory")):
        return False
    files = [package["sdist"]] if isinstance(package.get("sdist"), dict) else []
    wheels = package.get("wheels", [])
    if isinstance(wheels, list):
        files += wheels
    if not files:
        return False
    for file in files:
        url = urlsplit(str(file.get("url", ""))) if isinstance(file, dict) else None
        if url is None or url.scheme != "https" or url.hostname != PYPI_FILES:
            return False
    return True


def _local_files(requirements: Sequence[str]) -> list[Path]:
    """Files that ``NAME @ file://...`` requirements name: the build's inputs."""
    paths = []
    for requirement in requirements:
        _, at, url = requirement.partition("@")
        url = url.strip()
        if at and url.startswith("file://"):
            paths.append(Path(unquote(urlsplit(url).path)))
    return paths


async def _run(
    args: Sequence[str],
    on_line: LineCallback | None,
    seal: Seal | None = None,
    program: str | None = None,
) -> tuple[int, str, str]:
    """Run uv (or ``program``) with ``args``, sealed by ``seal`` when given."""
    argv = [program or uv_binary(), *args]
    env = _uv_env()
    pass_fds: tuple[int, ...] = ()
    step = None
    if seal is not None:
        from nbseal.sandbox.build import sealed_step

        cache = prepared_cache()
        step = sealed_step(
            argv,
            readable=(Path(argv[0]).parent, *seal.readable),
            writable=(cache, *seal.writable),
            cwd=seal.cwd,
            env={"UV_CACHE_DIR": os.path.realpath(cache), "UV_NO_PROGRESS": "1"},
        )
        argv, env, pass_fds = step.argv, {}, (step.seccomp_fd,)

    def tell(line: str) -> None:
        if on_line is not None and line:
            on_line(line)

    try:
        # An interrupted build must not leave uv writing into the store: run_telling kills it.
        ran = await run_telling(argv, tell, env=env, pass_fds=pass_fds)
    finally:
        if step is not None:
            step.close()
    return ran.returncode, ran.stdout, "\n".join(ran.lines)


async def uv_version() -> str:
    code, out, err = await _run(["--version"], None)
    if code != 0:
        raise UvError.does_not_run(err)
    return out.strip()


async def compile_pylock(
    requirements: Sequence[str],
    *,
    python: str,
    exclude_newer: str,
    workdir: Path,
    on_line: LineCallback | None = None,
    exclude_newer_packages: Mapping[str, str] | None = None,
    constraints: Sequence[str] = (),
    serves: str | None = None,
    python_platform: str | None = None,
    dependency_metadata: Sequence[Mapping[str, object]] = (),
) -> str:
    """Resolve ``requirements`` as the index stood at ``exclude_newer``.

    With ``serves`` (a series such as ``3.11``, or one release), the lock is
    made for the series (uv's ``--python-version``: ``requires-python =
    ">=3.11"``), not for the patch release of ``python``, which still builds
    what must be built to be read. (uv's ``--universal`` would also serve
    other platforms, but it resolves for every Python of the series and up
    at once, which the per-package cutoffs of a revived resolution, made for
    one interpreter, do not hold for: other Linux machines are resolved one
    by one and merged, see :mod:`nbseal.backends.machines`.)

    ``exclude_newer_packages`` gives some packages a cutoff of their own
    (uv's ``--exclude-newer-package NAME=INSTANT``); ``constraints`` bind
    what is installed (uv's ``-c``), not what builds it. Returns the text of
    a PEP 751 ``pylock.toml``: exact versions, artifact URLs and SHA-256
    hashes of every package.

    ``python_platform`` resolves for another platform than this one (uv's
    ``--python-platform``, such as ``aarch64-unknown-linux-gnu``): the lock
    then lists that platform's wheels (see :mod:`nbseal.pylock_platforms`).

    ``dependency_metadata`` replaces releases' metadata (uv's setting of that
    name), for those whose own does not parse (see
    :mod:`nbseal.backends.metadata_repair`).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    workdir = Path(os.path.realpath(workdir))
    sandbox_identity().hand_over(workdir)  # uv writes the lock there, sealed
    infile = workdir / "requirements.in"
    infile.write_text("".join(f"{r}\n" for r in requirements))
    outfile = workdir / "pylock.toml"
    constraint_args = []
    if constraints:
        constraint_file = workdir / "constraints.txt"
        constraint_file.write_text("".join(f"{c}\n" for c in constraints))
        constraint_args = ["-c", str(constraint_file)]
    if dependency_metadata:
        from nbseal.backends.metadata_repair import dependency_metadata_toml

        config = workdir / "uv.toml"
        config.write_text(dependency_metadata_toml(dependency_metadata))
        constraint_args += ["--config-file", str(config)]
    # uv keeps the versions of an existing output file: each resolution starts afresh.
    outfile.unlink(missing_ok=True)
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
            *(("--python-version", serves) if serves else ()),
            *(("--python-platform", python_platform) if python_platform else ()),
            "--exclude-newer",
            exclude_newer,
            *(
                f"--exclude-newer-package={name}={instant}"
                for name, instant in sorted((exclude_newer_packages or {}).items())
            ),
            *constraint_args,
            "--no-header",
            "--quiet",
        ],
        on_line,
        # Resolving may build an sdist to read its metadata: sealed.
        Seal(
            readable=(*python_prefixes(python), *_local_files(requirements)),
            writable=(workdir,),
            cwd=workdir,
        ),
    )
    if code != 0:
        raise ResolutionError.unresolvable(_tail(err), root_cause(err))
    return outfile.read_text()


async def find_python(request: str) -> tuple[str | None, str]:
    """An interpreter for ``request`` (``3.6``): one uv finds, else one it installs.

    Returns its path (None when there is none) and, then, what uv said.
    """
    said = []
    for args in (["python", "find", request], ["python", "install", request]):
        code, out, err = await _run(args, None)
        if code == 0 and args[1] == "find" and out.strip():
            return out.strip().splitlines()[-1], ""
        said.append(_tail(err, 3))
        if code != 0 and args[1] == "install":
            break
    else:  # installed: find it again
        code, out, err = await _run(["python", "find", request], None)
        if code == 0 and out.strip():
            return out.strip().splitlines()[-1], ""
        said.append(_tail(err, 3))
    return None, "; ".join(s for s in said if s)


async def create_venv(path: Path, *, python: str, on_line: LineCallback | None = None) -> None:
    code, _, err = await _run(
        ["venv", "--relocatable", "--no-project", "--python", python, str(path)], on_line
    )
    if code != 0:
        raise UvError.venv_failed(python, _tail(err), root_cause(err))
    # Installing into it runs sealed, as the sandbox's uid when nbseal is root.
    sandbox_identity().hand_over_tree(path)


async def sync_pylock(
    venv: Path,
    pylock: Path,
    *,
    offline: bool = False,
    on_line: LineCallback | None = None,
) -> None:
    """Install exactly the packages of ``pylock`` into ``venv``, checking hashes.

    Installing may build an sdist the lock names, so uv runs sealed, writing
    only the venv (and its cache).
    """
    from nbseal.pythons import python_version_of

    python = str(venv / "bin" / "python")
    by_uv = _uv_compiles(python_version_of(python))
    seal = sync_seal(venv, pylock)
    code, _, err = await _run(
        sync_args(venv, pylock, offline=offline, compile_bytecode=by_uv), on_line, seal
    )
    if code != 0:
        raise UvError.sync_failed(_tail(err), root_cause(err))
    if not by_uv:
        # The environment is read-only in the sandbox: compile it now, with its own
        # Python (files it cannot compile, such as Python 2 leftovers, are skipped).
        sites = [str(p) for p in sorted(venv.glob("lib/python*/site-packages"))]
        await _run(["-m", "compileall", "-q", *sites], on_line, seal, program=python)


def _uv_compiles(version: str) -> bool:
    """Whether uv's ``--compile-bytecode`` works with CPython ``version``: its script
    uses ``py_compile.PycInvalidationMode``, new in 3.7."""
    parts = tuple(int(p) for p in version.split(".")[:2] if p.isdigit())
    return parts >= (3, 7)


def sync_args(
    venv: Path, pylock: Path, *, offline: bool = False, compile_bytecode: bool = True
) -> list[str]:
    """uv's arguments that install ``pylock`` into ``venv`` (bench/ runs them unsealed too)."""
    args = [
        "pip",
        "sync",
        str(pylock),
        "--python",
        str(venv / "bin" / "python"),
        "--preview-features",
        "pylock",
        *(["--compile-bytecode"] if compile_bytecode else []),
        "--require-hashes",
    ]
    return [*args, "--offline"] if offline else args


def sync_seal(venv: Path, pylock: Path) -> Seal:
    """What installing ``pylock`` into ``venv`` may read and write."""
    real_venv = Path(os.path.realpath(venv))
    prefixes = python_prefixes(str(real_venv / "bin" / "python"))
    # uv's cache is writable too (see _run): a venv inside it shares its mount.
    # uv refuses to run from inside its cache: it runs in the sandbox's own /tmp.
    return Seal(
        readable=(*prefixes, Path(os.path.realpath(pylock)), *_lock_files(pylock)),
        writable=(real_venv,),
        cwd=Path("/tmp"),
    )


def _tail(text: str, lines: int = 25) -> str:
    kept = text.strip().splitlines()[-lines:]
    return "\n".join(kept)
