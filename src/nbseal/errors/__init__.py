"""The exceptions nbseal raises for problems a user can cause or fix.

Every error carries three parts, in the manner of pip's diagnostic errors:
what went wrong (``message``), where (``context``), and what to do (``hint``).
Classes also inherit the matching built-in, as nbclient's do, so callers may
catch ``ValueError`` or ``TimeoutError`` without knowing nbseal. Messages are
built from typed fields by each class's constructors, which fill in a
:class:`Wording` (each module's table of what its errors say).
"""

from nbseal.errors.backends import (
    GUIX_KERNEL_HINT,
    GuixError,
    GuixResolutionError,
    GuixUnavailableError,
    LockFormatError,
)
from nbseal.errors.base import (
    BuildError,
    DirectiveError,
    NbsealError,
    ResolutionError,
    StoreError,
    UvError,
    Wording,
    bad_data_name,
    internal_error,
    no_notebook_found,
    not_a_number,
)
from nbseal.errors.cluster import (
    ClusterError,
    NotebookCancelledError,
    NotebookTimeoutError,
    RemoteProblem,
)
from nbseal.errors.data import (
    DataFetchError,
    DataHashError,
    DataPlacementError,
    DataSourceError,
)
from nbseal.errors.debian import DebianError, DebianResolutionError, DebianUnavailableError
from nbseal.errors.kernel import (
    EnvironmentFailedError,
    KernelDiedError,
    KernelStartError,
    SandboxUnavailableError,
)
from nbseal.errors.notebook import AdoptError, NotebookError

__all__ = [
    "GUIX_KERNEL_HINT",
    "AdoptError",
    "BuildError",
    "ClusterError",
    "DataFetchError",
    "DataHashError",
    "DataPlacementError",
    "DataSourceError",
    "DebianError",
    "DebianResolutionError",
    "DebianUnavailableError",
    "DirectiveError",
    "EnvironmentFailedError",
    "GuixError",
    "GuixResolutionError",
    "GuixUnavailableError",
    "KernelDiedError",
    "KernelStartError",
    "LockFormatError",
    "NbsealError",
    "NotebookCancelledError",
    "NotebookError",
    "NotebookTimeoutError",
    "RemoteProblem",
    "ResolutionError",
    "SandboxUnavailableError",
    "StoreError",
    "UvError",
    "Wording",
    "bad_data_name",
    "internal_error",
    "no_notebook_found",
    "not_a_number",
]
