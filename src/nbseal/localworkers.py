"""The workers of ``--cluster local:N``: forked from a server that imported nbseal once.

Dask starts a LocalCluster's workers with ``spawn`` by default: each is a
fresh interpreter that imports distributed, then nbseal (nbformat and
jsonschema among it: about 1.3 s of CPU here), while the client imports the
same for itself; on two cores, three processes importing one stack cost a
``-j 2`` run's whole start again (docs/speed.md). Here the workers come from
a ``forkserver`` started first thing, before the client's own imports: it
imports distributed and nbseal once, on the other core while the client
imports, and each worker is a fork of it, ready at once. A forkserver is a
clean single-threaded process, so its forks hold none of the client's
threads, locks or sockets (a plain ``fork`` of the client would: a worker
would keep its sibling's keep-alive pipe and the scheduler's socket open).

This module imports only the standard library and nbseal's errors: the CLI
calls it before it imports anything else.
"""

from __future__ import annotations

import multiprocessing
import re
from multiprocessing import forkserver

from nbseal.errors import ClusterError

__all__ = ["CONFIG", "PRELOAD", "local_workers", "start_forkserver"]

# What the forkserver imports once for all the workers it forks: nbseal.runner.client
# brings nbclient, nbformat and jsonschema, which the client never imports.
# nbseal.lean_imports goes first: it keeps jsonschema's IRI grammar out (1.2 s of CPU).
PRELOAD = (
    "nbseal.lean_imports",
    "distributed",
    "nbseal.distributed",
    "nbseal.runner",
    "nbseal.runner.client",
)
# Dask's settings while the cluster lives (a worker restarted after a crash forks
# too). The rest quiets what serves a dashboard nbseal does not show: sampling
# the worker's threads every 10 ms (they only wait on a kernel: the notebook
# runs in the kernel's process), a loop tick every 20 ms, and psutil polls;
# measured on an idle pair of workers, 1.3 s of CPU per 20 s became 0.2 s.
# (The nanny's memory check watches the worker, not its kernels: once a second.)
CONFIG = {
    "distributed.worker.multiprocessing-method": "forkserver",
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.worker.memory.monitor-interval": "1s",
}

_LOCAL = re.compile(r"local:(\d+)")


def local_workers(cluster: str) -> int:
    """The N of ``local:N`` (at least 1), else :meth:`ClusterError.bad_cluster`."""
    match = _LOCAL.fullmatch(cluster)
    if match is None or int(match.group(1)) < 1:
        raise ClusterError.bad_cluster(cluster)
    return int(match.group(1))


def start_forkserver() -> None:
    """Start the forkserver now; it imports :data:`PRELOAD` while the caller goes on.

    Without Dask installed the server's import fails quietly (the forkserver
    skips a preload it cannot import) and the client says what to install.
    Calling it again while the server runs does nothing.
    """
    multiprocessing.get_context("forkserver").set_forkserver_preload(list(PRELOAD))
    forkserver.ensure_running()
