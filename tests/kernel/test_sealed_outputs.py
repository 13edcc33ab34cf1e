"""Sealed outputs through the real proxy: every path an output takes to the page is filtered.

A hostile cell sends what a browser would run (script, event handlers,
JavaScript bundles, widget models with their own code) on each message type
a frontend renders; the client sees only what cannot act. With
``#seal allow javascript`` the same messages arrive as the kernel sent them
(each test's control).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from jupyter_client.blocking.client import BlockingKernelClient

from nbseal.outputs import HTML_WITHHELD_NOTE
from tests.kernel.helpers import Result, execute, running_kernel

pytestmark = pytest.mark.usefixtures("default_env")

ATTACK = "<img src=x onerror=\"fetch('/api/contents/pwned.txt',{method:'PUT'})\">"
SCRIPT = "<script>fetch('/api/terminals',{method:'POST'})</script>"


@pytest.fixture(scope="module")
def kc() -> Iterator[BlockingKernelClient]:
    with running_kernel() as (_km, client):
        yield client


@pytest.fixture(scope="module")
def granted() -> Iterator[BlockingKernelClient]:
    with running_kernel() as (_km, client):
        assert execute(client, "#seal allow javascript").status == "ok"
        yield client


def _bundles(result: Result, msg_type: str = "display_data") -> list[dict[str, Any]]:
    return [m["content"]["data"] for m in result.of_type(msg_type)]


def _active(text: str) -> bool:
    lowered = text.lower()
    return any(s in lowered for s in ("<script", "onerror", "onload", "javascript:", "<iframe"))


def test_html_and_markdown_are_cleaned_and_keep_their_content(kc: BlockingKernelClient) -> None:
    result = execute(
        kc,
        "from IPython.display import HTML, Markdown, display\n"
        f"display(HTML({ATTACK + SCRIPT + '<b>bold</b><table><tr><td>1</td></tr></table>'!r}))\n"
        f"display(Markdown('# Title\\n' + {ATTACK!r}))\n"
        "display(Markdown('**plain** markdown, $x^2$'))",
    )
    html, markdown, plain = _bundles(result)
    assert "<b>bold</b>" in html["text/html"]
    assert "<td>1</td>" in html["text/html"]
    assert not _active(html["text/html"])
    assert "text/markdown" not in markdown, "markdown with raw HTML is rendered and cleaned"
    assert "<h1>Title</h1>" in markdown["text/html"]
    assert not _active(markdown["text/html"])
    assert plain["text/markdown"] == "**plain** markdown, $x^2$", "passive markdown is untouched"


def test_javascript_bundles_are_withheld_and_say_so(kc: BlockingKernelClient) -> None:
    result = execute(
        kc,
        "from IPython.display import Javascript, display\n"
        "display(Javascript('document.title = 1'))\n"
        "ip = get_ipython()\n"
        "ip.kernel.session.send(ip.kernel.iopub_socket, 'display_data',\n"
        "    {'data': {'application/javascript': 'x()', 'text/html': '<i>ok</i>'},"
        " 'metadata': {}, 'transient': {}},\n"
        "    parent=ip.kernel.get_parent(), ident=b'display_data')",
    )
    js, raw = result.of_type("display_data")
    assert list(js["content"]["data"]) == ["text/plain"]
    assert "#seal allow javascript" in js["content"]["data"]["text/plain"]
    assert js["content"]["data"]["text/plain"].endswith("<IPython.core.display.Javascript object>")
    assert js["content"]["metadata"]["nbseal"]["withheld"] == ["application/javascript"]
    assert raw["content"]["data"] == {"text/html": "<i>ok</i>"}


def test_update_display_data_and_execute_result_are_cleaned(kc: BlockingKernelClient) -> None:
    result = execute(
        kc,
        "from IPython.display import HTML, display\n"
        "h = display(HTML('<p>first</p>'), display_id=True)\n"
        f"h.update(HTML({SCRIPT + '<p>second</p>'!r}))\n"
        "class Hostile:\n"
        f"    def _repr_html_(self): return {ATTACK + '<p>third</p>'!r}\n"
        "Hostile()",
    )
    (update,) = _bundles(result, "update_display_data")
    assert "<p>second</p>" in update["text/html"]
    assert not _active(update["text/html"])
    (shown,) = _bundles(result, "execute_result")
    assert "<p>third</p>" in shown["text/html"]
    assert not _active(shown["text/html"])


def test_svg_keeps_its_drawing_not_its_scripts(kc: BlockingKernelClient) -> None:
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10" onload="x()">'
        '<script>x()</script><rect width="10" height="10" fill="red"/>'
        "<foreignObject><div>html</div></foreignObject></svg>"
    )
    result = execute(kc, f"from IPython.display import SVG, display\ndisplay(SVG({svg!r}))")
    (bundle,) = _bundles(result)
    assert "<rect" in bundle["image/svg+xml"]
    assert "script" not in bundle["image/svg+xml"]
    assert "onload" not in bundle["image/svg+xml"]
    assert "foreignObject" not in bundle["image/svg+xml"]


def test_the_pager_payload_is_cleaned(kc: BlockingKernelClient) -> None:
    result = execute(
        kc,
        "get_ipython().payload_manager.write_payload("
        f"{{'source': 'page', 'data': {{'text/html': {SCRIPT + 'help'!r}}}, 'start': 0}})",
    )
    (page,) = result.reply["content"]["payload"]
    assert page["data"]["text/html"] == HTML_WITHHELD_NOTE + "help"


WIDGETS = """
from comm import create_comm
def widget(module, name, **state):
    state.update(_model_module=module, _model_name=name, _model_module_version='2.0.0',
                 _view_module=module, _view_name=name.replace('Model', 'View'),
                 _view_module_version='2.0.0')
    return create_comm(target_name='jupyter.widget', data={'state': state, 'buffer_paths': []},
                       metadata={'version': '2.1.0'})
