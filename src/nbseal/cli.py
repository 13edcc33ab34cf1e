"""The ``nbseal`` command: the only layer that prints and exits."""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from nbseal import __version__
from nbseal.errors import NbsealError
from nbseal.locking import LockStatus
from nbseal.progress import Progress
from nbseal.store import EnvironmentStore

if TYPE_CHECKING:  # imported where used: nbclient and nbformat are slow to import
    from nbseal.runner import RunEvent
    from nbseal.verify import NotebookReport

__all__ = ["main"]


def _err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class _ProgressLines:
    """A build's steps on stderr as they come; a step that lasts, again every half minute."""

    _ELAPSED = re.compile(r" \([\d.]+ s\)")

    def __init__(self, prefix: str = "", *, cells: bool = True) -> None:
        self.prefix = prefix
        self.cells = cells
        self.last = ""
        self.shown_at = 0.0

    def __call__(self, event: RunEvent) -> None:
        if event.kind == "progress":
            step = self._ELAPSED.sub("", event.text)
            if step != self.last or time.monotonic() - self.shown_at >= 30:
                self.last, self.shown_at = step, time.monotonic()
                _err(f"    {self.prefix}{event.text}")
        elif self.cells and event.kind != "cell-start":
            mark = "ok" if event.kind == "cell-done" else "ERROR"
            _err(f"[{event.cell}/{event.total}] cell {event.cell}: {mark} ({event.seconds:.2f} s)")


def _sandbox_line(notebook: Path, *, sealed: bool) -> str:
    """What the sandbox grants this notebook, from its own directives."""
    from nbseal.notebook import code_sources, read_notebook
    from nbseal.plan import plan_notebook
    from nbseal.sandbox.identity import sandbox_identity
    from nbseal.sandbox.limits import memory_cgroup_parent
    from nbseal.sandbox.policy import UNSEALED_SUMMARY, grants_summary

    if not sealed:
        return UNSEALED_SUMMARY
    plan = plan_notebook(code_sources(read_notebook(notebook)))
    folder = notebook.resolve().parent
    shares = [
        ((folder / Path(share.path).expanduser()).resolve(), share.mode, share.path)
        for share in plan.shares
    ]
    machine = sandbox_identity().describe()
    enforced = memory_cgroup_parent()
    if isinstance(enforced, str):
        machine += f"; memory not capped here ({enforced})"
    return grants_summary(
        network=plan.network,
        shares=shares,
        limits=plan.limits,
        machine=machine,
        javascript=plan.javascript,
    )


def _cmd_run(args: argparse.Namespace) -> int:
    from nbseal.runner import run_notebook

    notebook = Path(args.notebook)
    output = Path(args.output) if args.output else None
    _err(f"nbseal run: {notebook}: {_sandbox_line(notebook, sealed=not args.no_sandbox)}")
    keep = Path(args.keep_workdir) if args.keep_workdir else None
    result = run_notebook(
        notebook,
        output,
        timeout=args.timeout,
        reporter=_ProgressLines(),
        sandbox=not args.no_sandbox,
        keep_workdir=keep,
        allow_errors=args.allow_errors,
    )
    if keep is not None:
        _err(f"nbseal run: the kernels' working directory is kept in {keep}")
    if result.failed is not None and result.failed.timeout is not None:
        _err(f"nbseal run: {result.failed.message} (outputs so far written to {result.output})")
        return 1
    if result.failed is not None:
        _err(result.failed.render())
        _err(
            f"nbseal run: {notebook} FAILED at cell {result.failed.cell}; "
            f"outputs so far written to {result.output}"
        )
        return 1
    raised: dict[str, list[int]] = {}  # the same error of several cells is one line
    for cell, error in result.errors:
        raised.setdefault(error, []).append(cell)
    for error, cells in raised.items():
        _err(f"nbseal run: {_cells(cells)} raised {error} (recorded; --allow-errors)")
    _err(
        f"nbseal run: {result.cells_run} cells ran in {result.seconds:.1f} s"
        + (f", {len(result.errors)} raised" if result.errors else "")
        + f"; outputs written to {result.output}"
    )
    return 0


def _cells(numbers: list[int]) -> str:
    """``cell 3``, ``cells 2-10`` or ``cells 2, 5``."""
    if len(numbers) == 1:
        return f"cell {numbers[0]}"
    if numbers == list(range(numbers[0], numbers[-1] + 1)):
        return f"cells {numbers[0]}-{numbers[-1]}"
    return "cells " + ", ".join(map(str, numbers))


