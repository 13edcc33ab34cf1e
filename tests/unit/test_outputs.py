"""The output policy (pure): what a sealed kernel's outputs keep, and what they lose."""

from __future__ import annotations

import json

import pytest

from nbseal.kernel.frontend import _web_links
from nbseal.kernel.sealing import _passive_only
from nbseal.outputs import (
    HTML_LIMIT,
    HTML_WITHHELD_NOTE,
    clean_html,
    clean_latex,
    clean_markdown,
    clean_svg,
    seal_bundle,
    seal_widget_state,
)

# Ways to run script from HTML that browsers honour (OWASP's XSS filter
# evasion list, trimmed to what survives an HTML parser).
HOSTILE_HTML = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "<IMG SRC=x OnErRoR=alert(1)>",
    "<svg onload=alert(1)>",
    "<body onload=alert(1)>",
    '<a href="javascript:alert(1)">x</a>',
    '<a href="JaVaScRiPt:alert(1)">x</a>',
    '<a href="&#106;avascript:alert(1)">x</a>',
    '<a href=" javascript:alert(1)">x</a>',
    '<iframe src="/api/contents"></iframe>',
    '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
    '<object data="x.swf"></object>',
    '<embed src="x.swf">',
    '<form action="/api/contents" method="post"><button>go</button></form>',
    '<div data-commandlinker-command="terminal:create-new">open</div>',
    '<button data-commandlinker-command="terminal:create-new">open</button>',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<base href="javascript:/">',
    '<link rel="stylesheet" href="http://evil/x.css">',
    '<img src="data:text/html,<script>alert(1)</script>">',
    '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>',
    "<details open ontoggle=alert(1)>",
    '<div style="background:url(javascript:alert(1))">x</div>',
    "<style>@import 'http://evil/x.css';</style>",
    "<math><mtext><script>alert(1)</script></mtext></math>",
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
    "<template><script>alert(1)</script></template>",
]
ACTIVE = ("<script", "onerror", "onload", "ontoggle", "javascript:", "<iframe", "<object",
          "<embed", "<form", "commandlinker", "<meta", "<base", "<link", "@import",
          "data:text")  # fmt: skip


@pytest.mark.parametrize("html", HOSTILE_HTML)
def test_hostile_html_loses_everything_that_acts(html: str) -> None:
    cleaned = clean_html(html).lower()
    assert not [word for word in ACTIVE if word in cleaned], cleaned


def test_tables_and_styles_of_pandas_survive() -> None:
    styler = (
        '<style type="text/css">\n#T_ab_row0_col0 { background-color: #fde725; }\n</style>\n'
        '<table id="T_ab"><thead><tr><th class="blank level0">&nbsp;</th>'
        '<th id="T_ab_level0_col0" class="col_heading level0 col0">a</th></tr></thead>'
        '<tbody><tr><td id="T_ab_row0_col0" class="data row0 col0">1</td></tr></tbody></table>'
    )
    cleaned = clean_html(styler)
    assert "#T_ab_row0_col0 { background-color: #fde725; }" in cleaned
    assert '<td id="T_ab_row0_col0" class="data row0 col0">1</td>' in cleaned
    assert clean_html('<img src="data:image/png;base64,iVBOR" alt="plot">') == (
        '<img src="data:image/png;base64,iVBOR" alt="plot">'
    )


def test_markdown_is_kept_when_passive_and_rendered_clean_when_not() -> None:
    assert clean_markdown("# Title\n\n* a `<b>` in code\n") == (
        "text/html",
        "<h1>Title</h1>\n<ul>\n<li>a <code>&lt;b&gt;</code> in code</li>\n</ul>\n",
    )
    assert clean_markdown("**bold** and [a link](https://example.org)") == (
        "text/markdown",
        "**bold** and [a link](https://example.org)",
    )
    kind, html = clean_markdown("[x](javascript:alert(1))")
    assert kind == "text/html"
    assert "javascript" not in html


def test_latex_keeps_math_and_loses_mathjax_links_and_extensions() -> None:
    assert clean_latex(r"$\frac{a}{b} + \alpha$") == r"$\frac{a}{b} + \alpha$"
    for command in (r"\href{javascript:alert(1)}{x}", r"\require{action}", r"\class{x}{y}"):
        assert "\\" + command[1:].split("{")[0] + "{" not in clean_latex(f"${command}$")


def test_svg_keeps_drawing_elements_and_internal_references() -> None:
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink">'
        '<defs><linearGradient id="g"><stop offset="0"/></linearGradient>'
        '<path id="p" d="M0 0L1 1"/></defs>'
        '<use xlink:href="#p" fill="url(#g)"/><use xlink:href="http://evil/x.svg#p"/>'
        '<image xlink:href="data:image/png;base64,iVBOR"/><image xlink:href="/files/secret"/>'
        '<a href="javascript:alert(1)"><rect/></a><set attributeName="href" to="javascript:x"/>'
        "<rect style=\"fill:url('http://evil')\"/></svg>"
    )
    cleaned = clean_svg(svg)
    assert cleaned is not None
    assert 'xlink:href="#p"' in cleaned
    assert 'fill="url(#g)"' in cleaned
    assert "data:image/png" in cleaned
    for gone in ("evil", "/files/secret", "javascript", "<set", "<a "):
        assert gone not in cleaned
    assert clean_svg("<html><script>x</script></html>") is None
    assert clean_svg("not xml <") is None


