"""Browser tests: Debian's Chromium, driven by Playwright, against JupyterLab 4 and Notebook 7.

Each frontend gets a server of its own (session-scoped, one at a time) with the
nbseal kernel registered through ``JUPYTER_PATH`` (tests/conftest.py) and a
fresh nbseal store shared by both, so environments the tests expect to be
built really are built. Every test opens a new notebook, and leaves a
screenshot (and, when it fails, the kernel messages the page exchanged)
under ``test-artifacts/browser/``.

Run them alone with ``pytest -m browser tests/browser``.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Playwright, sync_playwright

from tests.browser.ui import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    JupyterServer,
    KernelMessages,
    Notebook,
    artifact,
    open_new_notebook,
    start_server,
    stop_server,
)

FRONTENDS = ("lab", "notebook")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "browser: drives JupyterLab and Notebook 7 in Chromium (select with -m browser)"
    )


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="session", autouse=True)
def fresh_artifacts() -> None:
    """Screenshots and logs of this run only."""
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)


# Module-scoped, not session-scoped: Playwright's sync API keeps an event loop
# running in this thread while it is open, and later tests call asyncio.run().
@pytest.fixture(scope="module")
def playwright_driver() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright_driver: Playwright) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)")
    launched = playwright_driver.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
    )
    yield launched
    launched.close()


@pytest.fixture(scope="session")
def browser_store() -> Iterator[Path]:
    """A fresh nbseal store for the servers, holding only the default environment.

    Fresh, so the environments the tests build are built in front of the
    browser; the default one is built first, so no notebook's pre-start
    builds it in the background of a test.
    """
    from nbseal.environments import realize
    from nbseal.plan import default_environment
    from nbseal.progress import Progress
    from nbseal.store import EnvironmentStore

    root = Path(tempfile.mkdtemp(prefix="nbseal-browser-store-"))
    build = realize(default_environment(), EnvironmentStore(root), Progress("default"))
    # Playwright's sync API runs an event loop in this thread: build in another.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, build).result()
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session", params=FRONTENDS)
def jupyter(request: pytest.FixtureRequest, browser_store: Path) -> Iterator[JupyterServer]:
    """``jupyter lab`` or ``jupyter notebook`` (Notebook 7), started for the session."""
    home = Path(tempfile.mkdtemp(prefix=f"nbseal-browser-{request.param}-"))
    server = start_server(request.param, home, browser_store)
    yield server
    stop_server(server)
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def frontend(jupyter: JupyterServer) -> str:
    return jupyter.app


@pytest.fixture
def kernel_messages() -> KernelMessages:
    return KernelMessages()


@pytest.fixture
def context(browser: Browser, kernel_messages: KernelMessages) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    ctx.on("page", kernel_messages.attach)
    yield ctx
    ctx.close()


@pytest.fixture
def artifact_name(request: pytest.FixtureRequest, frontend: str) -> str:
    """``lab-describe_renders_the_environment_table``: names screenshots and workspaces."""
    name = re.sub(r"\[.*\]$", "", request.node.name).removeprefix("test_")
    callspec = getattr(request.node, "callspec", None)
    params = [str(v) for k, v in (callspec.params.items() if callspec else []) if k != "jupyter"]
    return re.sub(r"[^A-Za-z0-9_]+", "-", "-".join([frontend, name, *params])).strip("-")


@pytest.fixture
def notebook(
    request: pytest.FixtureRequest,
    context: BrowserContext,
    jupyter: JupyterServer,
    kernel_messages: KernelMessages,
    artifact_name: str,
) -> Iterator[Notebook]:
    """A new notebook with the nbseal kernel, created as a user does it."""
    try:
        opened = open_new_notebook(context, jupyter, kernel_messages, artifact_name)
    except Exception:
        kernel_messages.dump(artifact(f"{artifact_name}.messages.txt"))
        for n, page in enumerate(context.pages):
            page.screenshot(path=str(artifact(f"{artifact_name}-SETUP-FAILED-{n}.png")))
        raise
    yield opened
    failed = getattr(request.node, "report_call", None)
    suffix = "-FAILED" if failed is not None and failed.failed else ""
    if suffix:
        kernel_messages.dump(artifact(f"{artifact_name}.messages.txt"))
    try:
        opened.screenshot(f"{artifact_name}{suffix}")
    except Exception as exc:  # a crashed page must not hide the test's own failure
        print(f"no final screenshot of {artifact_name}: {exc}")
    try:
        session = opened.session()
        jupyter.api(f"/api/sessions/{session['id']}", method="DELETE")
    except Exception as exc:  # the kernel may be gone already
        print(f"could not shut down the session of {artifact_name}: {exc}")
