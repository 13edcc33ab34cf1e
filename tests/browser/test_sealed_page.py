"""A sealed kernel cannot reach the host through the page (JupyterLab 4, Notebook 7).

Each route a kernel's output can take to run script in the page carries a
payload that, run with the page's cookies, writes a file on the host through
``/api/contents``, opens a terminal and starts another kernel: everything a
hostile notebook would want once outside its sandbox. Sealed, none of it
happens; with ``#seal allow javascript`` (the test's own control) every route
does, which shows the routes are real.
"""

from __future__ import annotations

import json
import time
import urllib.error
from typing import Any

import pytest

from tests.browser.ui import JupyterServer, Notebook

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(900)]

PAYLOAD = """(async () => {
  const config = JSON.parse(document.getElementById('jupyter-config-data').textContent);
  const xsrf = decodeURIComponent((document.cookie.match(/_xsrf=([^;]+)/) || ['', ''])[1]);
  const headers = {'X-XSRFToken': xsrf, 'Content-Type': 'application/json'};
  const api = (path, body) => fetch(config.baseUrl + 'api/' + path,
    {method: body.type ? 'PUT' : 'POST', headers, body: JSON.stringify(body)});
  await api('contents/pwned-ROUTE.txt', {type: 'file', format: 'text', content: 'pwned'});
  await api('terminals', {});
  await api('kernels', {name: 'python3'});
})()"""


def payload(route: str) -> str:
    return " ".join(PAYLOAD.replace("ROUTE", route).split())


def onerror(route: str) -> str:
    # An attribute holds the script: no double quotes inside.
    return f'<img src=x onerror="{payload(route).replace(chr(34), chr(39))}">'


WIDGET = """
from comm import create_comm
from IPython.display import display
state = dict(_model_module='@jupyter-widgets/controls', _model_name='HTMLModel',
             _model_module_version='2.0.0', _view_module='@jupyter-widgets/controls',
             _view_name='HTMLView', _view_module_version='2.0.0', value=VALUE,
             layout=None, style=None, description='', placeholder='')
comm = create_comm(target_name='jupyter.widget', data={'state': state, 'buffer_paths': []},
                   metadata={'version': '2.1.0'})
display({'application/vnd.jupyter.widget-view+json': {'model_id': comm.comm_id,
         'version_major': 2, 'version_minor': 0}, 'text/plain': 'HTML()'}, raw=True)
"""

# route -> the cell that takes it.
ROUTES = {
    "javascript": f"from IPython.display import Javascript\nJavascript({payload('javascript')!r})",
    "script-in-html": (
        "from IPython.display import HTML\n"
        f"HTML({'<script>' + payload('script-in-html') + '</script>'!r})"
    ),
    "img-onerror-html": f"from IPython.display import HTML\nHTML({onerror('img-onerror-html')!r})",
    "img-onerror-markdown": (
        "from IPython.display import Markdown\n"
        f"Markdown({'# title' + chr(10) + onerror('img-onerror-markdown')!r})"
    ),
    "raw-iopub-bundle": (
        "ip = get_ipython()\n"
        "ip.kernel.session.send(ip.kernel.iopub_socket, 'display_data', {'data':"
        f" {{'application/javascript': {payload('raw-iopub-bundle')!r}}}, 'metadata': {{}},"
        " 'transient': {}}, parent=ip.kernel.get_parent(), ident=b'display_data')"
    ),
    "widget-html": WIDGET.replace("VALUE", repr(onerror("widget-html"))),
}


def _kernels(server: JupyterServer) -> list[dict[str, Any]]:
    """The server's kernels, asked again while the page is starting one.

    jupyter_server answers 500 when it lists a kernel it is still starting
    (its ``last_activity`` is not set yet: seen in CI with the granted
    scripts starting six kernels at once); a moment later the list is whole.
    """
    deadline = time.monotonic() + 5
    while True:
        try:
            kernels: list[dict[str, Any]] = server.api("/api/kernels")
            return kernels
        except urllib.error.HTTPError as exc:
            if exc.code != 500 or time.monotonic() > deadline:
                raise
        time.sleep(0.25)


def _host_effects(server: JupyterServer, before: dict[str, set[str]]) -> dict[str, list[str]]:
    """Files, terminals and kernels the page made since ``before``."""
    files = sorted(p.name for p in server.root.glob("pwned-*.txt"))
    terminals = {t["name"] for t in server.api("/api/terminals")} - before["terminals"]
    kernels = {k["id"]: k["name"] for k in _kernels(server)}
    started = sorted(n for i, n in kernels.items() if i not in before["kernels"])
    return {"files": files, "terminals": sorted(terminals), "kernels": started}


def _clean_up(server: JupyterServer, before: dict[str, set[str]]) -> None:
    for path in server.root.glob("pwned-*.txt"):
        path.unlink()
    for terminal in server.api("/api/terminals"):
        if terminal["name"] not in before["terminals"]:
            server.api(f"/api/terminals/{terminal['name']}", method="DELETE")
    for kernel in _kernels(server):
        if kernel["id"] not in before["kernels"]:
            server.api(f"/api/kernels/{kernel['id']}", method="DELETE")


@pytest.mark.parametrize("grant", ["sealed", "allow-javascript"])
def test_outputs_cannot_reach_the_server_unless_granted(
    notebook: Notebook, jupyter: JupyterServer, grant: str, artifact_name: str
) -> None:
    before = {
        "terminals": {t["name"] for t in jupyter.api("/api/terminals")},
        "kernels": {k["id"] for k in _kernels(jupyter)},
    }
    try:
        if grant == "allow-javascript":
            assert notebook.run_new("#seal allow javascript").status == "ok"
        for route, code in ROUTES.items():
            run = notebook.run_new(code)
            assert run.status == "ok", (route, run.reply.content)
        # Scripts run asynchronously: give the granted ones time to land.
        deadline = time.monotonic() + 20
        wanted = len(ROUTES) if grant == "allow-javascript" else 0
        while time.monotonic() < deadline:
            effects = _host_effects(jupyter, before)
            if len(effects["files"]) >= wanted and wanted:
                break
            time.sleep(0.5)
        time.sleep(2)  # a late sealed effect would show up here
        effects = _host_effects(jupyter, before)
        notebook.screenshot(artifact_name)
        if grant == "sealed":
            assert effects == {"files": [], "terminals": [], "kernels": []}, json.dumps(effects)
        else:
            assert effects["files"] == sorted(f"pwned-{route}.txt" for route in ROUTES)
            assert len(effects["terminals"]) == len(ROUTES)
            assert effects["kernels"] == ["python3"] * len(ROUTES)
    finally:
        _clean_up(jupyter, before)
