"""A notebook's plan: which environments it declares, at which pins, with what.

Everything here is pure (no I/O): the kernel and ``nbseal lock`` both turn
the same directives into the same :class:`Declaration`, so a lock written by
one is recognised by the other.
"""

from __future__ import annotations

import hashlib
import re
import sysconfig
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from packaging.requirements import Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet

from nbseal.directives import (
    DEB_REQUIREMENT_PREFIX,
    GUIX_PIN_PREFIX,
    GUIX_REQUIREMENT_PREFIX,
    AllowDirective,
    DataDirective,
    DescribeDirective,
    Directive,
    EnvDefineDirective,
    EnvSwitchDirective,
    GuixEnvironmentDirective,
    GuixPinDirective,
    HelpDirective,
    LimitDirective,
    PinDirective,
    ScriptBlockDirective,
    ShareDirective,
    parse_cell,
)
from nbseal.errors import DirectiveError
from nbseal.lock import Lock, unnamed_sources
from nbseal.pythons import host_python, host_python_version, python_series, same_series
from nbseal.sandbox.limits import DEFAULT_LIMITS, Limits

__all__ = [
    "DEFAULT_ENV_NAME",
    "DEFAULT_IPYKERNEL",
    "DEFAULT_PIN",
    "Declaration",
    "EnvironmentSpec",
    "NotebookPlan",
    "NotebookState",
    "declare_env",
    "declare_script",
    "default_declaration",
    "default_environment",
    "guix_commit_of",
    "host_platform",
    "host_python",
    "host_python_version",
    "notebook_pin_after",
    "plan_notebook",
    "split_pin",
]

DEFAULT_ENV_NAME = "default"
# The kernel of the default environment, and the instant its dependencies
# are resolved at: both fixed by nbseal, so the default is reproducible too.
DEFAULT_IPYKERNEL = "ipykernel==7.4.0"
DEFAULT_PIN = "2026-11-01T00:00:00Z"


def host_platform() -> str:
    return sysconfig.get_platform()


@dataclass(frozen=True)
class EnvironmentSpec:
    """An environment ready to resolve: requirements at a definite instant."""

    name: str
    requirements: tuple[str, ...]
    pin: str
    python: str = field(default_factory=host_python)
    kernel: str | None = None
    # "source": packages without a wheel at the pin are compiled, not taken newer.
    build: str | None = None
    # "auto": the Python current at the pin, if it can be had (else ``python``).
    python_request: str | None = None

    def resolution_key(self, python_version: str, platform_tag: str) -> str:
        """Identifies a resolution: same inputs at the same pin give the same lock."""
        digest = hashlib.sha256()
        # The build mode is a part too (resolutions made before it existed compiled).
        build = f"build={self.build or 'wheel'} python={self.python_request or ''}"
        for part in (*sorted(self.requirements), self.pin, python_version, platform_tag, build):
            digest.update(part.encode())
            digest.update(b"\0")
        return digest.hexdigest()[:32]


@dataclass(frozen=True)
class Declaration:
    """One environment as the notebook declares it, before a pin is chosen.

    ``pin`` is None for an unpinned environment: it is resolved "now", or
    taken from a lock stored in the notebook that still fits.
    """

    name: str
    requirements: tuple[str, ...]
    pin: str | None
    kernel: str | None = None
    source: str = "#seal env"
    build: str | None = None
    python: str | None = None  # "auto", or None: the Python nbseal runs on

    def spec(self, instant: str | None = None) -> EnvironmentSpec:
        pin = self.pin or instant
        if pin is None:
            raise ValueError(f"environment {self.name!r} is unpinned; pass the instant")
        return EnvironmentSpec(
            self.name,
            self.requirements,
            pin,
            kernel=self.kernel,
            build=self.build,
            python_request=self.python,
        )

    def staleness(self, lock: Lock) -> str | None:
        """Why ``lock`` no longer fits this declaration, or None when it does."""
        if sorted(lock.requirements) != sorted(self.requirements):
            return (
                f"requirements changed: locked {' '.join(sorted(lock.requirements))}, "
                f"declared {' '.join(sorted(self.requirements))}"
            )
        if self.pin is not None and lock.exclude_newer != self.pin:
            return f"pin changed: locked as of {lock.exclude_newer}, declared {self.pin}"
        if lock.build != (self.build or ""):
            return (
                f"build mode changed: locked with build={lock.build or 'wheel'}, "
                f"declared build={self.build or 'wheel'}"
            )
        python = self._python_staleness(lock)
        if python is not None:
            return python
        if host_platform() not in lock.platforms:
            return f"locked for platform {', '.join(lock.platforms)}, this is {host_platform()}"
        unnamed = unnamed_sources(lock, self.requirements)
        if unnamed:
            more = f" and {len(unnamed) - 1} more" if len(unnamed) > 1 else ""
            return (
                f"it installs {unnamed[0]}{more}, which neither the declaration "
                "nor this machine's package index names"
            )
        return None

    def _python_staleness(self, lock: Lock) -> str | None:
        """A lock serves its Python series (3.11): another patch release fits, another
        series does not; ``python=3.11.7`` asks for that release exactly."""
        if not lock.python or self.python == "auto":
            return None  # python=auto takes the Python of the pin where it can be had
        served = lock.serves or python_series(lock.python)
        if self.python not in (None, "auto") and served != self.python:
            return f"python= changed: locked for Python {served}, declared python={self.python}"
        here = host_python_version()
        if self.python is None and not same_series(here, served):
            return (
                f"locked for Python {served}, this is Python {here} "
                f"(re-lock for {python_series(here)} with `nbseal lock`, or "
                f"`nbseal verify --relock`; or run nbseal on a Python {served})"
            )
        return None

    def fitting(self, candidates: Iterable[Lock]) -> Lock | None:
        return next((lock for lock in candidates if self.staleness(lock) is None), None)


