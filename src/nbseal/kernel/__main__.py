"""Entry point of the nbseal kernel: ``python -m nbseal.kernel -f CONNECTION_FILE``."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import sys
import threading
from pathlib import Path

from nbseal.timeline import mark, process_started_at


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nbseal.kernel")
    parser.add_argument("-f", "--connection-file", required=True)
    parser.add_argument(
        "--no-sandbox",
        action="store_true",
        default=os.environ.get("NBSEAL_NO_SANDBOX", "") not in ("", "0"),
        help="run kernels unsealed (explicit opt-out; outputs record it)",
    )
    parser.add_argument(
        "--runtime-parent",
        default=os.environ.get("NBSEAL_RUNTIME_PARENT") or None,
        help="make the runtime folder (sockets, scratch workdir) in this folder",
    )
    parser.add_argument(
        "--keep-workdir",
        default=os.environ.get("NBSEAL_KEEP_WORKDIR") or None,
        help="keep the kernels' working directory here instead of removing it",
    )
    args, _unknown = parser.parse_known_args(argv)
    mark("proxy", "process started", at=process_started_at())
    # Interrupts arrive as interrupt_request messages; a stray SIGINT
    # (Ctrl+C in a terminal) must not kill the proxy and its kernels. Set
    # before any kernel starts: they inherit it (see sandbox/headstart.py).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if not args.no_sandbox and args.keep_workdir is None:
        # This notebook's first kernel, from the recipe its last start kept:
        # it starts while this process imports (see nbseal.sandbox.headstart).
        from nbseal.sandbox import headstart

        headstart.begin(
            connection_file=args.connection_file,
            runtime_parent=Path(args.runtime_parent) if args.runtime_parent else None,
            session=os.environ.get("JPY_SESSION_NAME", ""),
            cwd=os.getcwd(),
        )
    if not args.no_sandbox:
        # The sandbox's seccomp program needs libseccomp, which pyseccomp finds
        # by running ldconfig (40-50 ms): done on a thread while this one
        # imports the proxy, it is ready when the first sandbox starts.
        threading.Thread(target=_compile_seccomp, name="seccomp", daemon=True).start()
    # Imported here, after the head start and that thread: asyncio alone takes
    # 50-80 ms.
    import asyncio

    from nbseal.kernel.proxy import ProxyConfig, ProxyKernel, configure_logging
    from nbseal.runtime_dirs import sweep_orphans

    mark("proxy", "imports done")
    configure_logging()
    with open(args.connection_file) as handle:
        connection = json.load(handle)
    config = ProxyConfig(
        sandbox=not args.no_sandbox,
        keep_workdir=Path(args.keep_workdir) if args.keep_workdir else None,
        runtime_parent=Path(args.runtime_parent) if args.runtime_parent else None,
    )
    kernel = ProxyKernel(connection, config)

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, kernel.request_stop)
        await kernel.run()

    asyncio.run(serve())
    mark("proxy", "exiting")
    # Orphaned, or the parent died while we were stopping (nbseal run killed
    # as it shut us down at its end): nobody else will clean up.
    if kernel.orphaned or _parent_gone():
        # The frontend that wrote the connection file (and would remove it)
        # is gone: the signing key must not outlive both of us.
        Path(args.connection_file).unlink(missing_ok=True)
        # nbseal run's folder too, if it was the parent (and is now gone).
        sweep_orphans(config.runtime_parent.parent if config.runtime_parent else None)
    elif (
        not kernel.restarting
        and config.runtime_parent is not None
        and _made_by_parent(config.runtime_parent)
    ):
        # nbseal run's folder (its connection file, our runtime folder) is
        # the run's to remove once we exit; a run killed in that moment would
        # leave it, with nobody alive to notice. Nothing in it is used now
        # (unless a restart starts our successor with that connection file).
        shutil.rmtree(config.runtime_parent, ignore_errors=True)
    return 0


def _made_by_parent(folder: Path) -> bool:
    """Whether ``folder`` is an nbseal run's folder, made by the process that started us."""
    from nbseal.runtime_dirs import owner_pid

    parent = int(os.environ.get("JPY_PARENT_PID", "0") or 0)
    return folder.name.startswith("nbseal-run-") and parent > 1 and owner_pid(folder) == parent


def _compile_seccomp() -> None:
    from nbseal.sandbox.seccomp import compiled_filter

    # A failure here is the launcher's to report, when it needs the program.
    with contextlib.suppress(Exception):
        compiled_filter()


def _parent_gone() -> bool:
    """Whether the process that started us (``JPY_PARENT_PID``) has exited."""
    parent = int(os.environ.get("JPY_PARENT_PID", "0") or 0)
    return parent > 1 and os.getppid() != parent


def _exit(code: int) -> None:
    """Leave without tearing the interpreter down: everything is cleaned up by now.

    The kernel's client waits for this process to end before its own run
    ends; the interpreter's teardown (modules, zmq, threads) took 60-140 ms
    of every ``nbseal run``.
    """
    import logging  # imported long since, by the proxy

    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    _exit(main())
