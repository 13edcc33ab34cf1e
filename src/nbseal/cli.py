"""The ``nbseal`` command: the only layer that prints and exits."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from nbseal import __version__
from nbseal.errors import NbsealError
from nbseal.locking import LockStatus
from nbseal.progress import Progress
from nbseal.runner import RunEvent, run_notebook
from nbseal.store import EnvironmentStore

__all__ = ["main"]


def _err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _report(event: RunEvent) -> None:
    if event.kind == "cell-start":
        return
    if event.kind == "progress":
        _err(f"    {event.text}")
    else:
        mark = "ok" if event.kind == "cell-done" else "ERROR"
        _err(f"[{event.cell}/{event.total}] cell {event.cell}: {mark} ({event.seconds:.2f} s)")


def _cmd_run(args: argparse.Namespace) -> int:
    notebook = Path(args.notebook)
    output = Path(args.output) if args.output else None
    result = run_notebook(notebook, output, timeout=args.timeout, reporter=_report)
    if result.failed is not None:
        _err(result.failed.render())
        _err(
            f"nbseal run: {notebook} FAILED at cell {result.failed.cell}; "
            f"outputs so far written to {result.output}"
        )
        return 1
    _err(
        f"nbseal run: {result.cells_run} cells ran in {result.seconds:.1f} s; "
        f"outputs written to {result.output}"
    )
    return 0


def _describe_lock(status: LockStatus) -> str:
    detail = status.reason
    if status.lock is not None and status.state in {"kept", "locked"}:
        lock = status.lock
        detail = (
            f"{len(lock.packages())} packages as of {lock.exclude_newer} "
            f"(key {lock.key[:12]}); {status.reason}"
        )
    return f"  {status.name:<12} {status.state:<7} {detail}"


def _cmd_lock(args: argparse.Namespace) -> int:
    from nbseal.locking import check_locks, lock_notebook

    notebook = Path(args.notebook)
    if args.check:
        statuses = check_locks(notebook)
        for status in statuses:
            print(_describe_lock(status))
        bad = [s.name for s in statuses if not s.ok]
        if bad:
            _err(
                f"nbseal lock --check: {notebook}: {len(bad)} lock(s) missing or stale "
                f"({', '.join(bad)})\nhint: run `nbseal lock {notebook}` and commit the result"
            )
            return 1
        print(f"{notebook}: all {len(statuses)} locks are current")
        return 0

    def progress_for(name: str) -> Progress:
        progress = Progress(name)
        progress.subscribe(lambda event: _err(f"    {name}: {event.step}"))
        return progress

    statuses = lock_notebook(notebook, progress_for=progress_for)
    for status in statuses:
        print(_describe_lock(status))
    locked = sum(1 for s in statuses if s.lock is not None)
    print(f"{notebook}: {locked} environment lock(s) in metadata.nbseal")
    return 0


def _cmd_kernel(args: argparse.Namespace) -> int:
    from nbseal.kernel.kernelspec import install_kernelspec, remove_kernelspec

    if args.action == "install":
        prefix = args.prefix if args.prefix else (sys.prefix if args.sys_prefix else None)
        where = install_kernelspec(user=args.user, prefix=prefix)
        print(f"installed kernelspec nbseal in {where}")
    else:
        print(f"removed kernelspec nbseal from {remove_kernelspec()}")
    return 0


def _cmd_env(args: argparse.Namespace) -> int:
    store = EnvironmentStore()
    if args.action == "list":
        entries = store.entries()
        if not entries:
            print(f"no environments in {store.root}")
        for entry in entries:
            age = time.strftime("%Y-%m-%d %H:%M", time.localtime(entry.last_used))
            print(
                f"{entry.key}  {entry.size / 1e6:8.1f} MB  {entry.packages:3d} packages  "
                f"last used {age}"
            )
        return 0
    removed = store.gc(args.older_than * 86400)
    freed = sum(e.size for e in removed)
    print(f"removed {len(removed)} environments, freed {freed / 1e6:.1f} MB")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nbseal", description="Reproducible Jupyter notebooks, sealed environments."
    )
    parser.add_argument("--version", action="version", version=f"nbseal {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="execute a notebook headless with the nbseal kernel")
    run.add_argument("notebook")
    run.add_argument("-o", "--output", help="write the executed notebook here (default: in place)")
    run.add_argument("--timeout", type=float, default=None, help="seconds per cell")
    run.set_defaults(func=_cmd_run)

    lock = sub.add_parser(
        "lock", help="resolve every environment and store the locks in the notebook"
    )
    lock.add_argument("notebook")
    lock.add_argument(
        "--check",
        action="store_true",
        help="exit 1 when a lock is missing or stale; change nothing",
    )
    lock.set_defaults(func=_cmd_lock)

    kernel = sub.add_parser("kernel", help="install or remove the nbseal kernelspec")
    kernel_sub = kernel.add_subparsers(dest="action", required=True)
    install = kernel_sub.add_parser("install", help="register the kernel with Jupyter")
    where = install.add_mutually_exclusive_group()
    where.add_argument("--user", action="store_true", help="for this user only")
    where.add_argument("--sys-prefix", action="store_true", help="into this Python's prefix")
    where.add_argument("--prefix", help="into this prefix")
    kernel_sub.add_parser("remove", help="unregister the kernel")
    kernel.set_defaults(func=_cmd_kernel)

    env = sub.add_parser("env", help="the environment store")
    env_sub = env.add_subparsers(dest="action", required=True)
    env_sub.add_parser("list", help="show stored environments")
    gc = env_sub.add_parser("gc", help="remove environments unused for a while")
    gc.add_argument("--older-than", type=float, default=30, metavar="DAYS")
    env.set_defaults(func=_cmd_env)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.func(args))
    except NbsealError as exc:
        _err(f"nbseal: error: {exc.render()}")
        return 2
    except KeyboardInterrupt:
        _err("nbseal: interrupted")
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