# -- pins --------------------------------------------------------------------
# A notebook holds at most one date pin (``#seal pin``, for PyPI and Debian)
# and one Guix pin (``;;guix pin``, ``guix-commit:COMMIT``). As one string
# they are the date and the Guix pin separated by a space, in that order.


def split_pin(pin: str | None) -> tuple[str | None, str | None]:
    """``(date pin, Guix pin)`` of a notebook's pin string; either may be None."""
    date: str | None = None
    guix: str | None = None
    for part in (pin or "").split():
        if part.startswith(GUIX_PIN_PREFIX):
            guix = part
        else:
            date = part
    return date, guix


def notebook_pin_after(pin: str | None, directive: PinDirective) -> str | None:
    """The notebook's pin once ``directive`` applied: a Guix pin leaves a date pin alone."""
    date, guix = split_pin(pin)
    if isinstance(directive, GuixPinDirective):
        guix = directive.instant
    else:
        date = directive.instant
    return " ".join(p for p in (date, guix) if p) or None


def guix_commit_of(pin: str) -> str | None:
    """The Guix commit a Guix environment's pin names, or None (unpinned: Guix as it is)."""
    _, guix = split_pin(pin)
    return guix[len(GUIX_PIN_PREFIX) :] if guix else None


# Requirements outside PyPI carry the prefix of their namespace.
_NAMESPACE_PREFIXES = (DEB_REQUIREMENT_PREFIX, GUIX_REQUIREMENT_PREFIX)


def _with_kernel(requirements: tuple[str, ...], kernel: str | None) -> tuple[str, ...]:
    """PyPI requirements (no namespace prefix) that name no kernel get ipykernel.

    Packages of one namespace (all ``deb:``, all ``guix:``) bring their own
    kernel package; a spec of PyPI packages that names no kernel runs Python.
    """
    if requirements and any(
        all(r.startswith(prefix) for r in requirements) for prefix in _NAMESPACE_PREFIXES
    ):
        return requirements
    if kernel is None and not any(Requirement(r).name.lower() == "ipykernel" for r in requirements):
        return (*requirements, "ipykernel")
    return requirements


def declare_env(directive: EnvDefineDirective, notebook_pin: str | None) -> Declaration:
    """The declaration of ``#seal env NAME <- ...``; raises for an unusable python=.

    ``notebook_pin`` is the notebook's pin string (see :func:`split_pin`): a
    Guix environment takes its Guix pin, any other its date pin.
    """
    date_pin, guix_pin = split_pin(notebook_pin)
    guixes = [r.startswith(GUIX_REQUIREMENT_PREFIX) for r in directive.requirements]
    if any(guixes):
        return _declare_guix(directive, guix_pin, all(guixes))
    wanted = directive.python
    if wanted not in (None, "auto") and not re.fullmatch(r"3\.\d+(\.\d+)?", wanted):
        raise DirectiveError(
            f"python={wanted} names no Python release",
            line=directive.line,
            text=f"#seal env {directive.name} <- ... python={wanted}",
            expected="python=X.Y (a series, e.g. 3.11), python=X.Y.Z (exactly) or python=auto",
        )
    debs = [r.startswith(DEB_REQUIREMENT_PREFIX) for r in directive.requirements]
    if any(debs) and not all(debs):
        raise DirectiveError(
            "an environment holds either Debian packages (deb:NAME) or Python packages",
            line=directive.line,
            text=f"#seal env {directive.name} <- {' '.join(directive.requirements)}",
            expected="two environments: one of deb: packages, one of PyPI packages",
        )
    return Declaration(
        name=directive.name,
        requirements=_with_kernel(directive.requirements, directive.kernel),
        pin=directive.pin or date_pin,
        kernel=directive.kernel,
        build=directive.build,
        python=_python_request(wanted),
    )