def _describe_lock(status: LockStatus) -> str:
    detail = status.reason
    if status.lock is not None and status.state in {"kept", "locked"}:
        lock = status.lock
        detail = (
            f"{len(lock.packages())} packages as of {lock.exclude_newer} "
            f"(key {lock.key[:12]}); {status.reason}"
        )
    return f"  {status.name:<12} {status.state:<7} {detail}"


def _check_lock(notebook: Path) -> bool:
    from nbseal.locking import check_locks

    statuses = check_locks(notebook)
    for status in statuses:
        print(_describe_lock(status))
    bad = [s.name for s in statuses if not s.ok]
    if bad:
        _err(
            f"nbseal lock --check: {notebook}: {len(bad)} lock(s) missing or stale "
            f"({', '.join(bad)})\nhint: run `nbseal lock {notebook}` and commit the result"
        )
        return False
    print(f"{notebook}: all {len(statuses)} locks are current")
    return True


def _cmd_lock(args: argparse.Namespace) -> int:
    from nbseal.locking import lock_notebook

    notebooks = [Path(n) for n in args.notebooks]
    if args.check:
        results = [_check_lock(notebook) for notebook in notebooks]
        return 0 if all(results) else 1
    for notebook in notebooks:
        statuses = lock_notebook(notebook, progress_for=_progress_to_stderr)
        for status in statuses:
            print(_describe_lock(status))
        locked = sum(1 for s in statuses if s.lock is not None)
        print(f"{notebook}: {locked} environment lock(s) in metadata.nbseal")
    return 0


def _cmd_kernel(args: argparse.Namespace) -> int:
    from nbseal.kernel.kernelspec import install_kernelspec, remove_kernelspec

    sandbox = not args.no_sandbox
    if args.action == "install":
        prefix = args.prefix if args.prefix else (sys.prefix if args.sys_prefix else None)
        where = install_kernelspec(user=args.user, prefix=prefix, sandbox=sandbox)
        print(f"installed kernelspec {Path(where).name} in {where}")
    else:
        print(f"removed kernelspec from {remove_kernelspec(sandbox=sandbox)}")
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
    from nbseal.backends import registered_backends

    locks = [lock for _, lock in store.locks()]
    for backend in registered_backends():  # what each keeps beside the store (.debs)
        note = backend.collect_garbage(locks)
        if note:
            print(note)
    return 0


def _progress_to_stderr(title: str) -> Progress:
    progress = Progress(title)
    progress.subscribe(lambda event: _err(f"    {title}: {event.step}"))
    return progress


def _data_name(url: str, wanted: str | None) -> str:
    from urllib.parse import unquote, urlparse

    name = wanted or Path(unquote(urlparse(url).path) or url).name
    if not name or name.startswith("/") or ".." in name.split("/") or " " in name:
        raise NbsealError(
            f"cannot use {name!r} as the data's name",
            hint="pass --name NAME (no spaces, no '..', not absolute)",
        )
    return name


def _cmd_data(args: argparse.Namespace) -> int:
    import asyncio

    from nbseal.datastore import DataStore
    from nbseal.notebook import insert_directive, read_notebook, write_notebook

    store = DataStore()
    if args.action == "add":
        notebook_path = Path(args.notebook)
        notebook = read_notebook(notebook_path)  # fail on a bad notebook before downloading
        remote = "://" in args.url or args.url.startswith("doi:")
        fetch_from = args.url if remote else str(Path(args.url).resolve())
        # A local file is written relative to the notebook, as the kernel reads it.
        url = args.url if remote else os.path.relpath(fetch_from, notebook_path.resolve().parent)
        name = _data_name(args.url, args.name)
        stored = asyncio.run(store.add(fetch_from, _progress_to_stderr(name)))
        line = f"#seal data {name} <- {url} sha256:{stored.sha256}"
        cell = insert_directive(notebook, line)
        write_notebook(notebook, notebook_path)
        print(
            f"{line}\n  added to cell {cell} of {notebook_path} ({stored.size / 1e6:.1f} MB stored)"
        )
        return 0
    if args.action == "list":
        entries = store.entries()
        if not entries:
            print(f"no data in {store.root}")
        for entry in entries:
            age = time.strftime("%Y-%m-%d %H:%M", time.localtime(entry.last_used))
            print(f"{entry.sha256[:16]}  {entry.size / 1e6:10.1f} MB  last used {age}  {entry.url}")
        return 0
    removed = store.gc(args.older_than * 86400)
    freed = sum(e.size for e in removed)
    print(f"removed {len(removed)} data files, freed {freed / 1e6:.1f} MB")
    return 0


