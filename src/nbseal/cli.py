"""The ``nbseal`` command: the only layer that prints and exits."""

from __future__ import annotations

import argparse
import os
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


def _report(event: RunEvent) -> None:
    if event.kind == "cell-start":
        return
    if event.kind == "progress":
        _err(f"    {event.text}")
    else:
        mark = "ok" if event.kind == "cell-done" else "ERROR"
        _err(f"[{event.cell}/{event.total}] cell {event.cell}: {mark} ({event.seconds:.2f} s)")


def _cmd_run(args: argparse.Namespace) -> int:
    from nbseal.runner import run_notebook
    from nbseal.sandbox_summary import sandbox_line

    notebook = Path(args.notebook)
    output = Path(args.output) if args.output else None
    _err(f"nbseal run: {notebook}: {sandbox_line(notebook, sealed=not args.no_sandbox)}")
    keep = Path(args.keep_workdir) if args.keep_workdir else None
    result = run_notebook(
        notebook,
        output,
        timeout=args.timeout,
        reporter=_report,
        sandbox=not args.no_sandbox,
        keep_workdir=keep,
        allow_errors=args.allow_errors,
    )
    if keep is not None:
        _err(f"nbseal run: the kernels' working directory is kept in {keep}")
    if result.failed is not None:
        _err(result.failed.render())
        _err(
            f"nbseal run: {notebook} FAILED at cell {result.failed.cell}; "
            f"outputs so far written to {result.output}"
        )
        return 1
    for cell, error in result.errors:
        _err(f"nbseal run: cell {cell} raised {error} (recorded; --allow-errors)")
    _err(
        f"nbseal run: {result.cells_run} cells ran in {result.seconds:.1f} s"
        + (f", {len(result.errors)} raised" if result.errors else "")
        + f"; outputs written to {result.output}"
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


def _cmd_adopt(args: argparse.Namespace) -> int:
    from nbseal.adopt import adopt_notebook, notebooks_in
    from nbseal.directives import PinDirective, parse_cell

    pin = None
    if args.pin:  # checked as the directive would be, before anything is read
        parsed = parse_cell(f"#seal pin {args.pin}").directives[0]
        assert isinstance(parsed, PinDirective)
        pin = parsed.instant
    notebooks = notebooks_in([Path(n) for n in args.notebooks])
    if not notebooks:
        raise NbsealError("no notebook found", hint="name .ipynb files or folders holding some")
    failed = 0
    for notebook in notebooks:
        try:
            adoption = adopt_notebook(
                notebook, pin=pin, dry_run=args.dry_run, progress_for=_progress_to_stderr
            )
        except NbsealError as exc:
            if len(notebooks) == 1:
                raise
            _err(f"{notebook}: {exc.render()}")
            failed += 1
            continue
        inferred = adoption.inference
        print(f"{notebook}:")
        print(f"  pin {inferred.pin}: {inferred.pin_source}")
        for reason in inferred.reasons:
            print(f"  {reason.what}: {reason.why}")
        for warning in inferred.warnings:
            print(f"  warning: {warning}")
        for what, why in adoption.attempts:
            print(f"  not locked with {what}: {why}")
        verb = "would write" if args.dry_run else f"wrote ({adoption.chosen})"
        print(f"  {verb} as its first cell:")
        print("    " + adoption.cell.replace("\n", "\n    "))
        for status in adoption.statuses:
            print(f"  {_describe_lock(status)}")
    return 1 if failed else 0


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
        from nbseal.uv import uv_cache_dir

        entries = store.entries()
        print(f"store: {store.root}\nuv's cache (downloads, builds): {uv_cache_dir()}")
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


def _data_name(url: str, wanted: str | None, *, local: bool) -> str:
    """The name data is shown by: ``--name``, a local file's own relative path, else the URL's."""
    from urllib.parse import unquote, urlparse

    from nbseal.directives import data_name_ok

    name = wanted or (url if local else Path(unquote(urlparse(url).path) or url).name)
    if not data_name_ok(name) or " " in name:
        raise NbsealError(
            f"cannot use {name!r} as the data's name",
            hint="pass --name NAME (no spaces, not absolute, '..' only at its start)",
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
        # A local file keeps the path the notebook's cells open it by.
        name = _data_name(url, args.name, local=not remote)
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
        note = f" ({cell.note})" if cell.note else ""
        print(f"  cell {cell.cell}: {cell.status}{note}")
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
    interrupted = False
    if args.cluster or args.scheduler or args.timeout_notebook is not None:
        from nbseal.distributed import verify_corpus

        where = {"cluster": args.cluster, "scheduler": args.scheduler}
        run = verify_corpus(
            paths,
            options,
            jobs=args.jobs,
            notebook_timeout=args.timeout_notebook,
            on_line=_err,
            **where,
        )
        reports, interrupted = run.reports, run.interrupted
    else:
        reports = verify_notebooks(paths, options, jobs=args.jobs)
    if args.json:
        print(json.dumps([r.to_json() for r in reports], indent=1))
    else:
        for report in reports:
            _print_verification(report)
    if args.report:
        from nbseal.fsutil import atomic_write_text

        atomic_write_text(Path(args.report), render_html(reports))
        _err(f"nbseal verify: report written to {args.report}")
    if args.junit:
        from nbseal.fsutil import atomic_write_text
        from nbseal.junit import render_junit

        atomic_write_text(Path(args.junit), render_junit(reports))
        _err(f"nbseal verify: JUnit XML written to {args.junit}")
    if interrupted:
        _err(f"nbseal verify: interrupted; {sum(r.ok for r in reports)} of {len(reports)} verified")
        return 130
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
    run.add_argument("--timeout", type=float, default=None, help="seconds per cell")
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
    verify.add_argument("--timeout", type=float, default=None, help="seconds per cell")
    verify.add_argument(
        "--timeout-notebook", type=float, metavar="SECONDS", help="cut a notebook after SECONDS"
    )
    verify.add_argument("--junit", metavar="FILE", help="write a JUnit XML report")
    on = verify.add_mutually_exclusive_group()  # Dask (nbseal[dask]); docs/scale.md
    on.add_argument("--cluster", metavar="local:N", help="on a Dask LocalCluster of N workers")
    on.add_argument("--scheduler", metavar="ADDRESS", help="on the Dask cluster at ADDRESS")
    verify.set_defaults(func=_cmd_verify)

    export = sub.add_parser(
        "export", help="the notebook's environments as a script, requirements or lock"
    )
    export.add_argument("notebook")
    export.add_argument("--to", required=True, choices=["script", "requirements", "lock"])
    export.add_argument("-o", "--output", help="write here instead of stdout")
    export.set_defaults(func=_cmd_export)

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
    adopt.set_defaults(func=_cmd_adopt)

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