def test_bundles_keep_passive_types_and_withhold_the_rest() -> None:
    data = {
        "text/plain": "Figure()",
        "image/png": "iVBOR",
        "application/vnd.plotly.v1+json": {"data": []},
        "application/vnd.vegalite.v5+json": {},
    }
    metadata = {"image/png": {"width": 10}, "application/vnd.plotly.v1+json": {"x": 1}}
    sealed, kept, withheld = seal_bundle(data, metadata)
    assert sealed == {"text/plain": "Figure()", "image/png": "iVBOR"}
    assert kept == {
        "image/png": {"width": 10},
        "nbseal": {"withheld": sorted(withheld)},
    }
    assert withheld == ["application/vnd.plotly.v1+json", "application/vnd.vegalite.v5+json"]


def test_widget_states_of_standard_models_are_cleaned_others_refused() -> None:
    html = seal_widget_state(
        "@jupyter-widgets/controls", "HTMLModel", {"value": "<img src=x onerror=alert(1)>b"}
    )
    assert html == {"value": '<img src="x">b'}
    text = seal_widget_state("@jupyter-widgets/controls", "TextModel", {"value": "a<b"})
    assert text == {"value": "a<b"}, "a text widget's value is text, not HTML"
    assert seal_widget_state("anywidget", "AnyModel", {"_esm": "x"}) is None
    assert seal_widget_state("@jupyter-widgets/controls", "HTMLModel", {"_esm": "x"}) is None
    assert seal_widget_state("ipyleaflet", "LeafletMapModel", {}) is None


@pytest.mark.parametrize(
    ("frame", "passive"),
    [
        (b'{"data": {"text/plain": "1\\n2"}, "metadata": {}, "transient": {}}', True),
        (b'{"data": {"image/png": "iVB"}, "metadata": {"image/png": {"width": 1}}}', True),
        (b'{"data": {"text/plain": "\\"text/html\\": is text here"}}', True),
        (b'{"data": {"text/plain": "a", "text/html": "<b>"}}', False),
        (b'{"data": {"text\\/html": "<script>x()</script>"}}', False),
        (b'{"data": {"text\\u002fhtml": "<script>x()</script>"}}', False),
        (b'{"data": {"application/x_js": "x()"}}', False),
        (b'{"data": {"application/vnd.nbseal.lock+json": {}}}', False),
        (b'{"data" : {"text/plain" : "a", "text/html"  : "<b>"}}', False),
        (b'{"data": {}}', False),
    ],
)
def test_the_fast_path_skips_only_outputs_the_policy_would_not_change(
    frame: bytes, passive: bool
) -> None:
    # The proxy relays a passive output without decoding it; anything else,
    # including a key spelled with JSON escapes, is decoded and sealed.
    assert _passive_only(frame) is passive


def test_help_links_a_kernel_reports_are_web_pages_only() -> None:
    # JupyterLab's Help menu opens them on a click, in the page's origin.
    links = [
        {"text": "Python", "url": "https://docs.python.org/3"},
        {"text": "click me", "url": "javascript:fetch('/api/terminals', {method: 'POST'})"},
        {"text": "data", "url": "data:text/html,<script>x()</script>"},
        "not a link",
    ]
    assert _web_links(links) == [{"text": "Python", "url": "https://docs.python.org/3"}]
    assert _web_links(None) == []


def test_scripts_removed_from_html_leave_a_note_where_they_drew() -> None:
    cleaned = clean_html('<div id="chart"></div><script>draw("#chart")</script>')
    assert cleaned == HTML_WITHHELD_NOTE + '<div id="chart"></div>'
    assert clean_html("<b>no script</b>") == "<b>no script</b>"


def test_css_keeps_inline_images_and_loses_escapes_and_remote_urls() -> None:
    css = clean_html(
        "<style>.logo{background:url(data:image/png;base64,iVBOR)}"
        ".x{background:\\75 rl(http://evil/)}.y{background:url(http://evil/)}</style>"
    )
    assert "url(data:image/png;base64,iVBOR)" in css
    assert "evil/)" in css  # left as inert text after the removed url(
    assert "\\" not in css
    assert css.count("url(") == 1


def test_html_too_large_to_clean_quickly_is_withheld() -> None:
    huge = "<b>x</b>" * (HTML_LIMIT // 8 + 1)
    assert clean_html(huge) is None
    sealed, _, withheld = seal_bundle({"text/html": huge, "text/plain": "x"})
    assert withheld == ["text/html"]
    assert "output withheld" in sealed["text/plain"]


def test_strings_full_of_quotes_and_large_frames_are_judged_right() -> None:
    # f05d5e8's key regex restarted a scan at every escaped quote (85 s on a
    # 258 KB Styler); strings are now matched whole, one after another.
    quoted = json.dumps({"data": {"text/plain": 'say "hi" ' * 5000}, "metadata": {}}).encode()
    assert _passive_only(quoted)
    tricky = json.dumps({"data": {"text/plain": '"x": ' * 5000, "text/html": "<b>"}}).encode()
    assert not _passive_only(tricky)
    large = json.dumps({"data": {"text/plain": "x" * 100_000}}).encode()
    assert not _passive_only(large), "a large frame is decoded, not scanned"