"""


def _comm_messages(result: Result) -> list[dict[str, Any]]:
    return [m for m in result.outputs if m["msg_type"] in {"comm_open", "comm_msg"}]


def test_widget_state_is_cleaned_and_models_with_their_own_code_are_refused(
    kc: BlockingKernelClient,
) -> None:
    result = execute(
        kc,
        WIDGETS + f"html = widget('@jupyter-widgets/controls', 'HTMLModel', value={ATTACK!r})\n"
        f"html.send({{'method': 'update', 'state': {{'value': {SCRIPT + 'later'!r}}},"
        " 'buffer_paths': []})\n"
        "esm = widget('anywidget', 'AnyModel', _esm='export default {render() {}}')\n"
        "esm.send({'method': 'update', 'state': {'value': 1}, 'buffer_paths': []})\n"
        "out = widget('@jupyter-widgets/output', 'OutputModel', outputs=[{'output_type':"
        " 'display_data', 'data': {'application/javascript': 'x()'}, 'metadata': {}}])",
    )
    opened = [m for m in result.outputs if m["msg_type"] == "comm_open"]
    states = [m["content"]["data"]["state"] for m in opened]
    assert [s["_model_module"] for s in states] == [
        "@jupyter-widgets/controls",
        "@jupyter-widgets/output",
    ], "the anywidget model never reaches the page"
    assert not _active(states[0]["value"])
    (update,) = [m for m in result.outputs if m["msg_type"] == "comm_msg"]
    assert update["content"]["data"]["state"]["value"] == "later"
    (captured,) = states[1]["outputs"]
    assert list(captured["data"]) == ["text/plain"], "the Output widget's JavaScript is withheld"


def test_allow_javascript_relays_outputs_as_they_are(granted: BlockingKernelClient) -> None:
    result = execute(
        granted,
        "from IPython.display import HTML, Javascript, display\n"
        f"display(HTML({ATTACK!r}))\n"
        "display(Javascript('document.title = 1'))\n"
        + WIDGETS
        + "esm = widget('anywidget', 'AnyModel', _esm='export default {}')",
    )
    html, js = _bundles(result)
    assert html["text/html"] == ATTACK
    assert js["application/javascript"] == "document.title = 1"
    (opened,) = [m for m in result.outputs if m["msg_type"] == "comm_open"]
    assert opened["content"]["data"]["state"]["_esm"] == "export default {}"
    described = execute(granted, "#seal describe").of_type("display_data")
    assert "outputs run in the page (#seal allow javascript)" in str(described)