def _print_verification(report: NotebookReport) -> None:
    for cell in report.cells:
        if cell.cause:  # the evidence says what the note would
            print(f"  cell {cell.cell}: {cell.status} — {cell.cause}: {cell.evidence}")
        else:
            print(f"  cell {cell.cell}: {cell.status}" + (f" ({cell.note})" if cell.note else ""))
        if cell.hint:
            print(f"      hint: {cell.hint}")
        for line in cell.diff:
            print(f"      {line}")
    if report.problem is not None:
        print(f"  {report.problem.render()}".replace("\n", "\n  "))
    counts = ", ".join(f"{n} {status}" for status, n in report.counts().items())
    verdict = "verified" if report.ok else "NOT verified"
    print(f"{report.path}: {verdict} ({counts}; {report.seconds:.1f} s)")


def _cmd_verify(args: argparse.Namespace) -> int:
    import json

    from nbseal.compare import DEFAULT_SANITIZERS, Sanitizer, load_sanitizers
    from nbseal.report import render_html
    from nbseal.verify import VerifyOptions, verify_notebooks

    sanitizers: tuple[Sanitizer, ...] = DEFAULT_SANITIZERS
    if args.sanitize_with:
        sanitizers = (*sanitizers, *load_sanitizers(Path(args.sanitize_with)))
    options = VerifyOptions(
        relock=args.relock,
        lax=args.lax,
        sanitizers=tuple(sanitizers),
        sandbox=not args.no_sandbox,
        timeout=args.timeout,
        images=args.compare_images,
    )
    paths = [Path(p) for p in args.notebooks]

    def progress_for(path: Path) -> _ProgressLines:
        return _ProgressLines(f"{path.name}: " if len(paths) > 1 else "", cells=False)

    reports = verify_notebooks(paths, options, jobs=args.jobs, reporter_for=progress_for)
    if args.json:
        print(json.dumps([r.to_json() for r in reports], indent=1))
    else:
        for report in reports:
            _print_verification(report)
    if args.report:
        from nbseal.fsutil import atomic_write_text

        atomic_write_text(Path(args.report), render_html(reports))
        _err(f"nbseal verify: report written to {args.report}")
    if any(r.problem is not None for r in reports):
        return 2
    return 0 if all(r.ok for r in reports) else 1


def _cmd_export(args: argparse.Namespace) -> int:
    from nbseal.export import export_notebook

    text = export_notebook(Path(args.notebook), args.to)
    if args.output:
        from nbseal.fsutil import atomic_write_text

        atomic_write_text(Path(args.output), text)
        _err(f"nbseal export: wrote {args.output}")
    else:
        sys.stdout.write(text)
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
    run.set_defaults(func=_cmd_run)

    lock = sub.add_parser(
        "lock", help="resolve every environment and store the locks in the notebook"
    )
    lock.add_argument("notebooks", nargs="+", metavar="notebook")
    lock.add_argument(
        "--check",
        action="store_true",
        help="exit 1 when a lock is missing or stale; change nothing",
    )
    lock.set_defaults(func=_cmd_lock)

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
    verify.set_defaults(func=_cmd_verify)

    export = sub.add_parser(
        "export", help="the notebook's environments as a script, requirements or lock"
    )
    export.add_argument("notebook")
    export.add_argument("--to", required=True, choices=["script", "requirements", "lock"])
    export.add_argument("-o", "--output", help="write here instead of stdout")
    export.set_defaults(func=_cmd_export)

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
    kernel.set_defaults(func=_cmd_kernel)

    env = sub.add_parser("env", help="the environment store")
    env_sub = env.add_subparsers(dest="action", required=True)
    env_sub.add_parser("list", help="show stored environments")
    gc = env_sub.add_parser("gc", help="remove environments unused for a while")
    gc.add_argument("--older-than", type=float, default=30, metavar="DAYS")
    env.set_defaults(func=_cmd_env)

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
    data.set_defaults(func=_cmd_data)
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