def _python_request(wanted: str | None) -> str | None:
    """What python= asks: None when it names the series nbseal runs on (as if absent)."""
    if wanted is None or wanted == "auto" or wanted.count(".") == 2:
        return wanted
    return None if same_series(host_python_version(), wanted) else wanted


def _declare_guix(directive: EnvDefineDirective, guix_pin: str | None, pure: bool) -> Declaration:
    """A Guix environment: its pin is the notebook's ``;;guix pin``, never a date."""
    text = f"#seal env {directive.name} <- {' '.join(directive.requirements)}"
    if isinstance(directive, GuixEnvironmentDirective):
        packages = (r[len(GUIX_REQUIREMENT_PREFIX) :] for r in directive.requirements)
        text = f";;guix environment {directive.name} <- {' '.join(packages)}"
    if not pure:
        raise DirectiveError(
            "an environment holds either Guix packages (guix:NAME) or other packages",
            line=directive.line,
            text=text,
            expected="one environment of guix: packages, and others for PyPI or deb: packages",
        )
    if directive.pin is not None or directive.python is not None:
        raise DirectiveError(
            "a Guix environment is pinned to a Guix commit and brings its own Python",
            line=directive.line,
            text=text,
            expected="`;;guix pin COMMIT` before the environment, and no pin= or python=",
        )
    return Declaration(
        name=directive.name,
        requirements=directive.requirements,
        pin=guix_pin,
        kernel=directive.kernel,
        source=";;guix environment"
        if isinstance(directive, GuixEnvironmentDirective)
        else "#seal env",
    )


def declare_script(directive: ScriptBlockDirective, notebook_pin: str | None) -> Declaration:
    """The default environment as a PEP 723 block (juv, marimo, uv) declares it."""
    if directive.requires_python:
        try:
            allowed = SpecifierSet(directive.requires_python)
        except InvalidSpecifier as exc:
            raise DirectiveError(
                f"requires-python {directive.requires_python!r} is not a version specifier",
                line=directive.line,
                text="# /// script",
                expected='requires-python = ">=3.11"',
            ) from exc
        if host_python_version() not in allowed:
            raise DirectiveError(
                f"this notebook requires Python {directive.requires_python}, "
                f"but nbseal runs on Python {host_python_version()}",
                line=directive.line,
                text=f'requires-python = "{directive.requires_python}"',
                expected=f"a range that holds {host_python_version()}, or run nbseal on a Python"
                " that fits",
            )
    return Declaration(
        name=DEFAULT_ENV_NAME,
        requirements=_with_kernel(directive.requirements, None),
        pin=directive.exclude_newer or split_pin(notebook_pin)[0],
        source="PEP 723 block",
    )


def limits_after(limits: Limits, directive: LimitDirective) -> Limits:
    """The sandbox's caps once ``#seal limit`` has changed them."""
    try:
        return limits.with_settings(dict(directive.settings))
    except ValueError as exc:
        raise DirectiveError(
            str(exc),
            line=directive.line,
            text="#seal limit " + " ".join(f"{k}={v}" for k, v in directive.settings),
            expected="`#seal limit [processes=N] [memory=SIZE] [tmp=SIZE]`, "
            "at least processes=16, memory=64M, tmp=1M",
        ) from None


def default_declaration() -> Declaration:
    return Declaration(DEFAULT_ENV_NAME, (DEFAULT_IPYKERNEL,), DEFAULT_PIN, source="nbseal")


def default_environment() -> EnvironmentSpec:
    return default_declaration().spec()


