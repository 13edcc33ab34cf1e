"""Errors of the Debian backend: the host, the mirror, mmdebstrap, the tree and its .debs."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from nbseal.errors.backends import _Unresolved
from nbseal.errors.base import BuildError, Wording

__all__ = ["DebianError", "DebianResolutionError", "DebianUnavailableError"]

_NO_KERNEL = Wording(
    "the Debian environment {environment!r} holds no Jupyter kernel",
    context="packages: {packages: }",
    hint="add a kernel package, e.g. deb:r-cran-irkernel (R), "
    "deb:python3-ipykernel (Python), deb:python3-octave-kernel (Octave)",
)
_NOT_IN_INDEX = Wording(
    "installed packages are missing from the mirror's index",
    context="{packages:, }",
    hint="the mirror changed during the build; resolve again",
)
_REBUILT_DIFFERS = Wording(
    "the rebuilt root file system does not hold exactly the locked packages",
    context="not in the lock: {extra}\nmissing: {lacking}",
)
_CANNOT_INDEX_DEBS = Wording("cannot index the stored .debs", context="{output}")
_DEB_ALTERED = Wording(
    "{name} does not have the SHA-256 the archive index names",
    context="expected {expected}\nactual   {actual}",
    hint="the download was altered or the mirror is inconsistent; retry",
)
_DEB_NOWHERE = Wording(
    "the .deb of {package} {version} is neither in the local store nor at any mirror",
    context="{tried}",
    hint="a regular mirror keeps only the newest versions: point "
    "NBSEAL_DEBIAN_MIRROR at a mirror or snapshot that still has them "
    "(NBSEAL_DEBIAN_MIRROR=snapshot), or copy the .debs into "
    "{store} named <sha256>.deb",
)
_MIRROR_UNREACHABLE = Wording(
    "{what}: the Debian mirror could not be reached",
    context="{output}",
    hint="check the network, or set {variable} to a reachable mirror",
)
_MMDEBSTRAP_FAILED = Wording(
    "{what}: mmdebstrap failed (exit code {code})",
    context="{output}",
    hint="the whole output is in {log}",
)
_NOT_IN_NAMESPACE = Wording(
    "cannot run {program} in the build's user namespace", context="{output}"
)
_CANNOT_UNPACK = Wording(
    "cannot unpack the root file system mmdebstrap wrote to {archive}", context="{reason}"
)
_CANNOT_LIST = Wording("cannot list the packages of {root}", context="{output}")


class DebianError(BuildError):
    """The Debian backend failed: the mirror, mmdebstrap, the root file system or a .deb."""

    @classmethod
    def no_kernel(cls, environment: str, packages: Iterable[str]) -> DebianError:
        return cls.saying(_NO_KERNEL, environment=environment, packages=tuple(packages))

    @classmethod
    def not_in_index(cls, packages: Iterable[str]) -> DebianError:
        """Installed ``packages`` the mirror's index does not list."""
        return cls.saying(_NOT_IN_INDEX, packages=tuple(packages))

    @classmethod
    def rebuilt_differs(cls, extra: Iterable[str], lacking: Iterable[str]) -> DebianError:
        """A rebuilt tree holds ``extra`` packages the lock lacks, and lacks ``lacking``."""
        return cls.saying(
            _REBUILT_DIFFERS, extra=", ".join(extra) or "-", lacking=", ".join(lacking) or "-"
        )

    @classmethod
    def cannot_index_debs(cls, output: str) -> DebianError:
        return cls.saying(_CANNOT_INDEX_DEBS, output=output)

    @classmethod
    def deb_altered(cls, name: str, expected: str, actual: str) -> DebianError:
        """The .deb ``name`` has the SHA-256 ``actual``, the index says ``expected``."""
        return cls.saying(_DEB_ALTERED, name=name, expected=expected, actual=actual)

    @classmethod
    def deb_nowhere(
        cls, package: str, version: str, *, tried: Iterable[str], store: Path
    ) -> DebianError:
        """No place ``tried`` (the .deb ``store`` and mirrors) has this .deb."""
        return cls.saying(
            _DEB_NOWHERE, package=package, version=version, tried="\n".join(tried), store=store
        )

    @classmethod
    def mirror_unreachable(cls, what: str, output: str, *, variable: str) -> DebianError:
        """mmdebstrap, doing ``what``, could not reach the mirror (``variable`` sets another)."""
        return cls.saying(_MIRROR_UNREACHABLE, what=what, output=output, variable=variable)

    @classmethod
    def mmdebstrap_failed(cls, what: str, code: int, output: str, *, log: Path) -> DebianError:
        return cls.saying(_MMDEBSTRAP_FAILED, what=what, code=code, output=output, log=log)

    @classmethod
    def not_in_namespace(cls, program: str, output: str) -> DebianError:
        return cls.saying(_NOT_IN_NAMESPACE, program=program, output=output)

    @classmethod
    def cannot_unpack(cls, archive: Path, reason: str) -> DebianError:
        return cls.saying(_CANNOT_UNPACK, archive=archive, reason=reason)

    @classmethod
    def cannot_list(cls, root: Path, output: str) -> DebianError:
        return cls.saying(_CANNOT_LIST, root=root, output=output)


