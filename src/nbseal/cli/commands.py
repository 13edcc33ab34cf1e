"""The ``nbseal`` subcommands: each takes its parsed arguments and returns an exit code."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from nbseal.cli.output import (
    ProgressLines,
    cells_text,
    describe_lock,
    err,
    print_verification,
    progress_to_stderr,
    sandbox_line,
)
from nbseal.errors import NbsealError, bad_data_name, no_notebook_found
from nbseal.timeline import keep_timeline, mark, process_started_at, read_timeline, render

__all__ = [
    "cmd_adopt",
    "cmd_data",
    "cmd_env",
    "cmd_export",
    "cmd_kernel",
    "cmd_lock",
    "cmd_run",
    "cmd_verify",
]


def cmd_run(args: argparse.Namespace) -> int:
    if not args.verbose:
        return _run(args)
    timeline = keep_timeline()
    mark("nbseal run", "process started", at=process_started_at())
    mark("nbseal run", "command line read")
    try:
        return _run(args)
    finally:
        err("nbseal run: timeline (seconds since the first event, step since the one before)")
        for line in render(read_timeline(timeline)):
            err(f"  {line}")
        timeline.unlink(missing_ok=True)


def _run(args: argparse.Namespace) -> int:
    from nbseal.runner import RunOptions, run_notebook, start_kernel

    mark("nbseal run", "runner imported")
    notebook = Path(args.notebook)
    output = Path(args.output) if args.output else None
    keep = Path(args.keep_workdir) if args.keep_workdir else None
    options = RunOptions(
        timeout=args.timeout,
        reporter=ProgressLines(),
        sandbox=not args.no_sandbox,
        keep_workdir=keep,
        allow_errors=args.allow_errors,
    )
    # The kernel imports and launches its first environment while this
    # process works out the sandbox line and imports jupyter_client and nbclient.
    with start_kernel(notebook, options) as kernel:
        err(f"nbseal run: {notebook}: {sandbox_line(notebook, sealed=not args.no_sandbox)}")
        result = run_notebook(notebook, output, options, kernel)
    if keep is not None:
        err(f"nbseal run: the kernels' working directory is kept in {keep}")
    if result.failed is not None and result.failed.timeout is not None:
        err(f"nbseal run: {result.failed.message} (outputs so far written to {result.output})")
        return 1
    if result.failed is not None:
        err(result.failed.render())
        err(
            f"nbseal run: {notebook} FAILED at cell {result.failed.cell}; "
            f"outputs so far written to {result.output}"
        )
        return 1
    raised: dict[str, list[int]] = {}  # the same error of several cells is one line
    for cell, error in result.errors:
        raised.setdefault(error, []).append(cell)
    for error, cells in raised.items():
        err(f"nbseal run: {cells_text(cells)} raised {error} (recorded; --allow-errors)")
    err(
        f"nbseal run: {result.cells_run} cells ran in {result.seconds:.1f} s"
        + (f", {len(result.errors)} raised" if result.errors else "")
        + f"; outputs written to {result.output}"
    )
    return 0


def _check_lock(notebook: Path) -> bool:
    from nbseal.locking import check_locks

    statuses = check_locks(notebook)
    for status in statuses:
        print(describe_lock(status))
    bad = [s.name for s in statuses if not s.ok]
    if bad:
        err(
            f"nbseal lock --check: {notebook}: {len(bad)} lock(s) missing or stale "
            f"({', '.join(bad)})\nhint: run `nbseal lock {notebook}` and commit the result"
        )
        return False
    print(f"{notebook}: all {len(statuses)} locks are current")
    return True


def cmd_lock(args: argparse.Namespace) -> int:
    from nbseal.locking import lock_notebook

    notebooks = [Path(n) for n in args.notebooks]
    if args.check:
        results = [_check_lock(notebook) for notebook in notebooks]
        return 0 if all(results) else 1
    for notebook in notebooks:
        statuses = lock_notebook(notebook, progress_for=progress_to_stderr)
        for status in statuses:
            print(describe_lock(status))
        locked = sum(1 for s in statuses if s.lock is not None)
        print(f"{notebook}: {locked} environment lock(s) in metadata.nbseal")
    return 0


def cmd_adopt(args: argparse.Namespace) -> int:
    from nbseal.adopt import adopt_notebook, notebooks_in
    from nbseal.directives import PinDirective, parse_cell

    pin = None
    if args.pin:  # checked as the directive would be, before anything is read
        parsed = parse_cell(f"#seal pin {args.pin}").directives[0]
        assert isinstance(parsed, PinDirective)
        pin = parsed.instant
    notebooks = notebooks_in([Path(n) for n in args.notebooks])
    if not notebooks:
        raise no_notebook_found()
    failed = 0
    for notebook in notebooks:
        try:
            adoption = adopt_notebook(
                notebook,
                pin=pin,
                dry_run=args.dry_run,
                progress_for=progress_to_stderr,
                python=args.python,
            )
        except NbsealError as exc:
            if len(notebooks) == 1:
                raise
            err(f"{notebook}: {exc.render()}")
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
            print(f"  {describe_lock(status)}")
    return 1 if failed else 0


def cmd_kernel(args: argparse.Namespace) -> int:
    from nbseal.kernel.kernelspec import install_kernelspec, remove_kernelspec

    sandbox = not args.no_sandbox
    if args.action == "install":
        prefix = args.prefix if args.prefix else (sys.prefix if args.sys_prefix else None)
        where = install_kernelspec(user=args.user, prefix=prefix, sandbox=sandbox)
        print(f"installed kernelspec {Path(where).name} in {where}")
    else:
        print(f"removed kernelspec from {remove_kernelspec(sandbox=sandbox)}")
    return 0


def cmd_env(args: argparse.Namespace) -> int:
    from nbseal.store import EnvironmentStore

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
    from nbseal.sandbox import headstart

    recipes = headstart.collect_garbage(args.older_than * 86400)
    if recipes:
        print(f"removed {recipes} head-start recipes of kernels not started since, or gone")
    from nbseal.backends import registered_backends

    locks = [lock for _, lock in store.locks()]
    for backend in registered_backends():  # what each keeps beside the store (.debs)
        note = backend.collect_garbage(locks)
        if note:
            print(note)
    return 0


def _data_name(url: str, wanted: str | None, *, local: bool) -> str:
    """The name data is shown by: ``--name``, a local file's own relative path, else the URL's."""
    from urllib.parse import unquote, urlparse

    from nbseal.directives import data_name_ok

    name = wanted or (url if local else Path(unquote(urlparse(url).path) or url).name)
    if not data_name_ok(name) or " " in name:
        raise bad_data_name(name)
    return name


def cmd_data(args: argparse.Namespace) -> int:
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
        stored = asyncio.run(store.add(fetch_from, progress_to_stderr(name)))
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


def cmd_verify(args: argparse.Namespace) -> int:
    if args.cluster:  # first: the workers' imports run while this process does its own
        from nbseal.localworkers import local_workers, start_forkserver

        local_workers(args.cluster)  # a bad spec is told before anything starts
        start_forkserver()

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

    def progress_for(path: Path) -> ProgressLines:
        return ProgressLines(f"{path.name}: " if len(paths) > 1 else "", cells=False)

    interrupted = False
    if args.cluster or args.scheduler or args.timeout_notebook is not None:
        from nbseal.distributed import verify_corpus  # Dask: nbseal[dask], docs/scale.md

        where = {"cluster": args.cluster, "scheduler": args.scheduler}
        run = verify_corpus(
            paths,
            options,
            jobs=args.jobs,
            notebook_timeout=args.timeout_notebook,
            on_line=err,
            reporter_for=progress_for,
            **where,
        )
        reports, interrupted = run.reports, run.interrupted
    else:
        reports = verify_notebooks(paths, options, jobs=args.jobs, reporter_for=progress_for)
    if args.json:
        print(json.dumps([r.to_json() for r in reports], indent=1))
    else:
        for report in reports:
            print_verification(report)
    if args.report:
        from nbseal.fsutil import atomic_write_text

        atomic_write_text(Path(args.report), render_html(reports))
        err(f"nbseal verify: report written to {args.report}")
    if args.junit:
        from nbseal.fsutil import atomic_write_text
        from nbseal.junit import render_junit

        atomic_write_text(Path(args.junit), render_junit(reports))
        err(f"nbseal verify: JUnit XML written to {args.junit}")
    if interrupted:
        err(f"nbseal verify: interrupted; {sum(r.ok for r in reports)} of {len(reports)} verified")
        return 130
    if any(r.problem is not None for r in reports):
        return 2
    return 0 if all(r.ok for r in reports) else 1


def cmd_export(args: argparse.Namespace) -> int:
    from nbseal.export import export_notebook

    text = export_notebook(Path(args.notebook), args.to)
    if args.output:
        from nbseal.fsutil import atomic_write_text

        atomic_write_text(Path(args.output), text)
        err(f"nbseal export: wrote {args.output}")
    else:
        sys.stdout.write(text)
    return 0
