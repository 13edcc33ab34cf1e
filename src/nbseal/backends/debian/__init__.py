"""The Debian backend: a root file system built by mmdebstrap from exact .debs.

``#seal env r <- deb:r-base-core deb:r-cran-irkernel`` resolves by building a
root file system with ``mmdebstrap --mode=unshare --variant=apt`` from the
configured mirror (no recommends, eatmydata, no man pages, docs or
translations), keeping the .debs and apt's package lists the build used. The
lock names every installed package exactly: name, version, architecture,
SHA-256 and pool file name of its .deb (see :mod:`.lock`). The .debs go
into the content-addressed ``<cache root>/debs``.

``build(lock)`` makes the same tree again *offline*: the lock's .debs (from
that cache, downloaded and verified only when missing) become a flat
``file://`` repository, and ``mmdebstrap --variant=custom
--include=name=version,...`` installs exactly those. The tree the resolution
built is reused instead when it is still there and holds exactly the lock's
packages, so a first use builds once, not twice.

Trees are large and much alike (every one holds libc, Perl, apt, often R
or Python): when the store publishes one, :meth:`DebianBackend.share_files`
replaces its files that are identical (content, mode, owner, mtime, extended
attributes) to files of the store's other Debian trees by hard links to
those (:func:`.tree.share_identical_files`); a second R environment then costs only
what it adds. ``nbseal env gc`` removes the .debs no stored lock names
(:func:`remove_unused_debs`).

The mirror comes from the host's apt sources (entries for the host's suite
and its ``-updates``/``-security`` suites), or from ``$NBSEAL_DEBIAN_MIRROR``:
a URL, or ``snapshot`` for snapshot.debian.org at the environment's pin.

Root and regular users both build, with ``--mode=unshare``, and the
packages' maintainer scripts never run as host root: mmdebstrap runs as the
root of a user namespace nbseal maps to 65536 subordinate ids of the user
(or of root), under bwrap with only the host's /usr, what it reads of /etc, an input
folder and an output folder in /tmp (:class:`.mmdebstrap.BuildUser`,
:mod:`nbseal.sandbox.userns`, :mod:`nbseal.sandbox.confine`). A regular
user needs newuidmap (package uidmap) and a kernel that allows unprivileged
user namespaces; :func:`check_mmdebstrap` checks each of these and names
what is missing. The tree's owners (root, _apt, ...) are subordinate ids, so
mmdebstrap writes a tarball, which this process unpacks with tarfile's
``tar`` filter (no device nodes, no setuid bits, nothing outside the tree):
every file then belongs to the user, or for root keeps its owner's number.
Configuration goes in by mmdebstrap's ``upload`` hook, and the offline
build's ``file://`` repository lies in the input folder, which anyone may
read.

Modules: :mod:`.sources` (specs, constants, the mirror), :mod:`.preflight`
(can mmdebstrap run here, as this user), :mod:`.mmdebstrap` (its command line,
output and failures), :mod:`.indices` (apt's package lists read back),
:mod:`.lock` (the lock's data, the .deb cache), :mod:`.tree` (unpacking,
sharing files between trees), :mod:`.backend` (resolve and build).
"""

from __future__ import annotations

from nbseal.backends.debian.backend import DebianBackend, remove_unused_debs
from nbseal.backends.debian.mmdebstrap import prune_excluded
from nbseal.backends.debian.preflight import (
    SUBID_FILES,
    SUBID_NEEDED,
    SubidRange,
    check_mmdebstrap,
    subid_ranges,
    unprivileged_problem,
)
from nbseal.backends.debian.sources import (
    APT_OPTIONS,
    DEB_PREFIX,
    DEFAULT_DPKG_OPTIONS,
    MIRROR_ENV_VAR,
    SUITE_ENV_VAR,
    debian_packages,
    host_sources,
    host_suite,
    is_debian_spec,
    mirror_sources,
    snapshot_timestamp,
)
from nbseal.errors import DebianUnavailableError

__all__ = [
    "APT_OPTIONS",
    "DEB_PREFIX",
    "DEFAULT_DPKG_OPTIONS",
    "MIRROR_ENV_VAR",
    "SUBID_FILES",
    "SUBID_NEEDED",
    "SUITE_ENV_VAR",
    "DebianBackend",
    "DebianUnavailableError",
    "SubidRange",
    "check_mmdebstrap",
    "debian_packages",
    "host_sources",
    "host_suite",
    "is_debian_spec",
    "mirror_sources",
    "prune_excluded",
    "remove_unused_debs",
    "snapshot_timestamp",
    "subid_ranges",
    "unprivileged_problem",
]
