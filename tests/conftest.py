"""Test set-up shared by every layer.

Kernels started by the tests find nbseal's store and kernelspec through the
environment, so both are set here, before any test or kernel starts. The
store, uv's cache and the kernelspec live in one temporary folder, removed
when the session ends (a session builds about a gigabyte): set
NBSEAL_TEST_CACHE_DIR and NBSEAL_TEST_UV_CACHE_DIR to keep and reuse them.

Run by pytest-xdist (scripts/test runs two workers), the workers share that
folder: the store's own locks keep their builds apart, as they keep two
notebooks' apart, and one build of the default environment serves both.
Each test file runs whole on one worker (its module fixtures are built once);
the Debian and browser tests, which share session fixtures (an R tree, the
Jupyter servers), run on one worker each.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# The controller makes the folder; xdist's workers, its children, inherit it.
_INHERITED = "NBSEAL_TESTS_ROOT" in os.environ and "PYTEST_XDIST_WORKER" in os.environ
_ROOT = Path(
    os.environ["NBSEAL_TESTS_ROOT"] if _INHERITED else tempfile.mkdtemp(prefix="nbseal-tests-")
)
os.environ["NBSEAL_TESTS_ROOT"] = str(_ROOT)
os.environ["NBSEAL_CACHE_DIR"] = os.environ.get("NBSEAL_TEST_CACHE_DIR", str(_ROOT / "cache"))
os.environ["UV_CACHE_DIR"] = os.environ.get("NBSEAL_TEST_UV_CACHE_DIR", str(_ROOT / "uv"))
os.environ["JUPYTER_PATH"] = str(_ROOT / "share" / "jupyter")
os.environ["JUPYTER_PLATFORM_DIRS"] = "1"
# The tests' data servers listen on 127.0.0.1: trusted by this machine's owner
# (the tests). The hostile-notebook tests run nbseal without it.
os.environ["NBSEAL_DATA_TRUSTED_HOSTS"] = "127.0.0.1"

from nbseal.kernel.kernelspec import install_kernelspec  # noqa: E402

if not _INHERITED:
    install_kernelspec(prefix=str(_ROOT))

# Test folders whose files share session fixtures, so run on one worker.
_ONE_WORKER = ("tests/debian", "tests/browser")


@pytest.fixture(scope="session")
def default_env() -> Path:
    """The default environment, built once so kernel tests see no build progress."""
    from nbseal.environments import realize
    from nbseal.plan import default_environment
    from nbseal.progress import Progress
    from nbseal.store import EnvironmentStore

    built = asyncio.run(realize(default_environment(), EnvironmentStore(), Progress("default")))
    return built.path


@pytest.fixture
def tmp_notebook_dir(tmp_path: Path) -> Iterator[Path]:
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(cwd)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Browser tests last: the slowest, and their Playwright loop must not precede others."""
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)


@pytest.hookimpl(optionalhook=True)  # xdist's hook: absent with -p no:xdist
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Under xdist's default distribution, each file whole on one worker (see the top).

    A file's tests share module fixtures and often a kernel whose state one
    test leaves for the next, so they must run in order on one worker.
    (xdist's ``--dist loadgroup`` would do it with marks, but with pytest 9
    it no longer sees them.)
    """
    if config.getoption("dist") != "load":
        return None
    from xdist.scheduler import LoadFileScheduling

    class ByFileOrFolder(LoadFileScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return next((f for f in _ONE_WORKER if path.startswith(f + "/")), path)

    return ByFileOrFolder(config, log)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Remove the session's store, uv cache and kernelspec (read-only trees included).

    Under xdist only the controller does, once every worker has finished.
    """
    from nbseal.fsutil import remove_tree

    if _INHERITED:
        return

    with contextlib.suppress(OSError):  # a kernel still exiting: the rest goes anyway
        remove_tree(_ROOT)