@dataclass
class NotebookState:
    """What a notebook's directives have said so far, applied in the order they run.

    The one place a directive's meaning for the notebook is written: the
    planner (``nbseal lock``, ``verify``) applies a whole notebook's cells in
    order, the kernel applies each cell as it runs. Applying a directive
    that the notebook cannot take raises :class:`DirectiveError` and changes
    nothing, so a cell can be checked on a :meth:`copy` before it takes effect.
    ``help`` and ``describe`` change nothing here.
    """

    # The notebook's pin string (see :func:`split_pin`).
    pin: str | None = None
    environments: dict[str, Declaration] = field(default_factory=dict)
    current: str = DEFAULT_ENV_NAME
    network: bool = False
    # Outputs act in the page as they are (no output policy).
    javascript: bool = False
    shares: list[ShareDirective] = field(default_factory=list)
    limits: Limits = DEFAULT_LIMITS
    data: list[DataDirective] = field(default_factory=list)

    def copy(self) -> NotebookState:
        return replace(
            self,
            environments=dict(self.environments),
            shares=list(self.shares),
            data=list(self.data),
        )

    def declaration(self, name: str) -> Declaration:
        """The environment ``name`` as declared; the default one when never declared."""
        if name == DEFAULT_ENV_NAME and name not in self.environments:
            return default_declaration()
        return self.environments[name]

    def apply(self, directive: Directive) -> Declaration | None:
        """Apply ``directive``; the declaration it made current, if it defined one."""
        defined: Declaration | None = None
        if isinstance(directive, PinDirective):
            self.pin = notebook_pin_after(self.pin, directive)
        elif isinstance(directive, EnvDefineDirective):
            defined = declare_env(directive, self.pin)
        elif isinstance(directive, ScriptBlockDirective):
            defined = declare_script(directive, self.pin)
        elif isinstance(directive, EnvSwitchDirective):
            known = {*self.environments, DEFAULT_ENV_NAME}
            if directive.name not in known:
                raise DirectiveError(
                    f"no environment named {directive.name!r} is defined",
                    line=directive.line,
                    text=f"#seal env {directive.name}",
                    expected="`#seal env NAME <- REQUIREMENT...` in an earlier cell"
                    f" (defined: {', '.join(sorted(known))})",
                )
            self.current = directive.name
        elif isinstance(directive, DataDirective):
            self.data.append(directive)
        elif isinstance(directive, AllowDirective) and directive.what == "javascript":
            self.javascript = True
        elif isinstance(directive, AllowDirective):
            self.network = True
        elif isinstance(directive, ShareDirective):
            self.shares.append(directive)
        elif isinstance(directive, LimitDirective):
            self.limits = limits_after(self.limits, directive)
        elif not isinstance(directive, (HelpDirective, DescribeDirective)):
            name = type(directive).__name__.removesuffix("Directive").lower()
            raise DirectiveError(
                f"this version of nbseal cannot apply this directive yet ({name})",
                line=directive.line,
                text=f"#seal {name}",
                expected="a directive `#seal help` lists",
            )
        if defined is not None:
            self.environments[defined.name] = defined
            self.current = defined.name
        return defined


@dataclass
class NotebookPlan:
    """What a whole notebook declares, in cell order (the last definition wins)."""

    environments: dict[str, Declaration] = field(default_factory=dict)
    # Environments some code cell runs in.
    used: set[str] = field(default_factory=set)
    data: list[DataDirective] = field(default_factory=list)
    network: bool = False
    javascript: bool = False
    shares: list[ShareDirective] = field(default_factory=list)
    limits: Limits = DEFAULT_LIMITS
    # The environment the first code cell runs in, as declared at that point.
    first_used: Declaration | None = None

    def locked_environments(self) -> dict[str, Declaration]:
        """The environments a lock must cover: every declared one, and the default if used."""
        wanted = dict(self.environments)
        if DEFAULT_ENV_NAME in self.used and DEFAULT_ENV_NAME not in wanted:
            wanted[DEFAULT_ENV_NAME] = default_declaration()
        return wanted


def plan_notebook(sources: Iterable[str]) -> NotebookPlan:
    """Plan a notebook from its code cells' sources, in order.

    A malformed directive raises :class:`DirectiveError` naming the cell
    (1-based, counting code cells only) and the line.
    """
    state = NotebookState()
    used: set[str] = set()
    first_used: Declaration | None = None
    for number, source in enumerate(sources, start=1):
        try:
            cell = parse_cell(source)
            for directive in cell.directives:
                state.apply(directive)
        except DirectiveError as exc:
            raise exc.in_cell(number) from None
        if cell.has_code:
            used.add(state.current)
            if first_used is None:
                first_used = state.declaration(state.current)
    return NotebookPlan(
        environments=state.environments,
        used=used,
        data=state.data,
        network=state.network,
        javascript=state.javascript,
        shares=state.shares,
        limits=state.limits,
        first_used=first_used,
    )
