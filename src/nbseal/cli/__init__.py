"""The ``nbseal`` command: the only layer that prints and exits.

``main`` parses the command line and runs a subcommand (:mod:`.commands`),
which prints through :mod:`.output`; an :class:`~nbseal.errors.NbsealError`
becomes its three lines on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import nbseal.lean_imports  # noqa: F401  (first: before anything imports nbformat)
from nbseal import __version__
from nbseal.cli.commands import (
    cmd_adopt,
    cmd_data,
    cmd_env,
    cmd_export,
    cmd_kernel,
    cmd_lock,
    cmd_run,
    cmd_verify,
)
from nbseal.cli.output import err
from nbseal.errors import NbsealError

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nbseal", description="Reproducible Jupyter notebooks, sealed environments."
    )
    parser.add_argument("--version", action="version", version=f"nbseal {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="execute a notebook headless with the nbseal kernel")
    run.add_argument("notebook")
    run.add_argument("-o", "--output", help="write the executed notebook here (default: in place)")
    run.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="stop a cell that runs longer, building included (default: no limit)",
    )
    run.add_argument(
        "--no-sandbox",
        action="store_true",
        help="run kernels without the sandbox (explicit opt-out; the notebook records it)",
    )
    run.add_argument(
        "--keep-workdir",
        metavar="DIR",
        help="keep what the notebook wrote in its working directory (figures, results) in DIR",
    )
    run.add_argument(
        "--allow-errors",
        action="store_true",
        help="run every cell even after one raises, and record the errors in the notebook "
        "(as nbconvert's and papermill's option of that name); exit 0",
    )
    run.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="print a timeline of the run at its end: this process, the nbseal kernel "
        "and each environment's kernel, in ms",
    )
    run.set_defaults(func=cmd_run)

    lock = sub.add_parser(
        "lock", help="resolve every environment and store the locks in the notebook"
    )
    lock.add_argument("notebooks", nargs="+", metavar="notebook")
    lock.add_argument(
        "--check",
        action="store_true",
        help="exit 1 when a lock is missing or stale; change nothing",
    )
    lock.set_defaults(func=cmd_lock)

    verify = sub.add_parser(
        "verify", help="re-execute notebooks from their locks and compare their outputs"
    )
    verify.add_argument("notebooks", nargs="+")
    verify.add_argument(
        "--relock", action="store_true", help="resolve afresh when a lock is missing or stale"
    )
    verify.add_argument("-j", "--jobs", type=int, default=1, help="notebooks verified at once")
    verify.add_argument("--json", action="store_true", help="print the results as JSON")
    verify.add_argument("--report", metavar="FILE", help="write an HTML report")
    verify.add_argument(
        "--sanitize-with", metavar="FILE", help="regex sanitisers in nbval's format"
    )
    verify.add_argument(
        "--lax", action="store_true", help="compare only cells marked NBVAL_CHECK_OUTPUT"
    )
    verify.add_argument(
        "--compare-images",
        action="store_true",
        help="compare image outputs too, reporting the share of pixels that differ",
    )
    verify.add_argument("--no-sandbox", action="store_true", help="run kernels unsealed")
    verify.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="stop a cell that runs longer, building included (default: no limit)",
    )
    verify.add_argument(
        "--timeout-notebook", type=float, metavar="SECONDS", help="cut a notebook after SECONDS"
    )
    verify.add_argument("--junit", metavar="FILE", help="write a JUnit XML report")
    on = verify.add_mutually_exclusive_group()  # Dask (nbseal[dask]); docs/scale.md
    on.add_argument("--cluster", metavar="local:N", help="on a Dask LocalCluster of N workers")
    on.add_argument("--scheduler", metavar="ADDRESS", help="on the Dask cluster at ADDRESS")
    verify.set_defaults(func=cmd_verify)

    export = sub.add_parser(
        "export", help="the notebook's environments as a script, requirements or lock"
    )
    export.add_argument("notebook")
    export.add_argument("--to", required=True, choices=["script", "requirements", "lock"])
    export.add_argument("-o", "--output", help="write here instead of stdout")
    export.set_defaults(func=cmd_export)

    adopt = sub.add_parser(
        "adopt",
        help="infer an existing notebook's environment, pin and data, write its first cell "
        "and lock it",
    )
    adopt.add_argument("notebooks", nargs="+", metavar="notebook", help="notebooks or folders")
    adopt.add_argument(
        "--dry-run", action="store_true", help="show what would be written; change nothing"
    )
    adopt.add_argument(
        "--pin", metavar="DATE", help="pin here instead of the last commit or modification date"
    )
    adopt.add_argument(
        "--python",
        choices=["auto", "this"],
        default="auto",
        help="auto (default): an older pin runs on the CPython current then, where this "
        "machine has it (python=auto); this: on the Python nbseal runs on",
    )
    adopt.set_defaults(func=cmd_adopt)

    kernel = sub.add_parser("kernel", help="install or remove the nbseal kernelspec")
    kernel_sub = kernel.add_subparsers(dest="action", required=True)
    install = kernel_sub.add_parser("install", help="register the kernel with Jupyter")
    where = install.add_mutually_exclusive_group()
    where.add_argument("--user", action="store_true", help="for this user only")
    where.add_argument("--sys-prefix", action="store_true", help="into this Python's prefix")
    where.add_argument("--prefix", help="into this prefix")
    install.add_argument(
        "--no-sandbox",
        action="store_true",
        help="install the explicit opt-out kernel 'nbseal-unsealed' instead",
    )
    remove = kernel_sub.add_parser("remove", help="unregister the kernel")
    remove.add_argument("--no-sandbox", action="store_true", help="remove 'nbseal-unsealed'")
    kernel.set_defaults(func=cmd_kernel)

    env = sub.add_parser("env", help="the environment store")
    env_sub = env.add_subparsers(dest="action", required=True)
    env_sub.add_parser("list", help="show stored environments")
    gc = env_sub.add_parser("gc", help="remove environments unused for a while")
    gc.add_argument("--older-than", type=float, default=30, metavar="DAYS")
    env.set_defaults(func=cmd_env)

    data = sub.add_parser("data", help="declared data and its store")
    data_sub = data.add_subparsers(dest="action", required=True)
    add = data_sub.add_parser(
        "add", help="download URL, compute its hash, add a `#seal data` line to the notebook"
    )
    add.add_argument("notebook")
    add.add_argument("url", help="https://, http://, file://, a local path, or doi:DOI/FILE")
    add.add_argument("--name", help="the file name inside the notebook's working directory")
    data_sub.add_parser("list", help="show stored data")
    data_gc = data_sub.add_parser("gc", help="remove data unused for a while")
    data_gc.add_argument("--older-than", type=float, default=30, metavar="DAYS")
    data.set_defaults(func=cmd_data)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.func(args))
    except NbsealError as exc:
        err(f"nbseal: error: {exc.render()}")
        return 2
    except KeyboardInterrupt:
        err("nbseal: interrupted")
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