_AS_USER = "cannot build Debian environments as {user}: "
_MISSING_TOOL = Wording(
    "cannot build Debian environments{who}: {tool} is not installed",
    context="{why}",
    hint="{hint}",
)
_SUBIDS_UNREADABLE = Wording(
    _AS_USER + "{path} is not readable",
    context="{reason}",
    hint="ask an administrator to make {path} readable (mode 0644)",
)
_NO_SUBIDS = Wording(
    _AS_USER + "{files: and } {verb} {user} no subordinate ids", context="{why}", hint="{hint}"
)
_TOO_FEW_SUBIDS = Wording(
    _AS_USER + "{files: and } {verb} {user} fewer than {needed} subordinate ids",
    context="a Debian tree has files of ids up to 65534 (nobody)",
    hint="{hint}",
)
_NO_USER_NAMESPACE = Wording(
    "cannot create a user namespace as {user} here", context="{output}", hint="{hint}"
)
_NO_NAMESPACES = Wording(
    "mmdebstrap cannot create the namespaces it needs here",
    context="{output}",
    hint="mmdebstrap --mode=unshare needs to unshare user and mount namespaces "
    "(in a container, a seccomp profile that allows unshare)",
)
_NO_CODENAME = Wording(
    "cannot tell which Debian release to build: the host names no codename",
    hint="set {suite_variable} (e.g. bookworm) and {mirror_variable} (a Debian mirror URL)",
)
_NO_MIRROR = Wording(
    "the host's apt sources name no mirror for Debian {suite}",
    hint="set {variable} to a Debian mirror URL (or to `snapshot`)",
)
_NO_DPKG = Wording("dpkg is not installed: this is not a Debian-based host")


