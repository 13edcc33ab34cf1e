"""Drive JupyterLab 4 and Notebook 7 in a real Chromium, as a user does.

Three parts: a Jupyter server started for the tests (:func:`start_server`),
a recorder of the kernel messages a page exchanges over its websockets
(:class:`KernelMessages`, the evidence when something goes wrong), and a
notebook as the page shows it (:class:`Notebook`: cells, outputs, toolbar,
menus). Selectors are the frontends' own stable hooks: ``data-command``
attributes, ``jp-*`` classes, keyboard shortcuts.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote

from playwright.sync_api import BrowserContext, Locator, Page, WebSocket, expect

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "browser"

CHROMIUM = os.environ.get("NBSEAL_CHROMIUM", "/usr/bin/chromium")
# Playwright's own browser download does not work here: Debian's chromium, headless.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
KERNEL_DISPLAY_NAME = "nbseal (reproducible)"

# Generous limits: environments are resolved and built during the tests, on
# small machines. They bound a wait; no test asserts how long anything took.
BUILD_TIMEOUT = 420.0
RUN_TIMEOUT = 120.0
UI_TIMEOUT = 60.0

T = TypeVar("T")


def wait_until(page: Page, probe: Callable[[], T | None], timeout: float, what: str) -> T:
    """Poll ``probe`` (letting the page's events flow) until it returns a value."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None and value is not False:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        page.wait_for_timeout(100)


def artifact(name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-")


# ======================================================================
# the server
# ======================================================================
@dataclass
class JupyterServer:
    app: str  # "lab" or "notebook"
    port: int
    token: str
    root: Path
    log_path: Path
    process: subprocess.Popen[bytes]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str, *flags: str) -> str:
        query = "&".join([*flags, f"token={self.token}"])
        return f"{self.base}{path}?{query}"

    def api(self, path: str, method: str = "GET") -> Any:
        request = urllib.request.Request(
            self.base + path, method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
        return json.loads(body) if body else None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(app: str, home: Path, cache_dir: Path) -> JupyterServer:
    """Start ``jupyter lab`` or ``jupyter notebook`` on 127.0.0.1 with a token.

    The nbseal kernelspec comes from ``JUPYTER_PATH`` (set by tests/conftest.py);
    nbseal's store is ``cache_dir``. Settings, workspaces and runtime files live
    under ``home`` so nothing of the user's Jupyter set-up leaks in.
    """
    root = home / "notebooks"
    root.mkdir(parents=True)
    settings = home / "lab-settings"
    # No "get notified about Jupyter news?" toast over the notebook.
    notification = settings / "@jupyterlab" / "apputils-extension"
    notification.mkdir(parents=True)
    (notification / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    port = _free_port()
    token = secrets.token_hex(16)
    log_path = artifact(f"{app}-server.log")
    env = {
        **os.environ,
        "NBSEAL_CACHE_DIR": str(cache_dir),
        "NBSEAL_LOG_LEVEL": os.environ.get("NBSEAL_LOG_LEVEL", "INFO"),
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(settings),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
    }
    argv = [
        sys.executable,
        "-m",
        {"lab": "jupyterlab", "notebook": "notebook"}[app],
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
    ]
    if os.geteuid() == 0:
        argv.append("--allow-root")
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            argv,
            cwd=root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = JupyterServer(app, port, token, root, log_path, process)
    deadline = time.monotonic() + 180
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"jupyter {app} exited ({process.returncode}):\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(f"{server.base}/api", timeout=5) as response:
                if response.status == 200:
                    break
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            stop_server(server)
            raise RuntimeError(f"jupyter {app} did not answer on /api:\n{server.log_tail()}")
        time.sleep(0.25)
    specs = server.api("/api/kernelspecs")["kernelspecs"]
    if "nbseal" not in specs:
        stop_server(server)
        raise RuntimeError(f"jupyter {app} does not list the nbseal kernel: {sorted(specs)}")
    return server


def stop_server(server: JupyterServer) -> None:
    """Stop the server (it shuts its kernels down), then anything left in its group."""
    process = server.process
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


# ======================================================================
# kernel messages, as the page sends and receives them
# ======================================================================
@dataclass
class KernelMessage:
    direction: str  # "sent" by the page or "received" by it
    channel: str
    msg_type: str
    msg_id: str
    parent_type: str
    parent_id: str
    content: dict[str, Any]
    at: float = field(default_factory=time.monotonic)

    def __str__(self) -> str:
        content = json.dumps(self.content, ensure_ascii=False)
        if len(content) > 300:
            content = content[:300] + "…"
        return (
            f"{self.direction:8} {self.channel:7} {self.msg_type:22} {self.msg_id[:12]:12} "
            f"parent={self.parent_type}:{self.parent_id[:12]} {content}"
        )


def decode_frame(payload: str | bytes) -> tuple[str, dict[str, Any]]:
    """One websocket frame of jupyter_server: JSON (v0) or the binary v1 protocol."""
    if isinstance(payload, str):
        message = json.loads(payload)
        return str(message.get("channel", "")), message
    count = struct.unpack_from("<Q", payload, 0)[0]
    offsets = [struct.unpack_from("<Q", payload, 8 * (i + 1))[0] for i in range(count)]
    offsets.append(len(payload))
    parts = [payload[offsets[i] : offsets[i + 1]] for i in range(count)]
    names = ("header", "parent_header", "metadata", "content")
    message = {name: json.loads(parts[i + 1] or b"{}") for i, name in enumerate(names)}
    return parts[0].decode(), message


class KernelMessages:
    """Every kernel message of every page of a browser context, decoded, in order."""

    def __init__(self) -> None:
        self.log: list[KernelMessage] = []

    def attach(self, page: Page) -> None:
        page.on("websocket", self._on_websocket)

    def _on_websocket(self, ws: WebSocket) -> None:
        if "/channels" not in ws.url:
            return
        ws.on("framesent", lambda payload: self._record("sent", payload))
        ws.on("framereceived", lambda payload: self._record("received", payload))

    def _record(self, direction: str, payload: str | bytes) -> None:
        try:
            channel, message = decode_frame(payload)
        except (ValueError, struct.error, UnicodeDecodeError):
            return
        header = message.get("header") or {}
        parent = message.get("parent_header") or {}
        self.log.append(
            KernelMessage(
                direction,
                channel,
                str(header.get("msg_type", "")),
                str(header.get("msg_id", "")),
                str(parent.get("msg_type", "")),
                str(parent.get("msg_id", "")),
                message.get("content") or {},
            )
        )

    def mark(self) -> int:
        return len(self.log)

    def first(self, direction: str, msg_type: str, since: int = 0) -> KernelMessage | None:
        for message in self.log[since:]:
            if message.direction == direction and message.msg_type == msg_type:
                return message
        return None

    def reply_to(self, msg_id: str) -> KernelMessage | None:
        for message in self.log:
            if (
                message.direction == "received"
                and message.channel == "shell"
                and message.parent_id == msg_id
                and message.msg_type.endswith("_reply")
            ):
                return message
        return None

    def children(self, msg_id: str, channel: str = "iopub") -> list[KernelMessage]:
        return [
            m
            for m in self.log
            if m.direction == "received" and m.channel == channel and m.parent_id == msg_id
        ]

    def dump(self, path: Path) -> None:
        path.write_text("\n".join(str(m) for m in self.log) + "\n")


# ======================================================================
# a notebook on the page
# ======================================================================
@dataclass
class Output:
    mime: str
    text: str


@dataclass
class Run:
    index: int
    request: KernelMessage
    reply: KernelMessage

    @property
    def status(self) -> str:
        return str(self.reply.content.get("status"))


_OUTPUTS_JS = """
(area) => Array.from(area.querySelectorAll(':scope > .jp-OutputArea-child')).map((child) => {
  const out = child.querySelector('.jp-OutputArea-output');
  return {mime: out ? (out.getAttribute('data-mime-type') || '') : '',
          text: (child.textContent || '').trim()};
})
"""

# Records every distinct state of an output area: the DOM, not a screenshot,
# says whether a display was updated in place.
_WATCH_JS = """
(area, key) => {
  const snapshot = () => Array.from(area.querySelectorAll(':scope > .jp-OutputArea-child'))
    .map((child) => {
      const out = child.querySelector('.jp-OutputArea-output');
      return {mime: out ? (out.getAttribute('data-mime-type') || '') : '',
              text: (child.textContent || '').trim()};
    });
  const states = [];
  let last = null;
  const record = () => {
    const now = snapshot();
    const text = JSON.stringify(now);
    if (text !== last) { last = text; states.push(now); }
  };
  record();
  const observer = new MutationObserver(record);
  observer.observe(area, {childList: true, subtree: true, characterData: true});
  window.__nbsealWatch = window.__nbsealWatch || {};
  window.__nbsealWatch[key] = {states, observer};
}
"""


class Notebook:
    """One open notebook, in JupyterLab or in Notebook 7."""

    def __init__(self, page: Page, server: JupyterServer, messages: KernelMessages) -> None:
        self.page = page
        self.server = server
        self.messages = messages
        self._watches = 0

    # -- where things are ------------------------------------------------
    @property
    def panel(self) -> Locator:
        return self.page.locator(".jp-NotebookPanel:visible")

    @property
    def cells(self) -> Locator:
        return self.panel.locator(".jp-Notebook .jp-Cell")

    def cell(self, index: int) -> Locator:
        return self.cells.nth(index)

    def output_area(self, index: int) -> Locator:
        return self.cell(index).locator(".jp-Cell-outputArea")

    def prompt(self, index: int) -> Locator:
        return self.cell(index).locator(".jp-InputArea-prompt")

    @property
    def path(self) -> str:
        """The notebook's path relative to the server root, from the page's URL."""
        match = re.search(r"/(?:tree|notebooks)/([^?#]+\.ipynb)", self.page.url)
        assert match, f"no notebook path in {self.page.url}"
        return unquote(match.group(1))

    def file(self) -> dict[str, Any]:
        """The notebook as saved on disk."""
        data: dict[str, Any] = json.loads((self.server.root / self.path).read_text())
        return data

    def session(self) -> dict[str, Any]:
        for session in self.server.api("/api/sessions"):
            if session.get("path") == self.path:
                return dict(session)
        raise AssertionError(f"no kernel session for {self.path}")

    # -- waiting ---------------------------------------------------------
    def wait_ready(self, since: int = 0, timeout: float = UI_TIMEOUT) -> None:
        """The notebook is shown, its kernel answered the page, and is idle."""
        expect(self.cells.first).to_be_visible(timeout=timeout * 1000)
        wait_until(
            self.page,
            lambda: self.messages.first("received", "kernel_info_reply", since),
            timeout,
            "the kernel to answer the page's kernel_info_request",
        )
        idle = self.panel.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")
        expect(idle).to_have_count(1, timeout=timeout * 1000)

    # -- editing and running ---------------------------------------------
    def set_code(self, index: int, code: str) -> None:
        editor = self.cell(index).locator(".cm-content")
        editor.click()
        self.page.keyboard.press("Control+a")
        self.page.keyboard.press("Backspace")
        # One input event, so the editor neither auto-indents nor closes brackets.
        self.page.keyboard.insert_text(code)

    def last_index(self) -> int:
        index = self.cells.count() - 1
        text = self.cell(index).locator(".cm-content").text_content() or ""
        assert not text.strip(), f"the last cell is not empty: {text!r}"
        return index

    def submit(self, index: int, code: str | None = None) -> KernelMessage:
        """Run cell ``index`` with Shift+Enter; return the execute_request it sent."""
        since = self.messages.mark()
        if code is not None:
            self.set_code(index, code)
        else:
            self.cell(index).locator(".cm-content").click()
        self.page.keyboard.press("Shift+Enter")
        return wait_until(
            self.page,
            lambda: self.messages.first("sent", "execute_request", since),
            UI_TIMEOUT,
            f"the page to send an execute_request for cell {index}",
        )

    def finish(self, index: int, request: KernelMessage, timeout: float = RUN_TIMEOUT) -> Run:
        """Wait for the reply to ``request`` and for the cell's prompt to show its count."""

        def probe() -> KernelMessage | None:
            return self.messages.reply_to(request.msg_id)

        try:
            reply = wait_until(self.page, probe, timeout, f"the execute_reply of cell {index}")
        except AssertionError as exc:
            seen = "\n".join(str(m) for m in self.messages.log[-25:])
            raise AssertionError(f"{exc}; last kernel messages:\n{seen}") from None
        count = reply.content.get("execution_count")
        pattern = rf"^\[{count}\]:?$" if count is not None else r"^\[\d*\]:?$"
        expect(self.prompt(index)).to_have_text(re.compile(pattern), timeout=30_000)
        return Run(index, request, reply)

    def run(self, index: int, code: str | None = None, timeout: float = RUN_TIMEOUT) -> Run:
        return self.finish(index, self.submit(index, code), timeout)

    def run_new(self, code: str, timeout: float = RUN_TIMEOUT) -> Run:
        """Type ``code`` into the empty last cell and run it."""
        return self.run(self.last_index(), code, timeout)

    # -- what the cell shows ---------------------------------------------
    def outputs(self, index: int) -> list[Output]:
        found = self.output_area(index).evaluate(_OUTPUTS_JS)
        return [Output(o["mime"], o["text"]) for o in found]

    def output_text(self, index: int) -> str:
        return "\n".join(o.text for o in self.outputs(index))

    def expect_output(self, index: int, pattern: str, timeout: float = 30.0) -> None:
        """Wait for cell ``index`` to show ``pattern`` (a multi-line regular expression)."""
        expect(self.output_area(index)).to_contain_text(
            re.compile(pattern, re.MULTILINE), timeout=timeout * 1000
        )

    def watch(self, index: int) -> str:
        """Start recording every state of cell ``index``'s outputs; return a key."""
        self._watches += 1
        key = f"w{self._watches}"
        self.output_area(index).evaluate(_WATCH_JS, key)
        return key

    def watched(self, key: str) -> list[list[Output]]:
        states = self.page.evaluate(f"() => window.__nbsealWatch[{json.dumps(key)}].states")
        return [[Output(o["mime"], o["text"]) for o in state] for state in states]

    # -- toolbar and menus ---------------------------------------------------
    def toolbar_button(self, command: str) -> Locator:
        return self.panel.locator(f"jp-button[data-command='{command}']").first

    def interrupt_from_toolbar(self) -> None:
        self.toolbar_button("notebook:interrupt-kernel").click()

    def menu(self, label: str, command: str) -> None:
        self.page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(rf"^{label}$")).click()
        self.page.locator(f".lm-Menu-item[data-command='{command}']").click()

    def restart_from_menu(self) -> None:
        since = self.messages.mark()
        self.menu("Kernel", "kernelmenu:restart")
        dialog = self.page.locator(".jp-Dialog")
        expect(dialog).to_contain_text("Restart", timeout=UI_TIMEOUT * 1000)
        dialog.locator(".jp-mod-accept").click()
        # The frontend asks the new kernel for its info once it is back.
        self.wait_ready(since)

    def save(self, name: str) -> None:
        """Save from the toolbar; give ``name`` if the frontend asks for one.

        JupyterLab asks for a name on an untitled notebook's first save;
        Notebook 7 keeps the name it has. Its file browser may then report
        "Directory not found: \"\"" while it follows the rename (seen once in
        a clean-clone run, after eight other notebooks on the same server; the
        file is saved all the same): that dialog is closed, the rest waited for.
        """
        before = self._mtime()
        self.toolbar_button("docmanager:save").click()
        dialog = self.page.locator(".jp-Dialog")
        name_field = dialog.locator("input[type='text']")
        asked = []

        def saved() -> bool:
            stray = dialog.filter(has_text="Directory not found")
            if stray.count():
                stray.locator("button").last.click()
                return False
            if name_field.count():
                name_field.fill(name)
                dialog.locator(".jp-mod-accept").click()
                asked.append(name)
                return False
            if dialog.count() or (asked and self.path != name):
                return False
            if not asked and self._mtime() == before:
                return False  # the file on disk is still the one from before the click
            try:
                return bool(json.loads((self.server.root / self.path).read_text()).get("cells"))
            except (OSError, ValueError):
                return False

        wait_until(self.page, saved, UI_TIMEOUT, "the notebook to be saved")
        dirty = self.page.locator(".lm-TabBar-tab.jp-mod-current.jp-mod-dirty")
        expect(dirty).to_have_count(0, timeout=UI_TIMEOUT * 1000)

    def _mtime(self) -> int | None:
        try:
            return (self.server.root / self.path).stat().st_mtime_ns
        except (OSError, AssertionError):
            return None

    def reload(self) -> None:
        since = self.messages.mark()
        self.page.reload()
        self.wait_ready(since)

    def drag_slider(self, area: Locator, start: int, fraction: float) -> int:
        """Drag the ipywidgets slider in ``area`` from ``start`` to ``fraction`` of its track.

        With the mouse: keyboard focus is not reliable here (the notebook takes
        it back when the cell is selected). Returns the value the slider shows.
        """
        handle = area.locator(".widget-slider [role='slider']")
        track = area.locator(".widget-slider .noUi-target")
        grip, box = handle.bounding_box(), track.bounding_box()
        assert grip is not None, "the slider handle is not laid out"
        assert box is not None, "the slider track is not laid out"
        mouse = self.page.mouse
        mouse.move(grip["x"] + grip["width"] / 2, grip["y"] + grip["height"] / 2)
        mouse.down()
        mouse.move(box["x"] + fraction * box["width"], box["y"] + box["height"] / 2, steps=10)
        mouse.up()
        started = re.compile(rf"^{start}(\.0)?$")
        expect(handle).not_to_have_attribute("aria-valuenow", started)
        return int(float(handle.get_attribute("aria-valuenow") or "nan"))

    def screenshot(self, name: str) -> Path:
        path = artifact(f"{name}.png")
        self.page.screenshot(path=str(path), full_page=True)
        return path


def open_new_notebook(
    context: BrowserContext,
    server: JupyterServer,
    messages: KernelMessages,
    workspace: str,
    kernel: tuple[str, str] = ("nbseal", KERNEL_DISPLAY_NAME),
) -> Notebook:
    """Create a notebook with ``kernel`` (name, display name) as a user does in this frontend."""
    kernel_name, display_name = kernel
    page = context.new_page()
    tree: Page | None = None
    if server.app == "lab":
        # A workspace of its own, reset: the launcher, and no tabs of other tests.
        page.goto(server.url(f"/lab/workspaces/{workspace}", "reset"))
        card = page.locator(f".jp-LauncherCard[data-category='Notebook'][title='{display_name}']")
        card.click(timeout=UI_TIMEOUT * 1000)
        notebook = Notebook(page, server, messages)
    else:
        page.goto(server.url("/tree"))
        page.locator(".jp-Toolbar-item[data-jp-item-name='new-dropdown']").click(
            timeout=UI_TIMEOUT * 1000
        )
        item = page.locator(
            ".lm-Menu-item[data-command='notebook:create-new']", has_text=display_name
        )
        # Notebook 7 opens the new notebook in a new tab; the file browser's tab
        # starts its kernel, so it stays open until the notebook is ready.
        with context.expect_page(timeout=UI_TIMEOUT * 1000) as opened:
            item.click()
        tree = page
        page = opened.value
        notebook = Notebook(page, server, messages)
    wait_until(page, lambda: ".ipynb" in page.url, UI_TIMEOUT, "the notebook's URL")
    if server.app == "notebook":
        _accept_kernel_dialog(page, display_name)
    notebook.wait_ready()
    if tree is not None:
        tree.close()
    running = notebook.session()["kernel"]["name"]
    assert running == kernel_name, f"{notebook.path} runs kernel {running!r}, not {kernel_name}"
    return notebook


def _accept_kernel_dialog(page: Page, display_name: str) -> None:
    """Notebook 7 sometimes opens the new tab before its kernel session exists.

    It then asks which kernel to start, with the one chosen in the New menu
    preselected; a user clicks "Select". Seen under load; not nbseal's doing.
    """
    dialog = page.locator(".jp-Dialog", has_text="Select Kernel")
    connected = page.locator(".jp-KernelName", has_text=display_name)

    def settled() -> bool:
        if dialog.count():
            dialog.locator("select").select_option(label=display_name)
            dialog.locator(".jp-mod-accept").click()
            print("Notebook 7 asked for a kernel for the new notebook; selected it")
            return True
        return bool(connected.count())

    wait_until(page, settled, UI_TIMEOUT, "the new notebook to get its kernel")
