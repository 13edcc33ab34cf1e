"""The exceptions nbseal raises for problems a user can cause or fix.

Every error carries three parts, in the manner of pip's diagnostic errors:
what went wrong (``message``), where (``context``), and what to do (``hint``).
Classes also inherit the matching built-in, as nbclient's do, so callers may
catch ``ValueError`` or ``TimeoutError`` without knowing nbseal. Messages are
built from typed fields by each class's constructors.
"""

from nbseal.errors.backends import (
    DebianError,
    DebianResolutionError,
    DebianUnavailableError,
    GuixError,
    GuixResolutionError,
    GuixUnavailableError,
    LockFormatError,
)
from nbseal.errors.base import (
    AdoptError,
    BuildError,
    DirectiveError,
    EnvironmentFailedError,
    KernelDiedError,
    KernelStartError,
    NbsealError,
    NotebookError,
    ResolutionError,
    SandboxUnavailableError,
    StoreError,
    UvError,
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

__all__ = [
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
]