class DebianUnavailableError(DebianError):
    """mmdebstrap is missing or cannot run here; says why and what to do.

    Records the ``tool`` missing, or the ``user`` a build cannot run as.
    """

    tool: str | None = None
    user: str | None = None

    @classmethod
    def missing_tool(
        cls, tool: str, *, hint: str, user: str | None = None, why: str = ""
    ) -> DebianUnavailableError:
        """``tool`` is not installed (``user``: the regular user it is needed for)."""
        who = f" as {user}" if user else ""
        return cls.saying(_MISSING_TOOL, tool=tool, user=user, who=who, why=why, hint=hint)

    @classmethod
    def subids_unreadable(cls, user: str, path: Path, reason: str) -> DebianUnavailableError:
        return cls.saying(_SUBIDS_UNREADABLE, user=user, path=path, reason=reason)

    @classmethod
    def no_subids(
        cls, user: str, files: Sequence[str], *, why: str, hint: str
    ) -> DebianUnavailableError:
        """``files`` (/etc/subuid, /etc/subgid) grant ``user`` no subordinate ids."""
        verb = _grant(files)
        return cls.saying(_NO_SUBIDS, user=user, files=tuple(files), verb=verb, why=why, hint=hint)

    @classmethod
    def too_few_subids(
        cls, user: str, files: Sequence[str], *, needed: int, hint: str
    ) -> DebianUnavailableError:
        """``files`` grant ``user`` ranges of fewer than ``needed`` ids."""
        fields = {"user": user, "files": tuple(files), "verb": _grant(files), "needed": needed}
        return cls.saying(_TOO_FEW_SUBIDS, hint=hint, **fields)

    @classmethod
    def no_user_namespace(cls, user: str, output: str, *, hint: str) -> DebianUnavailableError:
        return cls.saying(_NO_USER_NAMESPACE, user=user, output=output, hint=hint)

    @classmethod
    def no_namespaces(cls, output: str) -> DebianUnavailableError:
        """mmdebstrap, run as root, could not unshare its namespaces."""
        return cls.saying(_NO_NAMESPACES, output=output)

    @classmethod
    def no_codename(cls, suite_variable: str, mirror_variable: str) -> DebianUnavailableError:
        return cls.saying(
            _NO_CODENAME, suite_variable=suite_variable, mirror_variable=mirror_variable
        )

    @classmethod
    def no_mirror(cls, suite: str, *, variable: str) -> DebianUnavailableError:
        return cls.saying(_NO_MIRROR, suite=suite, variable=variable)

    @classmethod
    def no_dpkg(cls) -> DebianUnavailableError:
        return cls.saying(_NO_DPKG, tool="dpkg")


def _grant(files: Sequence[str]) -> str:
    """The verb that agrees with ``files``."""
    return "grants" if len(files) == 1 else "grant"


_FOREIGN = Wording(
    "{requirement!r} is not a Debian package requirement",
    hint="a Debian environment takes only deb:NAME (or deb:NAME=VERSION); "
    "Python packages go into an environment of their own",
)
_BAD_NAME = Wording(
    "{requirement!r} is not a Debian package name",
    hint="use deb:NAME with a name as `apt-cache search` shows it, e.g. deb:r-base-core",
)
_UNKNOWN_PACKAGE = Wording(
    "Debian {suite} has no package {requirement!r}",
    hint="check the name with `apt-cache search NAME`, or set "
    "{mirror_variable} to a mirror that has it",
)
_NO_PACKAGES = Wording("a Debian environment names no package")
_BAD_PIN = Wording("the pin {pin!r} is not a date or instant")


class DebianResolutionError(_Unresolved, DebianError):
    """apt cannot satisfy a Debian environment's requirements, or they are not Debian's.

    ``output`` is what apt (through mmdebstrap) said.
    """

    @classmethod
    def foreign(cls, requirement: str) -> DebianResolutionError:
        """``requirement`` has no ``deb:`` prefix."""
        return cls.said(_FOREIGN, requirement=requirement)

    @classmethod
    def bad_name(cls, requirement: str) -> DebianResolutionError:
        """``deb:NAME`` whose name (or version) Debian policy does not allow."""
        return cls.said(_BAD_NAME, requirement=requirement)

    @classmethod
    def unknown_package(
        cls, package: str, *, suite: str, output: str, mirror_variable: str
    ) -> DebianResolutionError:
        """apt found no package ``package`` in ``suite``."""
        return cls.said(
            _UNKNOWN_PACKAGE,
            output=output,
            requirement=package,
            suite=suite,
            mirror_variable=mirror_variable,
        )

    @classmethod
    def no_packages(cls) -> DebianResolutionError:
        return cls.said(_NO_PACKAGES)

    @classmethod
    def bad_pin(cls, pin: str) -> DebianResolutionError:
        return cls.said(_BAD_PIN, pin=pin)
